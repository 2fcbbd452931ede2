// The source's postcopy shared block: what the main thread, the return-path worker and the
// migration worker tell each other about postcopy without a message. migrate-start-postcopy sets
// START; the return-path worker queues the destination's page requests on a ring and bumps
// REQ_HEAD (the migration worker waits on it), and in a recovery drops the destination's received
// bitmap here and bumps BITMAP_SEQ, then RESUME_ACK.
//
// The request ring is bounded and never overruns: a page already queued is not queued again (the
// queued map), so it holds at most one entry per page, and it has a power-of-two number of slots
// at least the page count, its int32 indices wrapping by mask. However many requests a
// destination sends, the ring costs one word and one byte per page.
//
// Also here: the page-request check (migrate_handle_rp_req_pages and ram_save_queue_pages), pure,
// so the return-path worker and the tests share one implementation.

import { checkPageRequest } from '../stream/rp-messages.js';
import { recvBitmapBytes } from '../stream/index.js';
import { ringSlots } from '../../guest/page-gate.js';

export const PcWord = {
  /** 1 once migrate-start-postcopy was asked (QEMU's start_postcopy). */
  START: 0,
  REQ_HEAD: 1,
  REQ_TAIL: 2,
  /** Bumped when a received bitmap landed in `bitmap` (recovery). */
  BITMAP_SEQ: 3,
  /** Bumped when RESUME_ACK arrived with the right value. */
  RESUME_ACK: 4,
  /** Guest pages (the layout follows from it). */
  PAGES: 5,
  /**
   * Bumped at every pause: a connection's return path served before it is an old one, whose
   * late end must not break the recovery under way on the next.
   */
  PAUSES: 6,
} as const;

const WORDS = 8;

function layout(pages: number): { slots: number; bytes: number } {
  const slots = ringSlots(pages);
  return { slots, bytes: WORDS * 4 + slots * 4 + pages + recvBitmapBytes(pages) };
}

export class PostcopyBlock {
  readonly words: Int32Array;
  readonly ring: Int32Array;
  /** One byte per page: 1 while the page waits in the ring. */
  private readonly queued: Uint8Array;
  readonly bitmap: Uint8Array;
  private readonly mask: number;

  /** `source`: the guest's page count (a new block), or a block's buffer. */
  constructor(source: number | SharedArrayBuffer) {
    const buffer = typeof source === 'number' ? new SharedArrayBuffer(layout(source).bytes) : source;
    this.words = new Int32Array(buffer, 0, WORDS);
    if (typeof source === 'number') this.words[PcWord.PAGES] = source;
    const pages = this.words[PcWord.PAGES]!;
    const { slots } = layout(pages);
    this.mask = slots - 1;
    this.ring = new Int32Array(buffer, WORDS * 4, slots);
    this.queued = new Uint8Array(buffer, WORDS * 4 + slots * 4, pages);
    this.bitmap = new Uint8Array(buffer, WORDS * 4 + slots * 4 + pages);
  }

  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  reset(): void {
    Atomics.store(this.words, PcWord.START, 0);
    Atomics.store(this.words, PcWord.REQ_HEAD, 0);
    Atomics.store(this.words, PcWord.REQ_TAIL, 0);
    this.ring.fill(0);
    this.queued.fill(0);
  }

  get startRequested(): boolean {
    return Atomics.load(this.words, PcWord.START) !== 0;
  }

  requestStart(): void {
    Atomics.store(this.words, PcWord.START, 1);
    Atomics.notify(this.words, PcWord.START);
  }

  /** Return-path worker: queues one page (the only producer); a page already waiting is not queued twice. */
  pushRequest(page: number): void {
    if (page < 0 || page >= this.queued.length || Atomics.load(this.queued, page) !== 0) return;
    Atomics.store(this.queued, page, 1);
    const head = Atomics.load(this.words, PcWord.REQ_HEAD);
    Atomics.store(this.ring, head & this.mask, page + 1);
    Atomics.store(this.words, PcWord.REQ_HEAD, (head + 1) | 0);
    Atomics.notify(this.words, PcWord.REQ_HEAD);
  }

  get hasRequests(): boolean {
    return Atomics.load(this.words, PcWord.REQ_HEAD) !== Atomics.load(this.words, PcWord.REQ_TAIL);
  }

  /** Migration worker: up to `max` of the pages queued so far, oldest first (the only consumer). */
  popRequests(max = Infinity): number[] {
    const out: number[] = [];
    let tail = Atomics.load(this.words, PcWord.REQ_TAIL);
    const head = Atomics.load(this.words, PcWord.REQ_HEAD);
    while (tail !== head && out.length < max) {
      const page = Atomics.load(this.ring, tail & this.mask) - 1;
      tail = (tail + 1) | 0;
      Atomics.store(this.words, PcWord.REQ_TAIL, tail);
      // Only once its slot is free: the page may be queued again from now on.
      Atomics.store(this.queued, page, 0);
      out.push(page);
    }
    return out;
  }

  /** Resolves when a request is queued, the loop is woken, or `timeoutMs` passes. */
  async waitForRequests(timeoutMs: number): Promise<void> {
    const head = Atomics.load(this.words, PcWord.REQ_HEAD);
    if (head !== Atomics.load(this.words, PcWord.REQ_TAIL)) return;
    const w = Atomics.waitAsync(this.words, PcWord.REQ_HEAD, head, timeoutMs);
    if (w.async) await w.value;
  }

  /** Wakes a waitForRequests without queuing anything (the postcopy loop has something else to see). */
  wake(): void {
    Atomics.notify(this.words, PcWord.REQ_HEAD);
  }

  word(i: number): number {
    return Atomics.load(this.words, i);
  }

  bump(i: number): void {
    Atomics.add(this.words, i, 1);
    Atomics.notify(this.words, i);
  }

  async waitWhile(i: number, value: number, timeoutMs: number): Promise<void> {
    const w = Atomics.waitAsync(this.words, i, value, timeoutMs);
    if (w.async) await w.value;
  }
}

export interface RamBlockInfo {
  readonly name: string;
  readonly length: number;
}

/** What a page request came to: the pages to queue, or why the return path is bad now. */
export type PageRequestOutcome = { ok: true; block: string; pages: number[] } | { ok: false; error: string };

/**
 * migrate_handle_rp_req_pages + ram_save_queue_pages: whole pages only, in a known block (named,
 * or the one the last REQ_PAGES_ID named), inside it. `lastBlock` is that block, updated here.
 */
export function checkRequest(
  msg: { type: 'REQ_PAGES' | 'REQ_PAGES_ID'; start: number; length: number; blockName?: string },
  blocks: readonly RamBlockInfo[],
  pageSize: number,
  memo: { lastBlock: string | null },
): PageRequestOutcome {
  const bad = checkPageRequest(msg.start, msg.length, pageSize);
  if (bad) return { ok: false, error: `migrate_handle_rp_req_pages: ${bad.message}` };
  let name: string;
  if (msg.type === 'REQ_PAGES_ID') {
    name = msg.blockName ?? '';
    if (!blocks.some((b) => b.name === name)) return { ok: false, error: `ram_save_queue_pages no block '${name}'` };
    memo.lastBlock = name;
  } else {
    if (memo.lastBlock === null) return { ok: false, error: 'ram_save_queue_pages no previous block' };
    name = memo.lastBlock;
  }
  const block = blocks.find((b) => b.name === name)!;
  if (msg.start + msg.length > block.length) {
    const h = (n: number) => n.toString(16);
    return { ok: false, error: `ram_save_queue_pages request overrun start=${h(msg.start)} len=${h(msg.length)} blocklen=${h(block.length)}` };
  }
  const pages: number[] = [];
  for (let at = msg.start; at < msg.start + msg.length; at += pageSize) pages.push(at / pageSize);
  return { ok: true, block: name, pages };
}
