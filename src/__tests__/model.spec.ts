import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { nullTranslator } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';

import {
  isActive,
  isFinished,
  sanitizeInterval,
  sortNewestFirst,
  statusLabel,
  TaskListModel
} from '../model';
import { refreshIntervalMs, watchRefreshInterval } from '../settings';
import { DEFAULT_REFRESH_INTERVAL, ITask, TASK_STATUSES } from '../tokens';
import { makeTask } from './utils';

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

describe('sortNewestFirst', () => {
  it('orders by creation time, newest first', () => {
    const a = makeTask({ id: 'a', created: '2026-11-22T10:00:00Z' });
    const b = makeTask({ id: 'b', created: '2026-11-22T12:00:00Z' });
    const c = makeTask({ id: 'c', created: '2026-11-22T11:00:00Z' });
    expect(sortNewestFirst([a, b, c]).map(t => t.id)).toEqual(['b', 'c', 'a']);
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
  let listTasks: jest.Mock<Promise<ITask[]>, []>;
  let model: TaskListModel;

  beforeEach(() => {
    jest.useFakeTimers();
    setVisibility('visible');
    listTasks = jest.fn(async () => [makeTask()]);
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

  it('keeps the tasks newest first and exposes them by id', async () => {
    listTasks.mockResolvedValue([
      makeTask({ id: 'old', created: '2026-11-22T09:00:00Z' }),
      makeTask({ id: 'new', created: '2026-11-22T11:00:00Z' })
    ]);
    model = new TaskListModel({ source: { listTasks } });
    await jest.advanceTimersByTimeAsync(50);
    expect(model.tasks.map(t => t.id)).toEqual(['new', 'old']);
    expect(model.find('old')?.id).toBe('old');
    expect(model.find('missing')).toBeUndefined();
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
    let resolveSlow: (tasks: ITask[]) => void = () => undefined;
    listTasks
      .mockImplementationOnce(
        () => new Promise<ITask[]>(resolve => (resolveSlow = resolve))
      )
      .mockResolvedValueOnce([makeTask({ id: 'fresh' })]);
    model = new TaskListModel({ source: { listTasks }, paused: true });
    const slow = model.refresh();
    await model.refresh();
    resolveSlow([makeTask({ id: 'stale' })]);
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
