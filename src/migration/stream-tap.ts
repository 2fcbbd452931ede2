// What the savevm and loadvm loops tell an observer about each item of the stream as it passes
// (the stream inspector's live view, through stream-log.ts; the saved-file check, stream-check.ts).
// The loops own the framing, so they alone know where a section begins and ends; a tap only
// watches and must not throw.

import type { MigCommand } from './stream/index.js';

/** The VM description's marker byte (QEMU_VM_VMDESCRIPTION), as the type of its tap report. */
export const VM_DESCRIPTION_TYPE = 0x06;

export interface SectionPassed {
  /** SectionType: START, PART, END, FULL or CONFIGURATION. */
  readonly type: number;
  /** -1 for the configuration section, which has none. */
  readonly sectionId: number;
  readonly name: string;
  readonly instanceId: number;
  /** The header's version_id (START/FULL); for PART/END, the START's. */
  readonly version: number;
  /** Where its first byte sits in the stream (in a nested PACKAGED stream: in that stream). */
  readonly offset: number;
  /** Header, data and footer. */
  readonly bytes: number;
  /** Inside a PACKAGED command (postcopy's device package). */
  readonly nested: boolean;
}

export interface StreamTap {
  section(s: SectionPassed): void;
  command(cmd: MigCommand, offset: number, bytes: number, nested: boolean): void;
  /** The EOF byte (type 0x00) or the VM description after it (type 0x06). */
  marker(type: number, offset: number, bytes: number): void;
}
