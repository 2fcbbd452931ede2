// The source's migration thread driven directly (no vCPU, an in-memory target): the switchover
// handshake's outcomes as the source decides them. Before the commit every failure or cancel
// resumes the guest before the outcome is announced and tells the destination to abort; after
// it, the guest never runs here again. Also: the stream it writes loads back, and each dirty
// sync leaves a round record.
import { ControlBlock } from '../src/guest/control-block.js';
import { DEVICE_STATE_BYTES, DeviceState } from '../src/guest/device-state.js';
import { MigCounter, MigWord, MigrationBlock } from '../src/migration/migration-block.js';
import { MigrationOptions } from '../src/migration/options.js';
import { PageState } from '../src/migration/page-state.js';
import { RoundRecords } from '../src/migration/round-records.js';
import { MigrationThread } from '../src/migration/source/migration-thread.js';
import type { FromSource, SourceStart } from '../src/migration/source/source-protocol.js';
import type { OpenedTarget } from '../src/migration/source/stream-target.js';
import {
  BufferSink,
  RAM_BLOCK_MAIN,
  StreamReader,
} from '../src/migration/stream/index.js';
import { machineLoadHandlers } from '../src/migration/load-handlers.js';
import { loadVm } from '../src/migration/loadvm.js';
import { ramLoadHandler } from '../src/migration/ram/ram-load.js';
import { Commit, HoldPoints } from '../src/migration/switchover.js';
import { eventually, equal, match, ok } from './helpers/assert.js';

const PAGES = 64;
const PAGE = 4096;
/** The id migrate() drew for the rig's migration: the destination's messages must name it. */
const MIGRATION = 2024;

interface Rig {
  thread: MigrationThread;
  block: MigrationBlock;
  ctl: ControlBlock;
  sink: BufferSink;
  posts: string[];
  msgs: FromSource[];
  ram: Uint8Array;
  state: DeviceState;
  pageState: PageState;
  rounds: RoundRecords;
  holds: HoldPoints;
  done: Promise<void>;
}

function rig(opts: { returnPath?: boolean; onPost?: (m: FromSource, r: Rig) => void; kind?: 'channel' | 'idb'; arm?: 'all-sent' | 'ready-received' | 'commit-sent' } = {}): Rig {
  const ramBuf = new SharedArrayBuffer(PAGES * PAGE);
  const ram = new Uint8Array(ramBuf);
  for (let p = 0; p < PAGES; p += 2) ram.fill(p, p * PAGE, p * PAGE + 100);
  const ctl = new ControlBlock();
  ctl.runstate = 'running';
  const block = new MigrationBlock();
  block.reset('setup', MIGRATION);
  block.set(MigCounter.START_TIME, Date.now());
  const state = new DeviceState(new SharedArrayBuffer(DEVICE_STATE_BYTES));
  state.set('cpu', 'pc', 0x80001234);
  const pageState = new PageState(PAGES);
  const rounds = new RoundRecords();
  const holds = new HoldPoints(block.words, MigWord.HOLD);
  if (opts.arm) holds.arm(opts.arm);
  const start: SourceStart = {
    type: 'start',
    ram: ramBuf,
    dirtyLog: new SharedArrayBuffer(PAGES),
    control: ctl.buffer,
    deviceState: state.buffer,
    block: block.buffer,
    options: new MigrationOptions().toPlain(),
    target: opts.kind === 'idb' ? { kind: 'idb', name: 'x' } : { kind: 'channel' },
    machineType: 'virt',
    returnPath: opts.returnPath ?? false,
    pageState: pageState.buffer,
    rounds: rounds.buffer,
  };
  const sink = new BufferSink();
  const target: OpenedTarget = {
    sink,
    channel: null,
    commit: async () => null,
    abort: async () => {},
  };
  const r = { block, ctl, sink, posts: [] as string[], msgs: [] as FromSource[], ram, state, pageState, rounds, holds } as unknown as Rig;
  r.thread = new MigrationThread(start, target, (m) => {
    r.msgs.push(m);
    if (m.type === 'status') r.posts.push(`status:${m.to}`);
    else if (m.type === 'runstate') r.posts.push(`runstate:${m.to}`);
    else if (m.type === 'switchover') r.posts.push(`switchover:${m.message.switchover}`);
    else r.posts.push(m.type);
    opts.onPost?.(m, r);
  });
  r.done = r.thread.run();
  return r;
}

function before(posts: string[], a: string, b: string): void {
  const i = posts.indexOf(a);
  const j = posts.indexOf(b);
  ok(i >= 0 && j >= 0 && i < j, `${a} before ${b} in ${posts.join(', ')}`);
}

function errorOf(r: Rig): string {
  const m = r.msgs.find((x) => x.type === 'status' && x.to === 'failed');
  return m && m.type === 'status' ? (m.error ?? '') : '';
}

describe('source migration thread: switchover', () => {
  it('completes only once the destination confirmed, and the stream it wrote loads back', async () => {
    const r = rig({
      onPost: (m, rr) => {
        if (m.type === 'switchover' && m.message.switchover === 'commit') rr.block.noteFromDestination({ switchover: 'started', runstate: 'running', migration: MIGRATION });
      },
    });
    // The destination's 'ready' arrives once everything is out.
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped for the switchover');
    r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION });
    await r.done;
    equal(r.block.status, 'completed');
    equal(r.ctl.runstate, 'postmigrate');
    equal(r.block.word(MigWord.COMMIT), Commit.COMMITTED);
    before(r.posts, 'switchover:commit', 'status:completed');
    ok(!r.posts.includes('runstate:running'), 'the guest never ran again here');
    ok(r.rounds.count >= 1, 'a round record per dirty sync');
    equal(r.rounds.get(0)!.round, 1);
    const counts = r.pageState.counts();
    equal(counts.dirty, 0, 'nothing left dirty');

    // What went out is a valid stream holding this machine.
    const ram = new Uint8Array(PAGES * PAGE);
    const state = new DeviceState();
    const reader = StreamReader.fromBytes(r.sink.toBytes());
    // Read back by the destination's own load loop and handlers.
    const machine = machineLoadHandlers({ staging: state, limits: { ramBase: 0x8000_0000, ramSize: ram.length, pcAlign: 4 }, machineType: 'virt' });
    const ramLoad = ramLoadHandler({ ram, block: { name: RAM_BLOCK_MAIN, length: ram.length }, pageSize: PAGE });
    await loadVm(reader, { handlers: [machine.configuration, ramLoad, ...machine.all.slice(1)] });
    const runstate = machine.globalState.runstate;
    ok(ram.every((v, i) => v === r.ram[i]), 'RAM');
    equal(state.get('cpu', 'pc'), 0x80001234, 'device state');
    equal(runstate, 'running', 'globalstate');
  });

  it("a late 'ready' naming an earlier attempt never commits this one; its own 'ready' does, and every message names it", async () => {
    const r = rig({
      onPost: (m, rr) => {
        if (m.type === 'switchover' && m.message.switchover === 'commit') rr.block.noteFromDestination({ switchover: 'started', runstate: 'running', migration: MIGRATION });
      },
    });
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped for the switchover');
    equal(r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION - 1 }), false, 'a ready naming another migration is dropped');
    // Written behind the block's back (a worker of the earlier attempt racing migrate_init): still not this one's.
    r.block.setWord(MigWord.DEST_READY, MIGRATION - 1);
    await new Promise((res) => setTimeout(res, 400));
    ok(!r.posts.includes('switchover:commit'), `no commit on another migration's ready (${r.posts.join(', ')})`);
    equal(r.block.word(MigWord.COMMIT), Commit.OPEN);
    r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION });
    await r.done;
    equal(r.block.status, 'completed');
    const sent = r.msgs.flatMap((m) => (m.type === 'switchover' ? [m.message] : []));
    ok(sent.length > 0 && sent.every((m) => m.migration === MIGRATION), `every handshake message names the migration: ${JSON.stringify(sent)}`);
  });

  it('a reset under way when the stop-and-copy begins finishes first, and none starts once the guest is stopped', async () => {
    const r = rig({
      onPost: (m, rr) => {
        if (m.type === 'switchover' && m.message.switchover === 'commit') rr.block.noteFromDestination({ switchover: 'started', runstate: 'running', migration: MIGRATION });
      },
    });
    ok(r.ctl.tryBeginReset(), 'a system_reset begins while the migration runs');
    await new Promise((res) => setTimeout(res, 500));
    equal(r.ctl.runstate, 'running', 'the stop-and-copy waits for the reset to finish');
    r.ctl.endReset();
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped for the switchover');
    equal(r.ctl.tryBeginReset(), false, 'no reset once the guest is stopped for the switchover');
    r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION });
    await r.done;
    equal(r.block.status, 'completed');
    r.ctl.endMigration();
    ok(r.ctl.tryBeginReset(), 'resets come again once the migration is over');
  });

  it('a destination that refuses the stream: the guest runs again before "failed", and it is told to abort', async () => {
    const r = rig();
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped');
    r.block.noteFromDestination({ switchover: 'failed', error: 'refused', migration: MIGRATION });
    await r.done;
    equal(r.block.status, 'failed');
    equal(r.ctl.runstate, 'running');
    before(r.posts, 'runstate:running', 'status:failed');
    ok(r.posts.includes('switchover:abort'));
    ok(!r.posts.includes('switchover:commit'));
    equal(r.block.word(MigWord.COMMIT), Commit.ABANDONED);
  });

  it('the link lost before ready: resumed first, then failed', async () => {
    const r = rig({ arm: 'all-sent' });
    await eventually(() => r.holds.reached === 'all-sent', 10000, 'held at all-sent');
    r.block.setWord(MigWord.LINK_LOST, 1);
    await r.done;
    equal(r.block.status, 'failed');
    equal(r.ctl.runstate, 'running');
    before(r.posts, 'runstate:running', 'status:failed');
    match(errorOf(r), /lost/);
  });

  it('the link lost after commit: failed, the guest stays at the destination and never runs here', async () => {
    const r = rig({
      onPost: (m, rr) => {
        if (m.type === 'switchover' && m.message.switchover === 'commit') rr.block.setWord(MigWord.LINK_LOST, 1);
      },
    });
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped');
    r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION });
    await r.done;
    equal(r.block.status, 'failed');
    equal(r.ctl.runstate, 'postmigrate');
    ok(!r.posts.includes('runstate:running'), 'never resumed');
    ok(!r.posts.includes('switchover:abort'), 'no abort after commit');
    match(errorOf(r), /guest is at the destination/);
  });

  it("'started' and the link's end arriving together: completed", async () => {
    const r = rig({
      onPost: (m, rr) => {
        if (m.type === 'switchover' && m.message.switchover === 'commit') {
          rr.block.noteFromDestination({ switchover: 'started', runstate: 'running', migration: MIGRATION });
          rr.block.setWord(MigWord.LINK_LOST, 1);
        }
      },
    });
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped');
    r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION });
    await r.done;
    equal(r.block.status, 'completed');
    equal(r.ctl.runstate, 'postmigrate');
  });

  it('migrate_cancel that wins the commit race: cancelled, the guest runs again before "cancelled"', async () => {
    const r = rig({ arm: 'ready-received' });
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'the guest stopped');
    r.block.noteFromDestination({ switchover: 'ready', migration: MIGRATION });
    await eventually(() => r.holds.reached === 'ready-received', 10000, 'held at ready-received');
    // What the service's migrate_cancel does.
    equal(Atomics.compareExchange(r.block.words, MigWord.COMMIT, Commit.OPEN, Commit.ABANDONED), Commit.OPEN);
    ok(r.block.compareAndSet('active', 'cancelling'));
    r.thread.cancel();
    r.holds.release();
    await r.done;
    equal(r.block.status, 'cancelled');
    equal(r.ctl.runstate, 'running');
    before(r.posts, 'runstate:running', 'status:cancelled');
    ok(r.posts.includes('switchover:abort'));
    ok(!r.posts.includes('switchover:commit'));
  });

  it('a broken return path fails the migration when it breaks, not at the end', async () => {
    const r = rig({ returnPath: true });
    await eventually(() => r.ctl.runstate === 'finish-migrate', 10000, 'waiting for SHUT');
    const t = performance.now();
    r.block.setWord(MigWord.RP_ERROR, 1);
    await r.done;
    ok(performance.now() - t < 5000, 'promptly');
    equal(r.block.status, 'failed');
    equal(r.ctl.runstate, 'running');
    before(r.posts, 'runstate:running', 'status:failed');
  });

  it('a save to idb: runs no handshake', async () => {
    const r = rig({ kind: 'idb' });
    await r.done;
    equal(r.block.status, 'completed');
    ok(!r.posts.some((p) => p.startsWith('switchover:')));
  });
});
