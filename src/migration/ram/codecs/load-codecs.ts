// The destination's half of the page codecs (QEMU's ram_load for XBZRLE and COMPRESS_PAGE
// records, and its decompress threads): XBZRLE decodes in line over the page the destination
// holds; compressed pages go to the decompress pool, which inflates straight into the shared
// guest RAM, and every one of a part is waited for before the part ends (QEMU's
// wait_for_decompress_done at the end of ram_load), so a later record of the same page can
// never be overtaken. Without a pool (a snapshot check, a test) pages inflate in line.

import { StreamFormatError } from '../../stream/index.js';
import type { CodecPool } from './codec-pool.js';

/** Compressed pages a decompress worker may have queued before the loader waits for the pool. */
const BACKLOG_PER_WORKER = 16;
import { xbzrleDecode } from './xbzrle.js';
import { decompressPage } from './zlib-page.js';

export interface LoadCodecOptions {
  ram: Uint8Array;
  pageSize: number;
  /** decompress-threads workers; null: inflate in line. */
  pool?: Pick<CodecPool, 'size' | 'decompress' | 'terminate'> | null;
  /** The `decompress-error-check` global: a page that does not inflate fails the load. */
  errorCheck: boolean;
}

export class LoadCodecs {
  private waiting: Promise<void>[] = [];
  private firstError: Error | null = null;
  xbzrlePages = 0;
  compressedPages = 0;

  constructor(private readonly o: LoadCodecOptions) {}

  xbzrle(offset: number, encoded: Uint8Array): void {
    const host = this.o.ram.subarray(offset, offset + this.o.pageSize);
    if (xbzrleDecode(encoded, host) < 0) throw new StreamFormatError('bad-xbzrle', 'Failed to load XBZRLE page - decode error!');
    this.xbzrlePages++;
  }

  /**
   * A compressed page: inflated in line, or handed to the pool. The pool's backlog is bounded
   * (QEMU's loader waits for a free decompress thread): once it is full this returns a promise,
   * and the reader reads nothing more until the pages in flight have landed.
   */
  compressed(offset: number, data: Uint8Array): Promise<void> | void {
    this.compressedPages++;
    const pool = this.o.pool;
    if (!pool) {
      try {
        decompressPage(data, this.o.ram.subarray(offset, offset + this.o.pageSize));
      } catch (e) {
        this.failed(e);
      }
      return;
    }
    this.waiting.push(pool.decompress(offset, data).catch((e: unknown) => this.failed(e)));
    if (this.waiting.length >= BACKLOG_PER_WORKER * Math.max(1, pool.size)) return this.settle();
  }

  /** Waits for every page in flight (failures are kept for drain()). */
  private async settle(): Promise<void> {
    const w = this.waiting;
    this.waiting = [];
    await Promise.all(w);
  }

  /** End of a part: every page of it is in RAM. Throws the first decompression failure. */
  async drain(): Promise<void> {
    if (this.waiting.length) {
      const w = this.waiting;
      this.waiting = [];
      await Promise.all(w);
    }
    if (this.firstError) throw this.firstError;
  }

  cleanup(): void {
    this.o.pool?.terminate();
  }

  private failed(e: unknown): void {
    if (!this.o.errorCheck) return; // QEMU without decompress-error-check leaves the page as it was
    this.firstError ??= new StreamFormatError('bad-value', `decompress data failed${e instanceof Error ? `: ${e.message}` : ''}`);
  }
}
