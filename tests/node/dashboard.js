// The dashboard in a real browser: Debian's chromium driven by
// playwright-core. It logs in with the admin token, sees the crm
// endpoint's circuit open and its rate limit, finds a failed delivery,
// opens its attempts, clicks Retry (the circuit's probe), and waits until
// the delivery has succeeded and the circuit closed.
//
// Usage: node dashboard.js ADMIN_URL DELIVERY_ID TOKEN SCREENSHOT_PATH
// Prints "ok" and exits 0 when every step passed.
'use strict';
const { chromium } = require('playwright-core');

const [adminUrl, deliveryId, token, screenshot] = process.argv.slice(2);
const STEP_MS = 15000;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(adminUrl + '/');

    // The token is asked for once, then kept in the tab's session.
    await page.locator('#token').waitFor({ timeout: STEP_MS });
    await page.fill('#token', token);
    await page.click('#login-form button');

    const failedRow = page.locator(`#failed tr[data-delivery="${deliveryId}"]`);
    await failedRow.waitFor({ timeout: STEP_MS });
    await failedRow.click();
    const firstAttempt = page.locator('#attempts tr[data-attempt="1"]');
    await firstAttempt.waitFor({ timeout: STEP_MS });
    const attemptText = await firstAttempt.innerText();
    if (!attemptText.includes('500') || !attemptText.includes('subscriber is down')) {
      throw new Error('the attempt row lacks its status and response: ' + attemptText);
    }
    const crmRow = page.locator('#endpoints tr[data-endpoint="crm"]');
    await crmRow.locator('[data-circuit="open"]').waitFor({ timeout: STEP_MS });
    const limits = await crmRow.locator('[data-limits]').innerText();
    if (!limits.includes('50/s')) throw new Error('the crm row lacks its rate limit: ' + limits);
    await page.screenshot({ path: screenshot, fullPage: true });

    await failedRow.locator('button[data-action="retry"]').click();
    await page.locator(`#recent tr[data-delivery="${deliveryId}"] .pill.succeeded`).waitFor({ timeout: STEP_MS });
    await page.locator(`#failed tr[data-delivery="${deliveryId}"]`).waitFor({ state: 'detached', timeout: STEP_MS });
    await page.locator('#attempts tr[data-attempt="2"]').waitFor({ timeout: STEP_MS });
    await crmRow.locator('[data-circuit="closed"]').waitFor({ timeout: STEP_MS });
    if (errors.length) throw new Error('page errors: ' + errors.join('; '));
    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
