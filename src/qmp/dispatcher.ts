// The QMP dispatcher: a registry of commands with QAPI-like argument schemas, and one entry point
// that answers every input with QEMU's reply shapes — `{return}` or `{error: {class, desc}}`, plus
// the request's `id` — and never throws. Input checks and argument errors use the words of QEMU's
// qmp-dispatch.c and qobject-input-visitor.c, so a client written against QEMU reads them as is.

import { QERR } from '../qapi/error-texts.js';
import { QmpError, type QmpErrorClass } from '../qapi/qmp-error.js';

// ---------------------------------------------------------------------------------------------
// Argument schemas

/** QAPI's built-in scalar types, plus 'object' for a free-form JSON object. */
export type QapiScalar =
  | 'str'
  | 'int'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'size'
  | 'number'
  | 'bool'
  | 'null'
  | 'any'
  | 'object';

export interface QapiEnum {
  readonly kind: 'enum';
  readonly values: readonly string[];
}

export interface QapiArray {
  readonly kind: 'array';
  readonly of: QapiType;
}

export interface QapiStruct {
  readonly kind: 'struct';
  readonly members: QapiSchema;
}

export type QapiType = QapiScalar | QapiEnum | QapiArray | QapiStruct;

/**
 * Members in QAPI's own notation: a leading '*' marks an optional member
 * (`{uri: 'str', '*detach': 'bool'}`). Members are checked in the order written, as QEMU's
 * generated visitors do, and only then are unknown members reported.
 */
export type QapiSchema = Readonly<Record<string, QapiType>>;

export const qapiEnum = (values: readonly string[]): QapiEnum => ({ kind: 'enum', values });
export const qapiArray = (of: QapiType): QapiArray => ({ kind: 'array', of });
export const qapiStruct = (members: QapiSchema): QapiStruct => ({ kind: 'struct', members });

// ---------------------------------------------------------------------------------------------
// Replies

export interface QmpErrorBody {
  class: QmpErrorClass;
  desc: string;
}

export type QmpSuccess = { return: unknown; id?: unknown };
export type QmpFailure = { error: QmpErrorBody; id?: unknown };
export type QmpReply = QmpSuccess | QmpFailure;

export function isQmpError(reply: QmpReply): reply is QmpFailure {
  return 'error' in reply;
}

// ---------------------------------------------------------------------------------------------
// Commands

export type QmpArgs = Record<string, any>;

export interface QmpCommandDef<A extends QmpArgs = QmpArgs> {
  name: string;
  /** Argument schema; omitted = the command takes no arguments. */
  args?: QapiSchema;
  /** Gets the checked arguments (only schema members; optional ones absent when not given).
   *  Returns the command's result (undefined → `{}`, as QEMU answers commands without 'returns')
   *  or throws a QmpError. */
  handler: (args: A) => unknown;
  /** Overrides the dispatcher's time limit for this command (0 = none). */
  timeoutMs?: number;
}

export interface QmpDispatcherOptions {
  /** A command that has not answered after this long gets a GenericError, so a caller never
   *  waits forever on, say, a vCPU that does not stop (0 = no limit). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

export class QmpDispatcher {
  private readonly commands = new Map<string, QmpCommandDef>();
  private readonly timeoutMs: number;
  /** Commands run one at a time in arrival order, as on a QEMU monitor. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: QmpDispatcherOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Adds a command. Later issues call this to add theirs (migrate, query-migrate, …). */
  register<A extends QmpArgs = QmpArgs>(def: QmpCommandDef<A>): void {
    if (this.commands.has(def.name)) throw new Error(`QMP command '${def.name}' is already registered`);
    if (def.args) checkSchema(def.args, def.name);
    this.commands.set(def.name, def as unknown as QmpCommandDef);
  }

  unregister(name: string): boolean {
    return this.commands.delete(name);
  }

  has(name: string): boolean {
    return this.commands.has(name);
  }

  /** Registered command names, in registration order. */
  commandNames(): string[] {
    return [...this.commands.keys()];
  }

  /**
   * The QMP entry point (window.qmp): checks the input, runs the command after any still running,
   * and resolves to QEMU's reply. Never rejects.
   */
  execute(input: unknown): Promise<QmpReply> {
    const run = this.queue.then(() => this.dispatch(input));
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => ({ error: errorBody(e) }));
  }

  /** For a console: parses JSON text first (a parse error is answered, not thrown). */
  executeJson(text: string): Promise<QmpReply> {
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch (e) {
      return Promise.resolve({ error: { class: 'GenericError', desc: `JSON parse error, ${(e as Error).message}` } });
    }
    return this.execute(input);
  }

  /**
   * Runs a command from inside another command's handler (HMP's `info migrate` calling
   * query-migrate, say): checks the arguments and returns the result or throws a QmpError,
   * without waiting in the queue that the calling command already holds.
   */
  async call(name: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const cmd = this.commands.get(name);
    if (!cmd) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    const checked = checkArguments(cmd.args ?? {}, args);
    return await cmd.handler(checked);
  }

  private async dispatch(input: unknown): Promise<QmpReply> {
    if (!isPlainObject(input)) return { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } };
    const hasId = Object.prototype.hasOwnProperty.call(input, 'id') && input.id !== undefined;
    const withId = (reply: QmpReply): QmpReply => (hasId ? { ...reply, id: input.id } : reply);
    try {
      const { name, args } = checkRequest(input);
      const cmd = this.commands.get(name);
      if (!cmd) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
      const checked = checkArguments(cmd.args ?? {}, args);
      const result = await this.withTimeout(cmd, Promise.resolve().then(() => cmd.handler(checked)));
      return withId({ return: result === undefined ? {} : toJson(result) });
    } catch (e) {
      return withId({ error: errorBody(e) });
    }
  }

  private withTimeout<T>(cmd: QmpCommandDef, p: Promise<T>): Promise<T> {
    const ms = cmd.timeoutMs ?? this.timeoutMs;
    if (!ms) return p;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(QmpError.generic(`Command ${cmd.name} did not complete within ${ms} ms`)),
        ms,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

// ---------------------------------------------------------------------------------------------
// The request object (qmp_dispatch_check_obj)

function checkRequest(req: Record<string, unknown>): { name: string; args: Record<string, unknown> } {
  let name: string | undefined;
  let args: Record<string, unknown> = {};
  // Members are checked in the order the client wrote them, like QEMU's walk over the dict.
  for (const [key, value] of Object.entries(req)) {
    if (value === undefined) continue; // absent on the wire
    if (key === 'execute') {
      if (typeof value !== 'string') throw QmpError.generic(`QMP input member 'execute' must be a string`);
      name = value;
    } else if (key === 'arguments') {
      if (!isPlainObject(value)) throw QmpError.generic(`QMP input member 'arguments' must be an object`);
      args = value;
    } else if (key === 'id') {
      continue;
    } else {
      throw QmpError.generic(`QMP input member '${key}' is unexpected`);
    }
  }
  if (name === undefined) throw QmpError.generic(`QMP input lacks member 'execute'`);
  return { name, args };
}

// ---------------------------------------------------------------------------------------------
// Arguments (qobject-input-visitor)

/**
 * A path through the arguments as QEMU's full_name() prints it: `capabilities[0].state`.
 * `name` is the member's own name (null for list elements), which QEMU uses alone in some texts.
 */
interface Path {
  readonly text: string;
  readonly name: string | null;
}

const child = (parent: Path | null, name: string): Path => ({
  text: parent && parent.text ? `${parent.text}.${name}` : name,
  name,
});
const element = (parent: Path, index: number): Path => ({ text: `${parent.text}[${index}]`, name: null });

export function checkArguments(schema: QapiSchema, args: Record<string, unknown>): QmpArgs {
  return checkMembers(schema, args, null);
}

function checkMembers(schema: QapiSchema, obj: Record<string, unknown>, at: Path | null): QmpArgs {
  const out: QmpArgs = {};
  const seen = new Set<string>();
  for (const [key, type] of Object.entries(schema)) {
    const optional = key.startsWith('*');
    const name = optional ? key.slice(1) : key;
    seen.add(name);
    const present = Object.prototype.hasOwnProperty.call(obj, name) && obj[name] !== undefined;
    const path = child(at, name);
    if (!present) {
      if (optional) continue;
      throw QmpError.generic(QERR.missingParameter(path.text));
    }
    out[name] = checkValue(type, obj[name], path);
  }
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined || seen.has(key)) continue;
    throw QmpError.generic(QERR.unexpectedParameter(child(at, key).text));
  }
  return out;
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int8: [-(2n ** 7n), 2n ** 7n - 1n],
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint8: [0n, 2n ** 8n - 1n],
  uint16: [0n, 2n ** 16n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
};

const TWO_63 = 2 ** 63;

function invalidType(path: Path, expected: string): QmpError {
  return QmpError.generic(QERR.invalidParameterType(path.text, expected));
}

function checkValue(type: QapiType, v: unknown, path: Path): unknown {
  if (typeof type === 'string') return checkScalar(type, v, path);
  switch (type.kind) {
    case 'enum': {
      if (typeof v !== 'string') throw invalidType(path, 'string');
      // QEMU names only the member here, not its full path (qapi-visit-core.c input_type_enum).
      if (!type.values.includes(v)) throw QmpError.generic(QERR.enumValue(path.name ?? 'null', v));
      return v;
    }
    case 'array': {
      if (!Array.isArray(v)) throw invalidType(path, 'array');
      return v.map((item, i) => checkValue(type.of, item, element(path, i)));
    }
    case 'struct': {
      if (!isPlainObject(v)) throw invalidType(path, 'object');
      return checkMembers(type.members, v, path);
    }
  }
}

function checkScalar(type: QapiScalar, v: unknown, path: Path): unknown {
  switch (type) {
    case 'str':
      if (typeof v !== 'string') throw invalidType(path, 'string');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw invalidType(path, 'boolean');
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidType(path, 'number');
      return v;
    case 'null':
      if (v !== null) throw invalidType(path, 'null');
      return null;
    case 'any':
      return v;
    case 'object':
      if (!isPlainObject(v)) throw invalidType(path, 'object');
      return v;
    case 'int':
    case 'int64':
    case 'int8':
    case 'int16':
    case 'int32': {
      if (!isInt64(v)) throw invalidType(path, 'integer');
      const range = INT_RANGES[type];
      if (range && (BigInt(v) < range[0] || BigInt(v) > range[1])) {
        throw QmpError.generic(`Parameter '${path.name ?? 'null'}' expects ${type}`);
      }
      return v;
    }
    case 'uint64':
    case 'size':
    case 'uint8':
    case 'uint16':
    case 'uint32': {
      // QEMU reads every unsigned type through uint64, which also takes negative integers (as
      // their two's complement), then range-checks the narrower ones by the member's own name.
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -TWO_63 || v >= 2 ** 64) {
        throw QmpError.generic(`Parameter '${path.text}' expects uint64`);
      }
      const value = v < 0 ? 2 ** 64 + v : v;
      const range = INT_RANGES[type];
      if (range && value > Number(range[1])) throw QmpError.generic(`Parameter '${path.name ?? 'null'}' expects ${type}`);
      return value;
    }
  }
}

function isInt64(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -TWO_63 && v < TWO_63;
}

function checkSchema(schema: QapiSchema, where: string): void {
  for (const [key, type] of Object.entries(schema)) {
    if (key === '*' || key === '') throw new Error(`${where}: bad member name '${key}'`);
    if (typeof type === 'object' && type.kind === 'struct') checkSchema(type.members, `${where}.${key}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function errorBody(e: unknown): QmpErrorBody {
  if (e instanceof QmpError) return { class: e.errorClass, desc: e.desc };
  if (e instanceof Error) return { class: 'GenericError', desc: e.message || e.name };
  return { class: 'GenericError', desc: String(e) };
}

/** What the reply would be after a trip over the wire: plain JSON, so the page and a socket agree. */
function toJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  if (text === undefined) throw QmpError.generic('Command returned a value that is not JSON');
  return JSON.parse(text);
}
