// The destination's side of postcopy (QEMU's postcopy-ram.c incoming half, savevm.c's
// loadvm_postcopy_handle_* and the listen thread): what POSTCOPY_ADVISE, RAM_DISCARD, LISTEN,
// RUN, RECV_BITMAP and POSTCOPY_RESUME mean here; the fault handler that turns the guest's
// page faults (the page gate's ring) into REQ_PAGES_ID / REQ_PAGES on the return path; the
// reader of the postcopy preempt channel; and the pause / recover cycle when the link breaks.
//
// Runs in the incoming worker, beside the incoming thread (which hands it the commands and, after
// RUN, the rest of the main stream).

import { GateWord, PageGate } from '../../guest/page-gate.js';
import type { ChannelSet } from '../../transport/channel-set.js';
import type { MigrationChannel } from '../../transport/channel.js';
import { CHANNEL } from '../../transport/routes.js';
import { IncomingBlock } from '../incoming-block.js';
import { PageStatus, type PageState } from '../page-state.js';
import type { PagePlacer } from '../ram/ram-load.js';
import type { MigrationStatus } from '../state.js';
import { PlacedPages, RECEIPT_INTERVAL_MS, type PlacedMessage } from './placed-pages.js';
import {
  RAM_BLOCK_MAIN,
  RamReader,
  StreamReader,
  StreamWriter,
  BufferSink,
  encodeRpMessage,
  packRecvBitmap,
  writeRecvBitmap,
  type MigCommand,
  type RamVisitor,
} from '../stream/index.js';

/** How long the end of postcopy waits for in-flight preempt pages without one arriving. */
const DRAIN_STALL_MS = 30_000;

/** QEMU's MIGRATION_RESUME_ACK_VALUE. */
export const RESUME_ACK_VALUE = 1;

/** QEMU's PostcopyState (incoming). */
export type PostcopyIncomingState = 'none' | 'advised' | 'discard' | 'listening' | 'running' | 'end';

export interface PostcopyIncomingInput {
  readonly ram: Uint8Array;
  readonly pageSize: number;
  readonly gate: PageGate;
  readonly pageState: PageState | null;
  readonly block: IncomingBlock;
  /** Whether postcopy-ram is on at the destination (QEMU refuses a 16-byte advise without it). */
  readonly enabled: boolean;
  /** Whether postcopy-blocktime was on at the destination (the status reports it). */
  readonly blocktime: boolean;
  /** The return path's writer (the current connection's). */
  sendRp(bytes: Uint8Array): void;
  /**
   * A delivery receipt for release-ram (placed-pages.ts), on the switchover channel; false when
   * there is none now (the receipt waits for the next connection). Absent: no receipts.
   */
  sendReceipt?(msg: PlacedMessage): boolean;
  /** Moves the incoming status (compare-and-set) and tells the main thread. */
  setStatus(from: MigrationStatus, to: MigrationStatus, error?: string): void;
  log(text: string): void;
}

export class PostcopyIncoming implements PagePlacer {
  state: PostcopyIncomingState = 'none';
  private readonly gate: PageGate;
  private readonly pages: number;
  /** Pages asked for on the current connection (asked again after a recovery). */
  private asked = new Uint8Array(0);
  private faultLoop: Promise<void> | null = null;
  private stopped = false;
  private lastBlockSent = false;
  private preempt: { channel: MigrationChannel; reader: StreamReader; ended: boolean } | null = null;
  /** Pages placed since the last receipt, and the timer that sends receipts. */
  private readonly placed = new PlacedPages();
  private receiptTimer: ReturnType<typeof setInterval> | null = null;
  requests = 0;

  constructor(private readonly input: PostcopyIncomingInput) {
    this.gate = input.gate;
    this.pages = input.ram.length / input.pageSize;
  }

  /** True once POSTCOPY_RUN started the guest: a broken link now pauses instead of failing. */
  get running(): boolean {
    return this.state === 'running';
  }

  // ---- placement (PagePlacer) ------------------------------------------------------------------

  mayPlace(page: number): boolean {
    // Before LISTEN pages come as in precopy (a page sent twice is simply newer). From LISTEN on,
    // each page comes once; a second copy (preempt and background both sent it) is refused: the
    // guest may have written the first one already.
    return !(this.state === 'listening' || this.state === 'running' || this.state === 'end') || !this.gate.isPresent(page);
  }

  landed(page: number): void {
    if (this.state === 'listening' || this.state === 'running') {
      this.gate.markPresent(page);
      if (this.input.pageState) Atomics.store(this.input.pageState.bytes, page, PageStatus.RECEIVED);
      if (this.input.sendReceipt) this.placed.add(page);
    } else {
      this.gate.setPresentPlain(page, true);
    }
  }

  // ---- commands --------------------------------------------------------------------------------

  /** Whether `cmd` is postcopy's (the incoming thread hands it here). */
  static handles(cmd: MigCommand): boolean {
    return ['POSTCOPY_ADVISE', 'POSTCOPY_RAM_DISCARD', 'POSTCOPY_LISTEN', 'POSTCOPY_RUN', 'PACKAGED', 'RECV_BITMAP', 'POSTCOPY_RESUME'].includes(cmd.type);
  }

  /** loadvm_postcopy_handle_advise. */
  advise(cmd: Extract<MigCommand, { type: 'POSTCOPY_ADVISE' }>): void {
    if (this.state !== 'none') throw new Error(`CMD_POSTCOPY_ADVISE in wrong postcopy state (${this.stateNumber()})`);
    if (cmd.hostPageSize === undefined) {
      // A 0-byte advise: nothing to prepare, unless this side expected RAM postcopy.
      if (this.input.enabled) throw new Error('RAM postcopy is enabled but have 0 byte advise');
      return;
    }
    if (!this.input.enabled) throw new Error('RAM postcopy is disabled but have 16 byte advise');
    const ps = this.input.pageSize;
    if (cmd.hostPageSize !== undefined && cmd.hostPageSize !== ps) {
      throw new Error(`Postcopy needs matching RAM page sizes (s=${cmd.hostPageSize.toString(16)} d=${ps.toString(16)})`);
    }
    if (cmd.targetPageSize !== undefined && cmd.targetPageSize !== ps) {
      throw new Error(`Postcopy needs matching target page sizes (s=${cmd.targetPageSize} d=${ps})`);
    }
    this.state = 'advised';
  }

  /** loadvm_postcopy_ram_handle_discard: pages the source re-sends after the switch are stale here. */
  discard(cmd: Extract<MigCommand, { type: 'POSTCOPY_RAM_DISCARD' }>): void {
    if (this.state !== 'advised' && this.state !== 'discard') {
      throw new Error(`CMD_POSTCOPY_RAM_DISCARD in wrong postcopy state (${this.stateNumber()})`);
    }
    this.state = 'discard';
    if (cmd.blockName !== RAM_BLOCK_MAIN) throw new Error(`ram_discard_range: Failed to find block '${cmd.blockName}'`);
    applyDiscard(cmd.ranges, this.input.pageSize, this.pages, (first, end) => {
      this.gate.present.fill(0, first, end);
      this.input.pageState?.bytes.fill(PageStatus.CLEAN, first, end);
    });
  }

  /** loadvm_postcopy_handle_listen: from now on pages land under the guest's feet. */
  listen(channels: ChannelSet | null): void {
    if (this.state !== 'advised' && this.state !== 'discard') {
      throw new Error(`CMD_POSTCOPY_LISTEN in wrong postcopy state (${this.stateNumber()})`);
    }
    this.state = 'listening';
    this.asked = new Uint8Array(this.pages);
    this.input.setStatus('active', 'postcopy-active');
    if (channels) this.openPreempt(channels);
    this.faultLoop ??= this.serveFaults();
    if (this.input.sendReceipt) this.receiptTimer ??= setInterval(() => this.sendReceipts(), RECEIPT_INTERVAL_MS);
  }

  /** Tells the source which pages arrived since the last receipt (release-ram waits for them). */
  private sendReceipts(): void {
    if (this.placed.empty || this.input.block.status !== 'postcopy-active') return;
    const msgs = this.placed.take();
    const unsent = msgs.findIndex((m) => !this.input.sendReceipt!(m));
    if (unsent >= 0) this.placed.putBack(msgs.slice(unsent));
  }

  /** loadvm_postcopy_handle_run: the device state is in; the guest starts with pages missing. */
  run(start: () => void): void {
    if (this.state !== 'listening') throw new Error(`CMD_POSTCOPY_RUN in wrong postcopy state (${this.stateNumber()})`);
    // The gate goes on before the vCPU may run: it must never touch a missing page.
    this.gate.setActive(true);
    try {
      start();
    } catch (e) {
      this.gate.setActive(false);
      throw e;
    }
    this.state = 'running';
  }

  /**
   * RECV_BITMAP (recovery): what arrived here, so the source re-sends the rest. Only a recovery
   * asks for it (the source takes one in postcopy-recover only); outside one it is reported
   * and ignored, so nothing reaches a return path that does not expect it.
   */
  async sendRecvBitmap(blockName: string): Promise<void> {
    if (blockName !== RAM_BLOCK_MAIN) throw new Error(`loadvm_handle_recv_bitmap: block '${blockName}' not found`);
    const status = this.input.block.status;
    if (status !== 'postcopy-recover') {
      this.input.log(`loadvm_handle_recv_bitmap: illegal RECV_BITMAP received (state ${status})`);
      return;
    }
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    w.putBytes(encodeRpMessage({ type: 'RECV_BITMAP', blockName }));
    writeRecvBitmap(w, packRecvBitmap(this.gate.present));
    await w.flush();
    this.input.sendRp(sink.toBytes());
  }

  /**
   * POSTCOPY_RESUME: both sides agree; ask again for every page still awaited. Outside a
   * recovery it is reported and ignored, without failing the load (loadvm_postcopy_handle_resume).
   */
  resume(): void {
    if (this.input.block.status !== 'postcopy-recover') {
      this.input.log('loadvm_postcopy_handle_resume: illegal resume received');
      return;
    }
    this.input.setStatus('postcopy-recover', 'postcopy-active');
    this.input.sendRp(encodeRpMessage({ type: 'RESUME_ACK', value: RESUME_ACK_VALUE }));
    this.asked = new Uint8Array(this.pages);
    this.lastBlockSent = false;
    this.requestFaults([...this.pendingRequested()]);
  }

  // ---- faults ----------------------------------------------------------------------------------

  /** The fault handler: the guest's faults become page requests on the return path. */
  private async serveFaults(): Promise<void> {
    while (!this.stopped) {
      await this.gate.waitForFaults(250);
      if (this.stopped) return;
      const faults = this.gate.popFaults();
      if (this.input.block.status !== 'postcopy-active') {
        // Paused: remember what is wanted (REQUESTED in the page state); asked again on resume.
        for (const p of faults) if (!this.gate.isPresent(p)) this.input.pageState?.set(p, PageStatus.REQUESTED);
        continue;
      }
      this.requestFaults(faults);
    }
  }

  /** Asks for every fault not present nor asked yet: one request per run of consecutive pages. */
  private requestFaults(faults: readonly number[]): void {
    let first = -1;
    let count = 0;
    for (const p of faults) {
      if (p < 0 || p >= this.pages || this.gate.isPresent(p) || this.asked[p]) continue;
      this.asked[p] = 1;
      this.input.pageState?.set(p, PageStatus.REQUESTED);
      this.requests++;
      if (count > 0 && p === first + count) {
        count++;
        continue;
      }
      if (count > 0) this.request(first, count);
      first = p;
      count = 1;
    }
    if (count > 0) this.request(first, count);
  }

  private request(first: number, count: number): void {
    const ps = this.input.pageSize;
    const start = first * ps;
    const length = count * ps;
    // The first request names the block; later ones of the same block omit it (QEMU's rule).
    this.input.sendRp(encodeRpMessage(this.lastBlockSent ? { type: 'REQ_PAGES', start, length } : { type: 'REQ_PAGES_ID', start, length, blockName: RAM_BLOCK_MAIN }));
    this.lastBlockSent = true;
  }

  private *pendingRequested(): Iterable<number> {
    const st = this.input.pageState?.bytes;
    for (let p = 0; p < this.pages; p++) {
      if (this.gate.isPresent(p)) continue;
      if (st ? st[p] === PageStatus.REQUESTED : false) yield p;
    }
    // The page the vCPU waits on right now, whatever the page state says.
    const w = Atomics.load(this.gate.words, 4) - 1;
    if (w >= 0 && !this.gate.isPresent(w)) yield w;
  }

  // ---- preempt channel -------------------------------------------------------------------------

  /** Reads urgent pages off the postcopy preempt channel until it ends. */
  openPreempt(channels: ChannelSet): void {
    if (!channels.has(CHANNEL.postcopy)) {
      // Each channel comes in a message of its own: open it when it is here.
      channels.whenAll([CHANNEL.postcopy]).then(() => this.openPreempt(channels), () => {});
      return;
    }
    const channel = channels.open(CHANNEL.postcopy);
    const reader = new StreamReader(channel);
    const preempt = { channel, reader, ended: false };
    this.preempt = preempt;
    void this.readPreempt(reader).finally(() => {
      preempt.ended = true;
      // Wake a drain waiting for pages that will never come now.
      Atomics.notify(this.gate.words, GateWord.LANDED);
    });
  }

  private visitor: RamVisitor | null = null;
  private ramBlock = { name: RAM_BLOCK_MAIN, length: 0 };

  /** The RAM load handler's visitor (the preempt channel places pages through it). */
  setVisitor(v: RamVisitor): void {
    this.visitor = v;
    this.ramBlock = { name: RAM_BLOCK_MAIN, length: this.input.ram.length };
  }

  private async readPreempt(reader: StreamReader): Promise<void> {
    const rr = new RamReader(reader, [this.ramBlock], { pageSize: this.input.pageSize });
    try {
      while (!this.stopped && this.visitor) await rr.readPart(this.visitor);
    } catch {
      // The channel ended (completion, or the link broke: the main stream's reader says which).
    }
  }

  /**
   * The main stream reached EOF: every page was sent, each once, on the main stream or the
   * preempt channel, so a page still missing is in flight on the latter. Resolves once each one
   * landed; throws (the link is as good as broken: postcopy pauses, and a recovery resends them)
   * if the preempt channel ended first, or none landed for DRAIN_STALL_MS.
   */
  async drained(): Promise<void> {
    let missing = this.gate.missingCount();
    let progressAt = performance.now();
    while (missing > 0) {
      if (!this.preempt || this.preempt.ended) throw new Error(`postcopy: the stream ended with ${missing} pages still to come`);
      if (performance.now() - progressAt > DRAIN_STALL_MS) throw new Error(`postcopy: ${missing} pages still to come and none arrived for ${DRAIN_STALL_MS} ms`);
      const seen = Atomics.load(this.gate.words, GateWord.LANDED);
      const w = Atomics.waitAsync(this.gate.words, GateWord.LANDED, seen, 100);
      if (w.async) await w.value;
      // A look over every page at most every 20 ms, however many pages land meanwhile.
      await new Promise((r) => setTimeout(r, 20));
      const now = this.gate.missingCount();
      if (now < missing) progressAt = performance.now();
      missing = now;
    }
  }

  /** Everything arrived (EOF of the main stream): the gate goes off, the fault handler stops. */
  finish(): void {
    this.state = 'end';
    this.sendReceipts();
    this.stopTimers();
    this.stopped = true;
    if (this.gate.missingCount() === 0) this.gate.setActive(false);
    else this.input.log(`postcopy ended with ${this.gate.missingCount()} pages missing`);
    this.preempt?.reader.shutdown();
  }

  /** The incoming migration is over for good (failed or cancelled): nothing waits any more. */
  stop(): void {
    this.stopTimers();
    this.stopped = true;
    this.preempt?.reader.shutdown();
  }

  private stopTimers(): void {
    if (this.receiptTimer !== null) clearInterval(this.receiptTimer);
    this.receiptTimer = null;
  }

  blocktime(): { total: number; perVcpu: number[] } | null {
    if (!this.input.blocktime) return null;
    const b = this.gate.blocktime();
    return { total: b.total, perVcpu: b.perVcpu };
  }

  private stateNumber(): number {
    return ['none', 'advised', 'discard', 'listening', 'running', 'end'].indexOf(this.state);
  }
}

/**
 * The pages a discard command names (the discard bitmap's receiving end), as disjoint runs
 * [first, end): each range checked, then merged, so a command of overlapping ranges (up to some
 * 4000 in 64 KiB) costs what the pages it covers cost, once each. Returns the pages dropped.
 */
export function applyDiscard(ranges: readonly { start: number; length: number }[], pageSize: number, pages: number, drop: (first: number, end: number) => void): number {
  const runs: [number, number][] = [];
  for (const r of ranges) {
    if (r.start % pageSize !== 0 || r.length % pageSize !== 0) throw new Error(`ram_discard_range: unaligned range start 0x${r.start.toString(16)} length 0x${r.length.toString(16)}`);
    const first = r.start / pageSize;
    const end = (r.start + r.length) / pageSize;
    if (end > pages) throw new Error(`ram_discard_range: Overrun block 'ram' (start 0x${r.start.toString(16)} length 0x${r.length.toString(16)})`);
    if (end > first) runs.push([first, end]);
  }
  runs.sort((a, b) => a[0] - b[0]);
  let n = 0;
  let at = 0;
  while (at < runs.length) {
    let [first, end] = runs[at++]!;
    while (at < runs.length && runs[at]![0] <= end) end = Math.max(end, runs[at++]![1]);
    drop(first, end);
    n += end - first;
  }
  return n;
}
