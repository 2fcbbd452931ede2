// The names, types, defaults and error wordings of migration capabilities, parameters and the
// `migration` object's properties, as QEMU 3.0's migration/migration.c and qapi/migration.json
// define them (shared/reference/qemu-migration.c is the version we follow). Tables only: the
// checks live in options.ts, the monitor text in options-hmp.ts, `-global` in options-global.ts.

import { QERR } from '../qapi/error-texts.js';
import { PAGE_SIZE } from '../guest/memory-map.js';

// ---------------------------------------------------------------------------------------------
// Capabilities

/** QAPI `MigrationCapability`, in QEMU's enum order (query-migrate-capabilities answers in it). */
export const MIGRATION_CAPABILITIES = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'compress',
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'block',
  'return-path',
  'pause-before-switchover',
  'x-multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
] as const;

export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number];

export function isMigrationCapability(name: unknown): name is MigrationCapability {
  return typeof name === 'string' && (MIGRATION_CAPABILITIES as readonly string[]).includes(name);
}

/**
 * Capabilities tabmig implements. Enabling any other one is refused (never accepted and
 * ignored). Edit this list as features land; nothing else needs to change.
 *
 * - events: the state machine emits MIGRATION events only when this is on.
 * - return-path: destination → source messages (SHUT, PONG; later page requests).
 * - pause-before-switchover: the pre-switchover state and migrate-continue.
 *
 * - xbzrle, compress: page codecs (ram/codecs/); x-multifd: pages on extra data channels;
 *   auto-converge: the vCPU throttle (source/auto-converge.ts).
 *
 * - postcopy-ram, postcopy-blocktime, release-ram: postcopy (src/migration/postcopy/).
 *
 * The rest are either modes not written yet (x-colo) or belong to subsystems tabmig does not have (rdma-pin-all: RDMA; zero-blocks,
 * dirty-bitmaps, late-block-activate, block: block devices).
 */
export const TABMIG_IMPLEMENTED_CAPABILITIES: readonly MigrationCapability[] = [
  'xbzrle',
  'auto-converge',
  'compress',
  'events',
  'return-path',
  'pause-before-switchover',
  // Postcopy (src/migration/postcopy/): the switch with pages still at the source, page faults
  // over the return path, blocktime accounting at the destination, release-ram at the source.
  'postcopy-ram',
  'postcopy-blocktime',
  'release-ram',
  'x-multifd',
];

/**
 * QEMU built without CONFIG_LIVE_BLOCK_MIGRATION: the `block` capability is left out of
 * query-migrate-capabilities and enabling it fails. tabmig has no disks, so this is the honest
 * build to imitate.
 */
export const LIVE_BLOCK_MIGRATION = false;

// ---------------------------------------------------------------------------------------------
// Parameters

/** How migrate-set-parameters' QAPI input visitor reads a member (QEMU 3.0 MigrateSetParameters). */
export type QapiInputType = 'int' | 'size' | 'bool' | 'StrOrNull';
/** How the value is stored in MigrationParameters (and so its range). */
export type StorageType = 'uint8' | 'uint32' | 'uint64' | 'size' | 'bool' | 'str';

export interface MigrationParameterValues {
  'compress-level': number;
  'compress-threads': number;
  'decompress-threads': number;
  'cpu-throttle-initial': number;
  'cpu-throttle-increment': number;
  'tls-creds': string;
  'tls-hostname': string;
  'max-bandwidth': number;
  'downtime-limit': number;
  'x-checkpoint-delay': number;
  'block-incremental': boolean;
  'x-multifd-channels': number;
  'x-multifd-page-count': number;
  'xbzrle-cache-size': number;
  'max-postcopy-bandwidth': number;
  /** tabmig's own: how long a destination waits for the next byte (or the switchover verdict). */
  'x-incoming-idle-timeout': number;
  /** tabmig's own: how long a source waits for any word from its destination (keepalive echoes included). */
  'x-outgoing-idle-timeout': number;
}

export type MigrationParameter = keyof MigrationParameterValues;

/** What tabmig does with a parameter: `honoured` ones change how a migration runs. */
export type ParameterUse = 'honoured' | 'stored';

export interface ParameterInfo {
  input: QapiInputType;
  storage: StorageType;
  /** `honoured`: the migration code reads it; `stored`: kept and reported only (for now). */
  use: ParameterUse;
}

/** Migration transfer speed throttling default: QEMU 3.0's MAX_THROTTLE is 32 MiB/s. */
export const MAX_THROTTLE = 32 << 20;
export const DEFAULT_MIGRATE_SET_DOWNTIME = 300;
export const MAX_MIGRATE_DOWNTIME_SECONDS = 2000;
export const MAX_MIGRATE_DOWNTIME = MAX_MIGRATE_DOWNTIME_SECONDS * 1000;
export const DEFAULT_MIGRATE_COMPRESS_THREAD_COUNT = 8;
export const DEFAULT_MIGRATE_DECOMPRESS_THREAD_COUNT = 2;
export const DEFAULT_MIGRATE_COMPRESS_LEVEL = 1;
export const DEFAULT_MIGRATE_CPU_THROTTLE_INITIAL = 20;
export const DEFAULT_MIGRATE_CPU_THROTTLE_INCREMENT = 10;
export const DEFAULT_MIGRATE_XBZRLE_CACHE_SIZE = 64 * 1024 * 1024;
export const DEFAULT_MIGRATE_X_CHECKPOINT_DELAY = 200;
export const DEFAULT_MIGRATE_MULTIFD_CHANNELS = 2;
export const DEFAULT_MIGRATE_MULTIFD_PAGE_COUNT = 16;
export const DEFAULT_MIGRATE_MAX_POSTCOPY_BANDWIDTH = 0;
/**
 * tabmig's x-incoming-idle-timeout (QEMU has no such timer: its destination waits on a socket
 * for ever). A tab whose source went silent must give the tab back; in postcopy (the guest
 * already runs here) silence pauses instead, for a recovery. 0 turns the timer off.
 */
export const DEFAULT_INCOMING_IDLE_TIMEOUT = 10_000;
export const MIN_INCOMING_IDLE_TIMEOUT = 100;
export const MAX_INCOMING_IDLE_TIMEOUT = 3_600_000;
/**
 * tabmig's x-outgoing-idle-timeout, the other direction: a source whose destination went silent
 * (a frozen tab, a network that black-holes) fails the migration and resumes its guest (after
 * the commit: stays stopped; in postcopy: pauses). The destination echoes the source's
 * keepalives; 0 turns it off.
 */
export const DEFAULT_OUTGOING_IDLE_TIMEOUT = 10_000;
export const MIN_OUTGOING_IDLE_TIMEOUT = 100;
export const MAX_OUTGOING_IDLE_TIMEOUT = 3_600_000;
/** qemu_target_page_size(): the xbzrle cache must be at least one page. */
export const TARGET_PAGE_SIZE = PAGE_SIZE;
/** SIZE_MAX on a 64-bit host, as QEMU prints it in the max_bandwidth error. */
export const SIZE_MAX_TEXT = '18446744073709551615';

/** QAPI `MigrationParameter` / `MigrationParameters`, in QEMU's order (query and HMP use it). */
export const MIGRATION_PARAMETERS: Readonly<Record<MigrationParameter, ParameterInfo>> = {
  'compress-level': { input: 'int', storage: 'uint8', use: 'honoured' },
  'compress-threads': { input: 'int', storage: 'uint8', use: 'honoured' },
  'decompress-threads': { input: 'int', storage: 'uint8', use: 'honoured' },
  'cpu-throttle-initial': { input: 'int', storage: 'uint8', use: 'honoured' },
  'cpu-throttle-increment': { input: 'int', storage: 'uint8', use: 'honoured' },
  'tls-creds': { input: 'StrOrNull', storage: 'str', use: 'honoured' },
  'tls-hostname': { input: 'StrOrNull', storage: 'str', use: 'stored' },
  'max-bandwidth': { input: 'int', storage: 'size', use: 'honoured' },
  'downtime-limit': { input: 'int', storage: 'uint64', use: 'honoured' },
  'x-checkpoint-delay': { input: 'int', storage: 'uint32', use: 'stored' },
  'block-incremental': { input: 'bool', storage: 'bool', use: 'stored' },
  'x-multifd-channels': { input: 'int', storage: 'uint8', use: 'honoured' },
  'x-multifd-page-count': { input: 'int', storage: 'uint32', use: 'honoured' },
  'xbzrle-cache-size': { input: 'size', storage: 'size', use: 'honoured' },
  'max-postcopy-bandwidth': { input: 'size', storage: 'size', use: 'stored' },
  'x-incoming-idle-timeout': { input: 'int', storage: 'uint32', use: 'honoured' },
  'x-outgoing-idle-timeout': { input: 'int', storage: 'uint32', use: 'honoured' },
};

export const MIGRATION_PARAMETER_NAMES = Object.keys(MIGRATION_PARAMETERS) as MigrationParameter[];

export function isMigrationParameter(name: unknown): name is MigrationParameter {
  return typeof name === 'string' && Object.hasOwn(MIGRATION_PARAMETERS, name);
}

export function defaultParameters(): MigrationParameterValues {
  return {
    'compress-level': DEFAULT_MIGRATE_COMPRESS_LEVEL,
    'compress-threads': DEFAULT_MIGRATE_COMPRESS_THREAD_COUNT,
    'decompress-threads': DEFAULT_MIGRATE_DECOMPRESS_THREAD_COUNT,
    'cpu-throttle-initial': DEFAULT_MIGRATE_CPU_THROTTLE_INITIAL,
    'cpu-throttle-increment': DEFAULT_MIGRATE_CPU_THROTTLE_INCREMENT,
    'tls-creds': '',
    'tls-hostname': '',
    'max-bandwidth': MAX_THROTTLE,
    'downtime-limit': DEFAULT_MIGRATE_SET_DOWNTIME,
    'x-checkpoint-delay': DEFAULT_MIGRATE_X_CHECKPOINT_DELAY,
    'block-incremental': false,
    'x-multifd-channels': DEFAULT_MIGRATE_MULTIFD_CHANNELS,
    'x-multifd-page-count': DEFAULT_MIGRATE_MULTIFD_PAGE_COUNT,
    'xbzrle-cache-size': DEFAULT_MIGRATE_XBZRLE_CACHE_SIZE,
    'max-postcopy-bandwidth': DEFAULT_MIGRATE_MAX_POSTCOPY_BANDWIDTH,
    'x-incoming-idle-timeout': DEFAULT_INCOMING_IDLE_TIMEOUT,
    'x-outgoing-idle-timeout': DEFAULT_OUTGOING_IDLE_TIMEOUT,
  };
}

// ---------------------------------------------------------------------------------------------
// The `migration` object's own properties (settable with -global migration.NAME=VALUE)

/** Plain booleans of MigrationState, shown by `info migrate` under "globals:". */
export interface MigrationGlobalValues {
  'store-global-state': boolean;
  'only-migratable': boolean;
  'send-configuration': boolean;
  'send-section-footer': boolean;
  'decompress-error-check': boolean;
}

export type MigrationGlobalName = keyof MigrationGlobalValues;

export function defaultGlobals(): MigrationGlobalValues {
  return {
    'store-global-state': true,
    'only-migratable': false,
    'send-configuration': true,
    'send-section-footer': true,
    'decompress-error-check': true,
  };
}

/** qdev property kinds used by the `migration` object. */
export type PropertyType = 'bool' | 'uint8' | 'uint32' | 'uint64' | 'size';

export type MigrationPropertyTarget =
  | { kind: 'global'; name: MigrationGlobalName }
  | { kind: 'parameter'; name: MigrationParameter }
  | { kind: 'capability'; name: MigrationCapability };

export interface MigrationPropertyInfo {
  type: PropertyType;
  target: MigrationPropertyTarget;
}

/** QEMU 3.0 `migration_properties[]`, in its order. Defaults are those of the target. */
export const MIGRATION_PROPERTIES: Readonly<Record<string, MigrationPropertyInfo>> = {
  'store-global-state': { type: 'bool', target: { kind: 'global', name: 'store-global-state' } },
  'only-migratable': { type: 'bool', target: { kind: 'global', name: 'only-migratable' } },
  'send-configuration': { type: 'bool', target: { kind: 'global', name: 'send-configuration' } },
  'send-section-footer': { type: 'bool', target: { kind: 'global', name: 'send-section-footer' } },
  'decompress-error-check': { type: 'bool', target: { kind: 'global', name: 'decompress-error-check' } },

  'x-compress-level': { type: 'uint8', target: { kind: 'parameter', name: 'compress-level' } },
  'x-compress-threads': { type: 'uint8', target: { kind: 'parameter', name: 'compress-threads' } },
  'x-decompress-threads': { type: 'uint8', target: { kind: 'parameter', name: 'decompress-threads' } },
  'x-cpu-throttle-initial': { type: 'uint8', target: { kind: 'parameter', name: 'cpu-throttle-initial' } },
  'x-cpu-throttle-increment': { type: 'uint8', target: { kind: 'parameter', name: 'cpu-throttle-increment' } },
  'x-max-bandwidth': { type: 'size', target: { kind: 'parameter', name: 'max-bandwidth' } },
  'x-downtime-limit': { type: 'uint64', target: { kind: 'parameter', name: 'downtime-limit' } },
  'x-checkpoint-delay': { type: 'uint32', target: { kind: 'parameter', name: 'x-checkpoint-delay' } },
  'x-multifd-channels': { type: 'uint8', target: { kind: 'parameter', name: 'x-multifd-channels' } },
  'x-multifd-page-count': { type: 'uint32', target: { kind: 'parameter', name: 'x-multifd-page-count' } },
  'xbzrle-cache-size': { type: 'size', target: { kind: 'parameter', name: 'xbzrle-cache-size' } },
  'max-postcopy-bandwidth': { type: 'size', target: { kind: 'parameter', name: 'max-postcopy-bandwidth' } },

  'x-xbzrle': { type: 'bool', target: { kind: 'capability', name: 'xbzrle' } },
  'x-rdma-pin-all': { type: 'bool', target: { kind: 'capability', name: 'rdma-pin-all' } },
  'x-auto-converge': { type: 'bool', target: { kind: 'capability', name: 'auto-converge' } },
  'x-zero-blocks': { type: 'bool', target: { kind: 'capability', name: 'zero-blocks' } },
  'x-compress': { type: 'bool', target: { kind: 'capability', name: 'compress' } },
  'x-events': { type: 'bool', target: { kind: 'capability', name: 'events' } },
  'x-postcopy-ram': { type: 'bool', target: { kind: 'capability', name: 'postcopy-ram' } },
  'x-colo': { type: 'bool', target: { kind: 'capability', name: 'x-colo' } },
  'x-release-ram': { type: 'bool', target: { kind: 'capability', name: 'release-ram' } },
  'x-block': { type: 'bool', target: { kind: 'capability', name: 'block' } },
  'x-return-path': { type: 'bool', target: { kind: 'capability', name: 'return-path' } },
  'x-multifd': { type: 'bool', target: { kind: 'capability', name: 'x-multifd' } },
};

// ---------------------------------------------------------------------------------------------
// Error wordings. Migration-specific texts are QEMU 3.0's. The generic QAPI/QOM ones follow
// current QEMU, as the project chose (QEMU 3.0 said "Invalid parameter 'foo'" for a bad enum
// value and "Property '.foo' not found" for an unknown property).

export const ERR = {
  ...QERR,
  propertyNotFound: (type: string, name: string) => `Property '${type}.${name}' not found`,
  cantApplyGlobal: (driver: string, prop: string, value: string, why: string) =>
    `can't apply global ${driver}.${prop}=${value}: ${why}`,

  // migrate_caps_check
  blockCompiledOut: 'QEMU compiled without old-style (blk/-b, inc/-i) block migration',
  postcopyCompress: 'Postcopy is not currently compatible with compression',
  // (QEMU 3.0 let the two be combined; later versions refuse it, and tabmig's multifd sender
  // has no postcopy half.)
  postcopyMultifd: 'Postcopy is not yet compatible with multifd',
  postcopyUnsupported: 'Postcopy is not supported',

  // migrate_params_check (note QEMU's underscores and its "expects is invalid" wording)
  compressLevel: "Parameter 'compress_level' expects is invalid, it should be in the range of 0 to 9",
  compressThreads: "Parameter 'compress_threads' expects is invalid, it should be in the range of 1 to 255",
  decompressThreads: "Parameter 'decompress_threads' expects is invalid, it should be in the range of 1 to 255",
  cpuThrottleInitial: "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99",
  cpuThrottleIncrement: "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99",
  maxBandwidth: `Parameter 'max_bandwidth' expects an integer in the range of 0 to ${SIZE_MAX_TEXT} bytes/second`,
  downtimeLimit: `Parameter 'downtime_limit' expects an integer in the range of 0 to ${MAX_MIGRATE_DOWNTIME} milliseconds`,
  multifdChannels: "Parameter 'multifd_channels' expects is invalid, it should be in the range of 1 to 255",
  multifdPageCount: "Parameter 'multifd_page_count' expects is invalid, it should be in the range of 1 to 10000",
  xbzrleCacheSize:
    "Parameter 'xbzrle_cache_size' expects is invalid, it should be bigger than target page size and a power of two",

  incomingIdleTimeout: `Parameter 'x-incoming-idle-timeout' expects 0 (no timeout) or an integer in the range of ${MIN_INCOMING_IDLE_TIMEOUT} to ${MAX_INCOMING_IDLE_TIMEOUT} milliseconds`,
  outgoingIdleTimeout: `Parameter 'x-outgoing-idle-timeout' expects 0 (no timeout) or an integer in the range of ${MIN_OUTGOING_IDLE_TIMEOUT} to ${MAX_OUTGOING_IDLE_TIMEOUT} milliseconds`,

  // qmp_migrate_set_downtime
  setDowntimeSeconds: `Parameter 'downtime_limit' expects an integer in the range of 0 to ${MAX_MIGRATE_DOWNTIME_SECONDS} seconds`,

  /** tabmig: a capability whose feature is not written yet. */
  notImplemented: (cap: string) => `Capability '${cap}' is not supported by tabmig yet`,
} as const;
