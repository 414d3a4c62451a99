import { ServerConnection } from '@jupyterlab/services';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import plugins from '../index';
import { CommandIDs, IPerformanceAdvisor, PLUGIN_ID } from '../tokens';
import { AdvisorPanel } from '../widgets/panel';
import { ReportWidget } from '../widgets/reportViewer';
import {
  makeTask,
  OPTIONS_REPLY,
  OPTIONS_REPLY_DEFAULTS,
  waitFor
} from './utils';

const [plugin, fileBrowserPlugin] = plugins;

describe('plugin', () => {
  let app: any;
  let advisor: IPerformanceAdvisor;
  let fetchMock: jest.Mock;
  let posted: { url: string; body: string }[];
  let added: Widget[];
  let launcher: { add: jest.Mock };
  let palette: { addItem: jest.Mock };

  beforeEach(() => {
    added = [];
    posted = [];
    fetchMock = jest.fn(async (request: Request) => {
      const { method } = request;
      const url = request.url.split('?')[0];
      if (method === 'POST') {
        posted.push({ url, body: await request.text() });
      }
      const body =
        method === 'POST' && url.endsWith('/api/tasks/r1/notebook')
          ? { path: 'reports/profiling_dir1.ipynb' }
          : method === 'POST'
            ? makeTask({
                ...JSON.parse(posted[posted.length - 1].body),
                id: 'n1'
              })
            : url.includes('/api/options')
              ? OPTIONS_REPLY
              : url.includes('/api/tasks/r1')
                ? makeTask({
                    id: 'r1',
                    status: 'success',
                    reports: {
                      html: 'performance-advisor/reports/r1',
                      xlsx: null,
                      json: 'performance-advisor/reports/r1/json'
                    }
                  })
                : { tasks: [] };
      return new Response(JSON.stringify(body), {
        status: method === 'POST' ? 201 : 200,
        headers: { 'Content-Type': 'application/json' }
      });
    });
    app = {
      commands: new CommandRegistry(),
      shell: {
        add: jest.fn((widget: Widget) => {
          added.push(widget);
          Widget.attach(widget, document.body);
        }),
        activateById: jest.fn()
      },
      serviceManager: {
        serverSettings: ServerConnection.makeSettings({
          baseUrl: 'http://localhost:8888/base/',
          fetch: fetchMock as any
        })
      }
    };
    launcher = { add: jest.fn() };
    palette = { addItem: jest.fn() };
    advisor = plugin.activate(
      app,
      launcher,
      palette,
      null,
      null,
      null
    ) as IPerformanceAdvisor;
  });

  afterEach(() => {
    added.forEach(widget => widget.dispose());
    document.body.innerHTML = '';
  });

  it('is an auto-started plugin with optional tokens only', () => {
    expect(plugin.id).toBe(PLUGIN_ID);
    expect(plugin.autoStart).toBe(true);
    expect(plugin.requires ?? []).toHaveLength(0);
    expect(plugin.optional).toHaveLength(5);
  });

  it('provides IPerformanceAdvisor, which the file browser actions require', () => {
    expect(plugin.provides).toBe(IPerformanceAdvisor);
    expect(fileBrowserPlugin.requires).toContain(IPerformanceAdvisor);
    expect(typeof advisor.submit).toBe('function');
  });

  it('submits through the REST client with the default options', async () => {
    const seen: string[] = [];
    advisor.taskChanged.connect((_, task) => seen.push(task.id));
    const task = await advisor.analyze('profiling_dir1');
    expect(task.id).toBe('n1');
    expect(posted.map(p => p.url)).toEqual([
      'http://localhost:8888/base/performance-advisor/api/tasks'
    ]);
    // The Submit form's request without advanced settings: every option at the server's default.
    expect(JSON.parse(posted[0].body)).toEqual({
      source: 'local',
      path: 'profiling_dir1',
      compare: null,
      options: OPTIONS_REPLY_DEFAULTS,
      output_path: 'performance_advisor_reports',
      language: 'en'
    });
    expect(seen).toEqual(['n1']);
  });

  it('opens a report, the panel and a notebook through the token', async () => {
    const report = await advisor.openReport('r1');
    expect(report).toBeInstanceOf(ReportWidget);
    expect(report.title.label).toBe('profiling_dir1');
    // Offered once the task is known to have a JSON report.
    await waitFor(() => (report as ReportWidget).notebookOffered);

    const panel = (await advisor.openPanel('reports')) as any;
    expect(panel.content).toBeInstanceOf(AdvisorPanel);
    expect(panel.content.currentTab).toBe('reports');

    const opened: string[] = [];
    app.commands.addCommand('docmanager:open', {
      execute: (args: any) => opened.push(args.path)
    });
    const path = await app.commands.execute(CommandIDs.openNotebook, {
      id: 'r1'
    });
    expect(path).toBe('reports/profiling_dir1.ipynb');
    expect(opened).toEqual(['reports/profiling_dir1.ipynb']);
  });

  it('adds a launcher tile in "Other" and a palette entry', () => {
    expect(launcher.add).toHaveBeenCalledWith(
      expect.objectContaining({ command: CommandIDs.open, category: 'Other' })
    );
    expect(palette.addItem).toHaveBeenCalledWith(
      expect.objectContaining({ command: CommandIDs.open })
    );
    expect(app.commands.label(CommandIDs.open)).toBe('Performance Advisor');
  });

  it('opens a single panel', async () => {
    const first = await app.commands.execute(CommandIDs.open);
    const second = await app.commands.execute(CommandIDs.open);
    expect(first).toBe(second);
    expect(first.content).toBeInstanceOf(AdvisorPanel);
    expect(first.id).toBe('performance-advisor-panel');
    expect(app.shell.add).toHaveBeenCalledTimes(1);
    expect(app.shell.activateById).toHaveBeenLastCalledWith(
      'performance-advisor-panel'
    );
  });

  it('opens a single panel when clicked twice quickly', async () => {
    const [a, b] = await Promise.all([
      app.commands.execute(CommandIDs.open),
      app.commands.execute(CommandIDs.open)
    ]);
    expect(a).toBe(b);
    expect(app.shell.add).toHaveBeenCalledTimes(1);
  });

  it('opens one sandboxed tab per report', async () => {
    const report = await app.commands.execute(CommandIDs.openReport, {
      id: 'r1',
      title: 'profiling_dir1'
    });
    expect(report).toBeInstanceOf(ReportWidget);
    expect(report.title.label).toBe('profiling_dir1');
    const iframe = report.node.querySelector('iframe') as HTMLIFrameElement;
    expect(iframe.getAttribute('sandbox')).toBe('allow-scripts');
    expect(iframe.getAttribute('src')).toBe(
      'http://localhost:8888/base/performance-advisor/reports/r1'
    );
    const again = await app.commands.execute(CommandIDs.openReport, {
      id: 'r1',
      title: 'profiling_dir1'
    });
    expect(again).toBe(report);
    const other = await app.commands.execute(CommandIDs.openReport, {
      id: 'r2',
      title: 'other'
    });
    expect(other).not.toBe(report);
    expect(app.shell.add).toHaveBeenCalledTimes(2);
  });

  it('refuses to open a report without an id', async () => {
    await expect(
      app.commands.execute(CommandIDs.openReport, { title: 'x' })
    ).rejects.toThrow('needs an "id"');
  });
});
