// When to stop the guest for the stop-and-copy. QEMU's migration_iteration_run switches over as
// soon as the pages left ÷ bandwidth fit downtime-limit, and overshoots the limit by whatever that
// rule leaves out. tabmig plans with an estimate of the whole switchover (switchover-cost.ts) and
// keeps a margin below the limit for what the estimate still misses; the margin is measured, not
// guessed: every quiet look (the queue drained, a probe timed through it) is a rehearsal of the
// estimate, and the margin is what the recent rehearsals overshot their predictions by.
//
// A promise that keeps a migration from ever finishing is not a promise kept. So the margin is a
// plan, not a wall: a migration whose estimate keeps falling inside the limit but outside the
// margin switches over anyway at its INSIDE_LOOKS_TO_SWITCH-th such look, and once QEMU's own rule
// has held at QEMU_LOOKS_TO_SWITCH looks the migration switches whatever the estimate (inside the
// limit or not). The thread looks at most once a round, and at every round where QEMU's rule
// holds, so the switchover comes within that many rounds of QEMU's. The event log says which rule
// decided and why.

/**
 * Before any rehearsal, plan to this share of the limit: with nothing measured, the rest is for
 * the scheduling of the vCPU, worker and network threads on a busy host (the guest sees stalls of
 * 10–35 ms on a 2-core host while a migration runs; 30 switchovers at a 50 ms limit came out up to
 * 20 ms above their estimates).
 */
export const PRIOR_PLAN_SHARE = 0.6;
/**
 * The least margin, whatever the rehearsals say: what a rehearsal cannot see (the vCPU's stop and
 * the destination's start, stalls rarer than a few looks catch). A tenth of the limit, and never
 * less than MIN_MARGIN_MS.
 */
const FLOOR_SHARE = 0.1;
const MIN_MARGIN_MS = 10;
/** Rehearsals the margin is taken from: the recent ones (the load on a shared host changes). */
const REHEARSALS_KEPT = 8;
/** Looks inside the limit but outside the margin before switching over anyway. */
export const INSIDE_LOOKS_TO_SWITCH = 3;
/** Looks at which QEMU's rule held before switching over by it, whatever the estimate. */
export const QEMU_LOOKS_TO_SWITCH = 5;

/**
 * The estimate's errors as measured: each rehearsal predicted how long a drain of the queued
 * bytes and a probe's round trip would take, by the same model the switchover estimate uses, and
 * timed it.
 */
export class EstimateErrors {
  private readonly rehearsals: { predictedMs: number; actualMs: number }[] = [];

  /** A rehearsal predicted `predictedMs` and took `actualMs`. */
  add(predictedMs: number, actualMs: number): void {
    if (!Number.isFinite(predictedMs) || !Number.isFinite(actualMs) || predictedMs < 0 || actualMs < 0) return;
    this.rehearsals.push({ predictedMs, actualMs });
    if (this.rehearsals.length > REHEARSALS_KEPT) this.rehearsals.shift();
  }

  get count(): number {
    return this.rehearsals.length;
  }

  /**
   * Milliseconds to keep free below `limitMs`: what the recent rehearsals overshot their
   * predictions by, the largest but for one in four (a single stall of a starved thread is not the
   * rule, one that recurs is), and at least the floor. Before any rehearsal: the prior share.
   */
  marginMs(limitMs: number): number {
    if (this.rehearsals.length === 0) return limitMs * (1 - PRIOR_PLAN_SHARE);
    const over = this.rehearsals.map((r) => r.actualMs - r.predictedMs).sort((a, b) => b - a);
    const worst = over[Math.floor(over.length / 4)]!;
    return Math.max(worst, floorMs(limitMs));
  }

  /** Where the margin comes from, in words. */
  explain(limitMs: number): string {
    if (this.rehearsals.length === 0) return `${Math.round((1 - PRIOR_PLAN_SHARE) * 100)} % of the limit until the estimate has been rehearsed`;
    if (this.marginMs(limitMs) <= floorMs(limitMs)) return `the floor: ${this.rehearsals.length} rehearsals of the estimate erred by less`;
    return `what the last ${this.rehearsals.length} rehearsals of the estimate overshot it by`;
  }
}

function floorMs(limitMs: number): number {
  return Math.max(MIN_MARGIN_MS, limitMs * FLOOR_SHARE);
}

/** What one quiet look found. */
export interface Look {
  /** The switchover estimate for stopping now (ms); Infinity when the look could not measure it. */
  expectedMs: number;
  limitMs: number;
  /** QEMU's own test held: pages left ÷ bandwidth within downtime-limit. */
  qemuWouldSwitch: boolean;
  /** The estimate in its parts (SwitchoverCost.explain), for the log. */
  parts: string;
}

export type Verdict =
  | { switchover: false }
  | {
      switchover: true;
      /** margin: the estimate fits the plan; inside-limit: it kept missing only the margin; qemu: QEMU's rule. */
      rule: 'margin' | 'inside-limit' | 'qemu';
      /** The event log's line. */
      text: string;
    };

export class SwitchoverDecision {
  readonly errors = new EstimateErrors();
  /** Looks whose estimate was inside the limit but outside the margin. */
  private insideLooks = 0;
  /** Looks at which QEMU's rule held. */
  private qemuLooks = 0;

  /** The planned share of the limit (ms): what an estimate must fit to switch over at once. */
  plannedMs(limitMs: number): number {
    return limitMs - this.errors.marginMs(limitMs);
  }

  /** Judges one quiet look: switch over now, and by which rule, or look again next round. */
  judge(look: Look): Verdict {
    const { expectedMs, limitMs, parts } = look;
    const e = Math.round(expectedMs);
    const margin = this.errors.marginMs(limitMs);
    const m = Math.round(margin);
    if (expectedMs <= limitMs - margin) {
      return {
        switchover: true,
        rule: 'margin',
        text: `switching over: expected downtime ${e} ms, within downtime-limit ${limitMs} ms less a margin of ${m} ms (${this.errors.explain(limitMs)}) (${parts})`,
      };
    }
    if (look.qemuWouldSwitch) this.qemuLooks++;
    if (expectedMs <= limitMs) {
      this.insideLooks++;
      // Inside the limit, at the bound of either count: switch now, the limit still expected to hold.
      if (this.insideLooks >= INSIDE_LOOKS_TO_SWITCH || this.qemuLooks >= QEMU_LOOKS_TO_SWITCH) {
        return {
          switchover: true,
          rule: 'inside-limit',
          text:
            `switching over anyway: expected downtime ${e} ms is inside downtime-limit ${limitMs} ms but outside its margin of ${m} ms ` +
            `(${this.errors.explain(limitMs)}) at ${this.insideLooks} looks now; the margin is a plan, not a wall (${parts})`,
        };
      }
    } else if (this.qemuLooks >= QEMU_LOOKS_TO_SWITCH) {
      return {
        switchover: true,
        rule: 'qemu',
        text:
          `downtime-limit ${limitMs} ms cannot be kept here: ${Number.isFinite(expectedMs) ? `the switchover is expected to take ${e} ms` : 'the switchover cannot be estimated'} (${parts}); ` +
          `QEMU's rule (pages left ÷ bandwidth within the limit) held at ${this.qemuLooks} looks, so switching over by it`,
      };
    }
    return { switchover: false };
  }
}
