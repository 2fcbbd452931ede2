// The return path, from the source's side: with capability return-path the source opens it
// (OPEN_RETURN_PATH, PING) and, after the last byte, waits for the destination's SHUT before it
// calls the migration completed (QEMU's await_return_path_close_on_source). A destination the
// test controls decides what comes back: SHUT 0, SHUT with an error, a message the table refuses,
// a postcopy request in a precopy migration, or nothing at all before it hangs up.
// (The message table itself is unit-tested in stream-commands.test.ts.)

import { PAGE_SIZE } from '../src/guest/memory-map.js';
import { MigWord, MigrationBlock } from '../src/migration/migration-block.js';
import type { FromReturnPath } from '../src/migration/source/source-protocol.js';
import { encodeRpMessage } from '../src/migration/stream/index.js';
import { fromMessagePort, type MigrationChannel } from '../src/transport/channel.js';
import { CHANNEL, type ChannelMessage } from '../src/transport/routes.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';
import {
  abCheck,
  abPasses,
  advances,
  listenFakeDestination,
  loopbackName,
  type FakeDestination,
  type Tab,
  perTest,
} from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();

/** A running a-b source migrating to a fake destination that has loaded the whole stream. */
async function migratedToFake(opts: { waitForLoad?: boolean } = {}): Promise<{ a: Tab; dest: FakeDestination }> {
  const name = loopbackName('rp');
  const fake = listenFakeDestination(name);
  onCleanup(() => fake.close());
  const a = await tab({ program: 'ab' });
  await abPasses(a, 1);
  await a.setCaps({ events: true, 'return-path': true });
  await a.ok('migrate', { uri: `loopback:${name}` });
  const dest = await fake.connection;
  onCleanup(() => dest.close());
  if (opts.waitForLoad ?? true) await dest.loaded;
  return { a, dest };
}

async function expectSourceFailed(a: Tab, desc: string | RegExp): Promise<void> {
  const info = await a.waitStatus(['failed', 'completed', 'cancelled']);
  equal(info.status, 'failed', 'source status');
  if (typeof desc === 'string') equal(info['error-desc'], desc, 'error-desc');
  else match(info['error-desc'] ?? '', desc, 'error-desc');
  equal(await a.runstate(), 'running', 'the source guest runs again');
  await advances(a, 'the source guest to advance after the failure');
}

describe('return path (source side)', () => {
  it('opens the return path, and waits for SHUT before completing', async () => {
    const { a, dest } = await migratedToFake();
    deepEqual(
      dest.commands.map((c) => (c.type === 'PING' ? `PING ${c.value}` : c.type)),
      ['OPEN_RETURN_PATH', 'PING 1'],
      'commands in the stream',
    );
    equal(dest.runstate, 'running', 'globalstate: the guest was running');
    // Every byte is out and the guest is stopped, but without SHUT this is not a completed migration.
    await new Promise((r) => setTimeout(r, 300));
    equal((await a.queryMigrate()).status, 'active', 'still active while waiting for SHUT');
    equal(await a.runstate(), 'finish-migrate');
    ok(a.migration.log.some((e) => e.text === 'return path: PONG 1'), 'the PONG was seen');

    // What the source sent is what it holds (it is stopped for good now).
    ok(a.machine.ramBytes.every((v, i) => dest.ram[i] === v), 'the destination got every byte of RAM');
    equal(abCheck(dest.ram, dest.ram.length), null, 'a-b invariant on what arrived');
    deepEqual(Array.from(dest.state.bytes), Array.from(a.machine.deviceState.bytes), 'device state');

    // The destination has everything: it says ready (the switchover handshake) and SHUT 0.
    const verdict = dest.ready();
    await dest.sendRp({ type: 'SHUT', error: 0 });
    equal((await verdict).switchover, 'commit', 'the source commits');
    const info = await a.waitStatus(['completed', 'failed']);
    equal(info.status, 'completed', `after SHUT 0 (${info['error-desc'] ?? ''})`);
    equal(await a.runstate(), 'postmigrate');
    deepEqual(a.migrationEvents(), ['setup', 'active', 'completed']);
    ok(info.ram.normal * PAGE_SIZE <= info.ram.transferred);
  });

  it('SHUT with an error fails the migration', async () => {
    const { a, dest } = await migratedToFake();
    await dest.sendRp({ type: 'SHUT', error: 1 });
    await expectSourceFailed(a, 'the destination failed to load the migration stream');
  });

  it('a message of the wrong length is refused by the table', async () => {
    const { a, dest } = await migratedToFake();
    // SHUT (type 1) carries 4 bytes; this one claims 8.
    await dest.sendRaw(new Uint8Array([0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]));
    await expectSourceFailed(a, "RP: Received 'SHUT' message (0x0001) with incorrect length 8 expecting 4");
  });

  it('a message of an unknown type is refused by the table', async () => {
    const { a, dest } = await migratedToFake();
    await dest.sendRaw(new Uint8Array([0, 0x42, 0, 4, 0, 0, 0, 0]));
    await expectSourceFailed(a, 'RP: Received invalid message 0x0042 length 0x0004');
  });

  it('a postcopy page request on a precopy migration is refused', async () => {
    const { a, dest } = await migratedToFake();
    await dest.sendRp({ type: 'REQ_PAGES_ID', start: 0, length: PAGE_SIZE, blockName: 'riscv_virt_board.ram' });
    await expectSourceFailed(a, /^RP: Received invalid message 0x0003 length 0x0021$/);
  });

  it('a destination that hangs up the return path without SHUT fails the migration', async () => {
    const { a, dest } = await migratedToFake();
    await dest.rp.close();
    await expectSourceFailed(a, /RP: the destination closed the return path before it was done/);
  });

  it('a bad message during the iterations fails the migration at the latest at completion', async () => {
    const { a, dest } = await migratedToFake({ waitForLoad: false });
    await dest.sendRaw(new Uint8Array([0, 0x42, 0, 4, 0, 0, 0, 0]));
    // The source may only notice once it waits for SHUT; it must not complete either way.
    await expectSourceFailed(a, 'RP: Received invalid message 0x0042 length 0x0004');
  });
});

// The return-path thread alone: the worker module driven with a MessageChannel for the return
// path and a fresh shared block, so what it does with each message is seen the moment it does it.
describe('return-path thread (worker)', () => {
  interface RpRig {
    block: MigrationBlock;
    dest: MigrationChannel;
    posted: FromReturnPath[];
  }

  async function rpRig(): Promise<RpRig> {
    const worker = new Worker(new URL('../src/migration/source/return-path.worker.ts', import.meta.url), { type: 'module' });
    onCleanup(() => worker.terminate());
    const posted: FromReturnPath[] = [];
    worker.onmessage = (e: MessageEvent<FromReturnPath>) => posted.push(e.data);
    const block = new MigrationBlock();
    const mc = new MessageChannel();
    const msg: ChannelMessage = { type: 'tabmig-channel', id: CHANNEL.returnPath, label: 'return-path', connection: 'rp-test', transport: 'loopback', channel: mc.port1 };
    worker.postMessage(msg, [mc.port1]);
    worker.postMessage({ type: 'start', block: block.buffer });
    return { block, dest: fromMessagePort(mc.port2), posted };
  }

  const pongsLogged = (r: RpRig) => r.posted.filter((m) => m.type === 'rp-message' && m.name === 'PONG').map((m) => (m as { value?: number }).value);

  it('counts every PONG but logs only the answer to the PING it sent, once', async () => {
    const r = await rpRig();
    const parts: Uint8Array[] = [encodeRpMessage({ type: 'PONG', value: 1 })];
    for (let i = 0; i < 500; i++) parts.push(encodeRpMessage({ type: 'PONG', value: i % 3 === 0 ? 1 : 1000 + i }));
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) (bytes.set(p, at), (at += p.length));
    await r.dest.write(bytes);
    await eventually(() => r.block.word(MigWord.PONGS) === 501, 10000, 'all 501 PONGs counted');
    deepEqual(pongsLogged(r), [1], 'one PONG reaches the page');
    equal(r.block.word(MigWord.LAST_PONG), 1, 'an unasked PONG does not move LAST_PONG');
    equal(r.block.word(MigWord.RP_ERROR), 0, 'unasked PONGs are not an error');
    equal(r.posted.length, 1, 'nothing else was posted');
  });

  it('a message the table refuses marks the return path bad at once, with QEMU text', async () => {
    const r = await rpRig();
    await r.dest.write(encodeRpMessage({ type: 'PONG', value: 1 }));
    await r.dest.write(new Uint8Array([0, 0x42, 0, 4, 0, 0, 0, 0]));
    // No SHUT, no close: the flag alone must be up, without waiting for the end of anything.
    await r.block.waitWhile(MigWord.RP_ERROR, 0, 10000);
    equal(r.block.word(MigWord.RP_ERROR), 1);
    await eventually(() => r.posted.some((m) => m.type === 'rp-error'), 10000, 'the rp-error message');
    const err = r.posted.find((m) => m.type === 'rp-error') as { message: string };
    equal(err.message, 'RP: Received invalid message 0x0042 length 0x0004');
    equal(r.block.word(MigWord.RP_SHUT), 0);
  });

  it('a message of the wrong length is refused before its payload is read', async () => {
    const r = await rpRig();
    // SHUT claims 8 bytes and only the header arrives: the table refuses it on the header.
    await r.dest.write(new Uint8Array([0, 1, 0, 8]));
    await r.block.waitWhile(MigWord.RP_ERROR, 0, 10000);
    await eventually(() => r.posted.find((m) => m.type === 'rp-error'), 10000, 'the rp-error message');
    equal((r.posted.find((m) => m.type === 'rp-error') as { message: string }).message, "RP: Received 'SHUT' message (0x0001) with incorrect length 8 expecting 4");
  });

  it('a postcopy message on a precopy return path is invalid for it', async () => {
    const r = await rpRig();
    await r.dest.write(encodeRpMessage({ type: 'REQ_PAGES', start: 0, length: PAGE_SIZE }));
    await r.block.waitWhile(MigWord.RP_ERROR, 0, 10000);
    await eventually(() => r.posted.find((m) => m.type === 'rp-error'), 10000, 'the rp-error message');
    equal((r.posted.find((m) => m.type === 'rp-error') as { message: string }).message, 'RP: Received invalid message 0x0004 length 0x000c');
  });

  it('SHUT 0 is the verdict, not an error', async () => {
    const r = await rpRig();
    await r.dest.write(encodeRpMessage({ type: 'SHUT', error: 0 }));
    await r.block.waitWhile(MigWord.RP_SHUT, 0, 10000);
    equal(r.block.word(MigWord.RP_SHUT), 1);
    equal(r.block.word(MigWord.RP_ERROR), 0);
  });
});
