// When the source stops the guest (switchover-decision.ts): the plan below downtime-limit, its
// margin measured from rehearsals of the estimate, and the bounds that make a migration finish
// whenever QEMU's rule would.
import { equal, match, ok } from './helpers/assert.js';
import { EstimateErrors, INSIDE_LOOKS_TO_SWITCH, PRIOR_PLAN_SHARE, QEMU_LOOKS_TO_SWITCH, SwitchoverDecision } from '../src/migration/source/switchover-decision.js';

const parts = 'stop 4 ms, handshake 3 ms, start 8 ms; …';

/** Looks until the decision switches over (at most `max`): the look it did at, and its verdict. */
function lookUntilSwitch(d: SwitchoverDecision, expected: (i: number) => number, limitMs: number, qemuWouldSwitch = true, max = 1000) {
  for (let i = 1; i <= max; i++) {
    const v = d.judge({ expectedMs: expected(i), limitMs, qemuWouldSwitch, parts });
    if (v.switchover) return { at: i, verdict: v };
  }
  return { at: Infinity, verdict: null };
}

describe('switchover decision', () => {
  it('the a-b guest of the issue: estimates of 290–300 ms at a 300 ms limit switch over within a bounded number of looks, and say so', () => {
    // 277 dirty syncs with expected-downtime 294 ms never reached the old plan of 60 % of the limit.
    const d = new SwitchoverDecision();
    // The rehearsals of the estimate err by 10–30 ms on this busy host: the margin is about that.
    for (const [p, a] of [[60, 70], [80, 105], [50, 62]]) d.errors.add(p, a);
    const { at, verdict } = lookUntilSwitch(d, (i) => 290 + (i % 11), 300);
    ok(at <= INSIDE_LOOKS_TO_SWITCH, `switched at look ${at}`);
    ok(verdict?.switchover && verdict.rule === 'inside-limit');
    if (verdict?.switchover) match(verdict.text, /^switching over anyway: expected downtime 29\d ms is inside downtime-limit 300 ms but outside its margin of \d+ ms \(.+\) at 3 looks now; the margin is a plan, not a wall \(stop 4 ms/);
  });

  it('an estimate over the limit still switches within a bounded number of looks once QEMU\'s rule holds (a slow TURN relay)', () => {
    const d = new SwitchoverDecision();
    d.errors.add(40, 45);
    const { at, verdict } = lookUntilSwitch(d, () => 360, 300);
    equal(at, QEMU_LOOKS_TO_SWITCH);
    ok(verdict?.switchover && verdict.rule === 'qemu');
    if (verdict?.switchover) match(verdict.text, /^downtime-limit 300 ms cannot be kept here: the switchover is expected to take 360 ms \(stop 4 ms.*\); QEMU's rule \(pages left ÷ bandwidth within the limit\) held at 5 looks, so switching over by it$/);
  });

  it('at the bound of QEMU\'s rule, a look whose estimate is inside the limit says so (the limit is expected to hold)', () => {
    const d = new SwitchoverDecision();
    d.errors.add(40, 45);
    const { at, verdict } = lookUntilSwitch(d, (i) => (i < QEMU_LOOKS_TO_SWITCH ? 310 : 295), 300);
    equal(at, QEMU_LOOKS_TO_SWITCH);
    ok(verdict?.switchover && verdict.rule === 'inside-limit', JSON.stringify(verdict));
  });

  it('does not switch over an estimate over the limit while QEMU\'s rule would not either', () => {
    const d = new SwitchoverDecision();
    equal(lookUntilSwitch(d, () => 400, 300, false, 200).at, Infinity);
  });

  it('switches at once when the estimate fits the limit less the measured margin', () => {
    const d = new SwitchoverDecision();
    for (let i = 0; i < 4; i++) d.errors.add(100, 108); // errs by 8 ms: the floor (30 ms at 300) decides
    equal(d.errors.marginMs(300), 30);
    const v = d.judge({ expectedMs: 265, limitMs: 300, qemuWouldSwitch: true, parts });
    ok(v.switchover && v.rule === 'margin', JSON.stringify(v));
    if (v.switchover) match(v.text, /^switching over: expected downtime 265 ms, within downtime-limit 300 ms less a margin of 30 ms \(the floor: 4 rehearsals of the estimate erred by less\) \(stop 4 ms/);
  });

  it('keeps the limit where it can: an estimate inside the margin switches, one just outside waits for a better look', () => {
    const d = new SwitchoverDecision();
    d.errors.add(20, 30);
    // 46 ms at a 50 ms limit is outside the margin: not yet.
    equal(d.judge({ expectedMs: 46, limitMs: 50, qemuWouldSwitch: true, parts }).switchover, false);
    // A later look finds 25 ms: within.
    const v = d.judge({ expectedMs: 25, limitMs: 50, qemuWouldSwitch: true, parts });
    ok(v.switchover && v.rule === 'margin');
  });
});

describe('estimate errors (the margin)', () => {
  it('before any rehearsal the plan is the prior share of the limit', () => {
    const e = new EstimateErrors();
    equal(e.marginMs(300), 300 * (1 - PRIOR_PLAN_SHARE));
    match(e.explain(300), /^40 % of the limit until the estimate has been rehearsed$/);
  });

  it('is what the recent rehearsals overshot by, the largest but for one in four, never below the floor', () => {
    const e = new EstimateErrors();
    e.add(50, 45); // came in early: no overshoot
    equal(e.marginMs(300), 30, 'the floor: a tenth of the limit');
    equal(e.marginMs(50), 10, 'and never less than 10 ms');
    e.add(100, 140); // 40 ms over
    e.add(30, 50); // 20 ms over
    equal(e.marginMs(300), 40);
    match(e.explain(300), /^what the last 3 rehearsals of the estimate overshot it by$/);
    e.add(10, 210); // one stall of 200 ms in four rehearsals: not the rule
    equal(e.marginMs(300), 40);
    for (let i = 0; i < 3; i++) e.add(10, 210); // stalls that recur are
    equal(e.marginMs(300), 200);
  });

  it('forgets old rehearsals: the load on a shared host changes', () => {
    const e = new EstimateErrors();
    e.add(10, 200);
    for (let i = 0; i < 8; i++) e.add(100, 101);
    equal(e.marginMs(300), 30);
    e.add(Infinity, 3); // a rehearsal without a wire to predict with counts for nothing
    equal(e.count, 8);
  });
});
