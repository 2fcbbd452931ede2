// Drives the project's page through window.qmp in real headless Chromium tabs.
// Usage: node drive.mjs SCENARIO   (run from the project's checkout)
// Prints JSON lines of figures; the last line is a one-line verdict. Exit 0 = holds.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

// playwright-core from the project's node_modules, else from beside this file
function load(name) {
  for (const from of [path.join(process.cwd(), 'x.js'), import.meta.url]) {
    try { return createRequire(from)(name); } catch {}
  }
  throw new Error(`${name} is not installed (npm install it in the project)`);
}
const { chromium } = load('playwright-core');

const scenario = process.argv[2] ?? 'foundation';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
function fail(msg) { console.log(`FAIL ${scenario}: ${msg}`); process.exit(1); }

const port = await freePort();
const server = spawn('npx', ['vite', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
let serverLog = ''; server.stdout.on('data', (d) => (serverLog += d)); server.stderr.on('data', (d) => (serverLog += d));
const stopServer = () => { try { process.kill(-server.pid, 'SIGTERM'); } catch {} };
process.on('exit', stopServer);
const base = `http://127.0.0.1:${port}/`;
for (let i = 0; ; i++) { try { const r = await fetch(base); if (r.ok) break; } catch {} if (i > 120) fail('dev server did not answer: ' + serverLog.slice(-300)); await sleep(500); }

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const ctx = await browser.newContext({ acceptDownloads: true });
const errors = [];
async function open(query = '', context = ctx) {
  const p = await context.newPage();
  p.on('pageerror', (e) => errors.push(e.message));
  await p.goto(base + query);
  await p.waitForFunction(() => typeof window.qmp === 'function', null, { timeout: 30000 }).catch(() => fail('window.qmp never appeared at ' + query));
  return p;
}
const qmp = (p, cmd) => p.evaluate((c) => window.qmp(c), cmd);
async function ret(p, execute, args) { const r = await qmp(p, args ? { execute, arguments: args } : { execute }); if (r.error) fail(`${execute}: ${JSON.stringify(r.error)}`); return r.return; }
async function peerId(p) { const r = await qmp(p, { execute: 'x-tabmig-peer' }); if (r.return) return r.return.id ?? r.return.name; const n = await ret(p, 'query-name'); return n.name; }
async function until(p, execute, pred, ms) { const t = Date.now(); for (;;) { const v = await ret(p, execute); if (pred(v)) return v; if (Date.now() - t > ms) fail(`${execute} stuck at ${JSON.stringify(v).slice(0, 300)}`); await sleep(200); } }
const hash = async (p) => (await ret(p, 'x-tabmig-ram-hash')).hash;

// Raw tab-to-tab data-channel MB/s between two open pages: the wire's ceiling, same browser, same run.
async function rawTabToTab(pa, pb, total = 128 << 20, msg = 64 << 10) {
  const chan = 'raw-' + Math.random().toString(36).slice(2);
  const side = (role, { chan, total, msg }) => new Promise((resolve) => {
    const bc = new BroadcastChannel(chan); const pc = new RTCPeerConnection();
    pc.onicecandidate = (e) => e.candidate && bc.postMessage({ role, cand: e.candidate.toJSON() });
    const dc = pc.createDataChannel('raw', { negotiated: true, id: 0 }); dc.binaryType = 'arraybuffer';
    let got = 0, t0 = 0;
    dc.onmessage = (e) => { if (!t0) t0 = performance.now(); got += e.data.byteLength; if (got >= total) { bc.postMessage({ role, done: true }); pc.close(); resolve(0); } };
    bc.onmessage = async ({ data }) => {
      if (data.role === role) return;
      if (data.sdp) { await pc.setRemoteDescription(data.sdp); if (data.sdp.type === 'offer') { await pc.setLocalDescription(); bc.postMessage({ role, sdp: pc.localDescription.toJSON() }); } }
      if (data.cand) await pc.addIceCandidate(data.cand).catch(() => {});
      if (data.done) { const mbs = total / 1e6 / ((performance.now() - window.__rawT0) / 1000); pc.close(); resolve(mbs); }
      if (data.ready && role === 'a') { await pc.setLocalDescription(); bc.postMessage({ role, sdp: pc.localDescription.toJSON() }); }
    };
    dc.onopen = async () => { if (role !== 'a') return; const buf = new Uint8Array(msg); let sent = 0; dc.bufferedAmountLowThreshold = 1 << 20; window.__rawT0 = performance.now();
      while (sent < total) { if (dc.bufferedAmount > 4 << 20) await new Promise((r) => (dc.onbufferedamountlow = r)); dc.send(buf); sent += buf.length; } };
    if (role === 'b') setTimeout(() => bc.postMessage({ role, ready: true }), 100);
  });
  const [mbs] = await Promise.all([pa.evaluate(side.toString().replace(/^/, '(') + ')("a", ' + JSON.stringify({ chan, total, msg }) + ')'), pb.evaluate(side.toString().replace(/^/, '(') + ')("b", ' + JSON.stringify({ chan, total, msg }) + ')')]);
  return mbs;
}

const RAM_BASE = 0x8000_0000, PAGE = 4096;
const status = async (p) => (await ret(p, 'query-status')).status;
const caps = (list) => ({ capabilities: Object.entries(list).map(([capability, state]) => ({ capability, state })) });
const FINAL = ['completed', 'failed', 'cancelled'];
// The a-b invariant (QEMU migration-test): walking the range upwards, first bytes read N…N then N-1…N-1 (mod 256).
async function abCheck(p, size) {
  const start = RAM_BASE + 0x10_0000;
  const bytes = await p.evaluate(async ({ start, size, PAGE }) => {
    const out = [];
    for (let a = start; a < start + size; a += PAGE) {
      const r = await window.qmp({ execute: 'human-monitor-command', arguments: { 'command-line': `xp /1xb 0x${a.toString(16)}` } });
      const m = /:\s*0x([0-9a-f]+)/i.exec(r.return ?? '');
      out.push(m ? parseInt(m[1], 16) : -1);
    }
    return out;
  }, { start, size, PAGE });
  if (bytes.includes(-1)) return 'xp did not answer with a byte';
  let drops = 0;
  for (let i = 1; i < bytes.length; i++) {
    if (bytes[i] === bytes[i - 1]) continue;
    if (bytes[i] === ((bytes[i - 1] - 1) & 255) && ++drops === 1) continue;
    return `page ${i} (0x${(start + i * PAGE).toString(16)}) holds ${bytes[i]} after ${bytes[i - 1]}: a lost or stale page`;
  }
  return null;
}
async function waitingDest(query) { const b = await open(query); await ret(b, 'migrate-incoming', { uri: 'webrtc:' }); return { b, id: await peerId(b) }; }
async function progress(p, ms = 1000) { const g1 = await ret(p, 'x-tabmig-guest-info'); await sleep(ms); const g2 = await ret(p, 'x-tabmig-guest-info'); return g2.instructions > g1.instructions; }
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

try {
  if (scenario === 'raw') {
    const a = await open(''), b = await open('?S');
    const msg = (+(process.env.RAW_MSG_KIB ?? 64)) << 10;
    const mbs = await rawTabToTab(a, b, 128 << 20, msg);
    console.log(JSON.stringify({ raw_tab_to_tab_mbs: +mbs.toFixed(1), msg_kib: msg >> 10 }));
    console.log(`OK raw ${mbs.toFixed(1)} MB/s`);
  } else if (scenario === 'foundation') {
    const a = await open('');
    if (!(await a.evaluate(() => crossOriginIsolated))) fail('page not cross-origin isolated');
    await ret(a, 'x-tabmig-load', { program: 'stress' });
    await ret(a, 'cont').catch(() => {});
    const st = await ret(a, 'query-status'); if (st.status !== 'running') fail('status ' + st.status);
    const h1 = await hash(a); await sleep(500); const h2 = await hash(a); if (h1 === h2) fail('RAM does not change while stress runs');
    await ret(a, 'stop'); const s1 = await hash(a); await sleep(500); const s2 = await hash(a); if (s1 !== s2) fail('RAM changes while stopped');
    await ret(a, 'x-tabmig-load', { program: 'ab' }); await ret(a, 'cont').catch(() => {});
    const g1 = await ret(a, 'x-tabmig-guest-info'); await sleep(1000); const g2 = await ret(a, 'x-tabmig-guest-info');
    if (!(g2.instructions > g1.instructions)) fail('instructions do not advance');
    console.log(JSON.stringify({ mips: (g2.instructions - g1.instructions) / 1e6 }));
    console.log('OK foundation');
  } else if (scenario === 'precopy') {
    const b = await open('?incoming=defer&S');
    await ret(b, 'migrate-incoming', { uri: 'webrtc:' });
    const idB = await peerId(b);
    const a = await open('');
    await ret(a, 'migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }, { capability: 'return-path', state: true }] });
    await ret(a, 'x-tabmig-load', { program: 'ab' }); await ret(a, 'cont').catch(() => {});
    await sleep(500);
    await ret(a, 'migrate', { uri: 'webrtc:' + idB });
    const info = await until(a, 'query-migrate', (v) => ['completed', 'failed', 'cancelled'].includes(v.status), 180000);
    if (info.status !== 'completed') fail('source ended ' + JSON.stringify(info));
    const sa = await ret(a, 'query-status'); if (sa.status !== 'postmigrate') fail('source runstate ' + sa.status);
    await until(b, 'query-status', (v) => v.status === 'paused' || v.status === 'running', 30000);
    const ha = await hash(a), hb = await hash(b);
    if (ha !== hb) fail(`RAM differs: ${ha} vs ${hb}`);
    await ret(b, 'cont'); const g1 = await ret(b, 'x-tabmig-guest-info'); await sleep(1000); const g2 = await ret(b, 'x-tabmig-guest-info');
    if (!(g2.instructions > g1.instructions)) fail('guest does not run on destination');
    console.log(JSON.stringify({ total_time: info['total-time'], downtime: info.downtime, setup_time: info['setup-time'], mbps: info.ram?.mbps, transferred: info.ram?.transferred, duplicate: info.ram?.duplicate, normal: info.ram?.normal }));
    console.log(`OK precopy total ${info['total-time']} ms downtime ${info.downtime} ms`);
  } else if (scenario === 'file') {
    const a = await open('');
    await ret(a, 'x-tabmig-load', { program: 'ab', ...(process.env.FILE_ARGS ? { args: process.env.FILE_ARGS } : {}) }); await ret(a, 'cont').catch(() => {}); await sleep(500);
    if (process.env.FILE_CAPS) await ret(a, 'migrate-set-capabilities', caps(Object.fromEntries(process.env.FILE_CAPS.split(',').map((c) => [c, true]))));
    const dl = a.waitForEvent('download', { timeout: 120000 });
    await ret(a, 'migrate', { uri: 'file:snap.qemu' });
    const d = await dl; const out = process.env.OUT_FILE ?? 'snap.qemu'; await d.saveAs(out);
    await until(a, 'query-migrate', (v) => ['completed', 'failed'].includes(v.status), 120000);
    console.log(JSON.stringify({ file: out, hash: await hash(a) }));
    console.log('OK file ' + out);
  } else if (scenario === 'throughput') {
    // Incompressible RAM: migration payload MB/s against the raw channel at the same 256 KiB messages, same run.
    const { b, id } = await waitingDest('?m=128M&incoming=defer&S');
    const a = await open('?m=128M&S');
    const raw1 = await rawTabToTab(a, b, 96 << 20, 256 << 10);
    await ret(a, 'x-tabmig-load', { program: 'stress', args: 'wss=1G rate=64K mode=random' }); await ret(a, 'cont');
    await until(a, 'x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 180000); await sleep(500);
    await ret(a, 'migrate', { uri: 'webrtc:' + id });
    const info = await until(a, 'query-migrate', (v) => FINAL.includes(v.status), 600000);
    if (info.status !== 'completed') fail('ended ' + info.status);
    if ((await hash(a)) !== (await hash(b))) fail('RAM differs');
    const raw2 = await rawTabToTab(a, b, 96 << 20, 256 << 10);
    const mbs = info.ram.transferred / 1e6 / ((info['total-time'] - (info['setup-time'] ?? 0)) / 1000), raw = (raw1 + raw2) / 2, ratio = mbs / raw;
    console.log(JSON.stringify({ migration_mbs: +mbs.toFixed(2), raw_mbs: +raw.toFixed(2), raw_before: +raw1.toFixed(2), raw_after: +raw2.toFixed(2), ratio: +ratio.toFixed(3) }));
    if (ratio < 0.95) fail(`incompressible migration at ${ratio.toFixed(2)} x the raw channel (goal 0.95)`);
    console.log(`OK throughput ${ratio.toFixed(2)} x raw`);
  } else if (scenario === 'relay') {
    // Two browser contexts share no BroadcastChannel: they meet through the dev server's relay, and pair by secret.
    const ctxB = await browser.newContext(), ctxC = await browser.newContext();
    const b = await open('?incoming=defer&S', ctxB);
    await ret(b, 'migrate-set-parameters', { 'tls-creds': 'class-42-secret' });
    await ret(b, 'migrate-incoming', { uri: 'webrtc:' }); const idB = await peerId(b);
    const c = await open('?S', ctxC);
    await ret(c, 'migrate-set-parameters', { 'tls-creds': 'a-wrong-secret' });
    await ret(c, 'x-tabmig-load', { program: 'ab' }); await ret(c, 'cont'); await sleep(300);
    await ret(c, 'migrate', { uri: 'webrtc:' + idB });
    const bad = await until(c, 'query-migrate', (v) => FINAL.includes(v.status), 60000);
    if (bad.status === 'completed') fail('a peer with the wrong secret migrated in');
    if ((await status(c)) !== 'running') fail('the refused source did not keep running');
    const a = await open('?S');
    await ret(a, 'migrate-set-parameters', { 'tls-creds': 'class-42-secret' });
    await ret(a, 'x-tabmig-load', { program: 'ab' }); await ret(a, 'cont'); await sleep(500);
    await ret(a, 'migrate', { uri: 'webrtc:' + idB });
    const info = await until(a, 'query-migrate', (v) => FINAL.includes(v.status), 120000);
    if (info.status !== 'completed') fail('paired migration ended ' + JSON.stringify(info).slice(0, 300));
    await until(b, 'query-status', (v) => v.status === 'paused' || v.status === 'running', 30000);
    if ((await hash(a)) !== (await hash(b))) fail('RAM differs after the relayed migration');
    console.log(JSON.stringify({ refused_with: bad['error-desc'] ?? bad.status, total_time: info['total-time'], downtime: info.downtime }));
    console.log('OK relay: paired peers migrate across contexts; a wrong secret is refused');
  } else if (scenario === 'memory-map') {
    // During a migration both tabs show <tm-memory-map>, and its canvas changes as pages move.
    const grab = (p) => p.evaluate(() => {
      const find = (root) => { for (const el of root.querySelectorAll('*')) { if (el.tagName === 'TM-MEMORY-MAP') return el; if (el.shadowRoot) { const r = find(el.shadowRoot); if (r) return r; } } return null; };
      const m = find(document); if (!m) return null;
      const c = (m.shadowRoot ?? m).querySelector('canvas'); return c ? c.toDataURL() : 'no-canvas';
    });
    const { b, id } = await waitingDest('?m=64M&incoming=defer&S');
    const a = await open('?m=64M&S');
    await ret(a, 'x-tabmig-load', { program: 'stress', args: 'wss=40M rate=64K mode=random' }); await ret(a, 'cont');
    await until(a, 'x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);
    await ret(a, 'migrate-set-parameters', { 'max-bandwidth': 8 << 20 });
    await ret(a, 'migrate', { uri: 'webrtc:' + id });
    const seenA = new Set(), seenB = new Set();
    for (const t = Date.now(); Date.now() - t < 60000; await sleep(250)) {
      const [ia, ib] = [await grab(a), await grab(b)];
      if (ia === null || ib === null) fail(`no <tm-memory-map> on the ${ia === null ? 'source' : 'destination'} tab`);
      if (ia === 'no-canvas' || ib === 'no-canvas') fail('<tm-memory-map> has no canvas');
      seenA.add(ia); seenB.add(ib);
      if (FINAL.includes((await ret(a, 'query-migrate')).status)) break;
    }
    console.log(JSON.stringify({ distinct_frames_source: seenA.size, distinct_frames_destination: seenB.size }));
    if (seenA.size < 3 || seenB.size < 3) fail(`the memory map barely moved (${seenA.size} / ${seenB.size} distinct frames)`);
    console.log('OK memory-map: both tabs draw the pages moving');
  } else if (scenario === 'dtdebug') {
    const limit = +(process.env.LIMIT ?? 50), runs = +(process.env.RUNS ?? 3);
    for (let i = 0; i < runs; i++) {
      const { b, id } = await waitingDest('?m=64M&incoming=defer');
      const a = await open('?m=64M&S');
      a.on('console', (m) => { if (m.text().includes('DBG')) console.log(m.text()); });
      await ret(a, 'x-tabmig-load', { program: 'stress', args: 'wss=16M rate=2M mode=random' }); await ret(a, 'cont');
      await until(a, 'x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000); await sleep(1500);
      await ret(a, 'migrate-set-parameters', { 'downtime-limit': limit });
      const before = (await ret(a, 'x-tabmig-guest-info')).serial.length;
      await ret(a, 'migrate', { uri: 'webrtc:' + id });
      const info = await until(a, 'query-migrate', (v) => FINAL.includes(v.status), 120000);
      const g = await until(b, 'x-tabmig-guest-info', (x) => /clock jumped (\d+) ms/.test(x.serial), 30000);
      const ga = await ret(a, 'x-tabmig-guest-info');
      const rounds = await ret(a, 'x-tabmig-rounds').catch(() => null);
      const logA = await a.evaluate(() => (window.__tabmigLog ?? []).slice(-0));
      console.log(JSON.stringify({ downtime: info.downtime, jumpsB: [...g.serial.matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]), jumpsAduring: [...ga.serial.slice(before).matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]) }));
      console.log(JSON.stringify((rounds?.rounds ?? []).slice(-3)));
      await a.close(); await b.close();
    }
    console.log('OK dtdebug');
  } else if (scenario === 'downtime') {
    // Guest-seen downtime against downtime-limit: stress dirtying 2 MB/s of incompressible data.
    const limit = +(process.env.LIMIT ?? 50), runs = +(process.env.RUNS ?? 5);
    const seen = [], reported = [];
    for (let i = 0; i < runs; i++) {
      const { b, id } = await waitingDest('?m=64M&incoming=defer');
      const a = await open('?m=64M&S');
      await ret(a, 'x-tabmig-load', { program: 'stress', args: 'wss=16M rate=2M mode=random' }); await ret(a, 'cont');
      await until(a, 'x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000); await sleep(1500);
      await ret(a, 'migrate-set-parameters', { 'downtime-limit': limit });
      await ret(a, 'migrate', { uri: 'webrtc:' + id });
      const info = await until(a, 'query-migrate', (v) => FINAL.includes(v.status), 120000);
      if (info.status !== 'completed') fail('run ' + i + ' ended ' + info.status);
      const g = await until(b, 'x-tabmig-guest-info', (x) => /clock jumped (\d+) ms/.test(x.serial), 30000);
      seen.push(Math.max(...[...g.serial.matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]))); reported.push(info.downtime);
      await a.close(); await b.close();
    }
    const p95 = pct(seen, 0.95);
    console.log(JSON.stringify({ limit, guest_seen_ms: seen, reported_ms: reported, guest_seen_p95: p95 }));
    if (p95 > limit) fail(`guest-seen downtime p95 ${p95} ms > downtime-limit ${limit} ms (runs ${seen.join(',')})`);
    console.log(`OK downtime p95 ${p95} ms <= limit ${limit} ms`);
  } else if (scenario === 'postcopy' || scenario === 'recovery') {
    // Postcopy of an a-b guest whose 64 MiB range precopy cannot converge; with recovery, the link is broken and mended mid-postcopy.
    const size = 64 << 20;
    const b = await open('?m=128M&incoming=defer');
    await ret(b, 'migrate-set-capabilities', caps({ 'postcopy-ram': true, events: true }));
    await ret(b, 'migrate-incoming', { uri: 'webrtc:' }); const idB = await peerId(b);
    const a = await open('?m=128M&S');
    await ret(a, 'migrate-set-capabilities', caps({ 'postcopy-ram': true, 'return-path': true, events: true }));
    if (scenario === 'recovery') await ret(a, 'migrate-set-parameters', { 'max-postcopy-bandwidth': 4 << 20 });
    await ret(a, 'x-tabmig-load', { program: 'ab', args: 'size=64M' }); await ret(a, 'cont'); await sleep(500);
    await ret(a, 'migrate', { uri: 'webrtc:' + idB });
    await until(a, 'query-migrate', (v) => v.status === 'active', 30000); await sleep(1500);
    await ret(a, 'migrate-start-postcopy');
    await until(a, 'query-migrate', (v) => v.status !== 'active', 30000);
    let ranDuring = false;
    for (let t = Date.now(); Date.now() - t < 10000; await sleep(100)) {
      const [sa, sb] = [(await ret(a, 'query-migrate')).status, await status(b)];
      if (sa === 'postcopy-active' && sb === 'running') { ranDuring = true; break; }
      if (FINAL.includes(sa)) break;
    }
    if (scenario === 'recovery') {
      await ret(a, 'migrate-pause');
      await until(a, 'query-migrate', (v) => v.status === 'postcopy-paused', 30000);
      await until(b, 'query-migrate', (v) => v.status === 'postcopy-paused', 30000);
      if (await status(a) === 'running') fail('source guest runs while postcopy is paused');
      await ret(b, 'migrate-recover', { uri: 'webrtc:' });
      await ret(a, 'migrate', { uri: 'webrtc:' + idB, resume: true });
      await ret(a, 'migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
    }
    const info = await until(a, 'query-migrate', (v) => FINAL.includes(v.status), 300000);
    if (info.status !== 'completed') fail('source ended ' + JSON.stringify(info).slice(0, 300));
    if (!ranDuring) fail('the destination guest never ran while the source was postcopy-active');
    if (!(info.ram['postcopy-requests'] > 0)) fail('postcopy-requests is ' + info.ram['postcopy-requests']);
    if (!(await progress(b))) fail('destination guest does not run');
    await ret(b, 'stop'); const bad = await abCheck(b, size); if (bad) fail(bad);
    console.log(JSON.stringify({ total_time: info['total-time'], downtime: info.downtime, postcopy_requests: info.ram['postcopy-requests'], blocktime: (await ret(b, 'query-migrate'))['postcopy-blocktime'] ?? null }));
    console.log(`OK ${scenario}: a-b invariant holds, ${info.ram['postcopy-requests']} page requests`);
  } else if (['xbzrle', 'autoconverge', 'multifd', 'compress'].includes(scenario)) {
    // Each reducer on a workload it exists for; the destination starts -S so RAM hashes compare exactly.
    const setup = {
      xbzrle: { prog: 'ab', args: 'size=32M', src: { xbzrle: true }, dst: {}, params: { 'xbzrle-cache-size': 64 << 20 } },
      autoconverge: { prog: 'stress', args: 'wss=16M rate=0 mode=pattern', src: { 'auto-converge': true }, dst: {}, params: { 'cpu-throttle-initial': 50, 'cpu-throttle-increment': 20 } },
      multifd: { prog: 'stress', args: 'wss=32M rate=64K mode=random', src: { 'x-multifd': true }, dst: { 'x-multifd': true }, params: { 'x-multifd-channels': 4 } },
      compress: { prog: 'stress', args: 'wss=32M rate=64K mode=pattern', src: { compress: true }, dst: { compress: true }, params: { 'compress-threads': 2 } },
    }[scenario];
    const b = await open('?m=64M&incoming=defer&S');
    if (Object.keys(setup.dst).length) await ret(b, 'migrate-set-capabilities', caps(setup.dst));
    if (scenario === 'multifd') await ret(b, 'migrate-set-parameters', { 'x-multifd-channels': 4 });
    await ret(b, 'migrate-incoming', { uri: 'webrtc:' }); const idB = await peerId(b);
    const a = await open('?m=64M&S');
    await ret(a, 'migrate-set-capabilities', caps({ ...setup.src, 'return-path': true }));
    await ret(a, 'migrate-set-parameters', setup.params);
    await ret(a, 'x-tabmig-load', { program: setup.prog, args: setup.args }); await ret(a, 'cont');
    if (setup.prog === 'stress') await until(a, 'x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);
    await sleep(1000);
    await ret(a, 'migrate', { uri: 'webrtc:' + idB });
    let maxThrottle = 0, info;
    for (const t = Date.now(); ; await sleep(200)) {
      info = await ret(a, 'query-migrate');
      maxThrottle = Math.max(maxThrottle, info['cpu-throttle-percentage'] ?? 0);
      if (FINAL.includes(info.status)) break;
      if (Date.now() - t > 240000) fail(`not completed after 240 s: ${JSON.stringify(info).slice(0, 300)}`);
    }
    if (info.status !== 'completed') fail('ended ' + JSON.stringify(info).slice(0, 300));
    const ha = await hash(a), hb = await hash(b); if (ha !== hb) fail(`RAM differs: ${ha} vs ${hb}`);
    const fig = { total_time: info['total-time'], downtime: info.downtime, transferred: info.ram.transferred, normal_bytes: info.ram['normal-bytes'], rounds: info.ram['dirty-sync-count'] };
    if (scenario === 'xbzrle') { const x = info['xbzrle-cache'] ?? {}; Object.assign(fig, { xbzrle_pages: x.pages, xbzrle_bytes: x.bytes, cache_miss_rate: x['cache-miss-rate'], overflow: x.overflow }); if (!(x.pages > 0)) fail('no page went as XBZRLE: ' + JSON.stringify(x)); }
    if (scenario === 'autoconverge') { fig.max_throttle = maxThrottle; if (!(maxThrottle > 0)) fail('cpu-throttle-percentage never rose'); }
    if (scenario === 'multifd') { fig.multifd_bytes = info.ram['multifd-bytes']; if (!(info.ram['multifd-bytes'] > 0)) fail('multifd-bytes is 0'); }
    if (scenario === 'compress') { fig.compression = info.compression ?? null; if (!(info.ram.transferred < 0.5 * (32 << 20))) fail(`compressible 32 MiB sent as ${info.ram.transferred} bytes`); }
    console.log(JSON.stringify(fig));
    console.log(`OK ${scenario}: completed in ${info['total-time']} ms, RAM hashes equal`);

  } else if (scenario === 'scale') {
    // How an idle guest's migration grows with RAM size (the demo guest; most pages zero).
    const rows = [];
    for (const m of (process.env.SIZES ?? '64M,256M,1G').split(',')) {
      const { b, id } = await waitingDest(`?m=${m}&incoming=defer&S`);
      const a = await open(`?m=${m}`); await sleep(1500);
      await ret(a, 'migrate', { uri: 'webrtc:' + id });
      const info = await until(a, 'query-migrate', (v) => FINAL.includes(v.status), 300000);
      if (info.status !== 'completed') fail(`${m}: ${info.status}`);
      rows.push({ m, total_ms: info['total-time'], downtime_ms: info.downtime, transferred: info.ram.transferred, zero_pages: info.ram.duplicate });
      await a.close(); await b.close();
    }
    console.log(JSON.stringify(rows));
    console.log('OK scale');
  } else fail('unknown scenario');
  if (errors.length) fail('page errors: ' + errors.slice(0, 3).join(' | '));
} finally { await browser.close(); stopServer(); }
process.exit(0);
