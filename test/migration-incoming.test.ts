// The destination refuses a bad stream: fed bytes straight from the test (a stand-in source on
// loopback) or a real source whose machine does not match, it ends 'failed' with a clear
// error-desc, stays in 'inmigrate', and never runs a single guest instruction. A real source whose
// destination fails ends 'failed' itself and keeps its guest running.

import { DEVICES, DeviceState } from '../src/guest/device-state.js';
import { RAM_BASE } from '../src/guest/memory-map.js';
import { MACHINE_TYPE } from '../src/migration/migration-service.js';
import {
  BufferSink,
  RAM_BLOCK_MAIN,
  RamWriter,
  StreamWriter,
  writeConfiguration,
  writeDeviceSection,
  writeEof,
  writeSectionFooter,
  writeSectionFull,
  writeSectionStart,
  writeStreamHeader,
} from '../src/migration/stream/index.js';
import { writeSnapshot } from '../src/migration/snapshot-writer.js';
import { isSwitchoverMessage, type SwitchoverMessage } from '../src/migration/switchover.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';
import { MiB, abPasses, advances, connectRawSource, loopbackName, type Tab, perTest } from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();

const RAM = 16 * MiB;

async function bytesOf(write: (w: StreamWriter) => void | Promise<void>): Promise<Uint8Array> {
  const sink = new BufferSink();
  const w = new StreamWriter(sink);
  await write(w);
  await w.flush();
  return sink.toBytes();
}

function header(w: StreamWriter, machineType = MACHINE_TYPE): void {
  writeStreamHeader(w);
  writeConfiguration(w, machineType);
}

/** A complete, valid stream of a small machine (what a stopped source would send). */
async function validStream(ramSize = RAM): Promise<Uint8Array> {
  const sink = new BufferSink();
  const w = new StreamWriter(sink, { chunkSize: 64 * 1024 });
  const ram = new Uint8Array(ramSize);
  ram.fill(0x5a, 0x10_0000, 0x10_0000 + 8192);
  ram.set([0x6f, 0, 0, 0], 0); // at the pc: `j .`, so a guest that is started spins harmlessly
  const state = new DeviceState();
  state.setString('tabmig-machine', 'program', 'ab');
  state.set('cpu', 'pc', RAM_BASE); // a destination refuses a pc outside RAM
  await writeSnapshot(w, { machineType: MACHINE_TYPE, ramBlock: { name: RAM_BLOCK_MAIN, length: ramSize }, ram, state, runState: 'running' });
  return sink.toBytes();
}

/** A deferred destination listening on a fresh loopback name, with a raw source connected. */
async function destinationWithRawSource(opts: { startPaused?: boolean; idleMs?: number } = {}) {
  const b = await tab({ incoming: 'defer', startPaused: opts.startPaused });
  await b.setCaps({ events: true });
  if (opts.idleMs !== undefined) b.migration.setParameters({ 'x-incoming-idle-timeout': opts.idleMs });
  const name = loopbackName('raw');
  await b.ok('migrate-incoming', { uri: `loopback:${name}` });
  const src = connectRawSource(name);
  onCleanup(() => src.link.close('test over'));
  return { b, src };
}

/** Every switchover message the destination sent to the stand-in source. */
function controlOf(src: ReturnType<typeof connectRawSource>): SwitchoverMessage[] {
  const heard: SwitchoverMessage[] = [];
  src.link.oncontrol = (data) => {
    if (isSwitchoverMessage(data)) heard.push(data);
  };
  return heard;
}

/** What a destination that refused its stream must look like. Returns the error-desc. */
async function expectRefused(b: Tab): Promise<string> {
  const info = await b.waitStatus(['failed', 'completed']);
  equal(info.status, 'failed', 'destination status');
  const desc = info['error-desc'];
  ok(typeof desc === 'string' && desc.length > 0, 'an error-desc says why');
  deepEqual(b.migrationEvents(), ['setup', 'active', 'failed'], 'MIGRATION events on the destination');
  equal(await b.runstate(), 'inmigrate', 'the destination stays in inmigrate');
  // Give a wrongly started vCPU the chance to show itself before checking it never ran.
  await new Promise((r) => setTimeout(r, 100));
  equal(b.instructions(), 0, 'the vCPU never ran');
  equal(b.machine.vcpuRunning, false, 'the vCPU is not running');
  return desc;
}

/** Sends `bytes` and closes the stream in order (or keeps it open for the destination to judge). */
async function feed(bytes: Uint8Array, b: Tab, src: ReturnType<typeof connectRawSource>, end: 'close' | 'open' = 'close'): Promise<string> {
  await src.main.write(bytes);
  if (end === 'close') await src.main.close();
  return expectRefused(b);
}

describe('destination: malformed streams', () => {
  it('a valid stream from the stand-in source loads (the baseline for the cases below)', async () => {
    const { b, src } = await destinationWithRawSource({ startPaused: true });
    const heard = controlOf(src);
    await src.main.write(await validStream());
    await src.main.close();
    await eventually(() => heard.some((m) => m.switchover === 'ready'), 20000, "the destination's 'ready'");
    equal(await b.runstate(), 'inmigrate', 'ready is not started: the guest waits for commit');
    src.link.sendControl({ switchover: 'commit', migration: src.migration } satisfies SwitchoverMessage);
    const info = await b.waitStatus(['completed', 'failed']);
    equal(info.status, 'completed', `baseline (${info['error-desc'] ?? ''})`);
    equal(await b.runstate(), 'paused');
    await eventually(() => heard.some((m) => m.switchover === 'started'), 10000, "the destination's 'started'");
    deepEqual({ ...heard.at(-1), at: 0 }, { switchover: 'started', runstate: 'paused', at: 0, migration: src.migration });
    equal(b.machine.ramBytes[0x10_0000], 0x5a, 'a page arrived');
    equal((await b.ok('x-tabmig-guest-info')).program, 'ab');
  });

  it("a commit naming another migration starts nothing; the one naming this migration does, and 'ready' named it", async () => {
    const { b, src } = await destinationWithRawSource({ startPaused: true });
    const heard = controlOf(src);
    await src.main.write(await validStream());
    await src.main.close();
    await eventually(() => heard.some((m) => m.switchover === 'ready'), 20000, "the destination's 'ready'");
    equal(heard.find((m) => m.switchover === 'ready')!.migration, src.migration, "'ready' names the migration the source announced");
    src.link.sendControl({ switchover: 'commit', migration: src.migration + 1 } satisfies SwitchoverMessage);
    await new Promise((r) => setTimeout(r, 400));
    equal(await b.runstate(), 'inmigrate', "another migration's commit gives no guest");
    equal((await b.queryMigrate()).status, 'active');
    src.link.sendControl({ switchover: 'commit', migration: src.migration } satisfies SwitchoverMessage);
    equal((await b.waitStatus(['completed', 'failed'])).status, 'completed');
    equal(await b.runstate(), 'paused');
  });

  it('bad magic', async () => {
    const { b, src } = await destinationWithRawSource();
    const bytes = await validStream();
    bytes.set([0x51, 0x45, 0x56, 0x4e], 0); // QEVN
    equal(await feed(bytes, b, src, 'open'), 'Not a migration stream');
  });

  it('wrong stream version, and the obsolete version 2', async () => {
    {
      const { b, src } = await destinationWithRawSource();
      const bytes = await validStream();
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(4, 4);
      equal(await feed(bytes, b, src, 'open'), 'Unsupported migration stream version');
    }
    {
      const { b, src } = await destinationWithRawSource();
      const bytes = await validStream();
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(4, 2);
      equal(await feed(bytes, b, src, 'open'), "SaveVM v2 format is obsolete and don't work anymore");
    }
  });

  it('a stream of another machine type', async () => {
    const { b, src } = await destinationWithRawSource();
    // The configuration section ends with a look at the next byte for subsections, as in QEMU.
    const bytes = await bytesOf((w) => {
      header(w, 'pc-i440fx-3.0');
      writeEof(w);
    });
    equal(await feed(bytes, b, src, 'open'), `Machine type received is 'pc-i440fx-3.0' and local is '${MACHINE_TYPE}'`);
  });

  it('a RAM block of another size (a 32M stream into a 16M destination)', async () => {
    const { b, src } = await destinationWithRawSource();
    const bytes = await bytesOf((w) => {
      header(w);
      writeSectionStart(w, 0, 'ram', 0, 4);
      const rw = new RamWriter(w);
      rw.writeMemSize([{ name: RAM_BLOCK_MAIN, length: 32 * MiB }]);
      rw.writeEos();
      writeSectionFooter(w, 0);
    });
    match(await feed(bytes, b, src, 'open'), /mismatch: riscv_virt_board\.ram: 0x2000000 (in )?!= 0x1000000/i);
  });

  it('an unknown section', async () => {
    const { b, src } = await destinationWithRawSource();
    const bytes = await bytesOf((w) => {
      header(w);
      writeSectionFull(w, 7, 'virtio-net', 0, 11);
      w.putBytes(new Uint8Array(16));
    });
    match(await feed(bytes, b, src, 'open'), /Unknown savevm section or instance 'virtio-net' 0/);
  });

  it('a device section newer than this side loads', async () => {
    const { b, src } = await destinationWithRawSource();
    const cpu = DEVICES.find((d) => d.name === 'cpu')!;
    const bytes = await bytesOf((w) => {
      header(w);
      writeSectionFull(w, 1, 'cpu', 0, cpu.version + 1);
    });
    equal(await feed(bytes, b, src, 'open'), `savevm: unsupported version ${cpu.version + 1} for 'cpu' v${cpu.version}`);
  });

  it('a stream that ends early (truncated, then the source closes)', async () => {
    const { b, src } = await destinationWithRawSource();
    const full = await validStream();
    // Cut in the middle of the page data.
    const desc = await feed(full.subarray(0, Math.floor(full.length / 2)), b, src, 'close');
    match(desc, /^Unexpected end of migration stream/);
  });

  it('a complete stream without EOF, then the source goes away', async () => {
    const { b, src } = await destinationWithRawSource();
    const state = new DeviceState();
    state.set('cpu', 'pc', RAM_BASE);
    const bytes = await bytesOf((w) => {
      header(w);
      for (const [i, spec] of DEVICES.entries()) writeDeviceSection(w, spec, state, 10 + i);
      // no EOF
    });
    await src.main.write(bytes);
    src.main.abort('source crashed');
    const desc = await expectRefused(b);
    match(desc, /aborted by peer: source crashed/);
  });

  it('garbage after EOF where the VM description belongs', async () => {
    const { b, src } = await destinationWithRawSource();
    const bytes = await bytesOf((w) => {
      header(w);
      writeEof(w);
      w.putU8(0x42);
      w.putBytes(new Uint8Array(8));
    });
    equal(await feed(bytes, b, src, 'close'), 'Expected vmdescription section, but got 66');
  });
});

describe('destination: the switchover, seen from the destination tab', () => {
  it("abort after 'ready' discards what loaded: failed, still inmigrate, the guest never ran", async () => {
    const { b, src } = await destinationWithRawSource();
    const heard = controlOf(src);
    await src.main.write(await validStream());
    await eventually(() => heard.some((m) => m.switchover === 'ready'), 20000, "'ready'");
    src.link.sendControl({ switchover: 'abort', reason: 'migrate_cancel', migration: src.migration } satisfies SwitchoverMessage);
    const desc = await expectRefused(b);
    match(desc, /abandoned the migration.*: migrate_cancel$/);
  });

  it("a link lost after 'ready', from a source no tab of this page holds any more: gone, so the kept copy is the guest and runs", async () => {
    const { b, src } = await destinationWithRawSource();
    const heard = controlOf(src);
    await src.main.write(await validStream());
    await eventually(() => heard.some((m) => m.switchover === 'ready'), 20000, "'ready'");
    src.link.drop();
    const info = await b.waitStatus(['failed', 'completed']);
    equal(info.status, 'completed', JSON.stringify(info));
    equal(await b.runstate(), 'running');
    equal((await b.ok('x-tabmig-guest-info')).program, 'ab', 'the machine is the one that arrived');
    await advances(b, 'the kept machine to run');
    equal((await b.ok('x-tabmig-ownership')).state, 'owner');
  });

  it("the same under -S: the kept copy is the guest and waits for 'cont'", async () => {
    const { b, src } = await destinationWithRawSource({ startPaused: true });
    const heard = controlOf(src);
    await src.main.write(await validStream());
    await eventually(() => heard.some((m) => m.switchover === 'ready'), 20000, "'ready'");
    src.link.drop();
    equal((await b.waitStatus(['failed', 'completed'])).status, 'completed');
    equal(await b.runstate(), 'paused');
    equal(b.instructions(), 0, 'not run yet');
    await b.ok('cont');
    await advances(b, 'the kept machine to run after cont');
  });

  it('a source that goes silent mid-stream: the destination leaves active within x-incoming-idle-timeout', async () => {
    const { b, src } = await destinationWithRawSource({ idleMs: 500 });
    const bytes = await validStream();
    await src.main.write(bytes.subarray(0, bytes.length >> 1)); // and then nothing, the link up
    const desc = await expectRefused(b);
    equal(desc, 'No data from the migration source for 500 ms (x-incoming-idle-timeout): giving up');
  });

  it('x-incoming-idle-timeout is range-checked and shown by info migrate_parameters', async () => {
    const b = await tab({ incoming: 'defer' });
    equal((await b.ok('query-migrate-parameters'))['x-incoming-idle-timeout'], 10000);
    match(await b.err('migrate-set-parameters', { 'x-incoming-idle-timeout': 50 }), /x-incoming-idle-timeout.*100 to 3600000 milliseconds/);
    await b.setParams({ 'x-incoming-idle-timeout': 0 });
    match(await b.ok('human-monitor-command', { 'command-line': 'info migrate_parameters' }), /^x-incoming-idle-timeout: 0 milliseconds$/m);
  });
});

describe('destination: a real source with a mismatched machine', () => {
  it('32M source into a 16M destination: both fail, the source guest keeps running', async () => {
    const a = await tab({ program: 'ab', ramSize: 32 * MiB });
    const b = await tab({ incoming: 'defer' });
    await abPasses(a, 1);
    const uri = `loopback:${loopbackName('size')}`;
    await a.setCaps({ events: true, 'return-path': true });
    await b.setCaps({ events: true, 'return-path': true });
    await b.ok('migrate-incoming', { uri });
    await a.ok('migrate', { uri });

    const desc = await expectRefused(b);
    match(desc, /mismatch: riscv_virt_board\.ram: 0x2000000 (in )?!= 0x1000000/i);

    const info = await a.waitStatus(['failed', 'completed', 'cancelled']);
    equal(info.status, 'failed', 'source status');
    // The switchover handshake carries the destination's own reason back to the source.
    match(info['error-desc'] ?? '', /The destination refused the migration: Size mismatch: riscv_virt_board\.ram/, 'source error-desc');
    deepEqual(a.migrationEvents().slice(-1), ['failed']);
    equal(await a.runstate(), 'running', 'the source guest keeps running');
    await advances(a, 'the source guest to keep running');
  });
});
