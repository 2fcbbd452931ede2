// The stream log the inspector reads live: the savevm loop's tap notes every item with the bytes
// it took (so the sizes add up to the stream), RAM PARTs of one round fold into one entry with
// that round's page counts, and a new round opens a new entry; the shared ring keeps names and
// numbers across a reader that only has the buffer.
import type { SaveHandler } from '../src/migration/handlers.js';
import { SaveHandlerRegistry, SaveVmLoop } from '../src/migration/savevm.js';
import { StreamLog, StreamLogSide, VM_DESCRIPTION_TYPE } from '../src/migration/stream-log.js';
import { StreamLogWriter, type RamCounts } from '../src/migration/stream-log-writer.js';
import { incomingStreamTap } from '../src/migration/destination/stream-log-tap.js';
import type { RamLoadTotals } from '../src/migration/ram/ram-load.js';
import { BufferSink, SectionType, StreamWriter, writeSectionFooter, writeSectionPart } from '../src/migration/stream/index.js';
import { rowsFromLog } from '../src/ui/stream-rows.js';
import { deepEqual, equal } from './helpers/assert.js';

function iterable(name: string, parts: number, onIterate: () => void): SaveHandler {
  let left = parts;
  return {
    name,
    instanceId: 0,
    version: 4,
    minimumVersion: 4,
    kind: 'iterable',
    setup: (w) => w.putBytes(new Uint8Array(9)),
    pending: () => ({ precopyOnly: left, postcopyable: 0 }),
    iterate: async (w) => {
      onIterate();
      w.putBytes(new Uint8Array(100));
      return --left <= 0;
    },
    completePrecopy: (w) => w.putU8(0),
  };
}

function device(name: string, version: number): SaveHandler {
  return { name, instanceId: 0, version, minimumVersion: 1, kind: 'device', fields: [{ name: 'x', type: 'uint32', size: 4 }], completePrecopy: (w) => w.putBytes(new Uint8Array(4)) };
}

describe('stream log', () => {
  it('lists each section with its size, and folds the RAM parts of a round into one entry', async () => {
    const counts: RamCounts = { pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0 };
    let round = 1;
    let iterations = 0;
    const reg = new SaveHandlerRegistry();
    reg.register(
      iterable('ram', 4, () => {
        // Two parts per round; each part "sends" 10 pages, 3 of them zero, 2 XBZRLE.
        if (iterations++ === 2) round = 2;
        counts.pages += 10;
        counts.zeroPages += 3;
        counts.xbzrlePages += 2;
      }),
    );
    reg.register(device('cpu', 2));
    const log = new StreamLog();
    const tap = new StreamLogWriter(log, StreamLogSide.SOURCE, { isRam: (n) => n === 'ram', round: () => round, counts: () => counts });
    const sink = new BufferSink();
    const w = new StreamWriter(sink, { chunkSize: 256 });
    const loop = new SaveVmLoop(reg, w, { footers: true, pageSize: 4096, tap });
    await loop.setup([{ type: 'PING', value: 7 }]);
    while (!(await loop.iterate()));
    // A part framed by its owner (postcopy's urgent pages on the main stream) is listed too.
    const urgentAt = w.transferred;
    writeSectionPart(w, 0);
    w.putBytes(new Uint8Array(30));
    writeSectionFooter(w, 0);
    loop.partWritten(0, urgentAt);
    await loop.completePrecopy();
    await w.flush();
    const bytes = sink.toBytes();

    // A reader with only the buffer, as the page has it.
    const seen = new StreamLog(log.buffer).list();
    equal(new StreamLog(log.buffer).side, StreamLogSide.SOURCE);
    deepEqual(
      seen.map((e) => [e.type, e.name, e.round, e.parts]),
      [
        [SectionType.COMMAND, 'PING 7', 0, 0],
        [SectionType.START, 'ram', 1, 1],
        [SectionType.PART, 'ram', 1, 2],
        [SectionType.PART, 'ram', 2, 3],
        [SectionType.END, 'ram', 2, 1],
        [SectionType.FULL, 'cpu', 0, 0],
        [SectionType.EOF, 'EOF', 0, 0],
        [VM_DESCRIPTION_TYPE, 'VM description', 0, 0],
      ],
    );
    const [, , r1, r2] = seen;
    deepEqual([r1!.pages, r1!.zeroPages, r1!.xbzrlePages], [20, 6, 4]);
    deepEqual([r2!.pages, r2!.zeroPages, r2!.xbzrlePages], [20, 6, 4]);
    equal(seen[5]!.version, 2);
    // Every byte after the 8-byte header belongs to exactly one item, in order.
    let at = 8;
    for (const e of seen) {
      equal(e.offset, at, `${e.name} starts where the item before it ended`);
      at += e.bytes;
    }
    equal(at, bytes.length);
  });

  it('keeps the newest entries when the ring is full, and cuts long names', () => {
    const log = new StreamLog(new SharedArrayBuffer(16 + 4 * (13 * 8 + 32)));
    equal(log.capacity, 4);
    const tap = new StreamLogWriter(log, StreamLogSide.DESTINATION, { isRam: () => false, round: () => 0, counts: () => ({ pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0 }) });
    for (let i = 0; i < 6; i++) tap.section({ type: SectionType.FULL, sectionId: i, name: `dev${i}`.padEnd(40, 'x'), instanceId: 0, version: 1, offset: i, bytes: 1, nested: false });
    const list = log.list();
    deepEqual(list.map((e) => e.sectionId), [2, 3, 4, 5]);
    equal(list[0]!.name.length, 31);
  });

  it('on the destination, opens a new round when a page arrives a second time', () => {
    const totals: RamLoadTotals = { pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0, parts: 0 };
    const log = new StreamLog();
    const t = incomingStreamTap(log.buffer, 16, () => totals)!;
    let offset = 8;
    const part = (pages: number[], zero = 0) => {
      for (const p of pages) t.page(p);
      totals.pages += pages.length;
      totals.zeroPages += zero;
      t.tap.section({ type: SectionType.PART, sectionId: 1, name: 'ram', instanceId: 0, version: 4, offset, bytes: 100, nested: false });
      offset += 100;
    };
    part([0, 1, 2, 3], 2);
    part([4, 5, 6, 7, 8]);
    // The source synced: pages the guest dirtied come again.
    part([2, 5]);
    part([9]);
    part([5]);
    t.tap.section({ type: SectionType.FULL, sectionId: 2, name: 'cpu', instanceId: 0, version: 1, offset, bytes: 40, nested: false });
    const rows = rowsFromLog(log.list());
    deepEqual(
      rows.map((r) => [r.kind, r.name, r.round ?? null, r.parts ?? null, r.ram?.pages ?? null]),
      [
        ['PART', 'ram', 1, 2, 9],
        ['PART', 'ram', 2, 2, 3],
        ['PART', 'ram', 3, 1, 1],
        ['FULL', 'cpu', null, null, null],
      ],
    );
    equal(rows[0]!.ram!.zeroPages, 2);
    equal(rows[3]!.version, 1);
    equal(new StreamLog(log.buffer).side, StreamLogSide.DESTINATION);
  });

  it('lists a package\'s contents after its PACKAGED command on both sides, though the source builds them first', () => {
    const none = { isRam: () => false, round: () => 0, counts: () => ({ pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0 }) };
    const full = (name: string, nested: boolean) => ({ type: SectionType.FULL, sectionId: 3, name, instanceId: 0, version: 1, offset: 0, bytes: 9, nested });
    const order = (log: StreamLog) => log.list().map((e) => `${e.name}${e.nested ? '*' : ''}`);
    const expected = ['PACKAGED', 'POSTCOPY_LISTEN*', 'cpu*', 'POSTCOPY_RUN*', 'ram'];

    const src = new StreamLog();
    const s = new StreamLogWriter(src, StreamLogSide.SOURCE, none);
    s.command({ type: 'POSTCOPY_LISTEN' }, 0, 5, true);
    s.section(full('cpu', true));
    s.command({ type: 'POSTCOPY_RUN' }, 14, 5, true);
    s.command({ type: 'PACKAGED', data: new Uint8Array(19) }, 100, 28, false);
    s.section({ ...full('ram', false), type: SectionType.PART });
    deepEqual(order(src), expected);

    const dst = new StreamLog();
    const d = new StreamLogWriter(dst, StreamLogSide.DESTINATION, none);
    d.command({ type: 'PACKAGED', data: new Uint8Array(19) }, 100, 28, false);
    d.command({ type: 'POSTCOPY_LISTEN' }, 0, 5, true);
    d.section(full('cpu', true));
    d.command({ type: 'POSTCOPY_RUN' }, 14, 5, true);
    d.section({ ...full('ram', false), type: SectionType.PART });
    deepEqual(order(dst), expected);
  });
});
