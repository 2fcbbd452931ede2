// The switchover never runs the guest twice or loses it (DESIGN §8, §10). Real tabs over WebRTC,
// each fault hit at an exact instant: a worker is held there (x-tabmig-hold), the fault happens
// (migrate_cancel, the destination tab closed, the link dropped as a network would), then the
// worker goes on. Afterwards exactly one copy of the guest runs. A destination whose link broke
// after it said ready is in doubt: it asks the source (over signaling, and through the source
// page's Web Lock when that tab is gone) and runs its copy if the source committed or is gone,
// or discards it if the source resumed. A source whose guest left is spent: it refuses `cont`,
// `migrate` and snapshots.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { sharedBrowser } from './session.mjs';

const FINAL = ['completed', 'failed', 'cancelled'];

describe('switchover faults between two tabs', () => {
  const session = sharedBrowser();

  /** A destination waiting for any peer (it starts its guest by itself once committed) and a running ab source. */
  async function pair(returnPath) {
    const b = await session.browser.open('?incoming=defer&name=dest');
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id } = await b.ret('x-tabmig-peer');
    const a = await session.browser.open('?name=source');
    await a.ret('migrate-set-capabilities', {
      capabilities: [
        { capability: 'events', state: true },
        { capability: 'return-path', state: returnPath },
      ],
    });
    await a.ret('x-tabmig-load', { program: 'ab' });
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('B'), 10000);
    return { a, b, id };
  }

  /** Waits until `tab`'s worker is held at `point`; says how the source's migration went if it never gets there. */
  async function heldAt(tab, point, source = tab) {
    // A loaded machine can take a while to connect and converge before the switchover starts.
    const deadline = Date.now() + 90000;
    for (;;) {
      if ((await tab.ret('x-tabmig-held')).point === point) return;
      const m = await source.ret('query-migrate');
      if (FINAL.includes(m.status) || Date.now() > deadline) throw new Error(`never held at ${point}: the source's migration is ${JSON.stringify(m).slice(0, 400)}`);
      await sleep(100);
    }
  }

  async function runstate(tab) {
    return (await tab.ret('query-status')).status;
  }

  /**
   * Instructions retired grow within a few seconds: the guest really runs there (a vCPU on a
   * loaded machine may wait a while for the CPU; one that stays still that long does not run).
   */
  async function runs(tab, ms = 3000) {
    const a = (await tab.ret('x-tabmig-guest-info')).instructions;
    const deadline = Date.now() + ms;
    do {
      await sleep(150);
      if ((await tab.ret('x-tabmig-guest-info')).instructions > a) return true;
    } while (Date.now() < deadline);
    return false;
  }

  /** Runs one fault: hold `side` at `point`, do `act`, release, wait for both sides to settle. */
  async function fault({ returnPath, side, point, act }) {
    const { a, b, id } = await pair(returnPath);
    const held = side === 'source' ? a : b;
    await held.ret('x-tabmig-hold', { point });
    await a.ret('migrate', { uri: 'webrtc:' + id });
    await heldAt(held, point, a);
    let destOpen = true;
    let sourceOpen = true;
    if (act === 'cancel') await a.ret('migrate_cancel');
    else if (act === 'drop') await a.ret('x-tabmig-drop-link');
    else if (act === 'drop-from-dest') await b.ret('x-tabmig-drop-link');
    else if (act === 'close-dest') {
      await b.page.close();
      destOpen = false;
    } else if (act === 'close-source') {
      await a.page.close();
      sourceOpen = false;
    }
    await sleep(200);
    if (destOpen) await b.ret('x-tabmig-release');
    if (!sourceOpen) {
      const dst = await b.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
      return { a, b, src: null, dst, srcState: 'closed', dstState: await runstate(b), destOpen, sourceOpen };
    }
    await a.ret('x-tabmig-release');
    const src = await a.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
    let dst = null;
    if (destOpen) {
      dst = await b.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
      await b.until('query-status', (v) => v.status !== 'inmigrate' || dst.status !== 'completed', 10000);
    }
    const srcState = await runstate(a);
    const dstState = destOpen ? await runstate(b) : 'closed';
    return { a, b, src, dst, srcState, dstState, destOpen, sourceOpen: true };
  }

  async function cleanup(r) {
    if (r.sourceOpen) await r.a.page.close();
    if (r.destOpen) await r.b.page.close();
  }

  /** Only the source runs: the destination never started what it loaded. */
  async function sourceKeepsTheGuest(r, status) {
    assert.equal(r.src.status, status, JSON.stringify(r.src));
    assert.equal(r.srcState, 'running');
    assert.ok(await runs(r.a), 'the source guest runs on');
    if (r.destOpen) {
      assert.notEqual(r.dstState, 'running', 'the destination must not run a second copy');
      assert.equal(r.dst.status, 'failed');
    }
  }

  /** Only the destination runs; the source is stopped for good. */
  async function destinationHasTheGuest(r) {
    assert.equal(r.dstState, 'running', JSON.stringify(r.dst));
    assert.ok(await runs(r.b), 'the destination guest runs');
    assert.equal(r.srcState, 'postmigrate');
    const c = await r.a.qmp({ execute: 'cont' });
    assert.ok(c.error, 'cont on the source must not run a second copy');
    assert.equal(await runstate(r.a), 'postmigrate');
  }

  it('cancel while active, and in pre-switchover: the source runs on, the destination never starts', async () => {
    for (const phase of ['active', 'pre-switchover']) {
      const { a, b, id } = await pair(true);
      if (phase === 'active') await a.ret('migrate-set-parameters', { 'max-bandwidth': 256 << 10 });
      else await a.ret('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: true }] });
      await a.ret('migrate', { uri: 'webrtc:' + id });
      await a.until('query-migrate', (v) => v.status === phase, 30000);
      await a.ret('migrate_cancel');
      const src = await a.until('query-migrate', (v) => FINAL.includes(v.status), 30000);
      assert.equal(src.status, 'cancelled', phase);
      assert.equal(await runstate(a), 'running', phase);
      assert.ok(await runs(a), `${phase}: the source guest runs on`);
      const dst = await b.until('query-migrate', (v) => FINAL.includes(v.status), 30000);
      assert.equal(dst.status, 'failed', phase);
      assert.notEqual(await runstate(b), 'running', `${phase}: the destination never runs it`);
      await a.page.close();
      await b.page.close();
    }
  });

  it('in doubt, the source tab closed between ready and commit: its Web Lock released, the destination runs its copy', async () => {
    const r = await fault({ returnPath: true, side: 'source', point: 'ready-received', act: 'close-source' });
    assert.equal(r.dst.status, 'completed', JSON.stringify(r.dst));
    await r.b.until('query-status', (v) => v.status === 'running', 10000);
    assert.ok(await runs(r.b), 'the kept copy runs by itself');
    assert.equal((await r.b.ret('x-tabmig-ownership')).state, 'owner');
    await cleanup(r);
  });

  it('a spent source refuses cont after migrate with a bad URI, an onward migration and snapshots: one copy runs', async () => {
    const { a, b, id } = await pair(true);
    await a.ret('migrate', { uri: 'webrtc:' + id });
    assert.equal((await a.until('query-migrate', (v) => FINAL.includes(v.status), 60000)).status, 'completed');
    await b.until('query-status', (v) => v.status === 'running', 10000);
    const c = await session.browser.open('?incoming=defer&name=third');
    await c.ret('migrate-incoming', { uri: 'webrtc:' });
    const third = (await c.ret('x-tabmig-peer')).id;
    const refused = async (cmd) => {
      const reply = await a.qmp(cmd);
      assert.ok(reply.error, `${JSON.stringify(cmd)} must be refused on a spent source`);
      assert.match(reply.error.desc, /migrated to another tab/, JSON.stringify(cmd));
    };
    assert.ok((await a.qmp({ execute: 'migrate', arguments: { uri: 'foo:' } })).error, 'a bad URI is refused');
    await refused({ execute: 'cont' });
    await refused({ execute: 'migrate', arguments: { uri: 'foo:' } });
    await refused({ execute: 'migrate', arguments: { uri: 'webrtc:' + third } });
    await refused({ execute: 'migrate', arguments: { uri: 'idb:spent' } });
    await refused({ execute: 'migrate', arguments: { uri: 'file:spent.qemu' } });
    assert.equal(await runstate(a), 'postmigrate');
    assert.ok(!(await runs(a)), 'the stale copy never runs');
    assert.ok(await runs(b), 'the guest runs at the destination');
    assert.equal((await c.ret('query-migrate')).status, 'setup', 'the third tab never heard from the spent source');
    assert.equal(await runstate(c), 'inmigrate');
    await a.page.close();
    await b.page.close();
    await c.page.close();
  });

  it('in doubt, the source committed (its commit lost with the link): the destination runs its copy, the source stays stopped', async () => {
    const { a, b, id } = await pair(true);
    // The commit leaves 1.5 s late, and the link breaks meanwhile: it never arrives. (Every control
    // message is late, the switchover's round trips too: downtime-limit is raised to allow for it.)
    await a.ret('migrate-set-parameters', { 'downtime-limit': 20000 });
    await a.ret('x-tabmig-delay-control', { 'min-ms': 1500, 'max-ms': 1500 });
    await a.ret('x-tabmig-hold', { point: 'commit-sent' });
    await a.ret('migrate', { uri: 'webrtc:' + id });
    await heldAt(a, 'commit-sent');
    await a.ret('x-tabmig-delay-control', { 'min-ms': 0, 'max-ms': 0 });
    assert.ok((await a.ret('x-tabmig-held')).committed, 'the source passed the point of no return');
    await a.ret('x-tabmig-drop-link');
    await a.ret('x-tabmig-release');
    const dst = await b.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
    assert.equal(dst.status, 'completed', JSON.stringify(dst));
    await b.until('query-status', (v) => v.status === 'running', 10000);
    assert.ok(await runs(b), 'the kept copy runs');
    assert.equal((await a.until('query-migrate', (v) => FINAL.includes(v.status), 60000)).status, 'failed');
    assert.equal(await runstate(a), 'postmigrate');
    assert.ok((await a.qmp({ execute: 'cont' })).error, 'the source never runs it again');
    await a.page.close();
    await b.page.close();
  });

  it('source tab closed before the destination is ready: the destination discards, and can receive again', async () => {
    const r = await fault({ returnPath: true, side: 'destination', point: 'loaded', act: 'close-source' });
    assert.equal(r.dst.status, 'failed');
    assert.equal(r.dstState, 'inmigrate', 'nothing started; the tab still waits to receive');
    await r.b.ret('migrate-incoming', { uri: 'webrtc:' });
    await cleanup(r);
  });

  it('link dropped by the destination after its commit arrived: the destination runs it, the source stays stopped', async () => {
    const r = await fault({ returnPath: true, side: 'destination', point: 'commit-received', act: 'drop-from-dest' });
    assert.equal(r.dst.status, 'completed');
    assert.equal(r.dstState, 'running');
    assert.ok(await runs(r.b));
    assert.equal(r.srcState, 'postmigrate', 'after the commit the source never resumes');
    assert.ok(['completed', 'failed'].includes(r.src.status), r.src.status);
    await cleanup(r);
  });

  for (const returnPath of [true, false]) {
    const rp = `return-path ${returnPath ? 'on' : 'off'}`;

    it(`${rp}: cancel the instant the last byte left: the source resumes, the destination discards`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'all-sent', act: 'cancel' });
      await sourceKeepsTheGuest(r, 'cancelled');
      await cleanup(r);
    });

    it(`${rp}: cancel the instant the destination said ready: the source resumes, the destination discards`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'ready-received', act: 'cancel' });
      await sourceKeepsTheGuest(r, 'cancelled');
      await cleanup(r);
    });

    it(`${rp}: cancel after the commit is a no-op: the migration completes`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'commit-sent', act: 'cancel' });
      assert.equal(r.src.status, 'completed', JSON.stringify(r.src));
      assert.equal(r.dst.status, 'completed');
      await destinationHasTheGuest(r);
      await cleanup(r);
    });

    it(`${rp}: destination tab closed before ready: the source resumes`, async () => {
      const r = await fault({ returnPath, side: 'destination', point: 'loaded', act: 'close-dest' });
      await sourceKeepsTheGuest(r, 'failed');
      await cleanup(r);
    });

    it(`${rp}: destination tab closed between ready and commit: the source resumes`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'ready-received', act: 'close-dest' });
      await sourceKeepsTheGuest(r, 'failed');
      await cleanup(r);
    });

    it(`${rp}: destination tab closed after the commit: the source stays stopped`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'commit-sent', act: 'close-dest' });
      assert.ok(['completed', 'failed'].includes(r.src.status), r.src.status);
      assert.equal(r.srcState, 'postmigrate', 'after the commit the source never resumes');
      await cleanup(r);
    });

    it(`${rp}: link lost before ready: the source resumes, the destination discards`, async () => {
      const r = await fault({ returnPath, side: 'destination', point: 'loaded', act: 'drop' });
      await sourceKeepsTheGuest(r, 'failed');
      await cleanup(r);
    });

    it(`${rp}: in doubt, link lost between ready and commit: the source resumed, so the destination discards its copy`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'ready-received', act: 'drop' });
      assert.equal(r.src.status, 'failed');
      assert.equal(r.srcState, 'running', 'no commit was sent: the source resumes');
      assert.ok(await runs(r.a), 'the source runs the guest on');
      assert.equal(r.dst.status, 'failed');
      assert.match(r.dst['error-desc'] ?? '', /source kept the guest.*discarded/);
      assert.equal(r.dstState, 'inmigrate', 'the stale copy is discarded: the tab waits for a guest again');
      assert.equal((await r.b.ret('x-tabmig-ownership')).state, 'empty');
      await r.b.ret('migrate-incoming', { uri: 'webrtc:' });
      await cleanup(r);
    });

    it(`${rp}: link lost after the commit: the source stays stopped, the guest is the destination's`, async () => {
      const r = await fault({ returnPath, side: 'source', point: 'commit-sent', act: 'drop' });
      assert.ok(['completed', 'failed'].includes(r.src.status), r.src.status);
      assert.equal(r.srcState, 'postmigrate');
      // Whether the commit arrived or the destination had to ask, the copy there is the guest.
      await r.b.until('query-status', (v) => v.status === 'running', 15000);
      await destinationHasTheGuest({ ...r, dstState: 'running' });
      await cleanup(r);
    });
  }
});
