// The source's XBZRLE codec (QEMU's save_xbzrle_page): after the first pass, a page found in the
// cache goes as its XBZRLE encoding against the cached copy, which then becomes the page as sent;
// a page not cached is cached and goes plain (a cache miss); one whose encoding would not fit a
// page goes plain too (an overflow) and refreshes the cache. An unchanged page is not sent. It
// runs in the migration worker, in line: the cache must advance in the order pages are queued.
//
// The cache mirrors what the destination holds, so a page that leaves as a ZERO record is cached
// as zeroes (QEMU's xbzrle_cache_zero_page).

import { MigCounter, type MigrationBlock } from '../../migration-block.js';
import type { EncodedPage, PageCodec } from '../page-sender.js';
import { PageCache } from './page-cache.js';
import { xbzrleEncode } from './xbzrle.js';

/** Bytes of a RAM record's header with CONTINUE (be64) plus the XBZRLE encoding byte and be16. */
const XBZRLE_RECORD_OVERHEAD = 8 + 1 + 2;

export interface XbzrleStats {
  pages: number;
  bytes: number;
  cacheMiss: number;
  overflow: number;
  unchanged: number;
}

export class XbzrleCodec implements PageCodec {
  readonly name = 'xbzrle';
  readonly cache: PageCache;
  readonly stats: XbzrleStats = { pages: 0, bytes: 0, cacheMiss: 0, overflow: 0, unchanged: 0 };
  /** The dirty-sync round (the cache's notion of age). */
  private round = 0;
  /** The first pass sends everything plain and caches nothing (QEMU's ram_bulk_stage). */
  private bulk = true;
  /** The stop-and-copy: nothing is sent after it, so the cache is no longer updated. */
  private lastStage = false;
  private readonly encoded: Uint8Array;
  private readonly zero: Uint8Array;
  private lookups = 0;
  private missesAtSync = 0;

  constructor(
    cacheSize: number,
    private readonly pageSize: number,
    ramSize: number,
    private readonly block: MigrationBlock | null = null,
  ) {
    this.cache = new PageCache(cacheSize, pageSize, ramSize);
    this.encoded = new Uint8Array(pageSize);
    this.zero = new Uint8Array(pageSize);
  }

  /** A dirty sync: a new round; the first one ends the bulk stage. Updates the miss rate. */
  sync(): void {
    if (this.round > 0) this.bulk = false;
    this.round++;
    const misses = this.stats.cacheMiss - this.missesAtSync;
    if (this.lookups > 0) this.block?.set(MigCounter.XBZRLE_CACHE_MISS_RATE, misses / this.lookups);
    this.lookups = 0;
    this.missesAtSync = this.stats.cacheMiss;
  }

  setLastStage(): void {
    this.lastStage = true;
  }

  encode(page: Uint8Array, _block: string, offset: number): EncodedPage | null {
    if (this.bulk) return null;
    this.lookups++;
    if (!this.cache.isCached(offset, this.round)) {
      this.stats.cacheMiss++;
      if (!this.lastStage) this.cache.insert(offset, page, this.round);
      this.publish();
      return null;
    }
    const cached = this.cache.get(offset);
    const len = xbzrleEncode(cached, page, this.encoded, this.pageSize);
    if (len === 0) {
      this.stats.unchanged++;
      return { kind: 'unchanged' };
    }
    if (len < 0) {
      this.stats.overflow++;
      cached.set(page);
      this.publish();
      return null;
    }
    if (!this.lastStage) cached.set(page);
    this.stats.pages++;
    this.stats.bytes += len + XBZRLE_RECORD_OVERHEAD;
    this.publish();
    return { kind: 'xbzrle', bytes: this.encoded.slice(0, len) };
  }

  zeroPage(_block: string, offset: number): void {
    if (this.bulk || this.lastStage) return;
    this.cache.insert(offset, this.zero, this.round);
  }

  private publish(): void {
    const b = this.block;
    if (!b) return;
    b.set(MigCounter.XBZRLE_PAGES, this.stats.pages);
    b.set(MigCounter.XBZRLE_BYTES, this.stats.bytes);
    b.set(MigCounter.XBZRLE_CACHE_MISS, this.stats.cacheMiss);
    b.set(MigCounter.XBZRLE_OVERFLOW, this.stats.overflow);
  }
}
