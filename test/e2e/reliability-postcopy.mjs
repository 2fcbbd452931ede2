// Postcopy's rows of the fault soak's phase table (reliability.mjs), with their own settle and
// judge: after RUN the destination runs the guest while part of its memory is still at the
// source, so postcopy's invariant is not precopy's.
//
//  - A fault must never resume the source's guest (QEMU never does after RUN). A broken or
//    silent link pauses both sides (postcopy-paused); the harness then recovers as an operator
//    would (QEMU's migrate-recover on the destination, migrate resume=true on the source) and
//    the migration must reach completed with the a-b invariant intact at the destination.
//  - A tab closed in postcopy takes the guest with it, as in QEMU ("closing or reloading either
//    loses it": README, Postcopy; both tabs ask before they close): an expected loss, counted
//    apart from the violations, provided the other side stays paused and its guest is not run.
//
// Time to detect: from the fault to the first open side whose migration paused or ended.
import { sleep } from './harness.mjs';
import { FINAL, abCheck, runs, runstate, thaw, waitMigrate } from './reliability.mjs';

const PAUSED = 'postcopy-paused';
/** The background scan's speed while a fault is due: postcopy lasts seconds, not a blink. */
const SLOW_SCAN = 32 << 10;
const PRECOPY_CAP = 2 << 20;
const FAST_AFTER_MS = 8000;

/** Precopy under way, then migrate-start-postcopy; resolves once the destination runs the guest. */
async function switchToPostcopy(ctx) {
  await waitMigrate(ctx.a, (m) => m.status === 'active' || FINAL.includes(m.status), 60000);
  await sleep(Math.floor(ctx.rnd() * 300));
  await ctx.a.ret('migrate-start-postcopy');
  const m = await waitMigrate(ctx.a, (m) => m.status !== 'active', 30000);
  if (m.status !== 'postcopy-active') throw new Error(`postcopy did not start: ${m.status} ${m['error-desc'] ?? ''}`);
  await ctx.b.until('query-status', (v) => v.status === 'running', 30000);
}

async function bothPaused(ctx, ms = 30000) {
  await waitMigrate(ctx.a, (m) => m.status === PAUSED, ms);
  await waitMigrate(ctx.b, (m) => m.status === PAUSED, ms);
}

/** Precopy kept from converging (the a-b guest's 2 MiB cannot go in the downtime at this speed), the scan after the switch slow. */
async function slowScan(ctx) {
  await ctx.a.ret('migrate-set-parameters', { 'max-bandwidth': PRECOPY_CAP, 'max-postcopy-bandwidth': SLOW_SCAN });
}

const common = { postcopy: true, prepare: slowScan, settle: settlePostcopy, judge: judgePostcopy };

export const POSTCOPY_PHASES = [
  {
    // The destination runs the guest and faults its missing pages in; the scan goes on slowly.
    ...common,
    name: 'postcopy-active',
    async reach(ctx) {
      await switchToPostcopy(ctx);
      await sleep(Math.floor(ctx.rnd() * 1500));
      const m = await ctx.a.ret('query-migrate');
      return { status: m.status, requests: m.ram?.['postcopy-requests'] ?? 0 };
    },
  },
  {
    // release-ram: the source gives pages back as the destination confirms them; a fault must
    // not lose one (the recovery resends what did not arrive, from RAM still held).
    ...common,
    name: 'postcopy-release-ram',
    releaseRam: true,
    async reach(ctx) {
      await switchToPostcopy(ctx);
      await sleep(Math.floor(ctx.rnd() * 1500));
      const m = await ctx.a.ret('query-migrate');
      return { status: m.status, released: (await ctx.a.ret('x-tabmig-postcopy-info'))['page-states'].released };
    },
  },
  {
    // The destination hashes its RAM: every missing page is asked for at once (more than the
    // fault ring had slots); the fault lands while they come.
    ...common,
    name: 'postcopy-hash',
    // Its faults often land as postcopy completes, where an open defect remains (RELIABILITY.md,
    // Open): the long soak finds it; the quick test in `npm test` leaves this phase out.
    soakOnly: true,
    async reach(ctx) {
      await switchToPostcopy(ctx);
      const missing = (await ctx.b.ret('x-tabmig-postcopy-info'))['missing-pages'];
      // Not awaited: the fault comes while the pages are on their way (a closed tab rejects it).
      ctx.b.qmp({ execute: 'x-tabmig-ram-hash' }).catch(() => {});
      await sleep(Math.floor(ctx.rnd() * 500));
      return { status: (await ctx.a.ret('query-migrate')).status, missing };
    },
  },
  {
    // Both sides paused (migrate-pause), no recovery asked for yet.
    ...common,
    name: 'postcopy-paused',
    alreadyPaused: true,
    async reach(ctx) {
      await switchToPostcopy(ctx);
      await ctx.a.ret('migrate-pause');
      await bothPaused(ctx);
      return { status: PAUSED };
    },
  },
  {
    // A recovery under way: its new link is up, the source held before RECV_BITMAP.
    ...common,
    name: 'postcopy-recover',
    async reach(ctx) {
      await switchToPostcopy(ctx);
      await ctx.a.ret('migrate-pause');
      await bothPaused(ctx);
      await ctx.a.ret('x-tabmig-hold', { point: 'postcopy-recover' });
      await ctx.b.ret('migrate-recover', { uri: 'webrtc:' });
      await ctx.a.ret('migrate', { uri: 'webrtc:' + ctx.id, resume: true });
      await ctx.a.until('x-tabmig-held', (v) => v.point === 'postcopy-recover', 60000);
      return { status: (await ctx.a.ret('query-migrate')).status };
    },
    async after(ctx) {
      if (!ctx.a.closed) await ctx.a.qmp({ execute: 'x-tabmig-release' }).catch(() => {});
    },
  },
];

/** Notes a source guest that runs (it never may after RUN). */
async function watchSource(ctx, out) {
  if (!ctx.a.closed && (await runstate(ctx.a)) === 'running') out.sourceRan = true;
}

/**
 * Polls the open tabs until each one's migration paused or ended (postcopy does not end on a
 * fault: it pauses). A frozen destination is left alone until the source has paused.
 */
export async function settlePostcopy(ctx, t0, limitMs = 60000) {
  const out = { src: null, dst: null, srcAt: null, dstAt: null, sourceRan: false };
  const over = (v) => v.status === PAUSED || FINAL.includes(v.status);
  let fast = false;
  for (;;) {
    await watchSource(ctx, out);
    // The slow scan was for the fault to land in postcopy; one that changed nothing need not
    // wait tens of seconds for the rest. Past every detection bound (2 s + a 4 s freeze): full speed.
    if (!fast && !ctx.a.closed && !out.src && Date.now() - t0 > FAST_AFTER_MS) {
      fast = true;
      await ctx.a.qmp({ execute: 'migrate-set-parameters', arguments: { 'max-postcopy-bandwidth': 0 } });
    }
    if (!ctx.a.closed && !out.src) {
      const v = await ctx.a.ret('query-migrate');
      if (over(v)) {
        out.src = v;
        out.srcAt = Date.now() - t0;
        await thaw(ctx);
      }
    }
    if (!ctx.b.closed && !ctx.frozen && !out.dst) {
      const v = await ctx.b.ret('query-migrate');
      if (over(v)) {
        out.dst = v;
        out.dstAt = Date.now() - t0;
      }
    }
    if ((ctx.a.closed || out.src) && (ctx.b.closed || out.dst)) return out;
    if (Date.now() - t0 > limitMs) {
      await thaw(ctx);
      throw new Error(`postcopy not paused nor ended after ${limitMs} ms: source ${out.src?.status ?? (ctx.a.closed ? 'closed' : (await ctx.a.ret('query-migrate')).status)} destination ${out.dst?.status ?? (ctx.b.closed ? 'closed' : (await ctx.b.ret('query-migrate')).status)}`);
    }
    await sleep(40);
  }
}

/**
 * Both sides paused: migrate-recover + migrate resume=true, the scan at full speed, until the
 * source completes; a recovery that pauses again is tried again (three times in all). Returns
 * how many it took (0: none worked) and how long.
 */
async function recoverPostcopy(ctx, out) {
  const t0 = Date.now();
  for (let attempt = 1; attempt <= 3; attempt++) {
    await bothPaused(ctx);
    // Refused when a recovery is already triggered there (the fault hit one under way): fine.
    await ctx.b.qmp({ execute: 'migrate-recover', arguments: { uri: 'webrtc:' } });
    await ctx.a.ret('migrate', { uri: 'webrtc:' + ctx.id, resume: true });
    await ctx.a.ret('migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
    let left = false;
    const start = Date.now();
    for (;;) {
      await watchSource(ctx, out);
      const m = await ctx.a.ret('query-migrate');
      if (m.status === 'completed') {
        await waitMigrate(ctx.b, (v) => v.status === 'completed' || FINAL.includes(v.status), 30000);
        return { recoveries: attempt, recoverMs: Date.now() - t0 };
      }
      if (FINAL.includes(m.status)) return { recoveries: 0, recoverMs: Date.now() - t0, why: `source ${m.status}: ${m['error-desc'] ?? ''}` };
      if (m.status !== PAUSED) left = true;
      else if (left || Date.now() - start > 30000) break; // paused again, or the new link never came
      if (Date.now() - start > 120000) return { recoveries: 0, recoverMs: Date.now() - t0, why: `source stuck in ${m.status}` };
      await sleep(100);
    }
  }
  return { recoveries: 0, recoverMs: Date.now() - t0, why: 'three recoveries did not complete' };
}

/** A tab left paused in postcopy for good: closed (a reload would ask first), never reused. */
async function discard(tab) {
  tab.closed = true;
  await tab.page.close().catch(() => {});
}

/**
 * The guest's fate after a postcopy fault (recovering first when both sides paused). Returns
 * { verdict, holder, outcome, detail, expectedLoss, recoveries, recoverMs }.
 */
export async function judgePostcopy(ctx, s) {
  const out = { sourceRan: s.sourceRan };
  let rec = { recoveries: 0, recoverMs: null };
  const bothOpen = !ctx.a.closed && !ctx.b.closed;
  if (bothOpen && s.src?.status === PAUSED && s.dst?.status === PAUSED) rec = await recoverPostcopy(ctx, out);
  const src = ctx.a.closed ? null : await ctx.a.ret('query-migrate');
  const dst = ctx.b.closed ? null : await ctx.b.ret('query-migrate');
  const srcState = ctx.a.closed ? 'closed' : await runstate(ctx.a);
  const dstState = ctx.b.closed ? 'closed' : await runstate(ctx.b);
  const detail = { srcState, dstState, src: src?.status, dst: dst?.status, firstSrc: s.src?.status, firstDst: s.dst?.status, recoveryProblem: rec.why };
  const base = { detail, recoveries: rec.recoveries, recoverMs: rec.recoverMs };
  if (out.sourceRan || srcState === 'running') return { ...base, verdict: 'SOURCE-RESUMED', holder: null };
  if (dst?.status === 'completed') {
    if (!(await runs(ctx.b))) return { ...base, verdict: 'STUCK-GUEST', holder: null };
    // The destination completed: so must the source (postmigrate), not wait paused for ever.
    if (srcState !== 'closed' && (srcState !== 'postmigrate' || src?.status !== 'completed')) return { ...base, verdict: 'SOURCE-NOT-COMPLETED', holder: null };
    await ctx.b.ret('stop');
    const bad = await abCheck(ctx.b);
    await ctx.b.ret('cont');
    if (bad) return { ...base, detail: { ...detail, ab: bad }, verdict: 'AB-BROKEN', holder: null };
    const outcome = rec.recoveries ? 'postcopy paused, recovered, completed; a-b intact' : 'postcopy completed (the fault changed nothing or came after); a-b intact';
    return { ...base, verdict: 'ok', holder: ctx.b, outcome };
  }
  if (ctx.b.closed && src?.status === 'completed') {
    return { ...base, verdict: 'ok', holder: null, outcome: 'committed, then the destination tab (holding the guest) was closed' };
  }
  if (ctx.b.closed && src?.status === PAUSED) {
    await discard(ctx.a);
    return { ...base, verdict: 'ok', expectedLoss: true, holder: null, outcome: 'expected loss (QEMU): the destination tab, running the guest, closed in postcopy; the source stays paused, its guest stopped' };
  }
  if (ctx.a.closed && dst?.status === PAUSED) {
    await discard(ctx.b);
    return { ...base, verdict: 'ok', expectedLoss: true, holder: null, outcome: 'expected loss (QEMU): the source tab, holding pages not yet sent, closed in postcopy; the destination stays paused' };
  }
  // A violation: tabs left paused in postcopy cannot be reloaded for the next fault.
  for (const t of [ctx.a, ctx.b]) if (!t.closed) await discard(t);
  return { ...base, verdict: rec.why ? 'NOT-RECOVERED' : 'LOST', holder: null };
}
