import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { nullTranslator } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';

import {
  isActive,
  isFinished,
  mergeTasks,
  sanitizeInterval,
  statusLabel,
  TaskListModel
} from '../model';
import { refreshIntervalMs, watchRefreshInterval } from '../settings';
import {
  DEFAULT_REFRESH_INTERVAL,
  ITaskListQuery,
  ITaskListReply,
  TASK_STATUSES
} from '../tokens';
import { listReply, makeTask } from './utils';

const trans = nullTranslator.load('jupyterlab_performance_advisor');

/**
 * Make `document.visibilityState` report `state` and tell listeners (the Poll) about it.
 */
function setVisibility(state: 'visible' | 'hidden'): void {
  Object.defineProperty(document, 'visibilityState', {
    configurable: true,
    get: () => state
  });
  document.dispatchEvent(new Event('visibilitychange'));
}

describe('status helpers', () => {
  it('maps every status to its label', () => {
    const labels = TASK_STATUSES.map(status => statusLabel(status, trans));
    expect(labels).toEqual([
      'Queued',
      'Analyzing',
      'Success',
      'Failed',
      'Cancelled',
      'Interrupted'
    ]);
  });

  it('translates labels through the bundle', () => {
    const fake = { __: (s: string) => `«${s}»` } as any;
    expect(statusLabel('failed', fake)).toBe('«Failed»');
  });

  it('tells finished from active statuses', () => {
    expect(TASK_STATUSES.filter(isFinished)).toEqual([
      'success',
      'failed',
      'cancelled',
      'interrupted'
    ]);
    expect(TASK_STATUSES.filter(isActive)).toEqual(['queued', 'analyzing']);
  });
});

/**
 * A task with a place in the list (`seq`) and a version (`change`).
 */
function task(
  seq: number,
  change = seq,
  status: 'queued' | 'success' = 'success'
) {
  return makeTask({ id: `t${seq}`, seq, change, status });
}

describe('mergeTasks', () => {
  const nothingDeleted = new Set<string>();

  it('keeps the newer copy of a changed task, whatever order replies come in', () => {
    const shown = [task(2, 2, 'queued'), task(1)];
    const changed = task(2, 5, 'success');
    const merged = mergeTasks(shown, [changed], {
      deleted: nothingDeleted,
      next: null
    });
    expect(merged.map(t => [t.id, t.status])).toEqual([
      ['t2', 'success'],
      ['t1', 'success']
    ]);
    // An older copy arriving late changes nothing.
    const late = mergeTasks(merged, [task(2, 3, 'queued')], {
      deleted: nothingDeleted,
      next: null
    });
    expect(late[0]).toBe(changed);
  });

  it('puts new tasks in submission order, newest first', () => {
    const merged = mergeTasks([task(3), task(1)], [task(4), task(2)], {
      deleted: nothingDeleted,
      next: null
    });
    expect(merged.map(t => t.seq)).toEqual([4, 3, 2, 1]);
  });

  it('adds only tasks within the loaded pages', () => {
    // Pages loaded down to seq 10 (older ones come with "Show older").
    const shown = [task(12), task(11), task(10)];
    const merged = mergeTasks(shown, [task(13), task(4, 20)], {
      deleted: nothingDeleted,
      next: 10
    });
    expect(merged.map(t => t.seq)).toEqual([13, 12, 11, 10]);
  });

  it('drops deleted tasks and never brings them back', () => {
    const deleted = new Set(['t2']);
    const merged = mergeTasks([task(3), task(2), task(1)], [task(2, 9)], {
      deleted,
      next: null
    });
    expect(merged.map(t => t.id)).toEqual(['t3', 't1']);
  });
});

describe('refresh interval', () => {
  it('converts the setting (seconds) to milliseconds', () => {
    expect(refreshIntervalMs(5)).toBe(5000);
    expect(refreshIntervalMs(1.5)).toBe(1500);
    expect(refreshIntervalMs(0)).toBe(DEFAULT_REFRESH_INTERVAL);
    expect(refreshIntervalMs('7')).toBe(DEFAULT_REFRESH_INTERVAL);
    expect(refreshIntervalMs(undefined)).toBe(DEFAULT_REFRESH_INTERVAL);
  });

  it('never polls faster than once a second', () => {
    expect(sanitizeInterval(10)).toBe(1000);
    expect(sanitizeInterval(NaN)).toBe(DEFAULT_REFRESH_INTERVAL);
    expect(sanitizeInterval(2500)).toBe(2500);
  });
});

describe('TaskListModel', () => {
  let listTasks: jest.Mock<Promise<ITaskListReply>, [ITaskListQuery]>;
  let model: TaskListModel;

  beforeEach(() => {
    jest.useFakeTimers();
    setVisibility('visible');
    listTasks = jest.fn<Promise<ITaskListReply>, [ITaskListQuery]>(async () =>
      listReply([makeTask()])
    );
  });

  afterEach(() => {
    model?.dispose();
    jest.useRealTimers();
    setVisibility('visible');
  });

  it('polls at the refresh interval and emits changed', async () => {
    model = new TaskListModel({ source: { listTasks }, refreshInterval: 5000 });
    const changed = jest.fn();
    model.changed.connect(changed);
    expect(model.loaded).toBe(false);

    await jest.advanceTimersByTimeAsync(50);
    expect(listTasks).toHaveBeenCalledTimes(1);
    expect(changed).toHaveBeenCalledTimes(1);
    expect(model.loaded).toBe(true);
    expect(model.tasks.map(t => t.id)).toEqual(['a1b2c3']);

    await jest.advanceTimersByTimeAsync(4900);
    expect(listTasks).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(100);
    expect(listTasks).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(listTasks).toHaveBeenCalledTimes(4);
    expect(changed).toHaveBeenCalledTimes(4);
  });

  it('keeps the tasks in the order of the first page and exposes them by id', async () => {
    listTasks.mockResolvedValue(
      listReply([
        makeTask({ id: 'new', seq: 2 }),
        makeTask({ id: 'old', seq: 1 })
      ])
    );
    model = new TaskListModel({ source: { listTasks } });
    await jest.advanceTimersByTimeAsync(50);
    expect(model.tasks.map(t => t.id)).toEqual(['new', 'old']);
    expect(model.find('old')?.id).toBe('old');
    expect(model.find('missing')).toBeUndefined();
  });

  it('loads the first page, then polls only for changes since its token', async () => {
    listTasks
      .mockResolvedValueOnce(
        listReply([task(3, 3, 'queued'), task(2), task(1)], { token: 7 })
      )
      .mockResolvedValueOnce(
        listReply([task(3, 8, 'success'), task(4, 9, 'queued')], {
          deleted: ['t1'],
          token: 9
        })
      )
      .mockResolvedValue(listReply([], { token: 9 }));
    model = new TaskListModel({
      source: { listTasks },
      refreshInterval: 1000,
      pageSize: 3
    });
    await jest.advanceTimersByTimeAsync(50);
    expect(listTasks).toHaveBeenLastCalledWith({ limit: 3 });
    await jest.advanceTimersByTimeAsync(1000);
    expect(listTasks).toHaveBeenLastCalledWith({ limit: 3, since: 7 });
    // Changed, new and deleted tasks, in one merge.
    expect(model.tasks.map(t => [t.id, t.status])).toEqual([
      ['t4', 'queued'],
      ['t3', 'success'],
      ['t2', 'success']
    ]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(listTasks).toHaveBeenLastCalledWith({ limit: 3, since: 9 });
    expect(model.tasks.map(t => t.id)).toEqual(['t4', 't3', 't2']);
  });

  it('loads older pages on demand, without tasks deleted meanwhile', async () => {
    listTasks
      .mockResolvedValueOnce(
        listReply([task(6), task(5)], { next: 5, token: 6 })
      )
      .mockResolvedValueOnce(listReply([], { deleted: ['t4'], token: 7 }))
      // A page computed before the deletion reached the server's reply.
      .mockResolvedValueOnce(listReply([task(4), task(3)], { next: 3 }))
      .mockResolvedValueOnce(listReply([task(2), task(1)], { next: null }));
    model = new TaskListModel({
      source: { listTasks },
      paused: true,
      pageSize: 2
    });
    await model.refresh();
    expect(model.hasMore).toBe(true);
    await model.refresh();
    await model.loadMore();
    expect(listTasks).toHaveBeenLastCalledWith({ limit: 2, before: 5 });
    expect(model.tasks.map(t => t.id)).toEqual(['t6', 't5', 't3']);
    expect(model.hasMore).toBe(true);
    await model.loadMore();
    expect(listTasks).toHaveBeenLastCalledWith({ limit: 2, before: 3 });
    expect(model.tasks.map(t => t.id)).toEqual(['t6', 't5', 't3', 't2', 't1']);
    expect(model.hasMore).toBe(false);
    await model.loadMore();
    expect(listTasks).toHaveBeenCalledTimes(4);
  });

  it('starts over from the first page when the server resets the token', async () => {
    listTasks
      .mockResolvedValueOnce(listReply([task(2), task(1)], { token: 40 }))
      .mockResolvedValueOnce(
        listReply([task(1, 1, 'queued')], { token: 1, reset: true })
      );
    model = new TaskListModel({ source: { listTasks }, paused: true });
    await model.refresh();
    await model.refresh();
    expect(model.tasks.map(t => [t.id, t.status])).toEqual([['t1', 'queued']]);
  });

  it('keeps the list when loading an older page fails, and says why', async () => {
    listTasks
      .mockResolvedValueOnce(listReply([task(2)], { next: 2 }))
      .mockRejectedValueOnce(new Error('server gone'));
    model = new TaskListModel({ source: { listTasks }, paused: true });
    await model.refresh();
    await model.loadMore();
    expect(model.error).toBe('server gone');
    expect(model.tasks.map(t => t.id)).toEqual(['t2']);
    expect(model.hasMore).toBe(true);
    expect(model.loadingMore).toBe(false);
  });

  it('stands by while paused and fetches at once on resume', async () => {
    model = new TaskListModel({
      source: { listTasks },
      refreshInterval: 1000,
      paused: true
    });
    expect(model.isStandby).toBe(true);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(listTasks).not.toHaveBeenCalled();

    model.resume();
    expect(model.isStandby).toBe(false);
    await jest.advanceTimersByTimeAsync(50);
    expect(listTasks).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(3000);
    expect(listTasks).toHaveBeenCalledTimes(4);

    model.pause();
    expect(model.paused).toBe(true);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(listTasks).toHaveBeenCalledTimes(4);
  });

  it('stands by while the browser tab is hidden', async () => {
    model = new TaskListModel({ source: { listTasks }, refreshInterval: 1000 });
    await jest.advanceTimersByTimeAsync(50);
    expect(listTasks).toHaveBeenCalledTimes(1);

    setVisibility('hidden');
    expect(model.isStandby).toBe(true);
    await jest.advanceTimersByTimeAsync(20_000);
    // The poll lingers for one tick after the page is hidden, then stands by.
    expect(listTasks.mock.calls.length).toBeLessThanOrEqual(2);
    const whileHidden = listTasks.mock.calls.length;
    await jest.advanceTimersByTimeAsync(20_000);
    expect(listTasks).toHaveBeenCalledTimes(whileHidden);

    setVisibility('visible');
    expect(model.isStandby).toBe(false);
    await jest.advanceTimersByTimeAsync(1000);
    expect(listTasks).toHaveBeenCalledTimes(whileHidden + 1);
  });

  it('refresh() fetches even while paused', async () => {
    model = new TaskListModel({ source: { listTasks }, paused: true });
    const changed = jest.fn();
    model.changed.connect(changed);
    await model.refresh();
    expect(listTasks).toHaveBeenCalledTimes(1);
    expect(changed).toHaveBeenCalledTimes(1);
  });

  it('records refresh errors and clears them on success', async () => {
    listTasks.mockRejectedValueOnce(new Error('server gone'));
    model = new TaskListModel({ source: { listTasks }, paused: true });
    const changed = jest.fn();
    model.changed.connect(changed);
    await model.refresh();
    expect(model.error).toBe('server gone');
    expect(model.loaded).toBe(true);
    expect(changed).toHaveBeenCalledTimes(1);
    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.tasks).toHaveLength(1);
  });

  it('ignores a slow reply that arrives after a newer one', async () => {
    let resolveSlow: (reply: ITaskListReply) => void = () => undefined;
    listTasks
      .mockImplementationOnce(
        () => new Promise<ITaskListReply>(resolve => (resolveSlow = resolve))
      )
      .mockResolvedValueOnce(listReply([makeTask({ id: 'fresh' })]));
    model = new TaskListModel({ source: { listTasks }, paused: true });
    const slow = model.refresh();
    await model.refresh();
    resolveSlow(listReply([makeTask({ id: 'stale' })]));
    await slow;
    expect(model.tasks.map(t => t.id)).toEqual(['fresh']);
  });

  it('applies a new refresh interval', async () => {
    model = new TaskListModel({
      source: { listTasks },
      refreshInterval: 10_000
    });
    await jest.advanceTimersByTimeAsync(50);
    expect(listTasks).toHaveBeenCalledTimes(1);

    model.refreshInterval = 2000;
    expect(model.refreshInterval).toBe(2000);
    // The change takes effect at once (one refresh), then every 2 s.
    await jest.advanceTimersByTimeAsync(50);
    expect(listTasks).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(4000);
    expect(listTasks).toHaveBeenCalledTimes(4);
  });

  it('follows the refreshInterval setting', async () => {
    const changed = new Signal<any, void>({});
    const settings = {
      composite: { refreshInterval: 5 },
      changed
    } as unknown as ISettingRegistry.ISettings;
    model = new TaskListModel({ source: { listTasks } });
    const watcher = watchRefreshInterval(settings, ms => {
      model.refreshInterval = ms;
    });
    expect(model.refreshInterval).toBe(5000);

    (settings as any).composite = { refreshInterval: 30 };
    changed.emit();
    expect(model.refreshInterval).toBe(30_000);

    await jest.advanceTimersByTimeAsync(50);
    const calls = listTasks.mock.calls.length;
    await jest.advanceTimersByTimeAsync(29_000);
    expect(listTasks).toHaveBeenCalledTimes(calls);
    await jest.advanceTimersByTimeAsync(1100);
    expect(listTasks).toHaveBeenCalledTimes(calls + 1);

    watcher.dispose();
    expect(watcher.isDisposed).toBe(true);
    (settings as any).composite = { refreshInterval: 1 };
    changed.emit();
    expect(model.refreshInterval).toBe(30_000);
  });

  it('stops polling when disposed', async () => {
    model = new TaskListModel({ source: { listTasks }, refreshInterval: 1000 });
    await jest.advanceTimersByTimeAsync(50);
    model.dispose();
    expect(model.isDisposed).toBe(true);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(listTasks).toHaveBeenCalledTimes(1);
  });
});
