/**
 * Configuration for Playwright using default from @jupyterlab/galata
 *
 * Chromium comes from Debian (`apt-get install chromium`): no browser download.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.UI_TEST_PORT || '8888';

module.exports = {
  ...baseConfig,
  testDir: './tests',
  // 2 cores: JupyterLab, the analyzer and Chromium run serially.
  workers: 1,
  fullyParallel: false,
  // Deterministic tests: a failure is a bug, not bad luck.
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  // The galata default opens a browser on failure when not in CI.
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    ...baseConfig.use,
    baseURL: `http://localhost:${port}`,
    appPath: '/lab',
    // Recording video needs Playwright's own ffmpeg download.
    video: 'off',
    trace: 'retain-on-failure',
    actionTimeout: 30_000,
    navigationTimeout: 60_000,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
  webServer: {
    command: 'jlpm start',
    url: `http://localhost:${port}/lab`,
    timeout: 180_000,
    reuseExistingServer: !process.env.CI,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
