// ChannelSet: how a worker holds the channels of one migration connection. Driven with
// MessageChannel ports standing in for the transferred data channels.

import { ChannelClosedError, fromMessagePort, TransportError } from '../src/transport/channel.js';
import { ChannelSet } from '../src/transport/channel-set.js';
import { CHANNEL, channelLabel, type ChannelMessage } from '../src/transport/routes.js';
import { equal, match, ok, rejects, throws, deepEqual } from './helpers/assert.js';

/** A delivery message as the transport posts it, and the far end of its port. */
function delivery(id: number, connection = 'c1'): { msg: ChannelMessage; far: MessagePort } {
  const mc = new MessageChannel();
  return {
    msg: { type: 'tabmig-channel', id, label: channelLabel(id), connection, transport: 'loopback', channel: mc.port1 },
    far: mc.port2,
  };
}

/** Settles within a few macrotasks or reports that it is still pending. */
async function settled(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((r) => setTimeout(r, 10));
  return state;
}

describe('transport: channel set', () => {
  it('takes channel messages of its connection and leaves everything else to the caller', () => {
    const set = new ChannelSet();
    equal(set.accept({ type: 'start' }), false);
    equal(set.accept(null), false);
    const main = delivery(CHANNEL.main);
    equal(set.accept(main.msg), true);
    equal(set.connection, 'c1', 'bound to the first connection seen');
    ok(set.has(CHANNEL.main));
    equal(set.get(CHANNEL.main), main.msg.channel);
    equal(set.info(CHANNEL.main)?.label, 'main');
    equal(set.has(CHANNEL.returnPath), false);
    equal(set.get(CHANNEL.returnPath), undefined);
    // A channel of another connection (an older attempt) is not this set's.
    equal(set.accept(delivery(CHANNEL.returnPath, 'c0').msg), false);
    equal(set.has(CHANNEL.returnPath), false);
    equal(set.accept(delivery(CHANNEL.returnPath).msg), true);
    deepEqual(set.ids(), [0, 1]);
  });

  it('can be bound to a connection up front', () => {
    const set = new ChannelSet({ connection: 'mine' });
    equal(set.accept(delivery(CHANNEL.main, 'other').msg), false);
    equal(set.accept(delivery(CHANNEL.main, 'mine').msg), true);
  });

  it('refuses a second channel for the same id', () => {
    const set = new ChannelSet();
    set.accept(delivery(CHANNEL.main).msg);
    const e = throws(() => set.accept(delivery(CHANNEL.main).msg));
    ok(e instanceof TransportError);
    match((e as Error).message, /channel 0 \(main\) was delivered twice/);
  });

  it('opens a channel once and carries bytes both ways', async () => {
    const set = new ChannelSet();
    const rp = delivery(CHANNEL.returnPath);
    set.accept(rp.msg);
    const a = set.open(CHANNEL.returnPath);
    equal(set.open(CHANNEL.returnPath), a, 'the same MigrationChannel on every call');
    equal(set.opened(CHANNEL.returnPath), a);
    equal(a.label, 'return-path');
    const far = fromMessagePort(rp.far);
    await far.write(new Uint8Array([1, 2, 3]));
    equal((await a.read())!.join(), '1,2,3');
    await a.write(new Uint8Array([4]));
    equal((await far.read())!.join(), '4');
  });

  it('open() before arrival says which channel is missing', () => {
    const set = new ChannelSet();
    const e = throws(() => set.open(CHANNEL.postcopy));
    ok(e instanceof TransportError);
    match((e as Error).message, /channel 2 \(postcopy\) has not arrived/);
  });

  it('eager channels are wrapped the moment they arrive', () => {
    const set = new ChannelSet({ eager: (id) => (id === CHANNEL.returnPath ? { lowWaterMark: 1 } : undefined) });
    set.accept(delivery(CHANNEL.main).msg);
    set.accept(delivery(CHANNEL.returnPath).msg);
    equal(set.opened(CHANNEL.main), null);
    const rp = set.opened(CHANNEL.returnPath);
    ok(rp);
    equal(rp.lowWaterMark, 1);
    equal(set.open(CHANNEL.returnPath), rp);
  });

  it('message channels (the switchover handshake) are wrapped on arrival: early messages wait for a handler, both ways', async () => {
    const set = new ChannelSet({ messages: [CHANNEL.switchover] });
    const { msg, far } = delivery(CHANNEL.switchover);
    far.postMessage({ switchover: 'ready' }); // before anyone listens on this side
    ok(set.accept(msg));
    const control = set.control(CHANNEL.switchover);
    ok(control, 'wrapped as a ControlChannel');
    equal(set.control(CHANNEL.main), null, 'byte channels are not');
    await new Promise((r) => setTimeout(r, 20));
    const heard: unknown[] = [];
    control.onmessage = (m) => heard.push(m);
    deepEqual(heard, [{ switchover: 'ready' }], 'the early message is handed over');
    const back = new Promise((r) => (far.onmessage = (e) => r(e.data)));
    ok(control.send({ switchover: 'commit' }));
    deepEqual(await back, { switchover: 'commit' });
    await set.closeAll('over');
    equal(control.usable, false, 'closed with the set');
    equal(control.send({ switchover: 'commit' }), false, 'a closed channel says it did not send');
  });

  it('whenAll waits for every id, in any arrival order, including multifd channels', async () => {
    const set = new ChannelSet();
    const ids = [CHANNEL.main, CHANNEL.returnPath, CHANNEL.multifdBase, CHANNEL.multifdBase + 1];
    const all = set.whenAll(ids);
    const some = set.whenAll([CHANNEL.returnPath]);
    set.accept(delivery(CHANNEL.multifdBase + 1).msg);
    set.accept(delivery(CHANNEL.returnPath).msg);
    equal(await settled(some), 'resolved');
    equal(await settled(all), 'pending');
    set.accept(delivery(CHANNEL.main).msg);
    set.accept(delivery(CHANNEL.multifdBase).msg);
    equal(await settled(all), 'resolved');
    equal(set.info(CHANNEL.multifdBase + 1)?.label, 'multifd-1');
    equal(await settled(set.whenAll([CHANNEL.main])), 'resolved', 'already there: resolves at once');
  });

  it('whenAll rejects when the set closes or the signal aborts', async () => {
    const set = new ChannelSet();
    const waiting = set.whenAll([CHANNEL.main]);
    const ac = new AbortController();
    const aborted = set.whenAll([CHANNEL.postcopy], ac.signal);
    ac.abort(new Error('timed out'));
    equal(((await rejects(aborted)) as Error).message, 'timed out');
    void set.closeAll('migration cancelled');
    const e = await rejects(waiting);
    ok(e instanceof TransportError);
    match((e as Error).message, /migration cancelled/);
    await rejects(set.whenAll([CHANNEL.main]), 'a closed set never gets channels');
  });

  it('closeAll(reason) aborts opened channels and releases raw ones', async () => {
    const set = new ChannelSet();
    const main = delivery(CHANNEL.main);
    const rp = delivery(CHANNEL.returnPath);
    set.accept(main.msg);
    set.accept(rp.msg);
    set.open(CHANNEL.main);
    const farMain = fromMessagePort(main.far);
    await set.closeAll('migration failed');
    ok(set.closed);
    equal(set.has(CHANNEL.main), false);
    const e = await rejects(farMain.read());
    ok(e instanceof ChannelClosedError);
    match((e as Error).message, /aborted by peer: migration failed/);
    throws(() => set.open(CHANNEL.main), 'nothing can be opened after closeAll');
    // A channel arriving late is released, not held.
    const late = delivery(CHANNEL.postcopy);
    equal(set.accept(late.msg), true);
    equal(set.has(CHANNEL.postcopy), false);
    await set.closeAll('again'); // idempotent
  });

  it('closeAll() without a reason closes orderly: what was sent still arrives', async () => {
    const set = new ChannelSet();
    const main = delivery(CHANNEL.main);
    set.accept(main.msg);
    const ch = set.open(CHANNEL.main);
    ch.send(new Uint8Array([7, 8]));
    const far = fromMessagePort(main.far);
    await set.closeAll();
    equal((await far.read())!.join(), '7,8');
    equal(await far.read(), null, 'then a clean end');
    equal((await ch.closed).ok, true);
  });
});
