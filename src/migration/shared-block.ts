// What the source's migration block and the destination's incoming block have in common: a
// SharedArrayBuffer of Int32 words (status at word 0, signals between threads, waited on with
// Atomics) and Float64 counters (exact below 2^53), read live by the main thread without asking
// any worker. The status moves only by compare-and-set, checked against the one transition table.

import { MIGRATION_STATUSES, canTransition, type MigrationStatus } from './state.js';

/** Word 0 of every shared block is its migration status. */
const STATUS = 0;

export function sharedBlockBytes(words: number, counters: number): number {
  return words * 4 + counters * 8;
}

export class SharedBlock {
  readonly words: Int32Array;
  readonly counters: Float64Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    wordCount: number,
    counterCount: number,
  ) {
    this.words = new Int32Array(buffer, 0, wordCount);
    this.counters = new Float64Array(buffer, wordCount * 4, counterCount);
  }

  get status(): MigrationStatus {
    return MIGRATION_STATUSES[Atomics.load(this.words, STATUS)]!;
  }

  /** Moves from `from` to `to` only if the status is still `from`; true if this call moved it. */
  compareAndSet(from: MigrationStatus, to: MigrationStatus): boolean {
    // The one transition table (state.ts) guards every thread's changes: a step it does not
    // allow is a bug in tabmig, caught here rather than shown to the user as a strange state.
    if (!canTransition(from, to)) throw new Error(`invalid migration state change ${from} -> ${to}`);
    const f = MIGRATION_STATUSES.indexOf(from);
    const t = MIGRATION_STATUSES.indexOf(to);
    const moved = Atomics.compareExchange(this.words, STATUS, f, t) === f;
    if (moved) Atomics.notify(this.words, STATUS);
    return moved;
  }

  protected storeStatus(status: MigrationStatus): void {
    Atomics.store(this.words, STATUS, MIGRATION_STATUSES.indexOf(status));
  }

  word(i: number): number {
    return Atomics.load(this.words, i);
  }

  setWord(i: number, v: number): void {
    Atomics.store(this.words, i, v);
    Atomics.notify(this.words, i);
  }

  bumpWord(i: number): void {
    Atomics.add(this.words, i, 1);
    Atomics.notify(this.words, i);
  }

  /** Waits (in a worker, without blocking its event loop) until word i is no longer `value`. */
  async waitWhile(i: number, value: number, timeoutMs?: number): Promise<void> {
    const w = Atomics.waitAsync(this.words, i, value, timeoutMs);
    if (w.async) await w.value;
  }

  get(c: number): number {
    return this.counters[c]!;
  }

  set(c: number, v: number): void {
    this.counters[c] = v;
  }

  add(c: number, v: number): void {
    this.counters[c] = this.counters[c]! + v;
  }
}
