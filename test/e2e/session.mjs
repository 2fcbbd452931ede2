// The test files' shared set-up, apart from harness.mjs so that bench/ can use the harness
// without loading node:test.
import { after, before } from 'node:test';
import { startBrowser, startServer } from './harness.mjs';

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
