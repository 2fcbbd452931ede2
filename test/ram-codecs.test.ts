// Issue 8's page codecs, without a migration: XBZRLE against known vectors, random pages and its
// overflow and malformed-input rules (QEMU's xbzrle.c); the page cache's ageing; the
// COMPRESS_PAGE record as RamWriter writes it and RamReader reads it back, zlib inside; the
// multifd initial packet and page packet layouts and a sender → receiver round trip; the
// auto-converge trigger.
import { AutoConverge } from '../src/migration/source/auto-converge.js';
import { PageCache } from '../src/migration/ram/codecs/page-cache.js';
import { XbzrleCodec } from '../src/migration/ram/codecs/xbzrle-codec.js';
import { uleb128DecodeSmall, uleb128EncodeSmall, xbzrleDecode, xbzrleEncode } from '../src/migration/ram/codecs/xbzrle.js';
import { DecompressError, compressPage, decompressPage } from '../src/migration/ram/codecs/zlib-page.js';
import { zlibSync } from 'fflate';
import {
  MULTIFD_FLAG_SYNC,
  MULTIFD_INIT_BYTES,
  MULTIFD_MAGIC,
  MULTIFD_PACKET_FIXED,
  MultifdError,
  decodeInit,
  decodeOffsets,
  decodePacketFixed,
  encodeInit,
  encodePacketHeader,
  packetHeaderBytes,
} from '../src/migration/ram/codecs/multifd.js';
import { MultifdPageSender } from '../src/migration/ram/multifd-sender.js';
import { MultifdReceiver } from '../src/migration/ram/multifd-receiver.js';
import { LoadCodecs } from '../src/migration/ram/codecs/load-codecs.js';
import { BufferSink, RAM_BLOCK_MAIN, RamReader, RamWriter, StreamReader, StreamWriter, chunkSource, type RamBlock } from '../src/migration/stream/index.js';
import { deepEqual, equal, ok, throws } from './helpers/assert.js';

const PAGE = 4096;

function randomPage(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE);
  let x = seed | 1;
  for (let i = 0; i < PAGE; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    p[i] = x & 0xff;
  }
  return p;
}

function encode(old: Uint8Array, next: Uint8Array): number[] | number {
  const dst = new Uint8Array(PAGE);
  const n = xbzrleEncode(old, next, dst, PAGE);
  return n <= 0 ? n : Array.from(dst.subarray(0, n));
}

describe('XBZRLE', () => {
  it('ULEB128 small: one or two bytes, nothing longer', () => {
    const b = new Uint8Array(2);
    equal(uleb128EncodeSmall(b, 0, 127), 1);
    equal(b[0], 127);
    equal(uleb128EncodeSmall(b, 0, 128), 2);
    deepEqual(Array.from(b), [0x80, 0x01]);
    deepEqual(uleb128DecodeSmall(new Uint8Array([0xe8, 0x07]), 0), [1000, 2]);
    equal(uleb128DecodeSmall(new Uint8Array([0x80, 0x80, 0x01]), 0), null);
    throws(() => uleb128EncodeSmall(b, 0, 0x4000));
  });

  it('encodes known vectors as QEMU does', () => {
    const old = new Uint8Array(PAGE);
    equal(encode(old, old.slice()), 0, 'an unchanged page encodes to nothing');
    const a = old.slice();
    a[1000] = 1;
    deepEqual(encode(old, a), [0xe8, 0x07, 0x01, 0x01], 'zero run of 1000, one changed byte');
    const b = old.slice();
    b[0] = 5;
    deepEqual(encode(old, b), [0x00, 0x01, 0x05], 'a leading change starts with an empty zero run');
    const c = old.slice();
    c[4095] = 9;
    deepEqual(encode(old, c), [0xff, 0x1f, 0x01, 0x09]);
    const d = old.slice();
    d.fill(7, 8, 12);
    d[100] = 3;
    deepEqual(encode(old, d), [0x08, 0x04, 7, 7, 7, 7, 88, 0x01, 3], 'the trailing zero run is not written');
  });

  it('overflows (-1) when the encoding would not fit, worst cases included', () => {
    const old = new Uint8Array(PAGE);
    equal(encode(old, new Uint8Array(PAGE).fill(1)), -1, 'every byte changed');
    const alt = old.slice();
    for (let i = 0; i < PAGE; i += 2) alt[i] = 1;
    equal(encode(old, alt), -1, 'every other byte changed: 3 bytes per 2');
    const dst = new Uint8Array(PAGE);
    const sparse = old.slice();
    sparse[10] = 1;
    equal(xbzrleEncode(old, sparse, dst, 3), -1, 'a tiny output buffer');
  });

  it('round-trips random pages with random changes, aligned or not', () => {
    for (let t = 0; t < 200; t++) {
      const old = randomPage(t + 1);
      const next = old.slice();
      const changes = (t * 7) % 300;
      for (let k = 0; k < changes; k++) next[(k * 2654435761 + t) % PAGE >>> 0] ^= (k % 255) + 1;
      const dst = new Uint8Array(PAGE);
      const n = xbzrleEncode(old, next, dst);
      if (n < 0) continue;
      const target = old.slice();
      const unaligned = new Uint8Array(PAGE + 1);
      unaligned.set(old, 1);
      equal(xbzrleDecode(dst.subarray(0, n), target) >= 0, true);
      deepEqual(target, next, `trial ${t}`);
      const src2 = unaligned.subarray(1);
      const n2 = xbzrleEncode(src2, next, new Uint8Array(PAGE));
      equal(n2, n, 'the same encoding from an unaligned page');
    }
  });

  it('the decoder refuses malformed input (QEMU: -1)', () => {
    const page = new Uint8Array(PAGE);
    equal(xbzrleDecode(new Uint8Array([0x01]), page), -1, 'too short');
    equal(xbzrleDecode(new Uint8Array([0x00, 0x00, 0x00]), page), -1, 'an empty changed run');
    equal(xbzrleDecode(new Uint8Array([0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb]), page), -1, 'an empty zero run after the first');
    equal(xbzrleDecode(new Uint8Array([0xff, 0x1f, 0x02, 1, 2]), page), -1, 'runs past the page');
    equal(xbzrleDecode(new Uint8Array([0x00, 0x05, 1, 2]), page), -1, 'runs past the data');
    equal(xbzrleDecode(new Uint8Array([0x80, 0x80, 0x01, 0x01, 0x01]), page), -1, 'a three-byte length');
  });
});

describe('XBZRLE cache and codec', () => {
  it('a fresh slot is not given to another page for two rounds', () => {
    const cache = new PageCache(2 * PAGE, PAGE, 16 * PAGE);
    ok(cache.insert(0, randomPage(1), 1));
    ok(!cache.insert(2 * PAGE, randomPage(2), 2), 'slot 0 still fresh');
    ok(cache.insert(2 * PAGE, randomPage(2), 3), 'slot 0 aged out');
    ok(!cache.isCached(0, 3));
    ok(cache.isCached(2 * PAGE, 3));
    throws(() => new PageCache(3 * PAGE, PAGE, 16 * PAGE));
  });

  it('sends plain in the first pass, misses then hits, and mirrors zero pages', () => {
    const codec = new XbzrleCodec(16 * PAGE, PAGE, 16 * PAGE);
    const p = randomPage(3);
    equal(codec.encode(p, RAM_BLOCK_MAIN, 0), null, 'bulk stage');
    codec.sync();
    codec.sync();
    equal(codec.encode(p, RAM_BLOCK_MAIN, 0), null, 'a miss caches the page');
    equal(codec.stats.cacheMiss, 1);
    deepEqual(codec.encode(p.slice(), RAM_BLOCK_MAIN, 0), { kind: 'unchanged' });
    const q = p.slice();
    q[5] ^= 0xff;
    const e = codec.encode(q, RAM_BLOCK_MAIN, 0);
    ok(e && e.kind === 'xbzrle');
    const dest = p.slice();
    ok(xbzrleDecode(e.bytes, dest) >= 0);
    deepEqual(dest, q);
    codec.zeroPage(RAM_BLOCK_MAIN, 0);
    const r = new Uint8Array(PAGE);
    r[9] = 1;
    const z = codec.encode(r, RAM_BLOCK_MAIN, 0);
    ok(z && z.kind === 'xbzrle', 'encoded against the zero page the destination holds');
    const dz = new Uint8Array(PAGE);
    xbzrleDecode(z.bytes, dz);
    deepEqual(dz, r);
  });
});

describe('compressed pages', () => {
  it('zlib per page inside a COMPRESS_PAGE record, read back by RamReader', async () => {
    const block: RamBlock = { name: RAM_BLOCK_MAIN, length: 4 * PAGE };
    const page = new Uint8Array(PAGE);
    for (let i = 0; i < PAGE; i++) page[i] = (i * 7) & 0x3f;
    const z = compressPage(page, 1);
    ok(z && z.length < PAGE / 4, 'a patterned page compresses');
    equal(z[0], 0x78, 'zlib header (RFC 1950), as QEMU writes with compress2');
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    const rw = new RamWriter(w, PAGE);
    rw.writeCompressedPage(RAM_BLOCK_MAIN, PAGE, z);
    rw.writeEos();
    await w.flush();
    const bytes = new Uint8Array(sink.length);
    let at = 0;
    for (const c of sink.chunks) bytes.set(c, (at += c.length) - c.length);
    const v = new DataView(bytes.buffer);
    equal(v.getUint32(4), PAGE | 0x100, 'offset | COMPRESS_PAGE');
    equal(v.getUint32(8 + 1 + RAM_BLOCK_MAIN.length), z.length, 'be32 length after the block name');
    const got: Uint8Array[] = [];
    await new RamReader(StreamReader.fromBytes(bytes), [block], { allowCompressed: true }).readPart({
      page: () => {},
      zeroPage: () => {},
      compressedPage: (_b, _o, data) => void got.push(data.slice()),
    });
    const out = new Uint8Array(PAGE);
    decompressPage(got[0]!, out);
    deepEqual(out, page);
  });

  it('a record that inflates past a page (a zlib bomb) is refused without being held', () => {
    const bomb = zlibSync(new Uint8Array(1 << 20), { level: 9 });
    ok(bomb.length < PAGE, `a megabyte of zeros in ${bomb.length} bytes`);
    const out = new Uint8Array(PAGE).fill(7);
    let e: unknown;
    try {
      decompressPage(bomb, out);
    } catch (x) {
      e = x;
    }
    ok(e instanceof DecompressError, 'refused');
    equal((e as Error).message, 'decompress data failed: it inflates to more than a page');
    ok(out.every((b) => b === 7), 'the page is left as it was');
  });

  it('random data still fits the record bound; bad data is a DecompressError', () => {
    const z = compressPage(randomPage(9), 1);
    ok(z !== null && z.length <= PAGE + 13 + 1);
    const out = new Uint8Array(PAGE);
    decompressPage(z, out);
    throws(() => decompressPage(new Uint8Array([0x78, 0x01, 0xff, 0xff]), out));
    let e: unknown;
    try {
      decompressPage(new Uint8Array([1, 2, 3]), out);
    } catch (x) {
      e = x;
    }
    ok(e instanceof DecompressError);
  });
});

describe('the decompress backlog', () => {
  it('holds at most a bounded number of pages in the pool: the loader waits for the pool, as QEMU waits for a free decompress thread', async () => {
    let submitted = 0;
    const release: (() => void)[] = [];
    const pool = {
      size: 2,
      decompress: () => {
        submitted++;
        return new Promise<void>((r) => release.push(r));
      },
      terminate: () => {},
    };
    const codecs = new LoadCodecs({ ram: new Uint8Array(PAGE), pageSize: PAGE, pool, errorCheck: true });
    const z = compressPage(randomPage(3), 1)!;
    let waitedAt = -1;
    for (let i = 0; i < 10000; i++) {
      const w = codecs.compressed(0, z);
      if (w) {
        waitedAt = i;
        for (const r of release.splice(0)) r();
        await w;
        break;
      }
    }
    ok(waitedAt >= 0 && submitted <= 64, `the loader was made to wait after ${submitted} pages in flight`);
    await codecs.drain();
  });
});

describe('multifd layout', () => {
  it('initial packet: 64 bytes, magic, version, uuid, id', () => {
    const uuid = new Uint8Array(16).map((_, i) => i + 1);
    const b = encodeInit({ uuid, id: 3 });
    equal(b.length, MULTIFD_INIT_BYTES);
    equal(MULTIFD_INIT_BYTES, 64);
    equal(new DataView(b.buffer).getUint32(0), MULTIFD_MAGIC);
    equal(new DataView(b.buffer).getUint32(4), 1);
    equal(b[24], 3);
    deepEqual(decodeInit(b, 4), { uuid, id: 3 });
    throws(() => decodeInit(b, 2));
    const bad = b.slice();
    bad[0] = 0;
    ok(throws(() => decodeInit(bad, 4)) instanceof MultifdError);
  });

  it('page packet: fixed header, one be64 offset per slot', () => {
    const h = encodePacketHeader({ flags: MULTIFD_FLAG_SYNC, size: 16, used: 2, packetNum: 2 ** 33 + 5, block: RAM_BLOCK_MAIN, offsets: [0, 3 * PAGE] });
    equal(MULTIFD_PACKET_FIXED, 284);
    equal(h.length, packetHeaderBytes(16));
    equal(h.length, 284 + 16 * 8);
    const f = decodePacketFixed(h.subarray(0, MULTIFD_PACKET_FIXED), 16);
    deepEqual(f, { flags: 1, size: 16, used: 2, packetNum: 2 ** 33 + 5, block: RAM_BLOCK_MAIN });
    deepEqual(decodeOffsets(h.subarray(MULTIFD_PACKET_FIXED), 2, 8 * PAGE, PAGE), [0, 3 * PAGE]);
    throws(() => decodeOffsets(h.subarray(MULTIFD_PACKET_FIXED), 2, 2 * PAGE, PAGE));
    throws(() => decodePacketFixed(h.subarray(0, MULTIFD_PACKET_FIXED), 8));
  });

  it('sender → receiver: every page lands, the main stream waits at MULTIFD_FLUSH', async () => {
    const pages = 40;
    const block: RamBlock = { name: RAM_BLOCK_MAIN, length: pages * PAGE };
    const src = new Uint8Array(block.length);
    for (let p = 0; p < pages; p++) src.set(randomPage(p + 1), p * PAGE);
    const mainSink = new BufferSink();
    const sinks = [new BufferSink(), new BufferSink(), new BufferSink()];
    const main = new StreamWriter(mainSink);
    const writers = sinks.map((s) => new StreamWriter(s));
    const sender = new MultifdPageSender(main, writers, { pageSize: PAGE, pageCount: 4, uuid: new Uint8Array(16) });
    for (let p = 0; p < pages; p++) sender.sendPage(RAM_BLOCK_MAIN, p * PAGE, src);
    sender.lastStage();
    await sender.flush();
    sender.main.ram.writeEos();
    await Promise.all([main.flush(), ...writers.map((w) => w.flush())]);
    const dst = new Uint8Array(block.length);
    const rx = new MultifdReceiver(
      sinks.map((s) => chunkSource(s.chunks)),
      { ram: dst, pageSize: PAGE, blockName: RAM_BLOCK_MAIN, maxPageCount: 4 },
    );
    let flushes = 0;
    await new RamReader(StreamReader.fromBytes(concat(mainSink.chunks)), [block], {}).readPart({
      page: () => {},
      zeroPage: () => {},
      multifdFlush: () => {
        flushes++;
        return rx.flush();
      },
    });
    equal(flushes, 1);
    deepEqual(dst, src);
    equal(rx.pages, pages);
    rx.close();
  });
});

describe('multifd: a channel that ends early', () => {
  it('closed cleanly before its SYNC: the flush fails at once instead of waiting for ever', async () => {
    const uuid = new Uint8Array(16);
    // Channel 0 says who it is and then closes in good order; channel 1 syncs as it should.
    const c0 = chunkSource([encodeInit({ uuid, id: 0 })]);
    const sync = encodePacketHeader({ flags: MULTIFD_FLAG_SYNC, size: 4, used: 0, packetNum: 0, block: '', offsets: [] });
    const c1 = chunkSource([encodeInit({ uuid, id: 1 }), sync]);
    const rx = new MultifdReceiver([c0, c1], { ram: new Uint8Array(4 * PAGE), pageSize: PAGE, blockName: RAM_BLOCK_MAIN, maxPageCount: 4 });
    const outcome = await Promise.race([
      rx.flush().then(
        () => 'flushed',
        (e: Error) => e.message,
      ),
      new Promise<string>((r) => setTimeout(() => r('still waiting'), 3000)),
    ]);
    equal(outcome, 'multifd: channel 0 closed before its sync 1');
    rx.close();
  });
});

describe('auto-converge trigger', () => {
  it('throttles after two periods dirtying more than half of what was sent, then steps up to 99', () => {
    const ctl = { throttlePercent: 0 };
    const ac = new AutoConverge(ctl, { initial: 20, increment: 30 }, PAGE, 0, 0);
    // period 1: 1.1 s, 1000 pages dirtied (4 MB) against 6 MB sent: more than half
    equal(ac.onSync(1000, 6e6, 1100), false);
    equal(ctl.throttlePercent, 0, 'once is not enough');
    equal(ac.onSync(1000, 12e6, 2200), true);
    equal(ctl.throttlePercent, 20, 'cpu-throttle-initial');
    ac.onSync(1000, 18e6, 3300);
    ac.onSync(1000, 24e6, 4400);
    equal(ctl.throttlePercent, 50, '+ cpu-throttle-increment');
    ac.onSync(1000, 30e6, 5500);
    ac.onSync(1000, 36e6, 6600);
    ac.onSync(1000, 42e6, 7700);
    ac.onSync(1000, 48e6, 8800);
    equal(ctl.throttlePercent, 99, 'capped at 99');
    ac.stop();
    equal(ctl.throttlePercent, 0);
  });

  it('a short period or a guest dirtying little does not count', () => {
    const ctl = { throttlePercent: 0 };
    const ac = new AutoConverge(ctl, { initial: 20, increment: 10 }, PAGE, 0, 0);
    ac.onSync(5000, 1e6, 500);
    ac.onSync(5000, 2e6, 900);
    equal(ctl.throttlePercent, 0, 'under a second: the period goes on');
    ac.onSync(10, 10e6, 1100);
    ac.onSync(10, 20e6, 2200);
    ac.onSync(10, 30e6, 3300);
    equal(ctl.throttlePercent, 0);
  });
});

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
