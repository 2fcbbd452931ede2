// Postcopy's page gate: userfaultfd, in a browser. On the destination of a postcopy migration the
// guest runs before all of its RAM has arrived; every reader of guest RAM on that side (the vCPU's
// fetch, loads and stores, the display, HMP `xp`, the RAM hash) asks this gate first. A page that
// has not arrived is pushed on the fault ring, and the reader waits until the incoming side marks
// it present — the vCPU with Atomics.wait (it may block its worker), the main thread with
// Atomics.waitAsync. No missing page is ever read as zeros.
//
// One SharedArrayBuffer, created with the machine and handed to the vCPU at start:
//   Int32 words   ACTIVE (gate on), HEAD/TAIL of the fault ring, LANDED (bumped and notified
//                 each time pages land), WAITING (page + 1 the vCPU waits on, 0 if none), PAGES
//   BigInt64      blocked microseconds: all vCPUs blocked (QEMU's postcopy-blocktime), per vCPU,
//                 and the number of faults
//   Int32         the vCPU's last waits (µs)
//   Int32 ring    page numbers + 1 (0 = empty slot); a power of two at least the page count
//   Uint8 queued  one byte per page: 1 while the page sits in the ring
//   Uint8 map     one byte per page: nonzero once the page's contents are in RAM (QEMU's
//                 receivedmap; also the RECV_BITMAP of postcopy recovery)
// The ring is bounded without ever being full: a page is queued at most once at a time (the
// queued map), so it never holds more entries than there are pages, however wide a range a
// reader waits on (the RAM hash waits on all of it) and however often it asks.
// The gate costs the vCPU nothing while ACTIVE is 0: it looks at the word once per slice.

import { BlocktimeTracker } from './blocktime.js';

export const GateWord = {
  ACTIVE: 0,
  HEAD: 1,
  TAIL: 2,
  LANDED: 3,
  WAITING: 4,
  /** Waits recorded in the latency ring so far. */
  LAT_COUNT: 5,
  /** Guest pages the gate covers (the layout follows from it). */
  PAGES: 6,
} as const;

const WORDS = 8;
/** BigInt64 slots: total blocktime (µs), faults, then one per vCPU. */
const B_TOTAL = 0;
const B_FAULTS = 1;
const B_VCPU0 = 2;
export const GATE_VCPUS = 1;
const BIGS = 2 + GATE_VCPUS;
/** The last LATENCY_RING waits of the vCPU, in microseconds (the bench's fault latency). */
export const LATENCY_RING = 1024;
const FIXED = WORDS * 4 + BIGS * 8 + LATENCY_RING * 4;

/** Slots of a ring that holds each of `pages` pages at most once: a power of two (indices wrap by mask). */
export function ringSlots(pages: number): number {
  let n = 1;
  while (n < pages) n *= 2;
  return n;
}

export function pageGateBytes(pages: number): number {
  return FIXED + ringSlots(pages) * 4 + 2 * pages;
}

export class PageGate {
  readonly words: Int32Array;
  readonly bigs: BigInt64Array;
  readonly ring: Int32Array;
  readonly latencies: Int32Array;
  /** One byte per page: 1 while the page is in the fault ring. */
  private readonly queued: Uint8Array;
  /** One byte per page: nonzero once present. */
  readonly present: Uint8Array;
  readonly pages: number;
  private readonly mask: number;
  private readonly tracker = new BlocktimeTracker(GATE_VCPUS);

  constructor(source: number | SharedArrayBuffer) {
    const buffer = typeof source === 'number' ? new SharedArrayBuffer(pageGateBytes(source)) : source;
    this.words = new Int32Array(buffer, 0, WORDS);
    if (typeof source === 'number') this.words[GateWord.PAGES] = source;
    this.pages = this.words[GateWord.PAGES]!;
    const slots = ringSlots(this.pages);
    this.mask = slots - 1;
    this.bigs = new BigInt64Array(buffer, WORDS * 4, BIGS);
    this.latencies = new Int32Array(buffer, WORDS * 4 + BIGS * 8, LATENCY_RING);
    this.ring = new Int32Array(buffer, FIXED, slots);
    this.queued = new Uint8Array(buffer, FIXED + slots * 4, this.pages);
    this.present = new Uint8Array(buffer, FIXED + slots * 4 + this.pages, this.pages);
  }

  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  /** True while the guest runs with pages missing (destination, postcopy). */
  get active(): boolean {
    return Atomics.load(this.words, GateWord.ACTIVE) !== 0;
  }

  /** Turns the gate on (at POSTCOPY_RUN, before the guest starts) or off (every page is here). */
  setActive(on: boolean): void {
    Atomics.store(this.words, GateWord.ACTIVE, on ? 1 : 0);
    // Wake every waiter: with the gate off nothing is missing any more.
    Atomics.add(this.words, GateWord.LANDED, 1);
    Atomics.notify(this.words, GateWord.LANDED);
  }

  /** A new incoming migration: nothing present, no faults, no blocktime. */
  reset(present: boolean): void {
    this.present.fill(present ? 1 : 0);
    Atomics.store(this.words, GateWord.HEAD, 0);
    Atomics.store(this.words, GateWord.TAIL, 0);
    Atomics.store(this.words, GateWord.WAITING, 0);
    this.ring.fill(0);
    this.queued.fill(0);
    this.bigs.fill(0n);
    Atomics.store(this.words, GateWord.LAT_COUNT, 0);
  }

  isPresent(page: number): boolean {
    return Atomics.load(this.present, page) !== 0;
  }

  /** The incoming side: the page's bytes are in RAM. Written after the data, then waiters woken. */
  markPresent(page: number): void {
    Atomics.store(this.present, page, 1);
    if (Atomics.load(this.words, GateWord.WAITING) !== 0 || this.active) {
      Atomics.add(this.words, GateWord.LANDED, 1);
      Atomics.notify(this.words, GateWord.LANDED);
    }
  }

  /** Plain write for a page loaded before the guest runs (precopy, or a discard clearing it). */
  setPresentPlain(page: number, present: boolean): void {
    this.present[page] = present ? 1 : 0;
  }

  /** Queues a fault for the fault handler (any thread); a page already in the ring is not queued again. */
  pushFault(page: number): void {
    if (page < 0 || page >= this.pages || Atomics.compareExchange(this.queued, page, 0, 1) !== 0) return;
    // At most one slot per page is ever taken: the ring (≥ pages slots) cannot overrun its tail.
    const at = Atomics.add(this.words, GateWord.HEAD, 1);
    Atomics.store(this.ring, at & this.mask, page + 1);
    Atomics.notify(this.words, GateWord.HEAD);
  }

  /** The fault handler: every fault queued so far, oldest first (one consumer only). */
  popFaults(): number[] {
    const out: number[] = [];
    let tail = Atomics.load(this.words, GateWord.TAIL);
    const head = Atomics.load(this.words, GateWord.HEAD);
    while (tail !== head) {
      const slot = tail & this.mask;
      const v = Atomics.load(this.ring, slot);
      if (v === 0) break; // reserved by a producer that has not stored yet
      Atomics.store(this.ring, slot, 0);
      tail = (tail + 1) | 0;
      Atomics.store(this.words, GateWord.TAIL, tail);
      // Only once its slot is free may the page be queued again (a reader that still finds it missing).
      Atomics.store(this.queued, v - 1, 0);
      out.push(v - 1);
    }
    return out;
  }

  /**
   * The fault handler waits here (without blocking its worker) for the next fault. A slot a
   * producer reserved but has not filled yet is waited on briefly, never spun on.
   */
  async waitForFaults(timeoutMs: number): Promise<void> {
    const head = Atomics.load(this.words, GateWord.HEAD);
    const tail = Atomics.load(this.words, GateWord.TAIL);
    if (head !== tail && Atomics.load(this.ring, tail & this.mask) !== 0) return;
    const w = Atomics.waitAsync(this.words, GateWord.HEAD, head, head !== tail ? Math.min(1, timeoutMs) : timeoutMs);
    if (w.async) await w.value;
  }

  /**
   * The vCPU (a worker, which may block): returns once `page` is present or the gate is off.
   * Records the fault and the time the vCPU stood still (blocktime).
   */
  waitFor(page: number, vcpu = 0): void {
    if (this.isPresent(page) || !this.active) return;
    const start = performance.now();
    Atomics.store(this.words, GateWord.WAITING, page + 1);
    this.tracker.fault(vcpu, start);
    Atomics.add(this.bigs, B_FAULTS, 1n);
    this.pushFault(page);
    while (!this.isPresent(page) && this.active) {
      const seen = Atomics.load(this.words, GateWord.LANDED);
      if (this.isPresent(page) || !this.active) break;
      Atomics.wait(this.words, GateWord.LANDED, seen, 50);
    }
    Atomics.store(this.words, GateWord.WAITING, 0);
    const end = performance.now();
    const n = Atomics.add(this.words, GateWord.LAT_COUNT, 1);
    Atomics.store(this.latencies, n % LATENCY_RING, Math.round((end - start) * 1000));
    const { total, vcpu: mine } = this.tracker.resolved(vcpu, end);
    Atomics.add(this.bigs, B_TOTAL, BigInt(Math.round(total * 1000)));
    Atomics.add(this.bigs, B_VCPU0 + vcpu, BigInt(Math.round(mine * 1000)));
  }

  /** Main thread: resolves once every page of [offset, offset + length) is present (or the gate is off). */
  async whenPresent(offset: number, length: number): Promise<void> {
    if (!this.active || length <= 0) return;
    const first = Math.floor(offset / 4096);
    const last = Math.min(this.pages - 1, Math.floor((offset + length - 1) / 4096));
    const missing = (): number[] => {
      const out: number[] = [];
      for (let p = first; p <= last; p++) if (!this.isPresent(p)) out.push(p);
      return out;
    };
    let left = missing();
    for (const p of left) this.pushFault(p);
    // Each wake looks only at the pages still awaited (a RAM hash waits on every page at once).
    const stillMissing = () => (left = left.filter((p) => !this.isPresent(p)));
    while (left.length && this.active) {
      const seen = Atomics.load(this.words, GateWord.LANDED);
      if (!stillMissing().length) break;
      const w = Atomics.waitAsync(this.words, GateWord.LANDED, seen, 200);
      if (w.async) await w.value;
      stillMissing();
    }
  }

  /** Whether any byte of [offset, offset + length) sits on a missing page (the display asks). */
  anyMissing(offset: number, length: number): boolean {
    if (!this.active) return false;
    const last = Math.min(this.pages - 1, Math.floor((offset + length - 1) / 4096));
    for (let p = Math.floor(offset / 4096); p <= last; p++) if (!this.isPresent(p)) return true;
    return false;
  }

  /** QEMU's postcopy-blocktime (ms: all vCPUs blocked) and postcopy-vcpu-blocktime (ms per vCPU). */
  blocktime(): { total: number; perVcpu: number[]; faults: number } {
    const perVcpu: number[] = [];
    for (let i = 0; i < GATE_VCPUS; i++) perVcpu.push(Number(Atomics.load(this.bigs, B_VCPU0 + i) / 1000n));
    return { total: Number(Atomics.load(this.bigs, B_TOTAL) / 1000n), perVcpu, faults: Number(Atomics.load(this.bigs, B_FAULTS)) };
  }

  /** The vCPU's last waits for a page (µs), oldest first: fault to page landed. */
  recentWaits(): number[] {
    const n = Atomics.load(this.words, GateWord.LAT_COUNT);
    const out: number[] = [];
    for (let i = Math.max(0, n - LATENCY_RING); i < n; i++) out.push(Atomics.load(this.latencies, i % LATENCY_RING));
    return out;
  }

  /** Pages not present, for summaries. */
  missingCount(): number {
    let n = 0;
    for (let p = 0; p < this.pages; p++) if (this.present[p] === 0) n++;
    return n;
  }
}
