// The savevm loop with fake handlers: section order and ids, framing (START/PART/END/FULL),
// footers, commands at setup, EOF and the VM description built from the handlers' fields; and
// the snapshot writer (the loop driven with the machine stopped) writing exactly the bytes the
// one-pass writer it replaced wrote, so QEMU's analyze-migration.py still reads them.
import { DEVICES, DeviceState } from '../src/guest/device-state.js';
import type { SaveHandler } from '../src/migration/handlers.js';
import { SaveHandlerRegistry, SaveVmLoop } from '../src/migration/savevm.js';
import { writeSnapshot } from '../src/migration/snapshot-writer.js';
import {
  BufferSink,
  GLOBALSTATE_SPEC,
  RAM_BLOCK_MAIN,
  RAM_SECTION_INSTANCE,
  RAM_SECTION_NAME,
  RAM_SECTION_VERSION,
  RamWriter,
  SectionType,
  StreamReader,
  StreamWriter,
  buildVmDescription,
  isZeroPage,
  readVmDescription,
  writeConfiguration,
  writeDeviceSection,
  writeEof,
  writeGlobalStateSection,
  writeSectionEnd,
  writeSectionFooter,
  writeSectionPart,
  writeSectionStart,
  writeStreamHeader,
  writeVmDescription,
  type RamBlock,
} from '../src/migration/stream/index.js';
import { deepEqual, equal, ok } from './helpers/assert.js';

/** A handler that writes a marker byte from each hook and logs the calls. */
function fake(name: string, kind: SaveHandler['kind'], log: string[], opts: { parts?: number; active?: boolean } = {}): SaveHandler {
  let left = opts.parts ?? 1;
  return {
    name,
    instanceId: 0,
    version: 3,
    minimumVersion: 1,
    kind,
    fields: kind === 'iterable' ? undefined : [{ name: 'x', type: 'uint8', size: 1 }],
    isActive: () => opts.active ?? true,
    setup: (w) => {
      log.push(`${name}.setup`);
      w.putU8(0xa0);
    },
    pending: () => ({ precopyOnly: left * 10, postcopyable: 0 }),
    iterate: async (w) => {
      log.push(`${name}.iterate`);
      w.putU8(0xa1);
      left--;
      return left <= 0;
    },
    completePrecopy: (w) => {
      log.push(`${name}.complete`);
      w.putU8(0xa2);
    },
    cleanup: () => log.push(`${name}.cleanup`),
  };
}

async function run(registry: SaveHandlerRegistry, footers: boolean, drive: (loop: SaveVmLoop) => Promise<void>): Promise<Uint8Array> {
  const sink = new BufferSink();
  const w = new StreamWriter(sink, { chunkSize: 256 });
  const loop = new SaveVmLoop(registry, w, { footers, pageSize: 4096 });
  await drive(loop);
  loop.cleanup();
  await w.flush();
  return sink.toBytes();
}

describe('savevm loop', () => {
  it('frames every handler in registration order, with footers, commands and the description', async () => {
    const log: string[] = [];
    const reg = new SaveHandlerRegistry();
    equal(reg.register(fake('ram', 'iterable', log, { parts: 2 })), 0);
    equal(reg.register(fake('configuration', 'configuration', log)), -1, 'the configuration section has no id');
    equal(reg.register(fake('off', 'device', log, { active: false })), 1, 'an inactive handler keeps its id');
    equal(reg.register(fake('dev', 'device', log)), 2);
    const bytes = await run(reg, true, async (loop) => {
      await loop.setup([{ type: 'OPEN_RETURN_PATH' }, { type: 'PING', value: 7 }]);
      deepEqual(loop.pending(0), { precopyOnly: 20, postcopyable: 0 });
      equal(await loop.iterate(), false);
      equal(await loop.iterate(), true);
      await loop.completePrecopy();
    });

    const expected = await (async () => {
      const sink = new BufferSink();
      const w = new StreamWriter(sink, { chunkSize: 256 });
      writeStreamHeader(w);
      w.putU8(SectionType.CONFIGURATION);
      w.putU8(0xa2);
      w.putBytes(new Uint8Array([0x08, 0, 1, 0, 0, 0x08, 0, 2, 0, 4, 0, 0, 0, 7]));
      writeSectionStart(w, 0, 'ram', 0, 3);
      w.putU8(0xa0);
      writeSectionFooter(w, 0);
      for (let i = 0; i < 2; i++) {
        writeSectionPart(w, 0);
        w.putU8(0xa1);
        writeSectionFooter(w, 0);
      }
      writeSectionEnd(w, 0);
      w.putU8(0xa2);
      writeSectionFooter(w, 0);
      w.putU8(SectionType.FULL);
      w.putBe32(2);
      w.putCountedString('dev');
      w.putBe32(0);
      w.putBe32(3);
      w.putU8(0xa2);
      writeSectionFooter(w, 2);
      writeEof(w);
      await w.flush();
      return sink.toBytes();
    })();
    deepEqual(Array.from(bytes.subarray(0, expected.length)), Array.from(expected), 'framing up to EOF');

    const r = StreamReader.fromBytes(bytes.subarray(expected.length));
    const desc = await readVmDescription(r);
    ok(desc, 'a VM description follows EOF');
    deepEqual(desc!.description, {
      page_size: 4096,
      configuration: { vmsd_name: 'configuration', version: 3, fields: [{ name: 'x', type: 'uint8', size: 1 }], subsections: [] },
      devices: [{ name: 'dev', instance_id: 0, vmsd_name: 'dev', version: 3, fields: [{ name: 'x', type: 'uint8', size: 1 }], subsections: [] }],
    });
    deepEqual(log, [
      'configuration.complete',
      'ram.setup',
      'ram.iterate',
      'ram.iterate',
      'ram.complete',
      'dev.complete',
      'ram.cleanup',
      'configuration.cleanup',
      'off.cleanup',
      'dev.cleanup',
    ]);
  });

  it('writes no footers when send-section-footer is off, and stops iterating at the first handler not done', async () => {
    const log: string[] = [];
    const reg = new SaveHandlerRegistry();
    reg.register(fake('a', 'iterable', log, { parts: 2 }));
    reg.register(fake('b', 'iterable', log, { parts: 1 }));
    const bytes = await run(reg, false, async (loop) => {
      await loop.setup();
      equal(await loop.iterate(), false, 'a has more');
      await loop.completePrecopy();
    });
    ok(!bytes.includes(SectionType.FOOTER), 'no footer byte anywhere');
    deepEqual(log.filter((l) => l.endsWith('iterate')), ['a.iterate'], 'b waits for the next iteration');
  });

  it('refuses a section registered twice', () => {
    const reg = new SaveHandlerRegistry();
    reg.register(fake('x', 'device', []));
    let threw = false;
    try {
      reg.register(fake('x', 'device', []));
    } catch {
      threw = true;
    }
    ok(threw);
  });
});

// ---- the one-pass writer the loop replaced, kept here as the byte reference ---------------------

async function legacySnapshot(w: StreamWriter, ramBlock: RamBlock, ram: Uint8Array, state: DeviceState, runState: string, footers: boolean): Promise<void> {
  writeStreamHeader(w);
  writeConfiguration(w, 'virt');
  const rw = new RamWriter(w);
  writeSectionStart(w, 0, RAM_SECTION_NAME, RAM_SECTION_INSTANCE, RAM_SECTION_VERSION);
  rw.writeMemSize([ramBlock]);
  rw.writeEos();
  if (footers) writeSectionFooter(w, 0);
  writeSectionPart(w, 0);
  for (let offset = 0; offset < ramBlock.length; offset += 4096) {
    if (isZeroPage(ram, offset, 4096)) rw.writeZeroPage(ramBlock.name, offset);
    else rw.writePage(ramBlock.name, offset, ram, offset);
    if (w.needsDrain) await w.ready();
  }
  rw.writeEos();
  if (footers) writeSectionFooter(w, 0);
  writeSectionEnd(w, 0);
  rw.writeEos();
  if (footers) writeSectionFooter(w, 0);
  let id = 1;
  writeGlobalStateSection(w, runState, id++, { footers });
  for (const spec of DEVICES) writeDeviceSection(w, spec, state, id++, { footers });
  writeEof(w);
  writeVmDescription(w, buildVmDescription({ devices: [GLOBALSTATE_SPEC, ...DEVICES], machineType: 'virt' }));
  await w.flush();
}

describe('snapshot writer', () => {
  for (const footers of [true, false]) {
    it(`writes the same bytes as the one-pass writer it replaced (footers ${footers ? 'on' : 'off'})`, async () => {
      const block: RamBlock = { name: RAM_BLOCK_MAIN, length: 64 * 4096 };
      const ram = new Uint8Array(new SharedArrayBuffer(block.length));
      for (let p = 0; p < 64; p += 3) for (let i = 0; i < 4096; i += 7) ram[p * 4096 + i] = (p + i) & 0xff;
      const state = new DeviceState();
      state.set('cpu', 'pc', 0x80000040);
      state.set('cpu', 'mcycle', 2 ** 40 + 5);
      state.setString('tabmig-machine', 'program', 'ab');

      const a = new BufferSink();
      const stats = await writeSnapshot(new StreamWriter(a, { chunkSize: 4096, highWater: 8192 }), { machineType: 'virt', ramBlock: block, ram, state, runState: 'paused', footers });
      const b = new BufferSink();
      await legacySnapshot(new StreamWriter(b, { chunkSize: 4096, highWater: 8192 }), block, ram, state, 'paused', footers);
      equal(a.length, b.length, 'same length');
      const x = a.toBytes();
      const y = b.toBytes();
      const firstDiff = x.findIndex((v, i) => v !== y[i]);
      equal(firstDiff, -1, 'same bytes (first difference at this offset)');
      equal(stats.pages + stats.zeroPages, 64);
      equal(stats.bytes, a.length);
    });
  }
});
