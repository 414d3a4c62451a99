/**
 * TypeScript mirror of the Performance Advisor REST API (docs/architecture.md §3.4).
 *
 * The Python side (`advisor/options.py`, `advisor/server/`) is the single source of truth:
 * choice lists and defaults are fetched from `GET api/options`, never hard-coded here.
 */

/**
 * The plugin id.
 */
export const PLUGIN_ID = 'jupyterlab-performance-advisor:plugin';

/**
 * The translation domain of the extension.
 */
export const TRANSLATION_DOMAIN = 'jupyterlab_performance_advisor';

/**
 * The URL namespace of the server extension, relative to the server base URL.
 */
export const URL_NAMESPACE = 'performance-advisor';

/**
 * Default refresh interval of the task list, in milliseconds.
 */
export const DEFAULT_REFRESH_INTERVAL = 5000;

/**
 * Command ids.
 */
export namespace CommandIDs {
  /**
   * Open (or activate) the Performance Advisor panel.
   */
  export const open = 'performance-advisor:open';
  /**
   * Open the HTML report of a task in a main-area tab. Args: `{id, title}`.
   */
  export const openReport = 'performance-advisor:open-report';
}

/**
 * Where the profiling data lives.
 */
export type SourceKind = 'local' | 'obs';

/**
 * The life cycle of an analysis task.
 */
export type TaskStatus =
  'queued' | 'analyzing' | 'success' | 'failed' | 'cancelled' | 'interrupted';

/**
 * Every task status, in life-cycle order.
 */
export const TASK_STATUSES: ReadonlyArray<TaskStatus> = [
  'queued',
  'analyzing',
  'success',
  'failed',
  'cancelled',
  'interrupted'
];

/**
 * A profiling data location.
 */
export interface IDataRef {
  source: SourceKind;
  path: string;
}

/**
 * The analysis options (REST names, see `advisor/options.py`).
 */
export interface IAnalysisOptions {
  cann_version: string;
  torch_version: string;
  analysis_dimensions: string[];
  advisor_analyze_processes: number;
  disable_profiling_comparison: boolean;
  disable_affinity_api: boolean;
  output_path: string;
}

/**
 * A single-choice option.
 */
export interface IChoiceOption {
  default: string;
  choices: string[];
}

/**
 * A multiple-choice option.
 */
export interface IMultiChoiceOption {
  default: string[];
  choices: string[];
}

/**
 * An integer option with a range.
 */
export interface IRangeOption {
  default: number;
  min: number;
  max: number;
}

/**
 * The option schema served by `GET api/options`.
 */
export interface IOptionsSchema {
  cann_version: IChoiceOption;
  torch_version: IChoiceOption;
  analysis_dimensions: IMultiChoiceOption;
  advisor_analyze_processes: IRangeOption;
  disable_profiling_comparison: { default: boolean };
  disable_affinity_api: { default: boolean };
  output_path: { default: string };
}

/**
 * The reply of `GET api/options`.
 */
export interface IOptionsReply {
  options: IOptionsSchema;
  sources: SourceKind[];
}

/**
 * The reply of `GET api/inspect`.
 */
export interface IInspectReply {
  ok: boolean;
  /**
   * What was found (when `ok`), e.g. "2 ranks, text export, steps 12–14".
   */
  summary?: string;
  /**
   * The resolved path, relative to the server root (local sources).
   */
  path?: string;
  /**
   * One-line reason (when not `ok`).
   */
  message?: string;
}

/**
 * The progress of a running task.
 */
export interface ITaskProgress {
  stage: string;
  done: number;
  total: number;
}

/**
 * Report URLs, relative to the server base URL (`null` when not produced).
 */
export interface ITaskReports {
  html: string | null;
  xlsx: string | null;
  json: string | null;
}

/**
 * An analysis task.
 */
export interface ITask {
  id: string;
  status: TaskStatus;
  source: SourceKind;
  path: string;
  compare: IDataRef | null;
  options: IAnalysisOptions;
  /**
   * ISO 8601 timestamps.
   */
  created: string;
  started: string | null;
  finished: string | null;
  progress: ITaskProgress | null;
  error: string | null;
  /**
   * The profile name, used as the report tab title.
   */
  title: string;
  reports: ITaskReports;
}

/**
 * The body of `POST api/tasks`.
 */
export interface ISubmitRequest {
  source: SourceKind;
  path: string;
  compare: IDataRef | null;
  options: IAnalysisOptions;
  /**
   * The report language; the server's default (English) when absent.
   */
  language?: 'en' | 'zh';
}

/**
 * The reply of `GET api/tasks`.
 */
export interface ITaskListReply {
  tasks: ITask[];
}

/**
 * The reply of `DELETE api/tasks/{id}` when a task was cancelled.
 */
export interface ICancelReply {
  task: ITask;
}
