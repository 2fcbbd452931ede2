// The signaling relay's memory under abuse, measured in a process that runs only the relay (on a
// plain http.Server, as the Vite plugin attaches it), with clients in this process:
//   idle:  500 sockets that open and never join, from 500 loopback addresses (500 machines) and
//          from one; memory while they are held and after the join deadline;
//   flood: one joined member that stops reading while ten others send it as much as the relay
//          lets them (16 KiB messages at the message rate), for 15 s; the peak.
// `node bench/relay-memory.mjs [REV]` also measures the relay as it was at git revision REV.
// Prints JSON; figures are after a forced GC (node --expose-gc), RSS and heap and external
// (ws buffers are external memory) in MB.
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(here), '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MB = (n) => +(n / 1e6).toFixed(1);

if (process.argv[2] === '--host') {
  // The child: the relay alone, answering 'mem' with its process's memory after a GC.
  const { createSignalRelay } = await import(process.argv[3]);
  const relay = createSignalRelay({});
  const server = http.createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head) || socket.destroy());
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m !== 'mem') return;
    globalThis.gc?.();
    globalThis.gc?.();
    const u = process.memoryUsage();
    process.send({ rss: MB(u.rss), heap: MB(u.heapUsed), external: MB(u.external + u.arrayBuffers), stats: relay.stats?.() ?? null });
  });
} else {
  const { build } = await import('vite');
  const WebSocket = (await import('ws')).default;

  /** Bundles server/signal-relay.ts of the work tree (rev null) or of a git revision into an ES module. */
  async function bundle(rev) {
    let src = root;
    if (rev) {
      src = mkdtempSync(path.join(os.tmpdir(), 'relay-rev-'));
      execFileSync('sh', ['-c', `git -C "${root}" archive ${rev} server src/transport | tar -x -C "${src}"`]);
    }
    const out = path.join(root, 'node_modules', '.cache', 'relay-bench', rev ?? 'worktree');
    mkdirSync(out, { recursive: true });
    await build({
      configFile: false,
      logLevel: 'error',
      root: src,
      build: { ssr: path.join(src, 'server/signal-relay.ts'), outDir: out, emptyOutDir: true, minify: false, rollupOptions: { external: ['ws', 'vite'], output: { entryFileNames: 'relay.mjs' } } },
    });
    if (rev) rmSync(src, { recursive: true, force: true });
    return path.join(out, 'relay.mjs');
  }

  async function host(bundlePath) {
    const child = fork(here, ['--host', bundlePath], { execArgv: ['--expose-gc'] });
    const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
    const mem = () =>
      new Promise((r) => {
        child.once('message', r);
        child.send('mem');
      });
    return { port, mem, stop: () => child.kill() };
  }

  function socket(port, room, address) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/signal?room=${room}`, { origin: `http://127.0.0.1:${port}`, localAddress: address });
    ws.on('error', () => {});
    return ws;
  }
  const openOrRefused = (ws) => new Promise((r) => (ws.readyState !== WebSocket.CONNECTING ? r() : (ws.once('open', r), ws.once('close', r), ws.once('error', r))));
  const presence = (id) => ({ id, name: id, incoming: false, incomingFrom: null, instance: id, since: 1, fp: '' });
  async function member(port, room, id, address) {
    const ws = socket(port, room, address);
    await openOrRefused(ws);
    ws.send(JSON.stringify({ t: 'join', v: 1, peer: presence(id) }));
    await new Promise((r) => ws.once('message', r));
    return ws;
  }

  async function idle(bundlePath, addresses) {
    const h = await host(bundlePath);
    await sleep(500);
    const before = await h.mem();
    const socks = Array.from({ length: 500 }, (_, i) => socket(h.port, 'idle', addresses(i)));
    await Promise.all(socks.map(openOrRefused));
    await sleep(3000);
    const held = await h.mem();
    const openHeld = socks.filter((w) => w.readyState === WebSocket.OPEN).length;
    await sleep(9000); // past the default join deadline (10 s from opening)
    const after = await h.mem();
    const openAfter = socks.filter((w) => w.readyState === WebSocket.OPEN).length;
    socks.forEach((w) => w.terminate());
    h.stop();
    return { before, held: { ...held, open: openHeld }, after_12s: { ...after, open: openAfter } };
  }

  async function flood(bundlePath) {
    const h = await host(bundlePath);
    await sleep(500);
    const before = await h.mem();
    const reader = await member(h.port, 'flood', 'slow-reader', '127.0.9.1');
    reader._socket.pause();
    const senders = [];
    for (let i = 0; i < 10; i++) senders.push(await member(h.port, 'flood', `sender${i}x`, `127.0.9.${2 + i}`));
    const data = 'x'.repeat(15 * 1024);
    const msg = JSON.stringify({ t: 'to', to: 'slow-reader', msg: { from: 'x', conn: 'c', kind: 'signal', data } });
    // 40 messages a second each: the default message rate, all of it let through.
    const timer = setInterval(() => senders.forEach((s) => s.readyState === WebSocket.OPEN && [0, 1, 2, 3].forEach(() => s.send(msg))), 100);
    let peak = before;
    const samples = [];
    for (let t = 0; t < 15; t++) {
      await sleep(1000);
      const m = await h.mem();
      samples.push(m.rss);
      if (m.rss > peak.rss) peak = m;
    }
    clearInterval(timer);
    const end = await h.mem();
    [reader, ...senders].forEach((w) => w.terminate());
    h.stop();
    return { before, peak, end, rss_each_second: samples, reader_still_member: (end.stats?.members ?? 11) === 11 };
  }

  const rev = process.argv[2];
  const targets = [['worktree', await bundle(null)], ...(rev ? [[rev, await bundle(rev)]] : [])];
  const out = { date: new Date().toISOString(), node: process.version, loadavg: os.loadavg().map((x) => +x.toFixed(2)) };
  for (const [name, b] of targets) {
    out[name] = {
      idle_500_addresses: await idle(b, (i) => `127.1.${Math.floor(i / 250)}.${1 + (i % 250)}`),
      idle_one_address: await idle(b, () => '127.1.9.9'),
      flood_non_reader: await flood(b),
    };
  }
  console.log(JSON.stringify(out, null, 1));
}
