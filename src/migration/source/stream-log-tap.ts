// The source's stream log (stream-log.ts): the savevm loop's tap, with the RAM round taken from
// the dirty-sync count (1 during the first pass, one more at every sync, so the same numbering
// as the round records) and the RAM counts from the migration block's counters, which RAM save
// and the codecs keep for query-migrate. Runs in the migration worker.

import { MigCounter, type MigrationBlock } from '../migration-block.js';
import { StreamLog, StreamLogSide } from '../stream-log.js';
import { StreamLogWriter } from '../stream-log-writer.js';
import type { StreamTap } from '../stream-tap.js';
import { RAM_SECTION_NAME } from '../stream/index.js';

/** A tap writing `buffer` (null when the page gave none: tests, the snapshot writer). */
export function sourceStreamTap(buffer: SharedArrayBuffer | null | undefined, block: MigrationBlock): StreamTap | null {
  if (!buffer) return null;
  return new StreamLogWriter(new StreamLog(buffer), StreamLogSide.SOURCE, {
    isRam: (name) => name === RAM_SECTION_NAME,
    round: () => Math.max(1, block.get(MigCounter.DIRTY_SYNC_COUNT)),
    counts: () => ({
      pages: block.get(MigCounter.NORMAL) + block.get(MigCounter.DUPLICATE),
      zeroPages: block.get(MigCounter.DUPLICATE),
      xbzrlePages: block.get(MigCounter.XBZRLE_PAGES),
      compressedPages: block.get(MigCounter.COMPRESS_PAGES),
    }),
  });
}
