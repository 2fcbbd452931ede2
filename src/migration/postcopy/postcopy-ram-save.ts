// RAM's save handler with postcopy's extra duties (QEMU's ram.c postcopy half): the discard
// ranges at the switch (pages the destination holds a stale copy of), requested pages sent ahead
// of the background scan on another channel, release-ram (a page sent after the switch is given
// back: zeroed here, RELEASED in the page state), and recovery's reload of what to send from the
// destination's received bitmap. Runs in the source's migration worker.

import { PageStatus } from '../page-state.js';
import { MigCounter } from '../migration-block.js';
import { RamSaveHandler, type RamSaveInput } from '../ram/ram-save.js';
import type { PageChannel, PageSender } from '../ram/page-sender.js';
import { bitmapTest, isZeroPage, type DiscardRange } from '../stream/index.js';

export interface PostcopyRamSaveInput extends RamSaveInput {
  /** release-ram: give back each page once it was sent after the switch. */
  readonly releaseRam?: boolean;
}

export class PostcopyRamSaveHandler extends RamSaveHandler {
  private readonly releaseRam: boolean;
  /** True from the switch on: pages go once, and release-ram applies. */
  switched = false;

  constructor(input: PostcopyRamSaveInput) {
    super({ ...input, postcopy: true });
    this.releaseRam = input.releaseRam ?? false;
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

  /** Recovery (ram_dirty_bitmap_reload): send again every page the destination did not receive. */
  reloadFromReceived(bitmap: Uint8Array): number {
    let n = 0;
    for (let p = 0; p < this.pageCount; p++) {
      const need = bitmapTest(bitmap, p) ? 0 : 1;
      this.toSend[p] = need;
      n += need;
    }
    this.toSendCount = n;
    this.cursor = 0;
    this.publishRemaining();
    return n;
  }

  private afterSend(page: number): void {
    if (!this.switched) return;
    if (this.releaseRam) {
      // The bytes are already copied into the stream writer's chunk: the page can go.
      this.ram.fill(0, page * this.pageSize, (page + 1) * this.pageSize);
      if (this.pageState) this.pageState.bytes[page] = PageStatus.RELEASED;
    } else if (this.pageState) {
      this.pageState.bytes[page] = PageStatus.SENT;
    }
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
