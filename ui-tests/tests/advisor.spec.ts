import {
  expect,
  galata,
  IJupyterLabPageFixture,
  test
} from '@jupyterlab/galata';
import type { APIRequestContext, Locator } from '@playwright/test';

type Page = IJupyterLabPageFixture;

/**
 * End-to-end tests of the Performance Advisor frontend against the real server extension.
 *
 * The server (see ../jupyter_server_test_config.py) writes a demo profile with 2 ranks
 * into `<root>/profiling_dir1` and runs one analysis at a time.
 */

const PLUGIN_ID = 'jupyterlab-performance-advisor:plugin';
const ANALYSIS_TIMEOUT = 90_000;

// Poll every second so that intermediate states (Analyzing) are seen.
test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  }
});

interface ITaskJSON {
  id: string;
  status: string;
  title: string;
  error: string | null;
  reports: { html: string | null; xlsx: string | null; json: string | null };
}

/**
 * Open the panel from its launcher tile.
 */
async function openPanelFromLauncher(page: Page): Promise<Locator> {
  const card = page.locator('.jp-LauncherCard', {
    hasText: 'Performance Advisor'
  });
  if (!(await card.isVisible())) {
    await page.menu.clickMenuItem('File>New Launcher');
  }
  await card.click();
  const panel = page.locator('.jp-pa-AdvisorPanel');
  await expect(panel).toBeVisible();
  await expect(panel.getByRole('tab', { name: 'Submit' })).toHaveAttribute(
    'aria-selected',
    'true'
  );
  await expect(panel.getByRole('tab', { name: 'Reports' })).toHaveAttribute(
    'aria-selected',
    'false'
  );
  return panel;
}

/**
 * Fill the Submit form, wait for the path check, submit; returns the created task.
 */
async function submitFromForm(
  page: Page,
  panel: Locator,
  source: 'local' | 'obs',
  path: string,
  expectedSummary?: string
): Promise<ITaskJSON> {
  await panel.getByRole('tab', { name: 'Submit' }).click();
  await panel.getByLabel('Data source', { exact: true }).selectOption(source);
  await panel.getByLabel('Profiling data path', { exact: true }).fill(path);

  const validation = panel.locator('#jp-pa-data-validation');
  await expect(validation).toHaveAttribute('data-status', 'ok');
  if (expectedSummary) {
    await expect(validation).toContainText(expectedSummary);
  }

  const submit = panel.getByRole('button', { name: 'Submit', exact: true });
  await expect(submit).toBeEnabled();
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
  await expect(panel.getByRole('tab', { name: 'Reports' })).toHaveAttribute(
    'aria-selected',
    'true'
  );
  return task;
}

/**
 * Wait until a task row reaches `final`; returns the statuses seen on the way.
 */
async function followRow(row: Locator, final: string): Promise<string[]> {
  await expect(row).toBeVisible();
  const seen: string[] = [];
  await expect
    .poll(
      async () => {
        const status = (await row.getAttribute('data-status')) ?? '';
        if (status && seen[seen.length - 1] !== status) {
          seen.push(status);
        }
        return status;
      },
      { timeout: ANALYSIS_TIMEOUT, intervals: [200] }
    )
    .toBe(final);
  test.info().annotations.push({
    type: 'statuses',
    description: seen.join(' → ')
  });
  return seen;
}

/**
 * A task with an HTML report, created through the REST API if there is none yet.
 */
async function successfulTask(request: APIRequestContext): Promise<ITaskJSON> {
  const listed = await request.get('/performance-advisor/api/tasks');
  expect(listed.ok()).toBe(true);
  const { tasks } = (await listed.json()) as { tasks: ITaskJSON[] };
  const done = tasks.find(t => t.status === 'success' && t.reports.html);
  if (done) {
    return done;
  }

  const optionsReply = await request.get('/performance-advisor/api/options');
  expect(optionsReply.ok()).toBe(true);
  const { options } = (await optionsReply.json()) as {
    options: Record<string, { default: unknown }>;
  };
  const defaults: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(options)) {
    defaults[name] = option.default;
  }
  const created = await request.post('/performance-advisor/api/tasks', {
    data: {
      source: 'local',
      path: './profiling_dir1',
      compare: null,
      options: defaults
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
      { timeout: ANALYSIS_TIMEOUT, intervals: [500] }
    )
    .toBe('success');
  return task!;
}

/**
 * Open a report tab through the command the View button runs.
 */
async function openReport(page: Page, task: ITaskJSON): Promise<Locator> {
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

test.describe('Performance Advisor', () => {
  test('analyses a local profile from the launcher and shows the report', async ({
    page
  }) => {
    const panel = await openPanelFromLauncher(page);
    const task = await submitFromForm(
      page,
      panel,
      'local',
      './profiling_dir1',
      '2 ranks'
    );

    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    const seen = await followRow(row, 'success');
    // The row was listed while the analysis ran (Analyzing), then Success.
    expect(['queued', 'analyzing']).toContain(seen[0]);
    expect(seen).toContain('analyzing');
    expect(seen.indexOf('analyzing')).toBeLessThan(seen.indexOf('success'));
    await expect(row.locator('.jp-pa-status-label')).toHaveText('Success');
    const listShot = test.info().outputPath('reports-tab.png');
    await panel.screenshot({ path: listShot });
    await test.info().attach('reports-tab', {
      path: listShot,
      contentType: 'image/png'
    });
    await expect(
      row.getByRole('link', { name: 'Download XLSX report' })
    ).toHaveAttribute('download', '');

    await row.getByRole('button', { name: 'View report' }).click();
    const report = page.locator('.jp-pa-ReportWidget');
    await expect(report).toBeVisible();
    await expect(
      page.locator('.jp-MainAreaWidget.jp-pa-ReportWidget iframe')
    ).toHaveAttribute('sandbox', 'allow-scripts');
    if (task.title) {
      await expect(
        page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')
      ).toContainText(task.title);
    }

    const frame = page.frameLocator('.jp-pa-ReportWidget iframe');
    await expect(frame.locator('.main-svg').first()).toBeVisible({
      timeout: 60_000
    });

    const shot = test.info().outputPath('report-tab.png');
    await page.screenshot({ path: shot });
    await test.info().attach('report-tab', {
      path: shot,
      contentType: 'image/png'
    });
  });

  test('compares with a baseline and shows the comparison in the report', async ({
    page
  }) => {
    const panel = await openPanelFromLauncher(page);
    // The switch's track covers its input: click the label, as a user does.
    await panel.getByText('Compared Profiling Data', { exact: true }).click();
    await expect(
      panel.getByRole('switch', { name: 'Compared Profiling Data' })
    ).toBeChecked();
    await panel
      .getByLabel('Compared profiling data path', { exact: true })
      .fill('./profiling_dir1_baseline');
    await expect(panel.locator('#jp-pa-compare-validation')).toHaveAttribute(
      'data-status',
      'ok'
    );
    const task = await submitFromForm(page, panel, 'local', './profiling_dir1');

    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    await followRow(row, 'success');
    await expect(row).toContainText('profiling_dir1_baseline');
    await row.getByRole('button', { name: 'View report' }).click();

    const frame = page.frameLocator('.jp-pa-ReportWidget iframe');
    // The header names the baseline, and the comparison findings are there.
    await expect(frame.locator('#pa-header')).toContainText(
      'profiling_dir1_baseline'
    );
    const regression = frame
      .locator('.pa-finding')
      .filter({ hasText: 'comparison.regression' });
    await expect(regression.first()).toBeVisible({ timeout: 60_000 });
    await expect(
      frame.locator('.pa-finding').filter({ hasText: 'comparison.kernel' })
    ).not.toHaveCount(0);
    const shot = test.info().outputPath('comparison-report.png');
    await page.screenshot({ path: shot });
    await test.info().attach('comparison-report', {
      path: shot,
      contentType: 'image/png'
    });
  });

  test('says why an OBS task fails without credentials', async ({ page }) => {
    const panel = await openPanelFromLauncher(page);
    const task = await submitFromForm(
      page,
      panel,
      'obs',
      'obs://bucket/profiling_dir1'
    );

    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    await followRow(row, 'failed');
    const status = row.locator('.jp-pa-status');
    await expect(status.locator('.jp-pa-status-label')).toHaveText('Failed');
    await expect(status).toHaveAttribute(
      'title',
      /no object storage credentials/
    );
    await expect(status.locator('.jp-pa-status-label')).toHaveAttribute(
      'title',
      /no object storage credentials/
    );
    await expect(row.getByRole('button', { name: 'View report' })).toHaveCount(
      0
    );
  });

  test('sandboxes the report iframe (allow-scripts only)', async ({
    page,
    request
  }) => {
    const task = await successfulTask(request);
    const iframe = await openReport(page, task);

    await expect(iframe).toHaveAttribute('sandbox', 'allow-scripts');
    await expect(iframe).toHaveAttribute('referrerpolicy', 'no-referrer');
    const sandbox = (await iframe.getAttribute('sandbox')) ?? '';
    expect(sandbox.split(/\s+/)).toEqual(['allow-scripts']);

    // The report's scripts run (plotly draws) but in an opaque origin.
    const frameLocator = page.frameLocator(
      `.jp-pa-ReportWidget iframe[src$="/performance-advisor/reports/${task.id}"]`
    );
    await expect(frameLocator.locator('.main-svg').first()).toBeVisible({
      timeout: 60_000
    });
    const frame = page
      .frames()
      .find(f => f.url().endsWith(`/performance-advisor/reports/${task.id}`));
    expect(frame).toBeTruthy();
    const probe = await frame!.evaluate(() => {
      const attempt = (fn: () => unknown) => {
        try {
          fn();
          return 'allowed';
        } catch {
          return 'blocked';
        }
      };
      return {
        origin: self.origin,
        cookie: attempt(() => document.cookie),
        parent: attempt(() => window.parent.document.title)
      };
    });
    expect(probe).toEqual({
      origin: 'null',
      cookie: 'blocked',
      parent: 'blocked'
    });
  });

  test('restores the panel and report tabs after a reload', async ({
    page,
    request
  }) => {
    const task = await successfulTask(request);
    await openPanelFromLauncher(page);
    await openReport(page, task);
    const tabs = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab');
    await expect(tabs.filter({ hasText: 'Performance Advisor' })).toHaveCount(
      1
    );

    // Let the layout restorer save the new layout.
    await page.waitForTimeout(1000);
    // The restored layout has no active Launcher, which galata's default readiness check awaits.
    // (JupyterLabPage.reload takes `waitForIsReady`; the fixture type shows Playwright's.)
    await (
      page as unknown as {
        reload(options: { waitForIsReady: boolean }): Promise<unknown>;
      }
    ).reload({ waitForIsReady: false });
    await expect(page.locator('#jupyterlab-splash')).toHaveCount(0);

    await expect(tabs.filter({ hasText: 'Performance Advisor' })).toHaveCount(
      1
    );
    await expect(
      page.locator(
        `.jp-pa-ReportWidget iframe[src$="/performance-advisor/reports/${task.id}"]`
      )
    ).toBeAttached();
    await expect(
      page.locator('.jp-pa-ReportWidget iframe').first()
    ).toHaveAttribute('sandbox', 'allow-scripts');
  });
});
