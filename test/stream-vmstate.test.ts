// Device state on the wire: every tabmig device round-trips field by field, big-endian; sections,
// footers, version checks, globalstate, the configuration section and the VM description.
import { DEVICES, DeviceState, deviceLayout, type DeviceSpec } from '../src/guest/device-state.js';
import {
  BufferSink,
  GLOBALSTATE_SPEC,
  SectionType,
  StreamFormatError,
  StreamReader,
  StreamWriter,
  buildVmDescription,
  checkSectionFooter,
  decodeFieldValues,
  deviceWireSize,
  encodeDeviceFields,
  encodeVmDescription,
  loadDeviceSection,
  loadDeviceState,
  loadGlobalState,
  readConfiguration,
  readSectionPartEnd,
  readSectionStartFull,
  readVmDescription,
  saveDeviceState,
  writeConfiguration,
  writeDeviceSection,
  writeGlobalStateSection,
  writeSectionEnd,
  writeSectionFooter,
  writeSectionPart,
  writeSectionStart,
  writeVmDescription,
} from '../src/migration/stream/index.js';
import { RUN_STATES } from '../src/guest/runstate.js';
import { deepEqual, equal, ok, rejects } from './helpers/assert.js';

async function bytesOf(write: (w: StreamWriter) => void): Promise<Uint8Array> {
  const sink = new BufferSink();
  const w = new StreamWriter(sink);
  write(w);
  await w.flush();
  return sink.toBytes();
}

/** Fills a device's fields with pseudo-random values (bools 0/1, as a device keeps them). */
function randomize(state: DeviceState, spec: DeviceSpec, seed: number): void {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24) & 0xff;
  for (const f of deviceLayout(spec.name).fields.values()) {
    for (let i = 0; i < f.byteSize; i++) state.bytes[f.offset + i] = f.type === 'bool' ? next() & 1 : next();
  }
}

async function expectFormatError(p: Promise<unknown>, code: string, text: string | RegExp): Promise<StreamFormatError> {
  const e = await rejects(p, `expected ${code}`);
  ok(e instanceof StreamFormatError, `a StreamFormatError, got ${e}`);
  equal(e.name, 'StreamFormatError');
  equal(e.code, code, 'error code');
  if (typeof text === 'string') equal(e.message, text);
  else ok(text.test(e.message), `${e.message} matches ${text}`);
  return e;
}

describe('vmstate: devices', () => {
  for (const spec of DEVICES) {
    it(`round-trips ${spec.name} through a FULL section with footer`, async () => {
      const a = new DeviceState();
      randomize(a, spec, spec.name.length * 7919);
      const bytes = await bytesOf((w) => writeDeviceSection(w, spec, a, 3));
      const r = StreamReader.fromBytes(bytes);
      equal(await r.readU8(), SectionType.FULL);
      const h = await readSectionStartFull(r, SectionType.FULL);
      deepEqual(h, { type: SectionType.FULL, sectionId: 3, name: spec.name, instanceId: spec.instanceId, versionId: spec.version });
      const b = new DeviceState();
      await loadDeviceSection(r, spec, b, h);
      deepEqual(b.snapshot(spec.name), a.snapshot(spec.name), 'every field');
      ok(await r.atEnd(), 'nothing left');
      equal(bytes.length, 1 + 4 + 1 + spec.name.length + 8 + deviceWireSize(spec) + 5, 'header + fields + footer');
    });
  }

  it('lays out fields in declaration order, big-endian, arrays element by element', async () => {
    const st = new DeviceState();
    st.set('cpu', 'pc', 0x80001234);
    st.set('cpu', 'regs', 0x11223344, 1);
    st.set('cpu', 'mcycle', 0x0102030405);
    st.set('cpu', 'wfi', 1);
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const wire = encodeDeviceFields(cpu, st);
    equal(wire.length, 4 + 32 * 4 + 8 * 4 + 8 + 8 + 1);
    deepEqual(Array.from(wire.subarray(0, 4)), [0x80, 0x00, 0x12, 0x34], 'pc');
    deepEqual(Array.from(wire.subarray(8, 12)), [0x11, 0x22, 0x33, 0x44], 'regs[1]');
    const mcycleAt = 4 + 128 + 32;
    deepEqual(Array.from(wire.subarray(mcycleAt, mcycleAt + 8)), [0, 0, 0, 1, 2, 3, 4, 5], 'mcycle as be64');
    equal(wire[wire.length - 1], 1, 'bool as one byte');

    const serial = DEVICES.find((d) => d.name === 'serial')!;
    st.set('serial', 'divider', 0xabcd);
    st.fieldBytes('serial', 'rx_fifo').set([1, 2, 3]);
    const sw = encodeDeviceFields(serial, st);
    deepEqual(Array.from(sw.subarray(0, 2)), [0xab, 0xcd], 'uint16');
    deepEqual(Array.from(sw.subarray(10, 13)), [1, 2, 3], "'buffer' raw");
    const values = decodeFieldValues(serial, sw);
    equal(values.divider, 0xabcd);
  });

  it('a bool loads as 0 or 1 whatever non-zero byte came', async () => {
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const a = new DeviceState();
    const wire = encodeDeviceFields(cpu, a);
    wire[wire.length - 1] = 0x80;
    const b = new DeviceState();
    await loadDeviceState(StreamReader.fromBytes(wire), cpu, b, 1);
    equal(b.get('cpu', 'wfi'), 1);
  });

  it('refuses a newer version and an older one, in vmstate.c words', async () => {
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const st = new DeviceState();
    const wire = await bytesOf((w) => saveDeviceState(w, cpu, st));
    await expectFormatError(
      loadDeviceState(StreamReader.fromBytes(wire), cpu, st, 2),
      'version-too-new',
      'cpu: incoming version_id 2 is too new for local version_id 1',
    );
    const newer: DeviceSpec = { ...cpu, version: 3, minimumVersion: 2 };
    await expectFormatError(
      loadDeviceState(StreamReader.fromBytes(wire), newer, st, 1),
      'version-too-old',
      'cpu: incoming version_id 1 is too old for local minimum version_id  2',
    );
  });

  it('leaves the device untouched when its section is cut short', async () => {
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const a = new DeviceState();
    randomize(a, cpu, 5);
    const wire = encodeDeviceFields(cpu, a);
    const b = new DeviceState();
    await rejects(loadDeviceState(StreamReader.fromBytes(wire.subarray(0, wire.length - 1)), cpu, b, 1));
    ok(b.bytes.every((x) => x === 0), 'nothing stored');
  });

  it('refuses a subsection the device does not have', async () => {
    const uart = DEVICES.find((d) => d.name === 'serial')!;
    const st = new DeviceState();
    const bytes = await bytesOf((w) => {
      saveDeviceState(w, uart, st);
      w.putU8(SectionType.SUBSECTION);
      w.putCountedString('serial/fifo');
      w.putBe32(1);
    });
    await expectFormatError(loadDeviceState(StreamReader.fromBytes(bytes), uart, st, 1), 'unknown-subsection', "VM subsection 'serial/fifo' in 'serial' does not exist");
  });
});

describe('vmstate: section framing', () => {
  it('round-trips START, PART, END and footers', async () => {
    const bytes = await bytesOf((w) => {
      writeSectionStart(w, 0, 'ram', 0, 4);
      writeSectionFooter(w, 0);
      writeSectionPart(w, 0);
      writeSectionFooter(w, 0);
      writeSectionEnd(w, 0x1234567);
    });
    const r = StreamReader.fromBytes(bytes);
    equal(await r.readU8(), SectionType.START);
    deepEqual(await readSectionStartFull(r, SectionType.START), { type: SectionType.START, sectionId: 0, name: 'ram', instanceId: 0, versionId: 4 });
    await checkSectionFooter(r, 0, 'ram');
    equal(await r.readU8(), SectionType.PART);
    equal(await readSectionPartEnd(r), 0);
    await checkSectionFooter(r, 0, 'ram');
    equal(await r.readU8(), SectionType.END);
    equal(await readSectionPartEnd(r), 0x1234567);
  });

  it('reports a missing footer and a mismatched one in savevm.c words', async () => {
    await expectFormatError(checkSectionFooter(StreamReader.fromBytes(new Uint8Array([0x04, 0, 0, 0, 3])), 3, 'cpu'), 'missing-footer', 'Missing section footer for cpu');
    await expectFormatError(
      checkSectionFooter(StreamReader.fromBytes(new Uint8Array([0x7e, 0, 0, 0, 5])), 3, 'cpu'),
      'footer-mismatch',
      'Mismatched section id in footer for cpu - read 0x5 expected 0x3',
    );
  });

  it('writes no footer when footers are off', async () => {
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const st = new DeviceState();
    const bytes = await bytesOf((w) => writeDeviceSection(w, cpu, st, 1, { footers: false }));
    equal(bytes.length, 1 + 4 + 1 + 3 + 8 + deviceWireSize(cpu));
  });
});

describe('vmstate: globalstate and configuration', () => {
  it('round-trips the run state', async () => {
    const bytes = await bytesOf((w) => writeGlobalStateSection(w, 'paused', 7));
    const r = StreamReader.fromBytes(bytes);
    equal(await r.readU8(), SectionType.FULL);
    const h = await readSectionStartFull(r, SectionType.FULL);
    equal(h.name, 'globalstate');
    equal(await loadGlobalState(r, h.versionId, RUN_STATES), 'paused');
    await checkSectionFooter(r, 7, 'globalstate');
    equal(bytes.length, 1 + 4 + 1 + 11 + 8 + 104 + 5);
  });

  it('refuses a run state it does not know', async () => {
    const bytes = await bytesOf((w) => writeGlobalStateSection(w, 'dancing', 7, { footers: false }));
    const r = StreamReader.fromBytes(bytes);
    await r.readU8();
    const h = await readSectionStartFull(r, SectionType.FULL);
    await expectFormatError(loadGlobalState(r, h.versionId, RUN_STATES), 'bad-value', "globalstate: unknown runstate 'dancing'");
  });

  it('round-trips the configuration section and refuses another machine type', async () => {
    const bytes = await bytesOf((w) => writeConfiguration(w, 'virt'));
    deepEqual(Array.from(bytes), [0x07, 0, 0, 0, 4, 0x76, 0x69, 0x72, 0x74]);
    const r = StreamReader.fromBytes(bytes);
    await r.readU8();
    equal(await readConfiguration(r, 'virt'), 'virt');
    const r2 = StreamReader.fromBytes(bytes);
    await r2.readU8();
    await expectFormatError(readConfiguration(r2, 'spike'), 'machine-mismatch', "Machine type received is 'virt' and local is 'spike'");
  });
});

describe('VM description', () => {
  it('describes every device section and exactly the bytes its fields take', () => {
    const desc = buildVmDescription({ devices: [GLOBALSTATE_SPEC, ...DEVICES], machineType: 'virt' });
    deepEqual(Object.keys(desc), ['page_size', 'configuration', 'devices'], 'QEMU key order');
    equal(desc.page_size, 4096);
    deepEqual(desc.configuration, {
      vmsd_name: 'configuration',
      version: 1,
      fields: [
        { name: 'len', type: 'uint32', size: 4 },
        { name: 'name', type: 'buffer', size: 4 },
      ],
      subsections: [],
    });
    const cpu = desc.devices.find((d) => d.name === 'cpu')!;
    deepEqual(cpu.fields.slice(0, 2), [
      { name: 'pc', type: 'uint32', size: 4 },
      { name: 'regs', type: 'uint32', size: 4, array_len: 32 },
    ]);
    deepEqual([cpu.instance_id, cpu.vmsd_name, cpu.version, cpu.subsections], [0, 'cpu', 1, []]);
    for (const spec of [GLOBALSTATE_SPEC, ...DEVICES]) {
      const d = desc.devices.find((x) => x.name === spec.name)!;
      const described = d.fields.reduce((n, f) => n + f.size * (f.array_len ?? 1), 0);
      equal(described, deviceWireSize(spec), `${spec.name}: described size equals wire size`);
    }
    const uart = desc.devices.find((d) => d.name === 'serial')!;
    deepEqual(uart.fields.find((f) => f.name === 'rx_fifo'), { name: 'rx_fifo', type: 'buffer', size: 16 });
  });

  it('round-trips after EOF and keeps its length free of a misleading "{"', async () => {
    for (let k = 0; k < 400; k++) {
      const spec: DeviceSpec = { name: 'x'.repeat(k % 200) + 'y'.repeat(k >> 1), instanceId: 0, version: 1, minimumVersion: 1, fields: [] };
      const desc = buildVmDescription({ devices: [spec] });
      const json = encodeVmDescription(desc);
      const lb = [(json.length >>> 24) & 255, (json.length >>> 16) & 255, (json.length >>> 8) & 255, json.length & 255];
      ok(!lb.slice(lb.lastIndexOf(0) + 1).includes(0x7b), `length ${json.length} has no '{' after its last zero byte`);
      deepEqual(JSON.parse(new TextDecoder().decode(json)), desc);
    }
    const desc = buildVmDescription({ devices: DEVICES, machineType: 'virt' });
    const bytes = await bytesOf((w) => {
      w.putU8(SectionType.EOF);
      writeVmDescription(w, desc);
    });
    const r = StreamReader.fromBytes(bytes);
    equal(await r.readU8(), 0);
    const read = await readVmDescription(r);
    deepEqual(read!.description, desc);
    ok(!read!.json.includes('\u0000'));
  });

  it('reads nothing when the stream ends at EOF, and refuses garbage after it', async () => {
    equal(await readVmDescription(StreamReader.fromBytes(new Uint8Array(0))), null);
    await expectFormatError(readVmDescription(StreamReader.fromBytes(new Uint8Array([5]))), 'bad-vmdescription', 'Expected vmdescription section, but got 5');
    await expectFormatError(
      readVmDescription(StreamReader.fromBytes(new Uint8Array([6, 0, 0, 0, 2, 0x7b, 0x7b]))),
      'bad-vmdescription',
      /^VM description is not valid JSON/,
    );
  });
});
