import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Route } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import {
  analyse,
  followRow,
  ITaskJSON,
  keepScreenshot,
  openPanelFromLauncher,
  Page,
  PLUGIN_ID,
  submitFromForm,
  tabTitles
} from './helpers';

/**
 * The panel as a new user meets it in an English JupyterLab (issue 15): JupyterLab's own controls
 * in light and dark themes, why Submit is disabled, the version defaults, truthful statuses,
 * failure details with the task log, and report tabs that never share a name.
 */

test.use({
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    [PLUGIN_ID]: { refreshInterval: 1 }
  }
});

/**
 * The README's picture of the panel, written when UPDATE_DOCS_IMAGES=1 (never in CI: the file is
 * committed).
 */
const DOCS_IMAGE = path.resolve(__dirname, '..', '..', 'docs', 'images', 'panel.png');

/**
 * Relative luminance (0 black, 1 white) of a CSS `rgb()`/`rgba()` color.
 */
function luminance(color: string): number {
  const [r, g, b] = (color.match(/[\d.]+/g) ?? ['0', '0', '0'])
    .slice(0, 3)
    .map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

async function height(locator: Locator): Promise<number> {
  const box = await locator.boundingBox();
  expect(box).not.toBeNull();
  return Math.round(box!.height);
}

/**
 * The luminance of the background a control shows: its own, or the first ancestor's that is not
 * transparent (JupyterLab's input group paints the field on its wrapper).
 */
async function background(locator: Locator): Promise<number> {
  return luminance(
    await locator.evaluate(node => {
      for (let el: Element | null = node; el; el = el.parentElement) {
        const color = getComputedStyle(el).backgroundColor;
        if (!/^rgba\(.*,\s*0\)$|^transparent$/.test(color)) {
          return color;
        }
      }
      return 'rgb(255, 255, 255)';
    })
  );
}

/**
 * Hold every `api/inspect` answer until `release()` is called, so that the "checking" state can be
 * looked at without racing the server.
 */
async function holdInspect(page: Page): Promise<() => void> {
  const held: Route[] = [];
  let holding = true;
  await page.route('**/performance-advisor/api/inspect**', async route => {
    if (holding) {
      held.push(route);
    } else {
      await route.continue();
    }
  });
  return () => {
    holding = false;
    for (const route of held.splice(0)) {
      void route.continue();
    }
  };
}

test.describe('Performance Advisor panel', () => {
  test('uses JupyterLab controls in both themes and says why Submit is disabled', async ({
    page
  }) => {
    const panel = await openPanelFromLauncher(page);
    const source = panel.locator('#jp-pa-data-source');
    const pathInput = panel.locator('#jp-pa-data-path');
    const submit = panel.locator('.jp-pa-submit');
    const reason = panel.locator('#jp-pa-submit-reason');

    // JupyterLab's select (with its caret) and input group; an example, not a value.
    await expect(panel.locator('.jp-HTMLSelect').first()).toBeVisible();
    await expect(
      panel.locator('.jp-HTMLSelect:has(#jp-pa-data-source) svg')
    ).toBeVisible();
    await expect(panel.locator('.jp-InputGroup:has(#jp-pa-data-path)')).toBeVisible();
    await expect(pathInput).toHaveAttribute(
      'placeholder',
      'e.g. ./profiling_dir1'
    );
    await source.selectOption('obs');
    await expect(pathInput).toHaveAttribute(
      'placeholder',
      'e.g. obs://bucket/profiling_dir1'
    );
    await source.selectOption('local');

    // A disabled Submit says why, next to it.
    await expect(submit).toBeDisabled();
    await expect(reason).toHaveText('Enter the path of the profiling data');
    await expect(submit).toHaveAttribute('aria-describedby', 'jp-pa-submit-reason');
    const release = await holdInspect(page);
    await pathInput.fill('./profiling_dir1');
    await expect(reason).toHaveText('Checking the path…');
    await expect(submit).toBeDisabled();
    release();
    await expect(panel.locator('#jp-pa-data-validation')).toHaveAttribute(
      'data-status',
      'ok'
    );
    await expect(reason).toHaveText('');
    await expect(submit).toBeEnabled();

    // One "Advanced Settings": the title is the button that opens the section.
    await expect(panel.getByText('Advanced Settings', { exact: true })).toHaveCount(1);
    const toggle = panel.getByRole('button', { name: 'Advanced Settings' });
    await expect(toggle).toHaveAttribute('aria-expanded', 'false');
    await toggle.click();
    await expect(toggle).toHaveAttribute('aria-expanded', 'true');
    await expect(panel.getByText('Advanced Settings', { exact: true })).toHaveCount(1);
    await expect(panel.locator('legend', { hasText: 'Advanced' })).toHaveCount(0);

    // Every field and select of the form has one height, selects with their caret.
    const controls = [
      source,
      pathInput,
      panel.locator('#jp-pa-cann-version'),
      panel.locator('#jp-pa-torch-version'),
      panel.locator('#jp-pa-processes'),
      panel.locator('#jp-pa-output-path')
    ];
    const heights = await Promise.all(controls.map(height));
    expect(new Set(heights).size).toBe(1);
    for (const id of ['#jp-pa-cann-version', '#jp-pa-torch-version']) {
      await expect(panel.locator(`.jp-HTMLSelect:has(${id}) svg`)).toBeVisible();
    }
    // A bad value: the reason is the field's message.
    await panel.locator('#jp-pa-processes').fill('99');
    await expect(reason).toHaveText(/^Enter a number from 1 to \d+\.$/);
    await panel.locator('#jp-pa-processes').fill('1');
    await expect(reason).toHaveText('');

    // Light theme: light fields; the README's picture.
    expect(await background(pathInput)).toBeGreaterThan(0.6);
    await keepScreenshot(panel, 'panel-light');
    if (process.env.UPDATE_DOCS_IMAGES) {
      // The form without the empty space below it.
      await toggle.click();
      const top = (await panel.boundingBox())!;
      const form = (await panel.locator('.jp-pa-form').boundingBox())!;
      await page.screenshot({
        path: DOCS_IMAGE,
        clip: {
          x: top.x,
          y: top.y,
          width: top.width,
          height: form.y + form.height + 16 - top.y
        }
      });
      expect(fs.statSync(DOCS_IMAGE).size).toBeLessThan(150_000);
      await toggle.click();
    }

    // Dark theme: the same controls follow it.
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute('apputils:change-theme', {
        theme: 'JupyterLab Dark'
      });
    });
    await expect(page.locator('body')).toHaveAttribute(
      'data-jp-theme-light',
      'false'
    );
    await expect.poll(() => background(pathInput)).toBeLessThan(0.4);
    expect(await background(panel.locator('#jp-pa-cann-version'))).toBeLessThan(0.4);
    expect(await Promise.all(controls.map(height))).toEqual(heights);
    await keepScreenshot(panel, 'panel-dark');
  });

  test('version selects start at "Detect from the data" when the server defaults to it', async ({
    page,
    request
  }) => {
    // Today's server: its default version is selected, whatever it is.
    const reply = await request.get('/performance-advisor/api/options');
    const served = (await reply.json()) as {
      options: Record<string, { default: string; choices: string[] }>;
    };
    let panel = await openPanelFromLauncher(page);
    await panel.getByRole('button', { name: 'Advanced Settings' }).click();
    for (const name of ['cann_version', 'torch_version']) {
      const select = panel.locator(`#jp-pa-${name.replace('_version', '')}-version`);
      await expect(select).toHaveValue(served.options[name].default);
    }

    // A server whose default is "" (detect from the data): that choice comes first, selected, and
    // is what the form sends.
    // (GET requests carry a cache-busting query.)
    await page.route(/\/performance-advisor\/api\/options(\?|$)/, async route => {
      const response = await route.fetch();
      const body = await response.json();
      for (const name of ['cann_version', 'torch_version']) {
        body.options[name].default = '';
      }
      await route.fulfill({ response, json: body });
    });
    let sent: Record<string, any> | null = null;
    await page.route(/\/performance-advisor\/api\/tasks(\?|$)/, async route => {
      if (route.request().method() !== 'POST') {
        return route.continue();
      }
      sent = route.request().postDataJSON();
      // This server does not accept "" yet: the body is what is checked here.
      await route.fulfill({ status: 400, json: { message: 'not sent' } });
    });
    // A panel opened anew asks the server again.
    await page
      .locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon')
      .click();
    await expect(panel).toHaveCount(0);
    panel = await openPanelFromLauncher(page);
    await panel.getByRole('button', { name: 'Advanced Settings' }).click();
    for (const id of ['#jp-pa-cann-version', '#jp-pa-torch-version']) {
      const select = panel.locator(id);
      await expect(select).toHaveValue('');
      await expect(select.locator('option').first()).toHaveText(
        'Detect from the data'
      );
      await expect(select.locator('option').first()).toHaveAttribute('value', '');
    }
    await panel.locator('#jp-pa-data-path').fill('./profiling_dir1');
    await expect(panel.locator('.jp-pa-submit')).toBeEnabled();
    await panel.locator('.jp-pa-submit').click();
    await expect(panel.locator('.jp-pa-submit-error')).toHaveText('not sent');
    expect(sent).not.toBeNull();
    expect(sent!.options.cann_version).toBe('');
    expect(sent!.options.torch_version).toBe('');
  });

  test('statuses tell the truth: stages, Success, dates, durations, OBS checks, failure details', async ({
    page,
    request
  }) => {
    const panel = await openPanelFromLauncher(page);
    const task = await submitFromForm(page, panel, 'local', './profiling_dir1', '2 ranks');
    const row = panel.locator(`tr[data-task-id="${task.id}"]`);
    const { statuses, stages } = await followRow(row, 'success');
    expect(statuses[statuses.length - 1]).toBe('success');
    // Analyzing shows its stage, never a "done (n/n)" label before Success.
    for (const text of stages) {
      expect(text).not.toMatch(/done|\(\d+\/\d+\)/);
    }
    await expect(row.locator('.jp-pa-status-label')).toHaveText('Success');

    // Submitted in the UI language; Duration is started → finished of the task.
    const reply = await request.get(`/performance-advisor/api/tasks/${task.id}`);
    const done = (await reply.json()) as ITaskJSON;
    const expected = await page.evaluate(
      ({ created, started, finished }) => {
        const submitted = new Intl.DateTimeFormat('en', {
          dateStyle: 'medium',
          timeStyle: 'medium'
        }).format(new Date(created));
        const seconds = Math.floor(
          (Date.parse(finished) - Date.parse(started)) / 1000
        );
        const duration =
          seconds >= 60
            ? `${Math.floor(seconds / 60)} min ${seconds % 60} s`
            : `${seconds} s`;
        return { submitted, duration };
      },
      {
        created: done.created,
        started: done.started!,
        finished: done.finished!
      }
    );
    await expect(row.locator('.jp-pa-time')).toHaveText(expected.submitted);
    await expect(row.locator('.jp-pa-duration')).toHaveText(expected.duration);

    // An OBS path is checked as it is typed: without credentials, it says so, inline.
    await panel.locator('[data-tab="submit"]').click();
    await panel.locator('#jp-pa-data-source').selectOption('obs');
    await panel.locator('#jp-pa-data-path').fill('');
    const emptyBox = await panel.locator('#jp-pa-data-source').boundingBox();
    const sourceWidth = emptyBox!.width;
    await panel.locator('#jp-pa-data-path').fill('obs://bucket/profiling_dir1');
    const validation = panel.locator('#jp-pa-data-validation');
    await expect(validation).toHaveAttribute('data-status', 'error');
    await expect(validation).toContainText('no object storage credentials');
    // The long message under the path does not squeeze the source select: "OBS" stays readable.
    const sourceBox = await panel.locator('#jp-pa-data-source').boundingBox();
    expect(sourceBox!.width).toBe(sourceWidth);
    await expect(panel.locator('.jp-pa-submit')).toBeDisabled();
    await expect(panel.locator('#jp-pa-submit-reason')).toContainText(
      'no object storage credentials'
    );
    await keepScreenshot(panel, 'obs-without-credentials');

    // A task that fails (submitted past the form) shows its reason in the row, and its log.
    const failed = await analyse(
      request,
      'obs://bucket/profiling_dir1',
      null,
      'failed'
    );
    await panel.locator('[data-tab="reports"]').click();
    const failedRow = panel.locator(`tr[data-task-id="${failed.id}"]`);
    await expect(failedRow).toHaveAttribute('data-status', 'failed');
    const details = failedRow.getByRole('button', { name: 'Details' });
    await expect(details).toHaveAttribute('aria-expanded', 'false');
    await details.click();
    await expect(details).toHaveAttribute('aria-expanded', 'true');
    const reason = panel.locator(`[data-details-for="${failed.id}"]`);
    await expect(reason).toBeVisible();
    await expect(reason).toContainText('Reason:');
    await expect(reason).toContainText('no object storage credentials');
    const log = reason.getByRole('link', { name: 'Open the task log' });
    await expect(log).toHaveAttribute('target', '_blank');
    const href = (await log.getAttribute('href'))!;
    const logReply = await request.get(href);
    expect(logReply.status()).toBe(200);
    expect(logReply.headers()['content-type']).toBe('text/plain; charset=UTF-8');
    expect(await logReply.text()).toContain('no object storage credentials');
    await keepScreenshot(panel, 'failure-details');
  });

  test('report tabs are named after the profile, its baseline, and the time when taken', async ({
    page,
    request
  }) => {
    const first = await analyse(request, './profiling_dir1/');
    const compared = await analyse(
      request,
      './profiling_dir1',
      './profiling_dir1_baseline'
    );
    const second = await analyse(request, './profiling_dir1');
    // "." with the default output is refused: the reports folder would be inside the data analysed
    // (the title of "." is its folder's name: tests/test_server_api.py, with an output outside it).
    const root = await request.post('/performance-advisor/api/tasks', {
      data: { source: 'local', path: '.', compare: null, options: {} }
    });
    expect(root.status()).toBe(400);
    expect(((await root.json()) as { message: string }).message).toContain(
      'is inside the profiling data given as path'
    );

    const panel = await openPanelFromLauncher(page);
    await panel.locator('[data-tab="reports"]').click();
    const panelTab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
      hasText: 'Performance Advisor'
    });
    const view = async (task: ITaskJSON) => {
      // Each report opens in front: come back to the panel for the next one.
      await panelTab.click();
      await panel
        .locator(`tr[data-task-id="${task.id}"]`)
        .getByRole('button', { name: 'View report' })
        .click();
    };
    await view(first);
    await view(compared);
    await view(second);
    await expect(page.locator('.jp-pa-ReportWidget')).toHaveCount(3);
    const clock = await page.evaluate(
      created =>
        new Intl.DateTimeFormat('en', {
          hour: '2-digit',
          minute: '2-digit',
          hourCycle: 'h23'
        }).format(new Date(created)),
      second.created
    );
    const titles = await tabTitles(page);
    expect(titles).toEqual(
      expect.arrayContaining([
        'profiling_dir1',
        'profiling_dir1 vs profiling_dir1_baseline',
        `profiling_dir1 (${clock})`
      ])
    );
    expect(new Set(titles).size).toBe(titles.length);
    await keepScreenshot(page, 'report-tabs');
  });
});
