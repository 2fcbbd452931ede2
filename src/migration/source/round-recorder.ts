// Appends a round record (round-records.ts, DESIGN §9) at every dirty sync: RAM save reports
// what the round did in pages; this adds time, bytes and the thread's estimates, so the UI
// charts and the bench read the shape of a migration without polling query-migrate.

import type { ControlBlock } from '../../guest/control-block.js';
import { MigCounter, type MigrationBlock } from '../migration-block.js';
import type { RamRound } from '../ram/ram-save.js';
import type { RoundRecord, RoundRecords } from '../round-records.js';

export class RoundRecorder {
  private round = 1;
  private roundStart = performance.now();
  private roundStartBytes = 0;

  constructor(
    private readonly rounds: RoundRecords,
    private readonly block: MigrationBlock,
    private readonly ctl: ControlBlock,
    /** Stream bytes put so far (the main writer's transferred). */
    private readonly transferred: () => number,
    /** Bytes the downtime limit allows for the stop-and-copy at the current bandwidth. */
    private readonly threshold: () => number,
    /** The switchover decision's own estimate for `remaining` bytes left (ms). */
    private readonly expected?: (remaining: number) => number,
  ) {}

  /** A new migration starts over: readers drop what they cached (the generation changes). */
  reset(): void {
    this.rounds.reset();
    this.round = 1;
    this.roundStart = performance.now();
    this.roundStartBytes = this.transferred();
  }

  /** Called by RAM save at the sync that ended a round. */
  record(r: RamRound): RoundRecord {
    const now = performance.now();
    const bytes = this.transferred();
    const duration = now - this.roundStart;
    const bytesSent = bytes - this.roundStartBytes;
    const bandwidthPerMs = this.block.get(MigCounter.BANDWIDTH);
    const rec: RoundRecord = {
      round: this.round++,
      time: Date.now() - this.block.get(MigCounter.START_TIME),
      duration,
      dirtyPages: r.dirtyPages,
      pagesSent: r.pagesSent,
      zeroPages: r.zeroPages,
      bytesSent,
      bandwidth: duration > 0 ? (bytesSent * 1000) / duration : 0,
      remaining: r.remainingBytes,
      expectedDowntime: this.expected ? this.expected(r.remainingBytes) : bandwidthPerMs > 0 ? r.remainingBytes / bandwidthPerMs : 0,
      threshold: this.threshold(),
      throttle: this.ctl.throttlePercent,
    };
    this.rounds.append(rec);
    this.roundStart = now;
    this.roundStartBytes = bytes;
    return rec;
  }
}
