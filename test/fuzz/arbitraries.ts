// fast-check arbitraries for the stream fuzzer:
//  - byte-level mutations of real saved streams (bit flips, interesting values at the widths the
//    format uses, inserts, deletes, duplicated runs, truncation, splices from another stream),
//    aimed half the time at the structure (the head and the device/description tail) rather
//    than page data;
//  - structure-aware hostile streams: the framing is QEMU's, the values are not (lengths, ids,
//    counts, versions, names, RAM offsets and flags, command lengths, packages inside packages,
//    VM descriptions), each field valid most of the time so inputs get deep into the loader;
//  - the network's chaos (chunking, stalls, how the source ends) and the source's verdict.

import fc from 'fast-check';
import { DEVICES } from '../../src/guest/device-state.js';
import { PAGE_SIZE } from '../../src/guest/memory-map.js';
import { RAM_BLOCK_MAIN } from '../../src/migration/stream/index.js';
import { FUZZ_MACHINE_TYPE, type Seed } from './corpus.js';
import type { Chaos } from './run-case.js';

// ---- byte-level mutations ------------------------------------------------------------------------

export type Mutation =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'set'; at: number; value: number }
  | { k: 'word'; at: number; width: 1 | 2 | 4 | 8; value: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; len: number }
  | { k: 'dup'; at: number; len: number; to: number }
  | { k: 'truncate'; at: number }
  | { k: 'splice'; from: number; at: number; len: number; to: number };

/** Where a mutation lands: [0,1) of the whole stream, or (negative) counted from its structure ends. */
const position = fc.oneof(
  // fast-check's doubles crowd at 0 and tiny values: spread positions evenly instead.
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 ** 30 - 1 }).map((n) => n / 2 ** 30) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 300 }).map((n) => -(n + 1)) }, // head
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3000 }).map((n) => -(1e6 + n)) }, // tail
);

const INTERESTING = [0, 1, 2, 3, 4, 7, 8, 0x10, 0x20, 0x3f, 0x40, 0x7e, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ k: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ k: fc.constant('word' as const), at: position, width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const), value: fc.constantFrom(...INTERESTING) }),
  fc.record({ k: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ k: fc.constant('delete' as const), at: position, len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ k: fc.constant('dup' as const), at: position, len: fc.integer({ min: 1, max: 512 }), to: position }),
  fc.record({ k: fc.constant('truncate' as const), at: position }),
  fc.record({ k: fc.constant('splice' as const), from: fc.nat(), at: position, len: fc.integer({ min: 1, max: 4096 }), to: position }),
);

function place(at: number, length: number): number {
  if (length === 0) return 0;
  if (at >= 0) return Math.min(length - 1, Math.floor(at * length));
  if (at > -1e6) return Math.min(length - 1, -at - 1);
  return Math.max(0, length - 1 - (-at - 1e6));
}

export function applyMutations(bytes: Uint8Array, ms: readonly Mutation[], corpus: readonly Seed[]): Uint8Array {
  let b: Uint8Array = bytes.slice();
  for (const m of ms) {
    const at = place(m.at, b.length);
    switch (m.k) {
      case 'flip':
        if (b.length) b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        if (b.length) b[at] = m.value;
        break;
      case 'word': {
        let v = m.value;
        for (let i = m.width - 1; i >= 0; i--) {
          if (at + i < b.length) b[at + i] = m.width === 8 && i < 4 ? (v >= 0x80000000 ? 0xff : 0) : v & 0xff;
          if (!(m.width === 8 && i < 4)) v = Math.floor(v / 256);
        }
        break;
      }
      case 'insert':
        b = concat(b.subarray(0, at), m.bytes, b.subarray(at));
        break;
      case 'delete':
        b = concat(b.subarray(0, at), b.subarray(at + m.len));
        break;
      case 'dup': {
        const run = b.slice(at, at + m.len);
        const to = place(m.to, b.length);
        b = concat(b.subarray(0, to), run, b.subarray(to));
        break;
      }
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'splice': {
        const other = corpus[m.from % corpus.length]!.bytes;
        const from = place(m.at, other.length);
        const run = other.subarray(from, from + m.len);
        const to = place(m.to, b.length);
        b = concat(b.subarray(0, to), run, b.subarray(Math.min(b.length, to + run.length)));
        break;
      }
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- structure-aware hostile streams ---------------------------------------------------------------

/** A byte builder that writes whatever it is told (the real writer's validators would refuse most of it). */
class Raw {
  private buf = new Uint8Array(1024);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u8(v: number): this {
    this.room(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }
  be16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  be32(v: number): this {
    return this.be16(Math.floor(v / 0x10000) & 0xffff).be16(v & 0xffff);
  }
  be64(hi: number, lo: number): this {
    return this.be32(hi >>> 0).be32(lo >>> 0);
  }
  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  fill(v: number, n: number): this {
    this.room(n);
    this.buf.fill(v, this.length, this.length + n);
    this.length += n;
    return this;
  }
  /** u8 length (as given, even when it lies) + the name's bytes. */
  counted(name: Name): this {
    return this.u8(name.len).bytes(name.bytes);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const enc = new TextEncoder();
interface Name {
  len: number;
  bytes: Uint8Array;
}
const named = (s: string): Name => {
  const bytes = enc.encode(s);
  return { len: bytes.length, bytes };
};

const hostileU32 = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...INTERESTING) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 64 }) },
);
/** `valid` most of the time, a hostile value otherwise. */
const mostly = <T>(valid: T, hostile: fc.Arbitrary<T>, weight = 4) => fc.oneof({ weight, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });

const DEVICE_NAMES = [...DEVICES.map((d) => d.name), 'ram', 'globalstate', 'configuration'];
const hostileName: fc.Arbitrary<Name> = fc.oneof(
  fc.constantFrom(...DEVICE_NAMES).map(named),
  fc.string({ maxLength: 40 }).map(named),
  fc.string({ minLength: 200, maxLength: 300 }).map((s) => ({ ...named(s), len: named(s).len & 0xff })), // a length that lies
  fc.uint8Array({ maxLength: 24 }).map((b) => ({ len: b.length, bytes: b })), // not UTF-8
  fc.record({ len: fc.integer({ min: 0, max: 255 }), bytes: fc.uint8Array({ maxLength: 8 }) }), // length and bytes disagree
);

const TYPE_SIZE: Record<string, number> = { uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, uint64: 8, int64: 8 };
function deviceSize(index: number): number {
  const spec = DEVICES[index]!;
  let n = 0;
  for (const f of spec.fields as readonly { type: string; size?: number; count?: number }[]) n += (f.type === 'buffer' ? f.size! : TYPE_SIZE[f.type] ?? 4) * (f.count ?? 1);
  return n;
}

interface RamRecord {
  hi: number;
  lo: number;
  flags: number;
  continue: boolean;
  name: Name | null;
  payload: 'page' | 'zero' | 'xbzrle' | 'compress' | 'none';
  len: number;
  fill: number;
}

const RAM_FLAGS = [0x002, 0x008, 0x010, 0x004, 0x040, 0x100, 0x200, 0x001, 0x080, 0x400, 0x00a, 0x018];
function ramRecord(ramSize: number): fc.Arbitrary<RamRecord> {
  const pages = ramSize / PAGE_SIZE;
  return fc.record({
    hi: mostly(0, hostileU32),
    lo: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: pages - 1 }).map((p) => p * PAGE_SIZE) }, { weight: 1, arbitrary: hostileU32 }),
    flags: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(0x002, 0x008) }, { weight: 2, arbitrary: fc.constantFrom(...RAM_FLAGS) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfff }) }),
    continue: fc.boolean(),
    name: mostly<Name | null>(null, hostileName, 3),
    payload: fc.constantFrom('page' as const, 'zero' as const, 'xbzrle' as const, 'compress' as const, 'none' as const),
    len: hostileU32,
    fill: fc.integer({ min: 0, max: 255 }),
  });
}

type Item =
  | { k: 'section'; type: number; id: number; name: Name; instance: number; version: number; body: Body; footer: 'ok' | 'none' | 'wrong' }
  | { k: 'part'; type: number; id: number; body: Body; footer: 'ok' | 'none' | 'wrong' }
  | { k: 'command'; cmd: number; len: number; payload: Uint8Array }
  | { k: 'package'; len: 'exact' | number; advise: boolean; items: Item[] }
  | { k: 'subsection'; name: Name; version: number; body: Uint8Array }
  | { k: 'raw'; bytes: Uint8Array }
  | { k: 'eof' };

type Body =
  | { k: 'ram'; memSize: { total: number; blocks: { name: Name; len: number }[] } | null; records: RamRecord[]; eos: boolean }
  | { k: 'device'; index: number; bytes: Uint8Array | 'valid-size' }
  | { k: 'globalstate'; len: number; text: string }
  | { k: 'raw'; bytes: Uint8Array };

function body(ramSize: number): fc.Arbitrary<Body> {
  const block = { name: named(RAM_BLOCK_MAIN), len: ramSize };
  return fc.oneof(
    fc.record({
      k: fc.constant('ram' as const),
      memSize: fc.option(
        fc.record({
          total: mostly(ramSize, hostileU32),
          blocks: mostly([block], fc.array(fc.record({ name: mostly(block.name, hostileName), len: mostly(ramSize, hostileU32) }), { maxLength: 4 })),
        }),
        { freq: 2 },
      ),
      records: fc.array(ramRecord(ramSize), { maxLength: 12 }),
      eos: mostly(true, fc.constant(false)),
    }),
    fc.record({
      k: fc.constant('device' as const),
      index: fc.integer({ min: 0, max: DEVICES.length - 1 }),
      bytes: mostly<Uint8Array | 'valid-size'>('valid-size', fc.uint8Array({ maxLength: 400 }), 3),
    }),
    fc.record({ k: fc.constant('globalstate' as const), len: mostly(-1, hostileU32), text: fc.constantFrom('running', 'paused', 'inmigrate', 'finish-migrate', 'postmigrate', '', 'x'.repeat(120)) }),
    fc.record({ k: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  );
}

const sectionId = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: hostileU32 });
const footer = fc.constantFrom('ok' as const, 'ok' as const, 'ok' as const, 'none' as const, 'wrong' as const);

function items(ramSize: number): fc.Arbitrary<Item[]> {
  const { tree } = fc.letrec<{ tree: Item[]; item: Item }>((tie) => ({
    tree: fc.array(tie('item'), { maxLength: 8, depthIdentifier: 'pkg' }),
    item: fc.oneof(
      { depthSize: 'small', depthIdentifier: 'pkg', withCrossShrink: true },
      fc.record({
        k: fc.constant('section' as const),
        type: mostly(0x04, fc.constantFrom(0x01, 0x04)),
        id: sectionId,
        name: fc.oneof(fc.constantFrom(...DEVICE_NAMES).map(named), hostileName),
        instance: mostly(0, hostileU32),
        version: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 4) }, { weight: 1, arbitrary: hostileU32 }),
        body: body(ramSize),
        footer,
      }),
      fc.record({ k: fc.constant('part' as const), type: fc.constantFrom(0x02, 0x03), id: sectionId, body: body(ramSize), footer }),
      fc.record({
        k: fc.constant('command' as const),
        cmd: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 13 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
        len: fc.oneof(fc.constantFrom(0, 4, 16), fc.integer({ min: 0, max: 0xffff })),
        payload: fc.uint8Array({ maxLength: 40 }),
      }),
      fc.record({ k: fc.constant('package' as const), len: mostly<'exact' | number>('exact', hostileU32), advise: mostly(true, fc.constant(false)), items: tie('tree') }),
      fc.record({ k: fc.constant('subsection' as const), name: hostileName, version: hostileU32, body: fc.uint8Array({ maxLength: 16 }) }),
      fc.record({ k: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 32 }) }),
      fc.constant({ k: 'eof' as const }),
    ),
  }));
  return tree;
}

export interface HostileSpec {
  magic: number;
  version: number;
  configLen: number;
  machine: Name;
  ramSize: number;
  /** A valid ram START (block list) first, so later items reach the page loader. */
  ramStart: boolean;
  items: Item[];
  /** A valid device/EOF tail, so streams can end complete. */
  tail: 'valid' | 'eof-only' | 'none';
  desc: { len: number | 'exact'; json: string } | null;
}

export function hostileSpec(ramSizes: readonly number[]): fc.Arbitrary<HostileSpec> {
  return fc.constantFrom(...ramSizes).chain((ramSize) =>
    fc.record({
      magic: mostly(0x5145564d, hostileU32, 12),
      version: mostly(3, fc.constantFrom(0, 1, 2, 4, 0xffffffff), 12),
      configLen: mostly(-1, hostileU32, 8),
      machine: mostly(named(FUZZ_MACHINE_TYPE), hostileName, 10),
      ramSize: fc.constant(ramSize),
      ramStart: mostly(true, fc.constant(false), 3),
      items: items(ramSize),
      tail: fc.constantFrom('valid' as const, 'valid' as const, 'eof-only' as const, 'none' as const),
      desc: fc.option(
        fc.record({
          len: mostly<number | 'exact'>('exact', hostileU32),
          json: fc.oneof(
            fc.constant('{"page_size":4096,"devices":[]}'),
            fc.json({ maxDepth: 3 }),
            fc.integer({ min: 1, max: 5000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
            fc.string({ maxLength: 60 }),
          ),
        }),
        { freq: 3 },
      ),
    }),
  );
}

function writeBody(w: Raw, b: Body, validState: (index: number) => Uint8Array): void {
  switch (b.k) {
    case 'ram':
      if (b.memSize) {
        w.be64(Math.floor(b.memSize.total / 2 ** 32), (b.memSize.total & ~0xfff) | 0x004);
        for (const blk of b.memSize.blocks) w.counted(blk.name).be64(0, blk.len);
      }
      for (const r of b.records) {
        const flags = (r.flags & ~0x020) | (r.continue ? 0x020 : 0);
        w.be64(r.hi, ((r.lo & ~0xfff) | flags) >>> 0);
        if (!r.continue && (flags & 0x34e) !== 0) w.counted(r.name ?? named(RAM_BLOCK_MAIN));
        switch (r.payload) {
          case 'page':
            w.fill(r.fill, PAGE_SIZE);
            break;
          case 'zero':
            w.u8(r.fill < 200 ? 0 : r.fill);
            break;
          case 'xbzrle':
            w.u8(r.fill < 200 ? 1 : r.fill).be16(r.len & 0xffff).fill(r.fill, Math.min(r.len & 0xffff, 64));
            break;
          case 'compress':
            w.be32(r.len).fill(r.fill, Math.min(r.len, 64));
            break;
          case 'none':
            break;
        }
      }
      if (b.eos) w.be64(0, 0x010);
      return;
    case 'device':
      w.bytes(b.bytes === 'valid-size' ? validState(b.index) : b.bytes);
      return;
    case 'globalstate': {
      const t = enc.encode(b.text);
      w.be32(b.len === -1 ? t.length + 1 : b.len).bytes(t).u8(0);
      return;
    }
    case 'raw':
      w.bytes(b.bytes);
      return;
  }
}

function writeItems(w: Raw, list: readonly Item[], validState: (index: number) => Uint8Array): void {
  for (const it of list) {
    switch (it.k) {
      case 'section':
        w.u8(it.type).be32(it.id).counted(it.name).be32(it.instance).be32(it.version);
        writeBody(w, it.body, validState);
        if (it.footer !== 'none') w.u8(0x7e).be32(it.footer === 'ok' ? it.id : (it.id + 1) >>> 0);
        break;
      case 'part':
        w.u8(it.type).be32(it.id);
        writeBody(w, it.body, validState);
        if (it.footer !== 'none') w.u8(0x7e).be32(it.footer === 'ok' ? it.id : (it.id + 1) >>> 0);
        break;
      case 'command':
        w.u8(0x08).be16(it.cmd).be16(it.len).bytes(it.payload.subarray(0, it.len));
        break;
      case 'package': {
        if (it.advise) w.u8(0x08).be16(3).be16(16).be64(0, 4096).be64(0, 4096);
        const inner = new Raw();
        writeItems(inner, it.items, validState);
        const bytes = inner.done();
        w.u8(0x08).be16(7).be16(4).be32(it.len === 'exact' ? bytes.length : it.len).bytes(bytes);
        break;
      }
      case 'subsection':
        w.u8(0x05).counted(it.name).be32(it.version).bytes(it.body);
        break;
      case 'raw':
        w.bytes(it.bytes);
        break;
      case 'eof':
        w.u8(0x00);
        break;
    }
  }
}

/**
 * Serialises a hostile spec. `validTail` is a real stream's bytes from its first device section
 * to its end (devices, globalstate, EOF, description), and `validState(i)` device i's field
 * bytes from a real machine, so hostile streams can also end complete.
 */
export function buildHostile(s: HostileSpec, validTail: Uint8Array, validState: (index: number) => Uint8Array): Uint8Array {
  const w = new Raw();
  w.be32(s.magic).be32(s.version);
  w.u8(0x07)
    .be32(s.configLen === -1 ? s.machine.len : s.configLen)
    .bytes(s.machine.bytes);
  if (s.ramStart) {
    w.u8(0x01).be32(0).counted(named('ram')).be32(0).be32(4);
    w.be64(0, (s.ramSize & ~0xfff) | 0x004).counted(named(RAM_BLOCK_MAIN)).be64(0, s.ramSize).be64(0, 0x010);
    w.u8(0x7e).be32(0);
  }
  writeItems(w, s.items, validState);
  if (s.tail === 'valid') w.bytes(validTail);
  else if (s.tail === 'eof-only') w.u8(0x00);
  if (s.desc && s.tail !== 'valid') {
    const j = enc.encode(s.desc.json);
    w.u8(0x06).be32(s.desc.len === 'exact' ? j.length : s.desc.len).bytes(j);
  }
  return w.done();
}

export { deviceSize };

// ---- the network and the verdict -------------------------------------------------------------------

export const chaos: fc.Arbitrary<Chaos> = fc.record({
  chunks: fc.oneof(
    fc.constant([256 * 1024]),
    fc.array(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 5000 }), fc.constantFrom(4096, 65536, 262144)), { minLength: 1, maxLength: 6 }),
  ),
  stallEvery: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 50 }) }),
  stallMs: fc.integer({ min: 0, max: 10 }),
  // Silence costs the idle timeout each time: rare, so the run stays fast.
  end: fc.oneof(
    { weight: 40, arbitrary: fc.constant('close' as const) },
    { weight: 4, arbitrary: fc.constant('abort' as const) },
    { weight: 6, arbitrary: fc.constant('cut-close' as const) },
    { weight: 1, arbitrary: fc.constant('silent' as const) },
  ),
  cutAt: fc.integer({ min: 0, max: 2 ** 30 }).map((n) => n / 2 ** 30),
  verdict: fc.oneof(
    { weight: 30, arbitrary: fc.constant('commit' as const) },
    { weight: 4, arbitrary: fc.constant('abort' as const) },
    { weight: 4, arbitrary: fc.constant('link-lost' as const) },
    { weight: 1, arbitrary: fc.constant('none' as const) },
  ),
  handshake: mostly(true, fc.constant(false), 3),
});
