// migrate to file: downloads the stream; the Snapshots panel loads that file back and restores it
// in a tab, as a teacher would do it with the mouse.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sharedBrowser } from './session.mjs';

describe('a migration to a file, loaded back through the page', () => {
  const session = sharedBrowser();

  it('downloads file:NAME, and the picker + Restore bring the same RAM back', async () => {
    const a = await session.browser.open('?m=32M');
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=4M rate=1M mode=random' });
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('stress: ready'), 30000);
    // Saved paused, the snapshot restores paused (its globalstate says so), so RAM compares whole.
    await a.ret('stop');
    const download = a.page.waitForEvent('download', { timeout: 60000 });
    await a.ret('migrate', { uri: 'file:lesson.qemu' });
    const file = await download;
    assert.equal(file.suggestedFilename(), 'lesson.qemu');
    const path = join(mkdtempSync(join(tmpdir(), 'tabmig-')), 'lesson.qemu');
    await file.saveAs(path);
    const info = await a.until('query-migrate', (m) => m.status === 'completed' || m.status === 'failed', 60000);
    assert.equal(info.status, 'completed');
    assert.equal((await a.ret('query-status')).status, 'postmigrate');
    const hash = await a.hash();

    const b = await session.browser.open('?m=32M&S');
    const panel = b.page.locator('tm-snapshots');
    await panel.locator('input[type="file"]').setInputFiles(path);
    const restore = panel.getByRole('button', { name: 'Restore it' });
    await restore.waitFor({ timeout: 30000 });
    await restore.click();
    await b.page.waitForURL(/incoming=idb/, { timeout: 30000 });
    await b.page.waitForFunction(() => typeof window.qmp === 'function', null, { timeout: 30000 });
    const loaded = await b.until('query-migrate', (m) => m.status === 'completed' || m.status === 'failed', 60000);
    assert.equal(loaded.status, 'completed', JSON.stringify(loaded));
    assert.equal((await b.ret('query-status')).status, 'paused', 'restored as it was saved: paused');
    assert.equal((await b.ret('x-tabmig-guest-info')).program, 'stress');
    assert.equal(await b.hash(), hash, 'RAM hash of the restored machine');
    assert.deepEqual(await b.ret('x-tabmig-device-state'), await a.ret('x-tabmig-device-state'), 'device state');
    await b.ret('cont');
    assert.equal((await b.ret('query-status')).status, 'running');
    await a.page.close();
    await b.page.close();
  });
});
