// Precopy between two tabs in one page over a real RTCPeerConnection pair: each tab has its own
// Signaling on a BroadcastChannel name only this test uses (storage: null, so each gets its own
// peer id), the destination waits with migrate-incoming {uri: 'webrtc:'} and the source migrates
// to 'webrtc:' + the destination's id, as two browser tabs would. Checked like the loopback
// test: RAM equal at both ends, the a-b invariant on the destination, QEMU's run states; and the
// webrtc: specifics: a destination bound to another peer refuses, an unknown peer id fails, and
// x-tabmig-peer(s) report who is who and who waits.

import { Signaling } from '../src/transport/signaling.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';
import { abCheck, abPasses, advances, createTab, loopbackName, type Tab, type TabOptions, perTest, neverRanSinceArrival, runsOnKeepingAbInvariant } from './fixtures/migration-harness.js';

// Each tab owns (and on dispose closes) its signaling.
const { keep, onCleanup } = perTest();

/** A room (BroadcastChannel name) no other test, and no other run, shares. */
function room(): string {
  return `tabmig-test-${loopbackName('webrtc')}`;
}

/** A tab with its own Signaling in `channelName`; the tab owns (and closes) it. */
async function tab(channelName: string, name: string, opts: TabOptions = {}): Promise<Tab> {
  // A short query period only makes peers appear sooner; nothing below depends on timing.
  const signaling = new Signaling({ channelName, storage: null, name, queryIntervalMs: 250 });
  // Closing twice is harmless, and covers a createTab that throws before the tab owns it.
  onCleanup(() => signaling.close());
  return keep(await createTab({ ...opts, name, signaling }));
}

/** A running a-b source A and a deferred, -S destination B, in one room, capabilities set. */
async function pair() {
  const channelName = room();
  const a = await tab(channelName, 'A', { program: 'ab' });
  const b = await tab(channelName, 'B', { incoming: 'defer', startPaused: true });
  await abPasses(a, 1);
  await a.setCaps({ events: true, 'return-path': true });
  await b.setCaps({ events: true, 'return-path': true });
  return { a, b, channelName };
}

/** The source's migration failed: its error-desc; it never stopped the guest. */
async function failedOnSource(a: Tab): Promise<string> {
  const info = await a.waitStatus(['completed', 'failed', 'cancelled']);
  equal(info.status, 'failed', 'source status');
  ok(typeof info['error-desc'] === 'string', 'error-desc present');
  return info['error-desc'];
}

async function keepsRunning(a: Tab): Promise<void> {
  equal(await a.runstate(), 'running', 'the source guest runs on');
  await advances(a, 'the source guest to keep running');
  equal(a.migrationEvents().at(-1), 'failed', 'last MIGRATION event on the source');
}

describe('precopy over webrtc', () => {
  it('x-tabmig-peer names each tab; x-tabmig-peers on A lists B as incoming once B waits', async () => {
    const { a, b } = await pair();
    const pa = await a.ok('x-tabmig-peer');
    const pb = await b.ok('x-tabmig-peer');
    deepEqual(pa, { id: a.signaling!.id, name: 'A', incoming: false }, 'A');
    deepEqual(pb, { id: b.signaling!.id, name: 'B', incoming: false }, 'B before migrate-incoming');
    ok(pa.id && pb.id && pa.id !== pb.id, 'distinct peer ids');

    await b.ok('migrate-incoming', { uri: 'webrtc:' });
    deepEqual(await b.ok('x-tabmig-peer'), { ...pb, incoming: true }, 'B waiting');
    const seen = await eventually(async () => {
      const peers: any[] = await a.ok('x-tabmig-peers');
      const p = peers.find((x) => x.id === pb.id);
      return p?.incoming === true ? p : null;
    }, 10000, 'A to see B waiting');
    equal(seen.name, 'B');
    equal(seen.incomingFrom, null, 'B takes any peer');
    // A itself does not appear in its own list, and B sees A as not waiting.
    ok(!(await a.ok('x-tabmig-peers')).some((x: any) => x.id === pa.id), 'A not in its own list');
    const fromB = await eventually(async () => ((await b.ok('x-tabmig-peers')) as any[]).find((x) => x.id === pa.id), 10000, 'B to see A');
    equal(fromB.name, 'A');
    equal(fromB.incoming, false);
  });

  it('migrates a running a-b guest from A to B: RAM, run states, events; B runs it on', async () => {
    const { a, b } = await pair();
    await b.ok('migrate-incoming', { uri: 'webrtc:' });
    equal(await b.runstate(), 'inmigrate', 'the destination waits in inmigrate');
    const bId: string = (await b.ok('x-tabmig-peer')).id;
    await a.ok('migrate', { uri: `webrtc:${bId}` });

    const info = await a.waitStatus(['completed', 'failed', 'cancelled'], 60000);
    equal(info.status, 'completed', `source status (${info['error-desc'] ?? ''})`);
    equal((await b.waitStatus(['completed', 'failed'])).status, 'completed', 'destination status');
    deepEqual(await b.queryMigrate(), { status: 'completed' }, 'destination query-migrate');

    equal(await a.runstate(), 'postmigrate', 'source runstate');
    equal(await b.runstate(), 'paused', 'destination runstate under -S');
    neverRanSinceArrival(b);
    equal(await b.ramHash(), await a.ramHash(), 'RAM hash');
    equal(abCheck(b.machine.ramBytes, b.machine.ramSize), null, 'a-b invariant on the destination');
    equal((await b.ok('x-tabmig-guest-info')).program, 'ab');
    deepEqual(a.migrationEvents(), ['setup', 'active', 'completed'], 'MIGRATION events on the source');
    deepEqual(b.migrationEvents(), ['setup', 'active', 'completed'], 'MIGRATION events on the destination');
    equal(info.ram.total, b.machine.ramSize, 'ram.total');
    ok(info.ram.transferred > 0, 'bytes went over the peer connection');
    // Connected and done: B no longer announces itself as waiting.
    equal((await b.ok('x-tabmig-peer')).incoming, false, 'B no longer waiting');

    await runsOnKeepingAbInvariant(b);
  });

  it('webrtc:PEER on the destination refuses any other source; the source fails and runs on', async () => {
    const { a, b, channelName } = await pair();
    // B accepts only from C, a tab that exists but is not A.
    const c = await tab(channelName, 'C', { startPaused: true });
    const cId = c.signaling!.id;
    const bId = b.signaling!.id;
    await b.ok('migrate-incoming', { uri: `webrtc:${cId}` });
    await eventually(async () => ((await a.ok('x-tabmig-peers')) as any[]).some((p) => p.id === bId && p.incoming && p.incomingFrom === cId), 10000, 'A to see B waiting for C');

    await a.ok('migrate', { uri: `webrtc:${bId}` });
    const desc = await failedOnSource(a);
    match(desc, new RegExp(`webrtc:${bId}`), 'names the destination');
    match(desc, new RegExp(`accepts an incoming migration only from '${cId}'`), 'says the destination refused it');
    await keepsRunning(a);

    // B is untouched: still waiting (for C), never started, its guest not loaded.
    deepEqual(await b.queryMigrate(), { status: 'setup' }, 'destination still waiting');
    equal(await b.runstate(), 'inmigrate');
    deepEqual(b.migrationEvents(), ['setup'], 'no further MIGRATION events on the destination');
    equal((await b.ok('x-tabmig-peer')).incoming, true, 'B still announces itself as waiting');
    equal(b.instructions(), 0);
  });

  it('migrating to an unknown peer id fails naming the peer; the source runs on', async () => {
    const channelName = room();
    const a = await tab(channelName, 'A', { program: 'ab' });
    await abPasses(a, 1);
    await a.setCaps({ events: true, 'return-path': true });
    const nobody = 'zzzzzzzz'; // 'z' is in the id alphabet, but nobody in this room has it
    await a.ok('migrate', { uri: `webrtc:${nobody}` });
    const desc = await failedOnSource(a);
    match(desc, new RegExp(`'webrtc:${nobody}'`), 'names the peer');
    match(desc, /no tab with that peer id/);
    await keepsRunning(a);
  });
});
