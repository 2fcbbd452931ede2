// The page sender for x-multifd (QEMU 3.0's multifd_send_*): pages go to the extra data channels
// in packets of x-multifd-page-count, one channel after another; zero pages and every other
// record stay on the main stream. Each channel opens with its initial packet; each channel gets
// a SYNC packet and the main stream a
// MULTIFD_FLUSH record before the first record of the next round (and at the very end), so the
// destination applies no page of a later round before every page of this one: a page is sent at
// most once between two dirty syncs. (QEMU 3.0 synced at every iteration; once a round costs
// the same safety and none of the lock-step.) What several channels give on one WebRTC connection is parallel packing, not
// bandwidth: the channels share one SCTP association (DESIGN §3).

import { MigCounter, type MigrationBlock } from '../migration-block.js';
import type { StreamWriter } from '../stream/index.js';
import { MULTIFD_FLAG_SYNC, encodeInit, encodePacketHeader } from './codecs/multifd.js';
import { PageSender } from './page-sender.js';

interface Packet {
  block: string;
  offsets: number[];
  data: Uint8Array;
}

export interface MultifdSenderOptions {
  pageSize: number;
  /** x-multifd-page-count. */
  pageCount: number;
  /** 16 bytes naming this source (QEMU sends its VM uuid). */
  uuid: Uint8Array;
  /** multifd-bytes goes here; null for tests. */
  block?: MigrationBlock | null;
}

export class MultifdPageSender extends PageSender {
  private readonly mf: readonly StreamWriter[];
  private readonly opts: MultifdSenderOptions;
  private readonly packets: (Packet | null)[];
  private nextChannel = 0;
  private needSync = false;
  private last = false;
  private packetNum = 0;
  /** Bytes put on the multifd channels (QEMU's multifd_bytes). */
  bytes = 0;

  constructor(main: StreamWriter, channels: readonly StreamWriter[], opts: MultifdSenderOptions) {
    super([main], { pageSize: opts.pageSize });
    if (channels.length === 0) throw new RangeError('multifd needs at least one channel');
    this.mf = channels;
    this.opts = opts;
    this.packets = channels.map(() => null);
    channels.forEach((w, id) => this.put(w, encodeInit({ uuid: opts.uuid, id })));
  }

  /** Every writer: main first, then the multifd channels. */
  get writers(): readonly StreamWriter[] {
    return [this.main.writer, ...this.mf];
  }

  override get error(): Error | null {
    return super.error ?? this.mf.find((w) => w.error)?.error ?? null;
  }

  override get needsDrain(): boolean {
    return this.main.writer.needsDrain || this.mf.every((w) => w.needsDrain);
  }

  override ready(): Promise<void> {
    if (this.main.writer.needsDrain) return this.main.writer.ready();
    return Promise.race(this.mf.map((w) => w.ready()));
  }

  override sendPage(block: string, offset: number, data: Uint8Array, dataOffset = offset): void {
    if (this.needSync) this.syncAll();
    const ps = this.opts.pageSize;
    const i = this.pickChannel();
    let p = this.packets[i];
    if (p && p.block !== block) {
      this.emit(i, 0);
      p = null;
    }
    if (!p) {
      p = { block, offsets: [], data: new Uint8Array(this.opts.pageCount * ps) };
      this.packets[i] = p;
    }
    p.data.set(data.subarray(dataOffset, dataOffset + ps), p.offsets.length * ps);
    p.offsets.push(offset);
    if (p.offsets.length === this.opts.pageCount) {
      this.emit(i, 0);
      this.nextChannel = (i + 1) % this.mf.length;
    }
  }

  /**
   * A dirty sync happened: pages sent from now on may be newer copies of pages still on their
   * way, so the first record of the new round is preceded by a sync of every channel.
   */
  newRound(): void {
    this.needSync = true;
  }

  /** The stop-and-copy: its last flush syncs every channel, so the load ends with every page in. */
  lastStage(): void {
    this.last = true;
  }

  override sendZeroPage(block: string, offset: number): void {
    if (this.needSync) this.syncAll();
    super.sendZeroPage(block, offset);
  }

  /** End of a part: partial packets out (and, in the last stage, a sync of every channel). */
  override async flush(): Promise<void> {
    await super.flush();
    if (this.last) this.syncAll();
    else for (let i = 0; i < this.mf.length; i++) this.emit(i, 0);
    // Hand the packets to the channels now rather than when a chunk fills (errors stay in the
    // writers, sticky, for the thread to see).
    for (const w of this.mf) void w.flush();
  }

  /** A SYNC packet on every channel, then MULTIFD_FLUSH on the main stream. */
  private syncAll(): void {
    this.needSync = false;
    for (let i = 0; i < this.mf.length; i++) this.emit(i, MULTIFD_FLAG_SYNC);
    for (const w of this.mf) void w.flush();
    this.main.ram.writeMultifdFlush();
  }

  /** The channel filling a packet now, or the next one with room. */
  private pickChannel(): number {
    const n = this.mf.length;
    for (let k = 0; k < n; k++) {
      const i = (this.nextChannel + k) % n;
      if (this.packets[i] || !this.mf[i]!.needsDrain) {
        this.nextChannel = i;
        return i;
      }
    }
    return this.nextChannel;
  }

  private emit(i: number, flags: number): void {
    const p = this.packets[i];
    this.packets[i] = null;
    const used = p?.offsets.length ?? 0;
    if (used === 0 && flags === 0) return;
    const header = encodePacketHeader({
      flags,
      size: this.opts.pageCount,
      used,
      packetNum: this.packetNum++,
      block: p?.block ?? '',
      offsets: p?.offsets ?? [],
    });
    const w = this.mf[i]!;
    this.put(w, header);
    if (p && used > 0) this.put(w, p.data.subarray(0, used * this.opts.pageSize));
  }

  private put(w: StreamWriter, bytes: Uint8Array): void {
    w.putBytes(bytes, 0, bytes.length);
    this.bytes += bytes.length;
    this.opts.block?.set(MigCounter.MULTIFD_BYTES, this.bytes);
  }
}
