import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { fileBrowserPlugin } from './fileBrowser';
import { advisorIcon } from './icon';
import { AdvisorClient } from './request';
// The token's implementation: activate() returns it.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { AdvisorService } from './service';
import {
  languageForLocale,
  ReportLanguage,
  watchRefreshInterval,
  watchReportLanguage
} from './settings';
import {
  AdvisorTab,
  CommandIDs,
  DEFAULT_REFRESH_INTERVAL,
  IPerformanceAdvisor,
  ITaskSummary,
  PLUGIN_ID,
  TRANSLATION_DOMAIN
} from './tokens';
import type { AdvisorPanel } from './widgets/panel';
import type { ReportWidget } from './widgets/reportViewer';

/**
 * The stable id of the (singleton) panel.
 */
const PANEL_ID = 'performance-advisor-panel';

export * from './tokens';

/**
 * The Performance Advisor plugin: launcher tile, panel and report tabs; it provides the public
 * `IPerformanceAdvisor` token.
 */
const plugin: JupyterFrontEndPlugin<IPerformanceAdvisor> = {
  id: PLUGIN_ID,
  description:
    'Analyse profiling data and open Performance Advisor reports in JupyterLab.',
  autoStart: true,
  provides: IPerformanceAdvisor,
  optional: [
    ILauncher,
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): IPerformanceAdvisor => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const client = new AdvisorClient(app.serviceManager.serverSettings);
    let refreshInterval = DEFAULT_REFRESH_INTERVAL;
    const locale = translator?.languageCode;
    let language: ReportLanguage = languageForLocale(locale);
    let panel: MainAreaWidget<AdvisorPanel> | null = null;
    let creating: Promise<MainAreaWidget<AdvisorPanel>> | null = null;

    const panelTracker = new WidgetTracker<MainAreaWidget<AdvisorPanel>>({
      namespace: 'performance-advisor'
    });
    const reportTracker = new WidgetTracker<ReportWidget>({
      namespace: 'performance-advisor-report'
    });

    const openReport = async (
      id: string,
      title: string
    ): Promise<ReportWidget> => {
      const existing = reportTracker.find(widget => widget.reportId === id);
      if (existing) {
        app.shell.activateById(existing.id);
        return existing;
      }
      const { ReportWidget } = await import('./widgets/reportViewer');
      // Another call may have opened it while the module loaded.
      const opened = reportTracker.find(widget => widget.reportId === id);
      if (opened) {
        app.shell.activateById(opened.id);
        return opened;
      }
      const widget = new ReportWidget({
        reportId: id,
        title: title || id,
        client,
        trans,
        onOpenNotebook: () =>
          void app.commands.execute(CommandIDs.openNotebook, { id })
      });
      void reportTracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    const createPanel = async (): Promise<MainAreaWidget<AdvisorPanel>> => {
      const [{ TaskListModel }, { AdvisorPanel }] = await Promise.all([
        import('./model'),
        import('./widgets/panel')
      ]);
      const model = new TaskListModel({
        source: client,
        refreshInterval,
        paused: true
      });
      // Other extensions hear of every task the Reports tab lists.
      model.changed.connect(() => service.noteTasks(model.tasks));
      const content = new AdvisorPanel({
        model,
        client,
        trans,
        onOpenReport: task => void openTaskReport(task),
        onOpenNotebook: task =>
          void app.commands.execute(CommandIDs.openNotebook, { id: task.id }),
        reportLanguage: () => language,
        lang: locale
      });
      const widget = new MainAreaWidget({ content });
      widget.id = PANEL_ID;
      widget.addClass('jp-pa-MainAreaPanel');
      // The panel has its own tab bar and no toolbar items.
      widget.toolbar.setHidden(true);
      widget.title.label = trans.__('Performance Advisor');
      widget.title.icon = advisorIcon;
      widget.title.closable = true;
      void panelTracker.add(widget);
      return widget;
    };

    /**
     * Open a task's report in a tab named so that it differs from every other open report tab.
     */
    const openTaskReport = async (
      task: ITaskSummary
    ): Promise<ReportWidget> => {
      const { reportTabTitle } = await import('./format');
      const taken: string[] = [];
      reportTracker.forEach(widget => {
        if (widget.reportId !== task.id) {
          taken.push(widget.title.label);
        }
      });
      return app.commands.execute(CommandIDs.openReport, {
        id: task.id,
        title: reportTabTitle(task, taken, trans, locale)
      });
    };

    const service = new AdvisorService({
      requests: client,
      refreshInterval,
      shell: {
        openReport: openTaskReport,
        openPanel: async (tab?: AdvisorTab) => {
          const opened: MainAreaWidget<AdvisorPanel> =
            await app.commands.execute(CommandIDs.open);
          if (tab) {
            opened.content.setTab(tab);
          }
          return opened;
        },
        openDocument: path => app.commands.execute('docmanager:open', { path }),
        reportLanguage: () => language
      }
    });

    app.commands.addCommand(CommandIDs.open, {
      label: args =>
        args['isPalette']
          ? trans.__('Open Performance Advisor')
          : trans.__('Performance Advisor'),
      caption: trans.__(
        'Analyse profiling data and find what slows training down'
      ),
      icon: args => (args['isPalette'] ? undefined : advisorIcon),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            isPalette: { type: 'boolean' }
          }
        }
      },
      execute: async () => {
        if (!panel || panel.isDisposed) {
          // A second click while the panel module loads gets the same panel.
          creating ??= createPanel().finally(() => {
            creating = null;
          });
          panel = await creating;
        }
        if (!panel.isAttached) {
          app.shell.add(panel, 'main');
        }
        app.shell.activateById(panel.id);
        return panel;
      }
    });

    app.commands.addCommand(CommandIDs.openReport, {
      label: args =>
        args['title']
          ? trans.__('Open Report: %1', args['title'] as string)
          : trans.__('Open Performance Advisor Report'),
      caption: trans.__('Open the HTML report of an analysis'),
      icon: advisorIcon,
      describedBy: {
        args: {
          type: 'object',
          properties: {
            id: { type: 'string', description: trans.__('Task id') },
            title: {
              type: 'string',
              description: trans.__('Tab title (profile name)')
            }
          },
          required: ['id']
        }
      },
      execute: args => {
        const id = args['id'];
        if (typeof id !== 'string' || !id) {
          throw new Error('performance-advisor:open-report needs an "id"');
        }
        const title = typeof args['title'] === 'string' ? args['title'] : '';
        return openReport(id, title);
      }
    });

    app.commands.addCommand(CommandIDs.openNotebook, {
      label: trans.__('Open as Notebook'),
      caption: trans.__(
        'Write this report as a notebook next to it and open the notebook'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            id: { type: 'string', description: trans.__('Task id') }
          },
          required: ['id']
        }
      },
      execute: async args => {
        const id = args['id'];
        if (typeof id !== 'string' || !id) {
          throw new Error('performance-advisor:open-notebook needs an "id"');
        }
        try {
          return await service.openNotebook(id);
        } catch (error) {
          const { describeError } = await import('./request');
          void showErrorMessage(
            trans.__('Could not open the report as a notebook'),
            describeError(error)
          );
          return null;
        }
      }
    });

    if (launcher) {
      // Same domain as the core launcher, so the tile joins its "Other" section.
      const coreTrans = (translator ?? nullTranslator).load('jupyterlab');
      launcher.add({
        command: CommandIDs.open,
        category: coreTrans.__('Other'),
        rank: 1
      });
    }
    if (palette) {
      palette.addItem({
        command: CommandIDs.open,
        category: trans.__('Performance Advisor'),
        args: { isPalette: true }
      });
    }
    if (restorer) {
      void restorer.restore(panelTracker, {
        command: CommandIDs.open,
        name: () => 'performance-advisor'
      });
      void restorer.restore(reportTracker, {
        command: CommandIDs.openReport,
        args: widget => ({ id: widget.reportId, title: widget.title.label }),
        name: widget => widget.reportId
      });
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          watchRefreshInterval(settings, intervalMs => {
            refreshInterval = intervalMs;
            service.refreshInterval = intervalMs;
            if (panel && !panel.isDisposed) {
              panel.content.model.refreshInterval = intervalMs;
            }
          });
          watchReportLanguage(settings, locale, chosen => {
            language = chosen;
          });
        })
        .catch(reason => {
          console.error(
            'Failed to load settings for jupyterlab-performance-advisor.',
            reason
          );
        });
    }
    return service;
  }
};

export default [plugin, fileBrowserPlugin];
