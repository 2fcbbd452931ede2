// The machine in a real tab, driven only through QMP as a user's script would.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { sharedBrowser } from './session.mjs';

describe('a running toy machine in a tab', () => {
  const session = sharedBrowser();

  it('boots the demo at once, cross-origin isolated', async () => {
    const tab = await session.browser.open('');
    assert.equal(await tab.page.evaluate(() => crossOriginIsolated), true);
    const status = await tab.until('query-status', (s) => s.status === 'running', 10000);
    assert.equal(status.running, true);
    const info = await tab.ret('x-tabmig-guest-info');
    assert.equal(info.program, 'life');
    await tab.page.close();
  });

  it('runs ab: serial output grows, stop freezes RAM, cont resumes', async () => {
    const tab = await session.browser.open('?S&name=e2e');
    assert.deepEqual(await tab.ret('query-status'), { running: false, singlestep: false, status: 'prelaunch' });
    assert.deepEqual(await tab.ret('query-name'), { name: 'e2e' });
    await tab.ret('x-tabmig-load', { program: 'ab' });
    await tab.ret('cont');
    const s1 = (await tab.ret('x-tabmig-guest-info')).serial.length;
    await tab.until('x-tabmig-guest-info', (i) => i.serial.length > s1 + 2, 20000);

    await tab.ret('stop');
    assert.equal((await tab.ret('query-status')).status, 'paused');
    const h1 = await tab.hash();
    const i1 = (await tab.ret('x-tabmig-guest-info')).instructions;
    await sleep(500);
    assert.equal(await tab.hash(), h1, 'RAM must not change while stopped');
    assert.equal((await tab.ret('x-tabmig-guest-info')).instructions, i1);

    await tab.ret('cont');
    await tab.until('x-tabmig-guest-info', (i) => i.instructions > i1, 10000);
    await sleep(300);
    assert.notEqual(await tab.hash(), h1, 'RAM changes again once running');
    await tab.page.close();
  });

  it('stress changes RAM while it runs; a bad command gets QEMU\'s error', async () => {
    const tab = await session.browser.open('?m=32M');
    await tab.ret('x-tabmig-load', { program: 'stress' });
    const h1 = await tab.hash();
    await sleep(500);
    assert.notEqual(await tab.hash(), h1);
    assert.deepEqual(await tab.qmp({ execute: 'no-such-command' }), {
      error: { class: 'CommandNotFound', desc: 'The command no-such-command has not been found' },
    });
    await tab.page.close();
  });

  it('shows a clear error for a bad RAM size instead of starting a guest', async () => {
    const page = await session.browser.openPage('?m=3G');
    const banner = page.locator('tm-app').getByRole('alert');
    await banner.waitFor({ timeout: 20000 });
    const text = await banner.innerText();
    assert.match(text, /3G/);
    assert.match(text, /16M to 1G/);
    assert.equal(await page.evaluate(() => typeof window.qmp), 'undefined', 'no machine, no monitor');
    await page.close();
  });

  it('raised no page errors', () => {
    assert.deepEqual(session.browser.pageErrors, []);
  });
});
