// Keepalive in postcopy: a peer that goes silent (no close) after the switch is detected within
// its bound, and postcopy PAUSES (postcopy-paused on both sides) rather than fails: the guest
// runs at the destination with part of its memory at the source, so the source must never
// resume it. A recovery (migrate-recover + migrate resume=true) then completes the migration
// with the a-b invariant intact. Silence is the control conversation held back for a minute
// (x-tabmig-delay-control: no keepalive, no echo) while the link stays up; the stream itself
// still flows unless the source is held. Two tabs in one page over loopback.

import { equal, notEqual, ok } from './helpers/assert.js';
import { abPasses, loopbackName, perTest, postcopyCompletes, recoverPostcopy, runsOnKeepingAbInvariant, type Tab } from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();
const TIMEOUT = 1000;
/** Room for a loaded machine on top of the bound (the bound is the timeout plus one check). */
const SLACK = 9000;
const SILENT = { 'min-ms': 60000, 'max-ms': 60000 };
const SPEAKING = { 'min-ms': 0, 'max-ms': 0 };

/**
 * A running ab source switched to postcopy with a slow background scan, to a destination under
 * -S (so no page fault ends postcopy early: it lasts as long as the test needs).
 */
async function inPostcopy(params: { src: Record<string, unknown>; dst: Record<string, unknown> }): Promise<{ a: Tab; b: Tab }> {
  const b = await tab({ incoming: 'defer', startPaused: true, name: 'dest' });
  await b.setCaps({ 'postcopy-ram': true });
  await b.setParams(params.dst);
  const uri = `loopback:${loopbackName('pc-keepalive')}`;
  await b.ok('migrate-incoming', { uri });
  const a = await tab({ program: 'ab', name: 'source' });
  // Whatever a test leaves delayed, the next one starts with a speaking control conversation.
  onCleanup(() => void a.qmp('x-tabmig-delay-control', SPEAKING));
  await abPasses(a, 1);
  await a.setCaps({ 'postcopy-ram': true, 'return-path': true });
  await a.setParams({ 'max-postcopy-bandwidth': 64 << 10, ...params.src });
  await a.ok('migrate', { uri });
  await a.ok('migrate-start-postcopy');
  await a.waitStatus('postcopy-active');
  await b.waitStatus('postcopy-active');
  return { a, b };
}

/** Both sides reach postcopy-paused; the source's guest never runs meanwhile. Returns ms from t0. */
async function bothPause(a: Tab, b: Tab, t0: number): Promise<number> {
  let detect = -1;
  const deadline = t0 + TIMEOUT + SLACK;
  while (performance.now() < deadline) {
    notEqual(await a.runstate(), 'running', 'the source never resumes the guest in postcopy');
    const [sa, sb] = [(await a.queryMigrate()).status, (await b.queryMigrate()).status];
    ok(!['failed', 'completed', 'cancelled'].includes(sa), `source ${sa}: postcopy pauses, it does not end`);
    ok(!['failed', 'completed', 'cancelled'].includes(sb), `destination ${sb}: postcopy pauses, it does not end`);
    if (detect < 0 && (sa === 'postcopy-paused' || sb === 'postcopy-paused')) detect = performance.now() - t0;
    if (sa === 'postcopy-paused' && sb === 'postcopy-paused') return detect;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not both postcopy-paused within ${TIMEOUT + SLACK} ms: source ${(await a.queryMigrate()).status}, destination ${(await b.queryMigrate()).status}`);
}

/** Lets postcopy finish at full speed; then the guest is the destination's, whole. */
async function completes(a: Tab, b: Tab): Promise<void> {
  await postcopyCompletes(a, b);
  await runsOnKeepingAbInvariant(b);
}

describe('keepalive in postcopy: silence pauses, it does not fail', () => {
  it('a destination silent after the switch: the source pauses within x-outgoing-idle-timeout, again after a recovery, and never resumes the guest', async () => {
    const { a, b } = await inPostcopy({ src: { 'x-outgoing-idle-timeout': TIMEOUT }, dst: {} });
    for (const round of ['after the switch', 'after a recovery']) {
      const t0 = performance.now();
      await a.ok('x-tabmig-delay-control', SILENT);
      const detect = await bothPause(a, b, t0);
      // Silence counts from the last word heard, up to a keepalive interval (TIMEOUT/3) before SILENT.
      ok(detect >= TIMEOUT / 2, `${round}: paused after ${Math.round(detect)} ms, too soon for the timeout`);
      ok(detect < TIMEOUT + SLACK, `${round}: paused within the bound (${Math.round(detect)} ms)`);
      await a.ok('x-tabmig-delay-control', SPEAKING);
      await recoverPostcopy(a, b);
      equal((await a.queryMigrate()).status, 'postcopy-active', `${round}: recovered, still in postcopy (the scan is slow)`);
    }
    await completes(a, b);
  });

  it('a source silent during the recovery (held before RECV_BITMAP, no keepalive): the destination pauses within x-incoming-idle-timeout', async () => {
    // The source's own watch is off, so only the destination's can notice.
    const { a, b } = await inPostcopy({ src: { 'x-outgoing-idle-timeout': 0 }, dst: { 'x-incoming-idle-timeout': TIMEOUT } });
    await a.ok('migrate-pause');
    await bothPause(a, b, performance.now());
    await a.ok('x-tabmig-hold', { point: 'postcopy-recover' });
    await a.ok('x-tabmig-delay-control', SILENT);
    const uri = `loopback:${loopbackName('pc-recover-silent')}`;
    await b.ok('migrate-recover', { uri });
    await a.ok('migrate', { uri, resume: true });
    await b.waitStatus('postcopy-recover', 30000);
    const t0 = performance.now();
    const paused = await b.waitStatus(['postcopy-paused', 'failed', 'completed'], TIMEOUT + SLACK);
    const detect = performance.now() - t0;
    equal(paused.status, 'postcopy-paused', 'the destination pauses: it holds the running guest');
    ok(detect < TIMEOUT + SLACK, `paused within the bound (${Math.round(detect)} ms)`);
    notEqual(await a.runstate(), 'running');
    // The source, let go, finds the recovery's link hung up: it pauses too; a second recovery works.
    await a.ok('x-tabmig-delay-control', SPEAKING);
    await a.ok('x-tabmig-release');
    await bothPause(a, b, performance.now());
    await recoverPostcopy(a, b);
    await completes(a, b);
  });
});
