/**
 * TypeScript mirror of the Performance Advisor REST API (docs/architecture.md §3.4).
 *
 * The Python side (`advisor/options.py`, `advisor/server/`) is the single source of truth:
 * choice lists and defaults are fetched from `GET api/options`, never hard-coded here, and
 * the option types come from `./options`, generated from the Python model.
 */

import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';
import type { Widget } from '@lumino/widgets';

import {
  IAnalysisOptions,
  IJobParameters,
  IJobSchema,
  IOptionsSchema
} from './options';

export * from './options';

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
  /**
   * Analyse with the default options and show the Reports tab. Args: `{path?}`, a folder or trace
   * file relative to the server root; without it, the item selected in the file browser.
   */
  export const analyze = 'performance-advisor:analyze';
  /**
   * Compare two profiling folders with the default options and show the Reports tab. Args:
   * `{path?, baseline?}`; without them, the two folders selected in the file browser, and a dialog
   * asks which one is the baseline.
   */
  export const compare = 'performance-advisor:compare';
  /**
   * Write a successful task's report as a notebook next to it and open the notebook. Args: `{id}`.
   */
  export const openNotebook = 'performance-advisor:open-notebook';
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
 * The reply of `GET api/options`.
 */
export interface IOptionsReply {
  options: IOptionsSchema;
  job: IJobSchema;
  sources: SourceKind[];
}

/**
 * What an input path holds: profiling data (Ascend, PyTorch profiler) or a training log (LLaMA-Factory,
 * Megatron/MindSpeed, HuggingFace Trainer). `api/inspect` says which; asked with
 * `input=training_log`, it accepts a training log only.
 */
export type InputKind = 'profile' | 'training_log';

/**
 * The reply of `GET api/inspect`.
 */
export interface IInspectReply {
  ok: boolean;
  /**
   * What was found (when `ok`), e.g. "2 ranks, text export, steps 12–14" or "PyTorch profiler
   * trace (GPU: NVIDIA A100-SXM4-80GB ×8), 8 ranks, steps 1–3".
   */
  summary?: string;
  /**
   * The resolved path, relative to the server root (local sources).
   */
  path?: string;
  /**
   * Whether the CANN/torch version hints apply to the data (when `ok`, local sources): true for
   * Ascend data, false for a PyTorch profiler trace.
   */
  version_hints?: boolean;
  /**
   * What the path holds (when `ok`, local sources): profiling data or a training log.
   */
  kind?: InputKind;
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
 * An analysis task as the task list gives it: what the Reports table shows
 * (`TASK_SUMMARY_KEYS` in `advisor/server/models.py`).
 */
export interface ITaskSummary {
  id: string;
  /**
   * The task's place in submission order: the `before` cursor of the next page.
   */
  seq: number;
  /**
   * When the task was last written (the store's change counter): of two copies
   * of a task, the one with the higher `change` is the newer.
   */
  change: number;
  status: TaskStatus;
  path: string;
  compare: IDataRef | null;
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
 * An analysis task in full (`GET api/tasks/{id}`, the answer of `POST api/tasks`):
 * the summary, its job parameters and what the table does not show (`TASK_KEYS`).
 */
export interface ITask extends ITaskSummary, IJobParameters {
  source: SourceKind;
  options: IAnalysisOptions;
}

/**
 * The body of `POST api/tasks`: the job parameters take the server's defaults
 * when absent.
 */
export interface ISubmitRequest extends Partial<IJobParameters> {
  source: SourceKind;
  path: string;
  compare: IDataRef | null;
  options: IAnalysisOptions;
}

/**
 * The query of `GET api/tasks`: a page (`limit`, `before`) or the changes after
 * a token (`since`, with `limit` the most changes one reply may carry).
 */
export interface ITaskListQuery {
  limit?: number;
  before?: number;
  since?: number;
}

/**
 * The reply of `GET api/tasks` (`TASK_LIST_KEYS`).
 */
export interface ITaskListReply {
  /**
   * A page of tasks, newest first; with `since`, the tasks written after it.
   */
  tasks: ITaskSummary[];
  /**
   * The `before` of the following page, `null` on the last one (and with `since`).
   */
  next: number | null;
  /**
   * With `since`: the ids of the tasks deleted after it.
   */
  deleted: string[];
  /**
   * The `since` of the next poll.
   */
  token: number;
  /**
   * The `since` token could not be answered (too many changes, another
   * database): the reply is the first page; start over from it.
   */
  reset: boolean;
}

/**
 * Tasks per page of the Reports table.
 */
export const TASK_PAGE_SIZE = 50;

/**
 * The reply of `DELETE api/tasks/{id}` when a task was cancelled.
 */
export interface ICancelReply {
  task: ITask;
}

/**
 * The reply of `POST api/tasks/{id}/notebook`.
 */
export interface INotebookReply {
  /**
   * The notebook written, relative to the server root (what `docmanager:open` takes).
   */
  path: string;
}

/**
 * The panel of the public API: which tab to show.
 */
export type AdvisorTab = 'submit' | 'reports';

/**
 * The public token of the Performance Advisor extension: what other extensions may use of it.
 */
export const IPerformanceAdvisor = new Token<IPerformanceAdvisor>(
  'jupyterlab-performance-advisor:IPerformanceAdvisor',
  'Submit Performance Advisor analyses, follow their tasks and open their reports.'
);

/**
 * The Performance Advisor's functions, for other extensions (as jupyterlab-git's `IGitExtension`).
 *
 * Requests go through the extension's REST client (token and XSRF handled by JupyterLab).
 */
export interface IPerformanceAdvisor {
  /**
   * Submit an analysis (`POST api/tasks`); the task is followed until it finishes (`taskChanged`).
   *
   * @throws ServerConnection.ResponseError with the server's one-line message (400 for a refused
   * request, 429 when too many analyses wait)
   */
  submit(request: ISubmitRequest): Promise<ITask>;

  /**
   * Submit an analysis of `path` (a folder or trace file relative to the server root), against
   * `compare` when given, with the server's default options and the report language of the
   * settings.
   */
  analyze(path: string, compare?: string | null): Promise<ITask>;

  /**
   * One task as the server has it now (`GET api/tasks/{id}`).
   */
  getTask(id: string): Promise<ITask>;

  /**
   * Open (or activate) the HTML report of a successful task in a main-area tab.
   */
  openReport(taskId: string): Promise<Widget>;

  /**
   * Write a successful task's report as a notebook next to it (never over a file) and open it.
   *
   * @returns The notebook's path, relative to the server root.
   */
  openNotebook(taskId: string): Promise<string>;

  /**
   * Open (or activate) the panel, on the given tab (default: as it was).
   */
  openPanel(tab?: AdvisorTab): Promise<Widget>;

  /**
   * Emitted with a task each time this extension sees it change (a newer `change`): the tasks
   * submitted through it until they finish, and every task the Reports tab lists.
   */
  readonly taskChanged: ISignal<IPerformanceAdvisor, ITaskSummary>;
}
