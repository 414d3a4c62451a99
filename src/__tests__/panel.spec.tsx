import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { TaskListModel } from '../model';
import { AdvisorClient } from '../request';
import { ISubmitRequest, ITask, ITaskListQuery } from '../tokens';
import { AdvisorPanel } from '../widgets/panel';
import { listReply, makeTask, OPTIONS_REPLY, waitFor } from './utils';

const trans = nullTranslator.load('jupyterlab_performance_advisor');
const MIXED_RUNS =
  '/root: holds the rank folders of 2 different profiling runs (the same rank ids): ' +
  'profiling_dir1/ (ranks 0–1); profiling_dir1_baseline/ (ranks 0–1); analyse one run at a time';

/**
 * Set the value of a React-controlled input or select and fire the event React hears.
 */
function setValue(
  element: HTMLInputElement | HTMLSelectElement,
  value: string
) {
  const proto =
    element instanceof HTMLSelectElement
      ? HTMLSelectElement.prototype
      : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(element, value);
  element.dispatchEvent(
    new Event(element instanceof HTMLSelectElement ? 'change' : 'input', {
      bubbles: true
    })
  );
}

function $(root: HTMLElement, selector: string): HTMLElement {
  const element = root.querySelector(selector) as HTMLElement | null;
  if (!element) {
    throw new Error(`no element matches ${selector}`);
  }
  return element;
}

// A PyTorch profiler trace: one file, to which the CANN/torch hints do not apply.
const TRACE = './worker0.1733.pt.trace.json.gz';
// A training log, analysed alone or beside a profile.
const LOG = './output/trainer_log.jsonl';
const LOG_SUMMARY = 'LLaMA-Factory log, 1,200 records, steps 10–12,000';
const NOT_A_LOG =
  './notes.txt: no LLaMA-Factory record, trainer_state log_history or Megatron iteration line found';

describe('AdvisorPanel', () => {
  let tasks: ITask[];
  let client: {
    options: jest.Mock;
    inspect: jest.Mock;
    inspectTrainingLog: jest.Mock;
    submit: jest.Mock;
    listTasks: jest.Mock;
    cancelOrDelete: jest.Mock;
    url: (path: string) => string;
    reportUrl: (id: string) => string;
    logUrl: (id: string) => string;
  };
  let model: TaskListModel;
  let panel: AdvisorPanel;
  let onOpenReport: jest.Mock;

  beforeEach(async () => {
    tasks = [];
    client = {
      options: jest.fn(async () => OPTIONS_REPLY),
      inspect: jest.fn(async (source: string, path: string) => {
        if (path === './mixed') {
          // What the real client throws for the server's 400 {message}.
          throw new ServerConnection.ResponseError(
            new Response(JSON.stringify({ message: MIXED_RUNS }), {
              status: 400
            }),
            MIXED_RUNS
          );
        }
        if (path === LOG) {
          return {
            ok: true,
            summary: LOG_SUMMARY,
            path,
            version_hints: false,
            kind: 'training_log'
          };
        }
        if (path === TRACE) {
          return {
            ok: true,
            summary: 'PyTorch profiler trace (CPU), 1 rank, steps 1–3',
            path,
            version_hints: false
          };
        }
        return path === './profiling_dir1' || path === './baseline'
          ? {
              ok: true,
              summary: '2 ranks, text export, steps 12–14',
              path,
              version_hints: true
            }
          : { ok: false, message: 'no profiling data found in ' + path };
      }),
      inspectTrainingLog: jest.fn(async (path: string) =>
        path === LOG
          ? {
              ok: true,
              summary: LOG_SUMMARY,
              path,
              version_hints: false,
              kind: 'training_log'
            }
          : { ok: false, message: NOT_A_LOG }
      ),
      submit: jest.fn(async (body: ISubmitRequest) =>
        makeTask({ id: 'new', source: body.source, path: body.path })
      ),
      // The server's tasks are `tasks`: every reply starts the list over.
      listTasks: jest.fn(async () => listReply(tasks, { reset: true })),
      cancelOrDelete: jest.fn(async () => null),
      url: (path: string) => `http://host/base/${path}`,
      reportUrl: (id: string) =>
        `http://host/base/performance-advisor/reports/${id}`,
      logUrl: (id: string) =>
        `http://host/base/performance-advisor/api/tasks/${id}/log`
    };
    model = new TaskListModel({ source: client, paused: true, auto: false });
    onOpenReport = jest.fn();
    attachPanel();
    await waitFor(
      () => !!panel.node.querySelector('.jp-pa-form'),
      3000,
      'render'
    );
    await waitFor(
      () => client.options.mock.calls.length === 1,
      3000,
      'options'
    );
    await waitFor(
      () =>
        $(panel.node, '#jp-pa-submit-reason').textContent !==
        'Loading the analysis options…',
      3000,
      'options applied'
    );
  });

  /**
   * A panel on the test's model and client (reports in Chinese unless `options` says otherwise).
   */
  function attachPanel(options: Partial<AdvisorPanel.IOptions> = {}): void {
    panel = new AdvisorPanel({
      model,
      client: client as unknown as AdvisorClient,
      trans,
      onOpenReport,
      reportLanguage: () => 'zh',
      ...options
    });
    Widget.attach(panel, document.body);
  }

  afterEach(() => {
    panel.dispose();
    document.body.innerHTML = '';
  });

  const submitButton = () =>
    $(panel.node, '.jp-pa-submit') as HTMLButtonElement;
  const toggle = (name: string) =>
    (
      $(panel.node, `[data-switch="${name}"] input`) as HTMLInputElement
    ).click();
  const submitReason = () => $(panel.node, '#jp-pa-submit-reason').textContent;
  /** Valid profiling data entered, then Advanced Settings opened. */
  const openAdvancedSettings = async () => {
    setValue(
      $(panel.node, '#jp-pa-data-path') as HTMLInputElement,
      './profiling_dir1'
    );
    await waitFor(() => !submitButton().disabled, 3000, 'submit enabled');
    ($(panel.node, '#jp-pa-advanced-toggle') as HTMLButtonElement).click();
    await waitFor(
      () => !!panel.node.querySelector('#jp-pa-cann-version'),
      2000,
      'advanced settings'
    );
  };

  it('shows the Submit tab first, with tab semantics', () => {
    const tabs = Array.from(panel.node.querySelectorAll('[role="tab"]'));
    expect(tabs.map(t => t.getAttribute('data-tab'))).toEqual([
      'submit',
      'reports'
    ]);
    expect(tabs.map(t => t.getAttribute('aria-selected'))).toEqual([
      'true',
      'false'
    ]);
    expect(panel.currentTab).toBe('submit');
    expect(submitButton().disabled).toBe(true);
    // The reason is next to the button, and the button says where to read it.
    expect(submitReason()).toBe('Enter the path of the profiling data');
    expect(submitButton().getAttribute('aria-describedby')).toBe(
      'jp-pa-submit-reason'
    );
    const path = $(panel.node, '#jp-pa-data-path') as HTMLInputElement;
    // An example, not a value.
    expect(path.placeholder).toBe('e.g. ./profiling_dir1');
    expect(path.closest('.jp-InputGroup')).not.toBeNull();
    // JupyterLab's select, with its caret.
    const source = $(panel.node, '#jp-pa-data-source');
    expect(source.parentElement!.classList).toContain('jp-HTMLSelect');
    expect(source.parentElement!.querySelector('svg')).not.toBeNull();
    expect(panel.node.textContent).toContain('Compared Profiling Data');
    // "Advanced Settings" is written once: the title is the button that opens the section.
    expect(panel.node.textContent!.split('Advanced Settings').length - 1).toBe(
      1
    );
    const advanced = $(panel.node, '#jp-pa-advanced-toggle');
    expect(advanced.getAttribute('aria-expanded')).toBe('false');
  });

  it('validates the path as the user types (debounced) and submits', async () => {
    const path = $(panel.node, '#jp-pa-data-path') as HTMLInputElement;
    for (const partial of ['./p', './prof', './profiling_dir1']) {
      setValue(path, partial);
    }
    await waitFor(
      () => $(panel.node, '#jp-pa-data-validation').textContent === 'Checking…',
      2000,
      'Checking…'
    );
    expect(submitReason()).toBe('Checking the path…');
    await waitFor(
      () =>
        $(panel.node, '#jp-pa-data-validation').getAttribute('data-status') ===
        'ok',
      3000,
      'validation ok'
    );
    expect($(panel.node, '#jp-pa-data-validation').textContent).toContain(
      '2 ranks'
    );
    // Only the last value was sent to the server, asking for an answer in the UI's language (not
    // the report's: that one is Chinese here).
    expect(client.inspect.mock.calls).toEqual([
      ['local', './profiling_dir1', 'en']
    ]);
    await waitFor(() => !submitButton().disabled, 2000, 'submit enabled');

    tasks = [makeTask({ id: 'new', status: 'queued' })];
    submitButton().click();
    await waitFor(() => client.submit.mock.calls.length === 1, 2000, 'submit');
    expect(client.submit.mock.calls[0][0]).toEqual({
      source: 'local',
      path: './profiling_dir1',
      compare: null,
      options: {
        cann_version: '7.0.0',
        torch_version: '2.1.0',
        analysis_dimensions: ['computation', 'memory'],
        advisor_analyze_processes: 2,
        disable_profiling_comparison: false,
        disable_affinity_api: false
      },
      // The job parameters: the default output path, and the report language
      // of the setting, read at submission.
      output_path: 'performance_advisor_reports',
      language: 'zh'
    });
    await waitFor(() => panel.currentTab === 'reports', 2000, 'reports tab');
    await waitFor(
      () => !!panel.node.querySelector('tr[data-task-id="new"]'),
      2000,
      'new row'
    );
    expect(
      $(panel.node, '[data-tab="reports"]').getAttribute('aria-selected')
    ).toBe('true');
  });

  // {ok: false} for a path not usable yet; a 400 for a folder the analysis refuses (several runs).
  it.each([
    ['./nothing', 'no profiling data found in ./nothing'],
    ['./mixed', MIXED_RUNS]
  ])('shows the reason inline when %s is not usable', async (value, reason) => {
    setValue($(panel.node, '#jp-pa-data-path') as HTMLInputElement, value);
    await waitFor(
      () =>
        $(panel.node, '#jp-pa-data-validation').getAttribute('data-status') ===
        'error',
      3000,
      'validation error'
    );
    expect($(panel.node, '#jp-pa-data-validation').textContent).toBe(reason);
    expect(submitButton().disabled).toBe(true);
    expect(submitReason()).toBe(reason);
  });

  it('asks for the path check in the UI language', async () => {
    panel.dispose();
    attachPanel({ reportLanguage: () => 'en', lang: 'zh-CN' });
    await waitFor(
      () => !!panel.node.querySelector('#jp-pa-data-path'),
      3000,
      'render'
    );
    setValue(
      $(panel.node, '#jp-pa-data-path') as HTMLInputElement,
      './profiling_dir1'
    );
    await waitFor(
      () => client.inspect.mock.calls.length === 1,
      3000,
      'inspect'
    );
    expect(client.inspect.mock.calls[0]).toEqual([
      'local',
      './profiling_dir1',
      'zh'
    ]);
  });

  it('checks the OBS prefix without asking the server', async () => {
    setValue($(panel.node, '#jp-pa-data-source') as HTMLSelectElement, 'obs');
    setValue($(panel.node, '#jp-pa-data-path') as HTMLInputElement, 'bucket/x');
    await waitFor(
      () =>
        $(panel.node, '#jp-pa-data-validation').textContent ===
        'OBS paths must start with obs:// or s3://',
      2000,
      'OBS message'
    );
    await new Promise(resolve => setTimeout(resolve, 500));
    expect(client.inspect).not.toHaveBeenCalled();
    expect(submitButton().disabled).toBe(true);

    setValue(
      $(panel.node, '#jp-pa-data-path') as HTMLInputElement,
      'obs://bucket/profiling_dir1'
    );
    await waitFor(
      () => client.inspect.mock.calls.length === 1,
      2000,
      'inspect'
    );
    expect(client.inspect).toHaveBeenCalledWith(
      'obs',
      'obs://bucket/profiling_dir1',
      'en'
    );
  });

  it('builds the advanced settings from api/options and validates them', async () => {
    await openAdvancedSettings();
    const cann = $(panel.node, '#jp-pa-cann-version') as HTMLSelectElement;
    expect(Array.from(cann.options).map(o => o.value)).toEqual([
      '7.0.0',
      '8.0.RC1',
      '9.9.X'
    ]);
    expect(cann.value).toBe('7.0.0');
    const dimensions = Array.from(
      panel.node.querySelectorAll<HTMLInputElement>('.jp-pa-dimensions input')
    );
    expect(dimensions.map(d => [d.value, d.checked])).toEqual([
      ['computation', true],
      ['memory', true],
      ['dataloader', false]
    ]);
    const processes = $(panel.node, '#jp-pa-processes') as HTMLInputElement;
    expect([processes.value, processes.min, processes.max]).toEqual([
      '2',
      '1',
      '4'
    ]);
    expect(
      ($(panel.node, '#jp-pa-output-path') as HTMLInputElement).placeholder
    ).toBe('Default: performance_advisor_reports');
    expect(
      Array.from(
        panel.node.querySelectorAll('.jp-pa-dimension-name'),
        n => n.textContent
      )
    ).toEqual(['Computation', 'Memory', 'Data loading']);

    // Out of range: inline error and Submit disabled.
    setValue(processes, '9');
    await waitFor(() => submitButton().disabled, 2000, 'submit disabled');
    expect(
      panel.node.querySelector('.jp-pa-advanced [role="alert"]')!.textContent
    ).toBe('Enter a number from 1 to 4.');
    expect(submitReason()).toBe('Enter a number from 1 to 4.');
    setValue(processes, '3');
    await waitFor(() => !submitButton().disabled, 2000, 'submit enabled again');

    // No dimension: Submit disabled.
    dimensions[0].click();
    dimensions[1].click();
    await waitFor(() => submitButton().disabled, 2000, 'no dimension');
    dimensions[2].click();
    await waitFor(() => !submitButton().disabled, 2000, 'one dimension');

    setValue(cann, '9.9.X');
    panel.node
      .querySelectorAll<HTMLInputElement>(
        '.jp-pa-advanced .jp-pa-checkbox input'
      )[4]
      .click();
    setValue(
      $(panel.node, '#jp-pa-output-path') as HTMLInputElement,
      ' out/dir '
    );
    await waitFor(() => cann.value === '9.9.X', 2000, 'cann');

    submitButton().click();
    await waitFor(() => client.submit.mock.calls.length === 1, 2000, 'submit');
    expect(client.submit.mock.calls[0][0].options).toEqual({
      cann_version: '9.9.X',
      torch_version: '2.1.0',
      analysis_dimensions: ['dataloader'],
      advisor_analyze_processes: 3,
      disable_profiling_comparison: false,
      disable_affinity_api: true
    });
    expect(client.submit.mock.calls[0][0].output_path).toBe('out/dir');
  });

  it('hides the CANN and torch hints once the path is a PyTorch profiler trace', async () => {
    await openAdvancedSettings();
    const note = () => $(panel.node, '#jp-pa-version-note').textContent;
    expect(note()).toBe(
      'The CANN and torch versions apply to Ascend data only, where the data records none.'
    );
    setValue(
      $(panel.node, '#jp-pa-cann-version') as HTMLSelectElement,
      '8.0.RC1'
    );
    setValue($(panel.node, '#jp-pa-data-path') as HTMLInputElement, TRACE);
    await waitFor(
      () => !panel.node.querySelector('#jp-pa-cann-version'),
      3000,
      'hints hidden'
    );
    expect(panel.node.querySelector('#jp-pa-torch-version')).toBeNull();
    expect(note()).toBe(
      'The data is a PyTorch profiler trace: the CANN and torch versions do not apply to it.'
    );
    expect($(panel.node, '#jp-pa-data-validation').textContent).toBe(
      'PyTorch profiler trace (CPU), 1 rank, steps 1–3'
    );
    await waitFor(() => !submitButton().disabled, 2000, 'submit enabled');
    submitButton().click();
    await waitFor(() => client.submit.mock.calls.length === 1, 2000, 'submit');
    const request = client.submit.mock.calls[0][0];
    // The hint chosen for the Ascend data is not sent for the trace: the defaults are.
    expect([request.path, request.options.cann_version]).toEqual([
      TRACE,
      '7.0.0'
    ]);
    expect(request.options.torch_version).toBe('2.1.0');
  });

  it('takes an optional training log beside the profile, checked as the user types', async () => {
    setValue(
      $(panel.node, '#jp-pa-data-path') as HTMLInputElement,
      './profiling_dir1'
    );
    await waitFor(() => !submitButton().disabled, 3000, 'submit enabled');
    // No log: no devices or sequence length to ask for.
    expect(panel.node.querySelector('#jp-pa-devices')).toBeNull();
    const logValidation = () => $(panel.node, '#jp-pa-training-log-validation');

    const log = $(panel.node, '#jp-pa-training-log') as HTMLInputElement;
    setValue(log, './notes.txt');
    await waitFor(
      () => logValidation().getAttribute('data-status') === 'error',
      3000,
      'log refused'
    );
    expect(logValidation().textContent).toBe(NOT_A_LOG);
    expect(submitButton().disabled).toBe(true);
    expect(submitReason()).toBe(`Training log: ${NOT_A_LOG}`);

    setValue(log, LOG);
    await waitFor(
      () => logValidation().getAttribute('data-status') === 'ok',
      3000,
      'log ok'
    );
    expect(logValidation().textContent).toBe(LOG_SUMMARY);
    expect(client.inspectTrainingLog.mock.calls.map(call => call[0])).toEqual([
      './notes.txt',
      LOG
    ]);
    // The profile keeps its checks: the training log is not asked of it.
    expect(client.inspect.mock.calls.map(call => call[1])).toEqual([
      './profiling_dir1'
    ]);

    // Devices and sequence length: empty takes them from the log, a number is checked.
    const devices = $(panel.node, '#jp-pa-devices') as HTMLInputElement;
    setValue(devices, '0');
    await waitFor(
      () => submitReason() === 'Enter a number from 1 to 1000000.',
      2000,
      'devices refused'
    );
    expect(submitButton().disabled).toBe(true);
    expect($(panel.node, '#jp-pa-devices-validation').textContent).toBe(
      'Enter a number from 1 to 1000000.'
    );
    setValue(devices, '8');
    await waitFor(() => !submitButton().disabled, 2000, 'submit enabled');
    expect(($(panel.node, '#jp-pa-seq-length') as HTMLInputElement).value).toBe(
      ''
    );

    submitButton().click();
    await waitFor(() => client.submit.mock.calls.length === 1, 2000, 'submit');
    const request = client.submit.mock.calls[0][0];
    expect([request.path, request.training_log, request.devices]).toEqual([
      './profiling_dir1',
      LOG,
      8
    ]);
    // Not given: the log's own value is used.
    expect('seq_length' in request).toBe(false);
  });

  it('analyses a training log given as the data path alone', async () => {
    await openAdvancedSettings();
    setValue($(panel.node, '#jp-pa-data-path') as HTMLInputElement, LOG);
    await waitFor(
      () => $(panel.node, '#jp-pa-data-validation').textContent === LOG_SUMMARY,
      3000,
      'log recognised'
    );
    // The Ascend-only hints are hidden, and said why; no second log is asked for, but the
    // devices and sequence length are.
    await waitFor(
      () => !panel.node.querySelector('#jp-pa-cann-version'),
      2000,
      'hints hidden'
    );
    expect($(panel.node, '#jp-pa-version-note').textContent).toBe(
      'The data is a training log: the CANN and torch versions do not apply to it.'
    );
    expect(panel.node.querySelector('#jp-pa-training-log')).toBeNull();
    setValue($(panel.node, '#jp-pa-seq-length') as HTMLInputElement, '4096');
    await waitFor(() => !submitButton().disabled, 2000, 'submit enabled');
    submitButton().click();
    await waitFor(() => client.submit.mock.calls.length === 1, 2000, 'submit');
    const request = client.submit.mock.calls[0][0];
    expect([request.path, request.seq_length]).toEqual([LOG, 4096]);
    expect('training_log' in request).toBe(false);
    expect('devices' in request).toBe(false);
    expect(client.inspectTrainingLog).not.toHaveBeenCalled();
  });

  it('requires a valid baseline when comparing', async () => {
    setValue(
      $(panel.node, '#jp-pa-data-path') as HTMLInputElement,
      './profiling_dir1'
    );
    await waitFor(() => !submitButton().disabled, 3000, 'submit enabled');
    toggle('compare');
    await waitFor(
      () => !!panel.node.querySelector('#jp-pa-compare-path'),
      2000,
      'compare input'
    );
    expect(submitButton().disabled).toBe(true);
    expect(submitReason()).toBe(
      'Enter the path of the compared profiling data'
    );
    setValue(
      $(panel.node, '#jp-pa-compare-path') as HTMLInputElement,
      './baseline'
    );
    await waitFor(() => !submitButton().disabled, 3000, 'compare ok');
    submitButton().click();
    await waitFor(() => client.submit.mock.calls.length === 1, 2000, 'submit');
    expect(client.submit.mock.calls[0][0].compare).toEqual({
      source: 'local',
      path: './baseline'
    });
  });

  it('refuses an output folder inside the profiling data, next to the field', async () => {
    const message =
      'The output folder is inside the profiling data, which is read-only: choose a folder outside it.';
    await openAdvancedSettings();
    const output = $(panel.node, '#jp-pa-output-path') as HTMLInputElement;
    setValue(output, './profiling_dir1/reports');
    await waitFor(() => submitButton().disabled, 2000, 'submit disabled');
    expect($(panel.node, '#jp-pa-output-validation').textContent).toBe(message);
    expect(output.getAttribute('aria-invalid')).toBe('true');
    expect(submitReason()).toBe(message);
    setValue(output, './reports');
    await waitFor(() => !submitButton().disabled, 2000, 'submit enabled');
    expect(panel.node.querySelector('#jp-pa-output-validation')).toBeNull();
  });

  it("shows the server's message when the submission is refused", async () => {
    client.submit.mockRejectedValueOnce(
      new Error('output_path is outside the server root')
    );
    setValue(
      $(panel.node, '#jp-pa-data-path') as HTMLInputElement,
      './profiling_dir1'
    );
    await waitFor(() => !submitButton().disabled, 3000, 'submit enabled');
    submitButton().click();
    await waitFor(
      () => !!panel.node.querySelector('.jp-pa-submit-error'),
      2000,
      'error shown'
    );
    expect($(panel.node, '.jp-pa-submit-error').textContent).toBe(
      'output_path is outside the server root'
    );
    expect(panel.currentTab).toBe('submit');
  });

  it('lists tasks with status, progress, reasons and actions', async () => {
    tasks = [
      makeTask({
        id: 'run',
        status: 'analyzing',
        created: '2026-11-22T10:03:00Z',
        started: '2026-11-22T10:03:01Z',
        progress: { stage: 'done', done: 4, total: 4 }
      }),
      makeTask({
        id: 'bad',
        status: 'failed',
        source: 'obs',
        path: 'obs://bucket/profiling_dir1',
        created: '2026-11-22T10:02:00Z',
        error: 'OBS source is not supported yet'
      }),
      makeTask({
        id: 'ok',
        status: 'success',
        title: 'profiling_dir1',
        compare: { source: 'local', path: './baseline' },
        created: '2026-11-22T10:01:00Z',
        started: '2026-11-22T10:01:00Z',
        finished: '2026-11-22T10:01:07Z',
        reports: {
          html: 'performance-advisor/reports/ok',
          xlsx: 'performance-advisor/reports/ok/xlsx',
          json: 'performance-advisor/reports/ok/json'
        }
      })
    ];
    ($(panel.node, '[data-tab="reports"]') as HTMLButtonElement).click();
    await waitFor(
      () => panel.node.querySelectorAll('tr[data-task-id]').length === 3,
      2000,
      'rows'
    );
    const rows = Array.from(
      panel.node.querySelectorAll<HTMLTableRowElement>('tr[data-task-id]')
    );
    expect(rows.map(r => [r.dataset.taskId, r.dataset.status])).toEqual([
      ['run', 'analyzing'],
      ['bad', 'failed'],
      ['ok', 'success']
    ]);
    const headers = Array.from(panel.node.querySelectorAll('th')).map(
      th => th.textContent
    );
    expect(headers).toEqual([
      'Data path',
      'Compared path',
      'Submitted',
      'Duration',
      'Status',
      'Actions'
    ]);

    const [run, bad, ok] = rows;
    const progress = run.querySelector('progress')!;
    expect(run.querySelector('.jp-pa-status')!.textContent).toContain(
      'Analyzing'
    );
    expect([progress.value, progress.max]).toEqual([4, 4]);
    // The last stage before the result reads as work in progress, never "done (4/4)".
    expect(run.querySelector('.jp-pa-stage')!.textContent).toBe(
      'Writing the report'
    );
    expect(run.textContent).not.toContain('done');
    expect(run.querySelector('[data-action="cancel"]')).not.toBeNull();
    expect(run.querySelector('[data-action="view"]')).toBeNull();

    // The reason opens under the row, with a link to the task log.
    const details = bad.querySelector(
      '.jp-pa-details-toggle'
    ) as HTMLButtonElement;
    expect(details.textContent).toBe('Details');
    expect(details.getAttribute('aria-expanded')).toBe('false');
    expect(panel.node.querySelector('[data-details-for="bad"]')).toBeNull();
    details.click();
    await waitFor(
      () => !!panel.node.querySelector('[data-details-for="bad"]'),
      2000,
      'details row'
    );
    const reason = $(panel.node, '[data-details-for="bad"]');
    expect(details.getAttribute('aria-expanded')).toBe('true');
    expect(reason.textContent).toContain(
      'Reason: OBS source is not supported yet'
    );
    expect(reason.querySelector('a')!.getAttribute('href')).toBe(
      'http://host/base/performance-advisor/api/tasks/bad/log'
    );
    expect(ok.querySelector('.jp-pa-details-toggle')).toBeNull();
    expect(bad.querySelector('[data-action="delete"]')).not.toBeNull();
    expect(bad.querySelector('[data-action="cancel"]')).toBeNull();

    expect(ok.cells[1].textContent).toBe('./baseline');
    expect(ok.cells[3].textContent).toBe('7 s');
    expect(ok.cells[2].textContent).toBe(
      new Intl.DateTimeFormat(undefined, {
        dateStyle: 'medium',
        timeStyle: 'medium'
      }).format(new Date('2026-11-22T10:01:00Z'))
    );
    expect(ok.querySelector('[data-action="xlsx"]')!.getAttribute('href')).toBe(
      'http://host/base/performance-advisor/reports/ok/xlsx'
    );
    expect(
      ok.querySelector('[data-action="json"]')!.hasAttribute('download')
    ).toBe(true);
    (ok.querySelector('[data-action="view"]') as HTMLButtonElement).click();
    expect(onOpenReport).toHaveBeenCalledWith(tasks[2]);

    (run.querySelector('[data-action="cancel"]') as HTMLButtonElement).click();
    await waitFor(
      () => client.cancelOrDelete.mock.calls.length === 1,
      2000,
      'cancel'
    );
    expect(client.cancelOrDelete).toHaveBeenCalledWith('run');
  });

  it('asks before deleting a report', async () => {
    tasks = [makeTask({ id: 'done', status: 'cancelled' })];
    await model.refresh();
    panel.setTab('reports');
    await waitFor(
      () => !!panel.node.querySelector('[data-action="delete"]'),
      2000,
      'delete button'
    );
    ($(panel.node, '[data-action="delete"]') as HTMLButtonElement).click();
    await waitFor(() => !!document.querySelector('.jp-Dialog'), 2000, 'dialog');
    expect(document.querySelector('.jp-Dialog')!.textContent).toContain(
      'Delete this report? The report files are deleted; the profiling data is not touched.'
    );
    expect(client.cancelOrDelete).not.toHaveBeenCalled();
    (
      document.querySelector('.jp-Dialog .jp-mod-warn') as HTMLButtonElement
    ).click();
    await waitFor(
      () => client.cancelOrDelete.mock.calls.length === 1,
      2000,
      'delete'
    );
    expect(client.cancelOrDelete).toHaveBeenCalledWith('done');
  });

  it('shows older analyses on demand', async () => {
    const page = (seq: number) =>
      makeTask({ id: `t${seq}`, seq, change: seq, status: 'success' });
    // A server with three tasks, in pages of two.
    client.listTasks.mockImplementation(async (query: ITaskListQuery) =>
      query.before === 2
        ? listReply([page(1)], { next: null })
        : listReply([page(3), page(2)], { next: 2, reset: true })
    );
    await model.refresh();
    panel.setTab('reports');
    const more = () =>
      panel.node.querySelector<HTMLButtonElement>('.jp-pa-load-more');
    await waitFor(() => !!more(), 2000, 'the button for older analyses');
    expect(more()!.textContent).toBe('Show older analyses');
    more()!.click();
    await waitFor(() => !more(), 2000, 'the last page');
    expect(client.listTasks).toHaveBeenLastCalledWith({ limit: 50, before: 2 });
    const rows = panel.node.querySelectorAll('tr[data-task-id]');
    expect(Array.from(rows, row => row.getAttribute('data-task-id'))).toEqual([
      't3',
      't2',
      't1'
    ]);
  });

  it('shows the empty state', async () => {
    panel.setTab('reports');
    await waitFor(
      () =>
        (panel.node.textContent || '').includes(
          'No analyses yet. Submit one from the Submit tab.'
        ),
      2000,
      'empty state'
    );
  });

  it('polls only while visible', () => {
    expect(model.paused).toBe(false);
    panel.hide();
    expect(model.paused).toBe(true);
    panel.show();
    expect(model.paused).toBe(false);
    Widget.detach(panel);
    expect(model.paused).toBe(true);
  });
});
