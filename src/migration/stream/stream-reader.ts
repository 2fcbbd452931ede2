// The receiving half of QEMUFile, built for a page loop: `await reader.ensure(n)` makes n bytes
// contiguous (one await per record, usually none: `has(n)` says whether the await can be
// skipped), then synchronous getters read them. Chunks from the source are used in place; only a
// record that straddles two chunks is stitched into a small buffer of its own. getBytes() returns
// a view, so page data is copied once, into guest RAM, by whoever consumes it.
//
// Errors: a source that ends early gives StreamEndError; bytes that make no sense give
// StreamFormatError (thrown by the parsers through fail()); the first error is kept and every
// later ensure() rejects with it.

import { StreamEndError, StreamFormatError, StreamIOError } from './errors.js';

// The source interface is defined once, beside the transports that implement it (types only).
import type { ByteSource } from '../../transport/bytes.js';
export type { ByteSource } from '../../transport/bytes.js';

export interface StreamReaderOptions {
  /** Largest run of bytes one ensure() may ask for; beyond it the stream is malformed. */
  maxEnsure?: number;
}

export const DEFAULT_MAX_ENSURE = 32 * 1024 * 1024;
const EMPTY = new Uint8Array(0);
const RESOLVED: Promise<void> = Promise.resolve();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A source over chunks already in memory. */
export function chunkSource(chunks: Iterable<Uint8Array>): ByteSource {
  const it = chunks[Symbol.iterator]();
  return {
    read() {
      const r = it.next();
      return Promise.resolve(r.done ? null : r.value);
    },
  };
}

export class StreamReader {
  private buf: Uint8Array<ArrayBufferLike> = EMPTY;
  private view: DataView<ArrayBufferLike> = new DataView(EMPTY.buffer);
  private pos = 0;
  private end = 0;
  /** Chunks received but not yet current, in order. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private sourceDone = false;
  private consumedBefore = 0;
  private receivedBytes = 0;
  private firstError: Error | null = null;
  private readonly maxEnsure: number;
  private abortWith: ((e: Error) => void) | null = null;
  private readonly aborted: Promise<never>;

  constructor(
    private readonly source: ByteSource,
    options: StreamReaderOptions = {},
  ) {
    this.maxEnsure = options.maxEnsure ?? DEFAULT_MAX_ENSURE;
    this.aborted = new Promise<never>((_, reject) => {
      this.abortWith = reject;
    });
    this.aborted.catch(() => {});
  }

  /** A reader over bytes already in memory (a saved snapshot, a PACKAGED payload). */
  static fromBytes(bytes: Uint8Array, options?: StreamReaderOptions): StreamReader {
    return new StreamReader(chunkSource([bytes]), options);
  }

  // ---- state --------------------------------------------------------------------------------

  /** Bytes consumed by getters so far (the stream offset of the next byte). */
  get position(): number {
    return this.consumedBefore + this.pos;
  }

  /** Bytes received from the source so far. */
  get received(): number {
    return this.receivedBytes;
  }

  /** Contiguous bytes readable right now without awaiting. */
  get available(): number {
    return this.end - this.pos;
  }

  get error(): Error | null {
    return this.firstError;
  }

  /**
   * Records `e` as the stream's error unless one is recorded already, and returns `e` so a
   * parser can write `throw reader.fail(new StreamFormatError(...))`.
   */
  fail<E extends Error>(e: E): E {
    if (!this.firstError) this.firstError = e;
    return e;
  }

  /** Aborts: pending and later reads fail with an I/O error; the source is told to stop. */
  shutdown(): void {
    const e = this.fail(new StreamIOError('Channel shut down: Input/output error'));
    this.abortWith?.(this.firstError ?? e);
    try {
      this.source.cancel?.();
    } catch {
      // being abandoned anyway
    }
  }

  // ---- making bytes available -----------------------------------------------------------------

  /** True when n bytes can be read synchronously now. */
  has(n: number): boolean {
    return this.end - this.pos >= n;
  }

  /** Makes n bytes contiguous at the read position. Rejects with StreamEndError at early EOF. */
  ensure(n: number): Promise<void> {
    if (this.end - this.pos >= n && !this.firstError) return RESOLVED;
    return this.fill(n);
  }

  /** True when the stream has ended exactly here (no byte left). */
  async atEnd(): Promise<boolean> {
    if (this.firstError) throw this.firstError;
    if (this.end - this.pos > 0 || this.pendingBytes > 0) return false;
    while (!this.sourceDone) {
      const chunk = await this.readSource();
      if (chunk && chunk.length > 0) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        return false;
      }
    }
    return true;
  }

  private async fill(n: number): Promise<void> {
    if (this.firstError) throw this.firstError;
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`ensure(${n})`);
    if (n > this.maxEnsure) {
      throw this.fail(new StreamFormatError('too-large', `record of ${n} bytes exceeds the ${this.maxEnsure}-byte limit`));
    }
    let avail = this.end - this.pos;
    if (avail >= n) return;
    while (avail + this.pendingBytes < n) {
      const chunk = await this.readSource();
      if (chunk === null) {
        throw this.fail(
          new StreamEndError(`Unexpected end of migration stream at offset ${this.position}: needed ${n} bytes, ${avail + this.pendingBytes} left`),
        );
      }
      if (chunk.length === 0) continue;
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    if (avail === 0) {
      // Use the next chunk in place when it alone holds the record (the common case).
      this.setCurrent(this.takePending());
      avail = this.end - this.pos;
      if (avail >= n) return;
    }
    // The record straddles chunks: stitch exactly its bytes together.
    const tmp = new Uint8Array(n);
    tmp.set(this.buf.subarray(this.pos, this.end));
    let at = avail;
    while (at < n) {
      const c = this.takePending();
      const want = n - at;
      if (c.length > want) {
        tmp.set(c.subarray(0, want), at);
        this.pending.unshift(c.subarray(want));
        this.pendingBytes += c.length - want;
        at = n;
      } else {
        tmp.set(c, at);
        at += c.length;
      }
    }
    this.setCurrent(tmp);
  }

  private takePending(): Uint8Array {
    const c = this.pending.shift()!;
    this.pendingBytes -= c.length;
    return c;
  }

  private setCurrent(chunk: Uint8Array): void {
    this.consumedBefore += this.pos;
    this.buf = chunk;
    this.view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.pos = 0;
    this.end = chunk.length;
  }

  private async readSource(): Promise<Uint8Array | null> {
    if (this.sourceDone) return null;
    let chunk: Uint8Array | null;
    try {
      chunk = await Promise.race([this.source.read(), this.aborted]);
    } catch (e) {
      if (this.firstError) throw this.firstError;
      const detail = e instanceof Error ? e.message : String(e);
      throw this.fail(new StreamIOError(`Unable to read from the migration channel: ${detail}`, { cause: e }));
    }
    if (chunk === null) {
      this.sourceDone = true;
      return null;
    }
    this.receivedBytes += chunk.length;
    return chunk;
  }

  // ---- synchronous getters (after ensure) ------------------------------------------------------

  getU8(): number {
    if (this.pos >= this.end) this.overrun(1);
    return this.buf[this.pos++]!;
  }

  getBe16(): number {
    if (this.pos + 2 > this.end) this.overrun(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  getBe32(): number {
    if (this.pos + 4 > this.end) this.overrun(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  /** A be64 as a number; values of 2^53 and above are malformed here (no address is that big). */
  getBe64(): number {
    if (this.pos + 8 > this.end) this.overrun(8);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi >= 0x20_0000) {
      throw this.fail(new StreamFormatError('too-large', `be64 value 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} is out of range`));
    }
    return hi * 2 ** 32 + lo;
  }

  getBe64Big(): bigint {
    if (this.pos + 8 > this.end) this.overrun(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  /** n bytes as a view into the reader's buffers (no copy; stays valid, the reader never reuses it). */
  getBytes(n: number): Uint8Array {
    if (this.pos + n > this.end) this.overrun(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  skip(n: number): void {
    if (this.pos + n > this.end) this.overrun(n);
    this.pos += n;
  }

  /** The byte `ahead` bytes past the read position, without consuming anything. */
  peekU8(ahead = 0): number {
    if (this.pos + ahead >= this.end) this.overrun(ahead + 1);
    return this.buf[this.pos + ahead]!;
  }

  /** A counted string whose bytes are already ensured (u8 length + bytes). */
  getCountedString(): string {
    const len = this.peekU8();
    if (this.pos + 1 + len > this.end) this.overrun(1 + len);
    this.pos += 1;
    return this.decode(this.getBytes(len));
  }

  private decode(bytes: Uint8Array): string {
    try {
      return decoder.decode(bytes);
    } catch {
      throw this.fail(new StreamFormatError('bad-value', `name at offset ${this.position - bytes.length} is not valid UTF-8`));
    }
  }

  private overrun(n: number): never {
    // A parser read without ensure(): a bug in this code base, not bad input.
    throw new RangeError(`StreamReader: read of ${n} bytes past the ${this.end - this.pos} ensured at offset ${this.position}`);
  }

  // ---- asynchronous conveniences ----------------------------------------------------------------

  async readU8(): Promise<number> {
    if (!this.has(1)) await this.fill(1);
    return this.getU8();
  }

  async readBe16(): Promise<number> {
    if (!this.has(2)) await this.fill(2);
    return this.getBe16();
  }

  async readBe32(): Promise<number> {
    if (!this.has(4)) await this.fill(4);
    return this.getBe32();
  }

  async readBe64(): Promise<number> {
    if (!this.has(8)) await this.fill(8);
    return this.getBe64();
  }

  async readBe64Big(): Promise<bigint> {
    if (!this.has(8)) await this.fill(8);
    return this.getBe64Big();
  }

  async readBytes(n: number): Promise<Uint8Array> {
    if (!this.has(n)) await this.fill(n);
    return this.getBytes(n);
  }

  /** QEMU's qemu_get_counted_string. */
  async readCountedString(): Promise<string> {
    if (!this.has(1)) await this.fill(1);
    const len = this.peekU8();
    if (!this.has(1 + len)) await this.fill(1 + len);
    return this.getCountedString();
  }
}
