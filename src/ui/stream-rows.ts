// One presentation of a migration stream's items for the inspector, whether they come from a
// saved file walked by the loader (stream-check.ts) or from the live stream log the workers
// write (stream-log.ts): a row per section, command and end marker, RAM folded.

import { SectionType } from '../migration/stream/format.js';
import { VM_DESCRIPTION_TYPE, type StreamLogEntry } from '../migration/stream-log.js';
import { formatCount } from './format.js';

export const TYPE_NAMES: Record<number, string> = {
  [SectionType.START]: 'START',
  [SectionType.PART]: 'PART',
  [SectionType.END]: 'END',
  [SectionType.FULL]: 'FULL',
  [SectionType.CONFIGURATION]: 'CONFIGURATION',
  [SectionType.COMMAND]: 'COMMAND',
  [SectionType.EOF]: 'EOF',
  [VM_DESCRIPTION_TYPE]: 'VMDESC',
};

/** What each item of a stream is, in a sentence (the rows' tooltips). */
export const TYPE_EXPLAIN: Record<string, string> = {
  CONFIGURATION: 'QEMU_VM_CONFIGURATION: the machine type, so a destination of another kind refuses the stream at once.',
  START: 'QEMU_VM_SECTION_START: an iterable section (RAM) begins; its setup data (the RAM block list).',
  PART: 'QEMU_VM_SECTION_PART: one iteration of an iterable section: RAM page records.',
  END: 'QEMU_VM_SECTION_END: the last part, sent with the guest stopped.',
  FULL: 'QEMU_VM_SECTION_FULL: a device\u2019s whole state (vmstate fields), sent with the guest stopped.',
  COMMAND: 'QEMU_VM_COMMAND: an instruction to the destination (open the return path, ping, postcopy steps).',
  EOF: 'QEMU_VM_EOF: the end of the sections; the destination checks what it loaded and may start the guest.',
  VMDESC: 'QEMU_VM_VMDESCRIPTION: JSON naming every device section and its fields, for tools that read a saved stream.',
};

export interface RamSummary {
  pages: number;
  zeroPages: number;
  xbzrlePages: number;
  compressedPages: number;
}

export interface StreamRow {
  /** Stream offset; null when unknown (inside a PACKAGED command). */
  offset: number | null;
  kind: string;
  name: string;
  id: number | null;
  version: number | null;
  bytes: number;
  /** Several RAM parts folded into one row. */
  parts?: number;
  /** RAM: the round the parts belong to (live only; a saved file has one pass). */
  round?: number;
  ram?: RamSummary;
  detail?: string;
  /** Came inside a PACKAGED command. */
  nested?: boolean;
}

/** "1,024 pages: 12 zero, 3 XBZRLE" — the RAM records of a row, summarised. */
export function ramText(r: RamSummary): string {
  const parts = [`${formatCount(r.zeroPages)} zero`];
  if (r.xbzrlePages) parts.push(`${formatCount(r.xbzrlePages)} XBZRLE`);
  if (r.compressedPages) parts.push(`${formatCount(r.compressedPages)} compressed`);
  return `${formatCount(r.pages)} pages: ${parts.join(', ')}`;
}

/** The rows of the live stream log, in stream order. */
export function rowsFromLog(entries: readonly StreamLogEntry[]): StreamRow[] {
  return entries.map((e) => {
    const kind = TYPE_NAMES[e.type] ?? `0x${e.type.toString(16)}`;
    const section = e.type !== SectionType.COMMAND && e.type !== SectionType.EOF && e.type !== VM_DESCRIPTION_TYPE;
    const row: StreamRow = {
      offset: e.offset < 0 ? null : e.offset,
      kind,
      name: e.name,
      id: section && e.sectionId >= 0 ? e.sectionId : null,
      version: section && e.version >= 0 ? e.version : null,
      bytes: e.bytes,
      nested: e.nested === 1,
    };
    if (e.type === SectionType.START && e.parts > 0) row.detail = 'setup: the RAM block list (MEM_SIZE), before any page';
    else if (e.parts > 0) {
      row.parts = e.parts;
      row.round = e.round;
      row.ram = { pages: e.pages, zeroPages: e.zeroPages, xbzrlePages: e.xbzrlePages, compressedPages: e.compressedPages };
    }
    if (e.type === SectionType.COMMAND) row.detail = `MIG_CMD_${e.name}`;
    return row;
  });
}
