// galata's Playwright config, with Debian Chromium (no Playwright browser
// download) and the server started from run.sh's environment.
const base = require("@jupyterlab/galata/lib/playwright-config");

const port = process.env.AOOM_UI_PORT || "8899";
const python = process.env.AOOM_PYTHON || "python3";

module.exports = {
  ...base,
  testDir: "tests",
  outputDir: ".jupyter/test-results",
  // list for people; json for tests/ui.test.ts, which turns each spec test into a node test.
  reporter: [["list"], ["json", { outputFile: ".jupyter/results.json" }]],
  retries: 0,
  workers: 1,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  use: {
    ...base.use,
    baseURL: `http://127.0.0.1:${port}`,
    video: "off",
    trace: "off",
    screenshot: "only-on-failure",
    headless: true,
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--enable-unsafe-swiftshader",
      ],
    },
  },
  webServer: {
    command: `${python} -m jupyterlab --config jupyter_server_test_config.py`,
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
  },
};
