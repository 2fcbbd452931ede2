// The incoming thread driven directly (no worker, no tab): a test plays the source over
// MessageChannels and the main thread's part (the VERDICT word, the hold points), and checks what
// the destination did: RAM, device state, page state, the runstate it gave the guest, what it
// said on the return path and to the source, and its status in the incoming block.

import { ControlBlock } from '../src/guest/control-block.js';
import { DeviceState } from '../src/guest/device-state.js';
import { PAGE_SIZE, RAM_BASE } from '../src/guest/memory-map.js';
import { PageGate } from '../src/guest/page-gate.js';
import { ABORTED_TEXT, IncomingThread } from '../src/migration/destination/incoming-thread.js';
import type { FromIncoming, IncomingStart } from '../src/migration/destination/incoming-protocol.js';
import { idleTimeoutText } from '../src/migration/destination/idle-watch.js';
import { IncomingBlock, IncomingCounter, IncomingWord, Phase } from '../src/migration/incoming-block.js';
import { MACHINE_TYPE } from '../src/migration/migration-service.js';
import { MigrationOptions } from '../src/migration/options.js';
import { PageState } from '../src/migration/page-state.js';
import { writeSnapshot } from '../src/migration/snapshot-writer.js';
import {
  BufferSink,
  RAM_BLOCK_MAIN,
  StreamWriter,
  decodeRpMessages,
  writeCommand,
  writeConfiguration,
  writeSectionFull,
  writeStreamHeader,
  type RpMessage,
} from '../src/migration/stream/index.js';
import { Verdict, type SwitchoverMessage } from '../src/migration/switchover.js';
import { fromMessagePort, type MigrationChannel } from '../src/transport/channel.js';
import { ChannelSet } from '../src/transport/channel-set.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';

const RAM = 16 * 1024 * 1024;
const PAGES = RAM / PAGE_SIZE;
/** The migration the stand-in source named when it connected. */
const MIGRATION = 31337;

/** A small machine: a few pages of data, a CPU inside RAM, a program name. */
function sourceMachine(): { ram: Uint8Array; state: DeviceState } {
  const ram = new Uint8Array(RAM);
  for (const p of [3, 256, 1000]) ram.fill(p & 0xff || 1, p * PAGE_SIZE, p * PAGE_SIZE + 100);
  const state = new DeviceState();
  state.set('cpu', 'pc', RAM_BASE + 0x100);
  state.set('cpu', 'regs', 0x1234, 5);
  state.setString('tabmig-machine', 'program', 'ab');
  return { ram, state };
}

async function snapshotBytes(runState = 'running', commands: (w: StreamWriter) => void = () => {}): Promise<Uint8Array> {
  const { ram, state } = sourceMachine();
  const sink = new BufferSink();
  const w = new StreamWriter(sink, { chunkSize: 64 * 1024 });
  await writeSnapshot(w, { machineType: MACHINE_TYPE, ramBlock: { name: RAM_BLOCK_MAIN, length: RAM }, ram, state, runState });
  await w.flush();
  const body = sink.toBytes();
  // Commands go right after the configuration section, as a live source sends them.
  const head = new BufferSink();
  const hw = new StreamWriter(head);
  writeStreamHeader(hw);
  writeConfiguration(hw, MACHINE_TYPE);
  await hw.flush();
  const prefixLength = head.toBytes().length;
  commands(hw);
  await hw.flush();
  const withCommands = head.toBytes();
  const out = new Uint8Array(withCommands.length + body.length - prefixLength);
  out.set(withCommands);
  out.set(body.subarray(prefixLength), withCommands.length);
  return out;
}

interface Rig {
  thread: IncomingThread;
  block: IncomingBlock;
  control: ControlBlock;
  ram: Uint8Array;
  state: DeviceState;
  pageState: PageState;
  posts: FromIncoming[];
  /** Test side of main (source → destination) and of the return path. */
  main: MigrationChannel;
  rp: MigrationChannel;
  rpMessages: RpMessage[];
  run: Promise<void>;
  said(): SwitchoverMessage[];
  statuses(): string[];
}

function rig(opts: { autostart?: boolean; idleMs?: number; handshake?: boolean; postcopy?: PageGate } = {}): Rig {
  const mainPair = new MessageChannel();
  const rpPair = new MessageChannel();
  const channels = new ChannelSet();
  channels.add(0, mainPair.port2);
  channels.add(1, rpPair.port2);
  const ram = new Uint8Array(new SharedArrayBuffer(RAM));
  const state = new DeviceState();
  const control = new ControlBlock();
  control.runstate = 'inmigrate';
  const block = new IncomingBlock();
  block.autostart = opts.autostart ?? true;
  // What the main thread writes once the source connected and named its migration.
  block.setWord(IncomingWord.MIGRATION, MIGRATION);
  const pageState = new PageState(PAGES);
  const options = new MigrationOptions();
  if (opts.idleMs !== undefined) options.setParameters({ 'x-incoming-idle-timeout': opts.idleMs });
  if (opts.postcopy) options.setCapabilities([{ capability: 'postcopy-ram', state: true }], { status: 'none', inmigrate: true, postcopyRamSupportedByHost: () => true });
  const posts: FromIncoming[] = [];
  const start: IncomingStart = {
    type: 'start',
    ram: ram.buffer as SharedArrayBuffer,
    deviceState: state.buffer,
    control: control.buffer,
    block: block.buffer,
    pageState: pageState.buffer,
    options: options.toPlain(),
    source: { kind: 'channel' },
    machineType: MACHINE_TYPE,
    handshake: opts.handshake,
    ...(opts.postcopy ? { pageGate: opts.postcopy.buffer } : {}),
  };
  const thread = new IncomingThread(start, channels, (m) => posts.push(m));
  const rp = fromMessagePort(rpPair.port1, { label: 'return-path' });
  const rpMessages: RpMessage[] = [];
  rp.onmessage = (chunk) => rpMessages.push(...decodeRpMessages(chunk));
  return {
    thread,
    block,
    control,
    ram,
    state,
    pageState,
    posts,
    main: fromMessagePort(mainPair.port1, { label: 'main' }),
    rp,
    rpMessages,
    run: thread.run(),
    said: () => posts.flatMap((p) => (p.type === 'switchover' ? [p.message] : [])),
    statuses: () => posts.flatMap((p) => (p.type === 'status' ? [p.status] : [])),
  };
}

const saidReady = (r: Rig) => eventually(() => r.said().some((m) => m.switchover === 'ready'), 10000, "'ready'");

describe('incoming thread', () => {
  it('loads a real saved stream, says ready, and starts the guest only on commit', async () => {
    const r = rig();
    const gen = r.control.generation;
    await r.main.write(await snapshotBytes('running', (w) => writeCommand(w, { type: 'OPEN_RETURN_PATH' })));
    await saidReady(r);
    // Ready is not running: the machine is complete, the guest waits for the source's word.
    equal(r.control.runstate, 'inmigrate', 'still inmigrate while waiting for the verdict');
    equal(r.control.generation, gen, 'the vCPU was not told to reload yet');
    equal(r.block.phase, Phase.READY);
    const { ram, state } = sourceMachine();
    ok(r.ram.every((v, i) => v === ram[i]), 'RAM is the source RAM');
    deepEqual(Array.from(r.state.bytes), Array.from(state.bytes), 'device state is in place');
    equal(r.pageState.counts().received, PAGES, 'every page RECEIVED');
    await eventually(() => r.rpMessages.length >= 1, 10000, 'SHUT on the return path');
    deepEqual(r.rpMessages, [{ type: 'SHUT', error: 0 }], 'SHUT 0 on the opened return path before ready');

    r.block.setVerdict(Verdict.COMMIT);
    await r.run;
    equal(r.control.runstate, 'running');
    ok(r.control.runRequested, 'the vCPU was told to run');
    equal(r.control.generation, gen + 1, 'generation bumped so the vCPU reloads RAM and registers');
    equal(r.block.runstate, 'running');
    equal(r.block.status, 'completed');
    deepEqual(r.statuses(), ['setup', 'active', 'completed']);
    const said = r.said();
    // 'started' also says when, on this side's clock (the source's downtime ends there).
    ok(said[1] && typeof (said[1] as { at?: unknown }).at === 'number', "'started' carries its time");
    deepEqual(
      said.map((m) => ({ ...m, at: undefined })),
      [
        { switchover: 'ready', migration: MIGRATION, at: undefined },
        { switchover: 'started', runstate: 'running', at: undefined, migration: MIGRATION },
      ],
    );
    ok(r.block.get(IncomingCounter.BYTES) > 0 && r.block.get(IncomingCounter.PAGES) === PAGES, 'counters');
    equal(r.posts.at(-1)!.type, 'done');
  });

  it('answers PING with PONG on the return path, and under -S stays paused after commit', async () => {
    const r = rig({ autostart: false });
    await r.main.write(
      await snapshotBytes('running', (w) => {
        writeCommand(w, { type: 'OPEN_RETURN_PATH' });
        writeCommand(w, { type: 'PING', value: 42 });
      }),
    );
    await saidReady(r);
    // SHUT leaves before 'ready' is said, but crosses a port: it may land a moment after.
    await eventually(() => r.rpMessages.length >= 2, 10000, 'PONG and SHUT on the return path');
    deepEqual(r.rpMessages, [{ type: 'PONG', value: 42 }, { type: 'SHUT', error: 0 }]);
    ok(r.posts.some((p) => p.type === 'command' && p.name === 'PING' && p.value === 42), 'PING reported for the log');
    r.block.setVerdict(Verdict.COMMIT);
    await r.run;
    equal(r.control.runstate, 'paused');
    equal(r.control.runRequested, false);
    deepEqual({ ...r.said().at(-1), at: 0 }, { switchover: 'started', runstate: 'paused', at: 0, migration: MIGRATION });
  });

  it('a malformed stream fails: SHUT 1, the reason to the source, the guest never given', async () => {
    const r = rig();
    const gen = r.control.generation;
    const bytes = await snapshotBytes('running', (w) => writeCommand(w, { type: 'OPEN_RETURN_PATH' }));
    // Damage the CPU's pc inside its FULL section (name, instance, version, then pc): outside RAM.
    const cpuName = new TextEncoder().encode('\x03cpu');
    let at = -1;
    for (let i = 0; i < bytes.length - 4 && at < 0; i++) if (cpuName.every((b, j) => bytes[i + j] === b)) at = i;
    ok(at > 0, 'found the cpu section');
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(at + 4 + 8, 0x1000); // after name, instance, version
    await r.main.write(bytes);
    await r.main.close();
    await r.run;
    equal(r.block.status, 'failed');
    const failed = r.said().find((m) => m.switchover === 'failed');
    ok(failed && failed.switchover === 'failed', "'failed' said to the source");
    match(failed.error, /^error while loading state for instance 0x0 of device 'cpu': Input validation failed: cpu\/pc/);
    await eventually(() => r.rpMessages.length >= 1, 10000, 'SHUT on the return path');
    deepEqual(r.rpMessages, [{ type: 'SHUT', error: 1 }]);
    equal(r.control.runstate, 'inmigrate');
    equal(r.control.generation, gen);
    equal(r.block.runstate, null);
  });

  it('a postcopy package it refuses (a section version it does not know) fails before RUN: the source hears why, no guest is given', async () => {
    const gate = new PageGate(PAGES);
    const r = rig({ postcopy: gate });
    const gen = r.control.generation;
    const pkg = new BufferSink();
    const pw = new StreamWriter(pkg);
    writeCommand(pw, { type: 'POSTCOPY_LISTEN' });
    writeSectionFull(pw, 2, 'cpu', 0, 99);
    writeCommand(pw, { type: 'POSTCOPY_RUN' });
    await pw.flush();
    await r.main.write(
      await snapshotBytes('running', (w) => {
        writeCommand(w, { type: 'OPEN_RETURN_PATH' });
        writeCommand(w, { type: 'POSTCOPY_ADVISE', hostPageSize: PAGE_SIZE, targetPageSize: PAGE_SIZE });
        writeCommand(w, { type: 'PACKAGED', data: pkg.toBytes() });
      }),
    );
    await r.run;
    deepEqual(r.statuses(), ['setup', 'active', 'postcopy-active', 'failed'], 'postcopy-active at LISTEN, failed at the refusal (not stuck)');
    const failed = r.said().find((m) => m.switchover === 'failed');
    ok(failed && failed.switchover === 'failed', "'failed' said to the source: it may run its guest again");
    match(failed.error, /unsupported version 99 for 'cpu'/);
    await eventually(() => r.rpMessages.some((m) => m.type === 'SHUT'), 10000, 'SHUT on the return path');
    deepEqual(r.rpMessages.at(-1), { type: 'SHUT', error: 1 });
    equal(r.control.runstate, 'inmigrate', 'no guest given');
    equal(r.control.generation, gen);
    ok(!gate.active, 'no page gate left on');
  });

  it('abort after ready discards: status failed, still inmigrate', async () => {
    const r = rig();
    await r.main.write(await snapshotBytes());
    await saidReady(r);
    r.block.setVerdict(Verdict.ABORT);
    await r.run;
    equal(r.block.status, 'failed');
    equal(r.control.runstate, 'inmigrate');
    equal(r.block.phase, Phase.DISCARDED);
    const last = r.posts.filter((p) => p.type === 'status').at(-1);
    deepEqual(last, { type: 'status', status: 'failed', error: ABORTED_TEXT });
  });

  it('a link lost after ready keeps the complete machine paused, in doubt: the status is left for the main thread to settle', async () => {
    const r = rig();
    await r.main.write(await snapshotBytes());
    await saidReady(r);
    r.block.setVerdict(Verdict.LINK_LOST);
    await r.run;
    equal(r.block.status, 'active', 'neither completed nor failed until the source was asked');
    equal(r.control.runstate, 'paused', 'the complete machine is kept, paused');
    equal(r.block.phase, Phase.KEPT_PAUSED);
    ok(r.posts.some((p) => p.type === 'in-doubt'), 'the main thread is told it is in doubt');
    deepEqual(r.statuses(), ['setup', 'active']);
  });

  it('a source that goes silent mid-stream fails the destination within the idle timeout', async () => {
    const r = rig({ idleMs: 300 });
    const bytes = await snapshotBytes();
    await r.main.write(bytes.subarray(0, bytes.length >> 1)); // then nothing, and no close
    await r.run;
    equal(r.block.status, 'failed');
    const last = r.posts.filter((p) => p.type === 'status').at(-1);
    deepEqual(last, { type: 'status', status: 'failed', error: idleTimeoutText(300) });
    equal(r.control.runstate, 'inmigrate');
  });

  it('no verdict within the idle timeout after ready is a lost link: paused, in doubt', async () => {
    const r = rig({ idleMs: 300 });
    await r.main.write(await snapshotBytes());
    await r.run;
    equal(r.block.verdict, Verdict.LINK_LOST);
    equal(r.control.runstate, 'paused');
    equal(r.block.phase, Phase.KEPT_PAUSED);
    equal(r.block.status, 'active');
  });

  it('holds at loaded and at commit-received until released', async () => {
    const r = rig();
    r.block.holds.arm('loaded');
    r.block.holds.arm('commit-received');
    await r.main.write(await snapshotBytes());
    await eventually(() => r.block.holds.reached === 'loaded', 10000, 'held at loaded');
    equal(r.said().length, 0, "'ready' not said while held");
    r.block.holds.release();
    await saidReady(r);
    r.block.holds.arm('commit-received');
    r.block.setVerdict(Verdict.COMMIT);
    await eventually(() => r.block.holds.reached === 'commit-received', 10000, 'held at commit-received');
    equal(r.control.runstate, 'inmigrate', 'not started while held');
    r.block.holds.release();
    await r.run;
    equal(r.control.runstate, 'running');
  });

  it('without the handshake (a saved stream), decides the runstate at once', async () => {
    const r = rig({ handshake: false });
    await r.main.write(await snapshotBytes('paused'));
    await r.run;
    equal(r.block.status, 'completed');
    equal(r.control.runstate, 'paused', "globalstate 'paused' is taken as it was");
    equal(r.said().length, 0);
  });

  it('a cancel before the connection fails setup, and the guest never starts', async () => {
    const channels = new ChannelSet();
    const block = new IncomingBlock();
    const control = new ControlBlock();
    control.runstate = 'inmigrate';
    const posts: FromIncoming[] = [];
    const thread = new IncomingThread(
      {
        type: 'start',
        ram: new SharedArrayBuffer(RAM),
        deviceState: new DeviceState().buffer,
        control: control.buffer,
        block: block.buffer,
        options: new MigrationOptions().toPlain(),
        source: { kind: 'channel' },
        machineType: MACHINE_TYPE,
      },
      channels,
      (m) => posts.push(m),
    );
    const run = thread.run();
    thread.cancel('tab closed');
    await run;
    equal(block.status, 'failed');
    deepEqual(posts.filter((p) => p.type === 'status').at(-1), { type: 'status', status: 'failed', error: 'tab closed' });
    equal(control.runstate, 'inmigrate');
  });
});

