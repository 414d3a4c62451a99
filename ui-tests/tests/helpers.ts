import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { APIRequestContext, Locator } from '@playwright/test';

/**
 * What the spec files share: opening the panel, submitting, following a row, tasks made through
 * the REST API, report tabs and screenshots kept as test artifacts.
 *
 * The server (see ../jupyter_server_test_config.py) writes a demo profile with 2 ranks
 * into `<root>/profiling_dir1` (and a baseline for it), a generated profile with a finding in
 * every problem dimension into `<root>/profiling_all_dims`, and runs one analysis at a time.
 */

export type Page = IJupyterLabPageFixture;

export const PLUGIN_ID = 'jupyterlab-performance-advisor:plugin';
export const ANALYSIS_TIMEOUT = 90_000;

export interface ITaskJSON {
  id: string;
  status: string;
  path: string;
  compare: { source: string; path: string } | null;
  title: string;
  created: string;
  started: string | null;
  finished: string | null;
  error: string | null;
  reports: { html: string | null; xlsx: string | null; json: string | null };
}

/**
 * Open the panel from its launcher tile (named `tile` in the UI language).
 */
export async function openPanelFromLauncher(
  page: Page,
  tile = 'Performance Advisor'
): Promise<Locator> {
  const card = page.locator('.jp-LauncherCard', { hasText: tile });
  if (!(await card.isVisible())) {
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute('launcher:create');
    });
  }
  await card.click();
  const panel = page.locator('.jp-pa-AdvisorPanel');
  await expect(panel).toBeVisible();
  await expect(panel.locator('[data-tab="submit"]')).toHaveAttribute(
    'aria-selected',
    'true'
  );
  await expect(panel.locator('[data-tab="reports"]')).toHaveAttribute(
    'aria-selected',
    'false'
  );
  return panel;
}

/**
 * A training log to give beside the profiling data, and what its path check must say.
 */
export interface ITrainingLogInput {
  path: string;
  summary: string;
}

/**
 * Fill the Submit form (and the training log beside the data, if given), wait for the path
 * checks, submit; returns the created task.
 */
export async function submitFromForm(
  page: Page,
  panel: Locator,
  source: 'local' | 'obs',
  path: string,
  expectedSummary?: string,
  trainingLog?: ITrainingLogInput
): Promise<ITaskJSON> {
  await panel.locator('[data-tab="submit"]').click();
  await panel.locator('#jp-pa-data-source').selectOption(source);
  await panel.locator('#jp-pa-data-path').fill(path);

  const validation = panel.locator('#jp-pa-data-validation');
  await expect(validation).toHaveAttribute('data-status', 'ok');
  if (expectedSummary) {
    await expect(validation).toContainText(expectedSummary);
  }
  if (trainingLog) {
    await panel.locator('#jp-pa-training-log').fill(trainingLog.path);
    const logValidation = panel.locator('#jp-pa-training-log-validation');
    await expect(logValidation).toHaveAttribute('data-status', 'ok');
    await expect(logValidation).toHaveText(trainingLog.summary);
  }

  const submit = panel.locator('.jp-pa-submit');
  await expect(submit).toBeEnabled();
  await expect(panel.locator('#jp-pa-submit-reason')).toHaveText('');
  const [response] = await Promise.all([
    page.waitForResponse(
      r =>
        r.url().includes('/performance-advisor/api/tasks') &&
        r.request().method() === 'POST'
    ),
    submit.click()
  ]);
  expect(response.status()).toBe(201);
  const task = (await response.json()) as ITaskJSON;

  // A successful submission switches to the Reports tab.
  await expect(panel.locator('[data-tab="reports"]')).toHaveAttribute(
    'aria-selected',
    'true'
  );
  return task;
}

/**
 * Wait until a task row reaches `final`; returns the statuses, and the stage texts, seen on the way.
 */
export async function followRow(
  row: Locator,
  final: string
): Promise<{ statuses: string[]; stages: string[] }> {
  await expect(row).toBeVisible();
  const statuses: string[] = [];
  const stages: string[] = [];
  await expect
    .poll(
      async () => {
        const status = (await row.getAttribute('data-status')) ?? '';
        if (status && statuses[statuses.length - 1] !== status) {
          statuses.push(status);
        }
        const stage = row.locator('.jp-pa-status');
        const text = (await stage.textContent()) ?? '';
        if (text && stages[stages.length - 1] !== text) {
          stages.push(text);
        }
        return status;
      },
      { timeout: ANALYSIS_TIMEOUT, intervals: [100] }
    )
    .toBe(final);
  test.info().annotations.push({
    type: 'statuses',
    description: `${statuses.join(' → ')} (${stages.join(' | ')})`
  });
  return { statuses, stages };
}

/**
 * Analyse through the REST API and wait for the end; returns the finished task.
 */
export async function analyse(
  request: APIRequestContext,
  path: string,
  compare: string | null = null,
  final = 'success'
): Promise<ITaskJSON> {
  const created = await request.post('/performance-advisor/api/tasks', {
    data: {
      source: path.startsWith('obs://') ? 'obs' : 'local',
      path,
      compare: compare ? { source: 'local', path: compare } : null,
      // One dimension: the tests that call this look at the panel, not the findings.
      options: { analysis_dimensions: ['computation'] }
    }
  });
  expect(created.status()).toBe(201);
  const { id } = (await created.json()) as ITaskJSON;
  let task: ITaskJSON | null = null;
  await expect
    .poll(
      async () => {
        const reply = await request.get(`/performance-advisor/api/tasks/${id}`);
        task = (await reply.json()) as ITaskJSON;
        return task.status;
      },
      { timeout: ANALYSIS_TIMEOUT, intervals: [250] }
    )
    .toBe(final);
  return task!;
}

/**
 * A task with an HTML report: one listed already, else one made through the REST API.
 */
export async function successfulTask(
  request: APIRequestContext
): Promise<ITaskJSON> {
  const listed = await request.get('/performance-advisor/api/tasks');
  expect(listed.ok()).toBe(true);
  const { tasks } = (await listed.json()) as { tasks: ITaskJSON[] };
  const done = tasks.find(t => t.status === 'success' && t.reports.html);
  return done ?? (await analyse(request, './profiling_dir1'));
}

/**
 * Open a report tab through the command the View button runs.
 */
export async function openReport(
  page: Page,
  task: ITaskJSON
): Promise<Locator> {
  await page.evaluate(
    async ({ id, title }) => {
      await (window as any).jupyterapp.commands.execute(
        'performance-advisor:open-report',
        { id, title }
      );
    },
    { id: task.id, title: task.title }
  );
  const iframe = page.locator(
    `.jp-pa-ReportWidget iframe[src$="/performance-advisor/reports/${task.id}"]`
  );
  await expect(iframe).toBeAttached();
  return iframe;
}

/**
 * Take a screenshot of `target` into the test's output folder and attach it to the report, so
 * that CI keeps it.
 */
export async function keepScreenshot(
  target: Page | Locator,
  name: string
): Promise<string> {
  const path = test.info().outputPath(`${name}.png`);
  await target.screenshot({ path });
  await test.info().attach(name, { path, contentType: 'image/png' });
  return path;
}

/**
 * The titles of the open main-area tabs.
 */
export function tabTitles(page: Page): Promise<string[]> {
  return page
    .locator('.lm-DockPanel-tabBar .lm-TabBar-tab .lm-TabBar-tabLabel')
    .allTextContents();
}

/**
 * Right-click an item of the file browser's listing (by its exact name).
 */
export async function rightClickItem(
  page: Page,
  name: string
): Promise<void> {
  const item = page.locator('.jp-DirListing-item', {
    has: page.locator('.jp-DirListing-itemText', {
      hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)
    })
  });
  await item.click({ button: 'right' });
  await expect(page.locator('.lm-Menu').first()).toBeVisible();
}
