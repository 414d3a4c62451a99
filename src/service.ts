import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import type { Widget } from '@lumino/widgets';

import { isFinished, sanitizeInterval } from './model';
import { errorStatus } from './request';
import { ReportLanguage } from './settings';
import {
  AdvisorTab,
  DEFAULT_REFRESH_INTERVAL,
  IOptionsReply,
  IPerformanceAdvisor,
  ISubmitRequest,
  ITask,
  ITaskSummary
} from './tokens';
import { schemaDefaults } from './validation';

/**
 * The part of `AdvisorClient` the service uses.
 */
export interface IAdvisorRequests {
  options(): Promise<IOptionsReply>;
  submit(request: ISubmitRequest): Promise<ITask>;
  getTask(id: string): Promise<ITask>;
  createNotebook(id: string): Promise<string>;
}

/**
 * What the service asks of the application shell (the plugin gives these).
 */
export interface IAdvisorShell {
  /**
   * Open the report tab of a successful task.
   */
  openReport(task: ITaskSummary): Promise<Widget>;
  /**
   * Open the panel, on `tab` when given.
   */
  openPanel(tab?: AdvisorTab): Promise<Widget>;
  /**
   * Open a document by its path relative to the server root (`docmanager:open`).
   */
  openDocument(path: string): Promise<unknown>;
  /**
   * The report language a submission asks for (the `reportLanguage` setting).
   */
  reportLanguage(): ReportLanguage;
}

/**
 * The request that analyses `path` (against `compare`) as the Submit form does without its
 * advanced settings: every option at the server's default.
 */
export function defaultSubmitRequest(
  reply: IOptionsReply,
  path: string,
  compare: string | null,
  language: ReportLanguage
): ISubmitRequest {
  return {
    source: 'local',
    path,
    compare: compare ? { source: 'local', path: compare } : null,
    options: schemaDefaults(reply.options),
    output_path: reply.job.output_path.default,
    language
  };
}

/**
 * The implementation of `IPerformanceAdvisor`.
 *
 * It follows the tasks submitted through it (a `Poll` on `GET api/tasks/{id}` while one is
 * unfinished, standing by while the browser tab is hidden) and the tasks the Reports tab lists
 * (`noteTasks`), and emits `taskChanged` once per new state of a task.
 */
export class AdvisorService implements IPerformanceAdvisor, IDisposable {
  constructor(options: AdvisorService.IOptions) {
    this._requests = options.requests;
    this._shell = options.shell;
    const interval = sanitizeInterval(
      options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL
    );
    this._poll = new Poll({
      auto: true,
      factory: () => this._refreshFollowed(),
      frequency: { interval, backoff: true, max: interval * 6 },
      name: 'performance-advisor:followed-tasks',
      standby: () => this._followed.size === 0 || 'when-hidden'
    });
  }

  get taskChanged(): ISignal<this, ITaskSummary> {
    return this._taskChanged;
  }

  /**
   * The ids of the submitted tasks still followed (not finished yet).
   */
  get followed(): ReadonlyArray<string> {
    return [...this._followed];
  }

  /**
   * How often followed tasks are fetched, in milliseconds.
   */
  get refreshInterval(): number {
    return this._poll.frequency.interval;
  }
  set refreshInterval(value: number) {
    const interval = sanitizeInterval(value);
    this._poll.frequency = {
      ...this._poll.frequency,
      interval,
      max: interval * 6
    };
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  async submit(request: ISubmitRequest): Promise<ITask> {
    const task = await this._requests.submit(request);
    this.noteTasks([task]);
    if (!isFinished(task.status)) {
      this._followed.add(task.id);
    }
    return task;
  }

  async analyze(path: string, compare: string | null = null): Promise<ITask> {
    const reply = await this._requests.options();
    return this.submit(
      defaultSubmitRequest(reply, path, compare, this._shell.reportLanguage())
    );
  }

  async getTask(id: string): Promise<ITask> {
    const task = await this._requests.getTask(id);
    this.noteTasks([task]);
    return task;
  }

  async openReport(taskId: string): Promise<Widget> {
    const task = await this.getTask(taskId);
    if (task.status !== 'success' || !task.reports.html) {
      throw new Error(
        `Task ${taskId} has no report to open (its status is ${task.status})`
      );
    }
    return this._shell.openReport(task);
  }

  async openNotebook(taskId: string): Promise<string> {
    const path = await this._requests.createNotebook(taskId);
    await this._shell.openDocument(path);
    return path;
  }

  openPanel(tab?: AdvisorTab): Promise<Widget> {
    return this._shell.openPanel(tab);
  }

  /**
   * Tasks seen elsewhere (the Reports tab's list): `taskChanged` for each one newer than last seen.
   */
  noteTasks(tasks: ReadonlyArray<ITaskSummary>): void {
    for (const task of tasks) {
      const seen = this._changes.get(task.id);
      if (seen !== undefined && seen >= task.change) {
        continue;
      }
      this._changes.set(task.id, task.change);
      if (isFinished(task.status)) {
        this._followed.delete(task.id);
      }
      this._taskChanged.emit(task);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _refreshFollowed(): Promise<void> {
    const tasks = await Promise.all(
      [...this._followed].map(id =>
        this._requests.getTask(id).catch(error => {
          if (errorStatus(error) === 404) {
            // Deleted meanwhile: nothing left to follow.
            this._followed.delete(id);
          }
          return null;
        })
      )
    );
    if (!this.isDisposed) {
      this.noteTasks(tasks.filter((task): task is ITask => task !== null));
    }
  }

  private _requests: IAdvisorRequests;
  private _shell: IAdvisorShell;
  private _poll: Poll;
  private _followed = new Set<string>();
  // The `change` of each task last emitted.
  private _changes = new Map<string, number>();
  private _taskChanged = new Signal<this, ITaskSummary>(this);
}

/**
 * A namespace for AdvisorService statics.
 */
export namespace AdvisorService {
  /**
   * Instantiation options.
   */
  export interface IOptions {
    requests: IAdvisorRequests;
    shell: IAdvisorShell;
    /**
     * How often followed tasks are fetched, in milliseconds (default 5000).
     */
    refreshInterval?: number;
  }
}
