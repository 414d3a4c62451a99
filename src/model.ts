import { TranslationBundle } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError } from './request';
import {
  DEFAULT_REFRESH_INTERVAL,
  ITaskListQuery,
  ITaskListReply,
  ITaskSummary,
  TASK_PAGE_SIZE,
  TaskStatus
} from './tokens';

export { DEFAULT_REFRESH_INTERVAL };

/**
 * The part of `AdvisorClient` the model needs.
 */
export interface ITaskSource {
  listTasks(query: ITaskListQuery): Promise<ITaskListReply>;
}

/**
 * The task list shown in the Reports tab, kept fresh by a `Poll`.
 *
 * It loads the newest page of tasks, then older pages on demand (`loadMore()`);
 * each poll asks only for what changed since the last one (`since`) and merges it
 * (`mergeTasks`). The poll stands by while the browser tab is hidden
 * (`when-hidden`) and while the panel is hidden (`pause()` / `resume()`).
 */
export class TaskListModel implements IDisposable {
  constructor(options: TaskListModel.IOptions) {
    this._source = options.source;
    this._pageSize = options.pageSize ?? TASK_PAGE_SIZE;
    this._paused = options.paused ?? false;
    const interval = sanitizeInterval(
      options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL
    );
    this._poll = new Poll({
      auto: options.auto ?? true,
      factory: () => this._fetch(),
      frequency: { interval, backoff: true, max: maxInterval(interval) },
      name: 'performance-advisor:tasks',
      standby: () => this._paused || 'when-hidden'
    });
  }

  /**
   * Emitted whenever the task list (or the last error) has been updated.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The tasks loaded so far, newest first.
   */
  get tasks(): ReadonlyArray<ITaskSummary> {
    return this._tasks;
  }

  /**
   * Whether older tasks than those loaded exist (`loadMore()` fetches them).
   */
  get hasMore(): boolean {
    return this._next !== null;
  }

  /**
   * Whether `loadMore()` is under way.
   */
  get loadingMore(): boolean {
    return this._loadingMore;
  }

  /**
   * Whether at least one refresh has completed (successfully or not).
   */
  get loaded(): boolean {
    return this._loaded;
  }

  /**
   * The message of the last failed refresh, `null` after a successful one.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Whether polling is paused (the panel is hidden).
   */
  get paused(): boolean {
    return this._paused;
  }

  /**
   * Whether the poll currently stands by instead of fetching.
   */
  get isStandby(): boolean {
    return (
      this._paused ||
      (typeof document !== 'undefined' && document.visibilityState === 'hidden')
    );
  }

  /**
   * The refresh interval, in milliseconds.
   */
  get refreshInterval(): number {
    return this._poll.frequency.interval;
  }
  set refreshInterval(value: number) {
    const interval = sanitizeInterval(value);
    if (interval === this._poll.frequency.interval) {
      return;
    }
    this._poll.frequency = {
      ...this._poll.frequency,
      interval,
      max: maxInterval(interval)
    };
    if (!this._paused) {
      // Apply the new interval now rather than after the old one elapses.
      void this._poll.refresh();
    }
  }

  /**
   * Whether the model is disposed.
   */
  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Stop fetching until `resume()` (the panel was hidden).
   */
  pause(): void {
    this._paused = true;
  }

  /**
   * Fetch now and resume polling (the panel was shown).
   */
  resume(): void {
    if (!this._paused) {
      return;
    }
    this._paused = false;
    if (!this._isDisposed) {
      void this._poll.refresh();
    }
  }

  /**
   * Fetch the task list now (e.g. after a submission or a cancellation).
   */
  async refresh(): Promise<void> {
    try {
      await this._fetch();
    } catch {
      // The error is recorded in `error` and signalled through `changed`.
    }
  }

  /**
   * Fetch the next page of older tasks and add it to the list.
   */
  async loadMore(): Promise<void> {
    if (this._next === null || this._loadingMore || this._isDisposed) {
      return;
    }
    const generation = this._generation;
    this._loadingMore = true;
    this._changed.emit();
    try {
      const reply = await this._source.listTasks({
        limit: this._pageSize,
        before: this._next
      });
      // A reset while the page was on its way started the list over.
      if (!this._isDisposed && generation === this._generation) {
        this._tasks = mergeTasks(this._tasks, reply.tasks, {
          deleted: this._deleted,
          next: reply.next
        });
        this._next = reply.next;
        this._error = null;
      }
    } catch (error) {
      this._error = describeError(error);
    } finally {
      this._loadingMore = false;
      if (!this._isDisposed) {
        this._changed.emit();
      }
    }
  }

  /**
   * The task with this id, if listed.
   */
  find(id: string): ITaskSummary | undefined {
    return this._tasks.find(task => task.id === id);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    const request = ++this._requestCount;
    const since = this._token;
    try {
      const reply = await this._source.listTasks(
        since === null
          ? { limit: this._pageSize }
          : { limit: this._pageSize, since }
      );
      // A later request's reply already covers this one's (it was computed later).
      if (this._isDisposed || request < this._appliedRequest) {
        return;
      }
      this._appliedRequest = request;
      if (since === null || reply.reset) {
        this._tasks = [...reply.tasks];
        this._next = reply.next;
        this._generation++;
      } else {
        reply.deleted.forEach(id => this._deleted.add(id));
        this._tasks = mergeTasks(this._tasks, reply.tasks, {
          deleted: this._deleted,
          next: this._next
        });
      }
      this._token = reply.token;
      this._error = null;
      this._loaded = true;
      this._changed.emit();
    } catch (error) {
      if (!this._isDisposed && request >= this._appliedRequest) {
        this._appliedRequest = request;
        this._error = describeError(error);
        this._loaded = true;
        this._changed.emit();
      }
      // Let the poll back off.
      throw error;
    }
  }

  private _source: ITaskSource;
  private _poll: Poll;
  private _paused: boolean;
  private _pageSize: number;
  private _tasks: ITaskSummary[] = [];
  // The `since` of the next poll; null until the first page is loaded.
  private _token: number | null = null;
  // The `before` of the next page; null when every task is loaded.
  private _next: number | null = null;
  private _loadingMore = false;
  // Counts the times the list started over, so that a page asked for before is dropped.
  private _generation = 0;
  // Tasks deleted on the server: a page fetched before the deletion must not bring one back.
  private _deleted = new Set<string>();
  private _error: string | null = null;
  private _loaded = false;
  private _requestCount = 0;
  private _appliedRequest = 0;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

/**
 * A namespace for TaskListModel statics.
 */
export namespace TaskListModel {
  /**
   * Instantiation options.
   */
  export interface IOptions {
    /**
     * Where tasks come from (an `AdvisorClient`).
     */
    source: ITaskSource;
    /**
     * Refresh interval in milliseconds (default 5000).
     */
    refreshInterval?: number;
    /**
     * Start paused (default false).
     */
    paused?: boolean;
    /**
     * Start polling on construction (default true).
     */
    auto?: boolean;
    /**
     * Tasks per page (default `TASK_PAGE_SIZE`).
     */
    pageSize?: number;
  }
}

/**
 * Clamp a refresh interval (ms) to something sane: at least one second.
 */
export function sanitizeInterval(value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    return DEFAULT_REFRESH_INTERVAL;
  }
  return Math.max(1000, Math.round(value));
}

/**
 * The longest back-off after failed refreshes.
 */
function maxInterval(interval: number): number {
  return Math.max(interval * 6, 60 * 1000);
}

/**
 * Merge tasks the server sent (a `since` poll's changes, or an older page) into
 * the list shown, newest first (by `seq`, the submission order).
 *
 * Of two copies of a task the one with the higher `change` stays, so replies
 * may arrive in any order; `deleted` ids are dropped and never come back. A task
 * not shown yet joins only if it lies within the loaded pages (`seq >= next`, or
 * every page is loaded: `next` null); older ones come with their page.
 */
export function mergeTasks(
  shown: ReadonlyArray<ITaskSummary>,
  incoming: ReadonlyArray<ITaskSummary>,
  options: { deleted: ReadonlySet<string>; next: number | null }
): ITaskSummary[] {
  const { deleted, next } = options;
  const byId = new Map<string, ITaskSummary>();
  for (const task of shown) {
    if (!deleted.has(task.id)) {
      byId.set(task.id, task);
    }
  }
  for (const task of incoming) {
    const known = byId.get(task.id);
    if (known) {
      if (task.change >= known.change) {
        byId.set(task.id, task);
      }
    } else if (!deleted.has(task.id) && (next === null || task.seq >= next)) {
      byId.set(task.id, task);
    }
  }
  return [...byId.values()].sort((a, b) => b.seq - a.seq);
}

/**
 * Whether a task has reached a final state.
 */
export function isFinished(status: TaskStatus): boolean {
  return (
    status === 'success' ||
    status === 'failed' ||
    status === 'cancelled' ||
    status === 'interrupted'
  );
}

/**
 * Whether a task is waiting or running (it can be cancelled).
 */
export function isActive(status: TaskStatus): boolean {
  return status === 'queued' || status === 'analyzing';
}

/**
 * The translated label of a task status.
 */
export function statusLabel(
  status: TaskStatus,
  trans: TranslationBundle
): string {
  switch (status) {
    case 'queued':
      return trans.__('Queued');
    case 'analyzing':
      return trans.__('Analyzing');
    case 'success':
      return trans.__('Success');
    case 'failed':
      return trans.__('Failed');
    case 'cancelled':
      return trans.__('Cancelled');
    case 'interrupted':
      return trans.__('Interrupted');
    default:
      return String(status);
  }
}

/**
 * How long a task has run, in milliseconds: from `started` to `finished`
 * (or to `now` while it is still running). `null` if it never started.
 */
export function durationMs(
  task: ITaskSummary,
  now: number = Date.now()
): number | null {
  if (!task.started) {
    return null;
  }
  const start = Date.parse(task.started);
  if (Number.isNaN(start)) {
    return null;
  }
  let end: number;
  if (task.finished) {
    end = Date.parse(task.finished);
    if (Number.isNaN(end)) {
      return null;
    }
  } else if (isFinished(task.status)) {
    return null;
  } else {
    end = now;
  }
  return Math.max(0, end - start);
}
