// The outgoing migration's shared block: its status (compare-and-set from any thread, as QEMU's
// migrate_set_state), the words the migration and return-path workers signal each other with,
// and every query-migrate counter. The migration worker writes the counters as it goes, so
// query-migrate on the main thread reads exact, live numbers without asking anyone.

import { SharedBlock, sharedBlockBytes } from './shared-block.js';
import type { MigrationStatus } from './state.js';
import type { SwitchoverMessage } from './switchover.js';

/** Int32 words. */
export const MigWord = {
  STATUS: 0,
  /** Bumped by migrate-continue; the worker waits on it in pre-switchover. */
  CONTINUE: 1,
  /** 0 until the destination's SHUT arrives: then 1 (fine) or 2 (it failed). */
  RP_SHUT: 2,
  /** 1 once the return path broke (bad message, closed early). */
  RP_ERROR: 3,
  /** PONGs received. */
  PONGS: 4,
  /** Value of the last PONG. */
  LAST_PONG: 5,
  /**
   * The destination's word on the switchover, tagged with the migration it names: the id once it
   * said 'ready', minus the id once it said 'failed', 0 while it said nothing (destinationSaid).
   */
  DEST_READY: 6,
  /** The point of no return: Commit (switchover.ts); CAS by the worker (commit) or cancel (abandon). */
  COMMIT: 7,
  /** The migration's id once the destination confirmed it holds (and runs) the guest; else 0. */
  DEST_STARTED: 8,
  /** 1 once the link to the destination broke; set by the main thread. */
  LINK_LOST: 9,
  /** Three words of fault-test hold points (HoldPoints in switchover.ts): mask, reached, release. */
  HOLD: 10,
  /** This migration's id (switchover.ts newMigrationId): every control message names it. */
  MIGRATION: 13,
} as const;

/** Float64 counters (exact: all integers below 2^53). */
export const MigCounter = {
  TRANSFERRED: 0,
  DUPLICATE: 1,
  NORMAL: 2,
  DIRTY_SYNC_COUNT: 3,
  DIRTY_PAGES_RATE: 4,
  REMAINING: 5,
  TOTAL: 6,
  MBPS: 7,
  EXPECTED_DOWNTIME: 8,
  SETUP_TIME: 9,
  DOWNTIME: 10,
  TOTAL_TIME: 11,
  START_TIME: 12,
  POSTCOPY_REQUESTS: 13,
  /** Bytes per millisecond over the last 100 ms window (the bandwidth estimate). */
  BANDWIDTH: 14,
  /** Bytes the downtime limit allows to be left for the stop-and-copy (threshold_size). */
  THRESHOLD: 15,
  /** Iterations (RAM section parts) sent so far. */
  ITERATIONS: 16,
  /** Pages sent in the current dirty-sync round. */
  PAGES_THIS_ROUND: 17,
  // Issue 8's reducers (kept high in the block so other features can grow from 18 up).
  /** Bytes of XBZRLE records sent (query-migrate xbzrle-cache.bytes). */
  XBZRLE_BYTES: 20,
  XBZRLE_PAGES: 21,
  XBZRLE_CACHE_MISS: 22,
  /** Misses per page looked up over the last sync period, 0..1. */
  XBZRLE_CACHE_MISS_RATE: 23,
  XBZRLE_OVERFLOW: 24,
  /** Pages sent compressed (query-migrate compression.pages). */
  COMPRESS_PAGES: 25,
  /** Times a page waited because every compress worker was busy. */
  COMPRESS_BUSY: 26,
  COMPRESS_BUSY_RATE: 27,
  /** Bytes of zlib data sent. */
  COMPRESSED_SIZE: 28,
  /** Page bytes in / zlib bytes out. */
  COMPRESSION_RATE: 29,
  /** Bytes sent on the multifd channels. */
  MULTIFD_BYTES: 30,
  /** cpu-throttle-percentage auto-converge set (0: none). */
  THROTTLE: 31,
  /** The destination's wall clock when its guest started (its 'started' message), ms. */
  DEST_STARTED_AT: 32,
} as const;

const WORDS = 16;
const COUNTERS = 40;
export const MIGRATION_BLOCK_BYTES = sharedBlockBytes(WORDS, COUNTERS);

export class MigrationBlock extends SharedBlock {
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(MIGRATION_BLOCK_BYTES)) {
    super(buffer, WORDS, COUNTERS);
  }

  /** Starts over for migration `migration` (QEMU's migrate_init), keeping nothing of the last one. */
  reset(status: MigrationStatus, migration = 0): void {
    this.counters.fill(0);
    // Hold points a fault test armed before `migrate` stay armed; the point reached is cleared.
    for (let i = 1; i < WORDS; i++) if (i !== MigWord.HOLD) Atomics.store(this.words, i, 0);
    Atomics.store(this.words, MigWord.MIGRATION, migration);
    this.storeStatus(status);
  }

  /** The id of the migration this block belongs to now (0 before the first). */
  get migrationId(): number {
    return this.word(MigWord.MIGRATION);
  }

  /**
   * Writes a destination's switchover message where the migration worker waits for it, if it
   * names the migration this block belongs to: a late message from an earlier attempt is
   * dropped. The worker does this itself for a message on the switchover channel; the main
   * thread for one relayed on the control conversation (and again, harmlessly, when it logs
   * one the worker heard). False for a message dropped, or one that travels the other way.
   */
  noteFromDestination(m: SwitchoverMessage): boolean {
    const id = this.migrationId;
    if (id === 0 || m.migration !== id) return false;
    switch (m.switchover) {
      case 'ready':
        this.setWord(MigWord.DEST_READY, id);
        return true;
      case 'failed':
        this.setWord(MigWord.DEST_READY, -id);
        return true;
      case 'started':
        // When the guest really started, on the destination's clock (the downtime's end).
        if (m.at !== undefined) this.set(MigCounter.DEST_STARTED_AT, m.at);
        this.setWord(MigWord.DEST_STARTED, id);
        return true;
      default:
        return false;
    }
  }

  /** What the destination of migration `id` said: nothing yet, ready, or that it failed. */
  destinationSaid(id: number): 'nothing' | 'ready' | 'failed' {
    const v = this.word(MigWord.DEST_READY);
    return id !== 0 && v === id ? 'ready' : id !== 0 && v === -id ? 'failed' : 'nothing';
  }

  /** Whether the destination of migration `id` confirmed it holds the guest. */
  destinationStarted(id: number): boolean {
    return id !== 0 && this.word(MigWord.DEST_STARTED) === id;
  }
}
