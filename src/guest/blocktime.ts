// Postcopy blocktime accounting (QEMU's PostcopyBlocktimeContext in postcopy-ram.c): how long
// each vCPU stood still waiting for a missing page, and how long *all* of them did at once (the
// time the guest made no progress at all: postcopy-blocktime). Pure bookkeeping over timestamps,
// so a test can drive it with any clock; the page gate feeds it from the vCPU.

export interface BlocktimeDelta {
  /** Milliseconds this resolution added to the all-vCPUs-blocked total. */
  total: number;
  /** Milliseconds the resolved vCPU waited. */
  vcpu: number;
}

export class BlocktimeTracker {
  private readonly since: Float64Array;
  private readonly blocked: Uint8Array;
  private blockedCount = 0;
  /** When the last vCPU blocked (every vCPU blocked since then), or -1. */
  private allSince = -1;
  totalMs = 0;
  readonly perVcpuMs: Float64Array;

  constructor(readonly vcpus: number) {
    this.since = new Float64Array(vcpus);
    this.blocked = new Uint8Array(vcpus);
    this.perVcpuMs = new Float64Array(vcpus);
  }

  /** vCPU `i` faulted at time `t` (ms) and now waits. A second fault while waiting changes nothing. */
  fault(i: number, t: number): void {
    if (this.blocked[i]) return;
    this.blocked[i] = 1;
    this.since[i] = t;
    if (++this.blockedCount === this.vcpus) this.allSince = t;
  }

  /** vCPU `i`'s page landed at time `t`: it runs again. */
  resolved(i: number, t: number): BlocktimeDelta {
    if (!this.blocked[i]) return { total: 0, vcpu: 0 };
    const vcpu = Math.max(0, t - this.since[i]!);
    this.perVcpuMs[i] = this.perVcpuMs[i]! + vcpu;
    let total = 0;
    if (this.blockedCount === this.vcpus && this.allSince >= 0) {
      total = Math.max(0, t - this.allSince);
      this.totalMs += total;
      this.allSince = -1;
    }
    this.blocked[i] = 0;
    this.blockedCount--;
    return { total, vcpu };
  }
}
