// The reliability campaign's two-tab machinery, shared by `npm run soak`, `npm run hops` and the
// e2e suite's short runs (reliability.test.mjs): real tabs over WebRTC, driven through QMP.
//
//  PHASES   where a fault lands: each entry arms what it needs before `migrate` and then waits
//           until the migration is there (a random byte offset of a round, pre-switchover, each
//           hold point of the commit handshake, …), then postcopy's (postcopy-active, paused,
//           recover: reliability-postcopy.mjs, with their own settle and judge).
//  FAULTS   what happens there: the link dropped by either side, either tab closed, the return
//           path hung up, the destination or the source frozen (no close: only keepalives can
//           tell; a destination in doubt must wait for a frozen source's answer), control
//           messages delayed and reordered, migrate_cancel.
//  judge()  after each: exactly one copy of the guest runs, or one complete paused copy exists
//           (its source unreachable; `cont` runs it); the source is never left stopped unless
//           the destination held the guest (a commit happened), and a source that committed is
//           spent: `migrate` with a bad URI, `cont` and a snapshot are all refused.
import { sleep } from './harness.mjs';
import { POSTCOPY_PHASES } from './reliability-postcopy.mjs';

export const RAM_BASE = 0x8000_0000;
export const AB_START = RAM_BASE + 0x10_0000;
export const AB_SIZE = 2 << 20;
export const FINAL = ['completed', 'failed', 'cancelled'];

/** QEMU migration-test's a-b check over HMP xp: null when it holds, else what is wrong. */
export async function abCheck(tab, start = AB_START, size = AB_SIZE) {
  const bytes = await tab.page.evaluate(
    async ({ start, size }) => {
      const out = [];
      for (let a = start; a < start + size; a += 4096) {
        const r = await window.qmp({ execute: 'human-monitor-command', arguments: { 'command-line': `xp /1xb 0x${a.toString(16)}` } });
        const m = /:\s*0x([0-9a-f]+)/i.exec(r.return ?? '');
        out.push(m ? parseInt(m[1], 16) : -1);
      }
      return out;
    },
    { start, size },
  );
  if (bytes.includes(-1)) return 'xp did not answer with a byte';
  let drops = 0;
  for (let i = 1; i < bytes.length; i++) {
    if (bytes[i] === bytes[i - 1]) continue;
    if (((bytes[i - 1] - bytes[i]) & 0xff) === 1 && ++drops === 1) continue;
    return `page ${i} (0x${(start + i * 4096).toString(16)}) holds ${bytes[i]} after ${bytes[i - 1]}: a lost or stale page`;
  }
  return null;
}

export async function runstate(tab) {
  return (await tab.ret('query-status')).status;
}

/** Instructions retired grow: the guest really runs in that tab. */
export async function runs(tab, ms = 250) {
  const a = (await tab.ret('x-tabmig-guest-info')).instructions;
  await sleep(ms);
  return (await tab.ret('x-tabmig-guest-info')).instructions > a;
}

export function pct(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export const caps = (list) => ({ capabilities: Object.entries(list).map(([capability, state]) => ({ capability, state })) });

export async function waitMigrate(tab, pred, ms) {
  return tab.until('query-migrate', pred, ms);
}

/** A hold point of the commit handshake as a phase: armed before migrate, reached when held. */
function holdPhase(point, side) {
  return {
    name: point,
    async prepare(ctx) {
      await (side === 'source' ? ctx.a : ctx.b).ret('x-tabmig-hold', { point });
    },
    async reach(ctx) {
      // Held there, or the migration ended before it got there (then the fault lands after it).
      const tab = side === 'source' ? ctx.a : ctx.b;
      const t0 = Date.now();
      for (;;) {
        if ((await tab.ret('x-tabmig-held')).point === point) return { point };
        const m = await ctx.a.ret('query-migrate');
        if (FINAL.includes(m.status)) return { point, missed: `${m.status}: ${m['error-desc'] ?? ''}` };
        if (Date.now() - t0 > 60000) throw new Error(`never held at ${point} (source ${m.status})`);
        await sleep(30);
      }
    },
    async after(ctx) {
      for (const t of [ctx.a, ctx.b]) if (t && !t.closed) await t.qmp({ execute: 'x-tabmig-release' }).catch(() => {});
    },
  };
}

/** Where faults land. Each: prepare (before migrate), reach (resolves once there: info), after (let it go on). */
export const PHASES = [
  {
    name: 'setup',
    async reach() {
      return {};
    },
  },
  {
    // A round of the precopy: a random byte offset of the stream, the bandwidth capped so the
    // a-b guest dirties faster than it is sent and the rounds go on.
    name: 'round',
    async prepare(ctx) {
      await ctx.a.ret('migrate-set-parameters', { 'max-bandwidth': 6 << 20 });
      ctx.offset = Math.floor(ctx.rnd() * 12e6);
    },
    async reach(ctx) {
      const v = await waitMigrate(ctx.a, (m) => (m.ram?.transferred ?? 0) >= ctx.offset || m.status !== 'active' && m.status !== 'setup', 60000);
      return { offset: v.ram?.transferred ?? 0, round: v.ram?.['dirty-sync-count'] ?? 0, status: v.status };
    },
    async after(ctx) {
      if (!ctx.a.closed) await ctx.a.qmp({ execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 0 } }).catch(() => {});
    },
  },
  {
    name: 'pre-switchover',
    async prepare(ctx) {
      await ctx.a.ret('migrate-set-capabilities', caps({ 'pause-before-switchover': true }));
    },
    async reach(ctx) {
      await waitMigrate(ctx.a, (m) => m.status === 'pre-switchover' || FINAL.includes(m.status), 60000);
      return {};
    },
    async after(ctx) {
      if (!ctx.a.closed) await ctx.a.qmp({ execute: 'migrate-continue', arguments: { state: 'pre-switchover' } }).catch(() => {});
    },
  },
  {
    // The device phase: stop-and-copy under way (pre-switchover left a moment ago).
    name: 'device',
    async prepare(ctx) {
      await ctx.a.ret('migrate-set-capabilities', caps({ 'pause-before-switchover': true }));
    },
    async reach(ctx) {
      await waitMigrate(ctx.a, (m) => m.status === 'pre-switchover' || FINAL.includes(m.status), 60000);
      await ctx.a.qmp({ execute: 'migrate-continue', arguments: { state: 'pre-switchover' } });
      await sleep(Math.floor(ctx.rnd() * 30));
      return { status: (await ctx.a.ret('query-migrate')).status };
    },
  },
  holdPhase('all-sent', 'source'),
  holdPhase('loaded', 'destination'),
  holdPhase('ready-received', 'source'),
  holdPhase('commit-sent', 'source'),
  holdPhase('commit-received', 'destination'),
  // Postcopy's (reliability-postcopy.mjs): while the destination runs the guest and faults its
  // pages in, while both sides are paused, and during a recovery's handshake. Each brings its
  // own settle and judge (a fault pauses postcopy; the harness recovers).
  ...POSTCOPY_PHASES,
];

/** Keeps a tab's main thread busy for `ms` (its workers go on); resolves when it is free again. */
function freeze(tab, ms) {
  return tab.page
    .evaluate((ms) => {
      const end = Date.now() + ms;
      while (Date.now() < end);
    }, ms)
    .catch(() => {});
}

/**
 * What happens at the phase. `needs` filters impossible pairs (return-path faults need one);
 * `precopyOnly` keeps a fault out of postcopy's phases.
 */
export const FAULTS = [
  { name: 'drop-link-source', inject: (ctx) => ctx.a.ret('x-tabmig-drop-link') },
  { name: 'drop-link-destination', inject: (ctx) => ctx.b.ret('x-tabmig-drop-link') },
  {
    name: 'close-source-tab',
    inject: async (ctx) => {
      ctx.a.closed = true;
      await ctx.a.page.close();
    },
  },
  {
    name: 'close-destination-tab',
    inject: async (ctx) => {
      ctx.b.closed = true;
      await ctx.b.page.close();
    },
  },
  { name: 'close-return-path', needs: (ctx) => ctx.returnPath, inject: (ctx) => ctx.b.ret('x-tabmig-close-return-path') },
  {
    // The destination tab hangs: its main thread busy for 4 s (a frozen tab; its workers go
    // on). No close at all, so only keepalives can tell: the source's x-outgoing-idle-timeout
    // (2 s here). (CDP's Page.setWebLifecycleState 'frozen' does nothing to a visible headless
    // tab, and a debugger pause took the whole browser down.)
    name: 'freeze-destination',
    inject: async (ctx) => {
      ctx.frozen = true;
      ctx.frozenUntil = freeze(ctx.b, 4000);
    },
  },
  {
    // The source tab hangs (main thread busy 4 s; its workers go on): its keepalives stop, so a
    // destination past 'ready' falls in doubt and asks a source that answers only once it wakes.
    // Precopy only: in postcopy the source's workers keep the stream going and nothing changes.
    name: 'freeze-source',
    precopyOnly: true,
    inject: async (ctx) => {
      ctx.sourceFrozenUntil = freeze(ctx.a, 4000);
    },
  },
  {
    // Every control message (handshake, keepalives, echoes) of both tabs late by 0-0.8 s, each
    // its own delay: they arrive late and out of order. Armed at the phase, for the rest of it.
    name: 'delay-reorder-control',
    inject: async (ctx) => {
      for (const t of [ctx.a, ctx.b]) await t.ret('x-tabmig-delay-control', { 'min-ms': 0, 'max-ms': 800 });
    },
  },
  { name: 'migrate-cancel', inject: (ctx) => ctx.a.ret('migrate_cancel') },
];

/** Unfreezes a frozen destination (so it can be judged and reused), and waits out a frozen source. */
export async function thaw(ctx) {
  await ctx.sourceFrozenUntil;
  if (!ctx.frozen) return;
  ctx.frozen = false;
  await ctx.frozenUntil;
}

/**
 * A source whose guest left (it committed) is spent: `migrate` with a bad URI, then `cont`, then
 * a snapshot are each refused, and its stale copy stays stopped. Null when so, else what went wrong.
 */
export async function spentRefuses(tab) {
  const tries = [
    { execute: 'migrate', arguments: { uri: 'foo:' } },
    { execute: 'cont' },
    { execute: 'migrate', arguments: { uri: 'idb:soak-spent' } },
  ];
  for (const cmd of tries) {
    const reply = await tab.qmp(cmd);
    if (!reply.error) return `${JSON.stringify(cmd)} was accepted`;
  }
  const state = await runstate(tab);
  if (state !== 'postmigrate') return `the spent source is ${state}`;
  return null;
}

/** Polls the open tabs until each one's migration is over: times from `t0` (ms) to each end. */
export async function settle(ctx, t0, limitMs = 90000) {
  const out = { src: null, dst: null, srcAt: null, dstAt: null };
  for (;;) {
    const now = Date.now();
    if (!ctx.a.closed && !out.src) {
      const v = await ctx.a.ret('query-migrate');
      if (FINAL.includes(v.status)) {
        out.src = v;
        out.srcAt = Date.now() - t0;
        // The source decided; a destination frozen meanwhile may now wake and decide too.
        await thaw(ctx);
      }
    }
    if (!ctx.b.closed && !ctx.frozen && !out.dst) {
      const v = await ctx.b.ret('query-migrate');
      if (FINAL.includes(v.status) && ((await runstate(ctx.b)) !== 'inmigrate' || v.status !== 'completed')) {
        out.dst = v;
        out.dstAt = Date.now() - t0;
      } else if (v.status === 'setup' && (ctx.a.closed || out.src) && now - t0 > 3000) {
        // No connection was ever accepted (the source went before the handshake finished):
        // the destination rightly goes on listening for a source, as QEMU's -incoming does.
        out.dst = { ...v, waiting: true };
        out.dstAt = null;
      }
    }
    if ((ctx.a.closed || out.src) && (ctx.b.closed || out.dst)) return out;
    if (now - t0 > limitMs) {
      await thaw(ctx);
      throw new Error(`not settled after ${limitMs} ms: source ${JSON.stringify(out.src?.status ?? (ctx.a.closed ? 'closed' : '?'))} destination ${JSON.stringify(out.dst?.status ?? (ctx.b.closed ? 'closed' : '?'))}`);
    }
    await sleep(40);
  }
}

/**
 * The guest's fate after a fault. Returns { verdict, holder, detail }: verdict 'ok' or a
 * violation ('DOUBLED', 'LOST', 'SOURCE-STOPPED'); holder the tab that has the guest now (running,
 * or paused and then `cont`ed), or null when the fault closed the only tab that had it.
 */
export async function judge(ctx, s) {
  const srcState = ctx.a.closed ? 'closed' : await runstate(ctx.a);
  const dstState = ctx.b.closed ? 'closed' : await runstate(ctx.b);
  const srcRuns = srcState === 'running' && (await runs(ctx.a));
  const dstRuns = dstState === 'running' && (await runs(ctx.b));
  // The source's own word on whether it passed the point of no return (its error text may be
  // the link's, reported first).
  const committed = ctx.a.closed ? null : (await ctx.a.ret('x-tabmig-held')).committed;
  const detail = { srcState, dstState, src: s.src?.status, dst: s.dst?.status, srcError: s.src?.['error-desc'], dstError: s.dst?.['error-desc'], committed };
  if (srcRuns && dstRuns) return { verdict: 'DOUBLED', holder: null, detail };
  if (committed && srcState === 'postmigrate') {
    const why = await spentRefuses(ctx.a);
    if (why) return { verdict: 'SPENT-SOURCE-RAN', holder: null, detail: { ...detail, why } };
  }
  if (srcState === 'running' && !srcRuns) return { verdict: 'STUCK-GUEST', holder: null, detail };
  if (dstState === 'running' && !dstRuns) return { verdict: 'STUCK-GUEST', holder: null, detail };
  if (srcRuns) {
    // One copy runs here; a destination may also hold a complete paused copy (link lost after ready).
    return { verdict: 'ok', holder: ctx.a, detail, outcome: dstState === 'paused' ? 'source runs, destination kept a paused copy' : 'source runs' };
  }
  if (dstRuns) {
    if (srcState !== 'closed' && srcState !== 'postmigrate') return { verdict: 'SOURCE-NOT-STOPPED', holder: null, detail };
    return { verdict: 'ok', holder: ctx.b, detail, outcome: 'destination runs' };
  }
  // Nobody runs. A destination in doubt whose source could not be asked leaves it to the person.
  if (dstState === 'paused') {
    await ctx.b.ret('cont');
    if (!(await runs(ctx.b))) return { verdict: 'PAUSED-COPY-DEAD', holder: null, detail };
    return { verdict: 'ok', holder: ctx.b, detail, outcome: 'destination kept a paused copy; cont runs it' };
  }
  if (srcState === 'postmigrate' && committed && dstState === 'closed') {
    return { verdict: 'ok', holder: null, detail, outcome: 'committed, then the destination tab (holding the guest) was closed' };
  }
  if (srcState === 'closed' && dstState !== 'running') {
    return { verdict: 'ok', holder: null, detail, outcome: 'the source tab (holding the guest) was closed before the commit' };
  }
  return { verdict: 'LOST', holder: null, detail };
}

/** A destination tab waiting for any peer, with short idle timeouts so silence is judged quickly. */
export async function openDestination(browser, tab = null, capabilities = null) {
  const b = tab ?? (await browser.open('?incoming=defer&name=dest'));
  if (tab) {
    await tab.page.goto(tab.page.url().replace(/\?.*$/, '') + '?incoming=defer&name=dest');
    await tab.page.waitForFunction(() => typeof window.qmp === 'function', null, { timeout: 30000 });
    tab.closed = false;
  }
  await b.ret('migrate-set-parameters', { 'x-incoming-idle-timeout': 3000, 'x-outgoing-idle-timeout': 2000 });
  if (capabilities) await b.ret('migrate-set-capabilities', caps(capabilities));
  await b.ret('migrate-incoming', { uri: 'webrtc:' });
  const { id } = await b.ret('x-tabmig-peer');
  return { b, id };
}

/**
 * Keeps every character the guest prints in this tab from now on (window.__serial): the page's
 * own history keeps only the last 64 KiB, and the a-b guest prints a 'B' per pass.
 */
export async function captureSerial(tab) {
  await tab.page.waitForFunction(() => !!document.querySelector('tm-app')?.machine, null, { timeout: 30000 });
  await tab.page.evaluate(() => {
    if (window.__serialHooked) return;
    window.__serialHooked = true;
    window.__serial = '';
    document.querySelector('tm-app').machine.addEventListener('serial', (e) => (window.__serial += e.detail.text));
  });
}

export function serialSince(tab) {
  return tab.page.evaluate(() => window.__serial ?? '');
}

/** A tab running the a-b guest, its serial output captured from boot. */
export async function openSource(browser) {
  const a = await browser.open('?name=source');
  await captureSerial(a);
  await a.ret('x-tabmig-load', { program: 'ab' });
  await a.until('x-tabmig-guest-info', (i) => i.serial.includes('B'), 15000);
  return a;
}

/** A seeded PRNG (mulberry32), so a soak can be replayed. */
export function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One fault: `a` runs the guest, a fresh destination waits; arm the phase, migrate, reach the
 * phase, inject, let it go on, settle, judge. Returns the record and the tab holding the guest.
 */
export async function runFault(browser, a, { phase, fault, returnPath, rnd, spare = null }) {
  const postcopy = !!phase.postcopy;
  const { b, id } = await openDestination(browser, spare, postcopy ? { 'postcopy-ram': true } : null);
  const ctx = { a, b, id, returnPath, rnd, closed: false };
  a.closed = false;
  b.closed = false;
  await a.ret('migrate-set-capabilities', caps({ events: true, 'return-path': returnPath, 'pause-before-switchover': false, 'postcopy-ram': postcopy, 'release-ram': !!phase.releaseRam }));
  await a.ret('migrate-set-parameters', { 'max-bandwidth': 0, 'max-postcopy-bandwidth': 0, 'x-outgoing-idle-timeout': 2000 });
  let where, t0;
  try {
    await phase.prepare?.(ctx);
    await a.ret('migrate', { uri: 'webrtc:' + id });
    where = await phase.reach(ctx);
    t0 = Date.now();
    await fault.inject(ctx);
    await sleep(100);
    await phase.after?.(ctx);
  } catch (e) {
    // The harness failed before a verdict: the caller must still close this fault's tabs (a
    // leaked destination runs a guest flat out and starves the rest of the soak).
    throw Object.assign(e instanceof Error ? e : new Error(String(e)), { ctx });
  }
  let s;
  try {
    s = await (phase.settle ?? settle)(ctx, t0);
  } catch (e) {
    return { record: { phase: phase.name, fault: fault.name, returnPath, where, verdict: 'NOT-SETTLED', detail: String(e) }, holder: null, ctx };
  }
  const j = await (phase.judge ?? judge)(ctx, s);
  for (const t of [a, b]) if (!t.closed) await t.qmp({ execute: 'x-tabmig-delay-control', arguments: { 'min-ms': 0, 'max-ms': 0 } }).catch(() => {});
  // Detect: the first open side whose migration ended after the fault; settle: the last one.
  // (A fault injected into an already paused postcopy has nothing to detect.)
  const ends = phase.alreadyPaused ? [] : [s.srcAt, s.dstAt].filter((x) => x != null);
  return {
    record: {
      phase: phase.name,
      fault: fault.name,
      returnPath,
      where,
      verdict: j.verdict,
      outcome: j.outcome,
      expectedLoss: j.expectedLoss ?? false,
      recoveries: j.recoveries,
      recoverMs: j.recoverMs,
      detectMs: ends.length ? Math.min(...ends) : null,
      settleMs: ends.length ? Math.max(...ends) : null,
      srcMs: s.srcAt,
      dstMs: s.dstAt,
      detail: j.detail,
    },
    holder: j.holder,
    ctx,
  };
}

/** A tab (re)loaded as the next hop's destination: -S, waiting, its serial captured from now. */
async function reloadAsHopDestination(tab) {
  await tab.page.goto(tab.page.url().replace(/\?.*$/, '') + '?incoming=defer&S&name=hop');
  await tab.page.waitForFunction(() => typeof window.qmp === 'function', null, { timeout: 30000 });
  await captureSerial(tab);
}

/**
 * Ping-pong: `hops` migrations of one running a-b guest between two tabs. Each hop's
 * destination starts under -S: checked (hash = source's, a-b invariant), then `cont`. `onHop`
 * gets one record per hop. Stops at the first broken hop.
 */
export async function runHops(browser, hops, onHop = () => {}) {
  const records = [];
  let src = await openSource(browser);
  /** What the guest printed, one segment per tab it lived in, in order. */
  const segments = [];
  let dst = await browser.open('?incoming=defer&S&name=hop');
  await captureSerial(dst);
  const names = new Map([[src, 'A'], [dst, 'B']]);
  for (let hop = 1; hop <= hops; hop++) {
    const t0 = Date.now();
    let problem = null;
    let downtime = null;
    let nudged = false;
    let retried = null;
    let bs = 0;
    try {
      let info;
      for (let attempt = 1; ; attempt++) {
        await dst.ret('migrate-incoming', { uri: 'webrtc:' });
        const { id } = await dst.ret('x-tabmig-peer');
        // Return path on for odd hops, off for even ones: both handshakes, every other hop.
        await src.ret('migrate-set-capabilities', caps({ events: true, 'return-path': hop % 2 === 1 }));
        await src.ret('migrate', { uri: 'webrtc:' + id });
        // A loaded machine can stretch the switchover's cost (its round trips through both main
        // threads) past downtime-limit for good, and precopy never converges: as QEMU's
        // migration-test does, the limit is then raised (2 s) so the hop can finish. Counted apart
        // (`nudged`): the hops check the guest's continuity, not convergence under load.
        info = await src.until('query-migrate', (v) => FINAL.includes(v.status), 45000).catch(() => null);
        if (!info) {
          nudged = true;
          await src.ret('migrate-set-parameters', { 'downtime-limit': 2000 });
          info = await src.until('query-migrate', (v) => FINAL.includes(v.status), 120000);
          await src.ret('migrate-set-parameters', { 'downtime-limit': 300 });
        }
        // A migration that failed cleanly (the guest runs on at the source, the destination never
        // had it) is a correct failure, not a broken hop: tried once more on a fresh destination,
        // counted apart with its reason. The guest's continuity is checked all the same.
        if (info.status === 'failed' && attempt === 1 && (await runstate(src)) === 'running' && (await runstate(dst)) !== 'running') {
          retried = info['error-desc'] ?? 'failed';
          await reloadAsHopDestination(dst);
          continue;
        }
        break;
      }
      downtime = info.downtime;
      if (info.status !== 'completed') problem = `source ended ${info.status}: ${info['error-desc']}`;
      if (!problem) {
        await dst.until('query-status', (v) => v.status === 'paused' || v.status === 'running', 30000);
        if ((await runstate(src)) !== 'postmigrate') problem = `source is ${await runstate(src)}`;
      }
      if (!problem && (await src.hash()) !== (await dst.hash())) problem = "the destination's RAM is not the source's";
      if (!problem) problem = await abCheck(dst);
      if (!problem) {
        segments.push(await serialSince(src));
        await dst.ret('cont');
        if (!(await runs(dst))) problem = 'the destination guest does not run after cont';
        else await dst.until('x-tabmig-guest-info', () => true, 1000);
        if (!problem) {
          const deadline = Date.now() + 20000;
          while (!/B/.test(await serialSince(dst))) {
            if (Date.now() > deadline) {
              problem = 'the destination guest printed nothing after cont';
              break;
            }
            await sleep(50);
          }
        }
      }
      const all = segments.join('') + (await serialSince(dst));
      bs = all.match(/B/g)?.length ?? 0;
      if (!problem && !/^AB*$/.test(all)) {
        const as = all.match(/A/g)?.length ?? 0;
        problem = as !== 1 ? `the guest printed 'A' ${as} times: it restarted` : `serial output is not one 'A' then 'B's: ${JSON.stringify(all.slice(0, 40))}…`;
      }
    } catch (e) {
      problem = String(e?.message ?? e);
    }
    const rec = { hop, from: names.get(src), to: names.get(dst), ok: !problem, problem, ms: Date.now() - t0, downtime, nudged, retried, bs };
    records.push(rec);
    onHop(rec);
    if (problem) break;
    // The tab the guest left becomes the next destination: reloaded, -S, waiting.
    const next = src;
    await reloadAsHopDestination(next);
    src = dst;
    dst = next;
  }
  await src.page.close().catch(() => {});
  await dst.page.close().catch(() => {});
  const ok = records.filter((r) => r.ok);
  const summary = {
    hops: ok.length,
    failed: records.length - ok.length,
    nudged: records.filter((r) => r.nudged).length,
    retried: records.filter((r) => r.retried).map((r) => ({ hop: r.hop, why: r.retried })),
    abOk: ok.length === records.length,
    serialOk: !records.some((r) => /serial|restarted|printed/.test(r.problem ?? '')),
    bs: records.at(-1)?.bs ?? 0,
    hopMs: { p50: pct(ok.map((r) => r.ms), 0.5), p99: pct(ok.map((r) => r.ms), 0.99) },
    downtimeMs: { p50: pct(ok.map((r) => r.downtime), 0.5), p99: pct(ok.map((r) => r.downtime), 0.99) },
    firstProblem: records.find((r) => !r.ok)?.problem ?? null,
  };
  return { summary, records };
}
