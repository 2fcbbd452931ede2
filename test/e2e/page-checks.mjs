// What a person sees of a tab, read in the real browser: whether an element is on screen without
// scrolling, what is cut off, the accessibility problems axe-core finds, and the names of the
// controls as assistive technology reads them.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Where an element (found through every shadow root, by tag or by tag + selector inside it) sits. */
export function onScreen(page, tag, inner = null) {
  return page.evaluate(
    ({ tag, inner }) => {
      const find = (root) => {
        for (const el of root.querySelectorAll('*')) {
          if (el.tagName === tag) return el;
          if (el.shadowRoot) {
            const r = find(el.shadowRoot);
            if (r) return r;
          }
        }
        return null;
      };
      let el = find(document);
      if (el && inner) el = el.shadowRoot?.querySelector(inner) ?? null;
      if (!el) return 'absent';
      const r = el.getBoundingClientRect();
      const whole = r.height > 0 && r.top >= 0 && r.left >= 0 && r.right <= innerWidth;
      const seen = r.height > 0 && r.top < innerHeight && r.bottom > 0 && r.left < innerWidth && r.right > 0;
      return seen && whole ? 'visible' : `off screen (${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}x${Math.round(r.height)} in ${innerWidth}x${innerHeight})`;
    },
    { tag, inner },
  );
}

/** Elements whose content is clipped sideways (hidden overflow or an ellipsis), with what they hold. */
export function clippedText(page) {
  return page.evaluate(() => {
    const out = [];
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.shadowRoot) walk(el.shadowRoot);
        // Fields scroll their own text, as every text field does; the terminal wraps its own.
        if (el.closest('.xterm') || ['CANVAS', 'INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName)) continue;
        const cs = getComputedStyle(el);
        if (cs.display === 'none' || cs.visibility === 'hidden') continue;
        const clips = cs.overflowX === 'hidden' || cs.overflowX === 'clip' || cs.textOverflow === 'ellipsis';
        if (clips && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
          const host = el.getRootNode().host;
          out.push(`${host ? `${host.tagName.toLowerCase()} ` : ''}${el.tagName.toLowerCase()} "${(el.textContent ?? '').trim().slice(0, 60)}" (${el.clientWidth} of ${el.scrollWidth} px)`);
        }
      }
    };
    walk(document);
    return out;
  });
}

/** For each table inside `tag`, the header cells that do not fit inside the table's visible box. */
export function tableColumnsCut(page, tag) {
  return page.evaluate((tag) => {
    const out = [];
    const walk = (root, inside) => {
      for (const el of root.querySelectorAll('*')) {
        const within = inside || el.tagName === tag;
        if (within && el.tagName === 'TABLE') {
          // The box the table is seen through: the nearest scrolling or clipping ancestor.
          let box = el.parentElement ?? el;
          const edge = box.getBoundingClientRect();
          for (const th of el.querySelectorAll('thead th')) {
            const r = th.getBoundingClientRect();
            if (r.right > edge.right + 1 || r.left < edge.left - 1 || r.right > innerWidth) out.push(`${th.textContent?.trim()} (${Math.round(r.left)}–${Math.round(r.right)} in ${Math.round(edge.left)}–${Math.round(edge.right)})`);
          }
        }
        if (el.shadowRoot) walk(el.shadowRoot, within);
      }
    };
    walk(document, false);
    return out;
  }, tag);
}

/** axe-core's violations (contrast, labels, ARIA), through the shadow roots, as short lines. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({ content: AXE });
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join('; ')}`);
  });
}

const CONTROL = /^\s*- '?(button|checkbox|switch|textbox|combobox|link|radio|slider|spinbutton|searchbox|listbox|tab)\b(?: "((?:[^"\\]|\\.)*)")?/;

/** The controls as the accessibility tree names them: role and name, and the names used twice. */
export async function controlNames(page) {
  const snap = await page.locator('body').ariaSnapshot();
  const names = [];
  for (const line of snap.split('\n')) {
    const m = CONTROL.exec(line);
    if (m) names.push(`${m[1]} "${m[2] ?? ''}"`);
  }
  const count = new Map();
  for (const n of names) count.set(n, (count.get(n) ?? 0) + 1);
  return { names, duplicates: [...count].filter(([, c]) => c > 1).map(([n]) => n), unnamed: names.filter((n) => n.endsWith('""')) };
}
