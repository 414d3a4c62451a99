import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ReportLanguage } from './settings';

import {
  ICancelReply,
  IInspectReply,
  INotebookReply,
  IOptionsReply,
  ISubmitRequest,
  ITask,
  ITaskListQuery,
  ITaskListReply,
  SourceKind,
  URL_NAMESPACE
} from './tokens';

/**
 * Query parameters of a request.
 */
export type QueryParams = Record<string, string | number | boolean>;

/**
 * Call the Performance Advisor REST API.
 *
 * `ServerConnection.makeRequest` adds the token and the XSRF header.
 *
 * @param endPoint - API path relative to `<base url>/performance-advisor/`
 * @param serverSettings - The server settings (`app.serviceManager.serverSettings`)
 * @param init - Initial values for the request
 * @param query - Query parameters, URL-encoded and appended to the URL
 * @returns The decoded JSON body (`undefined` for an empty body, e.g. 204)
 * @throws ServerConnection.ResponseError carrying the server's `{message}`
 */
export async function requestAPI<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit = {},
  query?: QueryParams
): Promise<T> {
  let url = URLExt.join(serverSettings.baseUrl, URL_NAMESPACE, endPoint);
  if (query) {
    url += URLExt.objectToQueryString(query);
  }

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, serverSettings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: any = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }

  if (!response.ok) {
    throw new ServerConnection.ResponseError(
      response,
      errorMessage(response, data)
    );
  }
  return data as T;
}

/**
 * The message to show for a failed response: the server's `{message}` when there is one.
 */
export function errorMessage(response: Response, data: unknown): string {
  if (data && typeof data === 'object') {
    const message = (data as { message?: unknown }).message;
    if (typeof message === 'string' && message.trim()) {
      return message;
    }
  }
  // Not a JSON API error (e.g. an HTML error page from a proxy): show the status.
  return `${response.status} ${response.statusText}`.trim();
}

/**
 * The HTTP status of a failed request, when the server answered.
 */
export function errorStatus(error: unknown): number | null {
  if (error instanceof ServerConnection.ResponseError) {
    return error.response.status;
  }
  return null;
}

/**
 * A readable one-line message for any error thrown by the client.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * Typed client of the Performance Advisor REST API.
 */
export class AdvisorClient {
  constructor(serverSettings: ServerConnection.ISettings) {
    this.serverSettings = serverSettings;
  }

  /**
   * The server settings used for every request.
   */
  readonly serverSettings: ServerConnection.ISettings;

  /**
   * Option choices and defaults (`GET api/options`).
   */
  options(): Promise<IOptionsReply> {
    return requestAPI<IOptionsReply>('api/options', this.serverSettings);
  }

  /**
   * Check a profiling path before submitting (`GET api/inspect`).
   *
   * @param language - the language of the reply's summary (the panel's)
   * @returns `{ok: false, message}` for a path that is not (yet) usable
   * @throws ServerConnection.ResponseError with the server's message (400) for
   * a folder the analysis refuses, e.g. rank folders of several runs
   */
  inspect(
    source: SourceKind,
    path: string,
    language: ReportLanguage = 'en'
  ): Promise<IInspectReply> {
    return requestAPI<IInspectReply>(
      'api/inspect',
      this.serverSettings,
      {},
      { source, path, language }
    );
  }

  /**
   * Check a training log beside the profiling data (`GET api/inspect` with
   * `input=training_log`): a local file the server recognises as a training log.
   *
   * @param language - the language of the reply's summary (the panel's)
   * @returns `{ok: false, message}` for a path that is not (yet) a training log
   */
  inspectTrainingLog(
    path: string,
    language: ReportLanguage = 'en'
  ): Promise<IInspectReply> {
    return requestAPI<IInspectReply>(
      'api/inspect',
      this.serverSettings,
      {},
      { source: 'local', path, language, input: 'training_log' }
    );
  }

  /**
   * A page of tasks, newest first, or the changes after a token (`GET api/tasks`).
   */
  listTasks(query: ITaskListQuery = {}): Promise<ITaskListReply> {
    return requestAPI<ITaskListReply>(
      'api/tasks',
      this.serverSettings,
      {},
      { ...query }
    );
  }

  /**
   * Submit an analysis (`POST api/tasks`).
   */
  submit(request: ISubmitRequest): Promise<ITask> {
    return requestAPI<ITask>('api/tasks', this.serverSettings, {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  /**
   * One task (`GET api/tasks/{id}`).
   */
  getTask(id: string): Promise<ITask> {
    return requestAPI<ITask>(
      `api/tasks/${encodeURIComponent(id)}`,
      this.serverSettings
    );
  }

  /**
   * Cancel a queued or running task, or delete a finished one (`DELETE api/tasks/{id}`).
   *
   * @returns The cancelled task, or `null` when a finished task was deleted (204).
   */
  async cancelOrDelete(id: string): Promise<ITask | null> {
    const reply = await requestAPI<ICancelReply | undefined>(
      `api/tasks/${encodeURIComponent(id)}`,
      this.serverSettings,
      { method: 'DELETE' }
    );
    return reply && reply.task ? reply.task : null;
  }

  /**
   * Write a successful task's report as a notebook next to it (`POST api/tasks/{id}/notebook`).
   *
   * @returns The notebook's path relative to the server root.
   * @throws ServerConnection.ResponseError with the server's one-line reason (409: the task did not
   * succeed or its reports are not in a local folder under the root; 404: the report is gone)
   */
  async createNotebook(id: string): Promise<string> {
    const reply = await requestAPI<INotebookReply>(
      `api/tasks/${encodeURIComponent(id)}/notebook`,
      this.serverSettings,
      { method: 'POST' }
    );
    return reply.path;
  }

  /**
   * Absolute URL of a server-relative path such as `task.reports.xlsx`.
   */
  url(relative: string): string {
    return URLExt.join(this.serverSettings.baseUrl, relative);
  }

  /**
   * URL of the log of a task (`GET api/tasks/{id}/log`, plain text).
   */
  logUrl(id: string): string {
    return URLExt.join(
      this.serverSettings.baseUrl,
      URL_NAMESPACE,
      'api/tasks',
      encodeURIComponent(id),
      'log'
    );
  }

  /**
   * URL of the HTML report of a task.
   */
  reportUrl(id: string): string {
    return URLExt.join(
      this.serverSettings.baseUrl,
      URL_NAMESPACE,
      'reports',
      encodeURIComponent(id)
    );
  }
}
