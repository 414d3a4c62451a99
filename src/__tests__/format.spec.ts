import { Gettext, nullTranslator } from '@jupyterlab/translation';

import {
  duration,
  formatClock,
  formatDateTime,
  formatDuration,
  pathTitle,
  queuedFor,
  reportTabTitle,
  stageLabel
} from '../format';
import { durationMs } from '../model';
import { TRANSLATION_DOMAIN } from '../tokens';
import { makeTask } from './utils';

const en = nullTranslator.load(TRANSLATION_DOMAIN);

/**
 * The bundle a Chinese JupyterLab gives the panel: the shipped catalogue, loaded as
 * @jupyterlab/translation's TranslationManager loads it.
 */
function chineseBundle(): Gettext {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const data = require('../../advisor/locale/zh_CN/LC_MESSAGES/jupyterlab_performance_advisor.json');
  const bundle = new Gettext({ domain: TRANSLATION_DOMAIN, locale: 'zh-CN' });
  bundle.loadJSON(
    { ...data, '': { ...data[''], pluralForms: data[''].plural_forms } },
    TRANSLATION_DOMAIN
  );
  return bundle;
}
const zh = chineseBundle();

describe('dates follow the UI language, not the browser', () => {
  const iso = '2026-12-07T04:55:55Z';
  const local = new Date(iso);

  it('writes the Submitted column in the language given', () => {
    const inChinese = formatDateTime(iso, 'zh-CN');
    expect(inChinese).toBe(
      new Intl.DateTimeFormat('zh-CN', {
        dateStyle: 'medium',
        timeStyle: 'medium'
      }).format(local)
    );
    expect(inChinese).toContain('2026年12月7日');
    expect(formatDateTime(iso, 'en')).toContain('Dec 7, 2026');
  });

  it('falls back for a missing, malformed or unknown language', () => {
    const fallback = new Intl.DateTimeFormat(undefined, {
      dateStyle: 'medium',
      timeStyle: 'medium'
    }).format(local);
    expect(formatDateTime(iso)).toBe(fallback);
    expect(formatDateTime(iso, 'not a tag!')).toBe(fallback);
    expect(formatDateTime(null, 'en')).toBe('—');
    expect(formatDateTime('garbage', 'en')).toBe('garbage');
  });

  it('writes times of day on a 24-hour clock', () => {
    const hh = String(local.getHours()).padStart(2, '0');
    const mm = String(local.getMinutes()).padStart(2, '0');
    expect(formatClock(iso, 'en')).toBe(`${hh}:${mm}`);
    expect(formatClock(iso, 'en', true)).toBe(`${hh}:${mm}:55`);
  });
});

describe('durations', () => {
  it('writes whole units through the catalogue', () => {
    expect(formatDuration(0, en)).toBe('0 s');
    expect(formatDuration(999, en)).toBe('0 s');
    expect(formatDuration(42_000, en)).toBe('42 s');
    expect(formatDuration(72_000, en)).toBe('1 min 12 s');
    expect(formatDuration(7_500_000, en)).toBe('2 h 5 min');
    expect(formatDuration(-5, en)).toBe('0 s');
    expect(formatDuration(72_000, zh)).toBe('1分12秒');
    expect(formatDuration(42_000, zh)).toBe('42秒');
    expect(formatDuration(7_500_000, zh)).toBe('2小时5分');
  });

  it('measures a finished task from started to finished', () => {
    const task = makeTask({
      status: 'success',
      created: '2026-11-22T10:00:00Z',
      started: '2026-11-22T10:00:05Z',
      finished: '2026-11-22T10:01:17Z'
    });
    expect(durationMs(task, Date.parse('2030-01-01T00:00:00Z'))).toBe(72_000);
    expect(duration(task, en)).toBe('1 min 12 s');
    expect(duration(task, zh)).toBe('1分12秒');
    // The wait for a slot is not the analysis: it is told apart, in the tooltip.
    expect(queuedFor(task, en)).toBe('Waited 5 s in the queue');
    expect(queuedFor(task, zh)).toBe('在队列中等待了5秒');
  });

  it('measures a running task up to now, and a queued one waits', () => {
    const task = makeTask({
      status: 'analyzing',
      created: '2026-11-22T10:00:00Z',
      started: '2026-11-22T10:00:00.400Z'
    });
    const now = Date.parse('2026-11-22T10:00:42.400Z');
    expect(duration(task, en, now)).toBe('42 s');
    expect(duration(task, en, now + 60_000)).toBe('1 min 42 s');
    expect(queuedFor(task, en, now)).toBeUndefined();
    const queued = makeTask({ created: '2026-11-22T10:00:00Z' });
    expect(duration(queued, en)).toBe('—');
    expect(queuedFor(queued, en, Date.parse('2026-11-22T10:00:09Z'))).toBe(
      'Waited 9 s in the queue'
    );
  });

  it('shows a dash for tasks that never started', () => {
    expect(
      duration(
        makeTask({ status: 'cancelled', finished: '2026-11-22T10:00:00Z' }),
        en
      )
    ).toBe('—');
    expect(
      durationMs(makeTask({ status: 'failed', started: 'garbage' }))
    ).toBeNull();
  });
});

describe('stageLabel', () => {
  it.each([
    ['reading rank 2/8', 'Reading rank 2 of 8', '正在读取 rank 2/8'],
    ['running checks', 'Running checks', '正在运行检查'],
    ['writing report', 'Writing the report', '正在生成报告'],
    ['done', 'Writing the report', '正在生成报告'],
    [
      'downloading 12/48 files, 1.2 GB of 3.4 GB',
      'Downloading 12 of 48 files (1.2 GB of 3.4 GB)',
      '正在下载第 12/48 个文件（1.2 GB/3.4 GB）'
    ],
    ['listing obs://b/run1', 'Listing obs://b/run1', '正在列出 obs://b/run1'],
    ['something new', 'something new', 'something new']
  ])('%s', (stage, english, chinese) => {
    expect(stageLabel(stage, en)).toBe(english);
    expect(stageLabel(stage, zh)).toBe(chinese);
  });
});

describe('report tab titles', () => {
  it('names a path after its last meaningful part', () => {
    expect(pathTitle('./runs/job1/')).toBe('job1');
    expect(pathTitle('obs://bucket/jobs/run7')).toBe('run7');
    expect(pathTitle('/data/x/../y')).toBe('y');
    expect(pathTitle('.')).toBe('.');
  });

  it('uses the server title, adds the baseline, then the time on a collision', () => {
    const plain = makeTask({
      id: 'p',
      title: 'profiling_dir1',
      path: './profiling_dir1',
      created: '2026-12-07T04:55:55Z'
    });
    const compared = makeTask({
      ...plain,
      id: 'c',
      compare: { source: 'local', path: './profiling_dir1_baseline/' }
    });
    const clock = formatClock(plain.created, 'en');
    expect(reportTabTitle(plain, [], en, 'en')).toBe('profiling_dir1');
    expect(reportTabTitle(compared, ['profiling_dir1'], en, 'en')).toBe(
      'profiling_dir1 vs profiling_dir1_baseline'
    );
    expect(reportTabTitle(compared, [], zh, 'zh-CN')).toBe(
      'profiling_dir1 对比 profiling_dir1_baseline'
    );
    expect(reportTabTitle(plain, ['profiling_dir1'], en, 'en')).toBe(
      `profiling_dir1 (${clock})`
    );
    expect(
      reportTabTitle(
        plain,
        ['profiling_dir1', `profiling_dir1 (${clock})`],
        en,
        'en'
      )
    ).toBe(`profiling_dir1 (${formatClock(plain.created, 'en', true)})`);
  });

  it('never titles a tab "." (the server names the folder; a missing title falls back to the path)', () => {
    const root = makeTask({ path: '.', title: 'workspace' });
    expect(reportTabTitle(root, [], en)).toBe('workspace');
    expect(reportTabTitle(makeTask({ path: './a/b', title: '' }), [], en)).toBe(
      'b'
    );
  });
});
