// The human monitor (HMP) behind `human-monitor-command`: a table of commands in QEMU's own terms
// (name with '|' aliases, args_type, params, help), QEMU's command-line parser (quoted strings,
// expressions, `/fmt`, `-x` flags) and its messages, and output with "\r\n" line ends, since
// QEMU's monitor turns every "\n" into "\r\n" and human-monitor-command returns that raw text.

import { QmpError } from '../qapi/qmp-error.js';

/** Where a command prints (QEMU's monitor_printf). */
export interface HmpOutput {
  print(text: string): void;
}

/**
 * Parsed arguments, keyed as in args_type. Strings for s/S/F/B, numbers for i and o, bigint for l
 * (64-bit expressions), booleans for b and -x flags; `/` fills count, format (one letter) and size.
 */
export type HmpArgs = Record<string, string | number | bigint | boolean | undefined>;

export interface HmpCommand {
  /** The name, with aliases after '|' ("cont|c"). */
  name: string;
  /**
   * QEMU's args_type: comma-separated `key:TYPE` where TYPE is s (string), S (rest of line),
   * F/B (string), i (32-bit expression), l (64-bit expression), o (size, default unit MiB),
   * b (on|off), / (memory format), -X (flag -X), -Xs (flag -X with a string value);
   * a trailing '?' makes an argument optional. "" for none.
   */
  argsType: string;
  /** How the arguments read in help ("/fmt addr"). */
  params: string;
  help: string;
  /** Throwing reports "Error: <message>" as QEMU's hmp_handle_error does. */
  handler: (out: HmpOutput, args: HmpArgs) => void | Promise<void>;
}

interface Entry extends Omit<HmpCommand, 'handler'> {
  handler?: HmpCommand['handler'];
  subTable?: Entry[];
}

/** A parse failure; the message (if any) has already been printed. */
class ParseFailed extends Error {}

class OutputBuffer implements HmpOutput {
  text = '';
  print(text: string): void {
    this.text += text.replace(/\n/g, '\r\n');
  }
}

export class Hmp {
  private readonly table: Entry[] = [];
  private readonly infoTable: Entry[] = [];
  /** QEMU remembers the last memory format and size between commands. */
  private defaultFormat = 'x';
  private defaultSize = 4;

  constructor() {
    this.table.push({
      name: 'help|?',
      argsType: 'name:S?',
      params: '[cmd]',
      help: 'show the help',
      handler: (out, args) => this.help(out, args.name as string | undefined),
    });
    this.table.push({
      name: 'info',
      argsType: 'item:s?',
      params: '[subcommand]',
      help: 'show various information about the system state',
      handler: (out) => this.help(out, 'info'),
      subTable: this.infoTable,
    });
  }

  /** Adds a top-level command (later issues add `migrate`, `migrate_set_capability`, …). */
  register(cmd: HmpCommand): void {
    addTo(this.table, cmd);
  }

  /** Adds an `info` subcommand (`info migrate`, …). */
  registerInfo(cmd: HmpCommand): void {
    addTo(this.infoTable, cmd);
  }

  /** Runs one command line and returns everything it printed. Never throws. */
  async run(commandLine: string): Promise<string> {
    const out = new OutputBuffer();
    try {
      await this.handle(out, commandLine);
    } catch (e) {
      if (!(e instanceof ParseFailed)) out.print(`Error: ${e instanceof QmpError ? e.desc : e instanceof Error ? e.message : String(e)}\n`);
    }
    return out.text;
  }

  private async handle(out: HmpOutput, line: string): Promise<void> {
    const found = this.parseCommand(out, line, 0, this.table);
    if (!found) return;
    const { cmd, pos } = found;
    if (!cmd.handler) {
      out.print(`Command "${line.slice(0, pos)}" is not available.\n`);
      return;
    }
    let args: HmpArgs;
    try {
      args = this.parseArguments(out, line, pos, cmd);
    } catch (e) {
      if (!(e instanceof ParseFailed)) throw e;
      out.print(`Try "help ${line.slice(0, pos).trimEnd()}" for more information\n`);
      return;
    }
    await cmd.handler(out, args);
  }

  /** Finds the command (descending into `info`'s table), or prints "unknown command". */
  private parseCommand(out: HmpOutput, line: string, from: number, table: Entry[]): { cmd: Entry; pos: number } | null {
    let p = skipSpaces(line, from);
    if (p >= line.length) return null;
    const start = p;
    while (p < line.length && line[p] !== '/' && !isSpace(line[p]!)) p++;
    const name = line.slice(start, p);
    const cmd = table.find((c) => matches(name, c.name));
    if (!cmd) {
      out.print(`unknown command: '${line.slice(0, p)}'\n`);
      return null;
    }
    p = skipSpaces(line, p);
    if (cmd.subTable && p < line.length) return this.parseCommand(out, line, p, cmd.subTable);
    return { cmd, pos: p };
  }

  private parseArguments(out: HmpOutput, line: string, from: number, cmd: Entry): HmpArgs {
    const args: HmpArgs = {};
    let p = from;
    const fail = (msg?: string): never => {
      if (msg !== undefined) out.print(msg);
      throw new ParseFailed();
    };
    const specs = parseArgsType(cmd.argsType);
    for (let n = 0; n < specs.length; n++) {
      const { key, type, mods } = specs[n]!;
      switch (type) {
        case 's':
        case 'F':
        case 'B': {
          p = skipSpaces(line, p);
          if (mods.startsWith('?') && p >= line.length) break;
          const r = getStr(line, p);
          if (!r) {
            const what = type === 'F' ? 'filename' : type === 'B' ? 'block device name' : 'string';
            fail(`${cmd.name}: ${what} expected\n`);
          } else {
            args[key] = r.value;
            p = r.end;
          }
          break;
        }
        case 'S': {
          p = skipSpaces(line, p);
          if (mods.startsWith('?') && p >= line.length) break;
          if (p >= line.length) fail(`${cmd.name}: string expected\n`);
          args[key] = line.slice(p);
          p = line.length;
          break;
        }
        case 'i':
        case 'l': {
          p = skipSpaces(line, p);
          if (mods.startsWith('?') && p >= line.length) break;
          const r = evaluate(line, p);
          if ('error' in r) fail(`${r.error}\n`);
          else {
            p = r.end;
            if (type === 'i') {
              if (BigInt.asUintN(32, r.value >> 32n) !== 0n) fail(`'${cmd.name}' has failed: integer is for 32-bit values\n`);
              args[key] = Number(r.value);
            } else {
              args[key] = r.value;
            }
          }
          break;
        }
        case 'o': {
          p = skipSpaces(line, p);
          if (mods.startsWith('?') && p >= line.length) break;
          const r = parseSizeMiB(line, p);
          if (!r) fail('invalid size\n');
          else {
            args[key] = r.value;
            p = r.end;
          }
          break;
        }
        case 'b': {
          p = skipSpaces(line, p);
          let e = p;
          while (e < line.length && line[e]! > ' ' && line[e]! <= '~') e++;
          const word = line.slice(p, e);
          if (word === 'on') args[key] = true;
          else if (word === 'off') args[key] = false;
          else fail("Expected 'on' or 'off'\n");
          p = e;
          break;
        }
        case '-': {
          const letter = mods[0];
          if (!letter) fail(`${cmd.name}: unknown type '-'\n`);
          const takesValue = mods[1] === 's';
          const before = p;
          p = skipSpaces(line, p);
          if (line[p] === '-') {
            const given = line[p + 1] ?? '';
            if (given !== letter) {
              // A later flag, or one this command does not have.
              const later = specs.slice(n + 1).some((s) => s.type === '-' && s.mods[0] === given);
              if (!later) fail(`${cmd.name}: unsupported option -${given}\n`);
              p = before;
            } else if (takesValue) {
              p = skipSpaces(line, p + 2);
              const r = getStr(line, p);
              if (!r) fail(`${cmd.name}: value expected for -${letter}\n`);
              else {
                args[key] = r.value;
                p = r.end;
              }
            } else {
              args[key] = true;
              p += 2;
            }
          }
          break;
        }
        case '/': {
          p = skipSpaces(line, p);
          let count = 1;
          let format: string;
          let size: number;
          if (line[p] === '/') {
            p++;
            if (isDigit(line[p])) {
              count = 0;
              while (isDigit(line[p])) count = count * 10 + (line.charCodeAt(p++) - 48);
            }
            let fmt = '';
            let sz = -1;
            for (;;) {
              const c = line[p];
              if (c !== undefined && 'oduxic'.includes(c)) fmt = c;
              else if (c === 'b') sz = 1;
              else if (c === 'h') sz = 2;
              else if (c === 'w') sz = 4;
              else if (c === 'g' || c === 'L') sz = 8;
              else break;
              p++;
            }
            if (p < line.length && !isSpace(line[p]!)) fail(`invalid char in format: '${line[p]}'\n`);
            format = fmt || this.defaultFormat;
            if (format !== 'i') {
              if (sz < 0) sz = this.defaultSize;
              this.defaultSize = sz;
            }
            size = sz;
            this.defaultFormat = format;
          } else {
            format = this.defaultFormat;
            size = format !== 'i' ? this.defaultSize : -1;
          }
          args.count = count;
          args.format = format;
          args.size = size;
          break;
        }
        default:
          fail(`${cmd.name}: unknown type '${type}'\n`);
      }
    }
    p = skipSpaces(line, p);
    if (p < line.length) fail(`${cmd.name}: extraneous characters at the end of line\n`);
    return args;
  }

  /** `help [cmd]`: "name params -- help" lines, sorted by name as QEMU sorts its tables. */
  private help(out: HmpOutput, name: string | undefined): void {
    const words: string[] = [];
    if (name !== undefined) {
      let p = 0;
      for (;;) {
        p = skipSpaces(name, p);
        if (p >= name.length) break;
        const r = getStr(name, p);
        if (!r) return;
        words.push(r.value);
        p = r.end;
      }
    }
    this.helpDump(out, this.table, words, 0);
  }

  private helpDump(out: HmpOutput, table: Entry[], words: string[], index: number): void {
    const dumpOne = (cmd: Entry) => {
      const prefix = words.slice(0, index).map((w) => `${w} `).join('');
      out.print(`${prefix}${cmd.name} ${cmd.params} -- ${cmd.help}\n`);
    };
    if (index >= words.length) {
      for (const cmd of sorted(table)) dumpOne(cmd);
      return;
    }
    const cmd = table.find((c) => matches(words[index]!, c.name));
    if (cmd) {
      if (cmd.subTable) this.helpDump(out, cmd.subTable, words, index + 1);
      else dumpOne(cmd);
      return;
    }
    out.print(`unknown command: '${words.slice(0, index + 1).join(' ')}'\n`);
  }
}

function addTo(table: Entry[], cmd: HmpCommand): void {
  const names = cmd.name.split('|');
  const clash = table.find((c) => c.name.split('|').some((n) => names.includes(n)));
  if (clash) throw new Error(`HMP command '${cmd.name}' clashes with '${clash.name}'`);
  parseArgsType(cmd.argsType); // fail at registration, not at first use
  table.push({ ...cmd });
}

function sorted(table: Entry[]): Entry[] {
  return [...table].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function matches(name: string, list: string): boolean {
  return list.split('|').includes(name);
}

interface ArgSpec {
  key: string;
  type: string;
  mods: string;
}

function parseArgsType(argsType: string): ArgSpec[] {
  if (argsType === '') return [];
  return argsType.split(',').map((part) => {
    const colon = part.indexOf(':');
    if (colon <= 0 || colon === part.length - 1) throw new Error(`bad HMP args_type '${argsType}'`);
    return { key: part.slice(0, colon), type: part[colon + 1]!, mods: part.slice(colon + 2) };
  });
}

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

function skipSpaces(s: string, p: number): number {
  while (p < s.length && isSpace(s[p]!)) p++;
  return p;
}

/** QEMU's get_str: a word, or a double-quoted string with \n \r \\ \' \" escapes. */
function getStr(s: string, from: number): { value: string; end: number } | null {
  let p = skipSpaces(s, from);
  if (p >= s.length) return null;
  let value = '';
  if (s[p] === '"') {
    p++;
    while (p < s.length && s[p] !== '"') {
      if (s[p] === '\\') {
        const c = s[p + 1];
        p += 2;
        if (c === 'n') value += '\n';
        else if (c === 'r') value += '\r';
        else if (c === '\\' || c === "'" || c === '"') value += c;
        else return null;
      } else {
        value += s[p++];
      }
    }
    if (s[p] !== '"') return null;
    p++;
  } else {
    while (p < s.length && !isSpace(s[p]!)) value += s[p++];
  }
  return { value, end: p };
}

/** qemu_strtosz_MiB: a number with an optional B/K/M/G/T/P/E suffix, MiB when none. */
function parseSizeMiB(s: string, from: number): { value: number; end: number } | null {
  const m = /^(\d+(?:\.\d*)?|\.\d+)([bkmgtpe])?/i.exec(s.slice(from));
  if (!m) return null;
  const exp = 'bkmgtpe'.indexOf((m[2] ?? 'm').toLowerCase());
  const value = Math.floor(parseFloat(m[1]!) * 2 ** (10 * exp));
  if (!Number.isFinite(value) || value > 2 ** 63 - 1) return null;
  return { value, end: from + m[0].length };
}

// ---------------------------------------------------------------------------------------------
// Expressions (QEMU's get_expr: + - below & | ^ below * / %, unary + - ~, (), 'c', numbers in C
// notation), evaluated in signed 64 bits.

export type ExprResult = { value: bigint; end: number } | { error: string };

class ExprError extends Error {}

export function evaluate(s: string, from: number): ExprResult {
  let p = skipSpaces(s, from);
  const wrap = (v: bigint) => BigInt.asIntN(64, v);
  const next = () => {
    if (p < s.length) p = skipSpaces(s, p + 1);
  };
  const fail = (msg: string): never => {
    throw new ExprError(msg);
  };

  const unary = (): bigint => {
    const c = s[p];
    switch (c) {
      case '+':
        next();
        return unary();
      case '-':
        next();
        return wrap(-unary());
      case '~':
        next();
        return wrap(~unary());
      case '(': {
        next();
        const v = sum();
        if (s[p] !== ')') fail("')' expected");
        next();
        return v;
      }
      case "'": {
        p++;
        if (p >= s.length) fail('character constant expected');
        const v = BigInt(s.charCodeAt(p));
        p++;
        if (s[p] !== "'") fail("missing terminating ' character");
        next();
        return v;
      }
      case '$':
        p++;
        while (p < s.length && /[A-Za-z0-9_.]/.test(s[p]!)) p++;
        p = skipSpaces(s, p);
        return fail('unknown register');
      case undefined:
        return fail('unexpected end of expression');
      default: {
        const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(s.slice(p));
        if (!m) return fail(`invalid char '${c}' in expression`);
        const v = BigInt(m[1]!.length > 1 && m[1]![0] === '0' && !/[xX]/.test(m[1]!) ? '0o' + m[1]!.slice(1) : m[1]!);
        if (v > 2n ** 64n - 1n) fail('number too large');
        p = skipSpaces(s, p + m[0].length);
        return wrap(v);
      }
    }
  };
  const prod = (): bigint => {
    let v = unary();
    for (;;) {
      const op = s[p];
      if (op !== '*' && op !== '/' && op !== '%') return v;
      next();
      const w = unary();
      if (op === '*') v = wrap(v * w);
      else {
        if (w === 0n) fail('division by zero');
        v = wrap(op === '/' ? v / w : v % w);
      }
    }
  };
  const logic = (): bigint => {
    let v = prod();
    for (;;) {
      const op = s[p];
      if (op !== '&' && op !== '|' && op !== '^') return v;
      next();
      const w = prod();
      v = wrap(op === '&' ? v & w : op === '|' ? v | w : v ^ w);
    }
  };
  const sum = (): bigint => {
    let v = logic();
    for (;;) {
      const op = s[p];
      if (op !== '+' && op !== '-') return v;
      next();
      const w = logic();
      v = wrap(op === '+' ? v + w : v - w);
    }
  };

  try {
    const value = sum();
    return { value, end: p };
  } catch (e) {
    if (e instanceof ExprError) return { error: e.message };
    throw e;
  }
}
