import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { ReadonlyJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { advisorIcon } from './icon';
import { CommandIDs, IPerformanceAdvisor, TRANSLATION_DOMAIN } from './tokens';

/**
 * The file names an analysis takes besides folders: PyTorch profiler traces (plain or gzipped)
 * and other JSON trace files.
 */
const TRACE_FILE = /(\.pt\.trace\.json\.gz|\.json)$/i;

/**
 * The file browser items the context menu entries apply to.
 */
const ITEM_SELECTOR = '.jp-DirListing-item[data-isdir]';

/**
 * What the actions need of a file browser item (`Contents.IModel`).
 */
export interface IBrowserItem {
  name: string;
  path: string;
  type: string;
}

/**
 * Whether an item can be analysed: a folder or a trace file.
 */
export function isAnalyzable(item: IBrowserItem): boolean {
  return item.type === 'directory' || TRACE_FILE.test(item.name);
}

/**
 * The item "Analyze" applies to: the one selected item, if it can be analysed.
 */
export function analyzeTarget(
  items: ReadonlyArray<IBrowserItem>
): IBrowserItem | null {
  return items.length === 1 && isAnalyzable(items[0]) ? items[0] : null;
}

/**
 * The folders "Compare" applies to: exactly two selected folders.
 */
export function compareTargets(
  items: ReadonlyArray<IBrowserItem>
): [IBrowserItem, IBrowserItem] | null {
  return items.length === 2 && items.every(item => item.type === 'directory')
    ? [items[0], items[1]]
    : null;
}

/**
 * The description of a command's optional path arguments, by name.
 */
function pathArguments(descriptions: Record<string, string>): {
  args: ReadonlyJSONObject;
} {
  const properties: Record<string, ReadonlyJSONObject> = {};
  for (const [name, description] of Object.entries(descriptions)) {
    properties[name] = { type: 'string', description };
  }
  return { args: { type: 'object', properties } };
}

/**
 * The dialog body that asks which of two folders is the baseline.
 */
export class BaselineChooser extends Widget {
  constructor(paths: [string, string], trans: TranslationBundle) {
    super();
    this.addClass('jp-pa-BaselineChooser');
    const intro = document.createElement('p');
    intro.textContent = trans.__(
      'The baseline is the run the other is compared against (for example the faster or the earlier one).'
    );
    const label = document.createElement('label');
    label.textContent = trans.__('Baseline');
    label.htmlFor = 'jp-pa-baseline';
    this._select = document.createElement('select');
    this._select.id = 'jp-pa-baseline';
    this._select.className = 'jp-mod-styled';
    for (const path of paths) {
      const option = document.createElement('option');
      option.value = path;
      option.textContent = path;
      this._select.appendChild(option);
    }
    // The second folder in the listing is proposed: "compare the first with the second".
    this._select.value = paths[1];
    this.node.append(intro, label, this._select);
  }

  /**
   * The folder chosen as the baseline.
   */
  getValue(): string {
    return this._select.value;
  }

  private _select: HTMLSelectElement;
}

/**
 * The file browser's "Analyze with Performance Advisor" and "Compare with Performance Advisor".
 */
export const fileBrowserPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-performance-advisor:file-browser',
  description:
    'Analyse a folder or trace file, or compare two folders, from the file browser.',
  autoStart: true,
  requires: [IPerformanceAdvisor, IFileBrowserFactory],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    advisor: IPerformanceAdvisor,
    factory: IFileBrowserFactory,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const contents = app.serviceManager.contents;

    const selection = (): IBrowserItem[] => {
      const browser = factory.tracker.currentWidget;
      return browser ? Array.from(browser.selectedItems()) : [];
    };
    // A path as the server resolves it: relative to its root, without a drive prefix.
    const serverPath = (item: IBrowserItem): string =>
      contents.localPath(item.path) || '.';

    const submit = async (path: string, compare: string | null) => {
      try {
        const task = await advisor.analyze(path, compare);
        await advisor.openPanel('reports');
        return task;
      } catch (error) {
        const { describeError } = await import('./request');
        void showErrorMessage(
          trans.__('The analysis was not submitted'),
          describeError(error)
        );
        return null;
      }
    };

    app.commands.addCommand(CommandIDs.analyze, {
      label: trans.__('Analyze with Performance Advisor'),
      caption: trans.__(
        'Analyse this profiling folder or trace file with the default options'
      ),
      icon: advisorIcon,
      describedBy: pathArguments({
        path: trans.__('Folder or trace file, relative to the server root')
      }),
      isVisible: args =>
        typeof args['path'] === 'string' || analyzeTarget(selection()) !== null,
      execute: args => {
        const given = args['path'];
        const target = analyzeTarget(selection());
        const path =
          typeof given === 'string' ? given : target && serverPath(target);
        if (!path) {
          throw new Error(
            'performance-advisor:analyze needs a "path" or one selected folder or trace file'
          );
        }
        return submit(path, null);
      }
    });

    app.commands.addCommand(CommandIDs.compare, {
      label: trans.__('Compare with Performance Advisor'),
      caption: trans.__(
        'Compare two profiling folders: one of them is chosen as the baseline'
      ),
      icon: advisorIcon,
      describedBy: pathArguments({
        path: trans.__('Folder analysed, relative to the server root'),
        baseline: trans.__(
          'Folder it is compared against, relative to the server root'
        )
      }),
      isVisible: args =>
        (typeof args['path'] === 'string' &&
          typeof args['baseline'] === 'string') ||
        compareTargets(selection()) !== null,
      execute: async args => {
        const given = [args['path'], args['baseline']];
        if (given.every(value => typeof value === 'string' && value)) {
          return submit(given[0] as string, given[1] as string);
        }
        const targets = compareTargets(selection());
        if (!targets) {
          throw new Error(
            'performance-advisor:compare needs "path" and "baseline", or two selected folders'
          );
        }
        const paths = targets.map(serverPath) as [string, string];
        const result = await showDialog({
          title: trans.__('Compare with Performance Advisor'),
          body: new BaselineChooser(paths, trans),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Cancel') }),
            Dialog.okButton({ label: trans.__('Compare') })
          ]
        });
        if (!result.button.accept || !result.value) {
          return null;
        }
        const baseline = result.value;
        const data = paths[0] === baseline ? paths[1] : paths[0];
        return submit(data, baseline);
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.analyze,
      selector: ITEM_SELECTOR,
      rank: 20
    });
    app.contextMenu.addItem({
      command: CommandIDs.compare,
      selector: ITEM_SELECTOR,
      rank: 20
    });
  }
};
