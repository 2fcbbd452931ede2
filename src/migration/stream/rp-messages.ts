// Return-path messages, destination to source (migration.c): be16 type, be16 length, payload.
// The decoder checks type and length against RP_CMD_ARGS before it reads any payload, as
// source_return_path_thread does, so a garbled message is refused by the table, not by a
// handler halfway through.

import { StreamEndError, StreamFormatError, hex } from './errors.js';
import { RP_CMD_ARGS, RP_MAX_PAYLOAD, RP_MSG_MAX, RpMsg, VARIABLE_LENGTH } from './format.js';
import type { StreamReader } from './stream-reader.js';
import { encodeCountedString, type StreamWriter } from './stream-writer.js';

export type RpMessage =
  /** The destination is done with the return path; error 0 means success. */
  | { readonly type: 'SHUT'; readonly error: number }
  | { readonly type: 'PONG'; readonly value: number }
  /** Pages wanted now (postcopy), naming the block. */
  | { readonly type: 'REQ_PAGES_ID'; readonly start: number; readonly length: number; readonly blockName: string }
  /** Pages wanted now, in the block of the previous REQ_PAGES_ID. */
  | { readonly type: 'REQ_PAGES'; readonly start: number; readonly length: number }
  /** The received bitmap of the block follows on the return path (postcopy recovery). */
  | { readonly type: 'RECV_BITMAP'; readonly blockName: string }
  | { readonly type: 'RESUME_ACK'; readonly value: number };

export type RpMessageType = RpMessage['type'];

const TWO_32 = 2 ** 32;
const HEADER = 4;

function setBe64(v: DataView, at: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`be64 value ${n} is not a non-negative safe integer`);
  v.setUint32(at, Math.floor(n / TWO_32));
  v.setUint32(at + 4, n >>> 0);
}

/** One message, header included, ready to send. */
export function encodeRpMessage(msg: RpMessage): Uint8Array {
  let payload: Uint8Array;
  switch (msg.type) {
    case 'SHUT':
    case 'PONG':
    case 'RESUME_ACK': {
      payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, (msg.type === 'SHUT' ? msg.error : msg.value) >>> 0);
      break;
    }
    case 'REQ_PAGES':
    case 'REQ_PAGES_ID': {
      const name = msg.type === 'REQ_PAGES_ID' ? encodeCountedString(msg.blockName) : null;
      payload = new Uint8Array(12 + (name ? 1 + name.length : 0));
      const v = new DataView(payload.buffer);
      setBe64(v, 0, msg.start);
      if (!(msg.length >= 0 && msg.length < TWO_32 && Number.isInteger(msg.length))) throw new RangeError(`page request length ${msg.length}`);
      v.setUint32(8, msg.length);
      if (name) {
        payload[12] = name.length;
        payload.set(name, 13);
      }
      break;
    }
    case 'RECV_BITMAP': {
      const name = encodeCountedString(msg.blockName);
      payload = new Uint8Array(1 + name.length);
      payload[0] = name.length;
      payload.set(name, 1);
      break;
    }
  }
  const out = new Uint8Array(HEADER + payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, RpMsg[msg.type]);
  v.setUint16(2, payload.length);
  out.set(payload, HEADER);
  return out;
}

export function writeRpMessage(w: StreamWriter, msg: RpMessage): void {
  w.putBytes(encodeRpMessage(msg));
}

/** The table check on a header, before any payload is read; null when the header is acceptable. */
export function checkRpHeader(type: number, len: number): StreamFormatError | null {
  if (type >= RP_MSG_MAX || type === RpMsg.INVALID) {
    return new StreamFormatError('bad-rp-message', `RP: Received invalid message 0x${hex(type).padStart(4, '0')} length 0x${hex(len).padStart(4, '0')}`);
  }
  const spec = RP_CMD_ARGS[type]!;
  if ((spec.len !== VARIABLE_LENGTH && len !== spec.len) || len > RP_MAX_PAYLOAD) {
    const expecting = spec.len === VARIABLE_LENGTH ? `at most ${RP_MAX_PAYLOAD}` : String(spec.len);
    return new StreamFormatError(
      'bad-rp-length',
      `RP: Received '${spec.name}' message (0x${hex(type).padStart(4, '0')}) with incorrect length ${len} expecting ${expecting}`,
    );
  }
  return null;
}

/** Decodes a payload whose header already passed checkRpHeader. */
export function decodeRpPayload(type: number, payload: Uint8Array): RpMessage {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const len = payload.length;
  switch (type) {
    case RpMsg.SHUT:
      return { type: 'SHUT', error: v.getUint32(0) };
    case RpMsg.PONG:
      return { type: 'PONG', value: v.getUint32(0) };
    case RpMsg.RESUME_ACK:
      return { type: 'RESUME_ACK', value: v.getUint32(0) };
    case RpMsg.REQ_PAGES:
      return { type: 'REQ_PAGES', start: be64(v, 0), length: v.getUint32(8) };
    case RpMsg.REQ_PAGES_ID: {
      let expected = 12 + 1;
      if (len >= expected) expected += payload[12]!;
      if (len !== expected) throw new StreamFormatError('bad-rp-length', `RP: Req_Page_id with length ${len} expecting ${expected}`);
      return { type: 'REQ_PAGES_ID', start: be64(v, 0), length: v.getUint32(8), blockName: name(payload.subarray(13)) };
    }
    case RpMsg.RECV_BITMAP: {
      if (len < 1) throw new StreamFormatError('bad-rp-length', 'RP: RECV_BITMAP: missing block name');
      if (len !== 1 + payload[0]!) throw new StreamFormatError('bad-rp-length', `RP: RECV_BITMAP with length ${len} expecting ${1 + payload[0]!}`);
      return { type: 'RECV_BITMAP', blockName: name(payload.subarray(1)) };
    }
    default:
      throw new StreamFormatError('bad-rp-message', `RP: Received invalid message 0x${hex(type).padStart(4, '0')} length 0x${hex(len).padStart(4, '0')}`);
  }
}

function be64(v: DataView, at: number): number {
  const hi = v.getUint32(at);
  if (hi >= 0x20_0000) throw new StreamFormatError('too-large', 'RP: page request start is out of range');
  return hi * TWO_32 + v.getUint32(at + 4);
}

function name(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new StreamFormatError('bad-value', 'RP: RAM block name is not valid UTF-8');
  }
}

/** Reads the next message; null when the return path ended cleanly between messages. */
export async function readRpMessage(r: StreamReader): Promise<RpMessage | null> {
  if (await r.atEnd()) return null;
  if (!r.has(HEADER)) await r.ensure(HEADER);
  const type = r.getBe16();
  const len = r.getBe16();
  const bad = checkRpHeader(type, len);
  if (bad) throw r.fail(bad);
  if (!r.has(len)) await r.ensure(len);
  try {
    return decodeRpPayload(type, r.getBytes(len));
  } catch (e) {
    throw e instanceof StreamFormatError ? r.fail(e) : e;
  }
}

/** Decodes a buffer holding whole messages (one data-channel message, say). */
export function decodeRpMessages(bytes: Uint8Array): RpMessage[] {
  const out: RpMessage[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    if (at + HEADER > bytes.length) throw new StreamEndError(`RP: message header cut off at byte ${at}`);
    const type = v.getUint16(at);
    const len = v.getUint16(at + 2);
    const bad = checkRpHeader(type, len);
    if (bad) throw bad;
    if (at + HEADER + len > bytes.length) {
      throw new StreamEndError(`RP: Failed reading data for message 0x${hex(type).padStart(4, '0')} read ${bytes.length - at - HEADER} expected ${len}`);
    }
    out.push(decodeRpPayload(type, bytes.subarray(at + HEADER, at + HEADER + len)));
    at += HEADER + len;
  }
  return out;
}

/** migrate_handle_rp_req_pages' check: requests are for whole pages. */
export function checkPageRequest(start: number, length: number, pageSize: number): StreamFormatError | null {
  if (start % pageSize !== 0 || length % pageSize !== 0) {
    return new StreamFormatError('misaligned-page-request', `Misaligned page request, start: ${hex(start)} len: ${length}`);
  }
  return null;
}

