// Colours pretty-printed JSON for the QMP console: keys, strings, numbers and literals as spans.

import { html, type TemplateResult } from 'lit';

const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

export function highlightJson(text: string): (string | TemplateResult)[] {
  const out: (string | TemplateResult)[] = [];
  let at = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    if (m[1] !== undefined) {
      out.push(m[2] !== undefined ? html`<span class="j-key">${m[1]}</span>${m[2]}` : html`<span class="j-str">${m[1]}</span>`);
    } else if (/^[tfn]/.test(m[0])) {
      out.push(html`<span class="j-lit">${m[0]}</span>`);
    } else {
      out.push(html`<span class="j-num">${m[0]}</span>`);
    }
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}
