// One page as QEMU's COMPRESS_PAGE record carries it: zlib (RFC 1950: deflate with its 2-byte
// header and Adler-32 trailer) of the whole page at compress-level, no longer than
// compressPageBound(page size). fflate in the pool's workers, by measurement (bench/zlib-codecs.mjs):
// per 4 KiB page it compresses about 2.2x and inflates about 4.7x faster than a
// CompressionStream per page, and its output is smaller.

import { unzlibSync, zlibSync } from 'fflate';
import { compressPageBound } from '../../stream/format.js';

export class DecompressError extends Error {
  override name = 'DecompressError';
}

/** zlib of `page` at `level` (0..9), or null if it would not fit the record's bound. */
export function compressPage(page: Uint8Array, level: number): Uint8Array | null {
  const z = zlibSync(page, { level: level as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9, mem: 4 });
  return z.length <= compressPageBound(page.length) ? z : null;
}

/**
 * Inflates `z` into `out` (exactly one page). Throws DecompressError on bad data or length.
 * The output buffer is one page and a byte, as QEMU's uncompress() into a page-sized buffer: a
 * record that inflates to more (a zlib bomb: a few KiB that expand to megabytes) is refused
 * without ever being held. Its decoding still runs over the record, which the record's own
 * bound (compressPageBound) limits: at most deflate's 1032:1, some 4 MiB of work per record.
 */
export function decompressPage(z: Uint8Array, out: Uint8Array): void {
  let page: Uint8Array;
  try {
    page = unzlibSync(z, { out: new Uint8Array(out.length + 1) });
  } catch (e) {
    throw new DecompressError(`decompress data failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (page.length > out.length) throw new DecompressError('decompress data failed: it inflates to more than a page');
  if (page.length !== out.length) throw new DecompressError(`decompress data failed: ${page.length} bytes, not a page`);
  out.set(page);
}
