import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { TaskListModel } from '../model';
import { AdvisorClient } from '../request';
import { ITaskSummary } from '../tokens';
import { SubmitForm } from './submitForm';
import { TaskList } from './taskList';

/**
 * The tabs of the panel.
 */
export type PanelTab = 'submit' | 'reports';

/**
 * The Performance Advisor panel: a Submit tab and a Reports tab.
 *
 * The task list polls only while the panel is visible.
 */
export class AdvisorPanel extends ReactWidget {
  constructor(options: AdvisorPanel.IOptions) {
    super();
    this.model = options.model;
    this.client = options.client;
    this._trans = options.trans;
    this._onOpenReport = options.onOpenReport;
    this._onOpenNotebook = options.onOpenNotebook;
    this._reportLanguage = options.reportLanguage;
    this._lang = options.lang;
    this.addClass('jp-pa-AdvisorPanel');
    // Nothing to poll for until the panel is shown.
    this.model.pause();
  }

  /**
   * The task list model.
   */
  readonly model: TaskListModel;

  /**
   * The REST client.
   */
  readonly client: AdvisorClient;

  /**
   * The visible tab.
   */
  get currentTab(): PanelTab {
    return this._tab;
  }

  /**
   * Show a tab.
   */
  setTab(tab: PanelTab): void {
    if (this._tab === tab) {
      return;
    }
    this._tab = tab;
    if (tab === 'reports') {
      void this.model.refresh();
    }
    this.update();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.model.resume();
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.pause();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.resume();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.pause();
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    const tabs: { id: PanelTab; label: string }[] = [
      { id: 'submit', label: trans.__('Submit') },
      { id: 'reports', label: trans.__('Reports') }
    ];
    return (
      <div className="jp-pa-panel">
        <div
          className="jp-pa-tabbar"
          role="tablist"
          aria-label={trans.__('Performance Advisor')}
        >
          {tabs.map(tab => (
            <button
              key={tab.id}
              type="button"
              role="tab"
              id={`${this.id || 'jp-pa'}-tab-${tab.id}`}
              className={`jp-pa-tab${this._tab === tab.id ? ' jp-mod-current' : ''}`}
              data-tab={tab.id}
              aria-selected={this._tab === tab.id}
              aria-controls={`${this.id || 'jp-pa'}-tabpanel-${tab.id}`}
              onClick={() => this.setTab(tab.id)}
            >
              {tab.label}
            </button>
          ))}
        </div>
        {/* Both tabs stay mounted so the form keeps its input when switching. */}
        <div
          role="tabpanel"
          id={`${this.id || 'jp-pa'}-tabpanel-submit`}
          className="jp-pa-tabpanel"
          data-tabpanel="submit"
          aria-labelledby={`${this.id || 'jp-pa'}-tab-submit`}
          hidden={this._tab !== 'submit'}
        >
          <SubmitForm
            client={this.client}
            trans={trans}
            onSubmitted={() => this.setTab('reports')}
            reportLanguage={this._reportLanguage}
            lang={this._lang}
          />
        </div>
        <div
          role="tabpanel"
          id={`${this.id || 'jp-pa'}-tabpanel-reports`}
          className="jp-pa-tabpanel"
          data-tabpanel="reports"
          aria-labelledby={`${this.id || 'jp-pa'}-tab-reports`}
          hidden={this._tab !== 'reports'}
        >
          <TaskList
            model={this.model}
            client={this.client}
            trans={trans}
            onOpenReport={this._onOpenReport}
            onOpenNotebook={this._onOpenNotebook}
            lang={this._lang}
          />
        </div>
      </div>
    );
  }

  private _tab: PanelTab = 'submit';
  private _trans: TranslationBundle;
  private _onOpenReport: (task: ITaskSummary) => void;
  private _onOpenNotebook?: (task: ITaskSummary) => void;
  private _reportLanguage?: () => 'en' | 'zh';
  private _lang?: string;
}

/**
 * A namespace for AdvisorPanel statics.
 */
export namespace AdvisorPanel {
  /**
   * Instantiation options.
   */
  export interface IOptions {
    model: TaskListModel;
    client: AdvisorClient;
    trans: TranslationBundle;
    onOpenReport: (task: ITaskSummary) => void;
    /**
     * Open a successful task's report as a notebook (the row's "Notebook" action).
     */
    onOpenNotebook?: (task: ITaskSummary) => void;
    /**
     * The report language a submission asks for (from the `reportLanguage` setting).
     */
    reportLanguage?: () => 'en' | 'zh';
    /**
     * JupyterLab's UI language (`translator.languageCode`), for dates and the path checks' answers.
     */
    lang?: string;
  }
}
