// Which codec the source's page sender uses, from the capabilities (QEMU's ram_save_target_page
// order): XBZRLE once the first pass is over, when it is on; compression otherwise (and for the
// whole first pass when both are on); plain pages when neither is.

import { MigCounter, type MigrationBlock } from '../../migration-block.js';
import type { MigrationOptions } from '../../options.js';
import type { EncodedPage, PageCodec } from '../page-sender.js';
import { CodecPool } from './codec-pool.js';
import { CompressCodec } from './compress-codec.js';
import { XbzrleCodec } from './xbzrle-codec.js';

export interface SourceCodecs {
  /** Undefined: pages go plain. */
  readonly codec: PageCodec | undefined;
  readonly xbzrle: XbzrleCodec | null;
  readonly compress: CompressCodec | null;
  /** At every dirty sync (the round records' moment). */
  sync(): void;
  /** Before the stop-and-copy. */
  lastStage(): void;
  cleanup(): void;
}

export function sourceCodecs(options: MigrationOptions, block: MigrationBlock, pageSize: number, ramSize: number, makePool?: (n: number, level: number) => CodecPool): SourceCodecs {
  const xbzrle = options.capability('xbzrle') ? new XbzrleCodec(options.xbzrleCacheSize, pageSize, ramSize, block) : null;
  let pool: CodecPool | null = null;
  let compress: CompressCodec | null = null;
  if (options.capability('compress')) {
    const n = options.parameter('compress-threads');
    const level = options.parameter('compress-level');
    pool = makePool ? makePool(n, level) : new CodecPool(n, { pageSize, level });
    compress = new CompressCodec(pool, pageSize, block);
  }
  // Pages that leave encoded are not 'normal' pages (QEMU counts those plain only); the RAM
  // handler counted every non-zero page, so take the encoded ones back out.
  const notNormal = () => block.add(MigCounter.NORMAL, -1);
  let codec: PageCodec | undefined;
  if (xbzrle && compress) {
    const x = xbzrle;
    const c = compress;
    codec = {
      name: 'xbzrle+compress',
      maxInFlight: c.maxInFlight,
      encode(page, b, offset) {
        const e = x.encode(page, b, offset);
        if (e) {
          notNormal();
          return e;
        }
        return c.encode(page).then(countEncoded);
      },
      zeroPage: (b, offset) => x.zeroPage(b, offset),
    };
  } else if (xbzrle) {
    const x = xbzrle;
    codec = {
      name: 'xbzrle',
      encode(page, b, offset) {
        const e = x.encode(page, b, offset);
        if (e) notNormal();
        return e;
      },
      zeroPage: (b, offset) => x.zeroPage(b, offset),
    };
  } else if (compress) {
    const c = compress;
    codec = { name: 'compress', maxInFlight: c.maxInFlight, encode: (page) => c.encode(page).then(countEncoded) };
  }
  function countEncoded(e: EncodedPage | null): EncodedPage | null {
    if (e) notNormal();
    return e;
  }
  return {
    codec,
    xbzrle,
    compress,
    sync() {
      xbzrle?.sync();
      compress?.sync();
    },
    lastStage() {
      xbzrle?.setLastStage();
    },
    cleanup() {
      pool?.terminate();
    },
  };
}
