// Postcopy's pieces, in the page: the return path's handling of page requests (QEMU's
// migrate_handle_rp_req_pages and ram_save_queue_pages), the discard bitmap at the switch and at
// the destination, blocktime accounting, and the race between a vCPU waiting on a missing page
// and the incoming side placing it. The whole thing between real tabs is test/e2e/postcopy.test.mjs.

import { BlocktimeTracker } from '../src/guest/blocktime.js';
import { PageGate } from '../src/guest/page-gate.js';
import { PAGE_SIZE } from '../src/guest/memory-map.js';
import { MigWord, MigrationBlock } from '../src/migration/migration-block.js';
import { PageState, PageStatus } from '../src/migration/page-state.js';
import { PcWord, PostcopyBlock, checkRequest } from '../src/migration/postcopy/postcopy-block.js';
import { PostcopyIncoming, applyDiscard } from '../src/migration/postcopy/postcopy-incoming.js';
import { PlacedPages, forEachPlaced } from '../src/migration/postcopy/placed-pages.js';
import { PostcopyRamSaveHandler, discardRangesOf } from '../src/migration/postcopy/postcopy-ram-save.js';
import { PageSender } from '../src/migration/ram/page-sender.js';
import { IncomingBlock } from '../src/migration/incoming-block.js';
import type { FromReturnPath } from '../src/migration/source/source-protocol.js';
import { BufferSink, RAM_BLOCK_MAIN, StreamWriter, decodeRpMessages, encodeRpMessage, packRecvBitmap, type RpMessage } from '../src/migration/stream/index.js';
import { fromMessagePort, type MigrationChannel } from '../src/transport/channel.js';
import { CHANNEL, type ChannelMessage } from '../src/transport/routes.js';
import { deepEqual, equal, eventually, ok, throws } from './helpers/assert.js';

const RAM = 16 << 20;
const PAGES = RAM / PAGE_SIZE;

describe('postcopy: page requests on the return path (source)', () => {
  const workers: Worker[] = [];
  afterEach(() => workers.splice(0).forEach((w) => w.terminate()));

  interface Rig {
    block: MigrationBlock;
    pc: PostcopyBlock;
    dest: MigrationChannel;
    posted: FromReturnPath[];
  }

  function rig(): Rig {
    const worker = new Worker(new URL('../src/migration/source/return-path.worker.ts', import.meta.url), { type: 'module' });
    workers.push(worker);
    const posted: FromReturnPath[] = [];
    worker.onmessage = (e: MessageEvent<FromReturnPath>) => posted.push(e.data);
    const block = new MigrationBlock();
    block.reset('active');
    const pc = new PostcopyBlock(PAGES);
    const mc = new MessageChannel();
    const msg: ChannelMessage = { type: 'tabmig-channel', id: CHANNEL.returnPath, label: 'return-path', connection: 'pc-test', transport: 'loopback', channel: mc.port1 };
    worker.postMessage(msg, [mc.port1]);
    worker.postMessage({ type: 'start', block: block.buffer, postcopy: { block: pc.buffer, ramLength: RAM, pageSize: PAGE_SIZE } });
    return { block, pc, dest: fromMessagePort(mc.port2), posted };
  }

  async function refused(r: Rig, msgs: RpMessage[], text: string): Promise<void> {
    for (const m of msgs) await r.dest.write(encodeRpMessage(m));
    await r.block.waitWhile(MigWord.RP_ERROR, 0, 10000);
    equal(r.block.word(MigWord.RP_ERROR), 1, 'the return path is marked bad');
    await eventually(() => r.posted.find((m) => m.type === 'rp-error'), 10000, 'the rp-error message');
    equal((r.posted.find((m) => m.type === 'rp-error') as { message: string }).message, text);
  }

  it('queues the pages of good requests, REQ_PAGES_ID naming the block and REQ_PAGES reusing it', async () => {
    const r = rig();
    await r.dest.write(encodeRpMessage({ type: 'REQ_PAGES_ID', start: 5 * PAGE_SIZE, length: PAGE_SIZE, blockName: RAM_BLOCK_MAIN }));
    await r.dest.write(encodeRpMessage({ type: 'REQ_PAGES', start: 100 * PAGE_SIZE, length: 2 * PAGE_SIZE }));
    await r.dest.write(encodeRpMessage({ type: 'REQ_PAGES', start: RAM - PAGE_SIZE, length: PAGE_SIZE }));
    const got: number[] = [];
    await eventually(() => (got.push(...r.pc.popRequests()), got.length === 4), 10000, 'four pages queued');
    deepEqual(got, [5, 100, 101, PAGES - 1]);
    equal(r.block.word(MigWord.RP_ERROR), 0, 'no error');
  });

  it('a misaligned request marks the return path bad', async () => {
    const r = rig();
    await refused(r, [{ type: 'REQ_PAGES_ID', start: 5 * PAGE_SIZE + 8, length: PAGE_SIZE, blockName: RAM_BLOCK_MAIN }], 'migrate_handle_rp_req_pages: Misaligned page request, start: 5008 len: 4096');
    ok(!r.pc.hasRequests, 'nothing queued');
  });

  it('a request past the end of the block marks the return path bad', async () => {
    const r = rig();
    await refused(r, [{ type: 'REQ_PAGES_ID', start: RAM - PAGE_SIZE, length: 2 * PAGE_SIZE, blockName: RAM_BLOCK_MAIN }], 'ram_save_queue_pages request overrun start=fff000 len=2000 blocklen=1000000');
    ok(!r.pc.hasRequests, 'nothing queued');
  });

  it('a request for an unknown block marks the return path bad', async () => {
    const r = rig();
    await refused(r, [{ type: 'REQ_PAGES_ID', start: 0, length: PAGE_SIZE, blockName: 'vga.vram' }], "ram_save_queue_pages no block 'vga.vram'");
  });

  it('REQ_PAGES before any REQ_PAGES_ID has no block to go by', async () => {
    const r = rig();
    await refused(r, [{ type: 'REQ_PAGES', start: 0, length: PAGE_SIZE }], 'ram_save_queue_pages no previous block');
  });

  it('a return path that ends while postcopy is active or recovering loses the link (postcopy pauses); not once paused', async () => {
    // Closed (EOF) and aborted (an error) alike: page requests could no longer reach the source.
    for (const [status, end] of [['postcopy-active', 'close'], ['postcopy-recover', 'abort']] as const) {
      const r = rig();
      r.block.reset(status);
      await r.dest.write(encodeRpMessage({ type: 'REQ_PAGES_ID', start: 0, length: PAGE_SIZE, blockName: RAM_BLOCK_MAIN }));
      if (end === 'close') await r.dest.close();
      else r.dest.abort('the destination hung up');
      await r.block.waitWhile(MigWord.LINK_LOST, 0, 10000);
      equal(r.block.word(MigWord.LINK_LOST), 1, `${status}: ${end} is a lost link`);
      equal(r.block.word(MigWord.RP_ERROR), 0, `${status}: not a malformed return path (that fails rather than pauses)`);
    }
    // Already paused: the old connection's channels closing is expected, and must not hit the recovery.
    const r = rig();
    r.block.reset('postcopy-paused');
    await r.dest.close();
    await new Promise((res) => setTimeout(res, 300));
    equal(r.block.word(MigWord.LINK_LOST), 0, 'paused: nothing to lose');
  });

  it('a received bitmap outside a recovery marks the return path bad (ram_dirty_bitmap_reload)', async () => {
    const r = rig();
    r.block.reset('postcopy-active');
    await refused(r, [{ type: 'RECV_BITMAP', blockName: RAM_BLOCK_MAIN }], 'ram_dirty_bitmap_reload: incorrect state postcopy-active');
    equal(r.pc.word(PcWord.BITMAP_SEQ), 0, 'no bitmap taken');
  });

  it('RESUME_ACK outside a recovery moves nothing', async () => {
    const r = rig();
    r.block.reset('postcopy-active');
    await r.dest.write(encodeRpMessage({ type: 'RESUME_ACK', value: 1 }));
    await r.dest.write(encodeRpMessage({ type: 'REQ_PAGES_ID', start: 0, length: PAGE_SIZE, blockName: RAM_BLOCK_MAIN }));
    await eventually(() => r.pc.hasRequests, 10000, 'the request after it');
    equal(r.pc.word(PcWord.RESUME_ACK), 0);
    equal(r.block.word(MigWord.RP_ERROR), 0);
  });

  it('checkRequest: the same rules, pure', () => {
    const blocks = [{ name: RAM_BLOCK_MAIN, length: RAM }];
    const memo = { lastBlock: null as string | null };
    deepEqual(checkRequest({ type: 'REQ_PAGES_ID', start: 0, length: 3 * PAGE_SIZE, blockName: RAM_BLOCK_MAIN }, blocks, PAGE_SIZE, memo), { ok: true, block: RAM_BLOCK_MAIN, pages: [0, 1, 2] });
    equal(memo.lastBlock, RAM_BLOCK_MAIN);
    equal(checkRequest({ type: 'REQ_PAGES', start: PAGE_SIZE, length: 100 }, blocks, PAGE_SIZE, memo).ok, false, 'a length that is not whole pages');
  });
});

describe('postcopy: the bounded rings (faults at the destination, page requests at the source)', () => {
  it('the fault ring takes a missing range wider than its slots: every page asked for once, no spin', async () => {
    const pages = 16384;
    const gate = new PageGate(pages);
    gate.reset(false);
    gate.setActive(true);
    // The RAM hash of a destination missing everything, and the display asking the same pages again.
    void gate.whenPresent(0, pages * PAGE_SIZE);
    void gate.whenPresent(0, 64 * PAGE_SIZE);
    const asked = new Uint8Array(pages);
    let rounds = 0;
    for (;;) {
      const t0 = performance.now();
      await gate.waitForFaults(50);
      const got = gate.popFaults();
      if (got.length === 0) {
        ok(performance.now() - t0 >= 10, 'an empty ring is waited on, not spun on');
        break;
      }
      for (const p of got) asked[p]++;
      ok(++rounds < 100, 'the ring drains');
    }
    for (let p = 0; p < pages; p++) equal(asked[p], 1, `page ${p} asked for once`);
    gate.setActive(false);
  });

  it('the source queues each page request once, whatever the number of requests, and its indices never go negative', () => {
    const pc = new PostcopyBlock(PAGES);
    for (let round = 0; round < 3; round++) for (let p = 0; p < PAGES; p++) pc.pushRequest(p);
    const got = pc.popRequests();
    equal(got.length, PAGES, 'a page asked for again before it was sent is queued once');
    equal(new Set(got).size, PAGES);
    // Indices near the end of the int32 range wrap without a negative slot or a lost page.
    Atomics.store(pc.words, PcWord.REQ_HEAD, 0x7fff_fff0);
    Atomics.store(pc.words, PcWord.REQ_TAIL, 0x7fff_fff0);
    for (let p = 0; p < 40; p++) pc.pushRequest(p);
    ok(pc.hasRequests);
    deepEqual(pc.popRequests(), Array.from({ length: 40 }, (_, i) => i));
    ok(!pc.hasRequests);
  });
});

describe("postcopy: release-ram's delivery receipts", () => {
  it('the destination reports the pages it placed as runs; the source reads back exactly those', () => {
    const placed = new PlacedPages();
    for (const p of [4, 5, 6, 10, 2, 3]) placed.add(p);
    const msgs = placed.take();
    deepEqual(msgs, [{ postcopyPlaced: [4, 3, 10, 1, 2, 2] }]);
    ok(placed.empty, 'taken');
    const seen: number[] = [];
    ok(forEachPlaced(msgs[0]!, 16, (p) => seen.push(p)));
    deepEqual(seen, [4, 5, 6, 10, 2, 3]);
    placed.putBack(msgs);
    deepEqual(placed.take(), msgs, 'a receipt that could not be sent goes with the next');
  });

  it('a malformed receipt names no page at all', () => {
    for (const bad of [[1], [0, 0], [-1, 2], [15, 2], [1.5, 1], ['1', 1]]) {
      let named = 0;
      equal(forEachPlaced({ postcopyPlaced: bad as number[] }, 16, () => named++), false, JSON.stringify(bad));
      equal(named, 0);
    }
  });
});

describe('postcopy: the discard bitmap', () => {
  it('the source sends runs of pages still to send as byte ranges', () => {
    const map = new Uint8Array(16);
    for (const p of [0, 1, 2, 7, 9, 10, 15]) map[p] = 1;
    deepEqual(discardRangesOf(map, PAGE_SIZE), [
      { start: 0, length: 3 * PAGE_SIZE },
      { start: 7 * PAGE_SIZE, length: PAGE_SIZE },
      { start: 9 * PAGE_SIZE, length: 2 * PAGE_SIZE },
      { start: 15 * PAGE_SIZE, length: PAGE_SIZE },
    ]);
    deepEqual(discardRangesOf(new Uint8Array(8), PAGE_SIZE), [], 'nothing to discard');
  });

  it('the destination drops exactly the discarded pages, and refuses a discard out of order or out of range', () => {
    const pages = 64;
    const gate = new PageGate(pages);
    gate.reset(true);
    const pageState = new PageState(pages);
    pageState.fill(PageStatus.RECEIVED);
    const pc = new PostcopyIncoming({
      ram: new Uint8Array(pages * PAGE_SIZE),
      pageSize: PAGE_SIZE,
      gate,
      pageState,
      block: new IncomingBlock(),
      enabled: true,
      blocktime: false,
      sendRp: () => {},
      setStatus: () => {},
      log: () => {},
    });
    throws(() => pc.discard({ type: 'POSTCOPY_RAM_DISCARD', blockName: RAM_BLOCK_MAIN, ranges: [{ start: 0, length: PAGE_SIZE }] }), 'discard before ADVISE');
    pc.advise({ type: 'POSTCOPY_ADVISE', hostPageSize: PAGE_SIZE, targetPageSize: PAGE_SIZE });
    const ranges = discardRangesOf(Uint8Array.from({ length: pages }, (_, i) => (i % 5 === 0 ? 1 : 0)), PAGE_SIZE);
    pc.discard({ type: 'POSTCOPY_RAM_DISCARD', blockName: RAM_BLOCK_MAIN, ranges });
    for (let p = 0; p < pages; p++) {
      equal(gate.isPresent(p), p % 5 !== 0, `page ${p} present`);
      equal(pageState.get(p), p % 5 === 0 ? PageStatus.CLEAN : PageStatus.RECEIVED, `page ${p} state`);
    }
    throws(() => applyDiscard([{ start: (pages - 1) * PAGE_SIZE, length: 2 * PAGE_SIZE }], PAGE_SIZE, pages, () => {}), 'a range past the end');
    throws(() => applyDiscard([{ start: 100, length: PAGE_SIZE }], PAGE_SIZE, pages, () => {}), 'an unaligned range');
    throws(() => pc.discard({ type: 'POSTCOPY_RAM_DISCARD', blockName: 'other', ranges }), 'an unknown block');
  });

  it('a command of overlapping ranges costs what the pages it covers cost, once each', () => {
    const pages = 16384;
    // As many whole-RAM ranges as a 64 KiB command can hold.
    const ranges = Array.from({ length: 4000 }, () => ({ start: 0, length: pages * PAGE_SIZE }));
    let touched = 0;
    equal(applyDiscard(ranges, PAGE_SIZE, pages, (first, end) => (touched += end - first)), pages);
    equal(touched, pages, 'every page dropped once');
  });
});

describe('postcopy: POSTCOPY_ADVISE at the destination', () => {
  const make = (enabled: boolean) =>
    new PostcopyIncoming({
      ram: new Uint8Array(8 * PAGE_SIZE),
      pageSize: PAGE_SIZE,
      gate: new PageGate(8),
      pageState: null,
      block: new IncomingBlock(),
      enabled,
      blocktime: false,
      sendRp: () => {},
      setStatus: () => {},
      log: () => {},
    });

  it("refuses what QEMU's loadvm_postcopy_handle_advise refuses", () => {
    const msg = (f: () => void) => (throws(f) as Error).message;
    equal(msg(() => make(false).advise({ type: 'POSTCOPY_ADVISE', hostPageSize: PAGE_SIZE, targetPageSize: PAGE_SIZE })), 'RAM postcopy is disabled but have 16 byte advise');
    equal(msg(() => make(true).advise({ type: 'POSTCOPY_ADVISE' })), 'RAM postcopy is enabled but have 0 byte advise');
    equal(msg(() => make(true).advise({ type: 'POSTCOPY_ADVISE', hostPageSize: 65536, targetPageSize: PAGE_SIZE })), 'Postcopy needs matching RAM page sizes (s=10000 d=1000)');
    const pc = make(true);
    pc.advise({ type: 'POSTCOPY_ADVISE', hostPageSize: PAGE_SIZE, targetPageSize: PAGE_SIZE });
    equal(pc.state, 'advised');
    equal(msg(() => pc.advise({ type: 'POSTCOPY_ADVISE', hostPageSize: PAGE_SIZE, targetPageSize: PAGE_SIZE })), 'CMD_POSTCOPY_ADVISE in wrong postcopy state (1)');
    equal(msg(() => pc.run(() => {})), 'CMD_POSTCOPY_RUN in wrong postcopy state (1)');
  });
});

describe('postcopy: POSTCOPY_RESUME and RECV_BITMAP at the destination', () => {
  function recovering() {
    const sent: Uint8Array[] = [];
    const logs: string[] = [];
    const block = new IncomingBlock();
    for (const [from, to] of [['none', 'setup'], ['setup', 'active'], ['active', 'postcopy-active']] as const) block.compareAndSet(from, to);
    const pc = new PostcopyIncoming({
      ram: new Uint8Array(8 * PAGE_SIZE),
      pageSize: PAGE_SIZE,
      gate: new PageGate(8),
      pageState: null,
      block,
      enabled: true,
      blocktime: false,
      sendRp: (b) => sent.push(b),
      setStatus: (from, to) => void block.compareAndSet(from, to),
      log: (t) => logs.push(t),
    });
    return { pc, block, sent, logs };
  }

  it('acts on them only while recovering, as QEMU: otherwise the command is reported and ignored', async () => {
    const { pc, block, sent, logs } = recovering();
    pc.resume();
    await pc.sendRecvBitmap(RAM_BLOCK_MAIN);
    equal(sent.length, 0, 'no RESUME_ACK nor bitmap outside a recovery');
    equal(block.status, 'postcopy-active');
    deepEqual(logs, ['loadvm_postcopy_handle_resume: illegal resume received', 'loadvm_handle_recv_bitmap: illegal RECV_BITMAP received (state postcopy-active)']);
    block.compareAndSet('postcopy-active', 'postcopy-paused');
    block.compareAndSet('postcopy-paused', 'postcopy-recover');
    await pc.sendRecvBitmap(RAM_BLOCK_MAIN);
    pc.resume();
    equal(sent.length, 2, 'the bitmap, then RESUME_ACK');
    deepEqual(decodeRpMessages(sent[1]!), [{ type: 'RESUME_ACK', value: 1 }]);
    equal(block.status, 'postcopy-active');
  });
});

describe('postcopy: blocktime accounting', () => {
  it('per vCPU: every wait; in total: only the time all vCPUs were blocked at once', () => {
    const t = new BlocktimeTracker(2);
    t.fault(0, 100);
    t.fault(1, 150); // both blocked from 150
    deepEqual(t.resolved(0, 200), { total: 50, vcpu: 100 });
    t.fault(0, 210); // both again from 210
    deepEqual(t.resolved(1, 260), { total: 50, vcpu: 110 });
    deepEqual(t.resolved(0, 300), { total: 0, vcpu: 90 });
    equal(t.totalMs, 100);
    deepEqual(Array.from(t.perVcpuMs), [190, 110]);
    deepEqual(t.resolved(1, 400), { total: 0, vcpu: 0 }, 'a vCPU that was not blocked adds nothing');
  });

  it('one vCPU: its blocktime is the total, and a second fault while waiting changes nothing', () => {
    const t = new BlocktimeTracker(1);
    t.fault(0, 10);
    t.fault(0, 20);
    deepEqual(t.resolved(0, 35), { total: 25, vcpu: 25 });
  });
});

describe('postcopy: a vCPU waiting on missing pages', () => {
  it('never reads a page before it lands, whatever the order pages land in (fault/wake race)', async () => {
    const pages = 512;
    const gate = new PageGate(pages);
    gate.reset(false);
    gate.setActive(true);
    const ram = new SharedArrayBuffer(pages * PAGE_SIZE);
    const words = new Int32Array(ram);
    const order = Array.from({ length: pages }, (_, i) => (i * 37) % pages);
    const worker = new Worker(new URL('./fixtures/gate-waiter.worker.ts', import.meta.url), { type: 'module' });
    try {
      const done = new Promise<{ seen: number[]; blocktime: { total: number; faults: number } }>((r) => (worker.onmessage = (e) => r(e.data)));
      worker.postMessage({ gate: gate.buffer, ram, order });
      // The incoming side: pages land in another order, some before they are asked for, most after,
      // each written before it is marked present — and faults are served as they come.
      const landing = Array.from({ length: pages }, (_, i) => (i * 101 + 7) % pages);
      let faultsServed = 0;
      // Nothing lands before the vCPU's first fault (a slow worker start must not find all present).
      await eventually(() => (faultsServed += gate.popFaults().length) > 0, 10000, 'the first fault');
      for (let i = 0; i < landing.length; i++) {
        const p = landing[i]!;
        words[(p * PAGE_SIZE) >> 2] = p + 1;
        gate.markPresent(p);
        faultsServed += gate.popFaults().length;
        if (i % 16 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      const { seen, blocktime } = await done;
      deepEqual(seen, order.map((p) => p + 1), 'every page read with its landed contents');
      ok(blocktime.faults > 0, 'the vCPU did wait on some pages');
      ok(faultsServed + gate.popFaults().length === blocktime.faults, 'every fault reached the fault queue');
    } finally {
      worker.terminate();
    }
  });

  it('lets go when the gate is switched off (a reset or the end of postcopy)', async () => {
    const gate = new PageGate(8);
    gate.reset(false);
    gate.setActive(true);
    const worker = new Worker(new URL('./fixtures/gate-waiter.worker.ts', import.meta.url), { type: 'module' });
    try {
      const done = new Promise<unknown>((r) => (worker.onmessage = (e) => r(e.data)));
      worker.postMessage({ gate: gate.buffer, ram: new SharedArrayBuffer(8 * PAGE_SIZE), order: [3] });
      await eventually(() => gate.popFaults().length > 0, 10000, 'the fault');
      gate.setActive(false);
      await done;
    } finally {
      worker.terminate();
    }
  });

  it('main-thread readers (xp, the RAM hash) ask for missing pages and wait without blocking', async () => {
    const gate = new PageGate(8);
    gate.reset(false);
    gate.setActive(true);
    let resolved = false;
    const wait = gate.whenPresent(2 * PAGE_SIZE, 2 * PAGE_SIZE).then(() => (resolved = true));
    deepEqual(gate.popFaults().sort(), [2, 3], 'both pages asked for');
    gate.markPresent(2);
    await new Promise((r) => setTimeout(r, 50));
    ok(!resolved, 'still waiting for page 3');
    ok(gate.anyMissing(2 * PAGE_SIZE, 2 * PAGE_SIZE));
    gate.markPresent(3);
    await wait;
    ok(!gate.anyMissing(2 * PAGE_SIZE, 2 * PAGE_SIZE));
  });
});

describe('postcopy: RAM on the source after the switch', () => {
  function handler(releaseRam: boolean) {
    const pages = 16;
    const ram = new Uint8Array(new SharedArrayBuffer(pages * PAGE_SIZE));
    for (let p = 0; p < pages; p++) ram[p * PAGE_SIZE] = p + 1;
    const sender = new PageSender([new StreamWriter(new BufferSink())], { pageSize: PAGE_SIZE });
    const pageState = new PageState(pages);
    const h = new PostcopyRamSaveHandler({
      ram,
      dirtyLog: new SharedArrayBuffer(pages),
      pageSize: PAGE_SIZE,
      blockName: RAM_BLOCK_MAIN,
      sender,
      block: new MigrationBlock(),
      pageState,
      releaseRam,
    });
    h.setup();
    return { h, ram, sender, pageState, pages };
  }

  it('sends a requested page once; release-ram gives it back (zeroed, RELEASED) once the destination holds it', () => {
    const { h, ram, sender, pageState } = handler(true);
    h.switched = true;
    ok(h.sendUrgent(3, sender.main), 'sent');
    ok(!h.sendUrgent(3, sender.main), 'not twice');
    equal(ram[3 * PAGE_SIZE], 4, 'sent is not delivered: a pause may still throw the bytes away');
    equal(pageState.get(3), PageStatus.SENT);
    h.delivered(3);
    equal(ram[3 * PAGE_SIZE], 0, 'released: the page is zero here now');
    equal(pageState.get(3), PageStatus.RELEASED);
    h.delivered(4);
    equal(ram[4 * PAGE_SIZE], 5, 'a page not sent yet is never given back, whatever a receipt says');
    equal(h.remainingBytes, 15 * PAGE_SIZE);
  });

  it('release-ram in a recovery: pages the destination holds are given back, the others kept and sent again', () => {
    const { h, ram, sender, pageState, pages } = handler(true);
    h.switched = true;
    for (const p of [1, 2, 3]) h.sendUrgent(p, sender.main);
    const received = new Uint8Array(pages);
    received[2] = 1;
    equal(h.reloadFromReceived(packRecvBitmap(received)), pages - 1);
    equal(ram[2 * PAGE_SIZE], 0, 'held at the destination: given back');
    equal(pageState.get(2), PageStatus.RELEASED);
    equal(ram[1 * PAGE_SIZE], 2, 'lost on the way: kept, to be sent again');
    equal(ram[3 * PAGE_SIZE], 4);
    // A destination that now says it lacks a page it confirmed before cannot be served.
    h.sendUrgent(1, sender.main);
    h.delivered(1);
    throws(() => h.reloadFromReceived(packRecvBitmap(new Uint8Array(pages))), 'a given-back page the bitmap lacks');
  });

  it('release-ram: every page still held is given back once the destination has them all', () => {
    const { h, ram, sender, pageState } = handler(true);
    h.switched = true;
    h.sendUrgent(5, sender.main);
    h.allDelivered();
    equal(ram[5 * PAGE_SIZE], 0);
    equal(pageState.get(5), PageStatus.RELEASED);
    equal(ram[6 * PAGE_SIZE], 7, 'pages never sent after the switch are not released');
    equal(h.released, 1);
  });

  it('without release-ram the page stays, marked sent; pending is all postcopyable', () => {
    const { h, ram, sender, pageState } = handler(false);
    h.switched = true;
    h.sendUrgent(2, sender.main);
    equal(ram[2 * PAGE_SIZE], 3);
    equal(pageState.get(2), PageStatus.SENT);
    deepEqual(h.pending(0), { precopyOnly: 0, postcopyable: 15 * PAGE_SIZE });
  });

  it('recovery: what to send is reloaded from the destination received bitmap', () => {
    const { h, pages } = handler(false);
    const received = new Uint8Array(pages);
    for (const p of [0, 1, 5, 9]) received[p] = 1;
    equal(h.reloadFromReceived(packRecvBitmap(received)), pages - 4);
    equal(h.remainingBytes, (pages - 4) * PAGE_SIZE);
    deepEqual(h.discardRanges(), [
      { start: 2 * PAGE_SIZE, length: 3 * PAGE_SIZE },
      { start: 6 * PAGE_SIZE, length: 3 * PAGE_SIZE },
      { start: 10 * PAGE_SIZE, length: 6 * PAGE_SIZE },
    ]);
  });
});
