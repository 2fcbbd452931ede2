// Every negotiated channel of one migration connection, as a worker holds them: main, return
// path, postcopy preempt, the switchover handshake's and the multifd channels (ids in routes.ts
// CHANNEL). Byte channels are wrapped with open(); message channels (ChannelSetOptions.messages)
// as a ControlChannel on arrival, read with control(). The transport posts
// each channel to the worker in the task that created it; the worker feeds its incoming
// messages to accept(), then waits for the ids it needs with whenAll() and wraps each channel
// once with open(). closeAll() ends whatever is still held, opened or not, so a failed or
// cancelled migration leaves no port or data channel behind.
//
// Why `eager`: a transferred RTCDataChannel delivers 'message' events as they arrive, and one
// that fires before a listener exists is lost. A MessagePort queues until start(), so holding
// it raw is safe. Channels that may carry bytes before the worker is ready to open them (the
// return path, once the destination answers quickly) should be opened on arrival.

import { openChannel, TransportError, type ChannelOptions, type MigrationChannel, type TransferableChannel } from './channel.js';
import { ControlChannel } from './control-channel.js';
import { channelLabel, isChannelMessage, type ChannelId, type ChannelInfo } from './routes.js';

export interface ChannelSetOptions {
  /**
   * The connection this set belongs to (ChannelInfo.connection). Omitted: the first channel
   * accepted decides. Channels of another connection are not taken (accept() returns false).
   */
  connection?: string;
  /** Options for channels to open as soon as they arrive (see the file comment); undefined: hold raw. */
  eager?: (id: ChannelId) => ChannelOptions | undefined;
  /**
   * Ids of channels that carry messages rather than bytes (the switchover handshake's): wrapped
   * as a ControlChannel on arrival, so none of their messages is lost; see control().
   */
  messages?: readonly ChannelId[];
}

interface Held {
  channel: TransferableChannel;
  info: ChannelInfo | null;
  opened: MigrationChannel | null;
  control: ControlChannel | null;
}

interface Waiter {
  ids: readonly ChannelId[];
  resolve(): void;
  reject(e: unknown): void;
}

function closeRaw(ch: TransferableChannel): void {
  try {
    ch.close();
  } catch {
    // already closed or detached: nothing left to release
  }
}

export class ChannelSet {
  private bound: string | null;
  private readonly eager: ChannelSetOptions['eager'];
  private readonly messages: readonly ChannelId[];
  private readonly held = new Map<ChannelId, Held>();
  private waiters: Waiter[] = [];
  private closedWith: TransportError | null = null;

  constructor(options: ChannelSetOptions = {}) {
    this.bound = options.connection ?? null;
    this.eager = options.eager;
    this.messages = options.messages ?? [];
  }

  /** The connection id this set holds channels of, once known. */
  get connection(): string | null {
    return this.bound;
  }

  /** True once closeAll() ran: nothing more is held, late channels are closed on arrival. */
  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Ids held so far, ascending. */
  ids(): ChannelId[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Feeds one worker message. Returns true if it was a channel of this connection (the set now
   * owns it), false for anything else, which the caller handles as before.
   */
  accept(data: unknown): boolean {
    if (!isChannelMessage(data)) return false;
    if (this.bound !== null && data.connection !== this.bound) return false;
    const { id, label, connection, transport, channel } = data;
    this.add(id, channel, { id, label, connection, transport });
    return true;
  }

  /**
   * Holds a channel delivered some other way (a custom route message, a test). A second channel
   * for an id already held is a routing bug: it is closed and the call throws.
   */
  add(id: ChannelId, channel: TransferableChannel, info: ChannelInfo | null = null): void {
    if (this.closedWith) {
      // Arrived after the migration ended: release it rather than leak a port or data channel.
      closeRaw(channel);
      return;
    }
    if (this.held.has(id)) {
      closeRaw(channel);
      throw new TransportError(`channel ${id} (${channelLabel(id)}) was delivered twice`);
    }
    if (info && this.bound === null) this.bound = info.connection;
    const h: Held = { channel, info, opened: null, control: null };
    this.held.set(id, h);
    if (this.messages.includes(id)) h.control = new ControlChannel(channel);
    const eagerOpts = this.eager?.(id);
    if (eagerOpts) h.opened = openChannel(channel, { label: info?.label ?? channelLabel(id), ...eagerOpts });
    this.wake();
  }

  has(id: ChannelId): boolean {
    return this.held.has(id);
  }

  /** The raw transferable channel, or undefined if it has not arrived. */
  get(id: ChannelId): TransferableChannel | undefined {
    return this.held.get(id)?.channel;
  }

  /** What the transport said about the channel (label, connection, transport), if it said. */
  info(id: ChannelId): ChannelInfo | null {
    return this.held.get(id)?.info ?? null;
  }

  /**
   * The channel wrapped as a MigrationChannel. Wrapping twice would attach two readers to one
   * port, so the first call wraps and later calls return the same object (their `opts` are
   * ignored). Throws if the channel has not arrived or the set is closed.
   */
  open(id: ChannelId, opts: ChannelOptions = {}): MigrationChannel {
    if (this.closedWith) throw this.closedWith;
    const h = this.held.get(id);
    if (!h) throw new TransportError(`channel ${id} (${channelLabel(id)}) has not arrived`);
    h.opened ??= openChannel(h.channel, { label: h.info?.label ?? channelLabel(id), ...opts });
    return h.opened;
  }

  /** A message channel (ChannelSetOptions.messages) that has arrived, or null. */
  control(id: ChannelId): ControlChannel | null {
    return this.held.get(id)?.control ?? null;
  }

  /** The wrapped channel if open() (or eager) already wrapped it. */
  opened(id: ChannelId): MigrationChannel | null {
    return this.held.get(id)?.opened ?? null;
  }

  /**
   * Resolves once every id in `ids` has arrived; rejects with TransportError if the set is
   * closed first, or when `signal` aborts (with its reason).
   */
  whenAll(ids: readonly ChannelId[], signal?: AbortSignal): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (ids.every((id) => this.held.has(id))) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { ids, resolve, reject };
      this.waiters.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /**
   * Ends every channel held. With a reason, opened channels are aborted (the peer sees the
   * reason); without one they close orderly (everything sent is delivered first). Raw channels
   * are closed. Pending whenAll() calls reject. Resolves once orderly closes finished; idempotent.
   */
  async closeAll(reason?: string): Promise<void> {
    if (!this.closedWith) this.closedWith = new TransportError(`channel set closed${reason ? `: ${reason}` : ''}`);
    const err = this.closedWith;
    for (const w of this.waiters.splice(0)) w.reject(err);
    const held = [...this.held.values()];
    this.held.clear();
    const closing: Promise<void>[] = [];
    for (const h of held) {
      if (h.control) h.control.close();
      else if (!h.opened) closeRaw(h.channel);
      else if (reason !== undefined) h.opened.abort(reason);
      else closing.push(h.opened.close().catch(() => {}));
    }
    await Promise.all(closing);
  }

  private wake(): void {
    const ready = this.waiters.filter((w) => w.ids.every((id) => this.held.has(id)));
    if (!ready.length) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}
