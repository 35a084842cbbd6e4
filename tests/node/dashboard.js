// The dashboard in a real browser: Debian's chromium driven by
// playwright-core. It logs in with the admin token; sees the crm
// endpoint's circuit open and its rate limit; pages and searches the
// endpoints; reads crm's charts back from their SVG elements (60 minutes,
// the two failed requests, a latency point for each minute the stats give
// one, the circuit's open band); filters the deliveries by tenant, status,
// endpoint and event type; finds the failed delivery by its id and
// by its event id; reads its payload as text; retries it from the payload
// view and waits until it has succeeded and the circuit closed. From the
// login on, the page must log no console error.
//
// Usage: node dashboard.js ADMIN_URL DELIVERY_ID TOKEN SCREENSHOT_PATH
// Prints "ok" and exits 0 when every step passed.
'use strict';
const { chromium } = require('playwright-core');

const [adminUrl, deliveryId, token, screenshot] = process.argv.slice(2);
const eventId = deliveryId.split('.')[0];
const STEP_MS = 15000;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// What the crm charts draw, read from the SVG.
async function drawn(page) {
  return page.evaluate(() => {
    const sum = (selector) => [...document.querySelectorAll(selector)].reduce((n, rect) => n + Number(rect.dataset.count), 0);
    return {
      minutes: document.querySelectorAll('#chart-attempts g.minute').length,
      status: sum('#chart-attempts rect.bar[data-result="status"]'),
      success: sum('#chart-attempts rect.bar[data-result="success"]'),
      p50: document.querySelectorAll('#chart-latency circle.point.p50').length,
      p99: document.querySelectorAll('#chart-latency circle.point.p99').length,
      bands: document.querySelectorAll('#chart-attempts rect.circuit-band').length,
    };
  });
}

// Waits until `probe` returns true, polling the page's state.
async function until(probe, what) {
  const deadline = Date.now() + STEP_MS;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last === true) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}

async function endpointRows(page) {
  return page.locator('#endpoints tr[data-endpoint]').evaluateAll((rows) => rows.map((row) => row.dataset.endpoint));
}

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

    // The token is asked for once, then kept in the tab's session. The
    // answer that asked for it (401) is the one error the console may have
    // had before.
    await page.locator('#token').waitFor({ timeout: STEP_MS });
    page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
    await page.fill('#token', token);
    await page.click('#login-form button');

    const failedRow = page.locator(`#failed tr[data-delivery="${deliveryId}"]`);
    await failedRow.waitFor({ timeout: STEP_MS });
    await failedRow.click();
    const firstAttempt = page.locator('#attempts tr[data-attempt="1"]');
    await firstAttempt.waitFor({ timeout: STEP_MS });
    const attemptText = await firstAttempt.innerText();
    check(attemptText.includes('500') && attemptText.includes('subscriber is down'), 'the attempt row lacks its status and response: ' + attemptText);
    const crmRow = page.locator('#endpoints tr[data-endpoint="crm"]');
    await crmRow.locator('[data-circuit="open"]').waitFor({ timeout: STEP_MS });
    const limits = await crmRow.locator('[data-limits]').innerText();
    check(limits.includes('50/s'), 'the crm row lacks its rate limit: ' + limits);

    // The fleet: 32 endpoints, 20 a page, searchable by id and tenant.
    await until(async () => (await endpointRows(page)).length === 20, 'a first page of 20 endpoints');
    await page.click('#endpoints-next');
    await until(async () => { const rows = await endpointRows(page); return rows.length === 12 && rows[0] === 'fleet-18' || rows; }, 'the second page');
    await page.click('#endpoints-prev');
    await until(async () => (await endpointRows(page))[0] === 'billing', 'the first page again');
    await page.fill('#endpoint-search', 'fleet-2');
    await until(async () => { const rows = await endpointRows(page); return rows.length === 10 && rows.every((id) => id.startsWith('fleet-2')) || rows; }, 'the search by id');
    await page.fill('#endpoint-search', '');
    await page.fill('#endpoint-tenant', 'acme');
    await until(async () => { const rows = await endpointRows(page); return rows.length === 10 && rows.every((id) => Number(id.slice(6)) % 3 === 1) || rows; }, 'the search by tenant');
    await page.fill('#endpoint-tenant', '');
    await until(async () => (await endpointRows(page)).length === 20, 'every endpoint again');

    // The charts of crm: the sequence the test made is two requests that
    // failed (then the circuit opened), no success.
    await crmRow.locator('strong').click();
    await until(async () => (await page.locator('#charts-endpoint').innerText()) === 'crm', 'the charts of crm');
    const stats = await (await fetch(adminUrl + '/v1/endpoints/crm/stats?window=1h', { headers: { Authorization: 'Bearer ' + token } })).json();
    const withLatency = stats.minutes.slice(-60).filter((minute) => minute.latency_ms).length;
    check(withLatency >= 1, 'the stats have no latency: ' + JSON.stringify(stats));
    await until(async () => {
      const chart = await drawn(page);
      return (chart.minutes === 60 && chart.status === 2 && chart.success === 0 && chart.p50 === withLatency
        && chart.p99 === withLatency && chart.bands === 1) || chart;
    }, 'the charts of two failed requests and an open circuit');
    await page.screenshot({ path: screenshot, fullPage: true });

    // The deliveries, filtered: by tenant, status, endpoint and event type.
    const listed = () => page.locator('#deliveries tr[data-delivery]').evaluateAll((rows) => rows.map((row) => {
      const cells = [...row.cells].map((cell) => cell.innerText.trim());
      return { id: row.dataset.delivery, event: cells[1], tenant: cells[2], endpoint: cells[3], status: cells[4] };
    }));
    const filtered = async (id, value, expected, wanted) => {
      if (id === 'filter-status') await page.selectOption('#' + id, value);
      else await page.fill('#' + id, value);
      await until(async () => { const rows = await listed(); return rows.length === expected && rows.every(wanted) || rows; }, `${id} = ${value}`);
      if (id === 'filter-status') await page.selectOption('#' + id, '');
      else await page.fill('#' + id, '');
    };
    await filtered('filter-tenant', 'acme', 10, (row) => row.tenant === 'acme' && row.event === 'course.published');
    await filtered('filter-status', 'failed', 2, (row) => row.status === 'failed' && row.endpoint === 'crm');
    await filtered('filter-endpoint', 'billing', 2, (row) => row.endpoint === 'billing');
    await filtered('filter-event', 'payment.refunded', 1, (row) => row.event === 'payment.refunded');

    // Found by its id: its details open.
    await page.locator('#detail-close').click();
    await page.locator('#detail').waitFor({ state: 'hidden', timeout: STEP_MS });
    await page.fill('#find', deliveryId);
    await page.press('#find', 'Enter');
    await until(async () => (await page.locator('#detail-id').innerText()) === deliveryId, 'the delivery found by its id');
    await page.locator('#detail-close').click();

    // Found by its event id: the event's one delivery is listed.
    await page.fill('#find', eventId);
    await page.press('#find', 'Enter');
    const found = page.locator(`#deliveries tr[data-delivery="${deliveryId}"]`);
    await found.waitFor({ timeout: STEP_MS });
    await until(async () => (await page.locator('#deliveries tr[data-delivery]').count()) === 1, 'only the event\'s delivery');
    await found.click();

    // The payload, pretty-printed, as text: the markup in it is not HTML.
    await until(async () => (await page.locator('#payload').innerText()).includes('"student_id": "student_xyz789"'), 'the payload');
    const payload = await page.locator('#payload').innerText();
    check(payload.includes('<b>not bold</b>'), 'the payload lost its text: ' + payload);
    check((await page.locator('#payload b').count()) === 0, 'the payload was rendered as HTML');

    // Retry from the payload view: the circuit's probe, which succeeds.
    await page.locator('#detail-retry').click();
    await page.locator('#detail-status .pill.succeeded').waitFor({ timeout: STEP_MS });
    await page.locator('#attempts tr[data-attempt="2"]').waitFor({ timeout: STEP_MS });
    await page.locator(`#failed tr[data-delivery="${deliveryId}"]`).waitFor({ state: 'detached', timeout: STEP_MS });
    await crmRow.locator('[data-circuit="closed"]').waitFor({ timeout: STEP_MS });
    await until(async () => { const chart = await drawn(page); return chart.success === 1 || chart; }, 'the chart of the success');
    check(!errors.length, 'console errors: ' + errors.join('; '));
    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
