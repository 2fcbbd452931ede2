// Beyond one browser: tabs in browser contexts that share no BroadcastChannel (as two machines
// would) migrate through the preview server's relay, through copy-paste tokens, and through a
// real TURN server (Debian's coturn, on loopback) with relay-only ICE — pairing by tls-creds
// each time; a wrong secret is refused with QEMU's TLS wording and the destination keeps waiting.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { contextPerTab } from './session.mjs';

const FINAL = ['completed', 'failed', 'cancelled'];

describe('migration beyond one browser', () => {
  const session = contextPerTab();
  /** A tab in a browser context of its own: no BroadcastChannel, storage or certificate shared. */
  const open = (query) => session.open(query);

  async function runningSource(query, secret) {
    const a = await open(query);
    await a.ret('migrate-set-parameters', { 'tls-creds': secret });
    await a.ret('x-tabmig-load', { program: 'ab' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('B'), 10000);
    return a;
  }

  async function finishAndCompare(a, b) {
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 120000);
    assert.equal(info.status, 'completed', JSON.stringify(info).slice(0, 300));
    await b.until('query-status', (v) => v.status === 'paused' || v.status === 'running', 30000);
    assert.equal(await a.hash(), await b.hash(), 'RAM hashes equal');
    return info;
  }

  it('through the relay: paired peers migrate; a wrong secret is refused and the destination keeps waiting', async () => {
    const room = `r${Date.now()}`;
    const b = await open(`?incoming=defer&S&room=${room}`);
    await b.ret('migrate-set-parameters', { 'tls-creds': 'class-42-secret' });
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id } = await b.ret('x-tabmig-peer');
    assert.equal((await b.ret('x-tabmig-pairing')).relay, 'connected');

    const c = await runningSource(`?room=${room}`, 'a-wrong-secret');
    await c.ret('migrate', { uri: `webrtc:${id}` });
    const bad = await c.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
    assert.equal(bad.status, 'failed');
    assert.match(bad['error-desc'], /TLS handshake failed/);
    assert.equal((await c.ret('query-status')).status, 'running', 'the refused source runs on');
    assert.equal((await b.ret('x-tabmig-peer')).incoming, true, 'the destination keeps waiting');
    const log = await b.hmp('info migrate');
    void log;

    // Another room does not see the destination.
    const elsewhere = await open(`?room=${room}-other`);
    const miss = await elsewhere.qmp({ execute: 'migrate', arguments: { uri: `webrtc:${id}` } });
    if (!miss.error) {
      const st = await elsewhere.until('query-migrate', (v) => FINAL.includes(v.status), 30000);
      assert.match(st['error-desc'] ?? '', /no tab with that peer id/);
    }

    const a = await runningSource(`?room=${room}`, 'class-42-secret');
    await a.ret('migrate', { uri: `webrtc:${id}` });
    await finishAndCompare(a, b);
  });

  it('a tab a link opened as ?incoming=webrtc: takes nothing until its person agrees (or the code is given)', async () => {
    const b = await open('?incoming=webrtc:&S&relay=off');
    const tab = (q) => session.open(q, { context: b.context });
    const facts = await b.ret('x-tabmig-pairing');
    assert.equal(facts.agreed, false);
    const { id } = await b.ret('x-tabmig-peer');
    const a = await tab('?relay=off');
    await a.ret('x-tabmig-load', { program: 'ab' });
    await a.ret('cont');
    await a.ret('migrate', { uri: `webrtc:${id}` });
    const refused = await a.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
    assert.equal(refused.status, 'failed');
    assert.match(refused['error-desc'], /has not agreed to receive a migration/);
    // The pairing code it shows is enough; so is the Accept button (x-tabmig-consent).
    await a.ret('migrate-set-parameters', { 'tls-creds': facts.code });
    await a.ret('migrate', { uri: `webrtc:${id}` });
    await finishAndCompare(a, b);
    await b.context.close();
  });

  it('through copy-paste tokens, with no server in the middle', async () => {
    const b = await open('?incoming=defer&S&relay=off');
    await b.ret('migrate-set-parameters', { 'tls-creds': 'token-secret' });
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const a = await runningSource('?relay=off', 'token-secret');
    const { peer } = await a.ret('x-tabmig-token-peer');
    await a.ret('migrate', { uri: `webrtc:${peer}` });
    const offer = await pollToken(a);
    assert.match(offer, /^tabmig1\./);
    assert.equal((await b.ret('x-tabmig-token-paste', { token: offer })).kind, 'offer');
    const answer = await pollToken(b);
    assert.notEqual(answer, offer);
    assert.equal((await a.ret('x-tabmig-token-paste', { token: answer })).kind, 'answer');
    await finishAndCompare(a, b);
  });

  it('through a TURN server (coturn on loopback) with relay-only ICE', async (t) => {
    const turn = await startCoturn();
    if (!turn) return t.skip('coturn (turnserver) is not installed and could not be: apt-get install coturn');
    try {
      const room = `t${Date.now()}`;
      const ice = encodeURIComponent(`turn:tabmig:turnpass@127.0.0.1:${turn.port}?transport=udp,relay`);
      const b = await open(`?incoming=defer&S&room=${room}&ice=${ice}`);
      await b.ret('migrate-set-parameters', { 'tls-creds': 'turn-secret' });
      await b.ret('migrate-incoming', { uri: 'webrtc:' });
      const { id } = await b.ret('x-tabmig-peer');
      const a = await runningSource(`?room=${room}&ice=${ice}`, 'turn-secret');
      await a.ret('migrate', { uri: `webrtc:${id}` });
      await finishAndCompare(a, b);
      // Relay-only ICE leaves no other way: the peers' packets went through coturn's relays.
      assert.match(turn.log(), /ALLOCATE processed, success/, 'coturn allocated relays');
      assert.match(turn.log(), /(CHANNEL_BIND|CREATE_PERMISSION) processed, success/, 'coturn relayed between the peers');
    } finally {
      turn.stop();
    }
  });

});

async function pollToken(tab) {
  for (let i = 0; i < 100; i++) {
    const r = await tab.qmp({ execute: 'x-tabmig-token' });
    if (r.return) return r.return.token;
    await sleep(100);
  }
  throw new Error('no token came out');
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** coturn on 127.0.0.1 with a throwaway config and one long-term user; null if not installed. */
async function startCoturn() {
  if (spawnSync('sh', ['-c', 'command -v turnserver']).status !== 0) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tabmig-turn-'));
  const port = await freePort();
  const base = 40000 + (port % 20000);
  const conf = path.join(dir, 'turnserver.conf');
  writeFileSync(
    conf,
    [
      'listening-ip=127.0.0.1',
      'relay-ip=127.0.0.1',
      `listening-port=${port}`,
      `min-port=${base}`,
      `max-port=${base + 200}`,
      'lt-cred-mech',
      'user=tabmig:turnpass',
      'realm=tabmig.test',
      'fingerprint',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-tcp-relay',
      // Both peers are on this machine: their relayed addresses are loopback ones.
      'allow-loopback-peers',
      `userdb=${path.join(dir, 'turndb')}`,
      `pidfile=${path.join(dir, 'turnserver.pid')}`,
      'simple-log',
      'verbose',
    ].join('\n') + '\n',
  );
  const proc = spawn('turnserver', ['-c', conf, '--log-file=stdout'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  for (let i = 0; i < 50 && !/listener opened on|Total (UDP|General) servers/i.test(log); i++) await sleep(100);
  return {
    port,
    log: () => log,
    stop() {
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {}
    },
  };
}
