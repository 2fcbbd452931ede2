import { ContextConsumer } from '@lit/context';
import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { compareContext } from './contexts/compare-context.js';
import { MigrationController } from './controllers/migration-controller.js';
import type { CompareProgress } from './services/compare-service.js';
import { COMPARE_VARIANTS, variantById, type CompareVariant } from './compare-variants.js';
import { MachineController } from './controllers/machine-controller.js';
import { formatCount, formatDuration } from './format.js';
import { guestDowntime } from './tm-run-comparison.js';
import { isSetupOrActive } from './services/migration-view.js';
import { panelStyles } from './styles/theme.js';
import './tm-run-comparison.js';
import { toggled } from './toggled.js';

/**
 * Compare: one click migrates the same guest (same program, arguments and RAM size) to the same
 * other tab by stop-and-copy, precopy and postcopy, and precopy with each byte reducer the class
 * ticks (xbzrle, compress, x-multifd, auto-converge), in turn, then shows the table and overlaid
 * charts. Every step is a QMP command (CompareService); the results go to the run history.
 */
@customElement('tm-compare')
export class TmCompare extends LitElement {
  static override styles = [
    panelStyles,
    css`
      form {
        display: grid;
        grid-template-columns: auto minmax(0, 1fr);
        gap: 0.5rem 0.8rem;
        align-items: center;
        font-size: 0.9rem;
      }
      fieldset {
        grid-column: 1 / -1;
        border: 1px solid var(--tm-border);
        border-radius: 8px;
        margin: 0;
        padding: 0.4rem 0.7rem 0.5rem;
      }
      legend {
        font-size: 0.82rem;
        color: var(--tm-muted);
      }
      fieldset label {
        display: flex;
        gap: 0.45rem;
        align-items: baseline;
        padding: 0.15rem 0;
      }
      fieldset input {
        /* A long explanation beside it must not squeeze the box. */
        flex: none;
      }
      fieldset small {
        color: var(--tm-muted);
      }
      .actions {
        grid-column: 1 / -1;
        display: flex;
        gap: 0.6rem;
        align-items: center;
      }
      .progress {
        margin: 0.6rem 0;
        font-size: 0.88rem;
        color: var(--tm-muted);
      }
      .progress b {
        color: var(--tm-text);
      }
      .runs {
        margin: 0;
        padding-left: 1.3rem;
      }
      .runs li.done::marker {
        content: '✓ ';
        color: var(--tm-ok);
      }
      .runs li.now {
        color: var(--tm-text);
      }
      .runs li.now::marker {
        content: '▶ ';
        color: var(--tm-accent);
      }
      .plan {
        margin-top: 0.7rem;
        padding: 0.6rem 0.8rem;
        border-radius: 8px;
        border: 1px solid var(--tm-border);
        background: var(--tm-surface-2);
        font-size: 0.88rem;
      }
      .plan h3 {
        margin: 0 0 0.3rem;
        font-size: 0.9rem;
      }
      .plan ol {
        margin: 0 0 0.4rem;
        padding-left: 1.2rem;
      }
      .plan li + li {
        margin-top: 0.2rem;
      }
    `,
  ];

  @state() private destination = '';
  @state() private program = 'stress';
  @state() private args = 'wss=16M rate=2M mode=random';
  /** Ids of the variants ticked (compare-variants.ts). */
  @state() private selected = new Set<string>(COMPARE_VARIANTS.filter((v) => v.byDefault).map((v) => v.id));
  @state() private progress: CompareProgress | null = null;
  /** The destination a plan is shown for ('' none): Compare says what it will do before it does it. */
  @state() private planFor = '';
  private readonly machine = new MachineController(this);

  private readonly migration = new MigrationController(this, { intervalMs: 500 });
  private readonly compare = new ContextConsumer(this, { context: compareContext, subscribe: true });

  /** The capabilities a variant needs that this build does not have (none: it can run). */
  private missing(v: CompareVariant): string[] {
    const known = new Set<string>(this.migration.service?.options.queryCapabilities().map((c) => c.capability) ?? []);
    return v.capabilities.filter((c) => !known.has(c));
  }

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const peers = (m.signaling?.peers ?? []).filter((p) => p.id !== m.signaling?.id);
    const running = this.progress !== null && !this.progress.done;
    const busy = running || isSetupOrActive(m.outgoingStatus);
    const dest = this.destination && peers.some((p) => p.id === this.destination) ? this.destination : (peers[0]?.id ?? '');
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Compare</h2>
        <p class="hint">
          Moves the same guest to the same tab by each method, one after another, and sets the results side by side. The other tab
          reloads itself as a fresh destination for each run.
        </p>
      </div>
      <div class="panel-body">
        <form @submit=${(e: Event) => (e.preventDefault(), (this.planFor = dest))}>
          <label for="cmp-dest">Destination tab</label>
          <select id="cmp-dest" .value=${dest} @change=${(e: Event) => (this.destination = (e.target as HTMLSelectElement).value)} ?disabled=${running}>
            ${peers.length ? peers.map((p) => html`<option value=${p.id}>${p.name || p.id}</option>`) : html`<option value="">no other tab open</option>`}
          </select>
          <label for="cmp-prog">Guest program</label>
          <select id="cmp-prog" .value=${this.program} @change=${(e: Event) => (this.program = (e.target as HTMLSelectElement).value)} ?disabled=${running}>
            <option value="stress">stress: dirties RAM at a set rate</option>
            <option value="ab">ab: QEMU migration-test's a-b loop</option>
          </select>
          <label for="cmp-args">Its arguments</label>
          <input id="cmp-args" class="mono" .value=${this.args} @input=${(e: Event) => (this.args = (e.target as HTMLInputElement).value)} ?disabled=${running} />
          ${this.renderChoices('Methods', COMPARE_VARIANTS.filter((v) => v.method !== 'precopy' || v.capabilities.length === 0), running)}
          ${this.renderChoices('Precopy with a byte reducer', COMPARE_VARIANTS.filter((v) => v.method === 'precopy' && v.capabilities.length > 0), running)}
          <div class="actions">
            <button class="primary" type="submit" ?disabled=${busy || !dest || this.selected.size === 0}>Plan the comparison…</button>
            ${running ? html`<button type="button" @click=${() => this.compare.value?.cancel()}>Stop after this run</button>` : nothing}
          </div>
        </form>
        ${this.planFor && !running ? this.renderPlan(this.planFor, peers.find((p) => p.id === this.planFor)?.name ?? this.planFor) : nothing}
        ${this.progress ? this.renderProgress(this.progress) : nothing}
        ${this.progress?.runs.length ? html`<tm-run-comparison .runs=${this.progress.runs}></tm-run-comparison>` : nothing}
      </div>
    </section>`;
  }

  /** What Compare will do, said before it does any of it. */
  private renderPlan(dest: string, destName: string) {
    const variants = this.chosen();
    const machine = this.machine.service;
    const here = machine?.program ? `${machine.program}${machine.args ? ` ${machine.args}` : ''}` : 'no program';
    return html`<div class="plan" role="region" aria-label="What Compare will do" data-plan>
      <h3>Compare will, in this order:</h3>
      <ol>
        <li>load <code>${this.program} ${this.args}</code> in this tab (it replaces <code>${here}</code>);</li>
        ${variants.map(
          (v) => html`<li>
            reload <b>${destName}</b> as a fresh <code>-incoming defer</code> destination${v.destinationCapabilities.length ? html` with <code>${v.destinationCapabilities.join(', ')}</code> on` : nothing}
            (what it ran is discarded), then move the guest there by <b>${v.label}</b>${v.capabilities.length ? html` (<code>${v.capabilities.join(', ')}</code> on here)` : nothing}: ${v.explain}
          </li>`,
        )}
        <li>
          put this tab back: its capabilities as they are now, <code>${here}</code> loaded again${machine?.running ? ' and running' : ''}; <b>${destName}</b> keeps the
          last run's guest and loses the comparison's address and capabilities.
        </li>
      </ol>
      <p class="hint">About a minute per run on a busy machine; every step is a QMP command, listed below as it happens.</p>
      <div class="actions">
        <button class="primary start-compare" @click=${() => this.start(dest)}>Start the comparison</button>
        <button @click=${() => (this.planFor = '')}>Not now</button>
      </div>
    </div>`;
  }

  /** Every planned run with where it is: done (its figures), running (its step), to come. */
  private renderProgress(p: CompareProgress) {
    return html`<div class="progress" aria-live="polite" role="status">
      <ol class="runs">
        ${p.planned.map((id, i) => {
          const run = p.runs.find((r) => r.label === id);
          const now = p.method === id;
          const state = run ? 'done' : now ? 'now' : i < p.finished ? 'stopped' : 'next';
          return html`<li class=${state} data-run-state=${state}>
            <b>${variantById(id)?.label ?? id}</b>
            ${run
              ? html`: ${formatDuration(run.result['total-time'] ?? 0)}, down ${formatCount(guestDowntime(run) ?? 0)} ms`
              : now
                ? html`: ${p.step}`
                : state === 'stopped'
                  ? ': not stored'
                  : ': to come'}
          </li>`;
        })}
      </ol>
      ${p.method === null ? html`<p><b>${p.step}</b>${p.error ? html`<span class="error-text"> — ${p.error}</span>` : nothing}</p>` : nothing}
    </div>`;
  }

  private chosen(): CompareVariant[] {
    return COMPARE_VARIANTS.filter((v) => this.selected.has(v.id) && this.missing(v).length === 0);
  }

  /** One labelled checkbox per variant, with what QEMU does with it. */
  private renderChoices(legend: string, variants: readonly CompareVariant[], running: boolean) {
    return html`<fieldset>
      <legend>${legend}</legend>
      ${variants.map((v) => {
        const missing = this.missing(v);
        return html`<label data-variant=${v.id}>
          <input
            type="checkbox"
            .checked=${this.selected.has(v.id) && missing.length === 0}
            ?disabled=${missing.length > 0 || running}
            @change=${(e: Event) => this.toggle(v.id, (e.target as HTMLInputElement).checked)}
          />
          <span
            ><b>${v.label}</b>
            <small>${missing.length ? `not in this build (no ${missing.join(', ')} capability)` : v.explain}</small></span
          >
        </label>`;
      })}
    </fieldset>`;
  }

  private toggle(id: string, on: boolean): void {
    this.selected = toggled(this.selected, id, on);
  }

  private async start(destination: string): Promise<void> {
    const svc = this.compare.value;
    const m = this.migration.service;
    if (!svc || !m || !destination) return;
    this.planFor = '';
    const variants = this.chosen();
    const ramSize = `${(m.pageState.pageCount * 4096) >> 20}M`;
    this.progress = { planned: variants.map((v) => v.id), finished: 0, method: null, step: 'Starting', runs: [], error: null, done: false };
    await svc.run({ destination, program: this.program, args: this.args, ramSize, variants }, (p) => (this.progress = p));
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-compare': TmCompare;
  }
}
