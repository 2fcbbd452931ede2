// The one interface every migration byte path satisfies: a message-based binary duplex with
// back-pressure and a close that says why. It runs on the main thread and inside workers (an
// RTCDataChannel transferred to a worker, or a MessagePort), and imports nothing from the DOM
// beyond what a dedicated worker also has.
//
// Close semantics (both adapters):
//   close()        orderly: everything sent so far is delivered, then the peer's read() gives null
//                  and both sides' `closed` resolve with ok=true. Ends both directions.
//   abort(reason)  immediate: the peer's read()/write()/drain() reject with ChannelClosedError
//                  carrying the reason, and `closed` resolves with ok=false.
//   peer lost      (tab closed, worker killed, connection dropped) with no orderly close first:
//                  same as an abort, reason "connection to peer lost", so a migration fails
//                  instead of waiting forever.

export const DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024; // Chromium's SCTP maxMessageSize
export const DEFAULT_HIGH_WATER_MARK = 4 * 1024 * 1024; // well below Chromium's 16 MiB send queue
export const DEFAULT_LOW_WATER_MARK = 1024 * 1024;
/**
 * A data channel's receive window: bytes the peer may have sent that this side has not read yet.
 * A data channel delivers every message it gets, read or not, so the reader's consumption is
 * acknowledged in-band and the writer waits for room (back-pressure end to end); a peer that
 * sends past the window is cut off. Wide enough for the wire's rate over a slow path
 * (8 MiB at 100 ms round trip is 80 MB/s).
 */
export const RECEIVE_WINDOW = 8 * 1024 * 1024;

/** Any failure of a transport (connect, signaling, channel). `message` is user-facing. */
export class TransportError extends Error {
  override name = 'TransportError';
}

export type CloseBy = 'local' | 'remote' | 'transport';

/** Thrown by read/write/drain/send once a channel is closed or failed. */
export class ChannelClosedError extends TransportError {
  override name = 'ChannelClosedError';
  constructor(
    readonly label: string,
    readonly reason: string,
    readonly by: CloseBy,
  ) {
    super(
      by === 'remote'
        ? `channel '${label}' aborted by peer: ${reason}`
        : by === 'transport'
          ? `channel '${label}': ${reason}`
          : `channel '${label}' is closed${reason && reason !== 'closed' ? `: ${reason}` : ''}`,
    );
  }
}

export interface CloseInfo {
  /** true for an orderly close (either side); false for abort or a lost peer. */
  ok: boolean;
  by: CloseBy;
  reason: string;
  /** Set when ok is false: what read/write reject with. */
  error?: ChannelClosedError;
}

import type { ByteSource, CommitSink } from './bytes.js';
export type { ByteSink, ByteSource, CommitSink } from './bytes.js';

export type ChannelState = 'connecting' | 'open' | 'closing' | 'closed';

export interface ChannelOptions {
  /** Label used in errors; defaults to the data channel's label or 'loopback'. */
  label?: string;
  /** Larger writes are split; chunk boundaries up to this size are preserved. */
  maxMessageSize?: number;
  /** write() waits (drain) rather than let bufferedAmount go above this. */
  highWaterMark?: number;
  /** drain() resolves once bufferedAmount is at or below this. */
  lowWaterMark?: number;
}

export interface MigrationChannel extends ByteSource, AsyncIterable<Uint8Array> {
  readonly label: string;
  readonly state: ChannelState;
  /** Resolves when the channel can carry bytes; rejects if it closes first. */
  readonly opened: Promise<void>;
  readonly maxMessageSize: number;
  /** Bytes sent but not yet handed to the wire (data channel) or not yet consumed (loopback). */
  readonly bufferedAmount: number;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /**
   * Queues one message without waiting (no splitting: at most maxMessageSize bytes). The bytes are
   * copied, so the caller may reuse its buffer. Before 'open' messages are held and sent on open.
   * Throws ChannelClosedError once closing/closed. Callers that use send() directly own the
   * back-pressure (check bufferedAmount, await drain()).
   */
  send(chunk: Uint8Array): void;
  /** Resolves once bufferedAmount <= lowWaterMark; rejects with ChannelClosedError on failure. */
  drain(): Promise<void>;
  /** send() with splitting and back-pressure: never lets bufferedAmount exceed highWaterMark. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Push delivery. While set, incoming chunks go here instead of the read() queue (chunks already
   * queued are handed over when it is set).
   */
  onmessage: ((chunk: Uint8Array) => void) | null;
  /** Next incoming chunk; null after an orderly close; rejects with ChannelClosedError on failure. */
  read(): Promise<Uint8Array | null>;
  /** Orderly close of both directions once everything sent has gone out. */
  close(): Promise<void>;
  /** Immediate close; the peer sees ChannelClosedError(reason). */
  abort(reason: string): void;
  /** Always resolves (never rejects), once, with how the channel ended. */
  readonly closed: Promise<CloseInfo>;
  onclose: ((info: CloseInfo) => void) | null;
}

/** What a route posts to a worker together with the transferable channel object. */
export type TransferableChannel = RTCDataChannel | MessagePort;

function isShared(chunk: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && chunk.buffer instanceof SharedArrayBuffer;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

/** Queueing, waiters and close bookkeeping shared by the adapters. */
abstract class BaseChannel implements MigrationChannel {
  readonly label: string;
  readonly maxMessageSize: number;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  bytesSent = 0;
  bytesReceived = 0;
  onclose: ((info: CloseInfo) => void) | null = null;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseInfo>;

  protected _state: ChannelState = 'connecting';
  protected closeInfo: CloseInfo | null = null;
  /** Set when the peer ended orderly: reads return null once the queue is empty. */
  protected remoteEnded = false;
  private queue: Uint8Array[] = [];
  /** Bytes in `queue`: received, not yet read. */
  private queuedBytes = 0;
  private readers: Waiter<Uint8Array | null>[] = [];
  private drainers: Waiter<void>[] = [];
  private pendingOpen: Uint8Array[] = [];
  private pendingOpenBytes = 0;
  private handler: ((chunk: Uint8Array) => void) | null = null;
  private resolveOpened!: () => void;
  private rejectOpened!: (e: unknown) => void;
  private resolveClosed!: (info: CloseInfo) => void;

  constructor(label: string, opts: ChannelOptions) {
    this.label = opts.label ?? label;
    this.maxMessageSize = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.lowWaterMark = Math.min(opts.lowWaterMark ?? DEFAULT_LOW_WATER_MARK, this.highWaterMark);
    this.opened = new Promise<void>((res, rej) => {
      this.resolveOpened = res;
      this.rejectOpened = rej;
    });
    this.opened.catch(() => {}); // a channel that never opens reports through `closed` too
    this.closed = new Promise<CloseInfo>((res) => (this.resolveClosed = res));
  }

  get state(): ChannelState {
    return this._state;
  }

  get bufferedAmount(): number {
    return this.pendingOpenBytes + this.transportBuffered();
  }

  get onmessage(): ((chunk: Uint8Array) => void) | null {
    return this.handler;
  }

  set onmessage(fn: ((chunk: Uint8Array) => void) | null) {
    this.handler = fn;
    while (fn && this.handler === fn && this.queue.length) {
      const c = this.queue.shift()!;
      this.queuedBytes -= c.byteLength;
      this.consumed(c.byteLength);
      fn(c);
    }
  }

  // ---- adapter hooks ----
  protected abstract transportBuffered(): number;
  protected abstract transportSend(chunk: Uint8Array): void;
  /** Tell the peer we end orderly, after everything sent; resolves when done (or failed). */
  protected abstract transportEnd(): Promise<void>;
  /** Tell the peer (best effort) and tear down now. */
  protected abstract transportAbort(reason: string): void;
  /** Received bytes were handed to the consumer (the credit the writer waits for). */
  protected consumed(_bytes: number): void {}
  /** Whether the peer can take one more message now (its receive window); the adapter knows. */
  protected peerHasRoom(): boolean {
    return true;
  }
  /** Most bytes the peer may leave unread here before it is cut off. */
  protected receiveLimit(): number {
    return Infinity;
  }

  // ---- called by adapters ----
  protected markOpen(): void {
    if (this._state !== 'connecting') return;
    this._state = 'open';
    const held = this.pendingOpen;
    this.pendingOpen = [];
    this.pendingOpenBytes = 0;
    try {
      for (const c of held) this.transportSend(c);
    } catch (e) {
      this.fail('transport', `send failed: ${(e as Error).message}`);
      return;
    }
    this.resolveOpened();
  }

  protected deliver(chunk: Uint8Array): void {
    if (this._state === 'closed') return;
    this.bytesReceived += chunk.byteLength;
    if (this.handler) {
      this.consumed(chunk.byteLength);
      this.handler(chunk);
      return;
    }
    const r = this.readers.shift();
    if (r) {
      this.consumed(chunk.byteLength);
      r.resolve(chunk);
      return;
    }
    if (this.queuedBytes + chunk.byteLength > this.receiveLimit()) {
      this.abort(`the peer sent past its receive window (${this.queuedBytes + chunk.byteLength} bytes unread, at most ${this.receiveLimit()})`);
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.byteLength;
  }

  /** The peer ended orderly: queued data stays readable, then read() gives null. */
  protected peerEnded(): void {
    this.remoteEnded = true;
    this.finish({ ok: true, by: 'remote', reason: 'closed by peer' });
  }

  /** Failure: pending and future writes/drains/reads (after queued data) reject. */
  protected fail(by: CloseBy, reason: string): void {
    if (this.closeInfo) return;
    const error = new ChannelClosedError(this.label, reason, by);
    this.finish({ ok: false, by, reason, error });
  }

  protected bufferedLow(): void {
    if (this.bufferedAmount > this.lowWaterMark || !this.peerHasRoom()) return;
    const d = this.drainers;
    this.drainers = [];
    for (const w of d) w.resolve();
  }

  protected finish(info: CloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    this._state = 'closed';
    this.pendingOpen = [];
    this.pendingOpenBytes = 0;
    const err = info.error ?? new ChannelClosedError(this.label, info.reason, info.by);
    this.rejectOpened(err);
    for (const w of this.drainers.splice(0)) w.reject(err);
    // Readers only wait when the queue is empty, so they get the end (or the error) now.
    for (const r of this.readers.splice(0)) info.ok ? r.resolve(null) : r.reject(err);
    this.resolveClosed(info);
    try {
      this.onclose?.(info);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  private closedError(): ChannelClosedError {
    const info = this.closeInfo;
    if (info?.error) return info.error;
    return new ChannelClosedError(this.label, info?.reason ?? 'closing', info?.by ?? 'local');
  }

  // ---- public API ----
  send(chunk: Uint8Array): void {
    if (this._state === 'closing' || this._state === 'closed') throw this.closedError();
    if (chunk.byteLength > this.maxMessageSize) {
      throw new TransportError(`channel '${this.label}': message of ${chunk.byteLength} bytes exceeds maxMessageSize ${this.maxMessageSize}`);
    }
    if (this._state === 'connecting') {
      const copy = chunk.slice();
      this.pendingOpen.push(copy);
      this.pendingOpenBytes += copy.byteLength;
    } else {
      this.transportSend(isShared(chunk) ? chunk.slice() : chunk);
    }
    this.bytesSent += chunk.byteLength;
  }

  drain(): Promise<void> {
    if (this.closeInfo) return this.bufferedAmount === 0 && this.closeInfo.ok ? Promise.resolve() : Promise.reject(this.closedError());
    if (this.bufferedAmount <= this.lowWaterMark && this.peerHasRoom()) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainers.push({ resolve, reject }));
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this._state === 'connecting') await this.opened.catch(() => {});
    for (let at = 0; at < chunk.byteLength; ) {
      const piece = chunk.subarray(at, Math.min(at + this.maxMessageSize, chunk.byteLength));
      while (this.bufferedAmount + piece.byteLength > this.highWaterMark || !this.peerHasRoom()) await this.drain();
      this.send(piece);
      at += piece.byteLength;
    }
    // A zero-length write still reports a closed channel.
    if (chunk.byteLength === 0 && (this._state === 'closing' || this._state === 'closed')) throw this.closedError();
  }

  read(): Promise<Uint8Array | null> {
    const c = this.queue.shift();
    if (c) {
      this.queuedBytes -= c.byteLength;
      this.consumed(c.byteLength);
      return Promise.resolve(c);
    }
    if (this.closeInfo) return this.closeInfo.ok ? Promise.resolve(null) : Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const c = await this.read();
      if (!c) return;
      yield c;
    }
  }

  async close(): Promise<void> {
    if (this._state === 'closing' || this._state === 'closed') {
      await this.closed;
      return;
    }
    if (this._state === 'connecting') {
      // Nothing could have been delivered yet; wait for open so held messages go out first.
      await this.opened.catch(() => {});
      if (this.closeInfo) return;
    }
    this._state = 'closing';
    await this.transportEnd();
    this.finish({ ok: true, by: 'local', reason: 'closed' });
  }

  abort(reason: string): void {
    if (this.closeInfo) return;
    try {
      this.transportAbort(reason);
    } finally {
      this.fail('local', reason);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// RTCDataChannel adapter

// In-band control messages travel as strings; migration bytes are always binary, so they never
// collide. A data channel that closes without END first means the peer was lost. ACK says how
// many bytes the reader took since its last ACK (the receive window's credit).
const DC_END = '\u0000tabmig:end';
const DC_ABORT = '\u0000tabmig:abort:';
const DC_ACK = '\u0000tabmig:ack:';
/** Bytes taken before an ACK goes at once; less is acknowledged within ACK_DELAY_MS. */
const DC_ACK_BATCH = 256 * 1024;
const DC_ACK_DELAY_MS = 10;

class DataChannelAdapter extends BaseChannel {
  /** Bytes sent that the peer's reader has not acknowledged yet. */
  private unacked = 0;
  /** Bytes this side's reader took and has not acknowledged yet. */
  private toAck = 0;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly dc: RTCDataChannel, opts: ChannelOptions) {
    super(dc.label || `data channel ${dc.id}`, opts);
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = this.lowWaterMark;
    dc.addEventListener('message', (e: MessageEvent) => this.onMessage(e.data));
    dc.addEventListener('bufferedamountlow', () => this.bufferedLow());
    let lastError = '';
    dc.addEventListener('error', (e: Event) => {
      const err = (e as RTCErrorEvent).error;
      lastError = err?.message || err?.errorDetail || 'error';
    });
    dc.addEventListener('close', () => {
      if (this.remoteEnded) this.finish({ ok: true, by: 'remote', reason: 'closed by peer' });
      else this.fail('transport', `connection to peer lost${lastError ? ` (${lastError})` : ''}`);
    });
    if (dc.readyState === 'open') this.markOpen();
    else if (dc.readyState === 'connecting') dc.addEventListener('open', () => this.markOpen(), { once: true });
    else queueMicrotask(() => this.fail('transport', `data channel is already ${dc.readyState}`));
  }

  private onMessage(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      this.deliver(new Uint8Array(data));
    } else if (typeof data === 'string') {
      if (data.startsWith(DC_ACK)) {
        const n = Number(data.slice(DC_ACK.length));
        if (Number.isSafeInteger(n) && n > 0) {
          this.unacked = Math.max(0, this.unacked - n);
          this.bufferedLow();
        }
      } else if (data === DC_END) {
        this.peerEnded();
        // Our side of the channel goes too; the peer already considers it done.
        this.dc.close();
      } else if (data.startsWith(DC_ABORT)) {
        this.fail('remote', data.slice(DC_ABORT.length) || 'aborted');
        this.dc.close();
      }
      // Other strings: not ours, ignore (forward compatibility).
    } else if (data instanceof Blob) {
      // binaryType is 'arraybuffer'; only a foreign sender setting it on our side could cause this.
      this.fail('transport', 'received a Blob message');
      this.dc.close();
    }
  }

  protected transportBuffered(): number {
    return this._state === 'closed' ? 0 : this.dc.bufferedAmount;
  }

  protected override peerHasRoom(): boolean {
    return this.unacked + this.maxMessageSize <= RECEIVE_WINDOW;
  }

  protected override receiveLimit(): number {
    return RECEIVE_WINDOW;
  }

  protected override consumed(bytes: number): void {
    if (this._state === 'closed' || this.remoteEnded) return;
    this.toAck += bytes;
    if (this.toAck >= DC_ACK_BATCH) this.sendAck();
    else this.ackTimer ??= setTimeout(() => this.sendAck(), DC_ACK_DELAY_MS);
  }

  private sendAck(): void {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (!this.toAck || this.dc.readyState !== 'open') return;
    try {
      this.dc.send(DC_ACK + this.toAck);
      this.toAck = 0;
    } catch {
      // the channel is going: the close says so
    }
  }

  protected transportSend(chunk: Uint8Array): void {
    try {
      this.dc.send(chunk as Uint8Array<ArrayBuffer>);
      this.unacked += chunk.byteLength;
    } catch (e) {
      const reason = `send failed: ${(e as Error).message}`;
      this.fail('transport', reason);
      throw this.closeInfo?.error ?? new ChannelClosedError(this.label, reason, 'transport');
    }
  }

  protected async transportEnd(): Promise<void> {
    const dc = this.dc;
    // Wait for what is queued to reach the wire, say END, and let that reach the wire too: a
    // close() with data still queued is not guaranteed to flush on every browser.
    const flushed = (): Promise<void> =>
      new Promise((resolve) => {
        if (dc.bufferedAmount === 0 || dc.readyState !== 'open') return resolve();
        const prev = dc.bufferedAmountLowThreshold;
        dc.bufferedAmountLowThreshold = 0;
        const done = () => {
          dc.removeEventListener('bufferedamountlow', check);
          dc.removeEventListener('close', done);
          dc.bufferedAmountLowThreshold = prev;
          resolve();
        };
        const check = () => dc.bufferedAmount === 0 && done();
        dc.addEventListener('bufferedamountlow', check);
        dc.addEventListener('close', done);
      });
    await flushed();
    if (dc.readyState !== 'open') return;
    try {
      dc.send(DC_END);
    } catch {
      return;
    }
    await flushed();
    dc.close();
  }

  protected transportAbort(reason: string): void {
    try {
      if (this.dc.readyState === 'open') this.dc.send(DC_ABORT + reason);
    } catch {
      // the peer will see a lost connection instead
    }
    this.dc.close();
  }
}

// ---------------------------------------------------------------------------------------------
// MessagePort adapter

// A MessagePort queues without limit, so back-pressure is credit-based: the receiver acks bytes as
// its consumer takes them, and bufferedAmount is "sent and not yet consumed". Control messages
// are plain objects; data travels as a transferred ArrayBuffer (one copy, made by send()).
type PortControl = { t: 'end' } | { t: 'abort'; reason: string } | { t: 'ack'; n: number };
const ACK_BATCH = 64 * 1024;

class MessagePortAdapter extends BaseChannel {
  private unacked = 0;
  private toAck = 0;
  private ackScheduled = false;

  constructor(private readonly port: MessagePort, opts: ChannelOptions) {
    super('loopback', opts);
    port.onmessage = (e: MessageEvent) => this.onMessage(e.data);
    // Chromium fires 'close' on a MessagePort whose other end went away (e.g. its worker was
    // terminated); where unsupported this listener never fires.
    port.addEventListener('close', () => {
      if (!this.closeInfo) this.fail('transport', 'connection to peer lost');
    });
    port.start();
    this.markOpen();
  }

  private onMessage(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      this.deliver(new Uint8Array(data));
      return;
    }
    const m = data as PortControl;
    switch (m?.t) {
      case 'ack':
        this.unacked -= m.n;
        this.bufferedLow();
        break;
      case 'end':
        this.peerEnded();
        this.port.close();
        break;
      case 'abort':
        this.fail('remote', m.reason || 'aborted');
        this.port.close();
        break;
    }
  }

  protected transportBuffered(): number {
    return this._state === 'closed' ? 0 : this.unacked;
  }

  protected transportSend(chunk: Uint8Array): void {
    const copy = chunk.slice();
    this.unacked += copy.byteLength;
    this.port.postMessage(copy.buffer, [copy.buffer]);
  }

  protected override consumed(bytes: number): void {
    if (this._state === 'closed') return;
    this.toAck += bytes;
    if (this.toAck >= ACK_BATCH) this.flushAck();
    else if (!this.ackScheduled) {
      this.ackScheduled = true;
      queueMicrotask(() => this.flushAck());
    }
  }

  private flushAck(): void {
    this.ackScheduled = false;
    if (!this.toAck || this.remoteEnded) return;
    this.port.postMessage({ t: 'ack', n: this.toAck } satisfies PortControl);
    this.toAck = 0;
  }

  protected async transportEnd(): Promise<void> {
    // Messages already posted are delivered before END, in order; nothing to wait for.
    this.port.postMessage({ t: 'end' } satisfies PortControl);
    this.port.close();
  }

  protected transportAbort(reason: string): void {
    this.port.postMessage({ t: 'abort', reason } satisfies PortControl);
    this.port.close();
  }
}

// ---------------------------------------------------------------------------------------------

/** Wraps a (possibly transferred) RTCDataChannel. Call it synchronously where you receive it. */
export function fromDataChannel(dc: RTCDataChannel, opts: ChannelOptions = {}): MigrationChannel {
  return new DataChannelAdapter(dc, opts);
}

/** Wraps one end of a MessageChannel whose other end is wrapped the same way. */
export function fromMessagePort(port: MessagePort, opts: ChannelOptions = {}): MigrationChannel {
  return new MessagePortAdapter(port, opts);
}

/** Wraps whichever transferable channel a route posted (what a worker calls on receipt). */
export function openChannel(ch: TransferableChannel, opts: ChannelOptions = {}): MigrationChannel {
  return typeof MessagePort !== 'undefined' && ch instanceof MessagePort ? fromMessagePort(ch, opts) : fromDataChannel(ch as RTCDataChannel, opts);
}

/** A channel's sending side as a CommitSink: commit = orderly close, abort = abort. */
export function channelSink(ch: MigrationChannel): CommitSink {
  return {
    write: (chunk) => ch.write(chunk),
    commit: () => ch.close(),
    abort: async (reason = 'aborted') => ch.abort(reason),
  };
}
