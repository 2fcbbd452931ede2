// The test files' shared set-up, apart from harness.mjs so that bench/ can use the harness
// without loading node:test.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROME_ARGS, findChrome } from '../../scripts/find-chrome.mjs';
import { Tab, startBrowser, startServer } from './harness.mjs';

/**
 * One preview server and one browser for the tests of a file (registered with node:test's
 * before/after); the tests open tabs with `session.browser.open(...)`.
 */
export function sharedBrowser() {
  const session = { server: null, browser: null };
  before(async () => {
    session.server = await startServer();
    session.browser = await startBrowser(session.server.base);
  });
  after(async () => {
    await session.browser?.close();
    session.server?.stop();
  });
  return session;
}

/**
 * One preview server and one browser for the tests of a file, where each tab opens in a browser
 * context of its own (no BroadcastChannel, storage or certificate shared: as on two machines)
 * unless given one: `session.open(query, { context, base })` → a Tab with its `context`. No page
 * may throw: checked when the file ends.
 */
export function contextPerTab() {
  const session = { server: null, browser: null, pageErrors: [] };
  session.open = async (query, { context = null, base = session.server.base } = {}) => {
    const ctx = context ?? (await session.browser.newContext());
    const page = await ctx.newPage();
    page.on('pageerror', (e) => session.pageErrors.push(e.message));
    await page.goto(base + query);
    await page.waitForFunction(() => typeof window.qmp === 'function', null, { timeout: 30000 });
    const tab = new Tab(page);
    tab.context = ctx;
    return tab;
  };
  before(async () => {
    session.server = await startServer();
    session.browser = await chromium.launch({ executablePath: findChrome(), args: CHROME_ARGS });
  });
  after(async () => {
    await session.browser?.close();
    session.server?.stop();
    assert.deepEqual(session.pageErrors, []);
  });
  return session;
}
