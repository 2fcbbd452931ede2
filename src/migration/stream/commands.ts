// QEMU_VM_COMMAND packets (savevm.c: qemu_savevm_command_send / loadvm_process_command):
// u8 0x08, be16 command, be16 payload length, payload. The reader checks the command number and
// its length against MIG_CMD_ARGS before it looks at the payload, then each command's own rules.
// A saved stream (file, IndexedDB) carries no commands: there is no return path to a file.

import { StreamFormatError, hex } from './errors.js';
import {
  MIG_CMD_ARGS,
  MIG_CMD_MAX,
  MigCmd,
  PACKAGED_MAX_BYTES,
  POSTCOPY_RAM_DISCARD_VERSION,
  SectionType,
  VARIABLE_LENGTH,
} from './format.js';
import type { StreamReader } from './stream-reader.js';
import { encodeCountedString, type StreamWriter } from './stream-writer.js';

export interface DiscardRange {
  /** Byte offset in the block. */
  readonly start: number;
  /** Bytes. */
  readonly length: number;
}

export type MigCommand =
  | { readonly type: 'OPEN_RETURN_PATH' }
  | { readonly type: 'PING'; readonly value: number }
  /** Without page sizes: the empty advise of a source doing no RAM postcopy. */
  | { readonly type: 'POSTCOPY_ADVISE'; readonly hostPageSize?: number; readonly targetPageSize?: number }
  | { readonly type: 'POSTCOPY_LISTEN' }
  | { readonly type: 'POSTCOPY_RUN' }
  | { readonly type: 'POSTCOPY_RAM_DISCARD'; readonly blockName: string; readonly ranges: readonly DiscardRange[] }
  /** A nested stream (sections then EOF), loaded as a unit. */
  | { readonly type: 'PACKAGED'; readonly data: Uint8Array }
  | { readonly type: 'ENABLE_COLO' }
  | { readonly type: 'POSTCOPY_RESUME' }
  | { readonly type: 'RECV_BITMAP'; readonly blockName: string }
  | { readonly type: 'SWITCHOVER_START' };

export type MigCommandType = MigCommand['type'];

const TWO_32 = 2 ** 32;
const MAX_PAYLOAD = 0xffff;

// ---- writing ---------------------------------------------------------------------------------------

function payloadOf(cmd: MigCommand): Uint8Array {
  switch (cmd.type) {
    case 'OPEN_RETURN_PATH':
    case 'POSTCOPY_LISTEN':
    case 'POSTCOPY_RUN':
    case 'ENABLE_COLO':
    case 'POSTCOPY_RESUME':
    case 'SWITCHOVER_START':
      return new Uint8Array(0);
    case 'PING': {
      const p = new Uint8Array(4);
      new DataView(p.buffer).setUint32(0, cmd.value >>> 0);
      return p;
    }
    case 'POSTCOPY_ADVISE': {
      if (cmd.hostPageSize === undefined && cmd.targetPageSize === undefined) return new Uint8Array(0);
      const p = new Uint8Array(16);
      const v = new DataView(p.buffer);
      setBe64(v, 0, cmd.hostPageSize ?? 0);
      setBe64(v, 8, cmd.targetPageSize ?? 0);
      return p;
    }
    case 'POSTCOPY_RAM_DISCARD': {
      const name = encodeCountedString(cmd.blockName);
      if (cmd.ranges.length === 0) throw new RangeError('POSTCOPY_RAM_DISCARD needs at least one range');
      const p = new Uint8Array(3 + name.length + 16 * cmd.ranges.length);
      const v = new DataView(p.buffer);
      p[0] = POSTCOPY_RAM_DISCARD_VERSION;
      p[1] = name.length;
      p.set(name, 2);
      p[2 + name.length] = 0; // the nil after the name
      let at = 3 + name.length;
      for (const range of cmd.ranges) {
        setBe64(v, at, range.start);
        setBe64(v, at + 8, range.length);
        at += 16;
      }
      return p;
    }
    case 'PACKAGED': {
      const p = new Uint8Array(4);
      new DataView(p.buffer).setUint32(0, cmd.data.length);
      return p;
    }
    case 'RECV_BITMAP': {
      const name = encodeCountedString(cmd.blockName);
      const p = new Uint8Array(1 + name.length);
      p[0] = name.length;
      p.set(name, 1);
      return p;
    }
  }
}

function setBe64(v: DataView, at: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`be64 value ${n} is not a non-negative safe integer`);
  v.setUint32(at, Math.floor(n / TWO_32));
  v.setUint32(at + 4, n >>> 0);
}

/** Writes one command; for PACKAGED the nested stream's bytes follow the command. */
export function writeCommand(w: StreamWriter, cmd: MigCommand): void {
  const num = MigCmd[cmd.type];
  const payload = payloadOf(cmd);
  const spec = MIG_CMD_ARGS[num]!;
  if (spec.len !== VARIABLE_LENGTH && spec.len !== payload.length) {
    throw new RangeError(`${spec.name} payload is ${payload.length} bytes, not ${spec.len}`);
  }
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`${spec.name} payload of ${payload.length} bytes does not fit in be16`);
  if (cmd.type === 'PACKAGED' && cmd.data.length > PACKAGED_MAX_BYTES) {
    throw new RangeError(`packaged state of ${cmd.data.length} bytes is larger than ${PACKAGED_MAX_BYTES}`);
  }
  w.putU8(SectionType.COMMAND);
  w.putBe16(num);
  w.putBe16(payload.length);
  w.putBytes(payload);
  if (cmd.type === 'PACKAGED') w.putBytes(cmd.data);
}

/** How many discard ranges fit in one command for a block name (the payload length is be16). */
export function maxDiscardRanges(blockName: string): number {
  return Math.floor((MAX_PAYLOAD - 3 - encodeCountedString(blockName).length) / 16);
}

// ---- reading ---------------------------------------------------------------------------------------

export interface ReadCommandOptions {
  /** Largest PACKAGED payload accepted. */
  packagedMax?: number;
}

/** Reads a command after its 0x08 byte: table check first, then the command's own checks. */
export async function readCommand(r: StreamReader, options: ReadCommandOptions = {}): Promise<MigCommand> {
  if (!r.has(4)) await r.ensure(4);
  const num = r.getBe16();
  const len = r.getBe16();
  if (num >= MIG_CMD_MAX || num === MigCmd.INVALID) {
    throw r.fail(new StreamFormatError('unknown-command', `MIG_CMD 0x${hex(num)} unknown (len 0x${hex(len)})`));
  }
  const spec = MIG_CMD_ARGS[num]!;
  if (spec.len !== VARIABLE_LENGTH && spec.len !== len) {
    throw r.fail(new StreamFormatError('bad-command-length', `${spec.name} received with bad length - expecting ${spec.len}, got ${len}`));
  }
  if (!r.has(len)) await r.ensure(len);
  const p = r.getBytes(len);
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (num) {
    case MigCmd.OPEN_RETURN_PATH:
      return { type: 'OPEN_RETURN_PATH' };
    case MigCmd.PING:
      return { type: 'PING', value: v.getUint32(0) };
    case MigCmd.POSTCOPY_ADVISE:
      if (len === 0) return { type: 'POSTCOPY_ADVISE' };
      if (len !== 16) throw r.fail(new StreamFormatError('bad-command-length', `CMD_POSTCOPY_ADVISE invalid length (${len})`));
      return { type: 'POSTCOPY_ADVISE', hostPageSize: getBe64(r, v, 0), targetPageSize: getBe64(r, v, 8) };
    case MigCmd.POSTCOPY_LISTEN:
      return { type: 'POSTCOPY_LISTEN' };
    case MigCmd.POSTCOPY_RUN:
      return { type: 'POSTCOPY_RUN' };
    case MigCmd.POSTCOPY_RAM_DISCARD:
      return parseDiscard(r, p, v, len);
    case MigCmd.PACKAGED: {
      const length = v.getUint32(0);
      const max = options.packagedMax ?? PACKAGED_MAX_BYTES;
      if (length > max) throw r.fail(new StreamFormatError('packaged-too-large', `Unreasonably large packaged state: ${length}`));
      if (!r.has(length)) await r.ensure(length);
      return { type: 'PACKAGED', data: r.getBytes(length) };
    }
    case MigCmd.ENABLE_COLO:
      return { type: 'ENABLE_COLO' };
    case MigCmd.POSTCOPY_RESUME:
      return { type: 'POSTCOPY_RESUME' };
    case MigCmd.RECV_BITMAP: {
      if (len < 1) throw r.fail(new StreamFormatError('bad-command', 'loadvm_handle_recv_bitmap: failed to read block name'));
      const nameLen = p[0]!;
      if (len !== nameLen + 1) {
        throw r.fail(new StreamFormatError('bad-command-length', `loadvm_handle_recv_bitmap: invalid payload length (${len})`));
      }
      return { type: 'RECV_BITMAP', blockName: decodeName(r, p.subarray(1)) };
    }
    case MigCmd.SWITCHOVER_START:
      return { type: 'SWITCHOVER_START' };
    default:
      throw r.fail(new StreamFormatError('unknown-command', `MIG_CMD 0x${hex(num)} unknown (len 0x${hex(len)})`));
  }
}

function getBe64(r: StreamReader, v: DataView, at: number): number {
  const hi = v.getUint32(at);
  if (hi >= 0x20_0000) throw r.fail(new StreamFormatError('too-large', 'be64 value in a command is out of range'));
  return hi * TWO_32 + v.getUint32(at + 4);
}

function decodeName(r: StreamReader, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw r.fail(new StreamFormatError('bad-value', 'RAM block name is not valid UTF-8'));
  }
}

/** Version byte, counted block name, a nil byte, then (start, length) be64 pairs. */
function parseDiscard(r: StreamReader, p: Uint8Array, v: DataView, len: number): MigCommand {
  const invalidLength = (n: number) => r.fail(new StreamFormatError('bad-command-length', `CMD_POSTCOPY_RAM_DISCARD invalid length (${n})`));
  if (len < 1 + 1 + 1 + 1 + 2 * 8) throw invalidLength(len);
  if (p[0] !== POSTCOPY_RAM_DISCARD_VERSION) {
    throw r.fail(new StreamFormatError('bad-command', `CMD_POSTCOPY_RAM_DISCARD invalid version (${p[0]})`));
  }
  const nameLen = p[1]!;
  if (3 + nameLen > len) throw invalidLength(len);
  const blockName = decodeName(r, p.subarray(2, 2 + nameLen));
  const nil = p[2 + nameLen]!;
  if (nil !== 0) throw r.fail(new StreamFormatError('bad-command', `CMD_POSTCOPY_RAM_DISCARD missing nil (${nil})`));
  const rest = len - 3 - nameLen;
  if (rest % 16 !== 0 || rest === 0) throw invalidLength(rest);
  const ranges: DiscardRange[] = [];
  for (let at = 3 + nameLen; at < len; at += 16) {
    ranges.push({ start: getBe64(r, v, at), length: getBe64(r, v, at + 8) });
  }
  return { type: 'POSTCOPY_RAM_DISCARD', blockName, ranges };
}
