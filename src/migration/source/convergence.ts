// Says, while a migration runs, when it cannot converge: from the round records, the guest's
// dirty rate against the wire's bandwidth. A round that found more dirty bytes than it could
// send, three rounds running, with what is left not shrinking, is a migration that will never
// reach its threshold; the remedies that would help are named (auto-converge slows the guest,
// XBZRLE sends small deltas of rewritten pages, postcopy moves the guest first, a higher
// downtime-limit accepts more left for the stop-and-copy).

import type { MigrationOptions } from '../options.js';

export interface ConvergenceSample {
  /** Bytes the round's sync found dirtied. */
  dirtyBytes: number;
  /** Round duration, ms. */
  durationMs: number;
  /** Bytes the wire carried per ms over the round. */
  bandwidth: number;
  /** Bytes left after the sync. */
  remaining: number;
  /** Bytes the limit allows to be left. */
  threshold: number;
  /** The throttle during the round, %. */
  throttle: number;
}

export interface ConvergenceVerdict {
  converging: boolean;
  /** Dirty bytes per second against wire bytes per second. */
  dirtyRate: number;
  wireRate: number;
  text: string;
}

const ROUNDS_TO_JUDGE = 3;

export class ConvergenceWatch {
  private readonly recent: ConvergenceSample[] = [];
  /** Whether the last verdict said "not converging" (a change is what gets reported). */
  stuck = false;

  constructor(private readonly options: MigrationOptions) {}

  /** Feeds one round; returns a verdict when it changed (stuck ↔ converging), else null. */
  add(s: ConvergenceSample): ConvergenceVerdict | null {
    if (s.durationMs <= 0) return null;
    this.recent.push(s);
    if (this.recent.length > ROUNDS_TO_JUDGE) this.recent.shift();
    if (this.recent.length < ROUNDS_TO_JUDGE) return null;
    // Over the rounds' whole time: a round a quiet look ended early lasts a few ms, and its pages
    // (dirtied over the look before it) divided by that alone would read as GB/s.
    const ms = this.recent.reduce((a, r) => a + r.durationMs, 0);
    const dirtyRate = (this.recent.reduce((a, r) => a + r.dirtyBytes, 0) * 1000) / ms;
    const wireRate = (this.recent.reduce((a, r) => a + r.bandwidth * r.durationMs, 0) / ms) * 1000;
    const first = this.recent[0]!;
    const last = this.recent[this.recent.length - 1]!;
    const notShrinking = last.remaining >= first.remaining * 0.9 && last.remaining > last.threshold;
    const stuck = notShrinking && dirtyRate >= 0.5 * wireRate;
    if (stuck === this.stuck) return null;
    this.stuck = stuck;
    return { converging: !stuck, dirtyRate, wireRate, text: stuck ? this.stuckText(dirtyRate, wireRate, last) : 'migration is converging again' };
  }

  /** The remedies that would help, those not already in use. */
  remedies(throttle: number): string[] {
    const o = this.options;
    const out: string[] = [];
    if (!o.capability('auto-converge')) out.push("enable 'auto-converge' (throttle the guest until it converges)");
    else if (throttle < 99) out.push(`auto-converge is at ${throttle}%: raise 'cpu-throttle-increment'`);
    if (!o.capability('xbzrle')) out.push("enable 'xbzrle' (send deltas of rewritten pages)");
    if (!o.capability('compress')) out.push("enable 'compress' (if the guest's data compresses)");
    out.push("use postcopy ('postcopy-ram', then migrate-start-postcopy)");
    out.push("raise 'downtime-limit'");
    return out;
  }

  private stuckText(dirtyRate: number, wireRate: number, last: ConvergenceSample): string {
    const mb = (b: number) => (b / 1e6).toFixed(1);
    return (
      `migration is not converging: the guest dirties ${mb(dirtyRate)} MB/s, the link carries ${mb(wireRate)} MB/s, ` +
      `${mb(last.remaining)} MB left against ${mb(last.threshold)} MB allowed. Remedies: ${this.remedies(last.throttle).join('; ')}`
    );
  }
}
