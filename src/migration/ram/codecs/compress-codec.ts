// The source's compress codec (QEMU's compress threads, `compress` capability): every non-zero
// page goes to the pool and leaves as a COMPRESS_PAGE record, in the order it was queued (the
// page sender chains the answers). Statistics are QEMU 3.1's `compression` member of
// query-migrate: pages, busy, busy-rate, compressed-size, compression-rate.

import { MigCounter, type MigrationBlock } from '../../migration-block.js';
import type { EncodedPage, PageCodec } from '../page-sender.js';
import type { CodecPool } from './codec-pool.js';

/** Pages in the pool at most: enough to keep every worker busy, bounded memory. */
const PAGES_IN_FLIGHT_PER_WORKER = 64;

export class CompressCodec implements PageCodec {
  readonly name = 'compress';
  readonly maxInFlight: number;
  pages = 0;
  compressedSize = 0;
  private periodPages = 0;
  private periodBytes = 0;
  private periodBusy = 0;
  private periodSubmitted = 0;

  constructor(
    private readonly pool: CodecPool,
    private readonly pageSize: number,
    private readonly block: MigrationBlock | null = null,
  ) {
    this.maxInFlight = pool.size * PAGES_IN_FLIGHT_PER_WORKER;
  }

  encode(page: Uint8Array): Promise<EncodedPage | null> {
    return this.pool.compress(page).then((z) => {
      if (!z) return null;
      this.pages++;
      this.compressedSize += z.length;
      this.publish();
      return { kind: 'compressed', bytes: z };
    });
  }

  /** A dirty sync: the rates are over the period since the last one (QEMU's migration_update_rates). */
  sync(): void {
    const b = this.block;
    if (!b) return;
    const pages = this.pages - this.periodPages;
    const bytes = this.compressedSize - this.periodBytes;
    const submitted = this.pool.submitted - this.periodSubmitted;
    if (submitted > 0) b.set(MigCounter.COMPRESS_BUSY_RATE, (this.pool.busy - this.periodBusy) / submitted);
    if (bytes > 0) b.set(MigCounter.COMPRESSION_RATE, (pages * this.pageSize) / bytes);
    this.periodPages = this.pages;
    this.periodBytes = this.compressedSize;
    this.periodBusy = this.pool.busy;
    this.periodSubmitted = this.pool.submitted;
  }

  private publish(): void {
    const b = this.block;
    if (!b) return;
    b.set(MigCounter.COMPRESS_PAGES, this.pages);
    b.set(MigCounter.COMPRESSED_SIZE, this.compressedSize);
    b.set(MigCounter.COMPRESS_BUSY, this.pool.busy);
    if (this.compressedSize > 0 && b.get(MigCounter.COMPRESSION_RATE) === 0) b.set(MigCounter.COMPRESSION_RATE, (this.pages * this.pageSize) / this.compressedSize);
  }
}
