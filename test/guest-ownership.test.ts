// One copy of the guest (DESIGN §10), between two tabs in one page over loopback: a tab whose
// guest migrated away is spent — `cont`, `migrate` (any URI) and snapshots are refused until it
// loads or receives a guest — while a snapshot (idb:, file:) leaves the tab the owner. A reset
// is refused where it would damage a migration in flight, and a postcopy destination cannot be
// migrated on or saved while pages are still missing.

import { DoubtResolver } from '../src/migration/guest-fate.js';
import { setControlDelay } from '../src/migration/switchover.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';
import { abPasses, advances, loopbackName, perTest, type Tab } from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();

const FINAL = ['completed', 'failed', 'cancelled'] as const;

/** A running a-b source migrated to a destination that runs it: the source is spent. */
async function migratedAway(): Promise<{ a: Tab; b: Tab }> {
  const a = await tab({ program: 'ab', name: 'source' });
  const b = await tab({ incoming: 'defer', name: 'dest' });
  await abPasses(a, 1);
  const uri = `loopback:${loopbackName('spent')}`;
  await b.ok('migrate-incoming', { uri });
  await a.ok('migrate', { uri });
  equal((await a.waitStatus([...FINAL])).status, 'completed', 'the migration completes');
  equal((await b.waitStatus([...FINAL])).status, 'completed');
  equal(await b.runstate(), 'running');
  equal(await a.runstate(), 'postmigrate');
  return { a, b };
}

/** The guest does not run in this tab: no instruction retired over a while. */
async function staysStopped(t: Tab, what: string): Promise<void> {
  const before = t.instructions();
  await new Promise((r) => setTimeout(r, 300));
  equal(t.instructions(), before, what);
}

describe('a guest that left is spent', () => {
  it("after a completed migration, 'migrate foo:' then 'cont' are refused: only the destination runs the guest", async () => {
    const { a, b } = await migratedAway();
    match(await a.err('migrate', { uri: 'foo:' }), /migrated to another tab/, 'migrate with a bad URI on a spent source');
    match(await a.err('cont'), /migrated to another tab/, 'cont after it');
    equal(await a.runstate(), 'postmigrate');
    await staysStopped(a, 'the stale copy never runs');
    await advances(b, 'the destination runs the guest');
  });

  it('a spent source refuses an onward migration to a third tab and snapshots (idb:, file:)', async () => {
    const { a } = await migratedAway();
    const c = await tab({ incoming: 'defer', name: 'third' });
    const onward = `loopback:${loopbackName('onward')}`;
    await c.ok('migrate-incoming', { uri: onward });
    for (const uri of [onward, `idb:${loopbackName('spent-snap')}`, 'file:spent.qemu']) {
      match(await a.err('migrate', { uri }), /migrated to another tab/, `migrate ${uri}`);
    }
    equal((await a.queryMigrate()).status, 'completed', 'the refusals leave the completed migration as it was');
    equal((await c.queryMigrate()).status, 'setup', 'the third tab never heard from the spent source');
    equal(await c.runstate(), 'inmigrate');
  });

  it('x-tabmig-load gives a spent tab a guest of its own again: it runs and migrates', async () => {
    const { a } = await migratedAway();
    await a.ok('x-tabmig-load', { program: 'ab' });
    await a.ok('cont');
    await advances(a, 'the newly loaded guest runs');
    const c = await tab({ incoming: 'defer', startPaused: true });
    const uri = `loopback:${loopbackName('reloaded')}`;
    await c.ok('migrate-incoming', { uri });
    await a.ok('migrate', { uri });
    equal((await a.waitStatus([...FINAL])).status, 'completed');
  });

  it('a snapshot (idb:, file:) is a copy in time: the tab stays the owner, cont runs it, and it can migrate on', async () => {
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    for (const uri of [`idb:${loopbackName('owner-snap')}`, 'file:owner.qemu']) {
      await a.ok('migrate', { uri });
      equal((await a.waitStatus([...FINAL])).status, 'completed', uri);
      equal(await a.runstate(), 'postmigrate', `${uri}: stopped as QEMU's migrate leaves it`);
      await a.ok('cont');
      await advances(a, `${uri}: cont runs the guest on`);
    }
    const b = await tab({ incoming: 'defer', startPaused: true });
    const uri = `loopback:${loopbackName('after-snap')}`;
    await b.ok('migrate-incoming', { uri });
    await a.ok('migrate', { uri });
    equal((await a.waitStatus([...FINAL])).status, 'completed', 'a live migration after the snapshots');
    match(await a.err('cont'), /migrated to another tab/, 'and that one spends it');
  });
});

describe('system_reset where it would damage a migration', () => {
  it('refused on a destination waiting in inmigrate', async () => {
    const b = await tab({ incoming: 'defer' });
    await b.ok('migrate-incoming', { uri: `loopback:${loopbackName('reset-inmigrate')}` });
    equal(await b.err('system_reset'), 'Guest is waiting for an incoming migration');
    equal(await b.runstate(), 'inmigrate');
  });

  it('refused on a source in finish-migrate (pre-switchover); the migration then completes whole', async () => {
    const a = await tab({ program: 'ab' });
    const b = await tab({ incoming: 'defer', startPaused: true });
    await abPasses(a, 1);
    const uri = `loopback:${loopbackName('reset-finish')}`;
    await b.ok('migrate-incoming', { uri });
    await a.setCaps({ 'pause-before-switchover': true });
    await a.ok('migrate', { uri });
    await a.waitStatus('pre-switchover');
    equal(await a.runstate(), 'finish-migrate');
    match(await a.err('system_reset'), /being migrated \(finish-migrate\)/);
    equal(await a.runstate(), 'finish-migrate', 'the stopped source stays stopped');
    await a.ok('migrate-continue', { state: 'pre-switchover' });
    equal((await a.waitStatus([...FINAL])).status, 'completed');
    await b.waitStatus([...FINAL]);
    equal(await b.ramHash(), await a.ramHash(), 'the destination holds exactly what the source stopped with');
  });
});

describe('a postcopy destination with pages still missing', () => {
  it('refuses system_reset, an onward migration and a snapshot until every page is in', async () => {
    const b = await tab({ incoming: 'defer', startPaused: true, name: 'dest' });
    await b.setCaps({ 'postcopy-ram': true });
    const uri = `loopback:${loopbackName('pc-missing')}`;
    await b.ok('migrate-incoming', { uri });
    const a = await tab({ program: 'ab', name: 'source' });
    await abPasses(a, 1);
    await a.setCaps({ 'postcopy-ram': true, 'return-path': true });
    // A slow background scan: pages stay missing for as long as the test needs.
    await a.setParams({ 'max-postcopy-bandwidth': 64 << 10 });
    await a.ok('migrate', { uri });
    await a.ok('migrate-start-postcopy');
    await b.waitStatus('postcopy-active');
    ok(b.machine.pageGate.missingCount() > 0, 'pages are missing at the destination');
    const c = await tab({ incoming: 'defer' });
    const onward = `loopback:${loopbackName('pc-onward')}`;
    await c.ok('migrate-incoming', { uri: onward });
    for (const u of [onward, `idb:${loopbackName('pc-snap')}`, 'file:pc.qemu']) {
      match(await b.err('migrate', { uri: u }), /still arriving from the source \(postcopy, \d+ pages missing\)/, `migrate ${u}`);
    }
    match(await b.err('system_reset'), /still arriving from the source/);
    equal((await a.ok('x-tabmig-ownership')).state, 'spent', 'the postcopy source is spent from RUN on');
    await a.setParams({ 'max-postcopy-bandwidth': 0 });
    equal((await b.waitStatus([...FINAL], 60000)).status, 'completed');
    equal((await a.waitStatus([...FINAL], 30000)).status, 'completed');
    match(await a.err('cont'), /migrated to another tab/, 'the source never runs it again');
    for (const u of [onward, `idb:${loopbackName('pc-snap')}`]) match(await a.err('migrate', { uri: u }), /migrated to another tab/, `source: migrate ${u}`);
    await b.ok('migrate', { uri: `idb:${loopbackName('pc-whole')}` });
    equal((await b.waitStatus([...FINAL], 30000)).status, 'completed', 'every page in: the destination is saved');
  });
});

describe('a destination in doubt asks its source', () => {
  /** A running a-b source held at `point`, its destination (under -S if asked) loading from it. */
  async function heldPair(point: 'ready-received' | 'commit-sent', dest: { startPaused?: boolean } = {}) {
    const a = await tab({ program: 'ab', name: 'source' });
    // Control messages may be held back (setControlDelay), the switchover's round trips too.
    await a.setParams({ 'downtime-limit': 20000 });
    const b = await tab({ incoming: 'defer', name: 'dest', ...dest });
    await abPasses(a, 1);
    const uri = `loopback:${loopbackName('doubt')}`;
    await b.ok('migrate-incoming', { uri });
    await a.ok('x-tabmig-hold', { point });
    await a.ok('migrate', { uri });
    await eventually(async () => (await a.ok('x-tabmig-held')).point === point, 30000, `held at ${point}`);
    return { a, b };
  }

  it('the source resumed: the kept copy is discarded, the source alone runs, and the tab can receive again', async () => {
    // The source's abort leaves 1.5 s late: the destination hears of the broken link first.
    onCleanup(() => void setControlDelay(0, 0));
    const { a, b } = await heldPair('ready-received');
    setControlDelay(1500, 1500);
    await a.ok('x-tabmig-drop-link');
    await a.ok('x-tabmig-release');
    equal((await a.waitStatus([...FINAL])).status, 'failed');
    setControlDelay(0, 0);
    const info = await b.waitStatus([...FINAL]);
    equal(info.status, 'failed');
    match(info['error-desc'], /source kept the guest.*discarded/);
    equal(await b.runstate(), 'inmigrate', 'back to waiting for a guest');
    equal((await b.ok('x-tabmig-ownership')).state, 'empty');
    equal(await a.runstate(), 'running');
    await advances(a, 'the source runs the guest on');
    await staysStopped(b, 'the discarded copy never runs');
    await b.ok('migrate-incoming', { uri: `loopback:${loopbackName('again')}` });
  });

  it("the source committed (its commit lost with the link): the kept copy is the guest and runs; the source stays stopped", async () => {
    // The commit leaves 1.5 s late; the link breaks meanwhile, so it never arrives.
    onCleanup(() => void setControlDelay(0, 0));
    setControlDelay(1500, 1500);
    const { a, b } = await heldPair('commit-sent');
    setControlDelay(0, 0);
    ok((await a.ok('x-tabmig-held')).committed, 'the source passed the point of no return');
    await a.ok('x-tabmig-drop-link');
    await a.ok('x-tabmig-release');
    equal((await b.waitStatus([...FINAL])).status, 'completed');
    equal(await b.runstate(), 'running');
    await advances(b, 'the kept copy runs');
    equal((await a.waitStatus([...FINAL])).status, 'failed');
    equal(await a.runstate(), 'postmigrate');
    match(await a.err('cont'), /migrated to another tab/);
  });

  it('the source committed, the destination under -S: the kept copy is the guest and waits for cont', async () => {
    onCleanup(() => void setControlDelay(0, 0));
    setControlDelay(1500, 1500);
    const { a, b } = await heldPair('commit-sent', { startPaused: true });
    setControlDelay(0, 0);
    await a.ok('x-tabmig-drop-link');
    await a.ok('x-tabmig-release');
    equal((await b.waitStatus([...FINAL])).status, 'completed');
    equal(await b.runstate(), 'paused');
    equal((await b.ok('x-tabmig-ownership')).state, 'owner');
    await b.ok('cont');
    await advances(b, 'cont runs it');
  });
});

describe('DoubtResolver', () => {
  it('asks until answered; past the window without a word it says unreachable once, and a late answer still settles it', async () => {
    const outcomes: string[] = [];
    let asked = 0;
    const r = new DoubtResolver({ ask: () => void asked++, sourceGone: null, intervalMs: 20, windowMs: 150 }, (o) => outcomes.push(o));
    r.start();
    await eventually(() => outcomes.includes('unreachable'), 5000, 'unreachable');
    ok(asked >= 3, `asked again and again (${asked})`);
    r.answer('committed');
    await eventually(() => outcomes.length === 2, 5000, 'the late answer');
    deepEqual(outcomes, ['unreachable', 'committed']);
    const n = asked;
    await new Promise((res) => setTimeout(res, 200));
    equal(asked, n, 'no question once settled');
  });

  it("a source page gone (its lock free) settles it as gone; 'unknown' (a page that never held it) too; the first word wins", async () => {
    const outcomes: string[] = [];
    let gone!: () => void;
    const r = new DoubtResolver({ ask: () => {}, sourceGone: () => new Promise<void>((res) => (gone = res)) }, (o) => outcomes.push(o));
    r.start();
    gone();
    await Promise.resolve();
    r.answer('resumed');
    await eventually(() => outcomes.length > 0, 5000, 'an outcome');
    await new Promise((res) => setTimeout(res, 50));
    deepEqual(outcomes, ['gone']);
    const unknown: string[] = [];
    const q = new DoubtResolver({ ask: () => q.answer('unknown'), sourceGone: null }, (o) => unknown.push(o));
    q.start();
    await eventually(() => unknown.length > 0, 5000, 'an outcome');
    deepEqual(unknown, ['gone']);
  });
});
