// `-global migration.NAME=VALUE`: the `migration` object's properties, which the page takes
// from its URL (`?global=migration.send-section-footer=off`, repeatable). Parsed the way QEMU
// parses -global and sets a qdev property, then judged once by the object check, as QEMU does
// at start-up.

import { QmpError } from '../qapi/qmp-error.js';
import { parseBase0, parseOptionSize, qapiBoolParse } from './options-hmp.js';
import {
  ERR,
  IDLE_CONTEXT,
  MIGRATION_PROPERTIES,
  MigrationOptions,
  type MigrationPropertyInfo,
  type MigrationPropertyTarget,
  type OptionsContext,
} from './options.js';

/** The driver name of QEMU's migration object (TYPE_MIGRATION). */
export const MIGRATION_DRIVER = 'migration';

export interface GlobalOption {
  driver: string;
  property: string;
  value: string;
}

export interface MigrationGlobalSetting {
  property: string;
  target: MigrationPropertyTarget;
  value: boolean | number;
}

/**
 * qemu_global_option(): "DRIVER.PROPERTY=VALUE", or the long form
 * "driver=DRIVER,property=PROPERTY,value=VALUE".
 */
export function parseGlobalOption(text: string): GlobalOption {
  const short = /^([^.=]{1,63})\.([^=]{1,63})=([\s\S]*)$/.exec(text);
  if (short) return { driver: short[1]!, property: short[2]!, value: short[3]! };
  const long: Partial<GlobalOption> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key !== 'driver' && key !== 'property' && key !== 'value') throw QmpError.generic(`Invalid parameter '${key}'`);
    long[key] = eq < 0 ? 'on' : part.slice(eq + 1);
  }
  if (long.driver === undefined) throw QmpError.generic(ERR.missingParameter('driver'));
  if (long.property === undefined) throw QmpError.generic(ERR.missingParameter('property'));
  return { driver: long.driver, property: long.property, value: long.value ?? '' };
}

/** The string input visitor's unsigned integer, range-checked for the property's width. */
function parseUnsigned(name: string, text: string, type: 'uint8' | 'uint32' | 'uint64'): number {
  const p = parseBase0(text);
  if (!p || p.magnitude >= 2n ** 64n) throw QmpError.generic(ERR.invalidParameterValue(name, 'uint64'));
  // strtoull negates in unsigned arithmetic: "-1" is 2^64-1.
  const v = p.negative && p.magnitude !== 0n ? 2n ** 64n - p.magnitude : p.magnitude;
  const max = type === 'uint8' ? 0xffn : type === 'uint32' ? 0xffff_ffffn : 2n ** 64n - 1n;
  if (v > max) throw QmpError.generic(ERR.invalidParameterValue(name, type));
  return Number(v);
}

function parsePropertyValue(name: string, info: MigrationPropertyInfo, text: string): boolean | number {
  switch (info.type) {
    case 'bool':
      return qapiBoolParse(name, text);
    case 'size':
      return parseOptionSize(name, text);
    default:
      return parseUnsigned(name, text, info.type);
  }
}

/**
 * Parses one -global option for the migration object, e.g.
 * 'migration.send-section-footer=off'. Returns null when it names another driver (not ours to
 * judge); throws QmpError with QEMU's wording for an unknown property or a bad value.
 */
export function parseMigrationGlobal(text: string): MigrationGlobalSetting | null {
  const g = parseGlobalOption(text);
  if (g.driver !== MIGRATION_DRIVER) return null;
  const fail = (why: string): never => {
    throw QmpError.generic(ERR.cantApplyGlobal(g.driver, g.property, g.value, why));
  };
  const info = Object.hasOwn(MIGRATION_PROPERTIES, g.property) ? MIGRATION_PROPERTIES[g.property]! : undefined;
  if (!info) return fail(ERR.propertyNotFound(MIGRATION_DRIVER, g.property));
  let value: boolean | number;
  try {
    value = parsePropertyValue(g.property, info, g.value);
  } catch (e) {
    if (e instanceof QmpError) return fail(e.desc);
    throw e;
  }
  return { property: g.property, target: info.target, value };
}

/** Sets one parsed property; nothing is checked until objectCheck(). */
export function applyMigrationGlobal(opts: MigrationOptions, setting: MigrationGlobalSetting): void {
  const t = setting.target;
  switch (t.kind) {
    case 'global':
      opts.setGlobal(t.name, setting.value as boolean);
      break;
    case 'capability':
      opts.setCapabilityUnchecked(t.name, setting.value as boolean);
      break;
    case 'parameter':
      opts.setParameterUnchecked(t.name, setting.value as number);
      break;
  }
}

/** The `global` entries of a page URL's query string, in order. */
export function globalsFromUrl(search: string): string[] {
  return new URLSearchParams(search).getAll('global');
}

/**
 * Start-up: the options QEMU's migration object would have after these -global options
 * (other drivers' are skipped), checked as migration_object_check does. Throws QmpError.
 */
export function migrationOptionsFromGlobals(globals: readonly string[], ctx: OptionsContext = IDLE_CONTEXT): MigrationOptions {
  const opts = new MigrationOptions();
  for (const text of globals) {
    const setting = parseMigrationGlobal(text);
    if (setting) applyMigrationGlobal(opts, setting);
  }
  opts.objectCheck(ctx);
  return opts;
}
