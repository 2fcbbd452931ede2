// The page sender: one channel writes exactly what a RamWriter writes; fanned out over two
// in-memory channels every page arrives exactly once, readable on its own channel; an
// asynchronous codec keeps each channel's records in the order they were queued.
import { PageSender, type PageCodec } from '../src/migration/ram/page-sender.js';
import { BufferSink, RAM_BLOCK_MAIN, RamReader, RamWriter, StreamReader, StreamWriter, type RamBlock } from '../src/migration/stream/index.js';
import { equal, ok } from './helpers/assert.js';

const PAGE = 4096;
const PAGES = 40;
const BLOCK: RamBlock = { name: RAM_BLOCK_MAIN, length: PAGES * PAGE };

function sampleRam(): Uint8Array {
  const ram = new Uint8Array(BLOCK.length);
  for (let p = 0; p < PAGES; p++) ram.fill(p + 1, p * PAGE, (p + 1) * PAGE);
  return ram;
}

/** Reads one channel's records (up to its EOS) into a map of offset → first byte of the page. */
async function readChannel(bytes: Uint8Array, compressed = false): Promise<Map<number, number>> {
  const got = new Map<number, number>();
  const reader = new RamReader(StreamReader.fromBytes(bytes), [BLOCK], { allowCompressed: compressed });
  await reader.readPart({
    page: (_b, offset, data) => got.set(offset, data[0]!),
    zeroPage: (_b, offset) => got.set(offset, 0),
    compressedPage: (_b, offset, data) => void got.set(offset, data[0]!),
  });
  return got;
}

describe('page sender', () => {
  it('with one channel and no codec writes what a RamWriter writes', async () => {
    const ram = sampleRam();
    const a = new BufferSink();
    const wa = new StreamWriter(a, { chunkSize: 8192 });
    const sender = new PageSender([wa], { pageSize: PAGE });
    const b = new BufferSink();
    const wb = new StreamWriter(b, { chunkSize: 8192 });
    const rw = new RamWriter(wb);
    for (let p = 0; p < PAGES; p++) {
      if (p % 5 === 0) {
        sender.sendZeroPage(RAM_BLOCK_MAIN, p * PAGE);
        rw.writeZeroPage(RAM_BLOCK_MAIN, p * PAGE);
      } else {
        sender.sendPage(RAM_BLOCK_MAIN, p * PAGE, ram);
        rw.writePage(RAM_BLOCK_MAIN, p * PAGE, ram, p * PAGE);
      }
    }
    await sender.flush();
    await wa.flush();
    await wb.flush();
    const x = a.toBytes();
    const y = b.toBytes();
    equal(x.length, y.length);
    equal(
      x.findIndex((v, i) => v !== y[i]),
      -1,
      'identical bytes',
    );
  });

  it('fans out over two channels: every page exactly once, each channel readable alone', async () => {
    const ram = sampleRam();
    const sinks = [new BufferSink(), new BufferSink()];
    // A small high-water mark so "no room" happens and the sender has to choose.
    const writers = sinks.map((s) => new StreamWriter(s, { chunkSize: 4096, highWater: 8192 }));
    const sender = new PageSender(writers, { pageSize: PAGE });
    for (let p = 0; p < PAGES; p++) {
      if (p % 7 === 0) sender.sendZeroPage(RAM_BLOCK_MAIN, p * PAGE);
      else sender.sendPage(RAM_BLOCK_MAIN, p * PAGE, ram);
      if (sender.needsDrain) await sender.ready();
    }
    await sender.flush();
    for (const ch of sender.channels) ch.ram.writeEos();
    for (const w of writers) await w.flush();

    const seen = new Map<number, number>();
    let perChannel = 0;
    for (const s of sinks) {
      const got = await readChannel(s.toBytes());
      ok(got.size > 0, 'both channels carry pages');
      perChannel += got.size;
      for (const [offset, first] of got) {
        ok(!seen.has(offset), `page at ${offset} sent once`);
        seen.set(offset, first);
      }
    }
    equal(perChannel, PAGES);
    for (let p = 0; p < PAGES; p++) equal(seen.get(p * PAGE), p % 7 === 0 ? 0 : p + 1, `page ${p}`);
  });

  it('keeps queue order through an asynchronous codec, and copies the page before encoding', async () => {
    const ram = sampleRam();
    const delays = [30, 0, 10, 0, 20];
    let n = 0;
    // A stand-in codec: "compresses" a page to its first 16 bytes, some answers arriving late.
    const codec: PageCodec = {
      name: 'test',
      encode: (page) => {
        const d = delays[n++ % delays.length]!;
        const out = { kind: 'compressed' as const, bytes: page.slice(0, 16) };
        return d === 0 ? out : new Promise((r) => setTimeout(() => r(out), d));
      },
    };
    const sink = new BufferSink();
    const w = new StreamWriter(sink, { chunkSize: 4096 });
    const sender = new PageSender([w], { pageSize: PAGE, codec });
    const order: number[] = [];
    for (let p = 0; p < 10; p++) {
      sender.sendPage(RAM_BLOCK_MAIN, p * PAGE, ram);
      order.push(p);
    }
    ram.fill(0xee); // the guest writes on: the queued pages were copied
    await sender.flush();
    sender.main.ram.writeEos();
    await w.flush();

    const offsets: number[] = [];
    const reader = new RamReader(StreamReader.fromBytes(sink.toBytes()), [BLOCK], { allowCompressed: true });
    const firsts: number[] = [];
    await reader.readPart({
      page: () => ok(false, 'no plain page expected'),
      zeroPage: () => ok(false, 'no zero page expected'),
      compressedPage: (_b, offset, data) => {
        offsets.push(offset / PAGE);
        firsts.push(data[0]!);
      },
    });
    equal(offsets.join(), order.join(), 'records in queue order');
    equal(firsts.join(), order.map((p) => p + 1).join(), 'contents as they were when queued');
  });
});
