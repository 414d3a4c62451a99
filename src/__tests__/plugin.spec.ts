import { ServerConnection } from '@jupyterlab/services';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import plugin from '../index';
import { CommandIDs, PLUGIN_ID } from '../tokens';
import { AdvisorPanel } from '../widgets/panel';
import { ReportWidget } from '../widgets/reportViewer';

describe('plugin', () => {
  let app: any;
  let added: Widget[];
  let launcher: { add: jest.Mock };
  let palette: { addItem: jest.Mock };

  beforeEach(() => {
    added = [];
    const fetchMock = jest.fn(
      async () =>
        new Response(JSON.stringify({ tasks: [] }), {
          status: 200,
          headers: { 'Content-Type': 'application/json' }
        })
    );
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
    plugin.activate(app, launcher, palette, null, null, null);
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
