// The downtime decision's model (switchover-cost.ts): what a switchover costs, the threshold that
// is its inverse, the wire measured by the destination's own count, and the fallback to QEMU's
// rule when the switchover alone cannot fit downtime-limit.
import { equal, ok } from './helpers/assert.js';
import { SAFETY, SwitchoverCost } from '../src/migration/source/switchover-cost.js';

/** A cost with the wire measured at `bytesPerMs` (two echoes with bytes in flight) and one probe of `rtt` ms. */
function near(actual: number, expected: number, tol: number, what = ''): void {
  ok(Math.abs(actual - expected) <= tol, `${what} ${actual} is not within ${tol} of ${expected}`);
}

function measured(bytesPerMs: number, rtt: number, deviceBytes = 4096): SwitchoverCost {
  const c = new SwitchoverCost(deviceBytes);
  c.addRtt(rtt);
  c.delivered(0, 1000, 1 << 20);
  c.delivered(bytesPerMs * 100, 1100, 2 << 20);
  return c;
}

describe('switchover cost', () => {
  it('measures the wire only over windows with bytes in flight', () => {
    const c = new SwitchoverCost(0);
    c.delivered(0, 1000, 1000); // nothing in flight: an idle window measures the guest, not the link
    c.delivered(1000, 1100, 1000);
    equal(c.measured, false);
    c.delivered(1000, 1200, 1 << 20);
    c.delivered(1000 + 20_000 * 100, 1300, 2 << 20);
    equal(c.measured, true);
    near(c.bandwidth, 20_000, 1);
  });

  it('estimates stop + handshake + start + bytes ÷ wire, and the threshold is its inverse', () => {
    const c = measured(20_000, 10);
    const fixed = c.fixedMs;
    near(fixed, c.stopMs + 1.5 * 10 + 8, 1e-9); // + the destination's start, as measured
    const e = c.expected(2_000_000, 100_000);
    near(e, fixed + (100_000 + 4096) / 20_000 + 2_000_000 / 20_000, 1e-6);
    // The pages the threshold allows, left with the same bytes in flight, land on the planned share.
    const t = c.threshold(300, 100_000);
    near(c.expected(t, 100_000), 300 * SAFETY, 1e-6);
  });

  it('plans with the quiet round trip: a fresh probe, else the last one sent with nothing queued, else the fastest', () => {
    const c = measured(20_000, 40);
    c.addRtt(12);
    c.addRtt(90); // a probe queued behind a full channel measures the queue
    equal(c.rtt, 12);
    c.quietRtt = 25; // the decision's own probe, after the drain: what the handshake really sees
    equal(c.rtt, 25);
    c.freshRtt = 30;
    equal(c.rtt, 30);
  });

  it('does not take a busy link for a slow handshake: queued probes do not make the limit unkeepable', () => {
    const c = measured(20_000, 2);
    for (let i = 0; i < 40; i++) c.addRtt(60); // every probe behind half a megabyte of stream
    equal(c.unkeepable(50), false);
    c.quietRtt = 45; // but measured with nothing queued, the handshake alone overshoots
    equal(c.unkeepable(50), true);
  });

  it('times pages left at the rate the sender clears them (zero pages, deltas) when that is known', () => {
    const c = measured(10_000, 10);
    const before = c.expected(1_000_000, 0);
    c.samplePages(4_000_000, 100); // 40 000 page bytes per ms: most pages were zero or deltas
    ok(c.expected(1_000_000, 0) < before);
  });

  it('says when no number of pages left can keep downtime-limit, so the thread falls back to QEMU', () => {
    const c = measured(20_000, 40);
    c.quietRtt = 40; // measured with nothing queued: the handshake ≈ 60 ms + stop + start
    equal(c.unkeepable(50), true);
    equal(c.threshold(50, 0), 0); // the cost model alone would never switch over
    equal(c.unkeepable(300), false);
    ok(c.threshold(300, 0) > 0);
    // A wire not yet measured is not a verdict.
    const fresh = new SwitchoverCost(4096);
    fresh.addRtt(400);
    equal(fresh.unkeepable(50), false);
  });
});
