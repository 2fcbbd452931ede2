// The ram section's records: MEM_SIZE, PAGE, ZERO, CONTINUE, XBZRLE / COMPRESS_PAGE framing, EOS;
// the reader's validation (QEMU's ram.c texts); isZeroPage; the received bitmap.
import {
  BufferSink,
  RAM_BLOCK_MAIN,
  RamFlag,
  RamReader,
  RamWriter,
  StreamEndError,
  StreamFormatError,
  StreamReader,
  StreamWriter,
  bitmapTest,
  chunkSource,
  isZeroPage,
  packRecvBitmap,
  readRecvBitmap,
  recvBitmapBytes,
  writeRecvBitmap,
  type RamBlock,
  type RamVisitor,
} from '../src/migration/stream/index.js';
import { deepEqual, equal, ok, rejects, throws } from './helpers/assert.js';

const MAIN: RamBlock = { name: RAM_BLOCK_MAIN, length: 64 * 1024 };
const ROM: RamBlock = { name: 'rom', length: 8 * 1024 };

async function bytesOf(write: (w: StreamWriter) => void, chunkSize?: number): Promise<Uint8Array> {
  const sink = new BufferSink();
  const w = new StreamWriter(sink, { chunkSize });
  write(w);
  await w.flush();
  return sink.toBytes();
}

type Event = [string, ...unknown[]];

function recorder(events: Event[]): RamVisitor {
  return {
    memSize: (blocks, total) => events.push(['mem', blocks.map((b) => b.name), total]),
    page: (b, off, data) => events.push(['page', b.name, off, data[0], data[4095], data.length]),
    zeroPage: (b, off, fill) => events.push(['zero', b.name, off, fill]),
    xbzrlePage: (b, off, enc) => events.push(['xbzrle', b.name, off, Array.from(enc)]),
    compressedPage: (b, off, data) => void events.push(['zlib', b.name, off, Array.from(data)]),
    multifdFlush: () => void events.push(['flush']),
  };
}

function page(fill: number): Uint8Array {
  const p = new Uint8Array(4096).fill(fill);
  p[0] = fill ^ 0x55;
  return p;
}

/** be64 record header from a raw value. */
function raw64(hi: number, lo: number): number[] {
  return [hi >>> 24, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255];
}

function counted(s: string): number[] {
  return [s.length, ...new TextEncoder().encode(s)];
}

async function expectFormatError(p: Promise<unknown>, code: string, text: string): Promise<void> {
  const e = await rejects(p, `expected ${code}`);
  ok(e instanceof StreamFormatError, `a StreamFormatError, got ${e}`);
  equal(e.code, code, 'code');
  equal(e.message, text);
}

describe('ram records', () => {
  it('round-trip: MEM_SIZE list, pages, zero pages, XBZRLE, compressed, flush, EOS', async () => {
    const bytes = await bytesOf((w) => {
      const rw = new RamWriter(w);
      rw.writeMemSize([MAIN, ROM]);
      rw.writeEos();
      rw.writePage(RAM_BLOCK_MAIN, 0, page(1));
      rw.writeZeroPage(RAM_BLOCK_MAIN, 4096);
      rw.writePage('rom', 4096, page(2));
      rw.writeXbzrlePage('rom', 0, new Uint8Array([1, 2, 3]));
      rw.writeCompressedPage(RAM_BLOCK_MAIN, 60 * 1024, new Uint8Array([9, 8]));
      rw.writeMultifdFlush();
      rw.writeEos();
    }, 1000);
    for (const pieces of [[bytes], [bytes.subarray(0, 7), bytes.subarray(7, 4100), bytes.subarray(4100)]]) {
      const events: Event[] = [];
      const rr = new RamReader(new StreamReader(chunkSource(pieces)), [MAIN, ROM], { allowCompressed: true });
      const setup = await rr.readPart(recorder(events));
      equal(setup.records, 2, 'MEM_SIZE and EOS');
      const stats = await rr.readPart(recorder(events));
      deepEqual(
        { pages: stats.pages, zeroPages: stats.zeroPages, xbzrle: stats.xbzrlePages, compressed: stats.compressedPages },
        { pages: 2, zeroPages: 1, xbzrle: 1, compressed: 1 },
      );
      deepEqual(events, [
        ['mem', [RAM_BLOCK_MAIN, 'rom'], 72 * 1024],
        ['page', RAM_BLOCK_MAIN, 0, 0x54, 1, 4096],
        ['zero', RAM_BLOCK_MAIN, 4096, 0],
        ['page', 'rom', 4096, 0x57, 2, 4096],
        ['xbzrle', 'rom', 0, [1, 2, 3]],
        ['zlib', RAM_BLOCK_MAIN, 60 * 1024, [9, 8]],
        ['flush'],
      ]);
    }
  });

  it('uses CONTINUE for the same block and names a new one (QEMU byte layout)', async () => {
    const bytes = await bytesOf((w) => {
      const rw = new RamWriter(w);
      rw.writeZeroPage(RAM_BLOCK_MAIN, 0);
      rw.writeZeroPage(RAM_BLOCK_MAIN, 4096);
      rw.writeZeroPage('rom', 0);
      rw.writeEos();
    });
    deepEqual(Array.from(bytes), [
      ...raw64(0, RamFlag.ZERO),
      ...counted(RAM_BLOCK_MAIN),
      0,
      ...raw64(0, 4096 | RamFlag.ZERO | RamFlag.CONTINUE),
      0,
      ...raw64(0, RamFlag.ZERO),
      ...counted('rom'),
      0,
      ...raw64(0, RamFlag.EOS),
    ]);
  });

  it('MEM_SIZE carries the total in the high bits', async () => {
    const big: RamBlock = { name: RAM_BLOCK_MAIN, length: 2 ** 33 };
    const bytes = await bytesOf((w) => new RamWriter(w).writeMemSize([big]));
    deepEqual(Array.from(bytes.subarray(0, 8)), raw64(2, RamFlag.MEM_SIZE));
    deepEqual(Array.from(bytes.subarray(8)), [...counted(RAM_BLOCK_MAIN), ...raw64(2, 0)]);
  });

  it('CONTINUE carries over to the next part; resetContinue names the block again', async () => {
    const bytes = await bytesOf((w) => {
      const rw = new RamWriter(w);
      rw.writePage(RAM_BLOCK_MAIN, 0, page(3));
      rw.writeEos();
      rw.writePage(RAM_BLOCK_MAIN, 8192, page(4));
      rw.writeEos();
      rw.resetContinue();
      rw.writeZeroPage(RAM_BLOCK_MAIN, 0);
      rw.writeEos();
    });
    equal(bytes.length, 8 + 1 + RAM_BLOCK_MAIN.length + 4096 + 8 + (8 + 4096) + 8 + (8 + 1 + RAM_BLOCK_MAIN.length + 1) + 8);
    const events: Event[] = [];
    const rr = new RamReader(StreamReader.fromBytes(bytes), [MAIN]);
    for (let i = 0; i < 3; i++) await rr.readPart(recorder(events));
    deepEqual(events.map((e) => e.slice(0, 3)), [
      ['page', RAM_BLOCK_MAIN, 0],
      ['page', RAM_BLOCK_MAIN, 8192],
      ['zero', RAM_BLOCK_MAIN, 0],
    ]);
  });

  it('hands page data over as a view of the received chunk (no copy)', async () => {
    const bytes = await bytesOf((w) => {
      const rw = new RamWriter(w);
      rw.writePage(RAM_BLOCK_MAIN, 0, page(5));
      rw.writeEos();
    });
    let seen: Uint8Array | null = null;
    await new RamReader(StreamReader.fromBytes(bytes), [MAIN]).readPart({ page: (_b, _o, d) => (seen = d), zeroPage: () => {} });
    equal(seen!.buffer, bytes.buffer);
  });

  it('the writer refuses misaligned offsets, offsets outside the block and oversize payloads', () => {
    const rw = new RamWriter(new StreamWriter(new BufferSink()));
    rw.writeMemSize([MAIN]);
    ok(throws(() => rw.writePage(RAM_BLOCK_MAIN, 100, page(0))) instanceof RangeError, 'misaligned');
    ok(throws(() => rw.writeZeroPage(RAM_BLOCK_MAIN, MAIN.length)) instanceof RangeError, 'outside');
    ok(throws(() => rw.writeXbzrlePage(RAM_BLOCK_MAIN, 0, new Uint8Array(4097))) instanceof RangeError, 'xbzrle');
    ok(throws(() => rw.writeCompressedPage(RAM_BLOCK_MAIN, 0, new Uint8Array(4111))) instanceof RangeError, 'zlib');
    ok(throws(() => rw.writeMemSize([{ name: 'odd', length: 100 }])) instanceof RangeError, 'block length');
  });
});

describe('ram records: malformed input', () => {
  const read = (bytes: number[], options = {}) =>
    new RamReader(StreamReader.fromBytes(new Uint8Array(bytes)), [MAIN], options).readPart(recorder([]));

  it('page address outside RAM', () =>
    expectFormatError(read([...raw64(0, 0x10000 | RamFlag.PAGE), ...counted(RAM_BLOCK_MAIN)]), 'illegal-ram-offset', 'Illegal RAM offset 10000'));

  it('page address far outside RAM (high word)', () =>
    expectFormatError(read([...raw64(1, RamFlag.ZERO), ...counted(RAM_BLOCK_MAIN)]), 'illegal-ram-offset', 'Illegal RAM offset 100000000'));

  it('unknown flags', () => expectFormatError(read(raw64(0, 0x400 | RamFlag.PAGE)), 'unknown-ram-flags', 'Unknown combination of migration flags: 0x408'));

  it('the obsolete FULL flag and the RDMA hook flag', async () => {
    await expectFormatError(read(raw64(0, RamFlag.FULL)), 'unknown-ram-flags', 'Unknown combination of migration flags: 0x1');
    await expectFormatError(read(raw64(0, RamFlag.HOOK)), 'unknown-ram-flags', 'Unknown combination of migration flags: 0x80');
  });

  it('a misaligned address: its low bits read as flags, and are refused', () =>
    expectFormatError(read(raw64(0, 0x1804)), 'unknown-ram-flags', 'Unknown combination of migration flags: 0x804'));

  it('two record types at once', () =>
    expectFormatError(read([...raw64(0, RamFlag.ZERO | RamFlag.PAGE)]), 'bad-ram-flags', 'Unknown combination of migration flags: 0xa'));

  it('CONTINUE with no block named before', () =>
    expectFormatError(read(raw64(0, RamFlag.PAGE | RamFlag.CONTINUE)), 'ram-continue-without-block', 'Ack, bad migration stream!'));

  it('a block this side does not have', () =>
    expectFormatError(read([...raw64(0, RamFlag.PAGE), ...counted('pc.ram')]), 'unknown-ramblock', "Can't find block pc.ram"));

  it('MEM_SIZE naming an unknown block', () =>
    expectFormatError(read([...raw64(0, 0x10000 | RamFlag.MEM_SIZE), ...counted('pc.ram'), ...raw64(0, 0x10000)]), 'unknown-ramblock', 'Unknown ramblock "pc.ram", cannot accept migration'));

  it('MEM_SIZE with a different block length', () =>
    expectFormatError(
      read([...raw64(0, 0x20000 | RamFlag.MEM_SIZE), ...counted(RAM_BLOCK_MAIN), ...raw64(0, 0x20000)]),
      'ram-size-mismatch',
      'Size mismatch: riscv_virt_board.ram: 0x20000 != 0x10000: Invalid argument',
    ));

  it('MEM_SIZE whose blocks add up to more than its total', () =>
    expectFormatError(
      read([...raw64(0, 0x8000 | RamFlag.MEM_SIZE), ...counted(RAM_BLOCK_MAIN), ...raw64(0, 0x10000)]),
      'ram-total-mismatch',
      'RAM block list adds up to more than the 0x8000 bytes MEM_SIZE announced',
    ));

  it('a compressed page when compression is off, and one that is too long', async () => {
    await expectFormatError(read([...raw64(0, RamFlag.COMPRESS_PAGE)]), 'unexpected-compressed-page', 'Received an unexpected compressed page');
    await expectFormatError(
      read([...raw64(0, RamFlag.COMPRESS_PAGE), ...counted(RAM_BLOCK_MAIN), 0, 0, 0x13, 0x88], { allowCompressed: true }),
      'bad-compressed-length',
      'Invalid compressed data length: 5000',
    );
  });

  it('XBZRLE with the wrong encoding byte or too long', async () => {
    await expectFormatError(read([...raw64(0, RamFlag.XBZRLE), ...counted(RAM_BLOCK_MAIN), 2, 0, 1, 0]), 'bad-xbzrle', 'Failed to load XBZRLE page - wrong compression!');
    await expectFormatError(read([...raw64(0, RamFlag.XBZRLE), ...counted(RAM_BLOCK_MAIN), 1, 0x10, 1]), 'bad-xbzrle', 'Failed to load XBZRLE page - len overflow!');
  });

  it('a page cut short is incomplete, not malformed', async () => {
    const e = await rejects(read([...raw64(0, RamFlag.PAGE), ...counted(RAM_BLOCK_MAIN), 1, 2, 3]));
    ok(e instanceof StreamEndError, `StreamEndError, got ${e}`);
  });
});

describe('isZeroPage', () => {
  it('finds any non-zero byte, aligned or not, in shared memory too', () => {
    const ram = new Uint8Array(new SharedArrayBuffer(4 * 4096));
    ok(isZeroPage(ram, 4096));
    for (const at of [0, 1, 2, 3, 4, 15, 16, 2047, 4092, 4095]) {
      ram[4096 + at] = 1;
      equal(isZeroPage(ram, 4096), false, `byte ${at}`);
      ok(isZeroPage(ram, 0) && isZeroPage(ram, 8192), 'neighbours unaffected');
      ram[4096 + at] = 0;
    }
    const view = ram.subarray(1);
    ok(isZeroPage(view, 0), 'unaligned view');
    view[4095] = 9;
    equal(isZeroPage(view, 0), false, 'unaligned view, last byte');
    ok(isZeroPage(ram, 0, 16), 'small size');
    ok(throws(() => isZeroPage(ram, 3 * 4096 + 1)) instanceof RangeError, 'out of range');
  });
});

describe('received bitmap', () => {
  it('packs one bit per page, little-endian bit order, padded to 64-bit words', () => {
    equal(recvBitmapBytes(1), 8);
    equal(recvBitmapBytes(64), 8);
    equal(recvBitmapBytes(65), 16);
    const flags = new Uint8Array(70);
    flags[0] = flags[9] = flags[69] = 1;
    const bits = packRecvBitmap(flags);
    equal(bits.length, 16);
    deepEqual(Array.from(bits.subarray(0, 2)), [1, 2]);
    equal(bits[8], 0x20);
    ok(bitmapTest(bits, 9) && !bitmapTest(bits, 8));
  });

  it('round-trips with its size and end mark, and refuses either wrong', async () => {
    const bits = packRecvBitmap(new Uint8Array(100).fill(1));
    const good = await bytesOf((w) => writeRecvBitmap(w, bits));
    deepEqual(Array.from(await readRecvBitmap(StreamReader.fromBytes(good), 'b', 100)), Array.from(bits));
    await expectFormatError(readRecvBitmap(StreamReader.fromBytes(good), 'b', 200), 'bad-bitmap', "ramblock 'b' bitmap size mismatch (0x10 != 0x20)");
    const bad = good.slice();
    bad[bad.length - 1] ^= 1;
    await expectFormatError(readRecvBitmap(StreamReader.fromBytes(bad), 'b', 100), 'bad-bitmap', "ramblock 'b' end mark incorrect: 0x123456789abcdee");
  });
});
