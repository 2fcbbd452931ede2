// Postcopy's figures for `npm run bench`:
// - fault latency: how long the destination's vCPU stood still per missing page (fault → request
//   on the return path → page on the preempt channel → placed), p50 and p99 over the vCPU's last
//   waits, each divided by the raw data channel's request/response round trip (16 bytes out, one
//   4 KiB page back) measured between the same two tabs in the same run;
// - guest-seen downtime of postcopy against precopy for the same guest (stress, 2 MB/s dirtied),
//   from the guest's own "clock jumped N ms" line.

const caps = (list) => ({ capabilities: Object.entries(list).map(([capability, state]) => ({ capability, state })) });
const FINAL = ['completed', 'failed', 'cancelled'];
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/** Raw request/response round trips between two pages (ms each), no project code involved. */
async function rawRoundTrips(pageA, pageB, n = 300, reply = 4096) {
  const chan = 'rtt-' + Math.random().toString(36).slice(2);
  const side = async (role, { chan, n, reply }) => {
    const bc = new BroadcastChannel(chan);
    const pc = new RTCPeerConnection({ iceServers: [] });
    const dc = pc.createDataChannel('rtt', { negotiated: true, id: 0, ordered: true });
    dc.binaryType = 'arraybuffer';
    const post = (m) => bc.postMessage({ role, ...m });
    pc.onicecandidate = (e) => e.candidate && post({ cand: e.candidate.toJSON() });
    const opened = new Promise((r) => (dc.onopen = r));
    bc.onmessage = async ({ data }) => {
      if (data.role === role) return;
      if (data.ready && role === 'a') {
        await pc.setLocalDescription();
        post({ sdp: pc.localDescription.toJSON() });
      }
      if (data.sdp) {
        await pc.setRemoteDescription(data.sdp);
        if (data.sdp.type === 'offer') {
          await pc.setLocalDescription();
          post({ sdp: pc.localDescription.toJSON() });
        }
      }
      if (data.cand) await pc.addIceCandidate(data.cand).catch(() => {});
    };
    if (role === 'b') {
      const ready = setInterval(() => post({ ready: true }), 100);
      await opened;
      clearInterval(ready);
      const page = new Uint8Array(reply);
      await new Promise((resolve) => {
        let left = n;
        dc.onmessage = () => {
          dc.send(page);
          if (--left === 0) resolve();
        };
      });
      setTimeout(() => (pc.close(), bc.close()), 500);
      return [];
    }
    await opened;
    const out = [];
    const req = new Uint8Array(16);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const got = new Promise((r) => (dc.onmessage = r));
      dc.send(req);
      await got;
      out.push(performance.now() - t0);
    }
    setTimeout(() => (pc.close(), bc.close()), 500);
    return out;
  };
  const src = side.toString();
  const [a] = await Promise.all([
    pageA.evaluate(`(${src})('a', ${JSON.stringify({ chan, n, reply })})`),
    pageB.evaluate(`(${src})('b', ${JSON.stringify({ chan, n, reply })})`),
  ]);
  return a;
}

async function pair(browser, query, destCaps) {
  const b = await browser.open(`${query}&incoming=defer`);
  await b.ret('migrate-set-capabilities', caps(destCaps));
  await b.ret('migrate-incoming', { uri: 'webrtc:' });
  const { id } = await b.ret('x-tabmig-peer');
  const a = await browser.open(`${query}&S`);
  return { a, b, id };
}

/** Fault latency against the raw round trip, same tabs, same run. */
export async function postcopyFaults({ browser, sleep }) {
  const { a, b, id } = await pair(browser, '?m=128M', { 'postcopy-ram': true, 'postcopy-blocktime': true });
  await a.ret('migrate-set-capabilities', caps({ 'postcopy-ram': true, 'return-path': true }));
  // A slow background scan: nearly every page the guest touches is fetched on demand.
  await a.ret('migrate-set-parameters', { 'max-postcopy-bandwidth': 1 << 20 });
  await a.ret('x-tabmig-load', { program: 'ab', args: 'size=64M' });
  await a.ret('cont');
  await sleep(500);
  await a.ret('migrate', { uri: 'webrtc:' + id });
  await a.until('query-migrate', (v) => v.status === 'active', 30000);
  await sleep(1000);
  await a.ret('migrate-start-postcopy');
  await a.until('query-migrate', (v) => v.status !== 'active', 30000);
  await sleep(5000);
  const waits = (await b.ret('x-tabmig-postcopy-info'))['recent-waits-us'].map((us) => us / 1000);
  await a.ret('migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
  const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 300000);
  const dest = await b.ret('query-migrate');
  const rtt = await rawRoundTrips(a.page, b.page);
  const out = {
    postcopy_status: info.status,
    postcopy_requests: info.ram?.['postcopy-requests'] ?? 0,
    postcopy_faults_measured: waits.length,
    postcopy_fault_p50_ms: pct(waits, 0.5),
    postcopy_fault_p99_ms: pct(waits, 0.99),
    raw_rtt_4k_p50_ms: pct(rtt, 0.5),
    raw_rtt_4k_p99_ms: pct(rtt, 0.99),
    postcopy_blocktime_ms: dest['postcopy-blocktime'],
  };
  out.postcopy_fault_p50_over_rtt = out.postcopy_fault_p50_ms / out.raw_rtt_4k_p50_ms;
  out.postcopy_fault_p99_over_rtt = out.postcopy_fault_p99_ms / out.raw_rtt_4k_p50_ms;
  out.postcopy_fault_p99_over_rtt_p99 = out.postcopy_fault_p99_ms / out.raw_rtt_4k_p99_ms;
  await a.page.close();
  await b.page.close();
  return out;
}

/** Guest-seen downtime of the same guest (stress, 2 MB/s dirtied) by precopy and by postcopy. */
export async function postcopyDowntime({ browser, sleep }) {
  const out = {};
  for (const mode of ['precopy', 'postcopy']) {
    const { a, b, id } = await pair(browser, '?m=64M', { 'postcopy-ram': true });
    await a.ret('migrate-set-capabilities', caps({ 'postcopy-ram': mode === 'postcopy', 'return-path': true }));
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=16M rate=2M mode=random' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('stress: ready'), 60000);
    await sleep(1500);
    await a.ret('migrate', { uri: 'webrtc:' + id });
    if (mode === 'postcopy') {
      await a.until('query-migrate', (v) => v.status === 'active', 30000);
      await sleep(1000);
      await a.ret('migrate-start-postcopy');
    }
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 300000);
    const seen = await b.until('x-tabmig-guest-info', (i) => /clock jumped (\d+) ms/.test(i.serial), 30000);
    await sleep(1000); // postcopy: the guest may stall again on later faults
    const serial = (await b.ret('x-tabmig-guest-info')).serial || seen.serial;
    const gaps = [...serial.matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]);
    out[`${mode}_stress_guest_seen_downtime_ms`] = Math.max(...gaps);
    out[`${mode}_stress_reported_downtime_ms`] = info.downtime;
    out[`${mode}_stress_total_ms`] = info['total-time'];
    await a.page.close();
    await b.page.close();
  }
  return out;
}
