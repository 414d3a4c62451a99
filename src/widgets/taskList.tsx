import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { duration, formatDateTime, queuedFor, stageLabel } from '../format';
import { isActive, isFinished, statusLabel, TaskListModel } from '../model';
import { AdvisorClient, describeError } from '../request';
import { ITaskSummary } from '../tokens';
import { useSignal } from './common';

/**
 * Properties of the task table.
 */
export interface ITaskListProps {
  model: TaskListModel;
  client: AdvisorClient;
  trans: TranslationBundle;
  /**
   * Open the HTML report of a successful task.
   */
  onOpenReport: (task: ITaskSummary) => void;
  /**
   * Open a successful task's report as a notebook (shown when the task has a JSON report).
   */
  onOpenNotebook?: (task: ITaskSummary) => void;
  /**
   * JupyterLab's UI language (`translator.languageCode`): dates are written in it.
   */
  lang?: string;
}

/**
 * Ask before deleting a finished task's report.
 */
export async function confirmDelete(
  trans: TranslationBundle
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Delete report'),
    body: trans.__(
      'Delete this report? The report files are deleted; the profiling data is not touched.'
    ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: trans.__('Delete') })
    ]
  });
  return result.button.accept;
}

/**
 * The status cell: the label; while analyzing, a progress bar and the stage; when the task failed
 * (or was cancelled or interrupted), a button that shows the reason under the row.
 */
function StatusCell(props: {
  task: ITaskSummary;
  trans: TranslationBundle;
  expanded: boolean;
  onToggle: () => void;
}): JSX.Element {
  const { task, trans } = props;
  const progress = task.status === 'analyzing' ? task.progress : null;
  return (
    <td
      className={`jp-pa-status jp-pa-status-${task.status}`}
      data-status={task.status}
    >
      <span className="jp-pa-status-label">
        {statusLabel(task.status, trans)}
      </span>
      {task.error && (
        <button
          type="button"
          className="jp-pa-details-toggle"
          aria-expanded={props.expanded}
          aria-controls={`jp-pa-details-${task.id}`}
          onClick={props.onToggle}
        >
          {props.expanded ? (
            <caretDownIcon.react tag="span" className="jp-pa-caret" />
          ) : (
            <caretRightIcon.react tag="span" className="jp-pa-caret" />
          )}
          {trans.__('Details')}
        </button>
      )}
      {progress && (
        <div className="jp-pa-progress">
          <progress
            max={Math.max(progress.total, 1)}
            value={Math.min(progress.done, Math.max(progress.total, 1))}
            aria-label={trans.__('Analysis progress')}
          />
          <span className="jp-pa-stage">
            {stageLabel(progress.stage, trans)}
          </span>
        </div>
      )}
    </td>
  );
}

/**
 * The current time, ticking every second while `ticking` (a running task's duration grows).
 */
function useNow(ticking: boolean): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!ticking) {
      return;
    }
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [ticking]);
  return ticking ? now : Date.now();
}

/**
 * The Reports tab: the tasks loaded so far, newest first, and a button for older ones.
 */
export function TaskList(props: ITaskListProps): JSX.Element {
  const { model, client, trans } = props;
  useSignal(model.changed);
  const [busy, setBusy] = React.useState<Set<string>>(new Set());
  const [expanded, setExpanded] = React.useState<Set<string>>(new Set());
  const now = useNow(model.tasks.some(task => isActive(task.status)));
  const toggle = (id: string) =>
    setExpanded(current => {
      const next = new Set(current);
      if (!next.delete(id)) {
        next.add(id);
      }
      return next;
    });

  const act = async (task: ITaskSummary, action: 'cancel' | 'delete') => {
    if (action === 'delete' && !(await confirmDelete(trans))) {
      return;
    }
    setBusy(current => new Set(current).add(task.id));
    try {
      await client.cancelOrDelete(task.id);
    } catch (error) {
      void showErrorMessage(
        action === 'cancel'
          ? trans.__('Cancel failed')
          : trans.__('Delete failed'),
        describeError(error)
      );
    } finally {
      setBusy(current => {
        const next = new Set(current);
        next.delete(task.id);
        return next;
      });
      await model.refresh();
    }
  };

  const tasks = model.tasks;
  return (
    <div className="jp-pa-reports">
      {model.error && (
        <div className="jp-pa-error" role="alert">
          {trans.__('Could not refresh the task list: %1', model.error)}
        </div>
      )}
      {!model.loaded ? (
        <p className="jp-pa-empty">{trans.__('Loading…')}</p>
      ) : tasks.length === 0 ? (
        <p className="jp-pa-empty">
          {trans.__('No analyses yet. Submit one from the Submit tab.')}
        </p>
      ) : (
        <table className="jp-pa-table" aria-label={trans.__('Analyses')}>
          <colgroup>
            <col className="jp-pa-col-path" />
            <col className="jp-pa-col-compare" />
            <col className="jp-pa-col-time" />
            <col className="jp-pa-col-duration" />
            <col className="jp-pa-col-status" />
            <col className="jp-pa-col-actions" />
          </colgroup>
          <thead>
            <tr>
              <th scope="col" title={trans.__('Data path')}>
                {trans.__('Data path')}
              </th>
              <th scope="col" title={trans.__('Compared path')}>
                {trans.__('Compared path')}
              </th>
              <th scope="col" title={trans.__('Submitted')}>
                {trans.__('Submitted')}
              </th>
              <th scope="col" title={trans.__('Duration')}>
                {trans.__('Duration')}
              </th>
              <th scope="col" title={trans.__('Status')}>
                {trans.__('Status')}
              </th>
              <th scope="col" title={trans.__('Actions')}>
                {trans.__('Actions')}
              </th>
            </tr>
          </thead>
          <tbody>
            {tasks.map(task => {
              const pending = busy.has(task.id);
              const success = task.status === 'success';
              const open = expanded.has(task.id) && !!task.error;
              return (
                <React.Fragment key={task.id}>
                  <tr data-task-id={task.id} data-status={task.status}>
                    <td className="jp-pa-path-cell" title={task.path}>
                      {task.path}
                    </td>
                    <td
                      className="jp-pa-path-cell"
                      title={task.compare ? task.compare.path : undefined}
                    >
                      {task.compare ? task.compare.path : '—'}
                    </td>
                    <td className="jp-pa-time" title={task.created}>
                      {formatDateTime(task.created, props.lang)}
                    </td>
                    <td
                      className="jp-pa-duration"
                      title={queuedFor(task, trans, now)}
                    >
                      {duration(task, trans, now)}
                    </td>
                    <StatusCell
                      task={task}
                      trans={trans}
                      expanded={open}
                      onToggle={() => toggle(task.id)}
                    />
                    <td className="jp-pa-actions-cell">
                      <div className="jp-pa-actions-group">
                        {success && task.reports.html && (
                          <button
                            type="button"
                            className="jp-mod-styled jp-mod-accept jp-pa-action"
                            data-action="view"
                            aria-label={trans.__('View report')}
                            onClick={() => props.onOpenReport(task)}
                          >
                            {trans.__('View')}
                          </button>
                        )}
                        {success &&
                          task.reports.json &&
                          props.onOpenNotebook && (
                            <button
                              type="button"
                              className="jp-mod-styled jp-pa-action"
                              data-action="notebook"
                              aria-label={trans.__('Open report as notebook')}
                              onClick={() => props.onOpenNotebook?.(task)}
                            >
                              {trans.__('Notebook')}
                            </button>
                          )}
                        {success && task.reports.xlsx && (
                          <a
                            className="jp-pa-action jp-pa-link"
                            data-action="xlsx"
                            aria-label={trans.__('Download XLSX report')}
                            href={client.url(task.reports.xlsx)}
                            download
                          >
                            {trans.__('XLSX')}
                          </a>
                        )}
                        {success && task.reports.json && (
                          <a
                            className="jp-pa-action jp-pa-link"
                            data-action="json"
                            aria-label={trans.__('Download JSON report')}
                            href={client.url(task.reports.json)}
                            download
                          >
                            {trans.__('JSON')}
                          </a>
                        )}
                        {isActive(task.status) && (
                          <button
                            type="button"
                            className="jp-mod-styled jp-mod-reject jp-pa-action"
                            data-action="cancel"
                            aria-label={trans.__('Cancel analysis')}
                            disabled={pending}
                            onClick={() => void act(task, 'cancel')}
                          >
                            {trans.__('Cancel')}
                          </button>
                        )}
                        {isFinished(task.status) && (
                          <button
                            type="button"
                            className="jp-mod-styled jp-mod-warn jp-pa-action"
                            data-action="delete"
                            aria-label={trans.__('Delete report')}
                            disabled={pending}
                            onClick={() => void act(task, 'delete')}
                          >
                            {trans.__('Delete')}
                          </button>
                        )}
                      </div>
                    </td>
                  </tr>
                  {open && (
                    <tr
                      className="jp-pa-details-row"
                      data-details-for={task.id}
                    >
                      <td colSpan={6} id={`jp-pa-details-${task.id}`}>
                        <div className="jp-pa-details">
                          <span className="jp-pa-details-label">
                            {trans.__('Reason:')}
                          </span>{' '}
                          <span className="jp-pa-error-text">{task.error}</span>
                        </div>
                        <a
                          className="jp-pa-link jp-pa-log-link"
                          href={client.logUrl(task.id)}
                          target="_blank"
                          rel="noopener noreferrer"
                        >
                          {trans.__('Open the task log')}
                        </a>
                      </td>
                    </tr>
                  )}
                </React.Fragment>
              );
            })}
          </tbody>
        </table>
      )}
      {model.loaded && model.hasMore && (
        <div className="jp-pa-more">
          <button
            type="button"
            className="jp-mod-styled jp-pa-load-more"
            disabled={model.loadingMore}
            onClick={() => void model.loadMore()}
          >
            {model.loadingMore
              ? trans.__('Loading…')
              : trans.__('Show older analyses')}
          </button>
        </div>
      )}
    </div>
  );
}
