// The `ram` section's load side (QEMU's ram_load): pages go straight into shared guest RAM, and
// each one is marked RECEIVED in the shared page state (the memory map draws it; postcopy's vCPU
// will consult it). Runs in the destination's incoming worker.

import type { LoadContext, LoadHandler, SectionIdentity } from '../handlers.js';
import { PageState, PageStatus } from '../page-state.js';
import type { LoadCodecs } from './codecs/load-codecs.js';
import {
  RAM_SECTION_INSTANCE,
  RAM_SECTION_NAME,
  RAM_SECTION_VERSION,
  RamReader,
  StreamFormatError,
  isZeroPage,
  type RamBlock,
  type RamVisitor,
  type StreamReader,
} from '../stream/index.js';

/** The `ram` section as every loader of it registers (live destination and file check alike). */
export const RAM_SECTION: SectionIdentity = {
  name: RAM_SECTION_NAME,
  instanceId: RAM_SECTION_INSTANCE,
  version: RAM_SECTION_VERSION,
  minimumVersion: RAM_SECTION_VERSION,
  kind: 'iterable',
};

/** QEMU's refusal of a `ram` section of another version (it supports only version 4). */
export function checkRamSectionVersion(r: StreamReader, ctx: LoadContext): void {
  if (ctx.versionId !== RAM_SECTION_VERSION) {
    throw r.fail(new StreamFormatError('version-too-old', `error while loading state for instance 0x${RAM_SECTION_INSTANCE.toString(16)} of device '${RAM_SECTION_NAME}'`));
  }
}

/** Why a stream without RAM is refused: it would start a guest on whatever this tab's RAM held. */
export const NO_RAM_SECTION = `Migration stream carries no '${RAM_SECTION_NAME}' section`;

export interface RamLoadOptions {
  /** Guest RAM (normally shared with the vCPU). */
  readonly ram: Uint8Array;
  /** The one RAM block this machine has. */
  readonly block: RamBlock;
  readonly pageSize: number;
  /** Marked RECEIVED page by page; optional for tests that only look at RAM. */
  readonly pageState?: PageState | null;
  /**
   * Postcopy's placement rules (postcopy/postcopy-incoming.ts): whether a page may be written, and
   * that it landed. Absent: every page is written as it comes (precopy, snapshots).
   */
  readonly placer?: PagePlacer | null;
  /** XBZRLE and compressed pages (load-codecs.ts); without it both are refused. */
  readonly codecs?: LoadCodecs | null;
  /** Accept COMPRESS_PAGE records (the `compress` capability on this side). */
  readonly allowCompressed?: boolean;
  /** x-multifd: pages also arrive on the multifd channels; a MULTIFD_FLUSH waits for them. */
  readonly multifd?: { flush(): Promise<void> } | null;
  /** Called after each part with the running totals (for the incoming block's counters). */
  readonly onPart?: (totals: RamLoadTotals) => void;
  /** Each page that landed from the stream (the stream log infers the source's rounds from them). */
  readonly onPage?: ((page: number) => void) | null;
}

export interface PagePlacer {
  /** False for a page that must not be overwritten (in postcopy, one already placed: the guest
   *  may have written it since; QEMU's UFFDIO_COPY refuses it the same way). */
  mayPlace(page: number): boolean;
  /** The page's bytes are in RAM (after they were written). */
  landed(page: number): void;
}

export interface RamLoadTotals {
  pages: number;
  zeroPages: number;
  /** Of `pages`, those that came XBZRLE-encoded or zlib-compressed. */
  xbzrlePages: number;
  compressedPages: number;
  parts: number;
}

export interface RamLoadHandler extends LoadHandler {
  readonly totals: RamLoadTotals;
  /** Where records go: also fed by postcopy's preempt channel (its own RamReader). */
  readonly visitor: RamVisitor;
}

export function ramLoadHandler(opts: RamLoadOptions): RamLoadHandler {
  const { ram, block, pageSize } = opts;
  const pageState = opts.pageState ?? null;
  const totals: RamLoadTotals = { pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0, parts: 0 };
  let started = false;
  // One RamReader per stream reader: its "last block" for CONTINUE records spans the parts of the
  // section (as QEMU's does); a PACKAGED stream comes with a reader of its own.
  let reader: StreamReader | null = null;
  let ramReader: RamReader | null = null;

  const onPage = opts.onPage ?? null;
  const received = (offset: number) => {
    if (pageState) pageState.set(offset / pageSize, PageStatus.RECEIVED);
    onPage?.(offset / pageSize);
  };
  const placer = opts.placer ?? null;
  const visitor: RamVisitor = {
    page(_b, offset, data) {
      if (placer && !placer.mayPlace(offset / pageSize)) {
        totals.pages++;
        return;
      }
      ram.set(data, offset);
      received(offset);
      placer?.landed(offset / pageSize);
      totals.pages++;
    },
    zeroPage(_b, offset, fill) {
      if (placer && !placer.mayPlace(offset / pageSize)) {
        totals.pages++;
        totals.zeroPages++;
        return;
      }
      // QEMU's ram_handle_zero: an already-zero page is left alone (a word compare is cheaper
      // than a write, and leaves the page untouched for the host).
      if (fill !== 0 || !isZeroPage(ram, offset, pageSize)) ram.fill(fill, offset, offset + pageSize);
      received(offset);
      placer?.landed(offset / pageSize);
      totals.pages++;
      totals.zeroPages++;
    },
  };
  const codecs = opts.codecs ?? null;
  if (codecs) {
    visitor.xbzrlePage = (_b, offset, encoded) => {
      // (Postcopy: the source sends XBZRLE only before the switch, where every page may land.)
      if (placer && !placer.mayPlace(offset / pageSize)) {
        totals.pages++;
        return;
      }
      codecs.xbzrle(offset, encoded);
      received(offset);
      placer?.landed(offset / pageSize);
      totals.pages++;
      totals.xbzrlePages++;
    };
    visitor.compressedPage = (_b, offset, data) => {
      const waiting = codecs.compressed(offset, data);
      received(offset);
      totals.pages++;
      totals.compressedPages++;
      return waiting;
    };
  }
  const multifd = opts.multifd ?? null;
  if (multifd) visitor.multifdFlush = () => multifd.flush();

  return {
    ...RAM_SECTION,
    totals,
    visitor,
    loadSetup() {
      pageState?.fill(PageStatus.CLEAN);
    },
    loadCleanup() {
      codecs?.cleanup();
    },
    async loadState(r: StreamReader, ctx: LoadContext) {
      checkRamSectionVersion(r, ctx);
      if (r !== reader || !ramReader) {
        reader = r;
        ramReader = new RamReader(r, [block], { pageSize, allowCompressed: opts.allowCompressed ?? false });
      }
      await ramReader.readPart(visitor);
      // Pages of this part still in a codec land before the next part (multifd ones are waited
      // for at each MULTIFD_FLUSH, before any record after it).
      if (codecs) await codecs.drain();
      started = true;
      totals.parts++;
      opts.onPart?.(totals);
    },
    validate() {
      return started ? null : NO_RAM_SECTION;
    },
  };
}
