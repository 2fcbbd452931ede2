// The preview server's signaling relay, spoken to directly as a hostile client would: it stamps
// the sender, keeps ids with their first holder, keeps rooms apart, caps sizes and rates, drops
// malformed frames with an error, and forgets a peer that disconnects. Then each of its limits
// (server/relay-limits.ts), on a server started with small ones: Origin, sockets in all and per
// address, sockets that never join, rooms, members, the bytes queued for a reader that does not
// read, presence updates, the flood count that decays, and pings.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sleep, startServer } from './harness.mjs';

const presence = (id, extra = {}) => ({ id, name: id, incoming: false, incomingFrom: null, instance: `i-${id}`, since: 1, fp: '', ...extra });

/** A relay client as a test drives it: `origin` defaults to the page's own, `address` is the local address it connects from. */
function clientsOf(server, sockets) {
  const client = (room = 'relay-test', { origin = server.base.replace(/\/$/, ''), address } = {}) => {
    const ws = new WebSocket(server.base.replace('http', 'ws') + `signal?room=${room}`, { origin, ...(address ? { localAddress: address } : {}) });
    sockets.push(ws);
    const got = [];
    ws.on('message', (d) => got.push(JSON.parse(String(d))));
    ws.on('error', () => {});
    const opened = new Promise((r, j) => {
      ws.once('open', r);
      ws.once('unexpected-response', (_req, res) => j(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', j);
    });
    opened.catch(() => {});
    const closed = new Promise((r) => ws.once('close', (code) => r(code)));
    return {
      ws,
      got,
      opened,
      closed,
      send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
      async wait(pred, ms = 3000) {
        for (const t = Date.now(); Date.now() - t < ms; await sleep(20)) {
          const m = got.find(pred);
          if (m) return m;
        }
        throw new Error('not received: ' + JSON.stringify(got).slice(0, 500));
      },
    };
  };
  const joined = async (id, room, opts) => {
    const c = client(room, opts);
    await c.opened;
    c.send({ t: 'join', v: 1, peer: presence(id) });
    await c.wait((m) => m.t === 'joined');
    return c;
  };
  return { client, joined };
}

const isOpen = (c) => c.ws.readyState === WebSocket.OPEN;

/** Closes clients and waits until the relay has seen them go (a paused socket cannot do the closing handshake). */
async function shut(...cs) {
  for (const c of cs) (c.ws._socket?.isPaused() ? c.ws.terminate() : c.ws.close());
  await Promise.all(cs.map((c) => c.closed));
  await sleep(200);
}

describe('signaling relay', () => {
  let server;
  const sockets = [];
  let client, joined;
  before(async () => {
    server = await startServer();
    ({ client, joined } = clientsOf(server, sockets));
  });
  after(() => {
    for (const s of sockets) s.terminate();
    server?.stop();
  });

  it('lists the room, forwards with the sender as the relay knows it, and forgets a peer that leaves', async () => {
    const a = await joined('aaaa1');
    const b = await joined('bbbb1');
    await a.wait((m) => m.t === 'peer' && m.peer.id === 'bbbb1');
    a.send({ t: 'to', to: 'bbbb1', msg: { from: 'cccc1', conn: 'x', kind: 'reject' } });
    const fwd = await b.wait((m) => m.t === 'from');
    assert.equal(fwd.from, 'aaaa1', 'the relay stamps the real sender, whatever the message says');
    b.ws.close();
    await a.wait((m) => m.t === 'left' && m.id === 'bbbb1');
  });

  it('keeps an id with its first live holder; another room sees nothing', async () => {
    const a = await joined('dddd1');
    const thief = client();
    await thief.opened;
    thief.send({ t: 'join', v: 1, peer: presence('dddd1') });
    await thief.wait((m) => m.t === 'id-taken');
    thief.send({ t: 'to', to: 'dddd1', msg: {} });
    await thief.wait((m) => m.t === 'error' && /join first/.test(m.reason));
    const other = await joined('eeee1', 'another-room');
    other.send({ t: 'to', to: 'dddd1', msg: {} });
    await other.wait((m) => m.t === 'no-peer');
    // An update cannot move a connection's id either.
    a.send({ t: 'update', peer: presence('ffff1') });
    await a.wait((m) => m.t === 'error');
  });

  it('drops malformed and oversized frames, and a flood past the rate limit (messagesPerSecond, messageBurst), then cuts the flooder off', async () => {
    const a = await joined('gggg1');
    a.send('not json');
    await a.wait((m) => m.t === 'error' && /malformed/.test(m.reason));
    a.send({ t: 'join', v: 1, peer: { id: 5 } });
    await a.wait((m) => m.t === 'error' && /malformed presence/.test(m.reason));
    for (let i = 0; i < 400; i++) a.send({ t: 'to', to: 'nobody', msg: {} });
    await a.wait((m) => m.t === 'error' && /rate limit/.test(m.reason));
    assert.equal(await a.closed, 1008, '280 dropped messages at once are past floodDisconnectAfter (200): disconnected');
    const big = client();
    await big.opened;
    big.send('x'.repeat(64 * 1024));
    assert.equal(await big.closed, 1009, 'message too big: the relay closes the socket');
  });

  it('refuses a socket from a foreign Origin, or with none (the page origin only)', async () => {
    const foreign = client('relay-test', { origin: 'http://evil.example' });
    await assert.rejects(foreign.opened, /HTTP 403/);
    const none = client('relay-test', { origin: '' });
    await assert.rejects(none.opened, /HTTP 403/);
    const lookalike = client('relay-test', { origin: server.base.replace('127.0.0.1', 'localhost').replace(/\/$/, '') });
    await assert.rejects(lookalike.opened, /HTTP 403/, "another name for the same server is not the page's origin");
    // DNS rebinding: a name the attacker points at this server makes Origin and Host agree, but
    // it is not a name the server serves pages under.
    const port = new URL(server.base).port;
    const rebound = new WebSocket(server.base.replace('http', 'ws') + 'signal?room=relay-test', { origin: `http://rebind.example:${port}`, headers: { Host: `rebind.example:${port}` } });
    rebound.on('error', () => {});
    const status = await new Promise((r) => (rebound.once('unexpected-response', (_q, res) => r(res.statusCode)), rebound.once('open', () => r('open'))));
    assert.equal(status, 403);
    assert.match(server.log(), /relay: socket refused: Origin http:\/\/evil\.example is not this page's/);
  });
});

describe('signaling relay limits', () => {
  let server;
  const sockets = [];
  let client, joined;
  // Small limits, so that each can be reached; each test uses loopback addresses of its own.
  const limits = {
    maxConnections: 30,
    maxConnectionsPerAddress: 8,
    maxUnjoinedPerAddress: 3,
    joinDeadlineMs: 1500,
    maxRooms: 6,
    maxMembersPerRoom: 10,
    maxBufferedBytes: 65536,
    messagesPerSecond: 100,
    messageBurst: 100,
    presencePerSecond: 1,
    presenceBurst: 3,
    floodDisconnectAfter: 150,
    floodForgetPerSecond: 100,
    pingIntervalMs: 3000,
  };
  before(async () => {
    server = await startServer({
      env: {
        TABMIG_RELAY_LIMITS: Object.entries(limits).map(([k, v]) => `${k}=${v}`).join(','),
        TABMIG_RELAY_ORIGINS: 'http://friend.example',
      },
    });
    ({ client, joined } = clientsOf(server, sockets));
  });
  after(() => {
    for (const s of sockets) s.terminate();
    server?.stop();
  });

  it('lets in an origin listed in TABMIG_RELAY_ORIGINS', async () => {
    const friend = client('o', { origin: 'http://friend.example', address: '127.0.1.1' });
    await friend.opened;
    await shut(friend);
  });

  it('maxUnjoinedPerAddress and joinDeadlineMs: sockets that never join are closed, the oldest first, then all', async () => {
    const idle = Array.from({ length: 10 }, () => client('idle', { address: '127.0.2.1' }));
    await Promise.allSettled(idle.map((c) => c.opened));
    await sleep(200);
    assert.ok(idle.filter(isOpen).length <= limits.maxUnjoinedPerAddress, `${idle.filter(isOpen).length} of 10 still open`);
    assert.ok(idle.slice(-limits.maxUnjoinedPerAddress).every(isOpen), 'the newest stay (a real page joins at once)');
    const member = await joined('join1', 'idle', { address: '127.0.2.1' });
    await Promise.all(idle.map((c) => c.closed));
    await sleep(limits.joinDeadlineMs);
    assert.ok(isOpen(member), 'a socket that joined is not reaped');
    await shut(member);
  });

  it('maxConnectionsPerAddress and maxConnections: past them a socket is refused (503)', async () => {
    const mine = [];
    for (let i = 0; i < limits.maxConnectionsPerAddress; i++) mine.push(await joined(`addr${i}x`, 'per-addr', { address: '127.0.3.1' }));
    await assert.rejects(client('per-addr', { address: '127.0.3.1' }).opened, /HTTP 503/);
    const other = await joined('addr-other', 'per-addr', { address: '127.0.3.2' });
    assert.ok(isOpen(other), 'another address is not held back');
    await shut(...mine, other);
    // In all: fill up to maxConnections from several addresses.
    const all = [];
    for (let i = 0; all.length < limits.maxConnections; i++) all.push(await joined(`tot${i}x`, `t${i % 3}`, { address: `127.0.4.${1 + (i % 5)}` }).catch((e) => e));
    const failed = all.filter((c) => c instanceof Error);
    assert.equal(failed.length, 0, String(failed[0]));
    await assert.rejects(client('t0', { address: '127.0.4.9' }).opened, /HTTP 503/);
    await shut(...all);
    assert.match(server.log(), /\(maxConnections\)/);
  });

  it('maxRooms and maxMembersPerRoom', async () => {
    const members = [];
    for (let i = 0; i < limits.maxMembersPerRoom; i++) members.push(await joined(`room${i}x`, 'r-full', { address: `127.0.5.${1 + (i % 4)}` }));
    const extra = client('r-full', { address: '127.0.5.9' });
    await extra.opened;
    extra.send({ t: 'join', v: 1, peer: presence('room-extra') });
    await extra.wait((m) => m.t === 'error' && m.reason === 'room is full');
    const rooms = [];
    for (let i = 1; i < limits.maxRooms; i++) rooms.push(await joined(`rooms${i}x`, `r-${i}`, { address: '127.0.5.10' }));
    const onceMore = client(`r-${limits.maxRooms}`, { address: '127.0.5.11' });
    await onceMore.opened;
    onceMore.send({ t: 'join', v: 1, peer: presence('rooms-more') });
    await onceMore.wait((m) => m.t === 'error' && m.reason === 'too many rooms on this relay');
    await shut(...members, ...rooms, extra, onceMore);
  });

  it('maxBufferedBytes: a member that does not read is disconnected, not buffered for', async () => {
    const reader = await joined('slow1', 'buf', { address: '127.0.6.1' });
    reader.ws._socket.pause(); // reads nothing from now on
    const senders = [];
    for (let i = 0; i < 8; i++) senders.push(await joined(`fast${i}x`, 'buf', { address: `127.0.6.${2 + i}` }));
    const body = 'x'.repeat(15 * 1024);
    const flood = async (s) => {
      for (let round = 0; round < 20 && isOpen(s); round++) {
        for (let i = 0; i < limits.messagesPerSecond; i++) s.send({ t: 'to', to: 'slow1', msg: { from: 'x', conn: 'c', kind: 'signal', data: body } });
        await sleep(1000);
        if (s.got.some((m) => m.t === 'left' && m.id === 'slow1')) return;
      }
    };
    await Promise.all(senders.map(flood));
    await senders[0].wait((m) => m.t === 'left' && m.id === 'slow1', 1000);
    assert.match(server.log(), /does not read \(\d+ bytes queued\): disconnected/);
    await shut(...senders, reader);
  });

  it('presencePerSecond and presenceBurst: presence updates (each sent to the whole room) are capped', async () => {
    const a = await joined('pres1', 'pres', { address: '127.0.7.1' });
    const b = await joined('pres2', 'pres', { address: '127.0.7.2' });
    await sleep(1200);
    for (let i = 0; i < 30; i++) a.send({ t: 'update', peer: presence('pres1', { name: `n${i}` }) });
    await a.wait((m) => m.t === 'error' && /presence update dropped/.test(m.reason));
    await sleep(300);
    const seen = b.got.filter((m) => m.t === 'peer' && m.peer.id === 'pres1' && m.peer.name.startsWith('n')).length;
    assert.ok(seen <= limits.presenceBurst + 1, `the room saw ${seen} of 30 updates`);
    await shut(a, b);
  });

  it('floodDisconnectAfter and floodForgetPerSecond: dropped messages are forgiven over time, a steady flood is cut off', async () => {
    const a = await joined('flood1', 'flood', { address: '127.0.8.1' });
    const burst = () => {
      for (let i = 0; i < limits.messageBurst + 120; i++) a.send({ t: 'to', to: 'nobody', msg: {} });
    };
    burst(); // 120 dropped: under 150
    await sleep(2500); // forgotten at 100 a second; the bucket refills
    burst(); // 120 more: a count that never decayed would be at 240 and cut it off
    await sleep(500);
    assert.ok(isOpen(a), 'a flood that stopped is forgiven');
    for (let i = 0; i < 400; i++) a.send({ t: 'to', to: 'nobody', msg: {} });
    assert.equal(await a.closed, 1008, 'a flood that goes on is cut off');
  });

  it('pingIntervalMs: a joined socket that stops answering pings is closed and the room told', async () => {
    const watcher = await joined('ping0', 'ping', { address: '127.0.9.1' });
    const a = await joined('ping1', 'ping', { address: '127.0.9.2' });
    a.ws._socket.pause(); // no more pongs
    await watcher.wait((m) => m.t === 'left' && m.id === 'ping1', 4 * limits.pingIntervalMs);
    await shut(watcher, a);
  });
});
