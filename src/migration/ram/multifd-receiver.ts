// The destination's side of x-multifd (QEMU 3.0's multifd_recv_*): one reader per extra
// channel checks its initial packet, then copies each packet's pages straight into guest RAM.
// Order across channels: a reader that reaches a SYNC packet waits until the main stream has
// read the MULTIFD_FLUSH of that round; the main stream, at the end of a part with a flush,
// waits until every channel has reached its SYNC (drain()). So no page of a later part can
// land before a page of an earlier one, whichever channel each took.

import type { ByteSource } from '../../transport/bytes.js';
import { PageStatus, type PageState } from '../page-state.js';
import { StreamReader } from '../stream/index.js';
import { MULTIFD_FLAG_SYNC, MULTIFD_INIT_BYTES, MULTIFD_PACKET_FIXED, MultifdError, decodeInit, decodeOffsets, decodePacketFixed } from './codecs/multifd.js';

export interface MultifdReceiverOptions {
  ram: Uint8Array;
  pageSize: number;
  /** The one RAM block's name. */
  blockName: string;
  /** x-multifd-page-count on this side: a packet with more slots is refused. */
  maxPageCount: number;
  pageState?: PageState | null;
  onPages?: (n: number) => void;
  /** Each page that landed (the stream log infers the source's rounds from them). */
  onPage?: ((page: number) => void) | null;
}

export class MultifdReceiver {
  private readonly syncs: number[];
  /** Channels whose stream ended (a clean close): they will reach no further SYNC. */
  private readonly ended: boolean[];
  /** MULTIFD_FLUSH records the main stream has read. */
  private flushesRead = 0;
  /** Rounds every channel may go past (the main stream finished waiting for them). */
  private released = 0;
  private error: Error | null = null;
  private wake: (() => void)[] = [];
  private readonly readers: StreamReader[];
  pages = 0;
  bytes = 0;

  constructor(
    sources: readonly ByteSource[],
    private readonly o: MultifdReceiverOptions,
  ) {
    this.syncs = sources.map(() => 0);
    this.ended = sources.map(() => false);
    this.readers = sources.map((s) => new StreamReader(s));
    this.readers.forEach((r, i) => void this.run(r, i));
  }

  /**
   * The main stream read a MULTIFD_FLUSH record: resolves once every channel has applied its
   * pages up to the matching SYNC, and lets them go on. The main stream reads nothing meanwhile.
   */
  flush(): Promise<void> {
    this.flushesRead++;
    return this.drain();
  }

  private async drain(): Promise<void> {
    const target = this.flushesRead;
    while (!this.error && this.syncs.some((s) => s < target)) {
      // A channel that ended short of this round's SYNC would keep the load waiting for ever.
      const short = this.syncs.findIndex((s, i) => s < target && this.ended[i]);
      if (short >= 0) throw new MultifdError(`multifd: channel ${short} closed before its sync ${target}`);
      await this.changed();
    }
    if (this.error) throw this.error;
    if (target > this.released) {
      this.released = target;
      this.notify();
    }
  }

  /** Stops every reader (the load is over, or failed). */
  close(): void {
    this.closing = true;
    for (const r of this.readers) r.shutdown();
    this.notify();
  }

  private async run(r: StreamReader, i: number): Promise<void> {
    const { ram, pageSize } = this.o;
    try {
      await r.ensure(MULTIFD_INIT_BYTES);
      const init = decodeInit(r.getBytes(MULTIFD_INIT_BYTES), this.readers.length);
      if (init.id !== i) throw new MultifdError(`multifd: channel ${i} introduced itself as channel ${init.id}`);
      for (;;) {
        if (await r.atEnd()) {
          this.ended[i] = true;
          this.notify();
          return;
        }
        await r.ensure(MULTIFD_PACKET_FIXED);
        const h = decodePacketFixed(r.getBytes(MULTIFD_PACKET_FIXED), this.o.maxPageCount);
        await r.ensure(8 * h.size);
        const offsets = decodeOffsets(r.getBytes(8 * h.size), h.used, ram.length, pageSize);
        if (h.used > 0 && h.block !== this.o.blockName) throw new MultifdError(`multifd: unknown ramblock "${h.block}"`);
        for (const off of offsets) {
          await r.ensure(pageSize);
          ram.set(r.getBytes(pageSize), off);
          this.o.pageState?.set(off / pageSize, PageStatus.RECEIVED);
          this.o.onPage?.(off / pageSize);
        }
        this.pages += h.used;
        this.bytes += MULTIFD_PACKET_FIXED + 8 * h.size + h.used * pageSize;
        if (h.used) this.o.onPages?.(h.used);
        if (h.flags & MULTIFD_FLAG_SYNC) {
          const round = ++this.syncs[i]!;
          this.notify();
          while (!this.error && this.released < round) await this.changed();
          if (this.error) return;
        }
      }
    } catch (e) {
      // A reader shut down by close() ends with an error nobody needs to hear.
      if (this.error === null && !this.closing) {
        this.error = e instanceof Error ? e : new Error(String(e));
        this.notify();
      }
    }
  }

  private closing = false;

  private changed(): Promise<void> {
    return new Promise((resolve) => this.wake.push(resolve));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }
}
