import { expect, galata, test } from '@jupyterlab/galata';

import {
  followRow,
  keepScreenshot,
  openPanelFromLauncher,
  PLUGIN_ID,
  submitFromForm,
  rightClickItem,
  tabTitles
} from './helpers';

/**
 * The panel in a Chinese JupyterLab, reached as a user reaches it: the zh-CN language pack
 * (installed by scripts/ui_tests.sh) chosen in Settings → Language. The panel, the Reports table
 * (headers, statuses, dates, durations) and the report must all be Chinese.
 */

test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  }
});

test('a Chinese JupyterLab shows the panel, the Reports table and the report in Chinese', async ({
  page
}) => {
  // Settings → Language → 中文, then "Change and reload".
  await page.menu.open('Settings');
  await page.locator('.lm-Menu-item', { hasText: /^Language$/ }).hover();
  await page.locator('.lm-Menu-item', { hasText: '中文 (简体, 中国)' }).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('Change interface language?');
  await Promise.all([
    page.waitForEvent('load'),
    dialog.getByRole('button', { name: 'Change and reload' }).click()
  ]);
  await expect(page.locator('#jupyterlab-splash')).toHaveCount(0);
  await expect(page.locator('.jp-LauncherCard').first()).toBeVisible();

  // The file browser's action on a profiling folder (in the server root, not Galata's test folder).
  await page.filebrowser.openHomeDirectory();
  await rightClickItem(page, 'profiling_dir1');
  await expect(page.locator('.lm-Menu-item', { hasText: '使用性能调优助手分析' })).toBeVisible();
  await page.keyboard.press('Escape');

  // The launcher tile, the tabs and the form.
  const panel = await openPanelFromLauncher(page, '性能调优助手');
  await expect(page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')).toContainText(
    '性能调优助手'
  );
  await expect(panel.locator('[data-tab="submit"]')).toHaveText('提交');
  await expect(panel.locator('[data-tab="reports"]')).toHaveText('报告');
  await expect(panel.locator('label[for="jp-pa-data-source"]')).toHaveText('来源');
  await expect(panel.locator('#jp-pa-data-source option')).toHaveText(['本地', 'OBS']);
  await expect(panel.locator('#jp-pa-data-path')).toHaveAttribute(
    'placeholder',
    '例如 ./profiling_dir1'
  );
  await expect(panel.locator('#jp-pa-submit-reason')).toHaveText(
    '请输入性能数据的路径'
  );
  await expect(panel).toContainText('对比性能数据');
  // The training log beside the profile: its section and field.
  await expect(panel.locator('.jp-pa-training legend')).toHaveText('训练日志');
  await expect(panel.locator('label[for="jp-pa-training-log"]')).toHaveText(
    '日志路径'
  );
  await panel.getByRole('button', { name: '高级设置' }).click();
  await expect(panel.locator('label[for="jp-pa-cann-version"]')).toHaveText(
    'CANN 版本'
  );
  await expect(panel.locator('.jp-pa-dimension-name').first()).toHaveText('计算');
  await keepScreenshot(panel, 'panel-zh');
  await panel.getByRole('button', { name: '高级设置' }).click();

  // The Reports table: headers, status, date and duration in Chinese.
  // The path check answers in Chinese too (the server writes it from the report's catalogue).
  const task = await submitFromForm(
    page,
    panel,
    'local',
    './profiling_dir1',
    '2 个 rank，文本格式导出，step 12–14'
  );
  await expect(panel.locator('.jp-pa-table th')).toHaveText([
    '数据路径',
    '对比路径',
    '提交时间',
    '耗时',
    '状态',
    '操作'
  ]);
  const row = panel.locator(`tr[data-task-id="${task.id}"]`);
  const { stages } = await followRow(row, 'success');
  for (const text of stages) {
    // Statuses and stages in Chinese: no English status word.
    expect(text).not.toMatch(/Queued|Analyzing|Success|reading|running|done/);
  }
  await expect(row.locator('.jp-pa-status-label')).toHaveText('成功');
  await expect(row.locator('.jp-pa-time')).toHaveText(/^\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}:\d{2}$/);
  await expect(row.locator('.jp-pa-duration')).toHaveText(/^(\d+分)?\d+秒$/);
  await expect(row.getByRole('button', { name: '查看报告' })).toHaveText('查看');
  await keepScreenshot(panel, 'reports-zh');

  // The report follows the UI language, and so does its tab's toolbar.
  await row.getByRole('button', { name: '查看报告' }).click();
  const report = page.locator('.jp-pa-ReportWidget');
  await expect(report).toBeVisible();
  expect(await tabTitles(page)).toContain('profiling_dir1');
  await expect(report.locator('.jp-Toolbar')).toContainText('在新浏览器标签页中打开');
  const frame = page.frameLocator('.jp-pa-ReportWidget iframe');
  await expect(frame.locator('html')).toHaveAttribute('lang', 'zh');
  await expect(frame.locator('body')).toContainText('性能调优建议报告');
  await keepScreenshot(page, 'report-zh');
});
