// The human monitor's side of migration options: `info migrate_capabilities`,
// `info migrate_parameters`, `info migrate_cache_size`, the globals/capabilities lines of
// `info migrate`, and the commands migrate_set_capability, migrate_set_parameter,
// migrate_set_speed, migrate_set_downtime and migrate_set_cache_size. Each command takes the
// text after its name and returns what the monitor prints ('' when all went well).

import { QmpError } from '../qapi/qmp-error.js';
import {
  ERR,
  MIGRATION_PARAMETERS,
  isMigrationCapability,
  isMigrationParameter,
  type MigrationOptions,
  type MigrationParameter,
  type MigrationParameterUpdate,
  type OptionsContext,
} from './options.js';

/** hmp_handle_error()'s prefix (QEMU 4.0 and later; 3.0 printed the bare message). */
export const HMP_ERROR_PREFIX = 'Error: ';

const onOff = (b: boolean) => (b ? 'on' : 'off');

// ---------------------------------------------------------------------------------------------
// info

/** `info migrate_capabilities`: one "name: on|off" line per capability. */
export function formatInfoMigrateCapabilities(opts: MigrationOptions): string {
  return opts
    .queryCapabilities()
    .map((c) => `${c.capability}: ${onOff(c.state)}\n`)
    .join('');
}

/** `info migrate_parameters`, with QEMU 3.0's units and quoting. */
export function formatInfoMigrateParameters(opts: MigrationOptions): string {
  const p = opts.queryParameters();
  const line = (name: MigrationParameter, text: string) => `${name}: ${text}\n`;
  return [
    line('compress-level', `${p['compress-level']}`),
    line('compress-threads', `${p['compress-threads']}`),
    line('decompress-threads', `${p['decompress-threads']}`),
    line('cpu-throttle-initial', `${p['cpu-throttle-initial']}`),
    line('cpu-throttle-increment', `${p['cpu-throttle-increment']}`),
    line('tls-creds', `'${p['tls-creds']}'`),
    line('tls-hostname', `'${p['tls-hostname']}'`),
    line('max-bandwidth', `${p['max-bandwidth']} bytes/second`),
    line('downtime-limit', `${p['downtime-limit']} milliseconds`),
    line('x-checkpoint-delay', `${p['x-checkpoint-delay']}`),
    line('block-incremental', onOff(p['block-incremental'])),
    line('x-multifd-channels', `${p['x-multifd-channels']}`),
    line('x-multifd-page-count', `${p['x-multifd-page-count']}`),
    line('xbzrle-cache-size', `${p['xbzrle-cache-size']}`),
    line('max-postcopy-bandwidth', `${p['max-postcopy-bandwidth']}`),
    line('x-incoming-idle-timeout', `${p['x-incoming-idle-timeout']} milliseconds`),
    line('x-outgoing-idle-timeout', `${p['x-outgoing-idle-timeout']} milliseconds`),
  ].join('');
}

/** `info migrate_cache_size` (QEMU's own spelling, "xbzrel", kept). */
export function formatInfoMigrateCacheSize(opts: MigrationOptions): string {
  return `xbzrel cache size: ${Math.floor(opts.queryMigrateCacheSize() / 1024)} kbytes\n`;
}

/** The "globals:" block that `info migrate` starts with (QEMU's migration_global_dump). */
export function formatMigrationGlobals(opts: MigrationOptions): string {
  const g = opts.globals;
  return (
    'globals:\n' +
    `store-global-state: ${onOff(g['store-global-state'])}\n` +
    `only-migratable: ${onOff(g['only-migratable'])}\n` +
    `send-configuration: ${onOff(g['send-configuration'])}\n` +
    `send-section-footer: ${onOff(g['send-section-footer'])}\n` +
    `decompress-error-check: ${onOff(g['decompress-error-check'])}\n`
  );
}

/** The one-line capability list `info migrate` prints once a migration has a status. */
export function formatCapabilitiesLine(opts: MigrationOptions): string {
  return 'capabilities: ' + opts.queryCapabilities().map((c) => `${c.capability}: ${onOff(c.state)} `).join('') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Number parsing as QEMU's helpers do it

const STRTOD_PREFIX = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;
const SIZE_SUFFIXES: Record<string, number> = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

export type StrtoszResult = { ok: true; value: number; end: number } | { ok: false; error: 'EINVAL' | 'ERANGE'; end: number };

/**
 * qemu_strtosz(): a decimal number with an optional binary suffix (B, K, M, G, T, P, E, either
 * case; without one `defaultSuffix` applies). Fractions need a suffix bigger than bytes. With
 * `allowTrailing`, parsing stops at the first character that is not part of the size (like a
 * non-NULL endptr); otherwise trailing characters are an error.
 */
export function qemuStrtosz(text: string, defaultSuffix: 'B' | 'M' = 'B', allowTrailing = false): StrtoszResult {
  const m = STRTOD_PREFIX.exec(text);
  if (!m) return { ok: false, error: 'EINVAL', end: 0 };
  const val = Number(m[0]);
  let end = m[0].length;
  let exp = SIZE_SUFFIXES[text.charAt(end).toLowerCase()];
  if (exp !== undefined) end++;
  else exp = SIZE_SUFFIXES[defaultSuffix.toLowerCase()]!;
  const mul = 1024 ** exp;
  let res: StrtoszResult;
  if (mul === 1 && !Number.isInteger(val)) res = { ok: false, error: 'EINVAL', end };
  else if (val < 0 || val * mul >= 2 ** 64) res = { ok: false, error: 'ERANGE', end };
  else res = { ok: true, value: Math.trunc(val * mul), end };
  if (!allowTrailing && end !== text.length) return { ok: false, error: 'EINVAL', end };
  return res;
}

/** strtoll/strtoull's base 0 on a whole string: decimal, 0x hex or leading-0 octal, with a sign. */
export function parseBase0(text: string): { negative: boolean; magnitude: bigint } | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const digits = m[2]!;
  const octal = digits.length > 1 && digits[0] === '0' && !/^0[xX]/.test(digits);
  return { negative: m[1] === '-', magnitude: BigInt(octal ? '0o' + digits.slice(1) : digits) };
}

/** qemu_strtoi64(…, base 0) on a whole string. */
export function qemuStrtoi64(text: string): number | undefined {
  const p = parseBase0(text);
  if (!p) return undefined;
  const v = p.negative ? -p.magnitude : p.magnitude;
  if (v < -(2n ** 63n) || v >= 2n ** 63n) return undefined;
  return Number(v);
}

/** QAPI's boolean spellings (qapi_bool_parse). */
export function qapiBoolParse(name: string, text: string): boolean {
  if (['on', 'yes', 'true', 'y'].includes(text)) return true;
  if (['off', 'no', 'false', 'n'].includes(text)) return false;
  throw QmpError.generic(ERR.invalidParameterValue(name, "'on' or 'off'"));
}

/** The string input visitor's size: bytes by default. */
export function parseOptionSize(name: string, text: string): number {
  const r = qemuStrtosz(text, 'B');
  if (r.ok) return r.value;
  if (r.error === 'ERANGE') throw QmpError.generic(`Value '${text}' is out of range for parameter '${name}'`);
  throw QmpError.generic(ERR.invalidParameterValue(name, 'a non-negative number below 2^64'));
}

/** The string input visitor's int64. */
function parseInt64(name: string, text: string): number {
  const v = qemuStrtoi64(text);
  if (v === undefined) throw QmpError.generic(ERR.invalidParameterValue(name, 'int64'));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Monitor argument scanning (the 's', 'b', 'o' and 'T' argument types)

class MonitorArgError extends Error {
  override name = 'MonitorArgError';
}

class ArgScanner {
  constructor(
    private readonly cmd: string,
    private text: string,
  ) {}

  private skipSpace(): void {
    this.text = this.text.replace(/^\s+/, '');
  }

  /** 's': one word, or a double-quoted string with \n \r \\ \' \" escapes. */
  str(): string {
    this.skipSpace();
    const t = this.text;
    if (t === '') throw new MonitorArgError(`${this.cmd}: string expected`);
    if (t[0] !== '"') {
      const m = /^\S+/.exec(t)!;
      this.text = t.slice(m[0].length);
      return m[0];
    }
    let out = '';
    let i = 1;
    for (; i < t.length && t[i] !== '"'; i++) {
      if (t[i] !== '\\') {
        out += t[i];
        continue;
      }
      const c = t[++i];
      if (c === 'n') out += '\n';
      else if (c === 'r') out += '\r';
      else if (c === '\\' || c === "'" || c === '"') out += c;
      else throw new MonitorArgError(`${this.cmd}: string expected`);
    }
    if (t[i] !== '"') throw new MonitorArgError(`${this.cmd}: string expected`);
    this.text = t.slice(i + 1);
    return out;
  }

  /** 'b': exactly "on" or "off". */
  bool(): boolean {
    this.skipSpace();
    const word = /^\S*/.exec(this.text)![0];
    this.text = this.text.slice(word.length);
    if (word === 'on') return true;
    if (word === 'off') return false;
    throw new MonitorArgError("Expected 'on' or 'off'");
  }

  /** 'o': a size, mebibytes by default. */
  size(): number {
    this.skipSpace();
    const r = qemuStrtosz(this.text, 'M', true);
    if (!r.ok || r.value >= 2 ** 63) throw new MonitorArgError('invalid size');
    this.text = this.text.slice(r.end);
    return r.value;
  }

  /** 'T': seconds as a double, with an optional ms, us or ns suffix. */
  seconds(): number {
    this.skipSpace();
    const m = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(this.text) ?? /^[+-]?(?:inf(?:inity)?|nan)/i.exec(this.text);
    if (!m) throw new MonitorArgError('Number expected');
    let val = Number(m[0].replace(/inf(inity)?/i, 'Infinity'));
    if (!Number.isFinite(val)) throw new MonitorArgError('Bad number');
    let rest = this.text.slice(m[0].length);
    const unit = /^([mun])s/.exec(rest);
    if (unit) {
      val /= unit[1] === 'm' ? 1e3 : unit[1] === 'u' ? 1e6 : 1e9;
      rest = rest.slice(2);
    }
    if (rest !== '' && !/^\s/.test(rest)) throw new MonitorArgError('Unknown unit suffix');
    this.text = rest;
    return val;
  }

  end(): void {
    this.skipSpace();
    if (this.text !== '') throw new MonitorArgError(`${this.cmd}: extraneous characters at the end of line`);
  }
}

/** Runs a command's argument parsing and body, returning the monitor's output. */
function runHmp(cmd: string, args: string, body: (scan: ArgScanner) => void): string {
  const scan = new ArgScanner(cmd, args);
  try {
    body(scan);
    return '';
  } catch (e) {
    if (e instanceof MonitorArgError) return `${e.message}\nTry "help ${cmd}" for more information\n`;
    if (e instanceof QmpError) return `${HMP_ERROR_PREFIX}${e.desc}\n`;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * Turns `migrate_set_parameter NAME VALUE`'s two words into a migrate-set-parameters update,
 * as hmp_migrate_set_parameter does (throws QmpError with QEMU's text).
 */
export function parseHmpParameter(param: string, valuestr: string): MigrationParameterUpdate {
  if (!isMigrationParameter(param)) throw QmpError.generic(ERR.enumParse(param));
  switch (param) {
    case 'tls-creds':
    case 'tls-hostname':
      return { [param]: valuestr };
    case 'block-incremental':
      return { [param]: qapiBoolParse(param, valuestr) };
    case 'max-bandwidth': {
      // Not the visitor's size: a bare number here means mebibytes per second.
      const r = qemuStrtosz(valuestr, 'M');
      if (!r.ok || r.value >= 2 ** 63) throw QmpError.generic(`Invalid size ${valuestr}`);
      return { [param]: r.value };
    }
    case 'xbzrle-cache-size': {
      const v = parseOptionSize(param, valuestr);
      if (v >= 2 ** 63) throw QmpError.generic(`Invalid size ${valuestr}`);
      return { [param]: v };
    }
    case 'max-postcopy-bandwidth':
      return { [param]: parseOptionSize(param, valuestr) };
    default:
      if (MIGRATION_PARAMETERS[param].input !== 'int') throw new Error(`unhandled parameter ${param}`);
      return { [param]: parseInt64(param, valuestr) };
  }
}

/** `migrate_set_capability NAME on|off` */
export function hmpMigrateSetCapability(opts: MigrationOptions, args: string, ctx: OptionsContext): string {
  return runHmp('migrate_set_capability', args, (scan) => {
    const cap = scan.str();
    const state = scan.bool();
    scan.end();
    if (!isMigrationCapability(cap)) throw QmpError.generic(ERR.enumParse(cap));
    opts.setCapabilities([{ capability: cap, state }], ctx);
  });
}

/** `migrate_set_parameter NAME VALUE` */
export function hmpMigrateSetParameter(opts: MigrationOptions, args: string): string {
  return runHmp('migrate_set_parameter', args, (scan) => {
    const param = scan.str();
    const value = scan.str();
    scan.end();
    opts.setParameters(parseHmpParameter(param, value));
  });
}

/** `migrate_set_speed VALUE` (mebibytes/s by default). QEMU drops its errors silently. */
export function hmpMigrateSetSpeed(opts: MigrationOptions, args: string): string {
  return runHmp('migrate_set_speed', args, (scan) => {
    const value = scan.size();
    scan.end();
    try {
      opts.migrateSetSpeed(value);
    } catch (e) {
      if (!(e instanceof QmpError)) throw e;
    }
  });
}

/** `migrate_set_downtime SECONDS` (ms/us/ns suffixes allowed). QEMU drops its errors silently. */
export function hmpMigrateSetDowntime(opts: MigrationOptions, args: string): string {
  return runHmp('migrate_set_downtime', args, (scan) => {
    const value = scan.seconds();
    scan.end();
    try {
      opts.migrateSetDowntime(value);
    } catch (e) {
      if (!(e instanceof QmpError)) throw e;
    }
  });
}

/** `migrate_set_cache_size VALUE` (mebibytes by default). */
export function hmpMigrateSetCacheSize(opts: MigrationOptions, args: string): string {
  return runHmp('migrate_set_cache_size', args, (scan) => {
    const value = scan.size();
    scan.end();
    opts.migrateSetCacheSize(value);
  });
}

