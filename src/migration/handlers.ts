// The one contract for everything that migrates, in the shape of QEMU's SaveVMHandlers
// (include/migration/register.h). RAM, every device section, globalstate and the configuration
// section each register one handler; one savevm loop drives them for a live migration and for a
// snapshot alike, and one loadvm loop hands each section of an incoming stream to its handler.
// The loops own the framing (section headers, footers, ids, the VM description); a handler
// reads and writes only its section's data.
//
// Which worker runs what: every save hook runs in the source's migration worker (migration.worker,
// or the snapshot writer's thread); every load hook in the destination's incoming worker.
// The main thread runs none of them.

import type { StreamReader } from './stream/stream-reader.js';
import type { StreamWriter } from './stream/stream-writer.js';
import type { VmsdFieldDescription } from './stream/vm-description.js';

/** How the savevm loop frames a handler's data. */
export type SectionKind =
  /** Iterable (QEMU's "live" handlers, RAM): START at setup, PART per iteration, END at completion. */
  | 'iterable'
  /** Device state (vmstate): one FULL section at completion. */
  | 'device'
  /** The configuration section: u8 0x07 then the data, before everything else; no id, no footer. */
  | 'configuration';

/** What a handler still has to send (QEMU's save_live_pending, split as it splits it). */
export interface PendingBytes {
  /** Must go before the switchover in precopy (device state, or RAM without postcopy). */
  precopyOnly: number;
  /** Could also be sent after the switchover, in postcopy (RAM with postcopy-ram). */
  postcopyable: number;
}

export interface SectionIdentity {
  /** Section name (QEMU's idstr). */
  readonly name: string;
  readonly instanceId: number;
  /** Version written to the stream; the loader refuses newer ones. */
  readonly version: number;
  /** Oldest version the loader accepts (QEMU's minimum_version_id). */
  readonly minimumVersion: number;
  readonly kind: SectionKind;
  /** The section's fields for the VM description JSON; absent for RAM (QEMU describes none). */
  readonly fields?: readonly VmsdFieldDescription[];
}

/** The save side (QEMU's save_* hooks). Every hook runs in the source's migration worker. */
export interface SaveHandler extends SectionIdentity {
  /** Whether the handler takes part in this migration (QEMU's is_active); default true. */
  isActive?(): boolean;
  /** Once, at the start: allocate, write the START part (block list for RAM). */
  setup?(w: StreamWriter): void | Promise<void>;
  /**
   * What is left to send. `thresholdBytes` is what the downtime-limit allows at the current
   * bandwidth: RAM syncs the dirty log when what is left falls below it (QEMU does the same).
   */
  pending?(thresholdBytes: number): PendingBytes;
  /**
   * One iteration's worth (a PART), as much as the rate limit and back-pressure allow.
   * Resolves true when nothing is left to send for now.
   */
  iterate?(w: StreamWriter): Promise<boolean>;
  /**
   * The guest is stopped: everything that is left (the END part, or the FULL section's data).
   * For the configuration section, its data, written by the loop right after the header.
   */
  completePrecopy(w: StreamWriter): void | Promise<void>;
  /** Postcopy: what is left once the destination runs (issue 7). */
  completePostcopy?(w: StreamWriter): void | Promise<void>;
  /** Always, when the migration ends whatever its outcome: release what setup took. */
  cleanup?(): void;
}

/** Where a section's data came from, for the load hook. */
export interface LoadContext {
  /** START, PART, END or FULL (format.ts SectionType); CONFIGURATION for that section. */
  readonly type: number;
  readonly sectionId: number;
  /** The version id from the section's START/FULL header. */
  readonly versionId: number;
}

/** The load side (QEMU's load_* hooks). Every hook runs in the destination's incoming worker. */
export interface LoadHandler extends SectionIdentity {
  /** Before the first byte of the stream is read. */
  loadSetup?(): void | Promise<void>;
  /** One part of the section's data (not its header or footer). */
  loadState(r: StreamReader, ctx: LoadContext): Promise<void>;
  /**
   * After EOF, before the destination says 'ready': check what loaded as a whole (QEMU's
   * post_load and VMSTATE_VALIDATE). Returns an error text, or null if the state is sound.
   */
  validate?(): string | null;
  /** Always, when the incoming migration ends whatever its outcome. */
  loadCleanup?(): void;
}
