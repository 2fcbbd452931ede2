// Issue 8's tables: what each byte reducer gives on which guest, against the raw channel at the
// stream's own 256 KiB messages; which workloads complete with which feature; and the downtime
// a guest sees against downtime-limit over five runs. Guests are 32 MiB so the whole table runs
// in a few minutes; a migration that has not completed after CAP_MS is cancelled and counted as
// not converging (on a loaded host a slow one is counted so too: read the table with the raw
// channel's figure of the same run).
import { zlibCodecs } from './zlib-codecs.mjs';

const CAP_MS = 15000;
const FINAL = ['completed', 'failed', 'cancelled'];

/** The guests: what each one is for. `wait` lets a filling guest fill its working set first. */
export const GUESTS = {
  incompressible: { program: 'stress', args: 'wss=24M rate=64K mode=random', ready: true },
  compressible: { program: 'stress', args: 'wss=24M rate=8M mode=pattern', ready: true, wait: 3500 },
  'xbzrle-friendly': { program: 'ab', args: 'size=16M' },
  idle: { program: null },
  'dirty-fast': { program: 'stress', args: 'wss=16M rate=0 mode=pattern', ready: true },
};

/** Features: capabilities (both sides where QEMU needs it) and parameters. */
export const FEATURES = {
  off: { src: {}, dst: {}, params: {} },
  xbzrle: { src: { xbzrle: true }, dst: {}, params: { 'xbzrle-cache-size': 32 << 20 } },
  compress: { src: { compress: true }, dst: { compress: true }, params: { 'compress-threads': 2 } },
  multifd: { src: { 'x-multifd': true }, dst: { 'x-multifd': true }, params: { 'x-multifd-channels': 4 } },
  'auto-converge': { src: { 'auto-converge': true }, dst: {}, params: { 'cpu-throttle-initial': 30, 'cpu-throttle-increment': 20 } },
};

const caps = (o) => ({ capabilities: Object.entries(o).map(([capability, state]) => ({ capability, state })) });

async function run(browser, sleep, guest, feature) {
  const g = GUESTS[guest];
  const f = FEATURES[feature];
  const b = await browser.open('?m=32M&incoming=defer&S');
  if (Object.keys(f.dst).length) await b.ret('migrate-set-capabilities', caps(f.dst));
  if (f.params['x-multifd-channels']) await b.ret('migrate-set-parameters', { 'x-multifd-channels': f.params['x-multifd-channels'] });
  await b.ret('migrate-incoming', { uri: 'webrtc:' });
  const { id } = await b.ret('x-tabmig-peer');
  const a = await browser.open('?m=32M&S');
  if (Object.keys(f.src).length) await a.ret('migrate-set-capabilities', caps(f.src));
  if (Object.keys(f.params).length) await a.ret('migrate-set-parameters', f.params);
  if (g.program) {
    await a.ret('x-tabmig-load', g.args ? { program: g.program, args: g.args } : { program: g.program });
  }
  await a.ret('cont');
  if (g.ready) await a.until('x-tabmig-guest-info', (i) => i.serial.includes('stress: ready'), 60000);
  await sleep(g.wait ?? 800);
  await a.ret('migrate', { uri: `webrtc:${id}` });
  const t0 = Date.now();
  let info;
  let maxThrottle = 0;
  for (;;) {
    info = await a.ret('query-migrate');
    maxThrottle = Math.max(maxThrottle, info['cpu-throttle-percentage'] ?? 0);
    if (FINAL.includes(info.status)) break;
    if (Date.now() - t0 > CAP_MS) {
      await a.ret('migrate_cancel');
      info = await a.until('query-migrate', (m) => FINAL.includes(m.status), 30000);
      info = { ...info, capped: true };
      break;
    }
    await sleep(200);
  }
  const row = { guest, feature, status: info.capped ? 'no' : info.status === 'completed' ? 'yes' : info.status };
  if (info.status === 'completed') {
    const secs = (info['total-time'] - info['setup-time']) / 1000;
    const r = info.ram;
    const x = info['xbzrle-cache'];
    const c = info.compression;
    // Page bytes delivered (every page the destination received, whatever its encoding) per second,
    // and the bytes that crossed the wire per second.
    const pagesMoved = r.normal + r.duplicate + (x?.pages ?? 0) + (c?.pages ?? 0);
    row.effective_mb_s = (pagesMoved * 4096) / 1e6 / secs;
    row.wire_mb_s = r.transferred / 1e6 / secs;
    row.total_ms = info['total-time'];
    row.downtime_ms = info.downtime;
    row.transferred_mb = r.transferred / 1e6;
    if (maxThrottle) row.max_throttle = maxThrottle;
  }
  await a.page.close();
  await b.page.close();
  return row;
}

/** Effective MB/s of each guest with each feature, and the convergence table. */
export async function reducers({ browser, sleep }) {
  const rows = [];
  for (const guest of ['incompressible', 'compressible', 'xbzrle-friendly', 'idle']) {
    for (const feature of ['off', 'xbzrle', 'compress', 'multifd']) rows.push(await run(browser, sleep, guest, feature));
  }
  for (const feature of ['off', 'auto-converge', 'xbzrle']) rows.push(await run(browser, sleep, 'dirty-fast', feature));
  rows.push(await run(browser, sleep, 'xbzrle-friendly', 'auto-converge'));
  const out = { reducer_rows: rows };
  for (const r of rows) {
    out[`converges_${r.guest}_${r.feature}`] = r.status;
    if (r.effective_mb_s !== undefined) out[`effective_${r.guest}_${r.feature}_mb_s`] = r.effective_mb_s;
  }
  return out;
}

/** Guest-seen downtime against downtime-limit, five runs each at 50 and 300 ms. */
export async function downtimeRuns({ browser, sleep }) {
  const out = { downtime_rows: [] };
  for (const limit of [50, 300]) {
    for (let i = 0; i < 5; i++) {
      const b = await browser.open('?m=64M&incoming=defer');
      await b.ret('migrate-incoming', { uri: 'webrtc:' });
      const { id } = await b.ret('x-tabmig-peer');
      const a = await browser.open('?m=64M&S');
      await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=16M rate=2M mode=random' });
      await a.ret('cont');
      await a.until('x-tabmig-guest-info', (x) => x.serial.includes('stress: ready'), 60000);
      await sleep(1500);
      await a.ret('migrate-set-parameters', { 'downtime-limit': limit });
      await a.ret('migrate', { uri: `webrtc:${id}` });
      const info = await a.until('query-migrate', (m) => FINAL.includes(m.status), 120000);
      let seen = null;
      if (info.status === 'completed') {
        const g = await b.until('x-tabmig-guest-info', (x) => /clock jumped (\d+) ms/.test(x.serial), 30000).catch(() => null);
        if (g) seen = Math.max(...[...g.serial.matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]));
      }
      out.downtime_rows.push({ limit, run: i + 1, status: info.status, reported_ms: info.downtime ?? null, guest_seen_ms: seen, total_ms: info['total-time'] ?? null });
      await a.page.close();
      await b.page.close();
    }
    const seen = out.downtime_rows.filter((r) => r.limit === limit && r.guest_seen_ms !== null).map((r) => r.guest_seen_ms).sort((x, y) => x - y);
    if (seen.length) out[`downtime_${limit}_guest_seen_p95_ms`] = seen[Math.min(seen.length - 1, Math.floor(0.95 * seen.length))];
  }
  return out;
}

/** fflate against CompressionStream per page in a worker (why the codec pool uses fflate). */
export async function zlibCompare({ browser }) {
  const r = await zlibCodecs(browser, 2048);
  const out = {};
  for (const [k, v] of Object.entries(r)) for (const [m, x] of Object.entries(v)) out[`zlib_${k}_${m}`] = x;
  return out;
}

const pad = (s, n) => String(s).padEnd(n);
const num = (v) => (typeof v === 'number' ? v.toFixed(1) : v ?? '-');

/** The tables and the closing note, as text. */
export function reducerReport(figures) {
  const lines = [];
  const raw = figures.raw_channel_256k_mb_s;
  const rows = figures.reducer_rows ?? [];
  if (rows.length) {
    lines.push('', `Effective MB/s (page bytes delivered per second; raw channel at 256 KiB messages: ${num(raw)} MB/s)`);
    const feats = ['off', 'xbzrle', 'compress', 'multifd'];
    lines.push(pad('guest', 18) + feats.map((f) => pad(f, 20)).join(''));
    for (const guest of ['incompressible', 'compressible', 'xbzrle-friendly', 'idle']) {
      lines.push(
        pad(guest, 18) +
          feats
            .map((f) => {
              const r = rows.find((x) => x.guest === guest && x.feature === f);
              if (!r) return pad('-', 20);
              if (r.effective_mb_s === undefined) return pad(`(${r.status})`, 20);
              return pad(`${num(r.effective_mb_s)} (${raw ? (r.effective_mb_s / raw).toFixed(2) : '?'}x raw)`, 20);
            })
            .join(''),
      );
    }
    lines.push('', 'Convergence (completes within 15 s?)');
    const cf = ['off', 'xbzrle', 'compress', 'multifd', 'auto-converge'];
    lines.push(pad('guest', 18) + cf.map((f) => pad(f, 15)).join(''));
    for (const guest of ['incompressible', 'compressible', 'xbzrle-friendly', 'idle', 'dirty-fast']) {
      lines.push(pad(guest, 18) + cf.map((f) => pad(rows.find((x) => x.guest === guest && x.feature === f)?.status ?? '-', 15)).join(''));
    }
  }
  const dt = figures.downtime_rows ?? [];
  if (dt.length) {
    lines.push('', 'Downtime (ms) over five runs: limit, reported by query-migrate, seen by the guest');
    for (const limit of [50, 300]) {
      const rs = dt.filter((r) => r.limit === limit);
      lines.push(`limit ${limit}: reported ${rs.map((r) => r.reported_ms).join(', ')}; guest-seen ${rs.map((r) => r.guest_seen_ms).join(', ')}; p95 ${figures[`downtime_${limit}_guest_seen_p95_ms`]}`);
    }
  }
  if (rows.length) {
    const best = {};
    for (const guest of ['incompressible', 'compressible', 'xbzrle-friendly', 'idle']) {
      const done = rows.filter((r) => r.guest === guest && r.effective_mb_s !== undefined).sort((x, y) => y.effective_mb_s - x.effective_mb_s);
      if (done.length) best[guest] = `${done[0].feature} (${num(done[0].effective_mb_s)} MB/s)`;
    }
    lines.push('', 'Closing note: best per guest: ' + Object.entries(best).map(([g, f]) => `${g}: ${f}`).join('; ') + '.');
    lines.push(
      'Bytes not sent are the only gain on this wire: compression wins where the data compresses, XBZRLE where pages are rewritten a little at a time (it is what lets the a-b guest converge), multifd adds no bandwidth on one WebRTC connection (its channels share one SCTP association) and costs packet headers, and auto-converge is what makes a guest that dirties faster than the wire complete.',
    );
  }
  return lines.join('\n');
}
