import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { infoIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  duration,
  isActive,
  isFinished,
  statusLabel,
  TaskListModel
} from '../model';
import { AdvisorClient, describeError } from '../request';
import { ITask } from '../tokens';
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
  onOpenReport: (task: ITask) => void;
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
 * The status cell: label, progress while analyzing, reason on hover when failed.
 */
function StatusCell(props: {
  task: ITask;
  trans: TranslationBundle;
}): JSX.Element {
  const { task, trans } = props;
  const label = statusLabel(task.status, trans);
  const reason =
    task.status === 'failed' || task.status === 'interrupted'
      ? task.error || undefined
      : undefined;
  const progress = task.status === 'analyzing' ? task.progress : null;
  return (
    <td
      className={`jp-pa-status jp-pa-status-${task.status}`}
      data-status={task.status}
      title={reason}
    >
      <span className="jp-pa-status-label" title={reason}>
        {label}
      </span>
      {reason && (
        <infoIcon.react
          tag="span"
          className="jp-pa-status-info"
          title={reason}
          aria-label={trans.__('Reason: %1', reason)}
        />
      )}
      {progress && (
        <div className="jp-pa-progress">
          <progress
            max={Math.max(progress.total, 1)}
            value={Math.min(progress.done, Math.max(progress.total, 1))}
            aria-label={trans.__('Analysis progress')}
          />
          <span className="jp-pa-stage">
            {progress.total > 0
              ? trans.__(
                  '%1 (%2/%3)',
                  progress.stage,
                  progress.done,
                  progress.total
                )
              : progress.stage}
          </span>
        </div>
      )}
    </td>
  );
}

/**
 * The Reports tab: every task, newest first.
 */
export function TaskList(props: ITaskListProps): JSX.Element {
  const { model, client, trans } = props;
  useSignal(model.changed);
  const [busy, setBusy] = React.useState<Set<string>>(new Set());
  const now = Date.now();

  const act = async (task: ITask, action: 'cancel' | 'delete') => {
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
              return (
                <tr
                  key={task.id}
                  data-task-id={task.id}
                  data-status={task.status}
                >
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
                    {formatTime(task.created)}
                  </td>
                  <td className="jp-pa-duration">{duration(task, now)}</td>
                  <StatusCell task={task} trans={trans} />
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
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

/**
 * An ISO timestamp in the user's local time.
 */
export function formatTime(iso: string | null): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
