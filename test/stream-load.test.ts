// Whole streams: a saved machine loads back identically (RAM, every device, run state), commands
// and PACKAGED streams are processed, every malformed stream gets its own clear error, every
// truncation is "incomplete", and random mutations never produce anything but those two errors.
import { DEVICES, DeviceState, type DeviceSpec } from '../src/guest/device-state.js';
import {
  BufferSink,
  GLOBALSTATE_SPEC,
  RAM_BLOCK_MAIN,
  RamWriter,
  StreamEndError,
  StreamFormatError,
  StreamReader,
  StreamWriter,
  chunkSource,
  isStreamDataError,
  saveDeviceState,
  writeCommand,
  writeConfiguration,
  writeDeviceSection,
  writeEof,
  writeSectionEnd,
  writeSectionFooter,
  writeSectionFull,
  writeSectionPart,
  writeSectionStart,
  writeStreamHeader,
  type MigCommand,
  type RamBlock,
} from '../src/migration/stream/index.js';
import { writeSnapshot } from '../src/migration/snapshot-writer.js';
import { machineLoadHandlers } from '../src/migration/load-handlers.js';
import { loadVm, type LoadVmOptions } from '../src/migration/loadvm.js';
import { ramLoadHandler } from '../src/migration/ram/ram-load.js';
import { RAM_BASE } from '../src/guest/memory-map.js';
import { deepEqual, equal, ok, rejects } from './helpers/assert.js';

const BLOCK: RamBlock = { name: RAM_BLOCK_MAIN, length: 8 * 4096 };

function sampleMachine(): { ram: Uint8Array; state: DeviceState } {
  const ram = new Uint8Array(new SharedArrayBuffer(BLOCK.length));
  for (const p of [1, 4, 7]) for (let i = 0; i < 4096; i += 5) ram[p * 4096 + i] = (p * 31 + i) & 0xff;
  const state = new DeviceState();
  state.set('cpu', 'pc', 0x80000100);
  for (let i = 1; i < 32; i++) state.set('cpu', 'regs', i * 0x10001, i);
  state.set('cpu', 'mcycle', 123456789012);
  state.set('serial', 'lsr', 0x60);
  state.set('riscv.aclint.mtimer', 'mtimecmp', 2 ** 50);
  state.setString('tabmig-machine', 'program', 'ab');
  return { ram, state };
}

async function sampleStream(footers = true): Promise<Uint8Array> {
  const { ram, state } = sampleMachine();
  const sink = new BufferSink();
  const w = new StreamWriter(sink, { chunkSize: 1024 });
  await writeSnapshot(w, { machineType: 'virt', ramBlock: BLOCK, ram, state, runState: 'paused', footers });
  return sink.toBytes();
}

interface Loaded {
  ram: Uint8Array;
  state: DeviceState;
  runstate: string;
  commands: MigCommand[];
}

/** What a test may change about a load: the local machine type and the footers. */
interface LoadExtra {
  machineType?: string;
  footers?: boolean;
}

/** The destination's handlers (RAM, configuration, globalstate, devices) over `out`, as the incoming thread registers them. */
function loadOptions(out: Loaded, extra: LoadExtra = {}, devices: readonly DeviceSpec[] = DEVICES) {
  const machine = machineLoadHandlers({
    staging: out.state,
    limits: { ramBase: RAM_BASE, ramSize: BLOCK.length, pcAlign: 4 },
    machineType: extra.machineType ?? 'virt',
    devices,
  });
  const ram = ramLoadHandler({ ram: out.ram, block: BLOCK, pageSize: 4096 });
  const options: LoadVmOptions = {
    handlers: [machine.configuration, ram, machine.globalState, ...machine.devices],
    footers: extra.footers,
    onCommand: (c) => {
      out.commands.push(c);
      return c.type === 'POSTCOPY_RUN' ? 'quit' : undefined;
    },
  };
  return { options, machine };
}

function fresh(): Loaded {
  return { ram: new Uint8Array(BLOCK.length), state: new DeviceState(), runstate: '', commands: [] };
}

async function load(bytes: Uint8Array, extra: LoadExtra = {}, pieces?: Uint8Array[], devices?: readonly DeviceSpec[]) {
  const out = fresh();
  const r = new StreamReader(chunkSource(pieces ?? [bytes]));
  const { options, machine } = loadOptions(out, extra, devices);
  const loaded = await loadVm(r, options);
  out.runstate = machine.globalState.runstate ?? '';
  return { out, result: { ...loaded, machineType: machine.configuration.machineType }, reader: r };
}

function split(bytes: Uint8Array, seed: number, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let s = seed >>> 0 || 1;
  for (let at = 0; at < bytes.length; ) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const n = 1 + (s % max);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function expectFormatError(p: Promise<unknown>, code: string, text: string): Promise<void> {
  const e = await rejects(p, `expected ${code}`);
  ok(e instanceof StreamFormatError, `a StreamFormatError, got ${e}`);
  equal(e.code, code, 'code');
  equal(e.message, text);
}

/** The sample stream rebuilt by hand, with a hook to damage one part of it. */
async function handBuilt(damage: Partial<{ cpuName: string; cpuInstance: number; cpuVersion: number; footerId: number; partId: number; typeByte: number }> = {}): Promise<Uint8Array> {
  const { ram, state } = sampleMachine();
  const sink = new BufferSink();
  const w = new StreamWriter(sink);
  writeStreamHeader(w);
  writeConfiguration(w, 'virt');
  const rw = new RamWriter(w);
  writeSectionStart(w, 0, 'ram', 0, 4);
  rw.writeMemSize([BLOCK]);
  rw.writeEos();
  writeSectionFooter(w, 0);
  writeSectionPart(w, damage.partId ?? 0);
  rw.writePage(BLOCK.name, 4096, ram, 4096);
  rw.writeEos();
  writeSectionFooter(w, damage.footerId ?? 0);
  writeSectionEnd(w, 0);
  rw.writeEos();
  writeSectionFooter(w, 0);
  const cpu = DEVICES.find((d) => d.name === 'cpu')!;
  writeSectionFull(w, 1, damage.cpuName ?? 'cpu', damage.cpuInstance ?? 0, damage.cpuVersion ?? 1);
  saveDeviceState(w, cpu, state);
  writeSectionFooter(w, 1);
  if (damage.typeByte !== undefined) w.putU8(damage.typeByte);
  writeEof(w);
  await w.flush();
  return sink.toBytes();
}

describe('whole stream', () => {
  it('a saved machine loads back identically, however the bytes are chunked', async () => {
    const bytes = await sampleStream();
    const { ram, state } = sampleMachine();
    for (const pieces of [[bytes], split(bytes, 7, 3), split(bytes, 11, 5000)]) {
      const { out, result } = await load(bytes, {}, pieces);
      ok(out.ram.every((b, i) => b === ram[i]), 'RAM identical');
      deepEqual(Array.from(out.state.bytes), Array.from(state.bytes), 'device state identical');
      equal(out.runstate, 'paused');
      equal(result.machineType, 'virt');
      ok(result.reachedEof);
      equal(result.sections, 3 + 1 + DEVICES.length, 'ram START/PART/END, globalstate, devices');
      deepEqual(
        result.description!.description.devices.map((d) => d.name),
        [GLOBALSTATE_SPEC.name, ...DEVICES.map((d) => d.name)],
      );
    }
  });

  it('a stream without footers loads with footers off', async () => {
    const { out } = await load(await sampleStream(false), { footers: false });
    equal(out.runstate, 'paused');
  });

  it('processes commands, loads a PACKAGED stream as a unit, and stops when told', async () => {
    const { state } = sampleMachine();
    const inner = new BufferSink();
    const iw = new StreamWriter(inner);
    for (const [i, spec] of DEVICES.entries()) writeDeviceSection(iw, spec, state, 10 + i);
    writeEof(iw);
    await iw.flush();

    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    writeStreamHeader(w);
    writeConfiguration(w, 'virt');
    writeCommand(w, { type: 'OPEN_RETURN_PATH' });
    writeCommand(w, { type: 'PING', value: 1 });
    writeCommand(w, { type: 'POSTCOPY_ADVISE', hostPageSize: 4096, targetPageSize: 4096 });
    writeCommand(w, { type: 'POSTCOPY_LISTEN' });
    writeCommand(w, { type: 'PACKAGED', data: inner.toBytes() });
    writeCommand(w, { type: 'POSTCOPY_RUN' });
    w.putU8(0xff); // never read: RUN ends the loop
    await w.flush();

    const { out, result } = await load(sink.toBytes());
    deepEqual(
      out.commands.map((c) => c.type),
      ['OPEN_RETURN_PATH', 'PING', 'POSTCOPY_ADVISE', 'POSTCOPY_LISTEN', 'PACKAGED', 'POSTCOPY_RUN'],
    );
    equal(result.reachedEof, false);
    equal(result.sections, DEVICES.length);
    deepEqual(Array.from(out.state.bytes), Array.from(state.bytes), 'packaged devices loaded');
  });
});

describe('whole stream: malformed input', () => {
  it('bad magic', async () => {
    const bytes = await sampleStream();
    bytes[0] = 0x51 ^ 1;
    await expectFormatError(load(bytes), 'bad-magic', 'Not a migration stream');
  });

  it('wrong version, and the obsolete v2', async () => {
    const bytes = await sampleStream();
    bytes[7] = 4;
    await expectFormatError(load(bytes), 'bad-version', 'Unsupported migration stream version');
    bytes[7] = 2;
    await expectFormatError(load(bytes), 'obsolete-version', "SaveVM v2 format is obsolete and don't work anymore");
  });

  it('no configuration section', async () => {
    const bytes = await sampleStream();
    const cut = new Uint8Array([...bytes.subarray(0, 8), ...bytes.subarray(8 + 1 + 4 + 4)]);
    await expectFormatError(load(cut), 'no-configuration', 'Configuration section missing');
  });

  it('another machine type', () => sampleStream().then((b) => expectFormatError(load(b, { machineType: 'spike' }), 'machine-mismatch', "Machine type received is 'virt' and local is 'spike'")));

  it('an unknown section, or an unknown instance of a known one', async () => {
    const hint = 'Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices';
    await expectFormatError(load(await handBuilt({ cpuName: 'cpx' })), 'unknown-section', `Unknown savevm section or instance 'cpx' 0. ${hint}`);
    await expectFormatError(load(await handBuilt({ cpuInstance: 1 })), 'unknown-section', `Unknown savevm section or instance 'cpu' 1. ${hint}`);
  });

  it('a section version newer than this side loads, or older than it accepts', async () => {
    await expectFormatError(load(await handBuilt({ cpuVersion: 2 })), 'version-too-new', "savevm: unsupported version 2 for 'cpu' v1");
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const picky = DEVICES.map((d) => (d === cpu ? { ...cpu, version: 3, minimumVersion: 2 } : d));
    await expectFormatError(load(await handBuilt(), {}, undefined, picky), 'version-too-old', 'cpu: incoming version_id 1 is too old for local minimum version_id  2');
  });

  it('a missing section footer, and one naming another section', async () => {
    await expectFormatError(load(await sampleStream(false)), 'missing-footer', 'Missing section footer for ram');
    await expectFormatError(load(await handBuilt({ footerId: 5 })), 'footer-mismatch', 'Mismatched section id in footer for ram - read 0x5 expected 0x0');
  });

  it('a PART for a section never started', () => handBuilt({ partId: 9 }).then((b) => expectFormatError(load(b), 'unknown-section-id', 'Unknown savevm section 9')));

  it('an unknown section type', () => handBuilt({ typeByte: 0x09 }).then((b) => expectFormatError(load(b), 'unknown-section-type', 'Unknown savevm section type 9')));

  it('a ram section of another version', async () => {
    const bytes = await handBuilt();
    // The ram START header's version is the be32 just before the MEM_SIZE record.
    const at = 8 + 9 + 1 + 4 + 4 + 4;
    equal(bytes[at + 3], 4);
    bytes[at + 3] = 5;
    await expectFormatError(load(bytes), 'version-too-new', "savevm: unsupported version 5 for 'ram' v4");
    bytes[at + 3] = 3;
    await expectFormatError(load(bytes), 'version-too-old', "error while loading state for instance 0x0 of device 'ram'");
  });

  it('a stream cut anywhere is incomplete (StreamEndError), except right after EOF', async () => {
    const bytes = await sampleStream();
    // EOF is the byte before the description (0x06, be32 length, JSON).
    let eofAt = -1;
    for (let i = bytes.length - 1; i >= 0; i--) {
      if (bytes[i] === 0x06 && i >= 1 && bytes[i - 1] === 0x00) {
        const len = new DataView(bytes.buffer, bytes.byteOffset + i + 1, 4).getUint32(0);
        if (i + 5 + len === bytes.length) {
          eofAt = i - 1;
          break;
        }
      }
    }
    ok(eofAt > 0, 'found EOF');
    let incomplete = 0;
    for (let n = 0; n < bytes.length; n++) {
      try {
        const { result } = await load(bytes.subarray(0, n));
        equal(n, eofAt + 1, `only the cut right after EOF loads (cut at ${n})`);
        equal(result.description, null);
      } catch (e) {
        if (!(e instanceof StreamEndError)) throw new Error(`cut at ${n}/${bytes.length}: expected StreamEndError, got ${e}`);
        incomplete++;
      }
    }
    equal(incomplete, bytes.length - 1);
  });
});

describe('whole stream: what a destination refuses to load', () => {
  /** The sample machine with one change, saved as a stream. */
  async function streamOf(change: (state: DeviceState) => void, runState = 'paused', devices: readonly DeviceSpec[] = DEVICES): Promise<Uint8Array> {
    const { ram, state } = sampleMachine();
    change(state);
    const sink = new BufferSink();
    const w = new StreamWriter(sink, { chunkSize: 1024 });
    await writeSnapshot(w, { machineType: 'virt', ramBlock: BLOCK, ram, state, runState, devices });
    return sink.toBytes();
  }

  const device = (name: string, why: string) => `error while loading state for instance 0x0 of device '${name}': Input validation failed: ${why}`;

  async function packagedStream(opts: { advise: boolean; nested: boolean; truncate?: boolean }): Promise<Uint8Array> {
    const { state } = sampleMachine();
    const innermost = new BufferSink();
    const iiw = new StreamWriter(innermost);
    writeDeviceSection(iiw, DEVICES[0]!, state, 20);
    writeEof(iiw);
    await iiw.flush();
    const inner = new BufferSink();
    const iw = new StreamWriter(inner);
    if (opts.nested) writeCommand(iw, { type: 'PACKAGED', data: innermost.toBytes() });
    for (const [i, spec] of DEVICES.entries()) writeDeviceSection(iw, spec, state, 10 + i);
    writeEof(iw);
    await iw.flush();
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    writeStreamHeader(w);
    writeConfiguration(w, 'virt');
    if (opts.advise) writeCommand(w, { type: 'POSTCOPY_ADVISE', hostPageSize: 4096, targetPageSize: 4096 });
    writeCommand(w, { type: 'PACKAGED', data: inner.toBytes() });
    // As a postcopy source does: RUN ends the precopy part of the stream (the loop quits there).
    writeCommand(w, { type: 'POSTCOPY_RUN' });
    await w.flush();
    const bytes = sink.toBytes();
    // Cut inside the package: a refusal must come from its header, before its bytes are awaited.
    return opts.truncate ? bytes.subarray(0, bytes.length - 5 - inner.toBytes().length + 10) : bytes;
  }

  it('PACKAGED without POSTCOPY_ADVISE first, refused at its header', async () => {
    const text = 'CMD_PACKAGED in wrong postcopy state (0): no POSTCOPY_ADVISE before it';
    await expectFormatError(load(await packagedStream({ advise: false, nested: false })), 'bad-command', text);
    await expectFormatError(load(await packagedStream({ advise: false, nested: false, truncate: true })), 'bad-command', text);
  });

  it('a PACKAGED inside a package, refused rather than loaded recursively', async () => {
    const { out } = await load(await packagedStream({ advise: true, nested: false })).catch((e) => {
      throw new Error(`the one-level package should load: ${e}`);
    });
    equal(out.commands.filter((c) => c.type === 'PACKAGED').length, 1);
    await expectFormatError(
      load(await packagedStream({ advise: true, nested: true })),
      'bad-command',
      'CMD_PACKAGED inside a package: nested packages are not allowed',
    );
  });

  it("the UART's receive FIFO count (at most its 16 bytes)", async () => {
    await load(await streamOf((s) => s.set('serial', 'rx_count', 16)));
    await expectFormatError(load(await streamOf((s) => s.set('serial', 'rx_count', 17))), 'bad-value', device('serial', 'serial/rx_count (17 > 16)'));
  });

  it("the display's size and where its frame lies", async () => {
    await expectFormatError(load(await streamOf((s) => s.set('tabmig-display', 'width', 2000))), 'bad-value', device('tabmig-display', 'tabmig-display/width (2000 > 1024)'));
    await expectFormatError(load(await streamOf((s) => s.set('tabmig-display', 'height', 769))), 'bad-value', device('tabmig-display', 'tabmig-display/height (769 > 768)'));
    const frame = (fb: number) => (s: DeviceState) => {
      s.set('tabmig-display', 'width', 16);
      s.set('tabmig-display', 'height', 16);
      s.set('tabmig-display', 'enable', 1);
      s.set('tabmig-display', 'fb_addr', fb);
    };
    await load(await streamOf(frame(RAM_BASE)));
    await load(await streamOf(frame(RAM_BASE + BLOCK.length - 16 * 16 * 4))); // the last byte of RAM is the frame's
    await expectFormatError(
      load(await streamOf(frame(RAM_BASE + BLOCK.length - 16 * 16 * 4 + 4))),
      'bad-value',
      device('tabmig-display', 'tabmig-display/fb_addr (a 16x16 frame at 0x80007c04 does not fit in RAM)'),
    );
    await expectFormatError(load(await streamOf(frame(0x1000))), 'bad-value', device('tabmig-display', 'tabmig-display/fb_addr (a 16x16 frame at 0x1000 does not fit in RAM)'));
  });

  it("the CPU's pc: inside RAM and 4-byte aligned", async () => {
    await expectFormatError(load(await streamOf((s) => s.set('cpu', 'pc', 0x1000))), 'bad-value', device('cpu', 'cpu/pc (0x1000 is outside RAM)'));
    await expectFormatError(load(await streamOf((s) => s.set('cpu', 'pc', RAM_BASE + BLOCK.length))), 'bad-value', device('cpu', 'cpu/pc (0x80008000 is outside RAM)'));
    await expectFormatError(load(await streamOf((s) => s.set('cpu', 'pc', RAM_BASE + 2))), 'bad-value', device('cpu', 'cpu/pc (0x80000002 is not 4-byte aligned)'));
  });

  it("globalstate's runstate: a known one, never inmigrate or finish-migrate", async () => {
    for (const bad of ['inmigrate', 'finish-migrate']) {
      await expectFormatError(
        load(await streamOf(() => {}, bad)),
        'bad-value',
        `error while loading state for instance 0x0 of device 'globalstate': runstate '${bad}' is not a state a guest can be resumed in`,
      );
    }
    await expectFormatError(load(await streamOf(() => {}, 'dancing')), 'bad-value', "globalstate: unknown runstate 'dancing'");
  });

  it('a stream without RAM, or without the CPU, is refused', async () => {
    const { state } = sampleMachine();
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    writeStreamHeader(w);
    writeConfiguration(w, 'virt');
    for (const [i, spec] of DEVICES.entries()) writeDeviceSection(w, spec, state, 10 + i);
    writeEof(w);
    await w.flush();
    await expectFormatError(load(sink.toBytes()), 'bad-value', "Migration stream carries no 'ram' section");
    const noCpu = await streamOf(() => {}, 'paused', DEVICES.filter((d) => d.name !== 'cpu'));
    await expectFormatError(load(noCpu), 'bad-value', "Migration stream carries no 'cpu' section");
  });
});

describe('whole stream: fuzz', () => {
  it('random mutations give StreamFormatError or StreamEndError, never another exception or a hang', async () => {
    const original = await sampleStream();
    let seed = 0x5eed;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return ((seed >>> 8) % n) | 0;
    };
    const counts = { format: 0, end: 0, loaded: 0 };
    const codes = new Set<string>();
    const iterations = 3000;
    for (let iter = 0; iter < iterations; iter++) {
      const caseSeed = seed;
      let bytes: Uint8Array = original.slice();
      const mutations = 1 + rnd(4);
      for (let m = 0; m < mutations; m++) {
        const kind = rnd(6);
        // Bias toward the structured head and tail of the stream, where the framing lives.
        const pos = rnd(3) === 0 ? rnd(bytes.length) : rnd(2) === 0 ? rnd(Math.min(64, bytes.length)) : Math.max(0, bytes.length - 1 - rnd(4000));
        if (kind === 0) bytes[pos] = rnd(256);
        else if (kind === 1) bytes[pos] = bytes[pos]! ^ (1 << rnd(8));
        else if (kind === 2) bytes = new Uint8Array([...bytes.subarray(0, pos), ...bytes.subarray(pos + 1 + rnd(16))]);
        else if (kind === 3) bytes = new Uint8Array([...bytes.subarray(0, pos), rnd(256), ...bytes.subarray(pos)]);
        else if (kind === 4) bytes = bytes.subarray(0, pos);
        else bytes[pos] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x7e, 0xff][rnd(11)]!;
      }
      const pieces = split(bytes, caseSeed, 1 + rnd(300));
      let timer = 0;
      const hang = new Promise<'hang'>((resolve) => (timer = window.setTimeout(() => resolve('hang'), 5000)));
      try {
        const outcome = await Promise.race([load(bytes, {}, pieces).then(() => 'loaded' as const), hang]);
        if (outcome === 'hang') throw new Error(`case ${iter} (seed ${caseSeed}) did not finish`);
        counts.loaded++;
      } catch (e) {
        if (!isStreamDataError(e)) throw new Error(`case ${iter} (seed ${caseSeed}): ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : e}`);
        if (e instanceof StreamFormatError) {
          counts.format++;
          codes.add(e.code);
        } else counts.end++;
      } finally {
        clearTimeout(timer);
      }
    }
    ok(counts.format > iterations / 10 && counts.end > iterations / 20, `a mix of outcomes: ${JSON.stringify(counts)}`);
    ok(codes.size >= 8, `many different errors: ${[...codes].join(', ')}`);
  });
});
