// The teaching view in real tabs: the memory map moving on both sides, the per-round charts with
// the model and the state timeline, the compare table and the stream inspector. Each is
// screenshotted (to $SHOTS_DIR, default /tmp/tabmig-shots) so a person can look at them; the
// assertions check what a class would see: pixels that change, a chart per series, a table row
// per method, sections listed.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { sharedBrowser } from './session.mjs';

const SHOTS = process.env.SHOTS_DIR ?? '/tmp/tabmig-shots';
mkdirSync(SHOTS, { recursive: true });
const FINAL = ['completed', 'failed', 'cancelled'];

/** The element's shadow-piercing locator, screenshotted into SHOTS. */
async function shot(tab, selector, name) {
  const el = tab.page.locator(selector).first();
  await el.scrollIntoViewIfNeeded();
  await el.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

const mapPixels = (tab) =>
  tab.page.evaluate(() => {
    const find = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.tagName === 'TM-MEMORY-MAP') return el;
        if (el.shadowRoot) {
          const r = find(el.shadowRoot);
          if (r) return r;
        }
      }
      return null;
    };
    return find(document)?.shadowRoot?.querySelector('canvas')?.toDataURL() ?? null;
  });

/** The live stream table's rows in one tab's inspector: kind, section name, round (RAM). */
const liveRows = (tab) =>
  tab.page
    .locator('tm-stream-inspector [data-live-table] tbody tr')
    .evaluateAll((trs) => trs.map((t) => ({ kind: t.dataset.kind, name: t.querySelector('td:nth-child(3) .mono')?.textContent ?? '', round: Number(t.dataset.round ?? 0) })));

const ramRounds = (rows) => rows.filter((r) => r.name === 'ram' && r.round > 0);

describe('the teaching view', () => {
  const session = sharedBrowser();

  it('draws the memory map on both tabs, then the rounds, the model and the timeline', async () => {
    const b = await session.browser.open('?m=64M&incoming=defer&S');
    await b.page.setViewportSize({ width: 1680, height: 2400 });
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id } = await b.ret('x-tabmig-peer');
    const a = await session.browser.open('?m=64M&S');
    await a.page.setViewportSize({ width: 1680, height: 2400 });
    await a.ret('x-tabmig-load', { program: 'stress', args: 'wss=32M rate=1M mode=random' });
    await a.ret('cont');
    await a.until('x-tabmig-guest-info', (g) => g.serial.includes('stress: ready'), 60000);
    await a.ret('migrate-set-parameters', { 'max-bandwidth': 8 << 20, 'downtime-limit': 100 });
    await a.ret('migrate', { uri: 'webrtc:' + id });
    const framesA = new Set();
    const framesB = new Set();
    let shotMid = false;
    // The stream as it passes, on both tabs, while the migration is still running.
    let liveMid = null;
    const tMigrate = Date.now();
    for (const t0 = Date.now(); Date.now() - t0 < 120000; await sleep(250)) {
      framesA.add(await mapPixels(a));
      framesB.add(await mapPixels(b));
      const info = await a.ret('query-migrate');
      if (!shotMid && info.status === 'active' && Date.now() - tMigrate > 1200 && framesA.size >= 4 && framesB.size >= 4) {
        shotMid = true;
        await shot(a, 'tm-memory-map', 'memory-map-source');
        await shot(b, 'tm-memory-map', 'memory-map-destination');
      }
      if (!liveMid && info.status === 'active') {
        const [ra, rb] = [await liveRows(a), await liveRows(b)];
        if (ramRounds(ra).length && ramRounds(rb).length) liveMid = { a: ra, b: rb };
      }
      // Screenshots are slow on a busy machine: only once the map has shown enough frames.
      if (liveMid && !liveMid.shot && info.status === 'active' && framesA.size >= 3 && framesB.size >= 3) {
        liveMid.shot = true;
        await shot(a, 'tm-stream-inspector', 'inspector-live-source');
        await shot(b, 'tm-stream-inspector', 'inspector-live-destination');
      }
      if (FINAL.includes(info.status)) break;
    }
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 120000);
    assert.equal(info.status, 'completed', info['error-desc']);
    assert.ok(framesA.size >= 3 && framesB.size >= 3, `map frames ${framesA.size} / ${framesB.size}`);
    assert.ok(liveMid, 'both inspectors showed RAM rounds while the migration was active');
    for (const rows of [liveMid.a, liveMid.b]) assert.ok(rows.some((r) => r.kind === 'START' && r.name === 'ram'), JSON.stringify(rows));
    await sleep(600);
    // Once completed, each side lists the whole stream it wrote or read, in order.
    for (const tab of [a, b]) {
      const rows = await liveRows(tab);
      const seq = rows.map((r) => `${r.kind}:${r.name}`);
      const at = (item) => seq.indexOf(item);
      assert.equal(rows[0]?.kind, 'CONFIGURATION', seq.join(' '));
      assert.ok(at('START:ram') >= 0 && at('START:ram') < at('END:ram'), seq.join(' '));
      assert.ok(at('END:ram') < at('FULL:cpu') && at('FULL:cpu') >= 0, seq.join(' '));
      assert.ok(at('FULL:globalstate') > at('END:ram'), seq.join(' '));
      assert.ok(at('EOF:EOF') > at('FULL:cpu'), seq.join(' '));
      assert.ok(ramRounds(rows).length >= 2, `RAM round summaries: ${JSON.stringify(ramRounds(rows))}`);
      assert.match((await tab.page.locator('tm-stream-inspector [data-live-table]').textContent()) ?? '', /round 1: [\d,]+ pages: [\d,]+ zero/);
    }
    await shot(a, 'tm-stream-inspector', 'inspector-live-source-completed');
    await shot(b, 'tm-stream-inspector', 'inspector-live-destination-completed');
    const charts = a.page.locator('tm-migration-charts');
    assert.equal(await charts.locator('.uplot').count(), 5, 'five uPlot charts');
    assert.equal(await charts.locator('[data-model]').count(), 1, 'the model paragraph');
    assert.ok((await charts.locator('tm-state-timeline [data-downtime]').count()) === 1, 'downtime marked');
    await shot(a, 'tm-migration-charts', 'charts');
    await shot(a, 'tm-migration-charts [data-model]', 'model');
    await shot(a, 'tm-migration-charts tm-state-timeline', 'timeline');
    if (!shotMid) await shot(a, 'tm-memory-map', 'memory-map-source');
    assert.deepEqual(session.browser.pageErrors, []);
    // Its guest would go on running beside the next test's tabs, on a 2-core machine.
    await Promise.all([a.page.close(), b.page.close()]);
  });

  /** Two 32 MiB tabs; the compare panel of `a` aimed at `b` with a small random stress guest. */
  async function compareTabs() {
    const b = await session.browser.open('?m=32M&S');
    const a = await session.browser.open('?m=32M&S');
    await a.page.setViewportSize({ width: 1680, height: 2400 });
    const { id } = await b.ret('x-tabmig-peer');
    const panel = a.page.locator('tm-compare');
    await panel.locator('#cmp-dest').selectOption(id);
    await panel.locator('#cmp-args').fill('wss=8M rate=1M mode=random');
    return { a, b, panel };
  }

  /** Compare says what it will do first; the class reads the plan, then starts it. */
  async function startCompare(panel) {
    await panel.locator('button[type=submit]').click();
    assert.match((await panel.locator('[data-plan]').textContent()) ?? '', /put this tab back/);
    await panel.locator('button.start-compare').click();
  }

  /** Waits until the comparison table has `n` rows (or the panel says it stopped, which fails). */
  async function compareRows(a, panel, n, timeout) {
    await a.page.waitForFunction(
      (n) => {
        const el = document.querySelector('tm-app')?.shadowRoot?.querySelector('tm-compare');
        const t = el?.shadowRoot?.querySelector('tm-run-comparison')?.shadowRoot?.querySelectorAll('[data-compare-table] tbody tr');
        return (t?.length ?? 0) >= n || /Stopped/.test(el?.shadowRoot?.querySelector('.progress')?.textContent ?? '');
      },
      n,
      { timeout, polling: 1000 },
    );
    const progress = await panel.locator('.progress').textContent();
    assert.doesNotMatch(progress ?? '', /Stopped/, progress ?? '');
  }

  it('compares stop-and-copy and precopy between the same two tabs, with a table and overlaid charts', async () => {
    const { a, b, panel } = await compareTabs();
    const post = panel.locator('fieldset input').nth(2);
    if (!(await post.isDisabled())) await post.uncheck();
    await startCompare(panel);
    await compareRows(a, panel, 2, 240000);
    const rows = panel.locator('tm-run-comparison [data-compare-table] tbody tr');
    assert.equal(await rows.count(), 2);
    // Stop-and-copy: the guest is down for the whole copy; precopy only for the last part.
    const down = async (i) => parseInt(((await rows.nth(i).locator('td').nth(2).textContent()) ?? '').replace(/,/g, ''), 10);
    assert.ok((await down(0)) > (await down(1)), `stop-and-copy downtime ${await down(0)} > precopy ${await down(1)}`);
    await sleep(500);
    await shot(a, 'tm-compare', 'compare');
    // Both runs are in the history.
    const history = a.page.locator('tm-run-history');
    assert.ok((await history.locator('li').count()) >= 2);
    await history.locator('li input[type=checkbox]').nth(0).check();
    await history.locator('li input[type=checkbox]').nth(1).check();
    await history.getByRole('button', { name: /Compare selected/ }).click();
    assert.equal(await history.locator('tm-run-comparison [data-compare-table] tbody tr').count(), 2);
    await shot(a, 'tm-run-history', 'history');
    await Promise.all([a.page.close(), b.page.close()]);
  });

  it('compares precopy with each byte reducer, one capability per run, none left on', async () => {
    const { a, b, panel } = await compareTabs();
    const reducers = ['precopy+xbzrle', 'precopy+compress', 'precopy+x-multifd', 'precopy+auto-converge'];
    // Each choice is a labelled checkbox that says what QEMU does with it; ticked by keyboard.
    for (const v of ['stop-and-copy', 'postcopy']) {
      const box = panel.locator(`[data-variant="${v}"] input`);
      if ((await box.isChecked()) && !(await box.isDisabled())) await box.uncheck();
    }
    for (const v of reducers) {
      const label = panel.locator(`[data-variant="${v}"]`);
      assert.match((await label.textContent()) ?? '', /QEMU .{20,}/, `${v} explains itself`);
      await label.locator('input').focus();
      await a.page.keyboard.press('Space');
      assert.ok(await label.locator('input').isChecked(), `${v} ticked with the keyboard`);
    }
    await startCompare(panel);
    await compareRows(a, panel, reducers.length + 1, 600000);
    const labels = await panel.locator('tm-run-comparison [data-compare-table] tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.label));
    assert.deepEqual(labels, ['precopy', ...reducers]);
    // Every variant really migrated: its row says how many bytes it sent. (Which sends fewer depends
    // on the data: this guest's random pages do not compress, so compress may send more.)
    for (const l of labels) {
      const sent = await panel.locator(`tm-run-comparison [data-compare-table] tbody tr[data-label="${l}"] td`).nth(3).textContent();
      assert.ok(parseFloat(sent ?? '') > 0, `${l} sent ${sent}`);
    }
    // Nothing leaks: after the last run (auto-converge) the tab has every reducer off again.
    const caps = Object.fromEntries((await a.ret('query-migrate-capabilities')).map((c) => [c.capability, c.state]));
    for (const c of ['xbzrle', 'compress', 'x-multifd', 'auto-converge']) assert.equal(caps[c], false, `${c} left on`);
    const info = await a.ret('query-migrate');
    assert.equal(info['xbzrle-cache'], undefined, 'the auto-converge run had no xbzrle');
    assert.equal(info.compression, undefined, 'the auto-converge run had no compress');
    await sleep(500);
    await shot(a, 'tm-compare', 'compare-reducers');
    await Promise.all([a.page.close(), b.page.close()]);
  });

  it('lists the sections and commands of a saved snapshot', async () => {
    const a = await session.browser.open('?m=32M&S');
    await a.page.setViewportSize({ width: 1680, height: 2400 });
    await a.ret('x-tabmig-load', { program: 'ab' });
    await a.ret('cont');
    await sleep(300);
    await a.ret('migrate', { uri: 'idb:inspect-me' });
    await a.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
    const insp = a.page.locator('tm-stream-inspector');
    await insp.locator('#insp-snap').selectOption('inspect-me');
    await insp.locator('[data-inspector-table]').waitFor({ timeout: 30000 });
    const kinds = await insp.locator('[data-inspector-table] tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.kind));
    assert.ok(kinds.includes('CONFIGURATION') && kinds.includes('START') && kinds.includes('FULL') && kinds.includes('END'), kinds.join(','));
    assert.match((await insp.locator('[data-inspector-table]').textContent()) ?? '', /ram[\s\S]*cpu/);
    await shot(a, 'tm-stream-inspector', 'inspector');
  });
});
