// Auto-converge (QEMU's migration_bitmap_sync throttle logic and mig_throttle_guest_down): over
// each period of at least a second between dirty syncs, if the guest dirtied more than half of
// what was sent in that period, twice, the vCPU is throttled: to cpu-throttle-initial the first
// time, then cpu-throttle-increment more each time (at most 99 %). The migration thread sets the
// throttle back to 0 when the migration ends, whatever the outcome.

/** QEMU's CPU_THROTTLE_PCT_MAX. */
export const CPU_THROTTLE_PCT_MAX = 99;
/** A period is at least this long (QEMU: more than one second between period ends). */
export const PERIOD_MS = 1000;

export interface ThrottleControl {
  throttlePercent: number;
}

export interface AutoConvergeParams {
  initial: number;
  increment: number;
}

export class AutoConverge {
  private periodStart: number;
  private periodDirtyPages = 0;
  private bytesAtPeriodStart: number;
  private highCount = 0;
  /** How many times the throttle was raised. */
  raised = 0;

  constructor(
    private readonly ctl: ThrottleControl,
    private readonly params: AutoConvergeParams,
    private readonly pageSize: number,
    now: number,
    transferred: number,
  ) {
    this.periodStart = now;
    this.bytesAtPeriodStart = transferred;
  }

  /**
   * A dirty sync found `dirtyPages`; `transferred` is the stream's byte count so far. Returns
   * true when this sync raised the throttle.
   */
  onSync(dirtyPages: number, transferred: number, now: number): boolean {
    this.periodDirtyPages += dirtyPages;
    if (now <= this.periodStart + PERIOD_MS) return false;
    const sent = transferred - this.bytesAtPeriodStart;
    let raised = false;
    if (this.periodDirtyPages * this.pageSize > sent / 2 && ++this.highCount >= 2) {
      this.highCount = 0;
      this.throttleDown();
      raised = true;
    }
    this.periodStart = now;
    this.periodDirtyPages = 0;
    this.bytesAtPeriodStart = transferred;
    return raised;
  }

  /** mig_throttle_guest_down. */
  throttleDown(): void {
    const cur = this.ctl.throttlePercent;
    this.ctl.throttlePercent = cur === 0 ? this.params.initial : Math.min(cur + this.params.increment, CPU_THROTTLE_PCT_MAX);
    this.raised++;
  }

  /** cpu_throttle_stop. */
  stop(): void {
    this.ctl.throttlePercent = 0;
  }
}
