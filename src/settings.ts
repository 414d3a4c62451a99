import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IDisposable } from '@lumino/disposable';

import { DEFAULT_REFRESH_INTERVAL } from './tokens';

/**
 * The refresh interval in milliseconds for a `refreshInterval` setting (seconds).
 */
export function refreshIntervalMs(seconds: unknown): number {
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0
    ? Math.max(1, seconds) * 1000
    : DEFAULT_REFRESH_INTERVAL;
}

/**
 * Call `apply` with the refresh interval (ms) now and whenever the setting changes.
 *
 * @returns A disposable that stops watching.
 */
export function watchRefreshInterval(
  settings: ISettingRegistry.ISettings,
  apply: (intervalMs: number) => void
): IDisposable {
  const onChange = () => {
    apply(refreshIntervalMs(settings.composite['refreshInterval']));
  };
  onChange();
  settings.changed.connect(onChange);
  let disposed = false;
  return {
    get isDisposed() {
      return disposed;
    },
    dispose() {
      if (!disposed) {
        disposed = true;
        settings.changed.disconnect(onChange);
      }
    }
  };
}
