// The coloured pill both status badges draw (<tm-runstate-badge>, <tm-migration-badge>): a dot and
// a name on the tone's colours. Each badge keeps its own sizes and its own rule for when the dot
// pulses.

import { css, html } from 'lit';
import { toneStyles } from './styles/theme.js';

export const badgeStyles = [
  toneStyles,
  css`
    :host {
      display: inline-block;
    }
    .badge {
      display: inline-flex;
      align-items: center;
      gap: 0.45em;
      border-radius: 999px;
      font-family: var(--tm-mono);
      font-size: 0.9em;
      letter-spacing: 0.02em;
      color: var(--tone);
      background: var(--tone-soft);
      border: 1px solid color-mix(in srgb, var(--tone) 35%, transparent);
      white-space: nowrap;
    }
    .dot {
      border-radius: 50%;
      background: var(--tone);
    }
  `,
];

/** `classes` go after `badge` (at least the `tone-*` class); an empty name shows as a dash. */
export function renderBadge(classes: string, title: string, name: string) {
  return html`<span class="badge ${classes}" part="badge" title=${title}><span class="dot"></span><span class="name">${name || '—'}</span></span>`;
}
