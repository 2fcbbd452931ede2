// One byte per guest page, in shared memory, saying what migration knows of that page. Each value
// is written by the one worker that knows it (DESIGN §9): the migration worker on the source
// (dirty at a sync, sent when its record left), the incoming worker on the destination (received),
// the fault path in postcopy (requested), release-ram (released). Readers (the memory map, the
// postcopy vCPU) take a plain byte read: a stale value costs one frame or one extra check.

export const PageStatus = {
  /** Source: nothing to send. Destination: not (yet) received. */
  CLEAN: 0,
  /** Source: found dirty at the last sync, to be sent this round. */
  DIRTY: 1,
  /** Source: sent in the current round (and not dirtied since the last sync). */
  SENT: 2,
  /** Destination: the page's contents arrived. */
  RECEIVED: 3,
  /** Destination, postcopy: the vCPU faulted on it and it was asked for. */
  REQUESTED: 4,
  /** Source, postcopy release-ram: sent and its memory given back. */
  RELEASED: 5,
} as const;

export type PageStatusValue = (typeof PageStatus)[keyof typeof PageStatus];

export const PAGE_STATUS_NAMES: Record<PageStatusValue, string> = {
  0: 'clean',
  1: 'dirty',
  2: 'sent',
  3: 'received',
  4: 'requested',
  5: 'released',
};

export class PageState {
  readonly bytes: Uint8Array;

  /** `pages` bytes of shared memory, or an existing buffer handed to a worker. */
  constructor(source: number | SharedArrayBuffer) {
    const buffer = typeof source === 'number' ? new SharedArrayBuffer(source) : source;
    this.bytes = new Uint8Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.bytes.buffer as SharedArrayBuffer;
  }

  get pageCount(): number {
    return this.bytes.length;
  }

  get(page: number): PageStatusValue {
    return this.bytes[page] as PageStatusValue;
  }

  set(page: number, status: PageStatusValue): void {
    this.bytes[page] = status;
  }

  /** Atomic write, for the one transition another thread waits on (a postcopy page landing). */
  publish(page: number, status: PageStatusValue): void {
    Atomics.store(this.bytes, page, status);
  }

  fill(status: PageStatusValue): void {
    this.bytes.fill(status);
  }

  /** Pages in each status (for tests and summaries; the UI draws the bytes directly). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of Object.values(PAGE_STATUS_NAMES)) out[name] = 0;
    for (let p = 0; p < this.bytes.length; p++) out[PAGE_STATUS_NAMES[this.bytes[p] as PageStatusValue]]!++;
    return out;
  }
}
