// The stream as it passes (DESIGN §9's round records, for sections): a shared log of fixed-size
// entries, one per section, command and end marker the savevm loop writes (source) or the
// loadvm loop reads (destination). The stream inspector reads it on animation frames, as the
// memory map reads the page state: no postMessage per section, no query-migrate.
//
// RAM PARTs are many (one per 50 ms iteration), so consecutive PARTs of one round fold into one
// entry that grows in place; every other item is an entry of its own. A reader compares `seq`
// (bumped after every write, in-place ones included) with what it last saw and re-reads the few
// hundred entries when it moved. An in-place update can be read half-done; it is right again on
// the next frame, after the writer's seq bump, and only counts that grow are at stake.

/** Float64 fields of one entry, in order. */
export const STREAM_LOG_FIELDS = [
  /** SectionType (format.ts): START, PART, END, FULL, CONFIGURATION, COMMAND, EOF; or VM_DESCRIPTION. */
  'type',
  /** Section id (-1 for the configuration, commands, EOF). */
  'sectionId',
  'instanceId',
  /** The section's version_id, the command's number, or -1. */
  'version',
  /** Stream offset of the item's first byte (-1 inside a PACKAGED command's nested stream). */
  'offset',
  /** Bytes the item took on the stream (header to footer). */
  'bytes',
  /**
   * RAM only: the round. The source's dirty-sync count; the destination infers it (a page that
   * arrives a second time means the source synced and re-sent what the guest dirtied).
   */
  'round',
  /** RAM: PARTs folded into this entry. */
  'parts',
  /** RAM: pages in the records (every kind). */
  'pages',
  'zeroPages',
  'xbzrlePages',
  'compressedPages',
  /** 1 when the item came inside a PACKAGED command (postcopy's device package). */
  'nested',
] as const;

export type StreamLogField = (typeof STREAM_LOG_FIELDS)[number];
export type StreamLogEntry = Record<StreamLogField, number> & { name: string };

export { VM_DESCRIPTION_TYPE } from './stream-tap.js';

/** Which side wrote the log. */
export const StreamLogSide = { NONE: 0, SOURCE: 1, DESTINATION: 2 } as const;
export type StreamLogSideValue = (typeof StreamLogSide)[keyof typeof StreamLogSide];

const HEADER_WORDS = 4; // [0] entries appended, [1] generation, [2] seq, [3] side
const HEADER_BYTES = 16;
const FLOATS = STREAM_LOG_FIELDS.length;
/** Section names are short ('ram', 'cpu', 'globalstate'); longer ones are cut (the log is a view). */
const NAME_BYTES = 32;
const ENTRY_BYTES = FLOATS * 8 + NAME_BYTES;
export const STREAM_LOG_CAPACITY = 512;

export function streamLogBytes(capacity = STREAM_LOG_CAPACITY): number {
  return HEADER_BYTES + capacity * ENTRY_BYTES;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class StreamLog {
  private readonly header: Int32Array;
  private readonly floats: Float64Array;
  private readonly names: Uint8Array;
  readonly capacity: number;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(streamLogBytes())) {
    this.header = new Int32Array(buffer, 0, HEADER_WORDS);
    this.capacity = (buffer.byteLength - HEADER_BYTES) / ENTRY_BYTES;
    // Floats first, then names, so the Float64Array stays 8-byte aligned.
    this.floats = new Float64Array(buffer, HEADER_BYTES, this.capacity * FLOATS);
    this.names = new Uint8Array(buffer, HEADER_BYTES + this.capacity * FLOATS * 8, this.capacity * NAME_BYTES);
  }

  /** Entries appended since the reset (the ring keeps the newest `capacity`). */
  get count(): number {
    return Atomics.load(this.header, 0);
  }

  get generation(): number {
    return Atomics.load(this.header, 1);
  }

  /** Moves at every write, in-place updates included. */
  get seq(): number {
    return Atomics.load(this.header, 2);
  }

  get side(): StreamLogSideValue {
    return Atomics.load(this.header, 3) as StreamLogSideValue;
  }

  /** A new migration (either direction) starts the log over. */
  reset(side: StreamLogSideValue): void {
    Atomics.store(this.header, 0, 0);
    Atomics.store(this.header, 3, side);
    Atomics.add(this.header, 1, 1);
    Atomics.add(this.header, 2, 1);
  }

  /** Appends an entry and returns its index. */
  append(e: StreamLogEntry): number {
    const i = Atomics.load(this.header, 0);
    this.write(i, e);
    Atomics.store(this.header, 0, i + 1);
    Atomics.add(this.header, 2, 1);
    return i;
  }

  /** Rewrites entry i (a RAM entry that grew), if the ring still holds it. */
  update(i: number, e: StreamLogEntry): void {
    const n = this.count;
    if (i >= n || i < n - this.capacity) return;
    this.write(i, e);
    Atomics.add(this.header, 2, 1);
  }

  get(i: number): StreamLogEntry | null {
    const n = this.count;
    if (i < 0 || i >= n || i < n - this.capacity) return null;
    const slot = i % this.capacity;
    const base = slot * FLOATS;
    const e = {} as StreamLogEntry;
    STREAM_LOG_FIELDS.forEach((f, k) => (e[f] = this.floats[base + k]!));
    const nb = slot * NAME_BYTES;
    const len = Math.min(this.names[nb]!, NAME_BYTES - 1);
    // Copy out of shared memory: TextDecoder refuses a view of a SharedArrayBuffer.
    e.name = decoder.decode(this.names.slice(nb + 1, nb + 1 + len));
    return e;
  }

  /** Every entry the ring still holds, oldest first. */
  list(): StreamLogEntry[] {
    const n = this.count;
    const out: StreamLogEntry[] = [];
    for (let i = Math.max(0, n - this.capacity); i < n; i++) out.push(this.get(i)!);
    return out;
  }

  private write(i: number, e: StreamLogEntry): void {
    const slot = i % this.capacity;
    const base = slot * FLOATS;
    STREAM_LOG_FIELDS.forEach((f, k) => (this.floats[base + k] = e[f]));
    const name = encoder.encode(e.name).subarray(0, NAME_BYTES - 1);
    const nb = slot * NAME_BYTES;
    this.names[nb] = name.length;
    this.names.set(name, nb + 1);
  }
}
