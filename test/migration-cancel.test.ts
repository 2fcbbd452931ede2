// migrate_cancel from every state a precopy migration passes through (setup, active,
// pre-switchover, device). QEMU's promise: the source ends 'cancelled' with its guest running as
// before, and the destination, which never got a complete stream, fails without ever starting the
// guest. A cancelled source can then migrate again.

import { deepEqual, equal, ok } from './helpers/assert.js';
import {
  abCheck,
  abPasses,
  advances,
  listenFakeDestination,
  loopbackName,
  type Tab,
  perTest,
} from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();

/** 1 MB/s against an 8 MiB range the guest re-dirties all the time: precopy never converges. */
const SLOW = { 'max-bandwidth': 1_000_000 };
const BIG_RANGE = 'size=8M';

async function pair(src: { args?: string } = {}) {
  const a = await tab({ program: 'ab', args: src.args });
  const b = await tab({ incoming: 'defer' });
  await abPasses(a, 1);
  const uri = `loopback:${loopbackName('cancel')}`;
  await a.setCaps({ events: true, 'return-path': true });
  await b.setCaps({ events: true, 'return-path': true });
  await b.ok('migrate-incoming', { uri });
  return { a, b, uri };
}

/** What every cancelled migration must leave behind, at both ends. */
async function expectCancelled(a: Tab, b: Tab | null, fromState: string): Promise<void> {
  const info = await a.waitStatus(['cancelled', 'completed', 'failed']);
  equal(info.status, 'cancelled', `source status after cancel in ${fromState} (${info['error-desc'] ?? ''})`);
  deepEqual(Object.keys(info), ['status'], 'query-migrate in cancelled has only the status');
  const ev = a.migrationEvents();
  deepEqual(ev.slice(-2), ['cancelling', 'cancelled'], 'the last MIGRATION events');
  ok(ev.includes(fromState), `the migration did pass through ${fromState} (events ${ev.join(',')})`);
  equal(await a.runstate(), 'running', 'the source guest runs again');
  await advances(a, 'the source guest to advance after cancel');
  if (b) {
    const binfo = await b.waitStatus(['failed', 'completed']);
    equal(binfo.status, 'failed', 'destination status');
    ok(typeof binfo['error-desc'] === 'string' && binfo['error-desc'].length > 0, 'destination error-desc');
    equal(await b.runstate(), 'inmigrate', 'the destination guest never started');
    equal(b.instructions(), 0, 'the destination vCPU never ran');
  }
}

describe('migrate_cancel', () => {
  it('in setup', async () => {
    const { a, b, uri } = await pair();
    // Both commands are queued in one task: the worker cannot have left setup before the cancel.
    const [m, c] = await Promise.all([a.qmp('migrate', { uri }), a.qmp('migrate_cancel')]);
    ok(!('error' in m) && !('error' in c), 'both commands succeed');
    await expectCancelled(a, b, 'setup');
    deepEqual(a.migrationEvents(), ['setup', 'cancelling', 'cancelled']);
  });

  it('in active, and a second migration afterwards completes', async () => {
    const { a, b, uri } = await pair({ args: BIG_RANGE });
    await a.setParams(SLOW);
    await a.ok('migrate', { uri });
    await a.waitStatus('active');
    // Some pages went out, so the destination really is partway through the stream.
    await b.waitStatus('active');
    await a.ok('migrate_cancel');
    await expectCancelled(a, b, 'active');
    // A cancel while nothing is in progress is a no-op, as in QEMU.
    await a.ok('migrate_cancel');
    equal((await a.queryMigrate()).status, 'cancelled');

    // QEMU's migration-test: cancel, then migrate the same source to a new destination.
    await a.setParams({ 'max-bandwidth': 33554432 });
    await a.ok('x-tabmig-load', { program: 'ab' }); // back to the 2 MiB range, which converges
    await abPasses(a, 1);
    const c = await tab({ incoming: 'defer', startPaused: true });
    const uri2 = `loopback:${loopbackName('after-cancel')}`;
    await c.ok('migrate-incoming', { uri: uri2 });
    await a.ok('migrate', { uri: uri2 });
    const info = await a.waitStatus(['completed', 'failed', 'cancelled']);
    equal(info.status, 'completed', `the retry (${info['error-desc'] ?? ''})`);
    equal((await c.waitStatus(['completed', 'failed'])).status, 'completed');
    equal(await c.ramHash(), await a.ramHash(), 'RAM hash');
    equal(abCheck(c.machine.ramBytes, c.machine.ramSize), null, 'a-b invariant');
  });

  it('in pre-switchover (pause-before-switchover): the stopped guest runs again', async () => {
    const { a, b, uri } = await pair();
    await a.setCaps({ 'pause-before-switchover': true });
    await a.ok('migrate', { uri });
    await a.waitStatus('pre-switchover');
    equal(await a.runstate(), 'finish-migrate', 'the guest is stopped for the switchover');
    const before = a.instructions();
    // Stays there until told: the guest does not move meanwhile.
    await new Promise((r) => setTimeout(r, 200));
    equal((await a.queryMigrate()).status, 'pre-switchover');
    equal(a.instructions(), before, 'the guest stays stopped in pre-switchover');
    await a.ok('migrate_cancel');
    await expectCancelled(a, b, 'pre-switchover');
    deepEqual(a.migrationEvents(), ['setup', 'active', 'pre-switchover', 'cancelling', 'cancelled']);
  });

  it('in device (the source waits for the destination to confirm on the return path)', async () => {
    // A destination that loads everything but never sends SHUT holds the source in 'device'.
    const name = loopbackName('device');
    const fake = listenFakeDestination(name);
    onCleanup(() => fake.close());
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.setCaps({ events: true, 'return-path': true, 'pause-before-switchover': true });
    await a.ok('migrate', { uri: `loopback:${name}` });
    const dest = await fake.connection;
    onCleanup(() => dest.close());
    await a.waitStatus('pre-switchover');
    await a.ok('migrate-continue', { state: 'pre-switchover' });
    await a.waitStatus('device');
    await dest.loaded;
    equal((await a.queryMigrate()).status, 'device', 'still waiting for SHUT');
    equal(await a.runstate(), 'finish-migrate');
    await a.ok('migrate_cancel');
    await expectCancelled(a, null, 'device');
    deepEqual(a.migrationEvents(), ['setup', 'active', 'pre-switchover', 'device', 'cancelling', 'cancelled']);
  });

  it('of a save to a snapshot leaves the guest running', async () => {
    const a = await tab({ program: 'ab', args: BIG_RANGE });
    await a.setCaps({ events: true });
    await a.setParams(SLOW);
    await a.ok('migrate', { uri: `idb:${loopbackName('cancelled-save')}` });
    await a.waitStatus('active');
    await a.ok('migrate_cancel');
    await expectCancelled(a, null, 'active');
  });
});
