// The Swagger UI at /docs, in a real headless Chromium, against the real server:
//  - every operation of /openapi.json renders;
//  - "Try it out" on POST /api/randomizes with a word shows 201 and the record;
//  - "Authorize" takes a bearer token, and GET /api/histories then answers 200 on the page;
//  - the page never asks for anything outside the server (air-gapped) and throws no errors;
//  - a screenshot is written to $SCREENSHOT.
// Environment: BASE_URL, TOKEN (histories:read), CHROMIUM (executable), SCREENSHOT (path).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const { BASE_URL, TOKEN, CHROMIUM, SCREENSHOT } = process.env;
const TIMEOUT_MS = 20_000;

async function execute(page, operationId, { body } = {}) {
  const block = page.locator(`[id$="-${operationId}"].opblock`);
  await block.locator('.opblock-summary').first().click();
  // tryItOutEnabled opens the editor directly; click "Try it out" only when it is offered.
  const tryOut = block.getByRole('button', { name: 'Try it out' });
  if (await tryOut.isVisible()) await tryOut.click();
  if (body !== undefined) await block.locator('textarea.body-param__text').fill(body);
  await block.getByRole('button', { name: 'Execute' }).click();
  const live = block.locator('.live-responses-table .response');
  await live.first().waitFor();
  return {
    status: (await live.locator('.response-col_status').first().innerText()).trim(),
    body: await live.locator('.response-col_description pre').first().innerText(),
  };
}

async function main() {
  for (const name of ['BASE_URL', 'TOKEN', 'CHROMIUM', 'SCREENSHOT']) {
    assert.ok(process.env[name], `${name} must be set`);
  }
  const spec = await (await fetch(`${BASE_URL}/openapi.json`)).json();
  const operations = Object.values(spec.paths).flatMap((item) =>
    Object.values(item).filter((op) => op && op.operationId),
  );

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const outside = [];
    // Anything not served by us is recorded and refused, so a CDN reference fails here
    // even on a machine that happens to have internet.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${BASE_URL}/`)) return route.continue();
      outside.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));

    await page.goto(`${BASE_URL}/docs`);
    assert.equal(new URL(page.url()).pathname, '/docs/', '/docs redirects to /docs/');
    await page.locator('.opblock').nth(operations.length - 1).waitFor();
    assert.equal(await page.locator('.opblock').count(), operations.length, 'one block per operation');
    for (const op of operations) {
      assert.equal(await page.locator(`[id$="-${op.operationId}"].opblock`).count(), 1, op.operationId);
    }

    const created = await execute(page, 'create_randomize', { body: '{"word": "browser"}' });
    assert.equal(created.status, '201', created.body);
    const record = JSON.parse(created.body);
    assert.equal(record.original, 'browser');
    assert.equal([...record.jumbled].sort().join(''), [...'browser'].sort().join(''));

    await page.locator('button.authorize').first().click();
    const dialog = page.locator('.modal-ux');
    await dialog.locator('input').first().fill(TOKEN);
    await dialog.getByRole('button', { name: 'Apply credentials' }).click();
    await dialog.locator('button', { hasText: 'Logout' }).waitFor();
    await dialog.locator('button', { hasText: 'Close' }).click();
    const histories = await execute(page, 'list_histories');
    assert.equal(histories.status, '200', histories.body);
    const entries = JSON.parse(histories.body);
    assert.ok(
      entries.some((e) => e.method === 'POST' && e.path === '/api/randomizes' && e.status === 201),
      'the POST made on the page is in the audit history',
    );

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.deepEqual(outside, [], 'requests outside the server');
    assert.deepEqual(errors, [], 'page errors');
    console.log(`browser test passed: ${operations.length} operations, screenshot ${SCREENSHOT}`);
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
