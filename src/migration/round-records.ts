// A shared ring of per-round records (DESIGN §9): the migration worker appends one at every dirty
// sync; the charts, the bench and anything else that wants the shape of a migration read them
// without polling query-migrate or asking the worker. A record is written whole before the
// count that publishes it is bumped, so a reader never sees half of one.

/** Float64 fields of one record, in order. */
export const ROUND_FIELDS = [
  /** 1 for the setup pass, then one more per dirty sync. */
  'round',
  /** ms since the migration started, at the sync that closed this round. */
  'time',
  /** How long the round lasted, ms. */
  'duration',
  /** Pages the sync found dirtied during the round. */
  'dirtyPages',
  /** Pages sent during the round (zero pages included). */
  'pagesSent',
  /** Of those, zero pages. */
  'zeroPages',
  /** Stream bytes sent during the round. */
  'bytesSent',
  /** Bytes per second over the round. */
  'bandwidth',
  /** Bytes still to send after the sync. */
  'remaining',
  /** Expected downtime (ms) if the switchover happened now. */
  'expectedDowntime',
  /** Bytes allowed to be left for the stop-and-copy (bandwidth × downtime-limit). */
  'threshold',
  /** vCPU throttle percentage during the round. */
  'throttle',
] as const;

export type RoundField = (typeof ROUND_FIELDS)[number];
export type RoundRecord = Record<RoundField, number>;

const HEADER_WORDS = 2; // [0] records ever appended, [1] generation (bumped by reset)
const HEADER_BYTES = 8 * 2; // keeps the Float64 records aligned
const RECORD_FLOATS = ROUND_FIELDS.length;
export const ROUND_RING_CAPACITY = 1024;

export function roundRecordsBytes(capacity = ROUND_RING_CAPACITY): number {
  return HEADER_BYTES + capacity * RECORD_FLOATS * 8;
}

export class RoundRecords {
  private readonly header: Int32Array;
  private readonly records: Float64Array;
  readonly capacity: number;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(roundRecordsBytes())) {
    this.header = new Int32Array(buffer, 0, HEADER_WORDS);
    this.capacity = (buffer.byteLength - HEADER_BYTES) / (RECORD_FLOATS * 8);
    this.records = new Float64Array(buffer, HEADER_BYTES, this.capacity * RECORD_FLOATS);
  }

  /** Records appended since the last reset (the ring keeps the newest `capacity`). */
  get count(): number {
    return Atomics.load(this.header, 0);
  }

  /** Changes whenever a new migration starts over, so readers drop what they cached. */
  get generation(): number {
    return Atomics.load(this.header, 1);
  }

  reset(): void {
    Atomics.store(this.header, 0, 0);
    Atomics.add(this.header, 1, 1);
  }

  append(rec: RoundRecord): void {
    const n = Atomics.load(this.header, 0);
    const base = (n % this.capacity) * RECORD_FLOATS;
    ROUND_FIELDS.forEach((f, i) => (this.records[base + i] = rec[f]));
    Atomics.store(this.header, 0, n + 1);
  }

  /** Record number i (0-based, counted since the reset), or null if the ring no longer holds it. */
  get(i: number): RoundRecord | null {
    const n = this.count;
    if (i < 0 || i >= n || i < n - this.capacity) return null;
    const base = (i % this.capacity) * RECORD_FLOATS;
    const rec = {} as RoundRecord;
    ROUND_FIELDS.forEach((f, k) => (rec[f] = this.records[base + k]!));
    return rec;
  }

  /** Every record the ring still holds, oldest first (records from index `from` on, if given). */
  list(from = 0): RoundRecord[] {
    const n = this.count;
    const out: RoundRecord[] = [];
    for (let i = Math.max(from, n - this.capacity, 0); i < n; i++) out.push(this.get(i)!);
    return out;
  }
}
