import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import {
  analyzeTarget,
  BaselineChooser,
  compareTargets,
  IBrowserItem,
  isAnalyzable
} from '../fileBrowser';
import {
  AdvisorService,
  defaultSubmitRequest,
  IAdvisorRequests,
  IAdvisorShell
} from '../service';
import { AdvisorTab, ITask, ITaskSummary } from '../tokens';
import { nullTranslator } from '@jupyterlab/translation';
import {
  makeTask,
  OPTIONS_REPLY,
  OPTIONS_REPLY_DEFAULTS,
  waitFor
} from './utils';

/**
 * A fake server: tasks by id, moved on by the test.
 */
function fakeRequests(
  tasks: Map<string, ITask>
): jest.Mocked<IAdvisorRequests> {
  let next = 0;
  return {
    options: jest.fn(async () => OPTIONS_REPLY),
    submit: jest.fn(async request => {
      const task = makeTask({
        id: `t${++next}`,
        path: request.path,
        compare: request.compare,
        change: 1
      });
      tasks.set(task.id, task);
      return task;
    }),
    getTask: jest.fn(async id => {
      const task = tasks.get(id);
      if (!task) {
        throw new ServerConnection.ResponseError(
          new Response('{}', { status: 404 }),
          `No task ${id}`
        );
      }
      return task;
    }),
    createNotebook: jest.fn(async id => `reports/${id}.ipynb`)
  };
}

function fakeShell(): jest.Mocked<IAdvisorShell> {
  return {
    openReport: jest.fn(async (_task: ITaskSummary) => new Widget()),
    openPanel: jest.fn(async (_tab?: AdvisorTab) => new Widget()),
    openDocument: jest.fn(async (_path: string): Promise<unknown> => undefined),
    reportLanguage: jest.fn(() => 'zh' as const)
  };
}

describe('AdvisorService', () => {
  let tasks: Map<string, ITask>;
  let requests: jest.Mocked<IAdvisorRequests>;
  let shell: jest.Mocked<IAdvisorShell>;
  let service: AdvisorService;
  let seen: string[];

  beforeEach(() => {
    tasks = new Map();
    requests = fakeRequests(tasks);
    shell = fakeShell();
    // The shortest interval the service takes (1 s).
    service = new AdvisorService({ requests, shell, refreshInterval: 1000 });
    seen = [];
    service.taskChanged.connect((_, task) =>
      seen.push(`${task.id}:${task.status}`)
    );
  });

  afterEach(() => service.dispose());

  it('analyses with the server defaults and the report language of the settings', async () => {
    const task = await service.analyze('runs/a', 'runs/b');
    expect(requests.submit).toHaveBeenCalledWith({
      source: 'local',
      path: 'runs/a',
      compare: { source: 'local', path: 'runs/b' },
      options: OPTIONS_REPLY_DEFAULTS,
      output_path: 'performance_advisor_reports',
      language: 'zh'
    });
    expect(task.id).toBe('t1');
    expect(seen).toEqual(['t1:queued']);
    expect(service.followed).toEqual(['t1']);
  });

  it('follows a submitted task until it finishes, one signal per new state', async () => {
    await service.analyze('runs/a');
    tasks.set('t1', { ...tasks.get('t1')!, status: 'analyzing', change: 2 });
    await waitFor(() => seen.length === 2, 4000, 'analyzing');
    tasks.set('t1', { ...tasks.get('t1')!, status: 'success', change: 3 });
    await waitFor(() => seen.length === 3, 4000, 'success');
    expect(seen).toEqual(['t1:queued', 't1:analyzing', 't1:success']);
    expect(service.followed).toEqual([]);
    // Nothing more is fetched once it finished.
    const calls = requests.getTask.mock.calls.length;
    await new Promise(resolve => setTimeout(resolve, 1500));
    expect(requests.getTask.mock.calls.length).toBe(calls);
  });

  it('stops following a task deleted on the server', async () => {
    await service.analyze('runs/a');
    tasks.delete('t1');
    await waitFor(() => service.followed.length === 0, 4000, 'unfollow');
    expect(seen).toEqual(['t1:queued']);
  });

  it('signals the tasks the Reports tab lists only when they changed', () => {
    const first: ITaskSummary = makeTask({ id: 'x', change: 4 });
    service.noteTasks([first]);
    service.noteTasks([first, makeTask({ id: 'x', change: 3 })]);
    service.noteTasks([makeTask({ id: 'x', change: 5, status: 'failed' })]);
    expect(seen).toEqual(['x:queued', 'x:failed']);
  });

  it('opens the report of a successful task only', async () => {
    tasks.set(
      'ok',
      makeTask({
        id: 'ok',
        status: 'success',
        reports: {
          html: 'performance-advisor/reports/ok',
          xlsx: null,
          json: null
        }
      })
    );
    tasks.set('bad', makeTask({ id: 'bad', status: 'failed' }));
    await service.openReport('ok');
    expect(shell.openReport).toHaveBeenCalledWith(tasks.get('ok'));
    await expect(service.openReport('bad')).rejects.toThrow(
      'Task bad has no report to open (its status is failed)'
    );
    expect(shell.openReport).toHaveBeenCalledTimes(1);
  });

  it('writes the notebook on the server, then opens the path it answers', async () => {
    const path = await service.openNotebook('ok');
    expect(path).toBe('reports/ok.ipynb');
    expect(shell.openDocument).toHaveBeenCalledWith('reports/ok.ipynb');
  });

  it('builds the request of the Submit form without advanced settings', () => {
    const request = defaultSubmitRequest(OPTIONS_REPLY, 'a', null, 'en');
    expect(request.compare).toBeNull();
    // A copy: changing it leaves the server's defaults alone.
    request.options.analysis_dimensions.push('dataloader');
    expect(OPTIONS_REPLY.options.analysis_dimensions.default).toEqual([
      'computation',
      'memory'
    ]);
  });
});

describe('file browser actions', () => {
  const folder = (path: string): IBrowserItem => ({
    name: path.split('/').pop()!,
    path,
    type: 'directory'
  });
  const file = (path: string): IBrowserItem => ({
    name: path.split('/').pop()!,
    path,
    type: 'file'
  });

  it('analyse folders and trace files only', () => {
    expect(isAnalyzable(folder('runs/profiling_dir1'))).toBe(true);
    expect(isAnalyzable(file('rank0.pt.trace.json'))).toBe(true);
    expect(isAnalyzable(file('rank0.PT.TRACE.JSON.GZ'))).toBe(true);
    expect(isAnalyzable(file('trace_view.json'))).toBe(true);
    expect(isAnalyzable(file('notes.json.gz'))).toBe(false);
    expect(isAnalyzable(file('train.py'))).toBe(false);
    expect(isAnalyzable(file('profile.json.txt'))).toBe(false);
  });

  it('offer Analyze for exactly one analysable item', () => {
    expect(analyzeTarget([folder('a')])).toEqual(folder('a'));
    expect(analyzeTarget([file('a.py')])).toBeNull();
    expect(analyzeTarget([folder('a'), folder('b')])).toBeNull();
    expect(analyzeTarget([])).toBeNull();
  });

  it('offer Compare for exactly two folders', () => {
    expect(compareTargets([folder('a'), folder('b')])).toEqual([
      folder('a'),
      folder('b')
    ]);
    expect(compareTargets([folder('a'), file('b.pt.trace.json')])).toBeNull();
    expect(compareTargets([folder('a')])).toBeNull();
    expect(compareTargets([folder('a'), folder('b'), folder('c')])).toBeNull();
  });

  it('propose the second folder as the baseline, and take the one chosen', () => {
    const chooser = new BaselineChooser(
      ['runs/new', 'runs/old'],
      nullTranslator.load('test')
    );
    expect(chooser.getValue()).toBe('runs/old');
    const select = chooser.node.querySelector('select')!;
    expect(Array.from(select.options).map(o => o.value)).toEqual([
      'runs/new',
      'runs/old'
    ]);
    select.value = 'runs/new';
    expect(chooser.getValue()).toBe('runs/new');
    chooser.dispose();
  });
});
