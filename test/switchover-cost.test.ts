// The downtime decision's model (switchover-cost.ts): what a switchover costs, the threshold that
// is its inverse, the wire measured by the destination's own count, the pages' time on the wire.
import { equal, ok } from './helpers/assert.js';
import { SwitchoverCost } from '../src/migration/source/switchover-cost.js';

/** A cost with the wire measured at `bytesPerMs` (two echoes with bytes in flight) and one probe of `rtt` ms. */
function near(actual: number, expected: number, tol: number, what = ''): void {
  ok(Math.abs(actual - expected) <= tol, `${what} ${actual} is not within ${tol} of ${expected}`);
}

function measured(bytesPerMs: number, rtt: number, deviceBytes = 4096, codecPaced = false): SwitchoverCost {
  const c = new SwitchoverCost(deviceBytes, codecPaced);
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
    // The pages the threshold allows, left with the same bytes in flight, land on the planned time.
    const t = c.threshold(250, 100_000);
    near(c.expected(t, 100_000), 250, 1e-6);
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

  it('times the pages left as the stream bytes they become, at the wire, however fast the sender fills its buffers', () => {
    const c = measured(9_300, 3); // the wire, by the destination's count: 9.3 MB/s
    // The sender cleared plain pages into its buffers at 22.6 MB/s, one stream byte per page byte.
    for (let i = 0; i < 5; i++) c.samplePages(2_260_000, 100, 2_265_000);
    const pagesMs = c.expected(2_097_152, 0) - c.expected(0, 0);
    near(pagesMs, (2_097_152 * 2_265_000) / 2_260_000 / 9_300, 0.5, 'an a-b guest\'s 2 MiB at the wire');
    // Zero pages and deltas cost a few stream bytes each: the same page bytes go faster.
    const z = measured(9_300, 3);
    for (let i = 0; i < 5; i++) z.samplePages(40_000_000, 100, 400_000);
    ok(z.expected(2_097_152, 0) - z.expected(0, 0) < pagesMs / 10);
    // A codec slower than the wire (compress) bounds them from below; without one the sender's
    // pace is the wire's seen through its buffers, and only noise.
    const slow = measured(20_000, 3, 4096, true);
    for (let i = 0; i < 5; i++) slow.samplePages(500_000, 100, 200_000);
    near(slow.expected(2_000_000, 0) - slow.expected(0, 0), 2_000_000 / 5_000, 1);
    const plain = measured(20_000, 3);
    for (let i = 0; i < 5; i++) plain.samplePages(500_000, 100, 200_000);
    near(plain.expected(2_000_000, 0) - plain.expected(0, 0), (2_000_000 * 0.4) / 20_000, 1);
  });

  it('the threshold is the inverse of the estimate whichever of the wire and the sender is slower', () => {
    for (const [wire, pageBytes, streamBytes, codec] of [
      [9_300, 2_260_000, 2_265_000, false],
      [20_000, 500_000, 200_000, true],
      [10_000, 4_000_000, 40_000, false],
    ] as const) {
      const c = measured(wire, 5, 4096, codec);
      for (let i = 0; i < 5; i++) c.samplePages(pageBytes, 100, streamBytes);
      const t = c.threshold(200, 50_000);
      near(c.expected(t, 50_000), 200, 1e-6, `wire ${wire}`);
    }
    const c = measured(10_000, 200);
    equal(c.threshold(250, 0), 0, 'nothing fits when the handshake alone overshoots the planned time');
  });

  it('a rehearsal (a drain timed through a probe) is predicted by the same model: queued bytes at the wire, then a round trip', () => {
    const c = measured(20_000, 12);
    near(c.rehearsalMs(1_000_000), 1_000_000 / 20_000 + 12, 1e-9);
    equal(new SwitchoverCost(0).rehearsalMs(1000), Infinity, 'nothing to predict with before the wire is measured');
  });
});
