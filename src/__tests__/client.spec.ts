import { ServerConnection } from '@jupyterlab/services';

import {
  AdvisorClient,
  describeError,
  errorStatus,
  requestAPI
} from '../request';
import { listReply, makeTask, OPTIONS_REPLY } from './utils';

const BASE_URL = 'http://localhost:8888/lab-base/';

type Reply = { status: number; body?: unknown; raw?: string };

/**
 * A client whose `fetch` answers from `replies` and records every request.
 */
function makeClient(...replies: Reply[]) {
  const requests: Request[] = [];
  const bodies: string[] = [];
  const fetchMock = jest.fn(async (request: Request) => {
    requests.push(request);
    bodies.push(await request.clone().text());
    const reply = replies.shift() ?? {
      status: 500,
      body: { message: 'no reply' }
    };
    const text =
      reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
    return new Response(reply.status === 204 ? null : text, {
      status: reply.status,
      headers: { 'Content-Type': 'application/json' }
    });
  });
  const settings = ServerConnection.makeSettings({
    baseUrl: BASE_URL,
    fetch: fetchMock as unknown as typeof fetch
  });
  return { client: new AdvisorClient(settings), requests, bodies, fetchMock };
}

describe('AdvisorClient', () => {
  it('gets the option schema from api/options', async () => {
    const { client, requests } = makeClient({
      status: 200,
      body: OPTIONS_REPLY
    });
    const reply = await client.options();
    expect(reply).toEqual(OPTIONS_REPLY);
    const url = new URL(requests[0].url);
    expect(url.pathname).toBe('/lab-base/performance-advisor/api/options');
    expect(requests[0].method).toBe('GET');
  });

  it('inspects a path with URL-encoded query parameters', async () => {
    const { client, requests } = makeClient({
      status: 200,
      body: {
        ok: true,
        summary: '2 ranks, text export, steps 12–14',
        path: 'p'
      }
    });
    const reply = await client.inspect('local', './dir with space/&x=1');
    expect(reply.ok).toBe(true);
    expect(reply.summary).toBe('2 ranks, text export, steps 12–14');
    const url = new URL(requests[0].url);
    expect(url.pathname).toBe('/lab-base/performance-advisor/api/inspect');
    expect(url.searchParams.get('source')).toBe('local');
    // `..`, spaces and `&` must survive: the server, not the URL parser, resolves paths.
    expect(url.searchParams.get('path')).toBe('./dir with space/&x=1');
  });

  it('inspects a training log as one, in the asked language', async () => {
    const { client, requests } = makeClient({
      status: 200,
      body: {
        ok: true,
        summary: 'LLaMA-Factory 日志，1,200 条记录，step 10–12,000',
        path: './out/trainer_log.jsonl',
        version_hints: false,
        kind: 'training_log'
      }
    });
    const reply = await client.inspectTrainingLog(
      './out/trainer_log.jsonl',
      'zh'
    );
    expect(reply.kind).toBe('training_log');
    const url = new URL(requests[0].url);
    expect(url.pathname).toBe('/lab-base/performance-advisor/api/inspect');
    const query = ['source', 'path', 'language', 'input'].map(name =>
      url.searchParams.get(name)
    );
    expect(query).toEqual([
      'local',
      './out/trainer_log.jsonl',
      'zh',
      'training_log'
    ]);
  });

  it('rejects an inspected folder the server refuses with its {message}', async () => {
    const message =
      '/r: holds the rank folders of 2 different profiling runs (the same rank ids): a/ (ranks 0–1); b/ (ranks 0–1)';
    const { client } = makeClient({ status: 400, body: { message } });
    const error = await client.inspect('local', './r').catch(e => e);
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(errorStatus(error)).toBe(400);
    expect(describeError(error)).toBe(message);
  });

  it('lists a page of tasks, or the changes since a token', async () => {
    const reply = listReply([makeTask({ id: 'b' }), makeTask({ id: 'a' })], {
      next: 7
    });
    const { client, requests } = makeClient(
      { status: 200, body: reply },
      { status: 200, body: listReply([]) }
    );
    expect(await client.listTasks({ limit: 50, before: 9 })).toEqual(reply);
    const url = new URL(requests[0].url);
    expect(url.pathname).toBe('/lab-base/performance-advisor/api/tasks');
    expect(url.searchParams.get('limit')).toBe('50');
    expect(url.searchParams.get('before')).toBe('9');
    await client.listTasks({ limit: 50, since: 12 });
    expect(new URL(requests[1].url).searchParams.get('since')).toBe('12');
  });

  it('submits a task as a JSON POST and returns the created task', async () => {
    const created = makeTask({ id: 'new1' });
    const { client, requests, bodies } = makeClient({
      status: 201,
      body: created
    });
    const body = {
      source: 'local' as const,
      path: './profiling_dir1',
      compare: { source: 'obs' as const, path: 'obs://bucket/base' },
      options: created.options
    };
    expect(await client.submit(body)).toEqual(created);
    expect(requests[0].method).toBe('POST');
    expect(JSON.parse(bodies[0])).toEqual(body);
  });

  it('gets one task by its (encoded) id', async () => {
    const task = makeTask({ id: 'x/y' });
    const { client, requests } = makeClient({ status: 200, body: task });
    expect(await client.getTask('x/y')).toEqual(task);
    expect(new URL(requests[0].url).pathname).toBe(
      '/lab-base/performance-advisor/api/tasks/x%2Fy'
    );
  });

  it('returns the cancelled task, or null when a finished task is deleted', async () => {
    const cancelled = makeTask({ id: 't1', status: 'cancelled' });
    const { client, requests } = makeClient(
      { status: 200, body: { task: cancelled } },
      { status: 204 }
    );
    expect(await client.cancelOrDelete('t1')).toEqual(cancelled);
    expect(requests[0].method).toBe('DELETE');
    expect(await client.cancelOrDelete('t2')).toBeNull();
    expect(new URL(requests[1].url).pathname).toBe(
      '/lab-base/performance-advisor/api/tasks/t2'
    );
  });

  it("surfaces the server's {message} on a 400", async () => {
    const { client } = makeClient({
      status: 400,
      body: {
        message: 'advisor_analyze_processes must be between 1 and 8; got 9'
      }
    });
    const error = await client
      .submit({
        source: 'local',
        path: 'x',
        compare: null,
        options: makeTask().options
      })
      .catch(e => e);
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(error.message).toBe(
      'advisor_analyze_processes must be between 1 and 8; got 9'
    );
    expect(errorStatus(error)).toBe(400);
    expect(describeError(error)).toBe(
      'advisor_analyze_processes must be between 1 and 8; got 9'
    );
  });

  it("surfaces the server's {message} on a 409", async () => {
    const { client } = makeClient({
      status: 409,
      body: { message: 'task t1 is already finished' }
    });
    await expect(client.cancelOrDelete('t1')).rejects.toThrow(
      'task t1 is already finished'
    );
  });

  it('falls back to the HTTP status when the body has no message', async () => {
    const { client } = makeClient({
      status: 502,
      raw: '<html>bad gateway</html>'
    });
    const error = await client.listTasks().catch(e => e);
    expect(errorStatus(error)).toBe(502);
    expect(error.message).toContain('502');
  });

  it('wraps network failures in a NetworkError', async () => {
    const settings = ServerConnection.makeSettings({
      baseUrl: BASE_URL,
      fetch: (() => Promise.reject(new TypeError('Failed to fetch'))) as any
    });
    const error = await requestAPI('api/tasks', settings).catch(e => e);
    expect(error).toBeInstanceOf(ServerConnection.NetworkError);
    expect(errorStatus(error)).toBeNull();
  });

  it('builds report and download URLs under the base URL', () => {
    const { client } = makeClient();
    expect(client.reportUrl('abc')).toBe(
      'http://localhost:8888/lab-base/performance-advisor/reports/abc'
    );
    expect(client.url('performance-advisor/reports/abc/xlsx')).toBe(
      'http://localhost:8888/lab-base/performance-advisor/reports/abc/xlsx'
    );
  });
});
