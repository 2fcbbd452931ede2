// Writes the stream log (stream-log.ts) from a loop's tap (stream-tap.ts), on either side: every
// item an entry, except that consecutive RAM PARTs of one round fold into one entry summarising
// the round (pages, zero, XBZRLE and compressed pages, bytes). Each side says how it knows the
// round and the RAM counts (source/stream-log-tap.ts, destination/stream-log-tap.ts).

import { SectionType, type MigCommand } from './stream/index.js';
import { StreamLog, type StreamLogEntry, type StreamLogSideValue } from './stream-log.js';
import type { SectionPassed, StreamTap } from './stream-tap.js';

/** Cumulative RAM record counts on this side; the writer takes differences. */
export interface RamCounts {
  pages: number;
  zeroPages: number;
  xbzrlePages: number;
  compressedPages: number;
}

export interface RamView {
  /** Is this section the RAM one (its counts below belong to it)? */
  isRam(name: string): boolean;
  /** The round the section just passed belongs to. */
  round(): number;
  /** Running totals of the RAM records handled so far. */
  counts(): RamCounts;
}

const ZERO: RamCounts = { pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0 };

function blank(name: string, type: number): StreamLogEntry {
  return {
    name,
    type,
    sectionId: -1,
    instanceId: 0,
    version: -1,
    offset: -1,
    bytes: 0,
    round: 0,
    parts: 0,
    pages: 0,
    zeroPages: 0,
    xbzrlePages: 0,
    compressedPages: 0,
    nested: 0,
  };
}

export class StreamLogWriter implements StreamTap {
  /** The entry RAM PARTs fold into (its index and a copy of it), while the round lasts. */
  private open: { index: number; entry: StreamLogEntry } | null = null;
  /** The counts at the last RAM section (both sides' counters start at zero with the migration). */
  private lastCounts: RamCounts = ZERO;
  /**
   * A package's contents come after its PACKAGED command, as the destination reads them; the
   * source builds the package first, so what it writes into one waits here for the command.
   */
  private held: StreamLogEntry[] = [];
  /** A PACKAGED command was just logged: nested items that follow are its contents. */
  private inPackage = false;

  constructor(
    private readonly log: StreamLog,
    side: StreamLogSideValue,
    private readonly ram: RamView,
  ) {
    // (Not asking `ram` anything yet: the destination builds its RAM loader after this.)
    log.reset(side);
  }

  section(s: SectionPassed): void {
    const e = blank(s.name, s.type);
    Object.assign(e, { sectionId: s.sectionId, instanceId: s.instanceId, version: s.version, offset: s.nested ? -1 : s.offset, bytes: s.bytes, nested: s.nested ? 1 : 0 });
    if (this.ram.isRam(s.name)) {
      const now = this.ram.counts();
      const d = this.lastCounts;
      Object.assign(e, {
        round: this.ram.round(),
        parts: 1,
        pages: now.pages - d.pages,
        zeroPages: now.zeroPages - d.zeroPages,
        xbzrlePages: now.xbzrlePages - d.xbzrlePages,
        compressedPages: now.compressedPages - d.compressedPages,
      });
      this.lastCounts = { ...now };
      const open = this.open;
      if (s.type === SectionType.PART && open && open.entry.sectionId === s.sectionId && open.entry.round === e.round) {
        const o = open.entry;
        o.parts++;
        o.bytes += e.bytes;
        o.pages += e.pages;
        o.zeroPages += e.zeroPages;
        o.xbzrlePages += e.xbzrlePages;
        o.compressedPages += e.compressedPages;
        this.log.update(open.index, o);
        return;
      }
      const index = this.log.append(e);
      this.open = s.type === SectionType.PART ? { index, entry: e } : null;
      return;
    }
    this.open = null;
    this.add(e);
  }

  command(cmd: MigCommand, offset: number, bytes: number, nested: boolean): void {
    this.open = null;
    const e = blank(cmd.type, SectionType.COMMAND);
    Object.assign(e, { offset: nested ? -1 : offset, bytes, nested: nested ? 1 : 0 });
    // PING's value is what a reader matches with the PONG; keep it in the name.
    if (cmd.type === 'PING') e.name = `PING ${cmd.value}`;
    this.add(e);
    if (cmd.type === 'PACKAGED' && !nested) {
      this.inPackage = true;
      for (const h of this.held) this.log.append(h);
      this.held = [];
    }
  }

  marker(type: number, offset: number, bytes: number): void {
    this.open = null;
    const e = blank(type === SectionType.EOF ? 'EOF' : 'VM description', type);
    Object.assign(e, { offset, bytes });
    this.add(e);
  }

  private add(e: StreamLogEntry): void {
    if (!e.nested) this.inPackage = false;
    if (e.nested && !this.inPackage) this.held.push(e);
    else this.log.append(e);
  }
}
