// The page as a class sees it, in real tabs at the projector sizes (1366x768, 1920x1080): during a
// migration the memory map, the rounds and the timeline are on screen without scrolling; afterwards
// every panel gives the same figure for the same number; postcopy works from the controls as a
// person clicks through it, and a capability set on one side only is said before anything moves;
// a stuck migration says so by Migrate with remedies that do what they say; Save runs the guest
// on; and an accessibility check (axe-core: contrast, labels, ARIA; no two controls share a name).
// Screenshots go to $SHOTS_DIR (default /tmp/tabmig-shots) for a person to look at.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { axeViolations, clippedText, controlNames, onScreen, tableColumnsCut } from './page-checks.mjs';
import { sharedBrowser } from './session.mjs';

const SHOTS = process.env.SHOTS_DIR ?? '/tmp/tabmig-shots';
mkdirSync(SHOTS, { recursive: true });
const FINAL = ['completed', 'failed', 'cancelled'];
const SIZES = [
  [1366, 768],
  [1920, 1080],
];

const shot = (tab, name) => tab.page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
/** Text of `selector` in the shadow root of `tag` (playwright's locators pierce shadow roots). */
const text = async (tab, selector) => ((await tab.page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();

/** The accessibility check: nothing axe-core finds, and no two controls with one name. */
async function accessible(tab, where) {
  const v = await axeViolations(tab.page);
  assert.deepEqual(v, [], `${where}: axe-core`);
  const { duplicates, unnamed } = await controlNames(tab.page);
  assert.deepEqual(duplicates, [], `${where}: controls sharing a name`);
  assert.deepEqual(unnamed, [], `${where}: controls without a name`);
}

/** A waiting destination and a source running stress (the class-view check's guest), at a size. */
async function pair(session, [w, h], args = 'wss=24M rate=1M mode=random', program = 'stress') {
  const b = await session.browser.open('?m=64M&incoming=defer&S');
  await b.page.setViewportSize({ width: w, height: h });
  await b.ret('migrate-incoming', { uri: 'webrtc:' });
  const { id } = await b.ret('x-tabmig-peer');
  const a = await session.browser.open('?m=64M');
  await a.page.setViewportSize({ width: w, height: h });
  await a.ret('x-tabmig-load', { program, args });
  await a.ret('cont');
  if (program === 'stress') await a.until('x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);
  return { a, b, id };
}

describe('the page as a class sees it', () => {
  const session = sharedBrowser();

  for (const size of SIZES) {
    const [w, h] = size;
    it(`at ${w}x${h}: during a migration the map, the rounds and the timeline are on screen; afterwards nothing is cut off${w === 1366 ? ' and the panels agree' : ''}`, async () => {
      const { a, b, id } = await pair(session, size);
      await a.ret('migrate-set-parameters', { 'max-bandwidth': 4 << 20 });
      await a.ret('migrate', { uri: 'webrtc:' + id });
      await a.until('query-migrate', (v) => v.status === 'active', 30000);
      await sleep(2500);
      const seen = {
        map: await onScreen(a.page, 'TM-MEMORY-MAP'),
        rounds: await onScreen(a.page, 'TM-MIGRATION-CHARTS'),
        timeline: await onScreen(a.page, 'TM-STATE-TIMELINE'),
        status: await onScreen(a.page, 'TM-MIGRATE-PANEL'),
      };
      await shot(a, `class-${w}-source-migrating`);
      await shot(b, `class-${w}-destination-migrating`);
      assert.deepEqual(seen, { map: 'visible', rounds: 'visible', timeline: 'visible', status: 'visible' }, `at ${w}x${h} during the migration`);
      assert.equal(await onScreen(b.page, 'TM-MEMORY-MAP'), 'visible', 'the destination shows its map too');
      if (w === 1366) await accessible(a, 'a source mid-migration');
      const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 180000);
      assert.equal(info.status, 'completed', info['error-desc']);
      await sleep(1200);
      // The charts appear once rounds ended: still on screen, the first of them included.
      assert.equal(await onScreen(a.page, 'TM-MIGRATION-CHARTS', '[data-series=pages]'), 'visible', 'the first round chart after the migration');
      await shot(a, `class-${w}-source-completed`);
      await shot(b, `class-${w}-destination-completed`);
      // After the migration the source's map shows each page by the round it was last sent in.
      assert.match(await text(a, 'tm-memory-map [data-legend=rounds]'), /round 1 [\d,]+/);
      // What a class opens next: the stream inspector and the live fields, whole.
      assert.deepEqual(await tableColumnsCut(a.page, 'TM-STREAM-INSPECTOR'), [], 'the inspector\u2019s columns');
      assert.deepEqual(await clippedText(a.page), [], 'nothing cut off on the source');
      assert.deepEqual(await clippedText(b.page), [], 'nothing cut off on the destination');
      if (w === 1366) await panelsAgree(a, info);
      // Compare's table (the same element the run history opens), with this run and the last one.
      const history = a.page.locator('tm-run-history');
      await history.locator('li input[type=checkbox]').nth(0).check();
      if ((await history.locator('li input[type=checkbox]').count()) > 1) {
        await history.locator('li input[type=checkbox]').nth(1).check();
        await history.getByRole('button', { name: /Compare selected/ }).click();
      } else await history.getByRole('button', { name: /^Open run/ }).first().click();
      await history.locator('tm-run-comparison [data-compare-table]').scrollIntoViewIfNeeded();
      assert.deepEqual(await tableColumnsCut(a.page, 'TM-RUN-COMPARISON'), [], 'the comparison table\u2019s columns');
      assert.deepEqual(await clippedText(a.page), [], 'nothing cut off with the comparison open');
      await history.locator('tm-run-comparison').screenshot({ path: path.join(SHOTS, `class-${w}-comparison.png`) });
      // The guest runs on at the destination, its counter carried over and its console marked.
      const g = await b.ret('x-tabmig-guest-info');
      assert.ok(g.instructions > 1e6, `the destination's instruction counter went on from the source's (${g.instructions})`);
      await b.page.waitForFunction(() => document.querySelector('tm-app')?.shadowRoot?.querySelector('tm-serial')?.screenText().includes('migrated here from'), null, { timeout: 10000 });
      assert.deepEqual(session.browser.pageErrors, []);
      await Promise.all([a.page.close(), b.page.close()]);
    });
  }

  /** One migration, one figure per number, whichever panel shows it. */
  async function panelsAgree(a, info) {
    const ram = info.ram;
    const fmtCount = (n) => Math.round(n).toLocaleString('en-US');
    const rounds = (await a.ret('x-tabmig-rounds')).rounds.length;
    // Rounds: query-migrate's dirty-sync-count, the round records, the charts, the map, the inspector, the history.
    assert.equal(rounds, ram['dirty-sync-count'], 'a round record per dirty sync');
    assert.equal(await text(a, 'tm-migration-status dd[data-field="dirty-sync-count"]'), String(rounds));
    assert.equal(await text(a, 'tm-migration-charts .panel-head .aside'), `${rounds} rounds`);
    assert.equal(await text(a, 'tm-memory-map [data-round]'), String(rounds));
    assert.equal(await a.page.locator('tm-stream-inspector [data-rounds]').getAttribute('data-rounds'), String(rounds));
    const row = await text(a, 'tm-run-history li [data-figures]');
    assert.match(row, new RegExp(`· ${rounds} rounds$`), row);
    // Setup time: query-migrate's setup-time is the timeline's setup segment.
    assert.equal(Number(await a.page.locator('tm-state-timeline [data-phase=setup]').getAttribute('data-ms')), info['setup-time']);
    assert.equal(await text(a, 'tm-migration-status dd[data-field="setup-time"]'), `${fmtCount(info['setup-time'])}ms`);
    // Total time.
    const total = info['total-time'] < 1000 ? `${info['total-time']} ms` : `${(info['total-time'] / 1000).toFixed(2)} s`;
    assert.equal(await text(a, 'tm-state-timeline [data-total]'), total);
    assert.match(row, new RegExp(`· ${total.replace('.', '\\.')} ·`), row);
    // Downtime: the live field, the timeline, the model, the history.
    const down = `${fmtCount(info.downtime)} ms`;
    assert.equal(await text(a, 'tm-migration-status dd[data-field="downtime"]'), `${fmtCount(info.downtime)}ms`);
    assert.equal(await text(a, 'tm-state-timeline [data-legend=downtime] b'), down);
    assert.match(await text(a, 'tm-migration-charts [data-model] dl'), new RegExp(`/ ${down}`));
    assert.match(row, new RegExp(`down ${down}`), row);
    // Bandwidth once completed: query-migrate's mbps, in the live field and beside the bandwidth chart.
    const mbps = ram.mbps >= 100 ? ram.mbps.toFixed(0) : ram.mbps.toFixed(1);
    assert.equal(await text(a, 'tm-migration-status dd[data-field="mbps"]'), `${mbps}Mbit/s`);
    assert.match(await text(a, 'tm-migration-charts [data-now=bytes]'), new RegExp(`mbps ${mbps.replace('.', '\\.')} Mbit/s`));
    // Bytes: transferred, in the live field, the inspector's stream total and the history.
    const bytes = await text(a, 'tm-migration-status .transferred');
    assert.match(await text(a, 'tm-stream-inspector [data-live-summary]'), new RegExp(`items written, ${bytes.replace('.', '\\.')};`));
    assert.match(row, new RegExp(`· ${bytes.replace('.', '\\.')} ·`), row);
  }

  it('postcopy as a person clicks it; a capability switched on one side only is said before anything moves', async () => {
    const size = [1366, 768];
    // The tab that will receive: a normal tab, made a destination with its button.
    const b = await session.browser.open('?m=64M');
    await b.page.setViewportSize({ width: size[0], height: size[1] });
    await b.page.getByRole('button', { name: 'Receive a migration' }).click();
    await b.page.waitForFunction(() => typeof window.qmp === 'function' && document.querySelector('tm-app')?.shadowRoot?.querySelector('tm-peers'), null, { timeout: 30000 });
    await b.until('query-migrate', (v) => v.status === 'setup', 30000);
    await accessible(b, 'a waiting destination');
    const { id } = await b.ret('x-tabmig-peer');
    const a = await session.browser.open('?m=64M');
    await a.page.setViewportSize({ width: size[0], height: size[1] });
    // The source: stress picked and loaded with the controls, postcopy-ram and slow motion switched on.
    await a.page.locator('tm-controls select').selectOption('stress');
    await a.page.locator('tm-controls input.args').fill('wss=24M rate=2M mode=random');
    await a.page.getByRole('button', { name: 'Load the program' }).click();
    await a.until('x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);
    const pc = (tab) => tab.page.locator('tm-capabilities li[data-capability="postcopy-ram"] input');
    await pc(a).check();
    await a.page.locator('tm-migrate-panel label.slow input').check();
    await a.until('query-migrate-parameters', (p) => p['max-bandwidth'] === 2 << 20, 5000);
    // Migrate with postcopy-ram on here only: refused before any byte, saying what to switch on where.
    await a.page.getByRole('button', { name: /^Migrate → to / }).click();
    const refused = await a.until('query-migrate', (v) => FINAL.includes(v.status), 30000);
    assert.equal(refused.status, 'failed');
    assert.match(refused['error-desc'], new RegExp(`postcopy-ram is on in the source \\(.*\\) but off in the destination \\(Tab ${id}\\): switch postcopy-ram on in Tab ${id}`));
    assert.ok(!refused.ram || refused.ram.transferred === 0, `nothing moved (${JSON.stringify(refused.ram)})`);
    assert.match(await text(a, 'tm-migrate-panel .error-desc'), /switch postcopy-ram on in/);
    assert.equal((await a.ret('query-status')).status, 'running', 'the guest runs on here');
    // The destination still waits, and says whom it refused and why.
    assert.equal((await b.ret('query-migrate')).status, 'setup');
    await b.page.locator('tm-migrate-panel [data-refused]').waitFor({ timeout: 10000 });
    assert.match(await text(b, 'tm-migrate-panel [data-refused]'), /postcopy-ram is on in the source/);
    await shot(a, 'class-postcopy-refused-source');
    await shot(b, 'class-postcopy-refused-destination');
    // Switched on in the waiting tab too: Migrate, then Start postcopy.
    await pc(b).check();
    await a.page.getByRole('button', { name: /^Migrate → to / }).click();
    await a.until('query-migrate', (v) => v.status === 'active', 30000);
    await sleep(2000);
    const before = (await a.ret('x-tabmig-guest-info')).instructions;
    await a.page.getByRole('button', { name: 'Start postcopy', exact: true }).click();
    await a.until('query-migrate', (v) => v.status.startsWith('postcopy') || FINAL.includes(v.status), 30000);
    await shot(a, 'class-postcopy-source');
    await shot(b, 'class-postcopy-destination');
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 180000);
    assert.equal(info.status, 'completed', info['error-desc']);
    await b.until('query-status', (v) => v.status === 'running', 30000);
    const g = await b.ret('x-tabmig-guest-info');
    assert.ok(g.instructions > before, `the counter went on from the source's ${before} (now ${g.instructions})`);
    const runs = (await a.page.locator('tm-run-history li b').allTextContents()).slice(0, 1);
    assert.deepEqual(runs, ['postcopy'], 'the history calls it a postcopy run');
    assert.deepEqual(session.browser.pageErrors, []);
    await Promise.all([a.page.close(), b.page.close()]);
  });

  it('keeps the capabilities switched on before "Receive a migration" over its reload', async () => {
    const c = await session.browser.open('?m=32M');
    await c.page.locator('tm-capabilities li[data-capability="postcopy-ram"] input').check();
    await c.page.getByRole('button', { name: 'Receive a migration' }).click();
    await c.page.waitForFunction(() => typeof window.qmp === 'function' && new URLSearchParams(location.search).has('incoming'), null, { timeout: 30000 });
    await c.until('query-migrate-capabilities', (caps) => caps.some((x) => x.capability === 'postcopy-ram' && x.state), 10000);
    await c.page.close();
  });

  it('a migration that does not converge says so by Migrate, and its remedy does what it says', async () => {
    const { a, b } = await pair(session, [1366, 768], 'size=16M', 'ab');
    await a.ret('migrate-set-parameters', { 'max-bandwidth': 8 << 20 });
    const id = (await b.ret('x-tabmig-peer')).id;
    await a.ret('migrate', { uri: 'webrtc:' + id });
    const banner = a.page.locator('tm-migrate-panel [data-convergence]');
    await banner.waitFor({ timeout: 120000 });
    assert.equal(await onScreen(a.page, 'TM-MIGRATE-PANEL', '[data-convergence]'), 'visible', 'the banner by Migrate, on screen');
    const remedies = await banner.getByRole('button').allTextContents();
    for (const r of [/Raise downtime-limit to \d+ ms/, /Migrate again with postcopy/, /Migrate again with auto-converge/, /Migrate again with XBZRLE/]) {
      assert.ok(remedies.some((t) => r.test(t)), `${r} among ${remedies.join(' | ')}`);
    }
    await shot(a, 'class-not-converging');
    await accessible(a, 'the non-convergence banner');
    await banner.getByRole('button', { name: 'Migrate again with XBZRLE' }).click();
    // Cancelled, XBZRLE on, the destination waits again, and the new migration converges.
    await a.until('query-migrate-capabilities', (caps) => caps.some((x) => x.capability === 'xbzrle' && x.state), 30000);
    await a.until('query-migrate', (v) => v.status === 'active' && v['xbzrle-cache'] !== undefined, 30000);
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 180000);
    assert.equal(info.status, 'completed', info['error-desc']);
    assert.ok(info['xbzrle-cache'].pages > 0, 'pages went as XBZRLE deltas');
    await Promise.all([a.page.close(), b.page.close()]);
  });

  it('Save runs the guest on after the snapshot, with its progress, and the history calls it a snapshot', async () => {
    const a = await session.browser.open('?m=64M');
    await a.page.setViewportSize({ width: 1366, height: 768 });
    const panel = a.page.locator('tm-snapshots');
    await panel.locator('#snap-name').fill('class-save');
    await panel.getByRole('button', { name: 'Save a snapshot' }).click();
    await panel.locator('[data-saved]').waitFor({ timeout: 60000 });
    assert.match(await text(a, 'tm-snapshots [data-saved]'), /ran on \(cont\)/);
    await a.until('query-status', (v) => v.status === 'running', 10000);
    assert.deepEqual((await a.page.locator('tm-run-history li b').allTextContents()).slice(0, 1), ['snapshot']);
    await a.page.close();
  });
});
