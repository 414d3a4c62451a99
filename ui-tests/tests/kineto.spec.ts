import { expect, galata, test } from '@jupyterlab/galata';

import {
  followRow,
  keepScreenshot,
  openPanelFromLauncher,
  PLUGIN_ID,
  submitFromForm
} from './helpers';

/**
 * PyTorch profiler (Kineto) traces through the panel: a single trace file and a folder of traces
 * (the server copies tests/data/kineto's CPU traces to `<root>/kineto_host_bound.pt.trace.json.gz`
 * and `<root>/kineto_ddp`, see ../jupyter_server_test_config.py). The path check, the form and the
 * report say "PyTorch profiler trace", not CANN wording.
 */

test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  }
});

const CASES = [
  {
    name: 'a trace file',
    path: './kineto_host_bound.pt.trace.json.gz',
    title: 'kineto_host_bound.pt.trace.json.gz',
    profile: 'PyTorch profiler trace (CPU), 1 rank, steps 2–3'
  },
  {
    name: 'a folder of traces',
    path: './kineto_ddp',
    title: 'kineto_ddp',
    profile: 'PyTorch profiler trace (CPU), 2 ranks, steps 2–3'
  }
];

test.describe('PyTorch profiler traces', () => {
  for (const kase of CASES) {
    test(`analyses ${kase.name} and the report names it`, async ({ page }) => {
      const panel = await openPanelFromLauncher(page);
      await panel.locator('#jp-pa-data-path').fill(kase.path);
      await expect(panel.locator('#jp-pa-data-validation')).toHaveText(
        kase.profile
      );
      // The CANN and torch hints do not apply to a PyTorch profiler trace.
      await panel.locator('#jp-pa-advanced-toggle').click();
      await expect(panel.locator('#jp-pa-version-note')).toHaveText(
        'The data is a PyTorch profiler trace: the CANN and torch versions do not apply to it.'
      );
      await expect(panel.locator('#jp-pa-cann-version')).toHaveCount(0);
      await expect(panel.locator('#jp-pa-torch-version')).toHaveCount(0);

      const task = await submitFromForm(
        page,
        panel,
        'local',
        kase.path,
        kase.profile
      );
      expect(task.title).toBe(kase.title);
      const row = panel.locator(`tr[data-task-id="${task.id}"]`);
      await followRow(row, 'success');
      await expect(row.locator('.jp-pa-status-label')).toHaveText('Success');

      await row.getByRole('button', { name: 'View report' }).click();
      const frame = page.frameLocator('.jp-pa-ReportWidget iframe');
      const header = frame.locator('#pa-header');
      await expect(header).toContainText(kase.profile, { timeout: 60_000 });
      await expect(header).not.toContainText('CANN');
      await keepScreenshot(page, `kineto-report-${task.title}`);
    });
  }
});
