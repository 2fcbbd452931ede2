// The teaching view's pure parts: the analytic precopy model and the state timeline's phases.
import { predictPrecopy, explainDifference } from '../src/ui/precopy-model.js';
import { segmentsFromLog } from '../src/ui/tm-state-timeline.js';
import type { RoundRecord } from '../src/migration/round-records.js';
import { equal, match, ok } from './helpers/assert.js';

const first = (over: Partial<RoundRecord> = {}): RoundRecord => ({
  round: 1,
  time: 2000,
  duration: 2000,
  dirtyPages: 1000,
  pagesSent: 16384,
  zeroPages: 8000,
  bytesSent: 40e6,
  bandwidth: 20e6,
  remaining: 4096000,
  expectedDowntime: 200,
  threshold: 6e6,
  throttle: 0,
  ...over,
});

describe('precopy model', () => {
  it('shrinks each round by dirty rate ÷ bandwidth until the rest fits the downtime limit', () => {
    // 1000 pages in 2 s = 2.048 MB/s dirtied, over 20 MB/s: r = 0.1024.
    const p = predictPrecopy([first()], 10)!;
    ok(Math.abs(p.ratio - 0.1024) < 1e-9, `ratio ${p.ratio}`);
    ok(p.converges);
    const r = p.rounds;
    // Round 2 sends what round 1 let the guest dirty; round 3 a tenth of that.
    equal(r[1]!.bytes, 1000 * 4096);
    ok(Math.abs(r[2]!.bytes / r[1]!.bytes - p.ratio) < 1e-9);
    // Stops once remaining ≤ B × limit = 200 kB.
    ok(r[r.length - 1]!.remaining <= 20e6 * 0.01);
    ok(r[r.length - 2]!.remaining > 20e6 * 0.01);
    equal(p.downtime, (r[r.length - 1]!.remaining / 20e6) * 1000);
  });

  it('says so when the guest dirties faster than the link sends', () => {
    const p = predictPrecopy([first({ dirtyPages: 20000 })], 50)!;
    equal(p.converges, false);
    equal(p.totalTime, Infinity);
    match(explainDifference(p, [first({ dirtyPages: 20000 })]), /never catches up/);
  });

  it('names the writable working set when more rounds were measured than predicted', () => {
    const recs = [first(), ...[2, 3, 4, 5, 6, 7].map((n) => first({ round: n, dirtyPages: 300 }))];
    const p = predictPrecopy(recs, 50)!;
    match(explainDifference(p, recs), /writable working set/);
  });
});

describe('state timeline', () => {
  it('turns the service log into phases, the last migration only', () => {
    const log = [
      { t: 0, text: 'migration setup' },
      { t: 10, text: 'migration failed' },
      { t: 100, text: 'migration setup' },
      { t: 150, text: 'migration active' },
      { t: 900, text: 'return path: PONG 1' },
      { t: 1000, text: 'migration postcopy-active' },
      { t: 1500, text: 'migration completed' },
    ];
    const segs = segmentsFromLog(log, false);
    equal(segs.map((s) => s.phase).join(), 'setup,rounds,postcopy,completed');
    equal(segs[1]!.end - segs[1]!.start, 850);
  });
});
