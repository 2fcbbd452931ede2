// RAM's save handler with postcopy's extra duties (QEMU's ram.c postcopy half): the discard
// ranges at the switch (pages the destination holds a stale copy of), requested pages sent ahead
// of the background scan on another channel, release-ram (a page sent after the switch is given
// back — zeroed here, RELEASED in the page state — once the destination says it holds it:
// placed-pages.ts), and recovery's reload of what to send from the destination's received
// bitmap. Runs in the source's migration worker.

import { PageStatus } from '../page-state.js';
import { MigCounter } from '../migration-block.js';
import { RamSaveHandler, type RamSaveInput } from '../ram/ram-save.js';
import type { PageChannel, PageSender } from '../ram/page-sender.js';
import { bitmapTest, isZeroPage, type DiscardRange } from '../stream/index.js';

/** release-ram's per-page states (HELD is 0: every page is held until sent after the switch). */
const SENT_UNCONFIRMED = 1;
const GIVEN_BACK = 2;

export interface PostcopyRamSaveInput extends RamSaveInput {
  /** release-ram: give back each page once it was sent after the switch. */
  readonly releaseRam?: boolean;
}

export class PostcopyRamSaveHandler extends RamSaveHandler {
  private readonly releaseRam: boolean;
  /** True from the switch on: pages go once, and release-ram applies. */
  switched = false;
  /** release-ram, per page: held (0), SENT_UNCONFIRMED (sent after the switch, not yet said to be at the destination) or GIVEN_BACK. */
  private readonly releases: Uint8Array;
  /** Pages given back so far (their bytes are gone from this side). */
  released = 0;

  constructor(input: PostcopyRamSaveInput) {
    super({ ...input, postcopy: true });
    this.releaseRam = input.releaseRam ?? false;
    this.releases = new Uint8Array(this.releaseRam ? this.pageCount : 0);
  }

  /** Recovery: pages leave through the new connection's sender from now on. */
  setSender(sender: PageSender): void {
    this.sender = sender;
  }

  /**
   * ram_postcopy_send_discard_bitmap (after the final sync): every page still to send, as byte
   * ranges of runs of pages. The destination drops them, so it waits for the new copies.
   */
  discardRanges(): DiscardRange[] {
    return discardRangesOf(this.toSend, this.pageSize);
  }

  /** A page the destination asked for: sent now on `ch` unless it already went. True if sent. */
  sendUrgent(page: number, ch: PageChannel): boolean {
    if (page < 0 || page >= this.pageCount || this.toSend[page] === 0) return false;
    this.toSend[page] = 0;
    this.toSendCount--;
    const offset = page * this.pageSize;
    if (isZeroPage(this.ram, offset, this.pageSize)) {
      ch.ram.writeZeroPage(this.blockName, offset);
      this.block.add(MigCounter.DUPLICATE, 1);
    } else {
      ch.ram.writePage(this.blockName, offset, this.ram, offset);
      this.block.add(MigCounter.NORMAL, 1);
    }
    this.afterSend(page);
    this.publishRemaining();
    return true;
  }

  protected override sendPage(page: number): void {
    super.sendPage(page);
    this.afterSend(page);
  }

  /**
   * Recovery (ram_dirty_bitmap_reload): send again every page the destination did not receive;
   * release-ram gives back every page it did. Throws if the bitmap lacks a page this side gave
   * back on the destination's own word (it cannot be sent again).
   */
  reloadFromReceived(bitmap: Uint8Array): number {
    let n = 0;
    for (let p = 0; p < this.pageCount; p++) {
      const have = bitmapTest(bitmap, p);
      if (have) this.release(p);
      else if (this.releases[p] === GIVEN_BACK) {
        throw new Error(`the destination's received bitmap lacks page ${p}, which it said it held and this side gave back`);
      }
      const need = have ? 0 : 1;
      this.toSend[p] = need;
      n += need;
    }
    this.toSendCount = n;
    this.cursor = 0;
    this.publishRemaining();
    return n;
  }

  /** The destination placed `page` (a receipt): with release-ram, its memory goes now. */
  delivered(page: number): void {
    if (this.switched && this.toSend[page] === 0) this.release(page);
  }

  /** Everything arrived (the destination's SHUT after EOF): every page still held is given back. */
  allDelivered(): void {
    for (let p = 0; p < this.releases.length; p++) this.release(p);
  }

  private afterSend(page: number): void {
    if (!this.switched) return;
    if (this.pageState) this.pageState.bytes[page] = PageStatus.SENT;
    // Not given back yet: the bytes may still be in a buffer a pause throws away.
    if (this.releaseRam) this.releases[page] = SENT_UNCONFIRMED;
  }

  private release(page: number): void {
    if (this.releases[page] !== SENT_UNCONFIRMED) return;
    this.releases[page] = GIVEN_BACK;
    this.ram.fill(0, page * this.pageSize, (page + 1) * this.pageSize);
    if (this.pageState) this.pageState.bytes[page] = PageStatus.RELEASED;
    this.released++;
  }
}

/** Runs of set bytes in a one-byte-per-page map, as byte ranges (the discard bitmap's ranges). */
export function discardRangesOf(map: Uint8Array, pageSize: number): DiscardRange[] {
  const out: DiscardRange[] = [];
  let p = 0;
  while (p < map.length) {
    if (map[p] === 0) {
      p++;
      continue;
    }
    const first = p;
    while (p < map.length && map[p] !== 0) p++;
    out.push({ start: first * pageSize, length: (p - first) * pageSize });
  }
  return out;
}
