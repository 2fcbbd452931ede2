// Postcopy under faults, two tabs in one page over loopback: release-ram across a pause and a
// recovery (no page is given back before the destination holds it), a RAM hash asked of a
// destination missing more pages than its fault ring has slots, and a package the destination
// refuses (the source runs its guest again: the destination's never ran). The same faults between
// real tabs are in test/e2e/postcopy.test.mjs.

import { DeviceName } from '../src/guest/device-state.js';
import { PAGE_SIZE } from '../src/guest/memory-map.js';
import { PageStatus } from '../src/migration/page-state.js';
import { equal, eventually, ok } from './helpers/assert.js';
import { abCheck, abPasses, advances, loopbackName, MiB, perTest, postcopyCompletes, recoverPostcopy, runsOnKeepingAbInvariant, type Tab } from './fixtures/migration-harness.js';

const { tab } = perTest();
const SLOW_SCAN = 64 << 10;

/** A running ab source in postcopy to a destination under -S (no fault ends postcopy early). */
async function inPostcopy(opts: { ramSize?: number; caps?: Record<string, boolean>; program?: string; args?: string } = {}): Promise<{ a: Tab; b: Tab }> {
  const ramSize = opts.ramSize ?? 16 * MiB;
  const b = await tab({ incoming: 'defer', startPaused: true, name: 'dest', ramSize });
  await b.setCaps({ 'postcopy-ram': true });
  const uri = `loopback:${loopbackName('pc-faults')}`;
  await b.ok('migrate-incoming', { uri });
  const a = await tab({ program: opts.program ?? 'ab', args: opts.args, name: 'source', ramSize });
  if ((opts.program ?? 'ab') === 'ab') await abPasses(a, 1);
  await a.setCaps({ 'postcopy-ram': true, 'return-path': true, ...opts.caps });
  await a.setParams({ 'max-postcopy-bandwidth': SLOW_SCAN });
  await a.ok('migrate', { uri });
  await a.ok('migrate-start-postcopy');
  await a.waitStatus('postcopy-active');
  await b.waitStatus('postcopy-active');
  return { a, b };
}

describe('postcopy faults: release-ram across a pause', () => {
  it('gives a page back only once the destination holds it: a pause and a recovery lose no page', async () => {
    const { a, b } = await inPostcopy({ caps: { 'release-ram': true } });
    // The background scan has handed pages to the writer (some still in its buffers) when the link goes.
    const total = (await a.queryMigrate()).ram.remaining;
    const pageState = a.migration.pageState;
    for (let i = 0; i < 100 && (await a.queryMigrate()).ram.remaining > total - 64 * PAGE_SIZE; i++) await new Promise((r) => setTimeout(r, 50));
    // Pages the destination said it holds are given back while postcopy runs.
    await eventually(() => pageState.counts().released! > 0, 10000, 'a page released during postcopy');
    await a.ok('migrate-pause');
    await a.waitStatus('postcopy-paused');
    await b.waitStatus('postcopy-paused');
    // Nothing the destination does not hold is released (zeroed) at the source.
    const gate = b.machine.pageGate;
    for (let p = 0; p < gate.pages; p++) {
      if (pageState.get(p) === PageStatus.RELEASED) ok(gate.isPresent(p), `page ${p} released at the source but missing at the destination`);
    }
    await recoverPostcopy(a, b);
    await postcopyCompletes(a, b);
    equal(abCheck(b.machine.ramBytes, b.machine.ramSize), null, 'a-b invariant at the destination');
    let released = 0;
    for (let p = 0; p < gate.pages; p++) if (pageState.get(p) === PageStatus.RELEASED) released++;
    ok(released > 0, 'release-ram gave pages back');
    await runsOnKeepingAbInvariant(b);
  });
});

describe('postcopy faults: a RAM hash on a destination missing most of its pages', () => {
  it('asks for more pages than the fault ring has slots, is answered, and the migration completes', async () => {
    const ramSize = 64 * MiB;
    const b = await tab({ incoming: 'defer', startPaused: true, name: 'dest', ramSize });
    await b.setCaps({ 'postcopy-ram': true });
    const uri = `loopback:${loopbackName('pc-hash')}`;
    await b.ok('migrate-incoming', { uri });
    const a = await tab({ program: 'ab', args: 'size=max', name: 'source', ramSize });
    await abPasses(a, 1);
    await a.setCaps({ 'postcopy-ram': true, 'return-path': true });
    // Precopy barely starts before the switch; after it the scan is slow: nearly every page is missing.
    await a.setParams({ 'max-bandwidth': 256 << 10, 'max-postcopy-bandwidth': SLOW_SCAN });
    await a.ok('migrate', { uri });
    await a.ok('migrate-start-postcopy');
    await a.waitStatus('postcopy-active');
    await b.waitStatus('postcopy-active');
    // RUN has been handled: the guest (paused under -S) is the destination's, pages still missing.
    await eventually(() => b.machine.pageGate.active, 30000, 'POSTCOPY_RUN at the destination');
    const missing = b.machine.pageGate.missingCount();
    ok(missing >= 12 * 1024, `most pages are missing at the destination (${missing})`);
    const hash = await b.ok('x-tabmig-ram-hash');
    // Every page was brought in to hash it; the source stopped at the switch, so its RAM is the guest's.
    equal(hash.hash, await a.ramHash(), 'the hash is of the guest as the source left it');
    await postcopyCompletes(a, b);
    equal(await b.ramHash(), hash.hash, 'nothing changed since (the destination is under -S)');
  });
});

describe('postcopy faults: a package the destination refuses', () => {
  it("the refusal reaches the source, which runs its guest again; the destination's never ran", async () => {
    const b = await tab({ incoming: 'defer', name: 'dest' });
    await b.setCaps({ 'postcopy-ram': true });
    const uri = `loopback:${loopbackName('pc-refused')}`;
    await b.ok('migrate-incoming', { uri });
    const a = await tab({ program: 'ab', name: 'source' });
    await abPasses(a, 1);
    // A display whose frame lies outside RAM: the destination's device check refuses it, and in
    // postcopy the device state comes only in the package.
    a.machine.deviceState.set(DeviceName.DISPLAY, 'width', 64);
    a.machine.deviceState.set(DeviceName.DISPLAY, 'height', 64);
    a.machine.deviceState.set(DeviceName.DISPLAY, 'enable', 1);
    await a.setCaps({ 'postcopy-ram': true, 'return-path': true, 'release-ram': true });
    await a.setParams({ 'max-bandwidth': 64 << 10, 'max-postcopy-bandwidth': SLOW_SCAN });
    await a.ok('migrate', { uri });
    await a.ok('migrate-start-postcopy');
    const failed = await a.waitStatus(['failed', 'completed'], 30000);
    equal(failed.status, 'failed', 'the source hears of the refusal');
    ok(/tabmig-display/.test(failed['error-desc']), `the destination's reason: ${failed['error-desc']}`);
    equal(await a.runstate(), 'running', 'the source runs its guest again');
    await advances(a, 'the guest to run at the source');
    equal((await b.waitStatus(['failed', 'completed'], 30000)).status, 'failed');
    equal(await b.runstate(), 'inmigrate', "the destination's guest never ran");
    ok(!b.machine.pageGate.active, 'no reader of the destination waits on a page');
    await a.ok('stop');
    equal(abCheck(a.machine.ramBytes, a.machine.ramSize), null, "the source's RAM is whole (release-ram gave nothing back)");
  });
});
