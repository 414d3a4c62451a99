import { expect, galata, test } from '@jupyterlab/galata';

import {
  followRow,
  ITaskJSON,
  keepScreenshot,
  PLUGIN_ID,
  rightClickItem
} from './helpers';

/**
 * The file browser's actions and "Open as notebook", as a user reaches them: right-click the demo
 * folder, analyse it, open the report as a notebook and run it (see helpers.ts for the server's data).
 */

test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  },
  // Tall enough for the first cell's whole output in the screenshot (docs/images/notebook.png).
  viewport: { width: 1280, height: 1500 }
});

test('right-click the demo folder, analyse it, open the report as a notebook and run it', async ({
  page,
  request
}) => {
  test.setTimeout(300_000);
  // Galata opens a folder of its own for each test: go to the server root, where the data is.
  await page.filebrowser.openHomeDirectory();
  // A PyTorch profiler trace file is offered too.
  await rightClickItem(page, 'kineto_host_bound.pt.trace.json.gz');
  await expect(
    page.locator('.lm-Menu-item', { hasText: 'Analyze with Performance Advisor' })
  ).toBeVisible();
  await page.keyboard.press('Escape');

  await rightClickItem(page, 'profiling_dir1');
  const analyze = page.locator('.lm-Menu-item', {
    hasText: 'Analyze with Performance Advisor'
  });
  await expect(analyze).toBeVisible();
  // One folder selected: no comparison (Lumino keeps an invisible item, hidden).
  await expect(
    page.locator('.lm-Menu-item', {
      hasText: 'Compare with Performance Advisor'
    })
  ).toBeHidden();
  const [created] = await Promise.all([
    page.waitForResponse(
      r =>
        r.url().includes('/performance-advisor/api/tasks') &&
        r.request().method() === 'POST'
    ),
    analyze.click()
  ]);
  expect(created.status()).toBe(201);
  const task = (await created.json()) as ITaskJSON;
  expect(task.path).toBe('./profiling_dir1');

  // The panel opens on Reports, where the task runs to Success.
  const panel = page.locator('.jp-pa-AdvisorPanel');
  await expect(panel.locator('[data-tab="reports"]')).toHaveAttribute(
    'aria-selected',
    'true'
  );
  const row = panel.locator(`tr[data-task-id="${task.id}"]`);
  await followRow(row, 'success');
  await expect(row.locator('.jp-pa-status-label')).toHaveText('Success');

  // The top finding of the report, which the notebook's first cell must show.
  const reportJson = await request.get(
    `/performance-advisor/reports/${task.id}/json`
  );
  expect(reportJson.ok()).toBe(true);
  const report = (await reportJson.json()) as {
    findings: { title: string; priority: string }[];
  };
  const top = report.findings[0];
  expect(top.priority).toBe('high');

  const [written] = await Promise.all([
    page.waitForResponse(
      r =>
        r.url().includes(`/api/tasks/${task.id}/notebook`) &&
        r.request().method() === 'POST'
    ),
    row.getByRole('button', { name: 'Open report as notebook' }).click()
  ]);
  expect(written.status()).toBe(201);
  const { path } = (await written.json()) as { path: string };
  expect(path).toMatch(
    /^performance_advisor_reports\/profiling_dir1_\d{8}-\d{6}\.ipynb$/
  );
  const name = path.split('/').pop()!;
  const notebook = page.locator('.jp-NotebookPanel');
  await expect(notebook).toBeVisible();
  await expect(
    page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')
  ).toContainText(name);

  // Run All, from the Run menu.
  await page.menu.clickMenuItem('Run>Run All Cells');
  // The first cell re-analyses the data (text progress, then the rich display: the header,
  // "What to fix first" with the report's top finding first, the step chart).
  const firstCell = notebook.locator('.jp-CodeCell').first();
  const display = firstCell
    .locator('.jp-OutputArea-output[data-mime-type="text/html"]')
    .first();
  await expect(display).toContainText(top.title, { timeout: 120_000 });
  // Every cell ran, and none failed.
  await expect(notebook.locator('.jp-InputPrompt', { hasText: '[*]' })).toHaveCount(0, {
    timeout: 120_000
  });
  await expect(
    notebook.locator('.jp-OutputArea-output', { hasText: 'Traceback' })
  ).toHaveCount(0);
  const outputs = firstCell.locator('.jp-Cell-outputArea');
  await outputs.scrollIntoViewIfNeeded();
  await keepScreenshot(outputs, 'notebook');

  // A second "Open as notebook" from the report tab's toolbar writes `-1` next to the first.
  await page.evaluate(async id => {
    await (window as any).jupyterapp.commands.execute(
      'performance-advisor:open-report',
      { id }
    );
  }, task.id);
  const button = page.locator('.jp-pa-ReportWidget .jp-pa-open-notebook');
  await expect(button).toBeVisible();
  const [second] = await Promise.all([
    page.waitForResponse(r => r.url().includes(`/api/tasks/${task.id}/notebook`)),
    button.click()
  ]);
  expect(((await second.json()) as { path: string }).path).toBe(
    path.replace(/\.ipynb$/, '-1.ipynb')
  );
});
