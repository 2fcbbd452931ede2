// Hostile peers against real tabs in browser contexts of their own (as on other machines), meeting
// through the preview server's relay: a session description carrying two fingerprints (offer and
// answer); a wrong pairing code tried again and again (the code changes each time, the page counts
// the attempts, the real source still pairs); a room member flooding offers and presence, and a
// same-browser page flooding offers and queries, while a real migration runs (it completes); 500
// relay sockets opened and left idle (they are closed, the relay serves the real tabs meanwhile);
// a page of another origin opening the relay's socket (refused).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { sleep } from './harness.mjs';
import { contextPerTab } from './session.mjs';

const FINAL = ['completed', 'failed', 'cancelled'];

describe('hostile peers', () => {
  const session = contextPerTab();
  const open = (query, context = null, base) => session.open(query, { context, ...(base ? { base } : {}) });

  /** A destination waiting in `room` (with tls-creds `secret`, or showing its pairing code when ''). */
  async function destination(room, secret, ctx) {
    const b = await open(`?incoming=defer&S&room=${room}`, ctx);
    if (secret) await b.ret('migrate-set-parameters', { 'tls-creds': secret });
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id } = await b.ret('x-tabmig-peer');
    await b.until('x-tabmig-pairing', (p) => p.relay === 'connected', 15000);
    return { b, id };
  }

  /**
   * A source in `room` with the a-b guest, run a moment and stopped: quick to move, whatever the
   * machine's load (these tests are about the path, not about convergence).
   */
  async function source(room, secret) {
    const a = await open(`?S&room=${room}`);
    if (secret) await a.ret('migrate-set-parameters', { 'tls-creds': secret });
    await a.ret('x-tabmig-load', { program: 'ab' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('B'), 10000);
    await a.ret('stop');
    return a;
  }

  async function migrate(a, id) {
    await a.ret('migrate', { uri: `webrtc:${id}` });
    return a.until('query-migrate', (v) => FINAL.includes(v.status), 120000);
  }

  async function completes(a, b, id) {
    const info = await migrate(a, id);
    assert.equal(info.status, 'completed', JSON.stringify(info).slice(0, 300));
    await b.until('query-status', (v) => v.status === 'paused' || v.status === 'running', 30000);
    assert.equal(await a.hash(), await b.hash(), 'RAM hashes equal');
    return info;
  }

  const eventLog = (tab) => tab.page.evaluate(() => document.querySelector('tm-app')?.migration?.log?.map((l) => l.text) ?? []);

  /** Rewrites this tab's outgoing session descriptions of `type` as a relay in the middle would. */
  const tamperSdp = (tab, type, extraLine) =>
    tab.page.evaluate(
      ({ type, extraLine }) => {
        const sig = document.querySelector('tm-app').migration.signaling;
        window.__send ??= sig.sendSignal.bind(sig);
        sig.sendSignal = (to, conn, data) =>
          window.__send(to, conn, data?.type === type ? { ...data, sdp: data.sdp.replace(/(a=fingerprint:[^\r\n]+\r\n)/, `$1${extraLine}\r\n`) } : data);
      },
      { type, extraLine },
    );
  const untamper = (tab) =>
    tab.page.evaluate(() => {
      const sig = document.querySelector('tm-app').migration.signaling;
      if (window.__send) sig.sendSignal = window.__send;
    });

  it('a session description with two fingerprints is refused with a clear text on both sides; the honest one then migrates', async () => {
    const room = `sdp${Date.now()}`;
    const { b, id } = await destination(room, 'sdp-secret');
    const a = await source(room, 'sdp-secret');
    const { id: idA } = await a.ret('x-tabmig-peer');
    const fake = Array.from({ length: 32 }, () => 'EE').join(':');

    // The offer gains a second sha-256 line (its own certificate, say, beside the real one).
    await tamperSdp(a, 'offer', `a=fingerprint:sha-256 ${fake}`);
    const offer = await migrate(a, id);
    assert.equal(offer.status, 'failed');
    assert.match(offer['error-desc'], new RegExp(`TLS handshake failed: the offer from '${idA}': the session description carries 2 DTLS fingerprints \\(sha-256, sha-256\\); only one sha-256 fingerprint is accepted`));
    await untamper(a);

    // The answer gains a sha-512 line.
    await tamperSdp(b, 'answer', `a=fingerprint:sha-512 ${fake}`);
    const answer = await migrate(a, id);
    assert.equal(answer.status, 'failed');
    assert.match(answer['error-desc'], new RegExp(`TLS handshake failed: the answer from '${id}': the session description carries 2 DTLS fingerprints \\(sha-256, sha-512\\)`));
    await untamper(b);

    const log = (await eventLog(b)).join('\n');
    assert.match(log, /refused: TLS handshake failed: the offer from .*carries 2 DTLS fingerprints/, 'the destination says why it refused the offer');
    assert.match(log, /refused: TLS handshake failed: the answer from .*carries 2 DTLS fingerprints/, 'and why the source refused its answer');
    assert.equal((await b.ret('x-tabmig-peer')).incoming, true, 'the destination keeps waiting');
    await completes(a, b, id);
  });

  it('a wrong pairing code tried again and again: the code changes each time, the page counts them, the real source still pairs', async () => {
    const room = `code${Date.now()}`;
    const { b, id } = await destination(room, '');
    const first = (await b.ret('x-tabmig-pairing')).code;
    const evil = await source(room, '');
    const codes = [first];
    // Two guesses, then the code the tab showed before them (already replaced).
    for (const guess of ['abcd-2345', 'wxyz-6789', first]) {
      await evil.ret('migrate-set-parameters', { 'tls-creds': guess });
      const r = await migrate(evil, id);
      assert.equal(r.status, 'failed');
      assert.match(r['error-desc'], /refused by peer: TLS handshake failed: the pairing code or secret \(tls-creds\) does not match/);
      codes.push((await b.until('x-tabmig-pairing', (p) => p.failedAttempts === codes.length)).code);
    }
    assert.equal(new Set(codes).size, codes.length, `a new code after each failed attempt: ${codes.join(' ')}`);
    // The pairing panel says so (it reads x-tabmig-pairing when the migration service changes).
    await b.page.waitForFunction(
      () => /3 attempts with a wrong code or secret/.test(document.querySelector('tm-app')?.shadowRoot?.querySelector('tm-pairing')?.shadowRoot?.querySelector('.failed')?.textContent ?? ''),
      null,
      { timeout: 10000 },
    );
    const a = await source(room, codes.at(-1));
    await completes(a, b, id);
  });

  it('a room member flooding offers and presence, and a page of the same browser flooding offers and queries, do not stop a migration', async () => {
    const room = `flood${Date.now()}`;
    const { b, id } = await destination(room, 'flood-secret');
    const a = await open(`?S&room=${room}`);
    await a.ret('migrate-set-parameters', { 'tls-creds': 'flood-secret', 'max-bandwidth': 2 << 20 });
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=8M rate=64K mode=random' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);

    // The room member: a client of the relay, sending as fast as the relay lets it.
    const member = new WebSocket(`${session.server.base.replace('http', 'ws')}signal?room=${room}`, { origin: session.server.base.replace(/\/$/, '') });
    member.on('error', () => {});
    await new Promise((r, j) => (member.once('open', r), member.once('error', j)));
    const me = { id: 'evil-member', name: 'evil', incoming: false, incomingFrom: null, instance: 'evil', since: 1, fp: '' };
    member.send(JSON.stringify({ t: 'join', v: 1, peer: me }));
    const offerSdp = await a.page.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.createDataChannel('x');
      await pc.setLocalDescription();
      const sdp = pc.localDescription.sdp;
      pc.close();
      return sdp;
    });
    let n = 0;
    const flood = setInterval(() => {
      if (member.readyState !== WebSocket.OPEN) return;
      for (let i = 0; i < 4; i++) member.send(JSON.stringify({ t: 'to', to: id, msg: { from: me.id, conn: `f${n++}`, kind: 'signal', data: { type: 'offer', sdp: offerSdp } } }));
      member.send(JSON.stringify({ t: 'update', peer: { ...me, name: `evil ${n}` } }));
    }, 100);

    // The same-browser page: B's own context, its signaling used to flood signed offers and queries.
    const page = await open(`?S&relay=off`, b.context);
    await page.page.evaluate(
      ({ to, sdp }) => {
        const sig = document.querySelector('tm-app').migration.signaling;
        let i = 0;
        window.__flood = setInterval(() => {
          for (let k = 0; k < 20; k++) {
            sig.query();
            sig.sendSignal(to, `p${i++}`, { type: 'offer', sdp });
          }
        }, 50);
      },
      { to: id, sdp: offerSdp },
    );
    try {
      const info = await completes(a, b, id);
      assert.ok(info['total-time'] > 2000, `the floods overlapped the migration (${info['total-time']} ms)`);
    } finally {
      clearInterval(flood);
      member.terminate();
      await page.page.evaluate(() => clearInterval(window.__flood));
    }
    const log = (await eventLog(b)).join('\n');
    assert.match(log, /another offer from evil-member while its attempt is in progress; dropped/, 'the member got one attempt, not the slots of others');
  });

  it('500 relay sockets left idle are closed, and the relay serves real tabs meanwhile', async () => {
    const room = `idle${Date.now()}`;
    const own = session.server.base.replace(/\/$/, '');
    const idle = Array.from({ length: 500 }, () => {
      const w = new WebSocket(`${session.server.base.replace('http', 'ws')}signal?room=${room}`, { origin: own });
      w.on('error', () => {});
      return w;
    });
    const { b, id } = await destination(room, 'idle-secret');
    const a = await source(room, 'idle-secret');
    await completes(a, b, id);
    const t0 = Date.now();
    while (idle.some((w) => w.readyState === WebSocket.OPEN || w.readyState === WebSocket.CONNECTING) && Date.now() - t0 < 60000) await sleep(500);
    const open_ = idle.filter((w) => w.readyState === WebSocket.OPEN).length;
    idle.forEach((w) => w.terminate());
    assert.equal(open_, 0, `${open_} of 500 idle sockets still open`);
  });

  it('a page of another origin cannot open the relay socket; the page of its own origin can', async () => {
    // The same server under another name is another origin.
    const other = await open('?S&relay=off', null, session.server.base.replace('127.0.0.1', 'localhost'));
    const result = await other.page.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve('open');
          ws.onclose = (e) => resolve(`closed ${e.code}`);
        }),
      `${session.server.base.replace('http', 'ws')}signal?room=foreign`,
    );
    assert.equal(result, 'closed 1006', 'refused before it opened');
    assert.match(session.server.log(), /socket refused: Origin http:\/\/localhost:\d+ is not this page's \(127\.0\.0\.1:\d+\)/);
    const mine = await open('?S&room=foreign');
    await mine.until('x-tabmig-pairing', (p) => p.relay === 'connected', 15000);
  });
});
