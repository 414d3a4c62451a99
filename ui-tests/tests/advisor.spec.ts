import { expect, galata, test } from '@jupyterlab/galata';

import {
  followRow,
  keepScreenshot,
  openPanelFromLauncher,
  openReport,
  PLUGIN_ID,
  submitFromForm,
  successfulTask
} from './helpers';

/**
 * End-to-end tests of the Performance Advisor frontend against the real server extension: the
 * analysis flow, the report, its sandbox and layout restore (see helpers.ts for the server's data).
 */

/**
 * The problem dimensions of the report and the fault that the server configuration builds into
 * `<root>/profiling_all_dims` for each.
 */
const ALL_DIMENSIONS: Record<string, string> = {
  computation: 'computation.aicpu',
  schedule: 'schedule.host_sync',
  communication: 'communication.small_packet',
  memory: 'memory.operators',
  dataloader: 'dataloader.slow'
};

// Poll every second so that intermediate states (Analyzing) are seen.
test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  }
});

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
    const { statuses: seen } = await followRow(row, 'success');
    // The row was listed while the analysis ran (Analyzing), then Success.
    expect(['queued', 'analyzing']).toContain(seen[0]);
    expect(seen).toContain('analyzing');
    expect(seen.indexOf('analyzing')).toBeLessThan(seen.indexOf('success'));
    await expect(row.locator('.jp-pa-status-label')).toHaveText('Success');
    await keepScreenshot(panel, 'reports-tab');
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

    await keepScreenshot(page, 'report-tab');
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
    await keepScreenshot(page, 'comparison-report');
  });

  test('shows a report with every dimension: charts, sections, sorting, no errors', async ({
    page
  }, testInfo) => {
    // Every console error and uncaught exception from here on: JupyterLab's and the report's.
    const errors: string[] = [];
    page.on('console', message => {
      if (message.type() === 'error') {
        const { url, lineNumber } = message.location();
        errors.push(`console: ${message.text()} (${url}:${lineNumber})`);
      }
    });
    page.on('pageerror', error => {
      errors.push(`pageerror: ${error.message}`);
    });

    const panel = await openPanelFromLauncher(page);
    const task = await submitFromForm(
      page,
      panel,
      'local',
      './profiling_all_dims',
      '2 ranks'
    );
    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    await followRow(row, 'success');
    await row.getByRole('button', { name: 'View report' }).click();

    const iframeSelector = `.jp-pa-ReportWidget iframe[src$="/performance-advisor/reports/${task.id}"]`;
    await expect(page.locator(iframeSelector)).toBeVisible();
    const frame = page.frameLocator(iframeSelector);

    // Charts drawn: plotly turned every chart container into an svg. All but the first are drawn
    // when scrolled near, so bring each into view.
    await expect(frame.locator('#pa-chart-overall .main-svg').first()).toBeVisible(
      { timeout: 60_000 }
    );
    const charts = frame.locator('.pa-chart[data-figure]');
    const chartCount = await charts.count();
    expect(chartCount).toBeGreaterThanOrEqual(2); // overall per rank, per step
    for (let i = 0; i < chartCount; i++) {
      const chart = charts.nth(i);
      await chart.scrollIntoViewIfNeeded();
      await expect(chart).toHaveAttribute('data-drawn', '');
      await expect(chart.locator('.main-svg').first()).toBeVisible();
    }

    // The listeners do see what the sandboxed (opaque-origin) report frame logs and throws.
    const reportFrame = page
      .frames()
      .find(f => f.url().endsWith(`/performance-advisor/reports/${task.id}`));
    expect(reportFrame).toBeTruthy();
    await reportFrame!.evaluate(() => {
      console.error('pa-listener-probe');
      setTimeout(() => {
        throw new Error('pa-listener-probe');
      });
    });
    const isProbe = (e: string) => e.includes('pa-listener-probe');
    await expect
      .poll(() =>
        errors
          .filter(isProbe)
          .map(e => e.split(':')[0])
          .sort()
      )
      .toEqual(['console', 'pageerror']);

    // A section per problem dimension, each with the finding built into the profile.
    for (const [dimension, check] of Object.entries(ALL_DIMENSIONS)) {
      const section = frame.locator(`#pa-dim-${dimension}`);
      await expect(section).toHaveAttribute('open', '');
      await expect(section.locator('.pa-finding')).not.toHaveCount(0);
      await expect(
        section.locator(`.pa-finding[data-check="${check}"]`)
      ).toHaveCount(1);
    }

    // An evidence table sorts by a numeric column: descending first, then ascending.
    const evidence = frame
      .locator(
        '#pa-dim-schedule [data-check="schedule.host_sync"] details.pa-evidence'
      )
      .filter({ has: frame.locator('th[data-type="num"][data-col="at_ms"]') });
    await expect(evidence).toHaveCount(1);
    if ((await evidence.getAttribute('open')) === null) {
      await evidence.locator(':scope > summary').click();
    }
    await expect(evidence).toHaveAttribute('open', '');
    const table = evidence.locator('table.pa-sortable');
    const header = table.locator('th[data-type="num"][data-col="at_ms"]');
    // Headers show a label with its unit; data-col keeps the table's column name.
    const columns = await table
      .locator('thead th')
      .evaluateAll(ths => ths.map(th => th.getAttribute('data-col')));
    const cells = table.locator(
      `tbody tr td:nth-child(${columns.indexOf('at_ms') + 1})`
    );
    const column = async () =>
      (await cells.allTextContents()).map(text =>
        parseFloat(text.replace(/,/g, ''))
      );
    const before = await column();
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(before.every(n => Number.isFinite(n))).toBe(true);
    const descending = [...before].sort((a, b) => b - a);
    const ascending = [...before].sort((a, b) => a - b);
    // The rows come ordered by another column, so sorting has to move them.
    expect(before).not.toEqual(descending);
    expect(before).not.toEqual(ascending);
    await expect(header).not.toHaveAttribute('aria-sort');

    await header.click();
    await expect(header).toHaveAttribute('aria-sort', 'descending');
    expect(await column()).toEqual(descending);
    await header.click();
    await expect(header).toHaveAttribute('aria-sort', 'ascending');
    expect(await column()).toEqual(ascending);

    // The filter box narrows the rows of its table.
    const aicpu = frame
      .locator('#pa-dim-computation [data-check="computation.aicpu"] details.pa-evidence')
      .first();
    const aicpuRows = aicpu.locator('table.pa-sortable tbody tr');
    const total = await aicpuRows.count();
    expect(total).toBeGreaterThanOrEqual(2);
    await aicpu.locator('.pa-filter').fill('NonZero');
    await expect(aicpuRows.filter({ visible: true })).toHaveCount(1);
    await expect(aicpuRows.filter({ visible: true })).toContainText('NonZero');
    await expect(aicpu.locator('.pa-shown')).toHaveText(
      `1 of ${total} rows shown`
    );
    await aicpu.locator('.pa-filter').fill('');
    await expect(aicpuRows.filter({ visible: true })).toHaveCount(total);
    await expect(aicpu.locator('.pa-shown')).toHaveText('');

    const problemsShot = testInfo.outputPath('all-dimensions-problems.png');
    await evidence.scrollIntoViewIfNeeded();
    await page.screenshot({ path: problemsShot });
    await testInfo.attach('all-dimensions-problems', {
      path: problemsShot,
      contentType: 'image/png'
    });

    // A section collapses and expands again from its summary.
    const schedule = frame.locator('#pa-dim-schedule');
    await schedule.locator(':scope > summary').click();
    await expect(schedule).not.toHaveAttribute('open');
    await expect(schedule.locator('.pa-finding').first()).toBeHidden();
    await schedule.locator(':scope > summary').click();
    await expect(schedule).toHaveAttribute('open', '');
    await expect(schedule.locator('.pa-finding').first()).toBeVisible();

    // Collapse all closes every section, finding and evidence table; expand all opens them.
    const details = frame.locator('details');
    const detailsCount = await details.count();
    expect(detailsCount).toBeGreaterThan(5);
    await frame.locator('#pa-collapse-all').click();
    await expect(frame.locator('details[open]')).toHaveCount(0);
    for (const dimension of Object.keys(ALL_DIMENSIONS)) {
      await expect(
        frame.locator(`#pa-dim-${dimension} .pa-finding`).first()
      ).toBeHidden();
    }
    await frame.locator('#pa-expand-all').click();
    await expect(frame.locator('details[open]')).toHaveCount(detailsCount);

    await frame.locator('#pa-chart-overall').scrollIntoViewIfNeeded();
    const shot = testInfo.outputPath('all-dimensions-report.png');
    await page.screenshot({ path: shot });
    await testInfo.attach('all-dimensions-report', {
      path: shot,
      contentType: 'image/png'
    });

    // Nothing logged an error or threw, in JupyterLab or in the report, apart from the probe.
    expect(errors.filter(e => !isProbe(e))).toEqual([]);
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
