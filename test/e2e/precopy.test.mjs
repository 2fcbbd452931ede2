// Live migration between two real tabs of one browser, over WebRTC, driven only through QMP.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { sharedBrowser } from './session.mjs';

const RAM_BASE = 0x8000_0000;
const AB_START = RAM_BASE + 0x10_0000;
const AB_SIZE = 2 << 20;

/** QEMU migration-test's a-b check: first bytes hold N up to where the loop was, N-1 after. */
async function checkAbInvariant(tab) {
  const bytes = await tab.page.evaluate(
    async ({ start, size }) => {
      const out = [];
      for (let a = start; a < start + size; a += 4096) {
        const r = await window.qmp({ execute: 'human-monitor-command', arguments: { 'command-line': `xp /1xb 0x${a.toString(16)}` } });
        out.push(parseInt(r.return.split(':')[1], 16));
      }
      return out;
    },
    { start: AB_START, size: AB_SIZE },
  );
  let drops = 0;
  for (let i = 1; i < bytes.length; i++) {
    if (bytes[i] === bytes[i - 1]) continue;
    assert.equal((bytes[i - 1] - bytes[i]) & 0xff, 1, `page ${i}: ${bytes[i - 1]} then ${bytes[i]}`);
    drops++;
  }
  assert.ok(drops <= 1, `at most one step down in the a-b range, saw ${drops}`);
}

describe('precopy live migration between two tabs', () => {
  const session = sharedBrowser();

  async function destination(query = '?incoming=defer&S') {
    const b = await session.browser.open(query);
    if (query.includes('defer')) await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id } = await b.ret('x-tabmig-peer');
    return { b, id };
  }

  async function source() {
    const a = await session.browser.open('?name=source');
    await a.ret('migrate-set-capabilities', {
      capabilities: [
        { capability: 'events', state: true },
        { capability: 'return-path', state: true },
      ],
    });
    await a.ret('x-tabmig-load', { program: 'ab' });
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('B'), 10000);
    return a;
  }

  it('moves a running ab guest: same RAM, same devices, it goes on at the destination', async () => {
    const { b, id } = await destination();
    const a = await source();
    const events = [];
    await a.page.exposeFunction('__noteEvent', (e) => events.push(e));
    await a.page.evaluate(() => window.addEventListener('qmp-event', (e) => window.__noteEvent(e.detail)));
    await a.ret('migrate', { uri: `webrtc:${id}` });
    const info = await a.until('query-migrate', (m) => ['completed', 'failed', 'cancelled'].includes(m.status), 120000);
    assert.equal(info.status, 'completed', JSON.stringify(info));
    assert.equal((await a.ret('query-status')).status, 'postmigrate');
    await b.until('query-migrate', (m) => m.status === 'completed', 30000);
    assert.equal((await b.ret('query-status')).status, 'paused', 'the destination was started with -S');

    assert.equal(await b.hash(), await a.hash(), 'RAM hashes');
    const ga = await a.ret('x-tabmig-guest-info');
    const gb = await b.ret('x-tabmig-guest-info');
    assert.equal(gb.program, 'ab');
    assert.equal(gb.args, ga.args);
    assert.deepEqual(await b.ret('x-tabmig-device-state'), await a.ret('x-tabmig-device-state'), 'device state');
    assert.match(await b.hmp('info registers'), /pc\s+8000[0-9a-f]{4}/);
    await checkAbInvariant(b);

    // QEMU's fields for a completed migration, and counters that add up.
    for (const k of ['total-time', 'downtime', 'setup-time']) assert.equal(typeof info[k], 'number', k);
    assert.equal(info.ram.remaining, undefined);
    assert.equal(info.ram['normal-bytes'], info.ram.normal * 4096);
    assert.ok(info.ram.duplicate + info.ram.normal >= info.ram.total / 4096);
    assert.ok(info.ram.transferred >= info.ram['normal-bytes']);
    assert.deepEqual(
      events.filter((e) => e.event === 'MIGRATION').map((e) => e.data.status),
      ['setup', 'active', 'completed'],
    );
    assert.ok(events.some((e) => e.event === 'STOP'), 'the source stopped for the switchover');

    const i1 = (await b.ret('x-tabmig-guest-info')).instructions;
    await b.ret('cont');
    await b.until('x-tabmig-guest-info', (i) => i.instructions > i1, 10000);
    await a.page.close();
    await b.page.close();
  });

  it('cancels in setup, active and pre-switchover: the source runs on, the destination fails', async () => {
    for (const at of ['active', 'pre-switchover']) {
      const { b, id } = await destination();
      const a = await source();
      await a.ret('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: at === 'pre-switchover' }] });
      if (at === 'active') await a.ret('migrate-set-parameters', { 'max-bandwidth': 1 << 20 });
      await a.ret('migrate', { uri: `webrtc:${id}` });
      await a.until('query-migrate', (m) => m.status === at, 60000);
      await a.ret('migrate_cancel');
      const end = await a.until('query-migrate', (m) => ['cancelled', 'failed', 'completed'].includes(m.status), 30000);
      assert.equal(end.status, 'cancelled', at);
      assert.equal((await a.ret('query-status')).status, 'running', `source runs after a cancel in ${at}`);
      const i1 = (await a.ret('x-tabmig-guest-info')).instructions;
      await a.until('x-tabmig-guest-info', (i) => i.instructions > i1, 10000);
      const bEnd = await b.until('query-migrate', (m) => m.status === 'failed' || m.status === 'completed', 30000);
      assert.equal(bEnd.status, 'failed', `destination after a cancel in ${at}`);
      assert.equal((await b.ret('query-status')).status, 'inmigrate', 'the destination guest never started');
      await a.page.close();
      await b.page.close();
    }
  });

  it('fails cleanly when the destination tab closes mid-migration; the source guest keeps running', async () => {
    const { b, id } = await destination();
    const a = await source();
    await a.ret('migrate-set-parameters', { 'max-bandwidth': 1 << 20 });
    await a.ret('migrate', { uri: `webrtc:${id}` });
    await a.until('query-migrate', (m) => m.status === 'active', 60000);
    await b.page.close();
    const end = await a.until('query-migrate', (m) => m.status !== 'active' && m.status !== 'setup', 60000);
    assert.equal(end.status, 'failed');
    assert.ok(end['error-desc'], 'failed migrations say why');
    assert.equal((await a.ret('query-status')).status, 'running');
    const i1 = (await a.ret('x-tabmig-guest-info')).instructions;
    await sleep(300);
    assert.ok((await a.ret('x-tabmig-guest-info')).instructions > i1);
    await a.page.close();
  });

  it('saves a snapshot to IndexedDB and restores it in another tab', async () => {
    const a = await session.browser.open('');
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=2M rate=1M' });
    await a.ret('migrate', { uri: 'idb:e2e-snap' });
    const info = await a.until('query-migrate', (m) => ['completed', 'failed'].includes(m.status), 60000);
    assert.equal(info.status, 'completed', JSON.stringify(info));
    const h = await a.hash();
    const b = await session.browser.open('?incoming=idb:e2e-snap&S');
    await b.until('query-migrate', (m) => m.status === 'completed', 60000);
    assert.equal(await b.hash(), h);
    assert.equal((await b.ret('query-status')).status, 'paused');
    await b.ret('cont');
    assert.equal((await b.ret('query-status')).status, 'running');
    await a.page.close();
    await b.page.close();
  });

  it('raised no page errors', () => {
    assert.deepEqual(session.browser.pageErrors, []);
  });
});
