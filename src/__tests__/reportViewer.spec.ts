import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';

import { AdvisorClient } from '../request';
import { REPORT_SANDBOX, ReportWidget } from '../widgets/reportViewer';
import { makeTask } from './utils';

const trans = nullTranslator.load('jupyterlab_performance_advisor');

function makeClient(getTask: jest.Mock) {
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/base/'
  });
  const client = new AdvisorClient(settings);
  (client as any).getTask = getTask;
  return client;
}

describe('ReportWidget', () => {
  it('sandboxes the report: scripts only, never same-origin', () => {
    expect(REPORT_SANDBOX).toEqual(['allow-scripts']);
    const task = makeTask({
      id: 'r1',
      status: 'success',
      title: 'profiling_dir1',
      reports: {
        html: 'performance-advisor/reports/r1',
        xlsx: 'performance-advisor/reports/r1/xlsx',
        json: 'performance-advisor/reports/r1/json'
      }
    });
    const widget = new ReportWidget({
      reportId: 'r1',
      title: 'profiling_dir1',
      client: makeClient(jest.fn()),
      trans,
      task
    });
    const iframe = widget.content.node.querySelector('iframe')!;
    expect(iframe.getAttribute('sandbox')).toBe('allow-scripts');
    expect(iframe.getAttribute('sandbox')).not.toContain('allow-same-origin');
    expect(iframe.getAttribute('referrerpolicy')).toBe('no-referrer');
    expect(iframe.getAttribute('src')).toBe(
      'http://localhost:8888/base/performance-advisor/reports/r1'
    );
    expect(widget.id).toBe('performance-advisor-report-r1');
    expect(widget.title.label).toBe('profiling_dir1');
    expect(widget.xlsxUrl).toBe(
      'http://localhost:8888/base/performance-advisor/reports/r1/xlsx'
    );
    expect(widget.jsonUrl).toBe(
      'http://localhost:8888/base/performance-advisor/reports/r1/json'
    );
    widget.dispose();
  });

  it('fetches the task to find its downloads and hides missing ones', async () => {
    const task = makeTask({
      id: 'r2',
      status: 'success',
      title: 'cluster_run',
      reports: {
        html: 'performance-advisor/reports/r2',
        xlsx: 'performance-advisor/reports/r2/xlsx',
        json: null
      }
    });
    const getTask = jest.fn(async () => task);
    const widget = new ReportWidget({
      reportId: 'r2',
      title: '',
      client: makeClient(getTask),
      trans
    });
    expect(getTask).toHaveBeenCalledWith('r2');
    await getTask.mock.results[0].value;
    await Promise.resolve();
    expect(widget.title.label).toBe('cluster_run');
    expect(widget.xlsxUrl).toContain('/performance-advisor/reports/r2/xlsx');
    expect(widget.jsonUrl).toBeNull();
    widget.dispose();
  });

  it('makes ids safe for the DOM', () => {
    expect(ReportWidget.widgetId('a b/c')).toBe(
      'performance-advisor-report-a_b_c'
    );
  });
});
