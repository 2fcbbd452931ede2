// The source side of the `ram` section (QEMU's ram_save_setup / _iterate / _pending /
// _complete): a private bitmap of pages still to send, refilled from the shared dirty log at each
// sync, and a cursor that walks it. Zero pages go as ZERO records (counted as `duplicate`), the
// rest as whole pages read straight from shared guest RAM into the stream's buffer.

import { DirtyLog } from '../../guest/dirty-log.js';
import { PAGE_SIZE } from '../../guest/memory-map.js';
import { MigCounter, type MigrationBlock } from '../migration-block.js';
import { RAM_BLOCK_MAIN, RamWriter, isZeroPage, type StreamWriter } from '../stream/index.js';

/** QEMU checks the clock every 64 pages and ends an iteration after 50 ms (MAX_WAIT). */
const PAGES_BETWEEN_CLOCK_CHECKS = 64;
const MAX_ITERATION_MS = 50;

export class RamSaver {
  readonly pageCount: number;
  private readonly toSend: Uint8Array;
  private toSendCount = 0;
  private cursor = 0;
  private readonly ramWriter: RamWriter;
  private readonly dirty: DirtyLog;
  /** Dirty-rate bookkeeping, per QEMU's migration_bitmap_sync: pages found over ≥ 1 s. */
  private periodStart = performance.now();
  private periodPages = 0;

  constructor(
    private readonly ram: Uint8Array,
    dirtyLog: SharedArrayBuffer,
    private readonly w: StreamWriter,
    private readonly block: MigrationBlock,
  ) {
    this.pageCount = ram.length / PAGE_SIZE;
    this.toSend = new Uint8Array(this.pageCount);
    this.dirty = new DirtyLog(dirtyLog);
    this.ramWriter = new RamWriter(w);
  }

  get remainingBytes(): number {
    return this.toSendCount * PAGE_SIZE;
  }

  /** Setup: every page must be sent once; writes the block list. */
  setup(): void {
    this.dirty.clearAll();
    this.toSend.fill(1);
    this.toSendCount = this.pageCount;
    this.block.add(MigCounter.DIRTY_SYNC_COUNT, 1);
    this.block.set(MigCounter.TOTAL, this.ram.length);
    this.publishRemaining();
    this.ramWriter.writeMemSize([{ name: RAM_BLOCK_MAIN, length: this.ram.length }]);
    this.ramWriter.writeEos();
  }

  /** QEMU's ram_save_pending: sync the dirty log when what is left would fit in the downtime. */
  pending(thresholdBytes: number): number {
    // Also sync when nothing is left: before the first bandwidth estimate (100 ms in) the
    // threshold is 0, and a small RAM is sent once over by then. QEMU never gets there that fast;
    // without this the first pass went straight to the stop-and-copy with the whole dirty set,
    // whatever the downtime-limit (a 1 ms limit gave 126 ms of downtime).
    if (this.remainingBytes < thresholdBytes || this.remainingBytes === 0) this.sync();
    return this.remainingBytes;
  }

  /** Moves every page the guest dirtied since the last sync into the to-send bitmap. */
  sync(): void {
    let found = 0;
    const flags = this.dirty.flags;
    for (let p = 0; p < this.pageCount; p++) {
      // A cheap plain read first; only a set flag is taken atomically (the take is what orders).
      if (flags[p] === 0) continue;
      if (!this.dirty.take(p)) continue;
      if (this.toSend[p] === 0) {
        this.toSend[p] = 1;
        this.toSendCount++;
      }
      found++;
    }
    this.periodPages += found;
    const now = performance.now();
    if (now - this.periodStart > 1000) {
      this.block.set(MigCounter.DIRTY_PAGES_RATE, Math.round((this.periodPages * 1000) / (now - this.periodStart)));
      this.periodPages = 0;
      this.periodStart = now;
    }
    this.block.add(MigCounter.DIRTY_SYNC_COUNT, 1);
    this.block.set(MigCounter.PAGES_THIS_ROUND, 0);
    this.publishRemaining();
  }

  /**
   * One iteration's worth of pages: until the rate limit is used up, the stream wants draining,
   * 50 ms pass, or nothing is left to send. Returns the pages sent.
   */
  iterate(): number {
    const start = performance.now();
    let sent = 0;
    while (this.toSendCount > 0) {
      if (this.w.rateLimitExceeded() || this.w.needsDrain || this.w.error) break;
      this.sendPage(this.nextDirtyPage());
      sent++;
      if (sent % PAGES_BETWEEN_CLOCK_CHECKS === 0 && performance.now() - start > MAX_ITERATION_MS) break;
    }
    this.publishRemaining();
    return sent;
  }

  /** The stop-and-copy: the guest is stopped, so one last sync and every remaining page. */
  complete(): void {
    this.sync();
    while (this.toSendCount > 0 && !this.w.error) this.sendPage(this.nextDirtyPage());
    this.publishRemaining();
  }

  writeEos(): void {
    this.ramWriter.writeEos();
  }

  private nextDirtyPage(): number {
    const bits = this.toSend;
    let p = this.cursor;
    while (bits[p] === 0) {
      p++;
      if (p === this.pageCount) p = 0;
    }
    this.cursor = p + 1 === this.pageCount ? 0 : p + 1;
    return p;
  }

  private sendPage(page: number): void {
    this.toSend[page] = 0;
    this.toSendCount--;
    const offset = page * PAGE_SIZE;
    if (isZeroPage(this.ram, offset)) {
      this.ramWriter.writeZeroPage(RAM_BLOCK_MAIN, offset);
      this.block.add(MigCounter.DUPLICATE, 1);
    } else {
      this.ramWriter.writePage(RAM_BLOCK_MAIN, offset, this.ram, offset);
      this.block.add(MigCounter.NORMAL, 1);
    }
    this.block.add(MigCounter.PAGES_THIS_ROUND, 1);
  }

  private publishRemaining(): void {
    this.block.set(MigCounter.REMAINING, this.remainingBytes);
  }
}
