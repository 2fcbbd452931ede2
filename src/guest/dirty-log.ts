// The dirty log: one byte per guest page, shared by every thread. The vCPU sets a page's byte with
// Atomics.store *after* writing the data; a reader (the migration thread) takes it with
// Atomics.exchange *before* reading the page. Under the JavaScript memory model that order means
// a write is either seen by this read of the page or leaves the flag set for the next sync:
// no write goes unrecorded.

import { PAGE_SHIFT } from './memory-map.js';

export class DirtyLog {
  readonly flags: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.flags = new Uint8Array(buffer);
  }

  get pageCount(): number {
    return this.flags.length;
  }

  /** What the vCPU does after every store (it inlines the same Atomics.store). */
  markAddress(ramOffset: number): void {
    Atomics.store(this.flags, ramOffset >>> PAGE_SHIFT, 1);
  }

  /** Takes a page's flag: true if it was dirty (and is now clean until the next write). */
  take(page: number): boolean {
    return Atomics.exchange(this.flags, page, 0) !== 0;
  }

  /** Marks every page dirty (the start of a migration: everything must be sent once). */
  markAll(): void {
    for (let p = 0; p < this.flags.length; p++) Atomics.store(this.flags, p, 1);
  }

  clearAll(): void {
    for (let p = 0; p < this.flags.length; p++) Atomics.store(this.flags, p, 0);
  }

  /** How many pages are dirty right now (a racy count, for statistics). */
  countDirty(): number {
    let n = 0;
    for (let p = 0; p < this.flags.length; p++) n += this.flags[p]! !== 0 ? 1 : 0;
    return n;
  }
}
