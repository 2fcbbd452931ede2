// The reliability campaign's share of the normal suite (the long runs are `npm run soak` and
// `npm run hops -- 100`): a few random faults at random phases (the last one in postcopy), and a
// few hops of a running a-b guest between two tabs, judged exactly as the long runs judge them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FAULTS, PHASES, openSource, prng, runFault, runHops } from './reliability.mjs';
import { sharedBrowser } from './session.mjs';

describe('reliability: random faults and ping-pong between two tabs', () => {
  const session = sharedBrowser();

  it('a few faults at random phases: one guest, always', async () => {
    const seed = Date.now() % 2 ** 31;
    const rnd = prng(seed);
    const precopy = PHASES.filter((p) => !p.postcopy);
    const postcopy = PHASES.filter((p) => p.postcopy && !p.soakOnly);
    let a = null;
    // Three precopy faults and one postcopy fault (the long runs have them all).
    for (let i = 0; i < 4; i++) {
      const phases = i < 3 ? precopy : postcopy;
      const phase = phases[Math.floor(rnd() * phases.length)];
      const faults = FAULTS.filter((f) => !(f.precopyOnly && phase.postcopy));
      const fault = faults[Math.floor(rnd() * faults.length)];
      const returnPath = phase.postcopy || fault.needs ? true : rnd() < 0.5;
      a ??= await openSource(session.browser);
      const { record, holder, ctx } = await runFault(session.browser, a, { phase, fault, returnPath, rnd });
      assert.equal(record.verdict, 'ok', `seed ${seed}: ${JSON.stringify(record)}`);
      for (const t of [ctx.a, ctx.b]) if (t !== holder && !t.closed) await t.page.close();
      a = holder;
    }
    await a?.page.close();
  });

  it('hops A→B→A…: the a-b invariant and the serial output intact at every hop', async () => {
    const { summary, records } = await runHops(session.browser, 2);
    assert.equal(summary.hops, 2, JSON.stringify(records));
    assert.ok(summary.abOk && summary.serialOk);
  });
});
