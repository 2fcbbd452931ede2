// Postcopy's delivery receipts for release-ram. The source may give a page's memory back only
// once the destination holds it: a page handed to the stream writer is not yet delivered, and a
// pause throws away whatever the writer and the link still held, so the recovery would resend a
// zeroed page. The destination therefore tells the source, every RECEIPT_INTERVAL_MS, which pages
// it placed since it last said so, on the switchover channel (tabmig's own, beside the QEMU
// stream, which stays byte-identical). A receipt states a fact that stays true for the rest of
// the migration (a placed page is never taken back), so a late or repeated one is harmless.
// Receipts lost with a broken link are made good by the recovery's received bitmap.

/** destination → source: runs of pages placed, flattened as [first, count, first, count, …]. */
export interface PlacedMessage {
  postcopyPlaced: number[];
}

export const RECEIPT_INTERVAL_MS = 100;
/** Runs per message: a JSON text well under a data channel's 256 KiB message limit. */
const RUNS_PER_MESSAGE = 4096;

export function isPlacedMessage(data: unknown): data is PlacedMessage {
  return typeof data === 'object' && data !== null && Array.isArray((data as { postcopyPlaced?: unknown }).postcopyPlaced);
}

/**
 * The pages a receipt names, each checked: a receipt from a confused or hostile peer names
 * nothing outside RAM and costs at most `pages` steps per run. False if it is malformed (then
 * nothing is named at all).
 */
export function forEachPlaced(msg: PlacedMessage, pages: number, fn: (page: number) => void): boolean {
  const runs = msg.postcopyPlaced;
  if (runs.length % 2 !== 0 || runs.length > 2 * RUNS_PER_MESSAGE) return false;
  for (let i = 0; i < runs.length; i += 2) {
    const first = runs[i];
    const count = runs[i + 1];
    if (!Number.isInteger(first) || !Number.isInteger(count) || first! < 0 || count! < 1 || first! + count! > pages) return false;
  }
  for (let i = 0; i < runs.length; i += 2) for (let p = runs[i]!, end = p + runs[i + 1]!; p < end; p++) fn(p);
  return true;
}

/** The destination's side: pages placed since the last receipt, as runs. */
export class PlacedPages {
  /** Flattened runs not yet sent; bounded by the page count (each page is placed once). */
  private runs: number[] = [];

  /** A page landed (after LISTEN each page lands at most once). */
  add(page: number): void {
    const n = this.runs.length;
    if (n > 0 && this.runs[n - 2]! + this.runs[n - 1]! === page) this.runs[n - 1] = this.runs[n - 1]! + 1;
    else this.runs.push(page, 1);
  }

  get empty(): boolean {
    return this.runs.length === 0;
  }

  /** The receipts for everything placed so far (several if there is much), and forgets it. */
  take(): PlacedMessage[] {
    const out: PlacedMessage[] = [];
    for (let i = 0; i < this.runs.length; i += 2 * RUNS_PER_MESSAGE) out.push({ postcopyPlaced: this.runs.slice(i, i + 2 * RUNS_PER_MESSAGE) });
    this.runs = [];
    return out;
  }

  /** Puts receipts that could not be sent back in front (the next connection carries them). */
  putBack(msgs: readonly PlacedMessage[]): void {
    const back: number[] = [];
    for (const m of msgs) back.push(...m.postcopyPlaced);
    this.runs = back.concat(this.runs);
  }
}
