// A hostile page of the same origin attacks a real migration between two tabs while it runs: it
// listens to the BroadcastChannel to learn the connection, forges byes, rejects and answers for
// it, claims the destination's peer id, floods the destination with offers and junk. The
// migration completes with equal RAM, and a source that tries to inject without the
// destination's tls-creds is refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { sharedBrowser } from './session.mjs';

const FINAL = ['completed', 'failed', 'cancelled'];

describe('a hostile tab during a migration', () => {
  const session = sharedBrowser();

  it('forged bye/reject/answer, id takeover and floods do not stop a migration in progress', async () => {
    const b = await session.browser.open('?m=64M&incoming=defer&S&relay=off');
    await b.ret('migrate-set-parameters', { 'tls-creds': 'lab-secret' });
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id: idB } = await b.ret('x-tabmig-peer');
    const a = await session.browser.open('?m=64M&S&relay=off');
    const { id: idA } = await a.ret('x-tabmig-peer');
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=24M rate=64K mode=random' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);

    // The hostile page: another tab of the same origin, with the raw BroadcastChannel.
    const evil = await session.browser.open('?S&relay=off');
    // First it tries to inject its own guest: no tls-creds, then a guess.
    await evil.ret('x-tabmig-load', { program: 'ab' });
    for (const guess of ['', 'lab-secrut']) {
      await evil.ret('migrate-set-parameters', { 'tls-creds': guess });
      await evil.ret('migrate', { uri: `webrtc:${idB}` });
      const r = await evil.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
      assert.equal(r.status, 'failed');
      assert.match(r['error-desc'], /TLS handshake failed/);
    }
    const peers = await evil.ret('x-tabmig-peers');
    const instanceOf = (id) => peers.find((p) => p.id === id)?.instance;
    await evil.page.evaluate(
      ({ idA, idB, instA, instB }) => {
        const bc = new BroadcastChannel('tabmig-signaling');
        const APP = { app: 'tabmig', v: 1 };
        const conns = new Set();
        bc.onmessage = (e) => {
          const m = e.data;
          if (m?.type === 'relay' && m.msg?.conn) conns.add(m.msg.conn);
        };
        const attack = () => {
          for (const [who, to, inst] of [
            [idA, idB, instA],
            [idB, idA, instB],
          ]) {
            bc.postMessage({ ...APP, type: 'bye', from: who, instance: inst, leave: 'guess' });
            for (const conn of conns) {
              bc.postMessage({ ...APP, type: 'relay', from: who, to, msg: { from: who, conn, kind: 'reject', reason: 'forged' } });
              bc.postMessage({ ...APP, type: 'relay', from: who, to, msg: { from: who, conn, kind: 'signal', data: { type: 'answer', sdp: 'v=0\r\n' } } });
            }
          }
          bc.postMessage({ ...APP, type: 'announce', peer: { id: idB, name: 'evil', incoming: true, incomingFrom: null, instance: 'evil', since: 0, fp: 'AA' } });
          for (let i = 0; i < 50; i++) {
            const from = `evil${Math.random().toString(36).slice(2, 8)}`;
            bc.postMessage({ ...APP, type: 'relay', from, to: idB, msg: { from, conn: `x${i}`, kind: 'signal', data: { type: 'offer', sdp: 'v=0\r\n' } } });
          }
          bc.postMessage({ ...APP, type: 'relay', from: 'x', to: idB, msg: 42 });
          bc.postMessage('junk');
        };
        window.__attack = setInterval(attack, 50);
      },
      { idA, idB, instA: instanceOf(idA), instB: instanceOf(idB) },
    );

    await a.ret('migrate-set-parameters', { 'tls-creds': 'lab-secret', 'max-bandwidth': 8 << 20 });
    await a.ret('migrate', { uri: `webrtc:${idB}` });
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 180000);
    await evil.page.evaluate(() => clearInterval(window.__attack));
    assert.equal(info.status, 'completed', JSON.stringify(info).slice(0, 300));
    assert.ok(info['total-time'] > 1000, `the attack overlapped the migration (${info['total-time']} ms)`);
    await b.until('query-status', (v) => v.status === 'paused', 30000);
    assert.equal(await a.hash(), await b.hash(), 'RAM hashes equal');
    assert.equal((await b.ret('x-tabmig-peer')).id, idB, 'B kept its id');
    const log = await b.page.evaluate(() => document.querySelector('tm-app')?.migration?.log?.map((l) => l.text) ?? []);
    assert.ok(log.some((l) => /TLS handshake failed/.test(l)), 'the refused injections are in the event log');
    assert.ok(log.some((l) => /dropped|ignored/.test(l)), 'the forgeries are noted in the event log');
    await sleep(10);
  });
});
