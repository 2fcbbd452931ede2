import { chromium } from 'playwright-core';
const [,, url = '?name=alice', out = '/tmp/shots/one.png', w = '1600', h = '900', full = ''] = process.argv;
const b = await chromium.launch({executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu','--disable-background-networking']});
const ctx = await b.newContext({ viewport: { width: +w, height: +h } });
const p = await ctx.newPage();
p.on('console', m => { if (m.type()==='error' || m.type()==='warning') console.log('console:', m.text()); });
p.on('pageerror', e => console.log('pageerror:', e.message));
await p.goto('http://127.0.0.1:5174/' + url);
await p.waitForTimeout(2500);
if (full) {
  // Screenshot the side column unrolled: make the page one tall scrolling document.
  await p.setViewportSize({ width: +w, height: 4000 });
  await p.waitForTimeout(500);
}
await p.screenshot({ path: out, fullPage: !!full });
await b.close();
