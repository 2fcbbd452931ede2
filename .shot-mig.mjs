import { chromium } from 'playwright-core';
const W = +(process.env.W ?? 1600), H = +(process.env.H ?? 900);
const tag = process.env.TAG ?? 'w';
const bw = +(process.env.BW ?? 16 << 20);
const b = await chromium.launch({executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu','--disable-background-networking']});
const ctx = await b.newContext({ viewport: { width: W, height: H } });
const A = await ctx.newPage();
const B = await ctx.newPage();
for (const [n, p] of [['A', A], ['B', B]]) {
  p.on('console', m => { if (m.type()==='error') console.log(n, 'console:', m.text()); });
  p.on('pageerror', e => console.log(n, 'pageerror:', e.message));
}
const base = 'http://127.0.0.1:5174/';
await A.goto(base + '?name=alice&m=64M');
await B.goto(base + '?incoming=defer&S&name=bob&m=64M');
await A.waitForFunction(() => !!window.qmp);
await B.waitForFunction(() => !!window.qmp);
async function elshot(p, sel, path) {
  try {
    const box = await p.locator(sel).evaluate((el) => { el.scrollIntoView({ block: 'nearest' }); const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; });
    await p.screenshot({ path, clip: box });
  } catch (e) { console.log('el shot failed', sel, e.message); }
}
async function snap(p, path) {
  for (let i = 0; i < 4; i++) {
    try { await p.screenshot({ path }); return; } catch (e) { await p.waitForTimeout(200); }
  }
  console.log('screenshot failed', path);
}
const q = (p, execute, args) => p.evaluate(([e, a]) => window.qmp(a ? { execute: e, arguments: a } : { execute: e }), [execute, args]);
console.log(await q(A, 'x-tabmig-load', { program: 'ab', args: 'size=16M' }));
console.log(await q(A, 'migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] }));
const dl = +(process.env.DL ?? 2000);
console.log(await q(A, 'migrate-set-parameters', { 'downtime-limit': dl, 'max-bandwidth': bw }));
await A.waitForTimeout(1500);
await B.bringToFront();
await snap(B, `/tmp/shots/${tag}-B-deferred.png`);
console.log(await q(B, 'migrate-incoming', { uri: 'webrtc:' }));
const id = (await q(B, 'x-tabmig-peer')).return.id;
await B.waitForTimeout(2000);
await A.bringToFront();
await snap(A, `/tmp/shots/${tag}-A-before.png`);
console.log('migrate', await q(A, 'migrate', { uri: 'webrtc:' + id }));
let shot = 0;
const t0 = Date.now();
for (;;) {
  await A.waitForTimeout(700);
  const st = (await q(A, 'query-migrate')).return;
  console.log((Date.now() - t0), st.status, st.ram?.['dirty-sync-count'], st.ram?.transferred, st.ram?.remaining, st.ram?.mbps);
  if (dl < 2000 && Date.now() - t0 > 9000 && !globalThis.raised) {
    globalThis.raised = true;
    console.log('raise downtime-limit', await q(A, 'migrate-set-parameters', { 'downtime-limit': 2000 }));
  }
  if (shot < 3 && (st.status === 'active' || st.status === 'device') && Date.now() - t0 > 2500 * (shot + 1)) {
    await snap(A, `/tmp/shots/${tag}-A-mid${shot}.png`);
    if (shot === 1) {
      await snap(B, `/tmp/shots/${tag}-B-mid.png`);
      for (const el of ['tm-migration-charts', 'tm-migration-status', 'tm-migrate-panel', 'tm-event-log']) {
        await elshot(A, el, `/tmp/shots/${tag}-A-${el}.png`);
      }
    }
    shot++;
  }
  if (['completed', 'failed', 'cancelled'].includes(st.status) || Date.now() - t0 > 60000) break;
}
await A.waitForTimeout(1500);
await snap(A, `/tmp/shots/${tag}-A-after.png`);
await snap(B, `/tmp/shots/${tag}-B-after.png`);
for (const el of ['tm-migration-charts', 'tm-migration-status', 'tm-peers', 'tm-event-log', 'tm-capabilities', 'tm-parameters', 'tm-snapshots']) {
  await elshot(A, el, `/tmp/shots/${tag}-A-after-${el}.png`);
}
console.log('B', await q(B, 'query-migrate'), await q(B, 'query-status'));
await b.close();
