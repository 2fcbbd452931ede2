// The page's look in one place: design tokens (set on <tm-app>, inherited through every shadow
// root), runstate colours, and the panel/button/field styles every element shares.

import { css } from 'lit';
import type { RunState } from '../../guest/runstate.js';

// Text colours on their soft backgrounds (badges, notes) keep WCAG AA contrast, 4.5:1 or more.
export const tokens = css`
  :host {
    --tm-bg: #eceff4;
    --tm-surface: #ffffff;
    --tm-surface-2: #f5f7fa;
    --tm-border: #d5dbe3;
    --tm-text: #16202c;
    --tm-muted: #586475;
    --tm-accent: #3451d1;
    --tm-accent-hover: #2a43b4;
    --tm-accent-soft: #e7ebfc;
    --tm-ok: #237535;
    --tm-ok-soft: #e3f6e7;
    --tm-warn: #b45309;
    --tm-warn-soft: #fff3dc;
    --tm-info: #1864ab;
    --tm-info-soft: #e2effc;
    --tm-danger: #c92a2a;
    --tm-danger-soft: #fdecec;
    --tm-neutral: #586475;
    --tm-neutral-soft: #eceff3;
    --tm-term-bg: #10151c;
    --tm-term-fg: #d5dde7;
    --tm-term-dim: #7d8a9b;
    --tm-radius: 10px;
    --tm-shadow: 0 1px 2px rgb(16 24 40 / 6%), 0 2px 6px rgb(16 24 40 / 6%);
    --tm-font: system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', sans-serif;
    --tm-mono: ui-monospace, 'SFMono-Regular', 'Cascadia Mono', 'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace;
  }
`;

export type Tone = 'ok' | 'warn' | 'info' | 'danger' | 'neutral';

/** Running green, stopped amber, migrating blue, broken red; not started or finished grey. */
export function runstateTone(state: RunState | string): Tone {
  switch (state) {
    case 'running':
      return 'ok';
    case 'paused':
    case 'suspended':
    case 'debug':
    case 'save-vm':
    case 'restore-vm':
    case 'watchdog':
      return 'warn';
    case 'inmigrate':
    case 'postmigrate':
    case 'finish-migrate':
    case 'colo':
      return 'info';
    case 'guest-panicked':
    case 'internal-error':
    case 'io-error':
      return 'danger';
    default:
      return 'neutral';
  }
}

/** A migration's QAPI MigrationStatus: moving blue, stopped-for-switchover amber, done green, failed red. */
export function migrationStatusTone(status: string): Tone {
  switch (status) {
    case 'setup':
    case 'active':
    case 'postcopy-active':
    case 'postcopy-recover':
    case 'colo':
      return 'info';
    case 'pre-switchover':
    case 'device':
    case 'cancelling':
    case 'postcopy-paused':
      return 'warn';
    case 'completed':
      return 'ok';
    case 'failed':
      return 'danger';
    default:
      return 'neutral';
  }
}

export const toneStyles = css`
  .tone-ok { --tone: var(--tm-ok); --tone-soft: var(--tm-ok-soft); }
  .tone-warn { --tone: var(--tm-warn); --tone-soft: var(--tm-warn-soft); }
  .tone-info { --tone: var(--tm-info); --tone-soft: var(--tm-info-soft); }
  .tone-danger { --tone: var(--tm-danger); --tone-soft: var(--tm-danger-soft); }
  .tone-neutral { --tone: var(--tm-neutral); --tone-soft: var(--tm-neutral-soft); }
`;

export const panelStyles = css`
  :host {
    display: block;
    font-family: var(--tm-font);
    color: var(--tm-text);
    min-width: 0;
    min-height: 0;
  }
  * {
    box-sizing: border-box;
  }
  .panel {
    background: var(--tm-surface);
    border: 1px solid var(--tm-border);
    border-radius: var(--tm-radius);
    box-shadow: var(--tm-shadow);
    display: flex;
    flex-direction: column;
    min-height: 0;
    height: 100%;
    overflow: hidden;
  }
  .panel-head {
    display: flex;
    flex-wrap: wrap;
    align-items: baseline;
    column-gap: 0.75rem;
    row-gap: 0.15rem;
    padding: 0.7rem 1rem 0.6rem;
  }
  .panel-head h2 {
    margin: 0;
    font-size: 1.02rem;
    font-weight: 650;
    letter-spacing: 0.005em;
  }
  .hint {
    margin: 0;
    color: var(--tm-muted);
    font-size: 0.86rem;
    line-height: 1.35;
  }
  .panel-head .aside {
    margin-left: auto;
    color: var(--tm-muted);
    font-size: 0.82rem;
    font-family: var(--tm-mono);
  }
  .panel-body {
    padding: 0 1rem 1rem;
    min-height: 0;
  }
  code,
  .mono {
    font-family: var(--tm-mono);
    font-size: 0.92em;
  }
  button {
    font: inherit;
    font-size: 0.92rem;
    font-weight: 560;
    display: inline-flex;
    align-items: center;
    gap: 0.4rem;
    padding: 0.45rem 0.9rem;
    border-radius: 8px;
    border: 1px solid var(--tm-border);
    background: var(--tm-surface);
    color: var(--tm-text);
    cursor: pointer;
    white-space: nowrap;
    transition: background 0.12s, border-color 0.12s, box-shadow 0.12s;
  }
  button:hover:not(:disabled) {
    background: var(--tm-surface-2);
    border-color: #b9c2ce;
  }
  button:disabled {
    opacity: 0.55;
    cursor: default;
  }
  button.primary {
    background: var(--tm-accent);
    border-color: var(--tm-accent);
    color: #fff;
  }
  button.primary:hover:not(:disabled) {
    background: var(--tm-accent-hover);
    border-color: var(--tm-accent-hover);
  }
  button.run {
    background: var(--tm-ok);
    border-color: var(--tm-ok);
    color: #fff;
    min-width: 6.5rem;
    justify-content: center;
  }
  button.run:hover:not(:disabled) {
    background: #1c5f2b;
    border-color: #1c5f2b;
  }
  button.pause {
    background: var(--tm-warn-soft);
    border-color: #f0c36d;
    color: #8a4b00;
    min-width: 6.5rem;
    justify-content: center;
  }
  button.pause:hover:not(:disabled) {
    background: #ffe8b8;
    border-color: #e0a940;
  }
  :is(button, input, select, textarea, [tabindex]):focus-visible {
    outline: 3px solid color-mix(in srgb, var(--tm-accent) 45%, transparent);
    outline-offset: 1px;
  }
  input,
  select {
    font: inherit;
    font-size: 0.92rem;
    color: var(--tm-text);
    background: var(--tm-surface);
    border: 1px solid var(--tm-border);
    border-radius: 8px;
    padding: 0.42rem 0.6rem;
    min-width: 0;
  }
  input:focus,
  select:focus {
    border-color: var(--tm-accent);
  }
  .error-text {
    color: var(--tm-danger);
    font-size: 0.88rem;
  }
`;

/** The round quick-pick buttons (suggested destinations, quick commands); each panel sets their padding. */
export const chipStyles = css`
  .chip {
    font-family: var(--tm-mono);
    font-size: 0.8rem;
    font-weight: 500;
    border-radius: 999px;
    background: var(--tm-accent-soft);
    border-color: transparent;
    color: var(--tm-accent);
  }
  .chip:hover:not(:disabled) {
    background: #d9e0fb;
    border-color: transparent;
  }
`;
