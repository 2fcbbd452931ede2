// The destination's stream log (stream-log.ts): the loadvm loop's tap, with RAM counts from the
// RAM loader's totals. The stream does not say where a round of the source ends, so the round
// is inferred: within one round the source sends a page at most once, so a page arriving for
// the second time in the current round means the source synced and is re-sending what the
// guest dirtied. The boundary is seen at the first re-sent page (a round's new pages before it
// count in the previous one) and at PART granularity. Runs in the incoming worker.

import type { RamLoadTotals } from '../ram/ram-load.js';
import { StreamLog, StreamLogSide } from '../stream-log.js';
import { StreamLogWriter } from '../stream-log-writer.js';
import type { StreamTap } from '../stream-tap.js';
import { RAM_SECTION_NAME } from '../stream/index.js';

export interface IncomingStreamTap {
  readonly tap: StreamTap;
  /** The RAM loader's onPage. */
  page(page: number): void;
}

/** Null when the page gave no log buffer (tests, the fuzzer). */
export function incomingStreamTap(buffer: SharedArrayBuffer | null | undefined, pageCount: number, totals: () => RamLoadTotals): IncomingStreamTap | null {
  if (!buffer) return null;
  // The round each page last arrived in (0: never); 2 bytes a page, 512 KiB for 1 GiB.
  const arrived = new Uint16Array(pageCount);
  let round = 1;
  const tap = new StreamLogWriter(new StreamLog(buffer), StreamLogSide.DESTINATION, {
    isRam: (name) => name === RAM_SECTION_NAME,
    round: () => round,
    counts: () => {
      const t = totals();
      return { pages: t.pages, zeroPages: t.zeroPages, xbzrlePages: t.xbzrlePages, compressedPages: t.compressedPages };
    },
  });
  return {
    tap,
    page(p) {
      if (arrived[p] === round) round++;
      arrived[p] = round;
    },
  };
}
