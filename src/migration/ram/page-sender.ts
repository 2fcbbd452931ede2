// Where RAM pages leave the source (DESIGN §4): RAM save hands each page here and this decides
// which channel carries it and whether a codec encodes it first. Precopy today: one channel (the
// main stream) and no codec, a straight write into the stream writer's chunk — the same bytes and
// the same cost as writing the page directly. Later: several channels (multifd, postcopy's
// preempt channel for urgent pages) and codecs (XBZRLE, zlib, run in a worker pool) plug in
// here without RAM save or the thread loop changing.
//
// Ordering: records of one channel leave in the order they were queued, encoded or not; a
// caller that must write something after the pages of a part (the EOS) awaits flush() first.

import { RamWriter, type StreamWriter } from '../stream/index.js';

/** A page as a codec returns it; the sender writes the matching RAM record. */
export type EncodedPage =
  /** RAM_SAVE_FLAG_XBZRLE: encoded against the page's last sent copy. */
  | { readonly kind: 'xbzrle'; readonly bytes: Uint8Array }
  /** RAM_SAVE_FLAG_COMPRESS_PAGE: zlib. */
  | { readonly kind: 'compressed'; readonly bytes: Uint8Array }
  /** XBZRLE found the page identical to what the destination holds: nothing is sent. */
  | { readonly kind: 'unchanged' };

/**
 * The codec seam. `encode` gets a private copy of the page (the guest may write the original
 * meanwhile) and returns an encoding, or null to send the page plain (QEMU falls back the same
 * way when XBZRLE overflows or a page misses the cache). It may answer asynchronously.
 */
export interface PageCodec {
  readonly name: string;
  encode(page: Uint8Array, block: string, offset: number): EncodedPage | null | Promise<EncodedPage | null>;
  /** A page went as a ZERO record (XBZRLE's cache must learn the destination now holds zeroes). */
  zeroPage?(block: string, offset: number): void;
  /** Pages queued to the codec and not yet answered at which needsDrain() says "wait". */
  readonly maxInFlight?: number;
}

/** One channel the sender writes RAM records to. */
export interface PageChannel {
  readonly writer: StreamWriter;
  /** The channel's RAM record writer (it tracks the last block named, for CONTINUE). */
  readonly ram: RamWriter;
}

export interface PageSenderOptions {
  readonly pageSize: number;
  /** Undefined: pages go plain (precopy today). */
  readonly codec?: PageCodec;
}

export class PageSender {
  readonly channels: readonly PageChannel[];
  private readonly pageSize: number;
  private readonly codec: PageCodec | undefined;
  private next = 0;
  /** Encoded pages still in flight, chained so their records keep the order they were queued in. */
  private chain: Promise<void> | null = null;
  private inFlight = 0;
  private readonly maxInFlight: number;

  /** `writers[0]` is the main channel: rate limit and the section's own records go there. */
  constructor(writers: readonly StreamWriter[], options: PageSenderOptions) {
    if (writers.length === 0) throw new RangeError('a page sender needs at least one channel');
    this.pageSize = options.pageSize;
    this.codec = options.codec;
    this.maxInFlight = options.codec?.maxInFlight ?? Infinity;
    this.channels = writers.map((writer) => ({ writer, ram: new RamWriter(writer, options.pageSize) }));
  }

  /** The main channel (the migration stream). */
  get main(): PageChannel {
    return this.channels[0]!;
  }

  /** The first error of any channel (QEMUFile's sticky error, over the set). */
  get error(): Error | null {
    for (const c of this.channels) if (c.writer.error) return c.writer.error;
    return null;
  }

  /** True when no channel has room: the producer should await ready(). */
  get needsDrain(): boolean {
    if (this.inFlight >= this.maxInFlight) return true;
    for (const c of this.channels) if (!c.writer.needsDrain) return false;
    return true;
  }

  /** The migration's rate limit, kept on the main channel (QEMU's migration_rate_limit). */
  rateLimitExceeded(): boolean {
    return this.main.writer.rateLimitExceeded();
  }

  /** Resolves once some channel has room again (or one failed). */
  ready(): Promise<void> {
    if (this.inFlight >= this.maxInFlight && this.chain) return this.chain;
    if (this.channels.length === 1) return this.main.writer.ready();
    return Promise.race(this.channels.map((c) => c.writer.ready()));
  }

  /** A whole page: `pageSize` bytes of `data` from `dataOffset`. */
  sendPage(block: string, offset: number, data: Uint8Array, dataOffset = offset): void {
    if (!this.codec) {
      this.pick().ram.writePage(block, offset, data, dataOffset);
      return;
    }
    const copy = data.slice(dataOffset, dataOffset + this.pageSize);
    const encoded = this.codec.encode(copy, block, offset);
    const ch = this.pick();
    const async = encoded instanceof Promise;
    if (async) this.inFlight++;
    this.inOrder(ch, encoded, (e) => {
      if (async) this.inFlight--;
      if (e === null) ch.ram.writePage(block, offset, copy, 0);
      else if (e.kind === 'xbzrle') ch.ram.writeXbzrlePage(block, offset, e.bytes);
      else if (e.kind === 'compressed') ch.ram.writeCompressedPage(block, offset, e.bytes);
    });
  }

  /** A page of zeroes: a ZERO record (never worth a codec). */
  sendZeroPage(block: string, offset: number): void {
    this.codec?.zeroPage?.(block, offset);
    const ch = this.pick();
    if (this.chain === null) ch.ram.writeZeroPage(block, offset);
    else this.inOrder(ch, null, () => ch.ram.writeZeroPage(block, offset));
  }

  /** Resolves once every queued page is in its channel's writer (not yet on the wire). */
  async flush(): Promise<void> {
    while (this.chain) {
      const c = this.chain;
      await c;
      if (this.chain === c) this.chain = null;
    }
  }

  /** Round-robin over the channels that have room; the least backed-up one if none has. */
  private pick(): PageChannel {
    const chs = this.channels;
    if (chs.length === 1) return chs[0]!;
    for (let i = 0; i < chs.length; i++) {
      const ch = chs[(this.next + i) % chs.length]!;
      if (!ch.writer.needsDrain) {
        this.next = (this.next + i + 1) % chs.length;
        return ch;
      }
    }
    let best = chs[0]!;
    for (const ch of chs) if (ch.writer.pending < best.writer.pending) best = ch;
    return best;
  }

  private inOrder<T>(ch: PageChannel, value: T | Promise<T>, write: (v: T) => void): void {
    if (this.chain === null && !(value instanceof Promise)) {
      write(value);
      return;
    }
    const prev = this.chain ?? Promise.resolve();
    this.chain = prev
      .then(() => value)
      .then(write, (e: unknown) => ch.writer.setError(e instanceof Error ? e : new Error(String(e))));
  }
}
