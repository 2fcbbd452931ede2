// The sending half of QEMUFile: small big-endian puts go into fixed-size chunks; each full chunk
// goes to an asynchronous sink (a data channel, a MessagePort, IndexedDB, memory). Puts are
// synchronous so a page loop never awaits per byte; back-pressure is explicit: the producer awaits
// ready() (or checks needsDrain) at the points where it can afford to pause, the way QEMU's
// migration thread blocks only when its buffer is full.
//
// Also here, as in QEMUFile: exact byte counters, the first error kept and every later operation
// a no-op (callers check `error` at their natural checkpoints), shutdown, and the per-100 ms
// rate limit that migration.c applies to the main channel.

import { StreamIOError } from './errors.js';
import { BUFFER_DELAY_MS, XFER_LIMIT_RATIO } from './format.js';

// The sink interface is defined once, with the transports that implement it (types only: the
// stream layer imports no transport code and nothing from the guest).
import type { ByteSink } from '../../transport/bytes.js';
export type { ByteSink } from '../../transport/bytes.js';

/** Time source for the rate limiter, injectable so tests never depend on the wall clock. */
export interface RateClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: RateClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

export interface StreamWriterOptions {
  /** Bytes per chunk handed to the sink (data channels take at most 256 KiB per message). */
  chunkSize?: number;
  /** Bytes waiting for the sink above which ready() waits. Default: four chunks. */
  highWater?: number;
  clock?: RateClock;
}

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 256 * 1024;
const TWO_32 = 2 ** 32;

const encoder = new TextEncoder();

/** Encodes a QEMU counted string (u8 length + bytes), refusing what does not fit in the u8. */
export function encodeCountedString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length > 255) throw new RangeError(`counted string '${text.slice(0, 40)}…' is ${bytes.length} bytes; at most 255 fit`);
  return bytes;
}

export class StreamWriter {
  readonly chunkSize: number;
  readonly highWater: number;
  private readonly clock: RateClock;

  private chunk: Uint8Array;
  private view: DataView;
  private pos = 0;

  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private pumping: Promise<void> | null = null;
  private readyWaiters: Array<() => void> = [];

  private firstError: Error | null = null;
  private putBytesTotal = 0;
  private writtenBytes = 0;
  private isClosed = false;

  private limitPerWindow = 0;
  private windowStart: number;
  private windowStartBytes = 0;
  private urgentPending = false;
  private wakeSleeper: (() => void) | null = null;

  constructor(
    private readonly sink: ByteSink,
    options: StreamWriterOptions = {},
  ) {
    const size = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(size) || size < 64 || size > MAX_CHUNK_SIZE) {
      throw new RangeError(`chunk size ${size} is outside 64 bytes … 256 KiB`);
    }
    this.chunkSize = size;
    this.highWater = options.highWater ?? 4 * size;
    this.clock = options.clock ?? realClock;
    this.chunk = new Uint8Array(size);
    this.view = new DataView(this.chunk.buffer);
    this.windowStart = this.clock.now();
  }

  // ---- counters and state -------------------------------------------------------------------

  /** Every byte put so far, buffered or not (QEMU's qemu_file_transferred). */
  get transferred(): number {
    return this.putBytesTotal;
  }

  /** Bytes the sink has accepted. */
  get written(): number {
    return this.writtenBytes;
  }

  /** Bytes put but not yet accepted by the sink. */
  get pending(): number {
    return this.queuedBytes + this.pos;
  }

  /** The first error, or null. After an error every operation is a no-op. */
  get error(): Error | null {
    return this.firstError;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** True when the producer should await ready() before putting much more. */
  get needsDrain(): boolean {
    return this.queuedBytes > this.highWater && this.firstError === null;
  }

  /** Records `e` unless an error is already recorded (QEMU's qemu_file_set_error). */
  setError(e: Error): void {
    if (this.firstError) return;
    this.firstError = e;
    this.queue = [];
    this.queuedBytes = 0;
    this.releaseReadyWaiters();
    this.wakeSleeper?.();
  }

  // ---- puts ---------------------------------------------------------------------------------

  putU8(v: number): void {
    if (this.firstError) return;
    if (this.pos + 1 > this.chunkSize) this.spill();
    this.chunk[this.pos++] = v;
    this.putBytesTotal += 1;
  }

  putBe16(v: number): void {
    if (this.firstError) return;
    if (this.pos + 2 > this.chunkSize) this.spill();
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    this.putBytesTotal += 2;
  }

  putBe32(v: number): void {
    if (this.firstError) return;
    if (this.pos + 4 > this.chunkSize) this.spill();
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    this.putBytesTotal += 4;
  }

  /** A be64 from a non-negative safe integer (addresses, lengths, counters up to 2^53). */
  putBe64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`be64 value ${v} is not a non-negative safe integer`);
    this.putBe64Parts(Math.floor(v / TWO_32), v >>> 0);
  }

  /** A be64 given as its high and low 32-bit halves. */
  putBe64Parts(hi: number, lo: number): void {
    if (this.firstError) return;
    if (this.pos + 8 > this.chunkSize) this.spill();
    this.view.setUint32(this.pos, hi >>> 0);
    this.view.setUint32(this.pos + 4, lo >>> 0);
    this.pos += 8;
    this.putBytesTotal += 8;
  }

  putBe64Big(v: bigint): void {
    if (this.firstError) return;
    if (this.pos + 8 > this.chunkSize) this.spill();
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, v));
    this.pos += 8;
    this.putBytesTotal += 8;
  }

  /** Copies `length` bytes of `src` from `offset` (a typed-array copy per chunk, no byte loop). */
  putBytes(src: Uint8Array, offset = 0, length = src.length - offset): void {
    if (offset < 0 || length < 0 || offset + length > src.length) {
      throw new RangeError(`putBytes(${offset}, ${length}) is outside a ${src.length}-byte buffer`);
    }
    if (this.firstError) return;
    this.putBytesTotal += length;
    while (length > 0) {
      let room = this.chunkSize - this.pos;
      if (room === 0) {
        this.spill();
        room = this.chunkSize;
      }
      const n = length < room ? length : room;
      this.chunk.set(n === src.length ? src : src.subarray(offset, offset + n), this.pos);
      this.pos += n;
      offset += n;
      length -= n;
    }
  }

  /** QEMU's qemu_put_counted_string: u8 length, then the bytes (no NUL). */
  putCountedString(text: string): void {
    const bytes = encodeCountedString(text);
    this.putU8(bytes.length);
    this.putBytes(bytes);
  }

  // ---- draining -----------------------------------------------------------------------------

  /** Resolves once the bytes waiting for the sink are at most highWater (or on error). */
  ready(): Promise<void> {
    if (this.queuedBytes <= this.highWater || this.firstError) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Hands the partial chunk to the sink and waits until the sink has taken everything. */
  async flush(): Promise<void> {
    if (this.firstError) return;
    if (this.pos > 0) this.spill();
    while (this.pumping) await this.pumping;
  }

  /** Flushes, closes the sink, and returns the first error (QEMU's qemu_fclose). */
  async close(): Promise<Error | null> {
    if (this.isClosed) return this.firstError;
    await this.flush();
    this.isClosed = true;
    if (!this.firstError && this.sink.close) {
      try {
        await this.sink.close();
      } catch (e) {
        this.setError(toIOError(e, 'Unable to close the migration channel'));
      }
    }
    return this.firstError;
  }

  /** Aborts: records an I/O error (if none yet), drops what is queued, tells the sink. */
  shutdown(): void {
    this.setError(new StreamIOError('Channel shut down: Input/output error'));
    try {
      this.sink.shutdown?.();
    } catch {
      // the sink is being abandoned; its own failure to stop changes nothing
    }
  }

  // ---- rate limit (QEMU: qemu_file_rate_limit + migration_rate_limit) ------------------------

  /** Bytes per second; 0 means unlimited. Accounted per BUFFER_DELAY_MS window. */
  setRateLimit(bytesPerSecond: number): void {
    if (!(bytesPerSecond >= 0) || !Number.isFinite(bytesPerSecond)) throw new RangeError(`rate limit ${bytesPerSecond} is not a byte count`);
    this.limitPerWindow = bytesPerSecond / XFER_LIMIT_RATIO;
  }

  /** The byte budget of one window (0 = unlimited). */
  get rateLimitPerWindow(): number {
    return this.limitPerWindow;
  }

  /** Bytes put in the current window. */
  get rateLimitUsed(): number {
    return this.putBytesTotal - this.windowStartBytes;
  }

  /** Starts a fresh window now (QEMU's migration_rate_reset). */
  resetRateLimit(): void {
    this.windowStart = this.clock.now();
    this.windowStartBytes = this.putBytesTotal;
  }

  /**
   * True when the producer should stop putting for now: the current window's budget is spent,
   * or the stream has failed (as QEMU, an errored file is always "over the limit").
   */
  rateLimitExceeded(): boolean {
    if (this.firstError) return true;
    this.rollWindow(this.clock.now());
    return this.limitPerWindow > 0 && this.putBytesTotal - this.windowStartBytes > this.limitPerWindow;
  }

  /**
   * When over the limit, waits for the current window to end, or until kick() signals urgent
   * work (a postcopy page request). Resolves true when woken by kick(), as QEMU's
   * migration_rate_limit. Returns at once when not over the limit or after an error.
   */
  async waitForRateLimit(): Promise<boolean> {
    if (this.firstError) return false;
    if (this.urgentPending) {
      this.urgentPending = false;
      return true;
    }
    const now = this.clock.now();
    this.rollWindow(now);
    if (!(this.limitPerWindow > 0 && this.putBytesTotal - this.windowStartBytes > this.limitPerWindow)) return false;
    const ms = this.windowStart + BUFFER_DELAY_MS - now;
    let woken = false;
    await Promise.race([
      this.clock.sleep(ms),
      new Promise<void>((resolve) => {
        this.wakeSleeper = () => {
          woken = true;
          resolve();
        };
      }),
    ]);
    this.wakeSleeper = null;
    if (woken && this.urgentPending) {
      this.urgentPending = false;
      return true;
    }
    return false;
  }

  /** Urgent work arrived: end a rate-limit wait now, or make the next one return at once. */
  kick(): void {
    this.urgentPending = true;
    this.wakeSleeper?.();
  }

  // ---- internals ----------------------------------------------------------------------------

  private rollWindow(now: number): void {
    if (now >= this.windowStart + BUFFER_DELAY_MS) {
      this.windowStart = now;
      this.windowStartBytes = this.putBytesTotal;
    }
  }

  /** Hands the filled part of the current chunk to the sink and starts a fresh chunk. */
  private spill(): void {
    if (this.pos > 0) {
      const full = this.pos === this.chunkSize ? this.chunk : this.chunk.subarray(0, this.pos);
      this.enqueue(full);
    }
    // A new buffer every time: the sink owns the old one.
    this.chunk = new Uint8Array(this.chunkSize);
    this.view = new DataView(this.chunk.buffer);
    this.pos = 0;
  }

  private enqueue(chunk: Uint8Array): void {
    if (this.firstError) return;
    if (this.isClosed) {
      this.setError(new StreamIOError('write to a closed migration stream'));
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    if (!this.pumping) this.pumping = this.pump();
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.firstError) {
        const chunk = this.queue.shift()!;
        try {
          await this.sink.write(chunk);
        } catch (e) {
          this.setError(toIOError(e, 'Unable to write to the migration channel'));
          break;
        }
        this.writtenBytes += chunk.length;
        if (this.firstError) break; // setError() already emptied the queue and its count
        this.queuedBytes -= chunk.length;
        if (this.queuedBytes <= this.highWater) this.releaseReadyWaiters();
      }
    } finally {
      this.pumping = null;
      this.releaseReadyWaiters();
    }
  }

  private releaseReadyWaiters(): void {
    const waiters = this.readyWaiters;
    if (waiters.length === 0) return;
    this.readyWaiters = [];
    for (const w of waiters) w();
  }
}

function toIOError(e: unknown, what: string): Error {
  if (e instanceof StreamIOError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new StreamIOError(`${what}: ${detail}`, { cause: e });
}

/** A sink that keeps every chunk in memory: for tests, PACKAGED payloads, saved snapshots. */
export class BufferSink implements ByteSink {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  closed = false;

  write(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Everything written, as one buffer. */
  toBytes(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
