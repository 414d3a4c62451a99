import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  downloadIcon,
  IFrame,
  launchIcon,
  notebookIcon,
  ToolbarButton
} from '@jupyterlab/ui-components';

import { advisorIcon } from '../icon';
import { AdvisorClient } from '../request';
import { ITaskSummary } from '../tokens';

/**
 * The only sandbox exception granted to reports: their scripts (plotly) may run, but in
 * an opaque origin, so they can reach neither the Jupyter API nor its cookies.
 * Never add `allow-same-origin` here.
 */
export const REPORT_SANDBOX: IFrame.SandboxExceptions[] = ['allow-scripts'];

/**
 * A main-area tab showing the HTML report of one task.
 */
export class ReportWidget extends MainAreaWidget<IFrame> {
  constructor(options: ReportWidget.IOptions) {
    const content = new IFrame({
      sandbox: REPORT_SANDBOX,
      referrerPolicy: 'no-referrer'
    });
    super({ content });
    const { client, reportId, trans } = options;
    this._client = client;
    this.reportId = reportId;
    this.id = ReportWidget.widgetId(reportId);
    this.addClass('jp-pa-ReportWidget');
    this.title.icon = advisorIcon;
    this.title.closable = true;
    this._titled = !!options.title;
    this.setTitle(options.title || reportId);

    this.url = client.reportUrl(reportId);
    content.url = this.url;
    content.node
      .querySelector('iframe')
      ?.setAttribute('title', trans.__('Performance Advisor report'));

    this._xlsxUrl = client.url(
      `performance-advisor/reports/${encodeURIComponent(reportId)}/xlsx`
    );
    this._jsonUrl = client.url(
      `performance-advisor/reports/${encodeURIComponent(reportId)}/json`
    );

    const openButton = new ToolbarButton({
      icon: launchIcon,
      label: trans.__('Open in New Browser Tab'),
      tooltip: trans.__('Open this report in a new browser tab'),
      onClick: () => {
        window.open(this.url, '_blank', 'noopener,noreferrer');
      }
    });
    this._xlsxButton = new ToolbarButton({
      icon: downloadIcon,
      label: trans.__('XLSX'),
      tooltip: trans.__('Download the XLSX workbook'),
      onClick: () => download(this._xlsxUrl)
    });
    this._jsonButton = new ToolbarButton({
      icon: downloadIcon,
      label: trans.__('JSON'),
      tooltip: trans.__('Download the JSON report'),
      onClick: () => download(this._jsonUrl)
    });
    this._notebookButton = new ToolbarButton({
      icon: notebookIcon,
      label: trans.__('Open as Notebook'),
      tooltip: trans.__(
        'Write this report as a notebook next to it and open the notebook'
      ),
      onClick: () => options.onOpenNotebook?.()
    });
    // Shown once the task is known to have a JSON report (the notebook is built from it).
    this._notebookButton.setHidden(true);
    openButton.addClass('jp-pa-open-new-tab');
    this._notebookButton.addClass('jp-pa-open-notebook');
    this._xlsxButton.addClass('jp-pa-download-xlsx');
    this._jsonButton.addClass('jp-pa-download-json');
    this.toolbar.addItem('open-in-new-tab', openButton);
    this.toolbar.addItem('download-xlsx', this._xlsxButton);
    this.toolbar.addItem('download-json', this._jsonButton);
    if (options.onOpenNotebook) {
      this.toolbar.addItem('open-notebook', this._notebookButton);
    }

    if (options.task) {
      this.updateFromTask(options.task);
    } else {
      void this._client
        .getTask(reportId)
        .then(task => this.updateFromTask(task))
        .catch(() => {
          // Keep the contract URLs: the buttons still work if the files exist.
        });
    }
  }

  /**
   * The id of the task whose report is shown.
   */
  readonly reportId: string;

  /**
   * The URL of the HTML report.
   */
  readonly url: string;

  /**
   * The URL the XLSX button downloads.
   */
  get xlsxUrl(): string | null {
    return this._xlsxButton.isHidden ? null : this._xlsxUrl;
  }

  /**
   * The URL the JSON button downloads.
   */
  get jsonUrl(): string | null {
    return this._jsonButton.isHidden ? null : this._jsonUrl;
  }

  /**
   * Set the tab title (the profile name).
   */
  setTitle(title: string): void {
    this.title.label = title;
    this.title.caption = title;
  }

  /**
   * Use the report URLs the server gave for this task; hide missing downloads. The profile name
   * titles the tab only when it was opened without a title (the panel gives one that no other
   * tab has).
   */
  updateFromTask(task: ITaskSummary): void {
    if (this.isDisposed) {
      return;
    }
    if (task.title && !this._titled) {
      this.setTitle(task.title);
    }
    const { xlsx, json } = task.reports ?? { xlsx: null, json: null };
    if (xlsx) {
      this._xlsxUrl = this._client.url(xlsx);
    }
    if (json) {
      this._jsonUrl = this._client.url(json);
    }
    this._xlsxButton.setHidden(!xlsx);
    this._jsonButton.setHidden(!json);
    this._notebookButton.setHidden(!json);
  }

  /**
   * Whether the "Open as Notebook" button is offered.
   */
  get notebookOffered(): boolean {
    return !this._notebookButton.isHidden && !!this._notebookButton.parent;
  }

  private _client: AdvisorClient;
  private _titled: boolean;
  private _xlsxUrl: string;
  private _jsonUrl: string;
  private _xlsxButton: ToolbarButton;
  private _jsonButton: ToolbarButton;
  private _notebookButton: ToolbarButton;
}

/**
 * A namespace for ReportWidget statics.
 */
export namespace ReportWidget {
  /**
   * Instantiation options.
   */
  export interface IOptions {
    reportId: string;
    title: string;
    client: AdvisorClient;
    trans: TranslationBundle;
    /**
     * The task, when known; otherwise it is fetched to find the downloads.
     */
    task?: ITaskSummary;
    /**
     * Open this report as a notebook; without it the toolbar has no such button.
     */
    onOpenNotebook?: () => void;
  }

  /**
   * The stable widget id of the tab showing a report.
   */
  export function widgetId(reportId: string): string {
    return `performance-advisor-report-${reportId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }
}

/**
 * Download a file through a temporary `<a download>`: the browser sends the session
 * cookie, and nothing is read into the page.
 */
export function download(url: string): void {
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = '';
  anchor.rel = 'noopener';
  anchor.style.display = 'none';
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
}
