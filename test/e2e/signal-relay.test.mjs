// The preview server's signaling relay, spoken to directly as a hostile client would: it stamps
// the sender, keeps ids with their first holder, keeps rooms apart, caps sizes and rates, drops
// malformed frames with an error, and forgets a peer that disconnects.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sleep, startServer } from './harness.mjs';

describe('signaling relay', () => {
  let server;
  const sockets = [];
  before(async () => {
    server = await startServer();
  });
  after(() => {
    for (const s of sockets) s.terminate();
    server?.stop();
  });

  function client(room = 'relay-test') {
    const ws = new WebSocket(server.base.replace('http', 'ws') + `signal?room=${room}`);
    sockets.push(ws);
    const got = [];
    ws.on('message', (d) => got.push(JSON.parse(String(d))));
    const opened = new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    return {
      ws,
      got,
      opened,
      send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
      async wait(pred, ms = 3000) {
        for (const t = Date.now(); Date.now() - t < ms; await sleep(20)) {
          const m = got.find(pred);
          if (m) return m;
        }
        throw new Error('not received: ' + JSON.stringify(got).slice(0, 500));
      },
    };
  }
  const presence = (id, extra = {}) => ({ id, name: id, incoming: false, incomingFrom: null, instance: `i-${id}`, since: 1, fp: '', ...extra });
  async function joined(id, room) {
    const c = client(room);
    await c.opened;
    c.send({ t: 'join', v: 1, peer: presence(id) });
    await c.wait((m) => m.t === 'joined');
    return c;
  }

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

  it('drops malformed and oversized frames, and a flood past the rate limit', async () => {
    const a = await joined('gggg1');
    a.send('not json');
    await a.wait((m) => m.t === 'error' && /malformed/.test(m.reason));
    a.send({ t: 'join', v: 1, peer: { id: 5 } });
    await a.wait((m) => m.t === 'error' && /malformed presence/.test(m.reason));
    for (let i = 0; i < 400; i++) a.send({ t: 'to', to: 'nobody', msg: {} });
    await a.wait((m) => m.t === 'error' && /rate limit/.test(m.reason));
    const big = client();
    await big.opened;
    const closed = new Promise((r) => big.ws.once('close', (code) => r(code)));
    big.send('x'.repeat(64 * 1024));
    assert.equal(await closed, 1009, 'message too big: the relay closes the socket');
  });
});
