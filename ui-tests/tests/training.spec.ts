import { expect, galata, test } from '@jupyterlab/galata';
import type { FrameLocator } from '@playwright/test';

import {
  followRow,
  keepScreenshot,
  openPanelFromLauncher,
  Page,
  PLUGIN_ID,
  submitFromForm
} from './helpers';

/**
 * Training logs through the panel (issue 21): the demo job's LLaMA-Factory log, which the server
 * writes beside the demo profile (`<root>/profiling_dir1/trainer_log.jsonl`, see
 * ../jupyter_server_test_config.py), analysed alone and beside the demo profile. The report shows
 * its Training section with the charts drawn.
 */

test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  }
});

const LOG = './profiling_dir1/trainer_log.jsonl';
// The demo log's path check: LLaMA-Factory, one record every 200 of its 6,000 steps.
const LOG_SUMMARY = 'LLaMA-Factory log, 30 records, steps 200–6,000';
const PROFILE_SUMMARY = '2 ranks, text export, steps 12–14';

/**
 * The report of a finished task's row, opened with its View button.
 */
async function viewReport(
  page: Page,
  row: ReturnType<Page['locator']>,
  taskId: string
): Promise<FrameLocator> {
  await row.getByRole('button', { name: 'View report' }).click();
  const iframe = `.jp-pa-ReportWidget iframe[src$="/performance-advisor/reports/${taskId}"]`;
  await expect(page.locator(iframe)).toBeVisible();
  return page.frameLocator(iframe);
}

/**
 * The report's Training section is there, says what was read, and its charts are drawn (plotly
 * turned each into an svg; charts below the fold are drawn when scrolled near).
 */
async function expectTrainingSection(frame: FrameLocator): Promise<void> {
  const section = frame.locator('#pa-training');
  await expect(section).toBeVisible({ timeout: 60_000 });
  await expect(section).toContainText('LLaMA-Factory');
  const charts = section.locator('.pa-chart[data-figure]');
  await expect(charts.first()).toBeAttached();
  const count = await charts.count();
  expect(count).toBeGreaterThanOrEqual(1);
  for (let i = 0; i < count; i++) {
    const chart = charts.nth(i);
    await chart.scrollIntoViewIfNeeded();
    await expect(chart).toHaveAttribute('data-drawn', '');
    await expect(chart.locator('.main-svg').first()).toBeVisible();
  }
}

test.describe('Training logs', () => {
  test('a training log alone: the report shows its Training section and chart', async ({
    page
  }) => {
    const panel = await openPanelFromLauncher(page);
    await panel.locator('#jp-pa-data-path').fill(LOG);
    await expect(panel.locator('#jp-pa-data-validation')).toHaveText(
      LOG_SUMMARY
    );
    // The log is the data: no second log asked for, the devices and sequence length are, and the
    // Ascend version hints do not apply.
    await expect(panel.locator('#jp-pa-training-log')).toHaveCount(0);
    await expect(panel.locator('#jp-pa-devices')).toBeVisible();
    await expect(panel.locator('#jp-pa-seq-length')).toBeVisible();
    await panel.locator('#jp-pa-advanced-toggle').click();
    await expect(panel.locator('#jp-pa-version-note')).toHaveText(
      'The data is a training log: the CANN and torch versions do not apply to it.'
    );
    await expect(panel.locator('#jp-pa-cann-version')).toHaveCount(0);
    await panel.locator('#jp-pa-advanced-toggle').click();
    // The demo log does not state its device count: given here.
    await panel.locator('#jp-pa-devices').fill('2');
    await keepScreenshot(panel, 'training-log-alone-form');

    const task = await submitFromForm(page, panel, 'local', LOG, LOG_SUMMARY);
    expect(task.title).toBe('trainer_log.jsonl');
    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    await followRow(row, 'success');
    await expect(row.locator('.jp-pa-status-label')).toHaveText('Success');

    const frame = await viewReport(page, row, task.id);
    await expect(frame.locator('#pa-header')).toContainText(LOG_SUMMARY, {
      timeout: 60_000
    });
    await expectTrainingSection(frame);
    // The device count given in the form.
    await expect(frame.locator('#pa-training')).toContainText(
      '2 (given by the user)'
    );
    // No profile was given: no profile chart.
    await expect(frame.locator('#pa-chart-overall')).toHaveCount(0);
    await keepScreenshot(page, 'training-log-alone-report');
  });

  test('the demo profile with its training log: the report shows both', async ({
    page
  }) => {
    const panel = await openPanelFromLauncher(page);
    const task = await submitFromForm(
      page,
      panel,
      'local',
      './profiling_dir1',
      PROFILE_SUMMARY,
      { path: LOG, summary: LOG_SUMMARY }
    );
    expect(task.title).toBe('profiling_dir1');
    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    await followRow(row, 'success');

    const frame = await viewReport(page, row, task.id);
    await expect(frame.locator('#pa-header')).toContainText(PROFILE_SUMMARY, {
      timeout: 60_000
    });
    // The profile's sections, with the demo's own problem, and the log's section.
    await expect(frame.locator('#pa-chart-overall .main-svg').first()).toBeVisible();
    await expect(
      frame.locator('.pa-finding[data-check="communication.exposed"]')
    ).not.toHaveCount(0);
    await expectTrainingSection(frame);
    await keepScreenshot(page, 'training-log-beside-profile-report');
  });
});
