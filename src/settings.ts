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
 * Call `apply` with the parsed value of setting `name` now and whenever the settings change.
 *
 * @returns A disposable that stops watching.
 */
function watchSetting<T>(
  settings: ISettingRegistry.ISettings,
  name: string,
  parse: (value: unknown) => T,
  apply: (value: T) => void
): IDisposable {
  const onChange = () => {
    apply(parse(settings.composite[name]));
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

/**
 * Call `apply` with the refresh interval (ms) now and whenever the setting changes.
 *
 * @returns A disposable that stops watching.
 */
export function watchRefreshInterval(
  settings: ISettingRegistry.ISettings,
  apply: (intervalMs: number) => void
): IDisposable {
  return watchSetting(settings, 'refreshInterval', refreshIntervalMs, apply);
}

/**
 * The languages a report can be written in (`performance-advisor analyze --language`).
 */
export type ReportLanguage = 'en' | 'zh';

/**
 * The `reportLanguage` setting: a language, or `auto` to follow JupyterLab's language.
 */
export const REPORT_LANGUAGE_SETTING = 'reportLanguage';

/**
 * The report language for a JupyterLab locale: Chinese for `zh`, `zh-CN`, `zh_TW`…, else English.
 */
export function languageForLocale(
  locale: string | null | undefined
): ReportLanguage {
  return typeof locale === 'string' && /^zh(?:$|[-_])/i.test(locale.trim())
    ? 'zh'
    : 'en';
}

/**
 * The report language of a `reportLanguage` setting value (`auto`, `en`, `zh`; anything else is `auto`).
 *
 * @param setting - The setting value.
 * @param locale - JupyterLab's language (`translator.languageCode`).
 */
export function reportLanguage(
  setting: unknown,
  locale: string | null | undefined
): ReportLanguage {
  if (setting === 'en' || setting === 'zh') {
    return setting;
  }
  return languageForLocale(locale);
}

/**
 * Call `apply` with the report language now and whenever the setting changes.
 *
 * @returns A disposable that stops watching.
 */
export function watchReportLanguage(
  settings: ISettingRegistry.ISettings,
  locale: string | null | undefined,
  apply: (language: ReportLanguage) => void
): IDisposable {
  return watchSetting(
    settings,
    REPORT_LANGUAGE_SETTING,
    value => reportLanguage(value, locale),
    apply
  );
}
