// Migration capabilities and parameters: one check for each (QEMU's migrate_caps_check and
// migrate_params_check), all-or-nothing application, the query replies and the legacy commands
// (migrate_set_speed, migrate_set_downtime, migrate-set-cache-size). Plain data, no DOM: the
// same class runs in the page and in workers, and crosses between them as toPlain()/fromPlain().

import { QmpError } from '../qapi/qmp-error.js';
import { isSetupOrActive, type MigrationStatus } from './state.js';
import {
  ERR,
  LIVE_BLOCK_MIGRATION,
  MAX_INCOMING_IDLE_TIMEOUT,
  MAX_MIGRATE_DOWNTIME,
  MIN_INCOMING_IDLE_TIMEOUT,
  MIN_OUTGOING_IDLE_TIMEOUT,
  MAX_OUTGOING_IDLE_TIMEOUT,
  MAX_MIGRATE_DOWNTIME_SECONDS,
  MIGRATION_CAPABILITIES,
  MIGRATION_PARAMETERS,
  MIGRATION_PARAMETER_NAMES,
  TABMIG_IMPLEMENTED_CAPABILITIES,
  TARGET_PAGE_SIZE,
  defaultGlobals,
  defaultParameters,
  isMigrationCapability,
  type MigrationCapability,
  type MigrationGlobalName,
  type MigrationGlobalValues,
  type MigrationParameter,
  type MigrationParameterValues,
} from './options-schema.js';

export * from './options-schema.js';

/** What the option commands need to know about the running migration. */
export interface OptionsContext {
  /** The outgoing migration's QAPI MigrationStatus ('none', 'setup', 'active', …). */
  status: MigrationStatus;
  /** The VM waits for an incoming migration (run state `inmigrate`). */
  inmigrate?: boolean;
  /** QEMU's postcopy_ram_supported_by_host(); asked only when enabling postcopy-ram while inmigrate. */
  postcopyRamSupportedByHost?: () => boolean;
}

/** No migration has run: every change is allowed. */
export const IDLE_CONTEXT: OptionsContext = { status: 'none' };


export interface MigrationCapabilityStatus {
  capability: MigrationCapability;
  state: boolean;
}

export type MigrationCapabilityStates = Record<MigrationCapability, boolean>;

/** The structured-clone-safe form of MigrationOptions (postMessage, IndexedDB). */
export interface MigrationOptionsPlain {
  capabilities: MigrationCapabilityStates;
  parameters: MigrationParameterValues;
  globals: MigrationGlobalValues;
}

/** A parsed migrate-set-parameters argument object: only the members that were given. */
export type MigrationParameterUpdate = Partial<MigrationParameterValues>;

function allCapabilitiesOff(): MigrationCapabilityStates {
  return Object.fromEntries(MIGRATION_CAPABILITIES.map((c) => [c, false])) as MigrationCapabilityStates;
}

function fail(desc: string): never {
  throw QmpError.generic(desc);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Reading QMP arguments the way QAPI's input visitor does. JSON numbers arrive as JS numbers
// (or bigints from a lossless parser); integers beyond 2^53 keep only double precision.

const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;

function integerValue(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** QAPI 'int': any int64. */
export function readInt(v: unknown, name: string): number {
  const n = integerValue(v);
  if (n === undefined || n < -TWO_63 || n >= TWO_63) fail(ERR.invalidParameterType(name, 'integer'));
  return n;
}

/** QAPI 'size' (read as uint64; negative int64 is let through, as QEMU does, for the checks to judge). */
export function readSize(v: unknown, name: string): number {
  const n = integerValue(v);
  if (n === undefined || n < -TWO_63 || n >= TWO_64) fail(ERR.invalidParameterValue(name, 'uint64'));
  return n;
}

/** QAPI 'number'. */
export function readNumber(v: unknown, name: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  fail(ERR.invalidParameterType(name, 'number'));
}

function readBool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') fail(ERR.invalidParameterType(name, 'boolean'));
  return v;
}

/** QAPI alternate 'StrOrNull'; null means "" (QEMU 3.0 rewrites it so). */
function readStrOrNull(v: unknown, name: string): string {
  if (v === null) return '';
  if (typeof v !== 'string') fail(ERR.invalidParameterType(name, 'StrOrNull'));
  return v;
}

/**
 * Parses a migrate-set-parameters argument object into typed values, the way QAPI unmarshals
 * MigrateSetParameters: members in schema order, then the check for unknown members.
 * Type errors only; ranges are migrate_params_check's business.
 */
export function parseParameterArguments(args: unknown): MigrationParameterUpdate {
  if (args === undefined) return {};
  if (!isPlainObject(args)) fail(ERR.invalidParameterType('null', 'object'));
  const out: Record<string, unknown> = {};
  for (const name of MIGRATION_PARAMETER_NAMES) {
    if (!Object.hasOwn(args, name)) continue;
    const raw = args[name];
    switch (MIGRATION_PARAMETERS[name].input) {
      case 'int':
        out[name] = readInt(raw, name);
        break;
      case 'size':
        out[name] = readSize(raw, name);
        break;
      case 'bool':
        out[name] = readBool(raw, name);
        break;
      case 'StrOrNull':
        out[name] = readStrOrNull(raw, name);
        break;
    }
  }
  for (const key of Object.keys(args)) {
    if (!Object.hasOwn(MIGRATION_PARAMETERS, key)) fail(ERR.unexpectedParameter(key));
  }
  return out as MigrationParameterUpdate;
}

/**
 * Parses migrate-set-capabilities' `capabilities` member (a MigrationCapabilityStatus list),
 * with QAPI's error texts and member paths.
 */
export function parseCapabilityList(list: unknown): MigrationCapabilityStatus[] {
  if (list === undefined) fail(ERR.missingParameter('capabilities'));
  if (!Array.isArray(list)) fail(ERR.invalidParameterType('capabilities', 'array'));
  return list.map((el: unknown, i) => {
    const at = `capabilities[${i}]`;
    if (!isPlainObject(el)) fail(ERR.invalidParameterType(at, 'object'));
    const cap = el['capability'];
    if (cap === undefined) fail(ERR.missingParameter(`${at}.capability`));
    if (typeof cap !== 'string') fail(ERR.invalidParameterType(`${at}.capability`, 'string'));
    if (!isMigrationCapability(cap)) fail(ERR.enumValue('capability', cap));
    const state = el['state'];
    if (state === undefined) fail(ERR.missingParameter(`${at}.state`));
    if (typeof state !== 'boolean') fail(ERR.invalidParameterType(`${at}.state`, 'boolean'));
    for (const key of Object.keys(el)) {
      if (key !== 'capability' && key !== 'state') fail(ERR.unexpectedParameter(`${at}.${key}`));
    }
    return { capability: cap, state };
  });
}

// ---------------------------------------------------------------------------------------------
// The checks

function isPowerOfTwo(n: number): boolean {
  if (!Number.isInteger(n) || n <= 0) return false;
  const b = BigInt(n);
  return (b & (b - 1n)) === 0n;
}

/**
 * QEMU's migrate_params_check on a complete parameter set, first failure wins, in QEMU's order.
 * QEMU 3.0 stored int64 input into uint8/uint32 fields and silently wrapped what did not fit
 * (compress-level 265 became 9); tabmig refuses such values instead, with the same text as the
 * in-range check where there is one, otherwise QAPI's "expects uint32"/"expects uint64".
 */
export function checkParameters(p: MigrationParameterValues): void {
  const outside = (v: number, lo: number, hi: number) => v < lo || v > hi;
  if (outside(p['compress-level'], 0, 9)) fail(ERR.compressLevel);
  if (outside(p['compress-threads'], 1, 255)) fail(ERR.compressThreads);
  if (outside(p['decompress-threads'], 1, 255)) fail(ERR.decompressThreads);
  if (outside(p['cpu-throttle-initial'], 1, 99)) fail(ERR.cpuThrottleInitial);
  if (outside(p['cpu-throttle-increment'], 1, 99)) fail(ERR.cpuThrottleIncrement);
  if (outside(p['max-bandwidth'], 0, TWO_64 - 1)) fail(ERR.maxBandwidth);
  if (outside(p['downtime-limit'], 0, MAX_MIGRATE_DOWNTIME)) fail(ERR.downtimeLimit);
  if (outside(p['x-checkpoint-delay'], 0, 0xffff_ffff)) fail(ERR.invalidParameterValue('x-checkpoint-delay', 'uint32'));
  if (outside(p['x-multifd-channels'], 1, 255)) fail(ERR.multifdChannels);
  if (outside(p['x-multifd-page-count'], 1, 10000)) fail(ERR.multifdPageCount);
  const cache = p['xbzrle-cache-size'];
  if (cache < TARGET_PAGE_SIZE || !isPowerOfTwo(cache)) fail(ERR.xbzrleCacheSize);
  if (p['max-postcopy-bandwidth'] < 0) fail(ERR.invalidParameterValue('max-postcopy-bandwidth', 'uint64'));
  const idle = p['x-incoming-idle-timeout'];
  if (idle !== 0 && outside(idle, MIN_INCOMING_IDLE_TIMEOUT, MAX_INCOMING_IDLE_TIMEOUT)) fail(ERR.incomingIdleTimeout);
  const outIdle = p['x-outgoing-idle-timeout'];
  if (outIdle !== 0 && outside(outIdle, MIN_OUTGOING_IDLE_TIMEOUT, MAX_OUTGOING_IDLE_TIMEOUT)) fail(ERR.outgoingIdleTimeout);
}

/**
 * QEMU's migrate_caps_check: `next` is the complete set the change would produce, `oldPostcopy`
 * whether postcopy-ram was on before it.
 */
export function checkCapabilities(next: MigrationCapabilityStates, oldPostcopy: boolean, ctx: OptionsContext): void {
  if (!LIVE_BLOCK_MIGRATION && next['block']) fail(ERR.blockCompiledOut);
  if (next['postcopy-ram']) {
    if (next['compress']) fail(ERR.postcopyCompress);
    if (next['x-multifd']) fail(ERR.postcopyMultifd);
    // Only the destination needs host support, and only the first time it is switched on.
    if (!oldPostcopy && ctx.inmigrate && !(ctx.postcopyRamSupportedByHost?.() ?? false)) fail(ERR.postcopyUnsupported);
  }
}

export function isImplementedCapability(cap: MigrationCapability): boolean {
  return TABMIG_IMPLEMENTED_CAPABILITIES.includes(cap);
}

/** tabmig's rule: a capability it cannot honour is refused, never accepted and ignored. */
export function checkImplemented(enabling: Iterable<MigrationCapability>): void {
  for (const cap of enabling) if (!isImplementedCapability(cap)) fail(ERR.notImplemented(cap));
}

// ---------------------------------------------------------------------------------------------

export class MigrationOptions {
  private caps: MigrationCapabilityStates;
  private params: MigrationParameterValues;
  private globalValues: MigrationGlobalValues;

  constructor(plain?: Partial<MigrationOptionsPlain>) {
    this.caps = { ...allCapabilitiesOff(), ...plain?.capabilities };
    this.params = { ...defaultParameters(), ...plain?.parameters };
    this.globalValues = { ...defaultGlobals(), ...plain?.globals };
  }

  static fromPlain(plain: MigrationOptionsPlain): MigrationOptions {
    return new MigrationOptions(plain);
  }

  toPlain(): MigrationOptionsPlain {
    return { capabilities: { ...this.caps }, parameters: { ...this.params }, globals: { ...this.globalValues } };
  }

  clone(): MigrationOptions {
    return new MigrationOptions(this.toPlain());
  }

  // --- typed getters ---

  capability(cap: MigrationCapability): boolean {
    return this.caps[cap];
  }

  parameter<K extends MigrationParameter>(name: K): MigrationParameterValues[K] {
    return this.params[name];
  }

  global<K extends MigrationGlobalName>(name: K): MigrationGlobalValues[K] {
    return this.globalValues[name];
  }

  get capabilities(): Readonly<MigrationCapabilityStates> {
    return { ...this.caps };
  }

  get parameters(): Readonly<MigrationParameterValues> {
    return { ...this.params };
  }

  get globals(): Readonly<MigrationGlobalValues> {
    return { ...this.globalValues };
  }

  /** Bytes per second; 0 means no limit (QEMU's rate limiter ignores a zero limit). */
  get maxBandwidth(): number {
    return this.params['max-bandwidth'];
  }

  /** Milliseconds a destination waits for its source's next byte or verdict; 0: for ever. */
  get incomingIdleTimeout(): number {
    return this.params['x-incoming-idle-timeout'];
  }

  /**
   * tls-creds: in tabmig the pairing secret itself (there are no credential objects to name):
   * webrtc: peers prove they share it over both DTLS fingerprints (transport/pairing.ts). '' none.
   */
  get tlsCreds(): string {
    return this.params['tls-creds'];
  }

  /** Milliseconds a source waits for any word from its destination before it fails; 0: for ever. */
  get outgoingIdleTimeout(): number {
    return this.params['x-outgoing-idle-timeout'];
  }

  /** Milliseconds the source may stay stopped for the final pass. */
  get downtimeLimit(): number {
    return this.params['downtime-limit'];
  }

  get xbzrleCacheSize(): number {
    return this.params['xbzrle-cache-size'];
  }

  get useEvents(): boolean {
    return this.caps['events'];
  }

  get useReturnPath(): boolean {
    return this.caps['return-path'];
  }

  get pauseBeforeSwitchover(): boolean {
    return this.caps['pause-before-switchover'];
  }

  get postcopyRam(): boolean {
    return this.caps['postcopy-ram'];
  }

  get sendSectionFooter(): boolean {
    return this.globalValues['send-section-footer'];
  }

  get sendConfiguration(): boolean {
    return this.globalValues['send-configuration'];
  }

  get storeGlobalState(): boolean {
    return this.globalValues['store-global-state'];
  }

  get onlyMigratable(): boolean {
    return this.globalValues['only-migratable'];
  }

  get decompressErrorCheck(): boolean {
    return this.globalValues['decompress-error-check'];
  }

  // --- QMP commands ---

  /**
   * migrate-set-capabilities. `list` is the command's `capabilities` argument as received.
   * Refused while a migration is set up or active; otherwise the whole new set is checked
   * against the old one and applied only if every check passes.
   */
  setCapabilities(list: unknown, ctx: OptionsContext): void {
    const requested = parseCapabilityList(list);
    if (isSetupOrActive(ctx.status)) fail(ERR.migrationActive);
    const next = { ...this.caps };
    for (const { capability, state } of requested) next[capability] = state;
    checkCapabilities(next, this.caps['postcopy-ram'], ctx);
    // Only what this change switches on: turning an unimplemented capability off is fine.
    checkImplemented(requested.filter((r) => next[r.capability] && !this.caps[r.capability]).map((r) => r.capability));
    this.caps = next;
  }

  /**
   * migrate-set-parameters. `args` is the command's argument object. Checked as a whole
   * against the current values and applied only if valid. Like QEMU, allowed during a
   * migration (that is how max-bandwidth and downtime-limit are tuned while it runs).
   * Returns the names that were set, for pushing them to a running migration.
   */
  setParameters(args: unknown): MigrationParameter[] {
    const update = parseParameterArguments(args);
    const next: MigrationParameterValues = { ...this.params, ...update };
    checkParameters(next);
    this.params = next;
    return Object.keys(update) as MigrationParameter[];
  }

  /** query-migrate-capabilities: every capability in QEMU's order (block only in builds that have it). */
  queryCapabilities(): MigrationCapabilityStatus[] {
    return MIGRATION_CAPABILITIES.filter((c) => LIVE_BLOCK_MIGRATION || c !== 'block').map((capability) => ({
      capability,
      state: this.caps[capability],
    }));
  }

  /** query-migrate-parameters: every member, in QEMU's order; unset TLS strings are "". */
  queryParameters(): MigrationParameterValues {
    const out = {} as Record<MigrationParameter, unknown>;
    for (const name of MIGRATION_PARAMETER_NAMES) out[name] = this.params[name];
    return out as MigrationParameterValues;
  }

  // --- legacy commands ---

  /** migrate_set_speed {value: int}: bytes per second into max-bandwidth. */
  migrateSetSpeed(value: unknown): void {
    this.setParameters({ 'max-bandwidth': readInt(value, 'value') });
  }

  /** migrate_set_downtime {value: number}: seconds (fractional) into downtime-limit milliseconds. */
  migrateSetDowntime(value: unknown): void {
    const seconds = readNumber(value, 'value');
    if (!(seconds >= 0 && seconds <= MAX_MIGRATE_DOWNTIME_SECONDS)) fail(ERR.setDowntimeSeconds);
    // C converts the double to int64 by truncation.
    this.setParameters({ 'downtime-limit': Math.trunc(seconds * 1000) });
  }

  /** migrate-set-cache-size {value: int}: bytes into xbzrle-cache-size. */
  migrateSetCacheSize(value: unknown): void {
    this.setParameters({ 'xbzrle-cache-size': readInt(value, 'value') });
  }

  /** query-migrate-cache-size. */
  queryMigrateCacheSize(): number {
    return this.params['xbzrle-cache-size'];
  }

  // --- start-up (the `migration` object's properties) ---

  setGlobal<K extends MigrationGlobalName>(name: K, value: MigrationGlobalValues[K]): void {
    this.globalValues[name] = value;
  }

  /** For -global: sets a parameter without checks; objectCheck() judges the result. */
  setParameterUnchecked<K extends MigrationParameter>(name: K, value: MigrationParameterValues[K]): void {
    this.params[name] = value;
  }

  /** For -global: sets a capability without checks; objectCheck() judges the result. */
  setCapabilityUnchecked(cap: MigrationCapability, state: boolean): void {
    this.caps[cap] = state;
  }

  /**
   * QEMU's migration_object_check, run once after -global properties are applied: the
   * parameters must pass migrate_params_check and the enabled capabilities migrate_caps_check
   * (starting from all off), and tabmig must implement every enabled capability.
   */
  objectCheck(ctx: OptionsContext = IDLE_CONTEXT): void {
    checkParameters(this.params);
    checkCapabilities(this.caps, false, ctx);
    checkImplemented(MIGRATION_CAPABILITIES.filter((c) => this.caps[c]));
  }
}
