import {
  IAnalysisOptions,
  IOptionsReply,
  ITask,
  ITaskListReply
} from '../tokens';

/**
 * A task as the server would send it.
 */
export function makeTask(overrides: Partial<ITask> = {}): ITask {
  return {
    id: 'a1b2c3',
    seq: 1,
    change: 1,
    status: 'queued',
    source: 'local',
    path: 'profiling_dir1',
    compare: null,
    options: {
      cann_version: '8.0.RC1',
      torch_version: '2.1.0',
      analysis_dimensions: ['computation', 'communication'],
      advisor_analyze_processes: 1,
      disable_profiling_comparison: false,
      disable_affinity_api: false
    },
    output_path: 'performance_advisor_reports',
    language: 'en',
    training_log: '',
    devices: null,
    seq_length: null,
    created: '2026-11-22T10:00:00+00:00',
    started: null,
    finished: null,
    progress: null,
    error: null,
    title: 'profiling_dir1',
    reports: { html: null, xlsx: null, json: null },
    ...overrides
  };
}

/**
 * A `GET api/tasks` reply: a last page of `tasks` unless `overrides` say otherwise.
 */
export function listReply(
  tasks: ITask[],
  overrides: Partial<ITaskListReply> = {}
): ITaskListReply {
  return {
    tasks,
    next: null,
    deleted: [],
    token: Math.max(0, ...tasks.map(task => task.change)),
    reset: false,
    ...overrides
  };
}

/**
 * The `GET api/options` reply (choices deliberately differ from the Python defaults,
 * to prove the form takes them from the server).
 */
export const OPTIONS_REPLY: IOptionsReply = {
  options: {
    cann_version: {
      default: '7.0.0',
      label: 'CANN version',
      choices: ['7.0.0', '8.0.RC1', '9.9.X']
    },
    torch_version: {
      default: '2.1.0',
      label: 'Torch version',
      choices: ['1.11.0', '2.1.0']
    },
    analysis_dimensions: {
      default: ['computation', 'memory'],
      label: 'Analysis dimensions',
      choices: ['computation', 'memory', 'dataloader']
    },
    advisor_analyze_processes: {
      default: 2,
      label: 'Analysis processes',
      min: 1,
      max: 4
    },
    disable_profiling_comparison: {
      default: false,
      label: 'Disable profiling comparison'
    },
    disable_affinity_api: {
      default: false,
      label: 'Disable affinity API check'
    }
  },
  job: {
    output_path: {
      default: 'performance_advisor_reports',
      label: 'Output path'
    },
    language: {
      default: 'en',
      label: 'Report language',
      choices: ['en', 'zh']
    },
    training_log: { default: '', label: 'Training log' },
    devices: { default: null, label: 'Devices', min: 1, max: 1_000_000 },
    seq_length: {
      default: null,
      label: 'Sequence length',
      min: 1,
      max: 100_000_000
    }
  },
  sources: ['local', 'obs']
};

/**
 * The analysis options of `OPTIONS_REPLY`'s defaults, written out: what a submission without
 * Advanced Settings sends.
 */
export const OPTIONS_REPLY_DEFAULTS: IAnalysisOptions = {
  cann_version: '7.0.0',
  torch_version: '2.1.0',
  analysis_dimensions: ['computation', 'memory'],
  advisor_analyze_processes: 2,
  disable_profiling_comparison: false,
  disable_affinity_api: false
};

/**
 * Wait until `predicate` holds (real timers), or fail after `timeout` ms.
 */
export async function waitFor(
  predicate: () => boolean,
  timeout = 3000,
  message = 'condition'
): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeout) {
      throw new Error(`Timed out waiting for ${message}`);
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}
