import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Signal } from '@lumino/signaling';

import {
  languageForLocale,
  reportLanguage,
  watchReportLanguage
} from '../settings';

describe('report language', () => {
  it('follows a Chinese JupyterLab locale, else English', () => {
    expect(languageForLocale('zh-CN')).toBe('zh');
    expect(languageForLocale('zh_TW')).toBe('zh');
    expect(languageForLocale('ZH')).toBe('zh');
    expect(languageForLocale('en-US')).toBe('en');
    expect(languageForLocale('zu')).toBe('en');
    expect(languageForLocale('zhx')).toBe('en');
    expect(languageForLocale('')).toBe('en');
    expect(languageForLocale(undefined)).toBe('en');
  });

  it('uses an explicit setting over the locale', () => {
    expect(reportLanguage('en', 'zh-CN')).toBe('en');
    expect(reportLanguage('zh', 'en')).toBe('zh');
    expect(reportLanguage('auto', 'zh-CN')).toBe('zh');
    expect(reportLanguage(undefined, 'en')).toBe('en');
    expect(reportLanguage('fr', 'zh_CN')).toBe('zh');
  });

  it('applies the setting now and when it changes, until disposed', () => {
    const composite: Record<string, unknown> = { reportLanguage: 'auto' };
    const settings = {
      composite,
      changed: new Signal<unknown, void>({})
    } as unknown as ISettingRegistry.ISettings;
    const seen: string[] = [];
    const watch = watchReportLanguage(settings, 'zh-CN', language =>
      seen.push(language)
    );
    composite.reportLanguage = 'en';
    (settings.changed as Signal<unknown, void>).emit();
    watch.dispose();
    composite.reportLanguage = 'zh';
    (settings.changed as Signal<unknown, void>).emit();
    expect(seen).toEqual(['zh', 'en']);
    expect(watch.isDisposed).toBe(true);
  });
});
