// Migration benchmarks between two real tabs over WebRTC, all driven through QMP.

/** Opens a destination tab waiting on webrtc: and returns it with its peer id. */
async function destination(browser, query) {
  const b = await browser.open(query);
  await b.ret('migrate-incoming', { uri: 'webrtc:' });
  const { id } = await b.ret('x-tabmig-peer');
  return { b, id };
}

/** Runs one migration to completion; returns query-migrate's final reply. */
async function migrate(a, id, ms = 600000) {
  await a.ret('migrate', { uri: `webrtc:${id}` });
  const info = await a.until('query-migrate', (m) => ['completed', 'failed', 'cancelled'].includes(m.status), ms);
  if (info.status !== 'completed') throw new Error(`migration ended ${info.status}: ${info['error-desc'] ?? ''}`);
  return info;
}

/** Payload throughput of a completed migration in MB/s (10^6 bytes), setup excluded. */
const throughput = (info) => info.ram.transferred / 1e6 / ((info['total-time'] - info['setup-time']) / 1000);

/** A 256 MiB guest full of incompressible data: migration throughput against the raw channel. */
export async function incompressible({ browser, sleep }) {
  const { b, id } = await destination(browser, '?m=256M&incoming=defer&S');
  const a = await browser.open('?m=256M&S');
  await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=1G rate=64K mode=random' });
  await a.ret('cont');
  await a.until('x-tabmig-guest-info', (i) => i.serial.includes('stress: ready'), 180000);
  await sleep(500);
  const info = await migrate(a, id);
  if ((await a.hash()) !== (await b.hash())) throw new Error('RAM differs after the migration');
  await a.page.close();
  await b.page.close();
  return {
    incompressible_256m_total_ms: info['total-time'],
    incompressible_256m_mb_s: throughput(info),
    incompressible_256m_transferred_mb: info.ram.transferred / 1e6,
  };
}

/** A 256 MiB guest that uses little of its RAM (the Game of Life): total migration time. */
export async function idle({ browser }) {
  const { b, id } = await destination(browser, '?m=256M&incoming=defer&S');
  const a = await browser.open('?m=256M');
  const info = await migrate(a, id);
  await a.page.close();
  await b.page.close();
  return {
    idle_256m_total_ms: info['total-time'],
    idle_256m_downtime_ms: info.downtime,
    idle_256m_transferred_mb: info.ram.transferred / 1e6,
    idle_256m_zero_pages: info.ram.duplicate,
  };
}

/** Downtime with `stress` dirtying 2 MB/s: as QEMU reports it, and as the guest's own clock saw it. */
export async function downtime({ browser, sleep }) {
  const out = {};
  for (const limit of [300, 50]) {
    const { b, id } = await destination(browser, '?m=64M&incoming=defer');
    const a = await browser.open('?m=64M&S');
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=16M rate=2M mode=random' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (i) => i.serial.includes('stress: ready'), 60000);
    await sleep(1500);
    await a.ret('migrate-set-parameters', { 'downtime-limit': limit });
    // With the return path the source waits for the destination's SHUT, so the downtime QEMU
    // reports covers the bytes still in flight and the destination's load, as the guest sees it.
    await a.ret('migrate-set-capabilities', { capabilities: [{ capability: 'return-path', state: true }] });
    const info = await migrate(a, id);
    // The destination runs on (no -S); the guest reports the jump in its clock once it runs again.
    const seen = await b.until('x-tabmig-guest-info', (i) => /clock jumped (\d+) ms/.test(i.serial), 30000);
    const gaps = [...seen.serial.matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]);
    out[`downtime_limit_${limit}_reported_ms`] = info.downtime;
    out[`downtime_limit_${limit}_guest_seen_ms`] = Math.max(...gaps);
    out[`downtime_limit_${limit}_total_ms`] = info['total-time'];
    out[`downtime_limit_${limit}_rounds`] = (await a.ret('x-tabmig-rounds')).rounds.length;
    await a.page.close();
    await b.page.close();
  }
  return out;
}
