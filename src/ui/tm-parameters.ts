import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { live } from 'lit/directives/live.js';
import {
  MAX_MIGRATE_DOWNTIME,
  MIGRATION_PARAMETERS,
  MIGRATION_PARAMETER_NAMES,
  type MigrationParameter,
  type MigrationParameterValues,
} from '../migration/options-schema.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { formatBytes, formatCount } from './format.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import { describeError } from './services/qmp-client.js';
import { panelStyles } from './styles/theme.js';

type Value = MigrationParameterValues[MigrationParameter];

interface ParameterMeta {
  help: string;
  /** The accepted range as QEMU checks it (migrate_params_check). */
  range: string;
  unit?: string;
  /** How a value reads in friendlier units (bytes → MiB, bytes/s → MiB/s). */
  readable?: (v: number) => string;
  presets?: { label: string; value: number }[];
}

const perSecond = (v: number) => (v === 0 ? 'no limit' : `${formatBytes(v)}/s`);

const META: Record<MigrationParameter, ParameterMeta> = {
  'max-bandwidth': {
    help: 'the fastest the stream may go; lower it to watch the rounds, raise it to converge',
    range: '0 (no limit) to 2⁶⁴−1',
    unit: 'bytes/s',
    readable: perSecond,
    presets: [
      { label: '1 MiB/s', value: 1 << 20 },
      { label: '8 MiB/s', value: 8 << 20 },
      { label: '32 MiB/s', value: 32 << 20 },
      { label: '256 MiB/s', value: 256 << 20 },
      { label: 'no limit', value: 0 },
    ],
  },
  'downtime-limit': {
    help: 'the longest pause allowed for the final copy: the guest stops only when what is left fits',
    range: `0 to ${formatCount(MAX_MIGRATE_DOWNTIME)}`,
    unit: 'ms',
    presets: [
      { label: '50 ms', value: 50 },
      { label: '300 ms', value: 300 },
      { label: '2 s', value: 2000 },
    ],
  },
  'compress-level': { help: 'zlib level for the compress capability (0 none … 9 best)', range: '0 to 9' },
  'compress-threads': { help: 'threads compressing pages on the source', range: '1 to 255' },
  'decompress-threads': { help: 'threads decompressing pages on the destination', range: '1 to 255' },
  'cpu-throttle-initial': { help: 'CPU share auto-converge takes away when it first throttles', range: '1 to 99', unit: '%' },
  'cpu-throttle-increment': { help: 'how much more it takes at each further step', range: '1 to 99', unit: '%' },
  'tls-creds': { help: 'pairing secret (or the destination tab\'s pairing code) that webrtc: peers must share; empty: none', range: 'a string' },
  'tls-hostname': { help: "hostname the destination's certificate must match", range: 'a string' },
  'x-checkpoint-delay': { help: 'time between COLO checkpoints', range: '0 to 4,294,967,295', unit: 'ms' },
  'x-incoming-idle-timeout': {
    help: "how long a destination waits for its source's next byte before it gives the tab back (tabmig's own)",
    range: '0 (never) or 100 to 3,600,000',
    unit: 'ms',
  },
  'x-outgoing-idle-timeout': {
    help: "how long a source waits for any word from its destination before it fails and resumes its guest (tabmig's own)",
    range: '0 (never) or 100 to 3,600,000',
    unit: 'ms',
  },
  'block-incremental': { help: "copy only the disks' changes in block migration", range: 'on or off' },
  'x-multifd-channels': { help: 'parallel channels for x-multifd', range: '1 to 255' },
  'x-multifd-page-count': { help: 'pages per multifd packet', range: '1 to 10,000' },
  'xbzrle-cache-size': {
    help: 'page cache for xbzrle',
    range: 'a power of two, at least one page',
    unit: 'bytes',
    readable: (v) => formatBytes(v),
  },
  'max-postcopy-bandwidth': { help: 'the fastest the stream may go in postcopy', range: '0 (no limit) to 2⁶⁴−1', unit: 'bytes/s', readable: perSecond },
};

/** Names QEMU's range errors use: underscores, and no x- prefix ("Parameter 'max_bandwidth' …"). */
function mentions(desc: string, name: MigrationParameter): boolean {
  const bare = name.replace(/^x-/, '');
  return [name, name.replace(/-/g, '_'), bare, bare.replace(/-/g, '_')].some((n) => desc.includes(`'${n}'`));
}

/** A typed field as QMP wants it: integers as numbers; anything else as typed, for QEMU to judge. */
function parseDraft(name: MigrationParameter, text: string | boolean): Value {
  if (typeof text === 'boolean') return text;
  const info = MIGRATION_PARAMETERS[name];
  if (info.input === 'StrOrNull') return text;
  const t = text.trim().replace(/[_,\s]/g, '');
  return /^-?\d+$/.test(t) ? Number(t) : text;
}

/**
 * The migration parameters from query-migrate-parameters as a form. Apply sends
 * migrate-set-parameters with only the fields that were changed; QEMU checks the whole set and
 * either takes all of it or none, and its error shows by the field it names.
 */
@customElement('tm-parameters')
export class TmParameters extends LitElement {
  static override styles = [
    panelStyles,
    feedbackStyles,
    css`
      .field {
        display: grid;
        grid-template-columns: minmax(9rem, auto) 1fr;
        gap: 0.15rem 0.8rem;
        align-items: center;
        padding: 0.5rem 0;
        border-top: 1px solid var(--tm-surface-2);
      }
      .field:first-child {
        border-top: 0;
      }
      .field label {
        font-family: var(--tm-mono);
        font-weight: 650;
        font-size: 0.92rem;
      }
      .control {
        display: flex;
        align-items: center;
        gap: 0.45rem;
        min-width: 0;
      }
      .control input[type='text'] {
        flex: 1 1 auto;
        width: 6rem;
        font-family: var(--tm-mono);
        text-align: right;
      }
      .control input.str {
        text-align: left;
      }
      .changed input[type='text'] {
        border-color: var(--tm-accent);
        background: var(--tm-accent-soft);
      }
      .bad input[type='text'] {
        border-color: var(--tm-danger);
        background: var(--tm-danger-soft);
      }
      .unit {
        font-size: 0.82rem;
        color: var(--tm-muted);
        white-space: nowrap;
        min-width: 3.2rem;
      }
      .about {
        grid-column: 1 / -1;
        font-size: 0.82rem;
        color: var(--tm-muted);
        line-height: 1.3;
      }
      .about .range {
        white-space: nowrap;
      }
      .readable {
        font-family: var(--tm-mono);
        color: var(--tm-accent);
        font-weight: 650;
      }
      .presets {
        grid-column: 1 / -1;
        display: flex;
        flex-wrap: wrap;
        gap: 0.3rem;
      }
      .chip {
        font-size: 0.76rem;
        font-weight: 500;
        padding: 0.12rem 0.55rem;
        border-radius: 999px;
        background: var(--tm-neutral-soft);
        border-color: transparent;
        color: #3c4655;
      }
      .chip:hover:not(:disabled) {
        background: #e0e4ea;
        border-color: transparent;
      }
      .field-error {
        grid-column: 1 / -1;
        margin: 0;
        color: var(--tm-danger);
        font-size: 0.85rem;
        font-weight: 560;
      }
      details {
        margin-top: 0.3rem;
      }
      summary {
        cursor: pointer;
        font-size: 0.88rem;
        color: var(--tm-accent);
        font-weight: 560;
        padding: 0.3rem 0;
      }
      .buttons {
        display: flex;
        gap: 0.5rem;
        align-items: center;
        margin-top: 0.75rem;
      }
      .buttons .pending {
        font-size: 0.84rem;
        color: var(--tm-muted);
      }
    `,
  ];

  /** What the user typed, by parameter, until applied. */
  @state() private drafts = new Map<MigrationParameter, string | boolean>();
  @state() private outcome: CommandOutcome | null = null;
  /** The parameters the last failed Apply sent (to point at the one QEMU refused). */
  private sentNames: MigrationParameter[] = [];

  private readonly migration = new MigrationController(this);
  private readonly qmp = new QmpController(this);

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const values = m.options.queryParameters();
    const honoured = MIGRATION_PARAMETER_NAMES.filter((n) => MIGRATION_PARAMETERS[n].use === 'honoured');
    const stored = MIGRATION_PARAMETER_NAMES.filter((n) => MIGRATION_PARAMETERS[n].use !== 'honoured');
    const changed = this.changedValues(values);
    const count = Object.keys(changed).length;
    const storedOpen = stored.some((n) => this.drafts.has(n));
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Parameters</h2>
        <p class="hint">Tuning values (<code>query-migrate-parameters</code>); Apply sends the changed ones with <code>migrate-set-parameters</code>.</p>
      </div>
      <form class="panel-body" @submit=${this.apply}>
        ${honoured.map((n) => this.renderField(n, values[n]))}
        <details ?open=${storedOpen}>
          <summary>${stored.length} more that tabmig keeps and reports but does not use yet</summary>
          ${stored.map((n) => this.renderField(n, values[n]))}
        </details>
        <div class="buttons">
          <button class="primary apply" type="submit" ?disabled=${count === 0 || this.outcome?.pending} aria-label="Apply the parameters">Apply</button>
          <button type="button" class="reset" ?disabled=${this.drafts.size === 0} @click=${() => this.discard()} aria-label="Reset the parameter edits">Reset</button>
          <span class="pending">${count ? `${count} changed` : 'no changes'}</span>
        </div>
        ${renderOutcome(this.outcome)}
      </form>
    </section>`;
  }

  private renderField(name: MigrationParameter, current: Value) {
    // A parameter the schema gained before this table did still renders (plainly), never crashes.
    const meta: ParameterMeta = (META as Partial<Record<string, ParameterMeta>>)[name] ?? { help: '', range: 'see the QMP error' };
    const draft = this.drafts.get(name);
    const shown = draft ?? current;
    const changed = draft !== undefined && parseDraft(name, draft) !== current;
    const error = this.fieldError(name);
    const numeric = typeof shown === 'string' ? Number(shown.replace(/[_,\s]/g, '')) : shown;
    const id = `p-${name}`;
    return html`<div class="field ${changed ? 'changed' : ''} ${error ? 'bad' : ''}" data-parameter=${name}>
      <label for=${id}>${name}</label>
      <span class="control">
        ${typeof current === 'boolean'
          ? html`<input id=${id} type="checkbox" .checked=${live(Boolean(shown))} @change=${(e: Event) => this.edit(name, (e.target as HTMLInputElement).checked)} />`
          : html`<input
              id=${id}
              type="text"
              class=${typeof current === 'string' ? 'str' : ''}
              inputmode=${typeof current === 'number' ? 'numeric' : 'text'}
              spellcheck="false"
              autocomplete="off"
              .value=${live(String(shown))}
              @input=${(e: Event) => this.edit(name, (e.target as HTMLInputElement).value)}
            />`}
        <span class="unit">${meta.unit ?? ''}</span>
      </span>
      <span class="about">
        ${meta.readable && typeof numeric === 'number' && Number.isFinite(numeric) ? html`<span class="readable">= ${meta.readable(numeric)}</span> · ` : nothing}
        ${meta.help} <span class="range">(${meta.range})</span>
      </span>
      ${meta.presets
        ? html`<span class="presets">
            ${meta.presets.map((p) => html`<button type="button" class="chip" aria-label="${p.label} for ${name}" @click=${() => this.edit(name, String(p.value))}>${p.label}</button>`)}
          </span>`
        : nothing}
      ${error ? html`<p class="field-error" role="alert">${error}</p>` : nothing}
    </div>`;
  }

  private fieldError(name: MigrationParameter): string | null {
    const err = this.outcome?.error;
    if (!err || !this.sentNames.includes(name) || !mentions(err.desc, name)) return null;
    return describeError(err);
  }

  private changedValues(values: MigrationParameterValues): Partial<Record<MigrationParameter, Value>> {
    const out: Partial<Record<MigrationParameter, Value>> = {};
    for (const [name, draft] of this.drafts) {
      const v = parseDraft(name, draft);
      if (v !== values[name]) out[name] = v;
    }
    return out;
  }

  private edit(name: MigrationParameter, value: string | boolean): void {
    this.drafts = new Map(this.drafts).set(name, value);
  }

  private discard(): void {
    this.drafts = new Map();
    this.outcome = null;
  }

  private async apply(e: Event): Promise<void> {
    e.preventDefault();
    const m = this.migration.service;
    if (!m) return;
    const args = this.changedValues(m.options.queryParameters());
    const names = Object.keys(args) as MigrationParameter[];
    if (names.length === 0) return;
    this.sentNames = names;
    const reply = await runCommand(this.qmp, { execute: 'migrate-set-parameters', arguments: args }, (o) => (this.outcome = o));
    if (!reply.error) {
      // Applied: the fields show the service's values again (and keep anything typed meanwhile).
      const drafts = new Map(this.drafts);
      for (const n of names) if (drafts.get(n) !== undefined && parseDraft(n, drafts.get(n)!) === args[n]) drafts.delete(n);
      this.drafts = drafts;
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-parameters': TmParameters;
  }
}
