// The numbers of QEMU's migration stream, version 3 (migration/savevm.h, savevm.c, ram.c,
// migration.c): one place for every magic value, so the writer and the reader cannot disagree.
// Tables, not branches: a command's or return-path message's expected length is looked up here
// before anything is dispatched (QEMU's mig_cmd_args and rp_cmd_args).

export const QEMU_VM_FILE_MAGIC = 0x5145564d; // "QEVM"
export const QEMU_VM_FILE_VERSION = 3;
/** The obsolete v2 format, which QEMU names in its refusal. */
export const QEMU_VM_FILE_VERSION_COMPAT = 2;

/** The byte that starts each top-level item of the stream. */
export const SectionType = {
  EOF: 0x00,
  START: 0x01,
  PART: 0x02,
  END: 0x03,
  FULL: 0x04,
  SUBSECTION: 0x05,
  VMDESCRIPTION: 0x06,
  CONFIGURATION: 0x07,
  COMMAND: 0x08,
  FOOTER: 0x7e,
} as const;
export type SectionTypeValue = (typeof SectionType)[keyof typeof SectionType];

/** Marker for a table entry whose length the message itself determines (QEMU's -1). */
export const VARIABLE_LENGTH = -1;

export interface LengthSpec {
  readonly name: string;
  /** Exact payload length, or VARIABLE_LENGTH. */
  readonly len: number;
}

/** QEMU_VM_COMMAND numbers (enum qemu_vm_cmd). */
export const MigCmd = {
  INVALID: 0,
  OPEN_RETURN_PATH: 1,
  PING: 2,
  POSTCOPY_ADVISE: 3,
  POSTCOPY_LISTEN: 4,
  POSTCOPY_RUN: 5,
  POSTCOPY_RAM_DISCARD: 6,
  PACKAGED: 7,
  ENABLE_COLO: 8,
  POSTCOPY_RESUME: 9,
  RECV_BITMAP: 10,
  SWITCHOVER_START: 11,
} as const;
export type MigCmdName = Exclude<keyof typeof MigCmd, 'INVALID'>;
export const MIG_CMD_MAX = 12;

/**
 * QEMU's mig_cmd_args: each command's name and payload length. POSTCOPY_ADVISE is variable
 * because a source doing only dirty-bitmap postcopy sends it empty (0 or 16 bytes).
 */
export const MIG_CMD_ARGS: readonly LengthSpec[] = [
  { name: 'INVALID', len: VARIABLE_LENGTH },
  { name: 'OPEN_RETURN_PATH', len: 0 },
  { name: 'PING', len: 4 },
  { name: 'POSTCOPY_ADVISE', len: VARIABLE_LENGTH },
  { name: 'POSTCOPY_LISTEN', len: 0 },
  { name: 'POSTCOPY_RUN', len: 0 },
  { name: 'POSTCOPY_RAM_DISCARD', len: VARIABLE_LENGTH },
  { name: 'PACKAGED', len: 4 },
  { name: 'ENABLE_COLO', len: 0 },
  { name: 'POSTCOPY_RESUME', len: 0 },
  { name: 'RECV_BITMAP', len: VARIABLE_LENGTH },
  { name: 'SWITCHOVER_START', len: 0 },
];

/** The version byte at the start of a POSTCOPY_RAM_DISCARD payload. */
export const POSTCOPY_RAM_DISCARD_VERSION = 0;
/** Largest nested stream a PACKAGED command may carry here (QEMU's MAX_VM_CMD_PACKAGED_SIZE was 16 MiB). */
export const PACKAGED_MAX_BYTES = 1 << 24;

/** Flags in the low bits of each RAM record's be64 (migration/ram.c RAM_SAVE_FLAG_*). */
export const RamFlag = {
  /** Obsolete; never valid. */
  FULL: 0x001,
  ZERO: 0x002,
  MEM_SIZE: 0x004,
  PAGE: 0x008,
  EOS: 0x010,
  CONTINUE: 0x020,
  XBZRLE: 0x040,
  /** Reserved for RDMA hooks; never valid here. */
  HOOK: 0x080,
  COMPRESS_PAGE: 0x100,
  MULTIFD_FLUSH: 0x200,
} as const;
/** Every flag a tabmig reader accepts. */
export const RAM_FLAGS_KNOWN =
  RamFlag.ZERO |
  RamFlag.MEM_SIZE |
  RamFlag.PAGE |
  RamFlag.EOS |
  RamFlag.CONTINUE |
  RamFlag.XBZRLE |
  RamFlag.COMPRESS_PAGE |
  RamFlag.MULTIFD_FLUSH;

export const RAM_SECTION_NAME = 'ram';
export const RAM_SECTION_INSTANCE = 0;
export const RAM_SECTION_VERSION = 4;
/** QEMU virt's name for its main RAM block; tabmig has this one block. */
export const RAM_BLOCK_MAIN = 'riscv_virt_board.ram';
/**
 * QEMU riscv's target page size (TARGET_PAGE_BITS 12): the default for RAM readers and writers
 * that are not told one. The machine passes its own page size in; the stream layer knows no guest.
 */
export const TARGET_PAGE_SIZE = 4096;
/** The XBZRLE record's encoding byte (ENCODING_FLAG_XBZRLE). */
export const ENCODING_FLAG_XBZRLE = 0x01;
/** zlib's compressBound(pageSize): the largest a compressed page may be. */
export function compressPageBound(pageSize: number): number {
  return pageSize + (pageSize >> 12) + (pageSize >> 14) + (pageSize >> 25) + 13;
}
/** compressPageBound of the default target page size. */
export const COMPRESS_PAGE_BOUND = compressPageBound(TARGET_PAGE_SIZE);
/** End mark after a received bitmap sent for postcopy recovery (RAMBLOCK_RECV_BITMAP_ENDING). */
export const RECV_BITMAP_ENDING = 0x0123456789abcdefn;

/** Return-path message types (destination to source; enum mig_rp_message_type). */
export const RpMsg = {
  INVALID: 0,
  SHUT: 1,
  PONG: 2,
  REQ_PAGES_ID: 3,
  REQ_PAGES: 4,
  RECV_BITMAP: 5,
  RESUME_ACK: 6,
} as const;
export type RpMsgName = Exclude<keyof typeof RpMsg, 'INVALID'>;
export const RP_MSG_MAX = 7;

/** QEMU's rp_cmd_args, checked before any return-path message is dispatched. */
export const RP_CMD_ARGS: readonly LengthSpec[] = [
  { name: 'INVALID', len: VARIABLE_LENGTH },
  { name: 'SHUT', len: 4 },
  { name: 'PONG', len: 4 },
  { name: 'REQ_PAGES_ID', len: VARIABLE_LENGTH },
  { name: 'REQ_PAGES', len: 12 },
  { name: 'RECV_BITMAP', len: VARIABLE_LENGTH },
  { name: 'RESUME_ACK', len: 4 },
];
/** The source's receive buffer for one return-path payload. */
export const RP_MAX_PAYLOAD = 512;
/** The value a RESUME_ACK carries (MIGRATION_RESUME_ACK_VALUE). */
export const MIGRATION_RESUME_ACK_VALUE = 1;

/** QEMU's BUFFER_DELAY: the rate limit is accounted per window of this many milliseconds. */
export const BUFFER_DELAY_MS = 100;
export const XFER_LIMIT_RATIO = 1000 / BUFFER_DELAY_MS;

/** Name of the configuration vmstate (written after the header, described under "configuration"). */
export const CONFIGURATION_VMSD = 'configuration';
