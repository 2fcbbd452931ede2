// Two real RTCPeerConnections in one page, found and connected through BroadcastChannel
// signaling, with the negotiated channels transferred to workers that stream and check bytes.

import { CHANNEL } from '../src/transport/routes.js';
import { Signaling } from '../src/transport/signaling.js';
import { acceptFromPeer, connectToPeer, type PeerLink } from '../src/transport/webrtc.js';
import { equal, eventually, match, ok, rejects } from './helpers/assert.js';
import { EchoWorker } from './fixtures/transport-worker-client.js';

const ids = [CHANNEL.main, CHANNEL.returnPath, CHANNEL.postcopy];
const MiB = 1 << 20;

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function signalings(names: string[] = ['A', 'B']): Signaling[] {
  const channelName = `tabmig-test-${Math.random().toString(36).slice(2)}`;
  const s = names.map((name) => new Signaling({ channelName, storage: null, name, queryIntervalMs: 250 }));
  cleanup.push(() => s.forEach((x) => x.close()));
  return s;
}

function worker(): EchoWorker {
  const w = new EchoWorker();
  cleanup.push(() => w.terminate());
  return w;
}

async function connected(): Promise<{ a: Signaling; b: Signaling; wa: EchoWorker; wb: EchoWorker; la: PeerLink; lb: PeerLink }> {
  const [a, b] = signalings();
  const wa = worker();
  const wb = worker();
  const incoming = acceptFromPeer(b, { routes: ids.map((id) => ({ id, to: wb.worker })), info: { side: 'b' } });
  const la = await connectToPeer(a, b.id, { routes: ids.map((id) => ({ id, to: wa.worker })), info: { side: 'a' } });
  const lb = await incoming.connection;
  cleanup.push(() => void la.close(), () => void lb.close());
  await wa.channels(ids.length);
  await wb.channels(ids.length);
  return { a, b, wa, wb, la, lb };
}

describe('transport: webrtc', () => {
  it('connects two peers through signaling and hands every negotiated channel to its worker', async () => {
    const { a, b, wa, wb, la, lb } = await connected();
    equal(la.peerId, b.id);
    equal(lb.peerId, a.id);
    equal(la.remote.role, 'destination');
    equal(lb.remote.role, 'source');
    equal((la.remote.info as { side: string }).side, 'b');
    equal((lb.remote.info as { side: string }).side, 'a');
    equal(la.connection, lb.connection);
    equal(wa.channelsSeen.map((c) => c.label).join(), 'main,return-path,postcopy');
    equal(wb.channelsSeen.map((c) => c.id).join(), '0,1,2');
    ok(wa.channelsSeen.every((c) => c.transport === 'webrtc' && c.connection === la.connection));
    equal(la.channels.size, 0, 'nothing kept on the main thread');
    // The destination stopped announcing itself as waiting once connected.
    await eventually(() => a.peer(b.id)?.incoming === false, 5000, 'B no longer incoming');
  });

  it('streams 32 MiB source→destination intact, in order, with back-pressure, and replies on the return path', async () => {
    const { wa, wb } = await connected();
    const receiving = wb.call({ cmd: 'recv', id: CHANNEL.main });
    const sent = await wa.call({ cmd: 'send', id: CHANNEL.main, bytes: 32 * MiB, close: true }, 120000);
    ok(sent.ok, JSON.stringify(sent));
    ok((sent.maxBuffered as number) <= (sent.highWaterMark as number), `bufferedAmount reached ${sent.maxBuffered}`);
    const got = await receiving;
    ok(got.ok, JSON.stringify(got));
    equal(got.got, 32 * MiB);
    equal(got.bad, -1, 'first corrupt offset');
    equal((got.close as { ok: boolean }).ok, true);
    const mbs = (32 * MiB) / 1e6 / ((sent.ms as number) / 1000);
    console.log(`webrtc worker→worker throughput in one page: ${mbs.toFixed(1)} MB/s (32 MiB, 64 KiB messages)`);

    // Return path and postcopy channels work independently of main.
    const rp = wa.call({ cmd: 'recv', id: CHANNEL.returnPath });
    ok((await wb.call({ cmd: 'send', id: CHANNEL.returnPath, bytes: 1 * MiB, chunk: 1000, close: true })).ok);
    const rpGot = await rp;
    equal(rpGot.got, 1 * MiB);
    equal(rpGot.bad, -1);
    const pc = wb.call({ cmd: 'recv', id: CHANNEL.postcopy });
    ok((await wa.call({ cmd: 'send', id: CHANNEL.postcopy, bytes: 4096 * 10, chunk: 4096, close: true })).ok);
    equal((await pc).got, 40960);
  });

  it('a lost peer connection fails both sides\' channels and links instead of hanging', async () => {
    const { b, wa, wb, la, lb } = await connected();
    const receiving = wb.call({ cmd: 'recv', id: CHANNEL.main });
    const sending = wa.call({ cmd: 'send', id: CHANNEL.main, bytes: 1024 * MiB });
    await new Promise((r) => setTimeout(r, 300));
    la.pc.close(); // as abrupt as a crashed tab: no bye, no orderly channel close
    const got = await receiving;
    equal(got.ok, false);
    equal(got.bad, -1);
    ok((got.got as number) > 0, 'some bytes arrived first');
    equal((got.error as { name: string }).name, 'ChannelClosedError');
    match((got.error as { message: string }).message, /connection to peer lost/);
    const s = await sending;
    equal(s.ok, false);
    const info = await lb.closed;
    equal(info.ok, false);
    match(info.reason, /connection to peer '.+' lost/);
    const infoA = await la.closed;
    equal(infoA.ok, false);
    void b;
  });

  it('a peer tab that goes away (bye) fails the other side with a clear reason', async () => {
    const { a, wb, lb } = await connected();
    const receiving = wb.call({ cmd: 'recv', id: CHANNEL.main });
    a.close(); // what pagehide does
    const info = await lb.closed;
    equal(info.ok, false);
    match(info.reason, /went away/);
    // Closing the link closes its peer connection: the worker's channel fails too.
    const got = await receiving;
    equal(got.ok, false);
    match((got.error as { message: string }).message, /connection to peer lost/);
  });

  it('link.close() on one side ends the other side\'s link orderly', async () => {
    const { wa, wb, la, lb } = await connected();
    // Workers finish their channels first, as migration workers do.
    const r = wb.call({ cmd: 'recv', id: CHANNEL.main });
    ok((await wa.call({ cmd: 'send', id: CHANNEL.main, bytes: MiB, close: true })).ok);
    equal((await r).got, MiB);
    await la.close('migration completed');
    const info = await lb.closed;
    equal(info.ok, true);
    equal(info.by, 'remote');
    equal(info.reason, 'migration completed');
    equal((await la.closed).by, 'local');
  });

  it('an aborted channel reports the reason on the other side', async () => {
    const { wa, wb } = await connected();
    const r = wb.call({ cmd: 'recv', id: CHANNEL.main });
    await wa.call({ cmd: 'send', id: CHANNEL.main, bytes: MiB });
    await wa.call({ cmd: 'abort', id: CHANNEL.main, reason: 'migrate_cancel' });
    const got = await r;
    equal(got.ok, false);
    match((got.error as { message: string }).message, /aborted by peer: migrate_cancel/);
  });

  it('refuses peers the destination does not accept, with the reason', async () => {
    const [a, b, c] = signalings(['A', 'B', 'C']);
    const routes = [{ id: CHANNEL.main }];
    // B is not waiting for an incoming migration at all.
    await eventually(() => a.peer(b.id), 5000, 'A sees B');
    let e = await rejects(connectToPeer(a, b.id, { routes }));
    match((e as Error).message, new RegExp(`^Failed to connect to 'webrtc:${b.id}': that tab is not waiting for an incoming migration$`));
    // B accepts only from C.
    const incoming = acceptFromPeer(b, { routes, from: c.id });
    await eventually(() => a.peer(b.id)?.incoming, 5000, 'B announced incoming');
    equal(a.peer(b.id)?.incomingFrom, c.id);
    e = await rejects(connectToPeer(a, b.id, { routes }));
    match((e as Error).message, new RegExp(`accepts an incoming migration only from '${c.id}'`));
    // Unknown peer id.
    e = await rejects(connectToPeer(a, 'nosuchpeer', { routes, discoveryTimeoutMs: 300 }));
    equal((e as Error).message, "Failed to connect to 'webrtc:nosuchpeer': no tab with that peer id");
    // Mismatched channel sets (e.g. multifd on one side only) fail the handshake on both sides.
    e = await rejects(connectToPeer(c, b.id, { routes: [{ id: CHANNEL.main }, { id: CHANNEL.multifdBase }] }));
    match((e as Error).message, /channel mismatch/);
    // B is still listening after a refused attempt, and C (the accepted peer) can now connect.
    const lc = await connectToPeer(c, b.id, { routes });
    const lb = await incoming.connection;
    equal(lb.peerId, c.id);
    equal(lc.channels.size, 1, 'kept on the main thread when no worker is routed');
    await lc.close();
    // A second source is refused once B has its migration.
    e = await rejects(connectToPeer(a, b.id, { routes }));
    match((e as Error).message, /not waiting for an incoming migration|already has an incoming migration/);
  });

  it('cancel() stops listening and rejects the pending connection', async () => {
    const [a, b] = signalings();
    const incoming = acceptFromPeer(b, { routes: [{ id: 0 }] });
    await eventually(() => a.peer(b.id)?.incoming, 5000, 'B announced incoming');
    incoming.cancel();
    await rejects(incoming.connection);
    await eventually(() => a.peer(b.id)?.incoming === false, 5000, 'B no longer incoming');
  });
});
