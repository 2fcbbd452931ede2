// The `ram` section's records (QEMU migration/ram.c, section version 4). Every record starts with
// a be64 holding a page-aligned offset in its RAM block with flags in the low bits; the block
// name follows unless CONTINUE says "same block as the previous record". The writer tracks that
// block; the reader validates every record against the local blocks before anything reaches
// guest RAM, and hands page data to its visitor as a view (copied once, by the visitor).

import { StreamFormatError, hex } from './errors.js';
import {
  ENCODING_FLAG_XBZRLE,
  RAM_FLAGS_KNOWN,
  RECV_BITMAP_ENDING,
  RamFlag,
  TARGET_PAGE_SIZE,
  compressPageBound,
} from './format.js';
import type { StreamReader } from './stream-reader.js';
import type { StreamWriter } from './stream-writer.js';

export interface RamBlock {
  /** QEMU's idstr, e.g. 'riscv_virt_board.ram'. */
  readonly name: string;
  /** used_length in bytes, a multiple of the page size. */
  readonly length: number;
}

const TWO_32 = 2 ** 32;

// ---- zero pages -------------------------------------------------------------------------------------

const wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();

function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  let v = wordViews.get(buffer);
  if (!v) {
    v = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    wordViews.set(buffer, v);
  }
  return v;
}

/**
 * True when `size` bytes of `bytes` from `offset` are all zero. Compares 32-bit words, four at a
 * time, through one cached view per buffer (no allocation per call); works on shared guest RAM.
 */
export function isZeroPage(bytes: Uint8Array, offset = 0, size = TARGET_PAGE_SIZE): boolean {
  if (offset < 0 || offset + size > bytes.length) throw new RangeError(`isZeroPage(${offset}, ${size}) outside ${bytes.length} bytes`);
  const start = bytes.byteOffset + offset;
  if ((start & 3) !== 0 || (size & 15) !== 0) {
    for (let i = 0; i < size; i++) if (bytes[offset + i] !== 0) return false;
    return true;
  }
  const w = wordsOf(bytes.buffer);
  const end = (start + size) >>> 2;
  for (let i = start >>> 2; i < end; i += 4) {
    if ((w[i]! | w[i + 1]! | w[i + 2]! | w[i + 3]!) !== 0) return false;
  }
  return true;
}

// ---- writing ----------------------------------------------------------------------------------------

/** Writes RAM records on one channel, tracking the last block for CONTINUE. */
export class RamWriter {
  private lastBlock: string | null = null;
  private readonly lengths = new Map<string, number>();

  constructor(
    private readonly w: StreamWriter,
    readonly pageSize: number = TARGET_PAGE_SIZE,
  ) {}

  /** Forget the last block, so the next record names its block (a new channel or restart). */
  resetContinue(): void {
    this.lastBlock = null;
  }

  /** The setup record: total RAM with MEM_SIZE, then each block's name and length. Follow with writeEos(). */
  writeMemSize(blocks: readonly RamBlock[]): void {
    let total = 0;
    for (const b of blocks) {
      if (!Number.isSafeInteger(b.length) || b.length <= 0 || b.length % this.pageSize !== 0) {
        throw new RangeError(`RAM block '${b.name}' length ${b.length} is not a positive multiple of the page size`);
      }
      total += b.length;
      this.lengths.set(b.name, b.length);
    }
    this.w.putBe64Parts(Math.floor(total / TWO_32), (total >>> 0) | RamFlag.MEM_SIZE);
    for (const b of blocks) {
      this.w.putCountedString(b.name);
      this.w.putBe64(b.length);
    }
  }

  /** A whole page: `pageSize` bytes of `data` from `dataOffset` (e.g. guest RAM at the page). */
  writePage(block: string, offset: number, data: Uint8Array, dataOffset = 0): void {
    this.header(block, offset, RamFlag.PAGE);
    this.w.putBytes(data, dataOffset, this.pageSize);
  }

  /** A page filled with one byte (QEMU only ever sends 0). */
  writeZeroPage(block: string, offset: number, fill = 0): void {
    this.header(block, offset, RamFlag.ZERO);
    this.w.putU8(fill);
  }

  /** An XBZRLE-encoded page: encoding byte, be16 length, the encoded bytes. */
  writeXbzrlePage(block: string, offset: number, encoded: Uint8Array): void {
    if (encoded.length > this.pageSize) throw new RangeError(`XBZRLE data of ${encoded.length} bytes exceeds a page`);
    this.header(block, offset, RamFlag.XBZRLE);
    this.w.putU8(ENCODING_FLAG_XBZRLE);
    this.w.putBe16(encoded.length);
    this.w.putBytes(encoded);
  }

  /** A zlib-compressed page: be32 length, the compressed bytes. */
  writeCompressedPage(block: string, offset: number, compressed: Uint8Array): void {
    const bound = compressPageBound(this.pageSize);
    if (compressed.length > bound) throw new RangeError(`compressed page of ${compressed.length} bytes exceeds ${bound}`);
    this.header(block, offset, RamFlag.COMPRESS_PAGE);
    this.w.putBe32(compressed.length);
    this.w.putBytes(compressed);
  }

  /** End of this part of the section. */
  writeEos(): void {
    this.w.putBe64Parts(0, RamFlag.EOS);
  }

  /** Multifd channels synchronised (nothing follows). */
  writeMultifdFlush(): void {
    this.w.putBe64Parts(0, RamFlag.MULTIFD_FLUSH);
  }

  private header(block: string, offset: number, flag: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % this.pageSize !== 0) {
      throw new RangeError(`RAM offset 0x${hex(offset)} is not page aligned`);
    }
    const length = this.lengths.get(block);
    if (length !== undefined && offset >= length) throw new RangeError(`RAM offset 0x${hex(offset)} is outside block '${block}'`);
    const hi = Math.floor(offset / TWO_32);
    const lo = offset >>> 0;
    if (block === this.lastBlock) {
      this.w.putBe64Parts(hi, lo | flag | RamFlag.CONTINUE);
    } else {
      this.w.putBe64Parts(hi, lo | flag);
      this.w.putCountedString(block);
      this.lastBlock = block;
    }
  }
}

// ---- reading ----------------------------------------------------------------------------------------

/** Receives validated records. Page data arguments are views into the stream: copy, don't keep. */
export interface RamVisitor {
  memSize?(blocks: readonly RamBlock[], totalBytes: number): void;
  page(block: RamBlock, offset: number, data: Uint8Array): void;
  zeroPage(block: RamBlock, offset: number, fill: number): void;
  /** Required only if the stream carries XBZRLE pages (the decoder checks the data itself). */
  xbzrlePage?(block: RamBlock, offset: number, encoded: Uint8Array): void;
  /** Required only if compressed pages are allowed; a promise holds the reader (a full decompress backlog). */
  compressedPage?(block: RamBlock, offset: number, compressed: Uint8Array): void | Promise<void>;
  /** The multifd channels are synced to here; a promise holds the reader until they are. */
  multifdFlush?(): void | Promise<void>;
}

export interface RamReaderOptions {
  /** Accept COMPRESS_PAGE records (QEMU refuses them unless compression is on). */
  allowCompressed?: boolean;
  pageSize?: number;
}

export interface RamPartStats {
  records: number;
  pages: number;
  zeroPages: number;
  xbzrlePages: number;
  compressedPages: number;
}

function unknownFlags(flags: number): StreamFormatError {
  return new StreamFormatError('unknown-ram-flags', `Unknown combination of migration flags: 0x${hex(flags)}`);
}

/**
 * Reads RAM records for one channel. The last block named persists across parts of the section,
 * as in QEMU (a CONTINUE may follow a record of an earlier part).
 */
export class RamReader {
  private readonly blocks = new Map<string, RamBlock>();
  private lastBlock: RamBlock | null = null;
  private readonly pageSize: number;
  private readonly allowCompressed: boolean;

  constructor(
    private readonly r: StreamReader,
    localBlocks: readonly RamBlock[],
    options: RamReaderOptions = {},
  ) {
    for (const b of localBlocks) this.blocks.set(b.name, b);
    this.pageSize = options.pageSize ?? TARGET_PAGE_SIZE;
    this.allowCompressed = options.allowCompressed ?? false;
  }

  /** Reads records until EOS (one part of the section), giving each to the visitor. */
  async readPart(visitor: RamVisitor): Promise<RamPartStats> {
    const r = this.r;
    const pageSize = this.pageSize;
    const mask = pageSize - 1;
    const stats: RamPartStats = { records: 0, pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0 };
    for (;;) {
      if (!r.has(8)) await r.ensure(8);
      const hi = r.getBe32();
      const lo = r.getBe32();
      const flags = lo & mask;
      const offset = hi * TWO_32 + ((lo & ~mask) >>> 0);
      stats.records++;
      if ((flags & ~RAM_FLAGS_KNOWN) !== 0) throw r.fail(unknownFlags(flags));
      if (flags & RamFlag.COMPRESS_PAGE && !this.allowCompressed) {
        throw r.fail(new StreamFormatError('unexpected-compressed-page', 'Received an unexpected compressed page'));
      }
      const kind = flags & ~RamFlag.CONTINUE;
      switch (kind) {
        case RamFlag.PAGE: {
          const block = this.continued(flags, offset) ?? (await this.named(offset));
          if (!r.has(pageSize)) await r.ensure(pageSize);
          visitor.page(block, offset, r.getBytes(pageSize));
          stats.pages++;
          break;
        }
        case RamFlag.ZERO: {
          const block = this.continued(flags, offset) ?? (await this.named(offset));
          if (!r.has(1)) await r.ensure(1);
          visitor.zeroPage(block, offset, r.getU8());
          stats.zeroPages++;
          break;
        }
        case RamFlag.XBZRLE: {
          const block = this.continued(flags, offset) ?? (await this.named(offset));
          if (!r.has(3)) await r.ensure(3);
          const encoding = r.getU8();
          const len = r.getBe16();
          if (encoding !== ENCODING_FLAG_XBZRLE) {
            throw r.fail(new StreamFormatError('bad-xbzrle', 'Failed to load XBZRLE page - wrong compression!'));
          }
          if (len > pageSize) throw r.fail(new StreamFormatError('bad-xbzrle', 'Failed to load XBZRLE page - len overflow!'));
          if (!visitor.xbzrlePage) throw r.fail(new StreamFormatError('bad-xbzrle', `Failed to decompress XBZRLE page at ${hex(offset)}`));
          if (!r.has(len)) await r.ensure(len);
          visitor.xbzrlePage(block, offset, r.getBytes(len));
          stats.xbzrlePages++;
          break;
        }
        case RamFlag.COMPRESS_PAGE: {
          const block = this.continued(flags, offset) ?? (await this.named(offset));
          const len = await r.readBe32();
          if (len > compressPageBound(pageSize)) {
            throw r.fail(new StreamFormatError('bad-compressed-length', `Invalid compressed data length: ${len | 0}`));
          }
          if (!visitor.compressedPage) throw r.fail(new StreamFormatError('unexpected-compressed-page', 'Received an unexpected compressed page'));
          if (!r.has(len)) await r.ensure(len);
          const waiting = visitor.compressedPage(block, offset, r.getBytes(len));
          stats.compressedPages++;
          if (waiting) await waiting;
          break;
        }
        case RamFlag.MEM_SIZE:
          await this.readBlockList(offset, visitor);
          break;
        case RamFlag.MULTIFD_FLUSH: {
          const waiting = visitor.multifdFlush?.();
          if (waiting) await waiting;
          break;
        }
        case RamFlag.EOS:
          return stats;
        default:
          throw r.fail(new StreamFormatError('bad-ram-flags', `Unknown combination of migration flags: 0x${hex(flags)}`));
      }
    }
  }

  /** The previous record's block on CONTINUE (synchronously: no await per page), range-checked. */
  private continued(flags: number, offset: number): RamBlock | null {
    if (!(flags & RamFlag.CONTINUE)) return null;
    const block = this.lastBlock;
    if (!block) throw this.r.fail(new StreamFormatError('ram-continue-without-block', 'Ack, bad migration stream!'));
    return this.inBlock(block, offset);
  }

  /** The block a record names, range-checked. */
  private async named(offset: number): Promise<RamBlock> {
    const name = await this.r.readCountedString();
    const found = this.blocks.get(name);
    if (!found) throw this.r.fail(new StreamFormatError('unknown-ramblock', `Can't find block ${name}`));
    this.lastBlock = found;
    return this.inBlock(found, offset);
  }

  private inBlock(block: RamBlock, offset: number): RamBlock {
    if (offset >= block.length) throw this.r.fail(new StreamFormatError('illegal-ram-offset', `Illegal RAM offset ${hex(offset)}`));
    return block;
  }

  /** The MEM_SIZE block list: every block known here, with the same length, adding up to the total. */
  private async readBlockList(total: number, visitor: RamVisitor): Promise<void> {
    const r = this.r;
    const list: RamBlock[] = [];
    let remaining = total;
    while (remaining > 0) {
      const name = await r.readCountedString();
      const length = await r.readBe64();
      const local = this.blocks.get(name);
      if (!local) throw r.fail(new StreamFormatError('unknown-ramblock', `Unknown ramblock "${name}", cannot accept migration`));
      if (length !== local.length) {
        throw r.fail(
          new StreamFormatError('ram-size-mismatch', `Size mismatch: ${name}: 0x${hex(length)} != 0x${hex(local.length)}: Invalid argument`),
        );
      }
      remaining -= length;
      if (remaining < 0) {
        throw r.fail(new StreamFormatError('ram-total-mismatch', `RAM block list adds up to more than the 0x${hex(total)} bytes MEM_SIZE announced`));
      }
      list.push(local);
    }
    visitor.memSize?.(list, total);
  }
}

// ---- received bitmap (postcopy recovery) --------------------------------------------------------------

/** Bytes of a received bitmap for `pages` pages: one bit each, rounded up to whole 64-bit words. */
export function recvBitmapBytes(pages: number): number {
  return Math.ceil(Math.ceil(pages / 8) / 8) * 8;
}

/** Packs one flag byte per page into QEMU's little-endian bitmap (bit i = page i). */
export function packRecvBitmap(flags: Uint8Array): Uint8Array {
  const out = new Uint8Array(recvBitmapBytes(flags.length));
  for (let i = 0; i < flags.length; i++) if (flags[i]) out[i >>> 3]! |= 1 << (i & 7);
  return out;
}

export function bitmapTest(bitmap: Uint8Array, page: number): boolean {
  return ((bitmap[page >>> 3]! >>> (page & 7)) & 1) === 1;
}

/** What follows a RECV_BITMAP return-path message: be64 size, the bitmap, be64 end mark. */
export function writeRecvBitmap(w: StreamWriter, bitmap: Uint8Array): void {
  w.putBe64(bitmap.length);
  w.putBytes(bitmap);
  w.putBe64Big(RECV_BITMAP_ENDING);
}

/** Reads a received bitmap for `block` (`pages` pages), with ram.c's size and end-mark checks. */
export async function readRecvBitmap(r: StreamReader, block: string, pages: number): Promise<Uint8Array> {
  const expected = recvBitmapBytes(pages);
  const size = await r.readBe64();
  if (size !== expected) {
    throw r.fail(new StreamFormatError('bad-bitmap', `ramblock '${block}' bitmap size mismatch (0x${hex(size)} != 0x${hex(expected)})`));
  }
  const bits = await r.readBytes(size);
  const end = await r.readBe64Big();
  if (end !== RECV_BITMAP_ENDING) {
    throw r.fail(new StreamFormatError('bad-bitmap', `ramblock '${block}' end mark incorrect: 0x${end.toString(16)}`));
  }
  return bits;
}
