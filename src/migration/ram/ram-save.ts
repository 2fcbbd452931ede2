// RAM's save handler (QEMU's ram_save_setup / _iterate / _pending / _complete_precopy): a
// private bitmap of pages still to send, refilled from the shared dirty log at each sync, and a
// cursor that walks it. Zero pages go as ZERO records (counted as `duplicate`), the rest as
// whole pages read straight from shared guest RAM; both leave through the page sender.
//
// It also keeps the shared page state (DESIGN §9): clean at setup, dirty for every page a sync
// finds, sent once a page's record is queued (and back to clean at the next sync if it was not
// dirtied again). At every sync it reports the round that ended, for the round records.
// Every hook runs in the source's migration worker (or the snapshot writer's thread).

import { DirtyLog } from '../../guest/dirty-log.js';
import type { PendingBytes, SaveHandler } from '../handlers.js';
import { MigCounter, type MigrationBlock } from '../migration-block.js';
import { PageStatus, type PageState } from '../page-state.js';
import { RAM_SECTION_INSTANCE, RAM_SECTION_NAME, RAM_SECTION_VERSION, isZeroPage, type StreamWriter } from '../stream/index.js';
import type { PageSender } from './page-sender.js';

/** QEMU checks the clock every 64 pages and ends an iteration after 50 ms (MAX_WAIT). */
const PAGES_BETWEEN_CLOCK_CHECKS = 64;
const MAX_ITERATION_MS = 50;

/** What one round (from one dirty sync to the next) did, reported at the sync that ends it. */
export interface RamRound {
  /** Pages the sync found dirtied during the round. */
  readonly dirtyPages: number;
  /** Pages sent during the round (zero pages included). */
  readonly pagesSent: number;
  readonly zeroPages: number;
  /** Bytes of RAM still to send after the sync. */
  readonly remainingBytes: number;
}

export interface RamSaveInput {
  /** Guest RAM (shared with the vCPU). */
  readonly ram: Uint8Array;
  /** The vCPU's dirty log, one flag per page. */
  readonly dirtyLog: SharedArrayBuffer;
  readonly pageSize: number;
  readonly blockName: string;
  readonly sender: PageSender;
  /** Counters for query-migrate (a private block when nobody reads them, e.g. a snapshot). */
  readonly block: MigrationBlock;
  /** Shared page state for the memory map; null when nobody draws it. */
  readonly pageState?: PageState | null;
  /** Called at every dirty sync but the setup one, with the round that sync ended. */
  readonly onSync?: (round: RamRound) => void;
  /**
   * The machine is stopped (a snapshot): an iteration sends every page in one PART, waiting for
   * the channel to drain in place rather than ending the part, with no time bound.
   */
  readonly onePass?: boolean;
  /** postcopy-ram: what is left may be sent after the switchover (pending says postcopyable). */
  readonly postcopy?: boolean;
}

export class RamSaveHandler implements SaveHandler {
  readonly name = RAM_SECTION_NAME;
  readonly instanceId = RAM_SECTION_INSTANCE;
  readonly version = RAM_SECTION_VERSION;
  readonly minimumVersion = RAM_SECTION_VERSION;
  readonly kind = 'iterable' as const;

  readonly pageCount: number;
  protected readonly ram: Uint8Array;
  protected readonly pageSize: number;
  protected readonly blockName: string;
  protected sender: PageSender;
  protected readonly block: MigrationBlock;
  protected readonly pageState: PageState | null;
  private readonly onSync: ((round: RamRound) => void) | undefined;
  private readonly dirty: DirtyLog;
  protected toSend: Uint8Array;
  protected toSendCount = 0;
  protected cursor = 0;
  /** Dirty-rate bookkeeping, per QEMU's migration_bitmap_sync: pages found over ≥ 1 s. */
  private periodStart = performance.now();
  private periodPages = 0;
  private roundPages = 0;
  private roundZeroPages = 0;
  private readonly onePass: boolean;
  private readonly postcopy: boolean;
  /** Postcopy: true when a page request waits, so an iteration ends early to serve it. */
  urgent: (() => boolean) | null = null;

  constructor(input: RamSaveInput) {
    this.ram = input.ram;
    this.pageSize = input.pageSize;
    this.blockName = input.blockName;
    this.sender = input.sender;
    this.block = input.block;
    this.pageState = input.pageState ?? null;
    this.onSync = input.onSync;
    this.onePass = input.onePass ?? false;
    this.postcopy = input.postcopy ?? false;
    this.pageCount = input.ram.length / input.pageSize;
    this.toSend = new Uint8Array(this.pageCount);
    this.dirty = new DirtyLog(input.dirtyLog);
  }

  get remainingBytes(): number {
    return this.toSendCount * this.pageSize;
  }

  /** Every page must be sent once; the START part is the block list. */
  setup(): void {
    this.dirty.clearAll();
    this.toSend.fill(1);
    this.toSendCount = this.pageCount;
    // Every page is to be sent in round 1 (QEMU's bitmap starts all ones): the map says so.
    this.pageState?.fill(PageStatus.DIRTY);
    this.block.add(MigCounter.DIRTY_SYNC_COUNT, 1);
    this.block.set(MigCounter.TOTAL, this.ram.length);
    this.publishRemaining();
    const rw = this.sender.main.ram;
    rw.writeMemSize([{ name: this.blockName, length: this.ram.length }]);
    rw.writeEos();
  }

  /** QEMU's ram_save_pending: sync the dirty log when what is left would fit in the downtime. */
  pending(thresholdBytes: number): PendingBytes {
    // Also sync when nothing is left: before the first bandwidth estimate (100 ms in) the
    // threshold is 0, and a small RAM is sent once over by then. QEMU never gets there that fast;
    // without this the first pass went straight to the stop-and-copy with the whole dirty set,
    // whatever the downtime-limit (a 1 ms limit gave 126 ms of downtime).
    if (this.remainingBytes < thresholdBytes || this.remainingBytes === 0) this.sync();
    return this.postcopy ? { precopyOnly: 0, postcopyable: this.remainingBytes } : { precopyOnly: this.remainingBytes, postcopyable: 0 };
  }

  /**
   * One PART's worth of pages: until the rate limit is used up, the channels want draining,
   * 50 ms pass, or nothing is left. Resolves true when nothing is left to send for now.
   */
  async iterate(): Promise<boolean> {
    const start = performance.now();
    const s = this.sender;
    let sent = 0;
    while (this.toSendCount > 0) {
      if (this.onePass) {
        if (s.error) break;
        if (s.needsDrain) await s.ready();
      } else {
        if (s.rateLimitExceeded() || s.needsDrain || s.error) break;
        if (sent % PAGES_BETWEEN_CLOCK_CHECKS === 0 && sent > 0 && performance.now() - start > MAX_ITERATION_MS) break;
        if (this.urgent?.()) break;
      }
      this.sendPage(this.nextDirtyPage());
      sent++;
    }
    this.publishRemaining();
    await s.flush();
    s.main.ram.writeEos();
    return this.toSendCount === 0;
  }

  /** The stop-and-copy: the guest is stopped, so one last sync and every remaining page. */
  async completePrecopy(w: StreamWriter): Promise<void> {
    this.sync();
    while (this.toSendCount > 0 && !this.sender.error) {
      this.sendPage(this.nextDirtyPage());
      // A snapshot of a big RAM must not queue all of it in memory: let the sink drain.
      if (w.needsDrain) await w.ready();
    }
    this.publishRemaining();
    await this.sender.flush();
    this.sender.main.ram.writeEos();
    // The stop-and-copy is a round of its own: no sync closes it, its last page does.
    this.onSync?.({ dirtyPages: 0, pagesSent: this.roundPages, zeroPages: this.roundZeroPages, remainingBytes: 0 });
    this.roundPages = 0;
    this.roundZeroPages = 0;
  }

  cleanup(): void {
    this.toSend = new Uint8Array(0);
    this.toSendCount = 0;
  }

  /** Moves every page the guest dirtied since the last sync into the to-send bitmap. */
  sync(): void {
    let found = 0;
    const flags = this.dirty.flags;
    const ps = this.pageState?.bytes;
    for (let p = 0; p < this.pageCount; p++) {
      // A cheap plain read first; only a set flag is taken atomically (the take is what orders).
      if (flags[p] === 0 || !this.dirty.take(p)) {
        // 'sent' means sent this round: a page not dirtied again is clean from now on.
        if (ps && ps[p] === PageStatus.SENT) ps[p] = PageStatus.CLEAN;
        continue;
      }
      if (this.toSend[p] === 0) {
        this.toSend[p] = 1;
        this.toSendCount++;
      }
      if (ps) ps[p] = PageStatus.DIRTY;
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
    const round: RamRound = { dirtyPages: found, pagesSent: this.roundPages, zeroPages: this.roundZeroPages, remainingBytes: this.remainingBytes };
    this.roundPages = 0;
    this.roundZeroPages = 0;
    this.onSync?.(round);
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

  protected sendPage(page: number): void {
    this.toSend[page] = 0;
    this.toSendCount--;
    const offset = page * this.pageSize;
    if (isZeroPage(this.ram, offset, this.pageSize)) {
      this.sender.sendZeroPage(this.blockName, offset);
      this.block.add(MigCounter.DUPLICATE, 1);
      this.roundZeroPages++;
    } else {
      this.sender.sendPage(this.blockName, offset, this.ram, offset);
      this.block.add(MigCounter.NORMAL, 1);
    }
    this.roundPages++;
    if (this.pageState) this.pageState.bytes[page] = PageStatus.SENT;
    this.block.add(MigCounter.PAGES_THIS_ROUND, 1);
  }

  protected publishRemaining(): void {
    this.block.set(MigCounter.REMAINING, this.remainingBytes);
  }
}
