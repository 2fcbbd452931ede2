import { LitElement, css, html, nothing, svg } from 'lit';
import { customElement, query, state } from 'lit/decorators.js';
import { MachineController } from './controllers/machine-controller.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import type { QmpCommand } from './services/qmp-client.js';
import { panelStyles } from './styles/theme.js';

const icon = (d: unknown) => html`<svg viewBox="0 0 16 16" width="15" height="15" aria-hidden="true" fill="currentColor">${d}</svg>`;
const PLAY = svg`<path d="M4 2.5v11l9.5-5.5z" />`;
const PAUSE = svg`<rect x="3.5" y="2.5" width="3.2" height="11" rx=".8" /><rect x="9.3" y="2.5" width="3.2" height="11" rx=".8" />`;
const RESET = svg`<path d="M8 2.5a5.5 5.5 0 1 1-5.2 3.7l1.4.5A4 4 0 1 0 8 4v2L4.8 3.2 8 .5z" />`;
const FILE = svg`<path d="M3.5 1.5h6l3 3v10h-9zM9 2v3h3" fill="none" stroke="currentColor" stroke-width="1.3" stroke-linejoin="round" />`;

/** The command as the feedback line shows it: an ELF's base64 would fill the screen. */
function shortCommand(cmd: QmpCommand): string {
  return JSON.stringify(cmd, (key, value) =>
    key === 'elf' && typeof value === 'string' ? `<${Math.floor((value.length * 3) / 4)} bytes of ELF, base64>` : value,
  );
}

/** Reads a file as base64 (the browser's data: URL encoder does the work). */
function fileToBase64(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error ?? new Error('could not read the file'));
    reader.readAsDataURL(file);
  });
}

/**
 * Run, pause and reset the machine, or load another program into it. Every action is a QMP
 * command, shown as it is sent, with QEMU's error when one comes back.
 */
@customElement('tm-controls')
export class TmControls extends LitElement {
  static override styles = [
    panelStyles,
    feedbackStyles,
    css`
      .row {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        column-gap: 1.25rem;
        row-gap: 0.5rem;
      }
      .group {
        display: flex;
        align-items: center;
        gap: 0.5rem;
      }
      .group.program {
        flex: 1 1 auto;
        flex-wrap: wrap;
      }
      .waiting {
        margin: 0;
        font-size: 0.92rem;
      }
      .waiting b {
        color: var(--tm-info);
      }
      label {
        display: inline-flex;
        align-items: center;
        gap: 0.4rem;
        font-size: 0.85rem;
        color: var(--tm-muted);
        font-weight: 560;
      }
      select {
        font-family: var(--tm-mono);
      }
      input.args {
        font-family: var(--tm-mono);
        flex: 1 1 6rem;
        width: 6rem;
      }
      input[type='file'] {
        display: none;
      }
      .desc {
        margin: 0.55rem 0 0;
        font-size: 0.88rem;
        color: var(--tm-muted);
      }
      .desc code {
        color: var(--tm-text);
      }
      /* This panel's feedback line sits a little lower, and its failed command stays all red. */
      .feedback {
        margin-top: 0.55rem;
      }
      .feedback.failed .sent {
        color: inherit;
      }
    `,
  ];

  @state() private selected = '';
  /** Until the user picks a program, the picker follows the one the machine runs. */
  private picked = false;
  @state() private args = '';
  @state() private busy = false;
  @state() private last: CommandOutcome | null = null;
  @query('input[type=file]') private fileInput!: HTMLInputElement;

  private readonly machine = new MachineController(this);
  private readonly migration = new MigrationController(this, { intervalMs: 500 });
  private readonly qmp = new QmpController(this);

  protected override willUpdate(): void {
    const svc = this.machine.service;
    if (this.picked || !svc || svc.programs.length === 0) return;
    const p = svc.findProgram(svc.program) ?? svc.findProgram(this.selected) ?? svc.programs[0]!;
    if (p.name === this.selected) return;
    this.selected = p.name;
    this.args = svc.program === p.name ? svc.args : p.defaultArgs;
  }

  override render() {
    const svc = this.machine.service;
    const running = svc?.running ?? false;
    const program = svc?.findProgram(this.selected);
    if (svc?.runstate === 'inmigrate') return this.renderWaiting();
    const spent = this.spent(svc?.runstate);
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Machine</h2>
        <p class="hint">Each button sends a QMP command, the same you could type into the monitor.</p>
      </div>
      <div class="panel-body">
        <div class="row">
          ${spent
            ? html`<p class="waiting">The guest now runs in the destination tab: <b>load a program</b> to start afresh here.</p>`
            : html`<span class="group">
                ${running
                  ? html`<button class="pause" ?disabled=${this.busy} @click=${() => this.run({ execute: 'stop' })} title="QMP stop">${icon(PAUSE)} Pause</button>`
                  : html`<button class="run" ?disabled=${this.busy} @click=${() => this.run({ execute: 'cont' })} title="QMP cont">${icon(PLAY)} Run</button>`}
                <button ?disabled=${this.busy} @click=${() => this.run({ execute: 'system_reset' })} aria-label="Reset the machine" title="Reset the CPU and reload the program (QEMU system_reset)">
                  ${icon(RESET)} Reset
                </button>
              </span>`}
          <span class="group program">
            <label
              >Program
              <select aria-label="Program to load" .value=${this.selected} @change=${this.onPick}>
                ${(svc?.programs ?? []).map((p) => html`<option value=${p.name} ?selected=${p.name === this.selected}>${p.name}</option>`)}
              </select>
            </label>
            <input
              class="args"
              aria-label="Program arguments"
              title="The program's arguments (its command line)"
              placeholder="arguments"
              spellcheck="false"
              .value=${this.args}
              @input=${this.onArgs}
              @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.loadBuiltin()}
            />
            <button class="primary" ?disabled=${this.busy || !program} @click=${this.loadBuiltin} aria-label="Load the program" title="QMP x-tabmig-load">Load</button>
            <button ?disabled=${this.busy} @click=${() => this.fileInput.click()} title="Load a RISC-V RV32IM ELF executable from your computer" aria-label="Load an ELF file">
              ${icon(FILE)} ELF…
            </button>
            <input type="file" accept=".elf,application/x-elf,application/x-executable,*/*" @change=${this.onFile} />
          </span>
        </div>
        ${program ? html`<p class="desc"><code>${program.name}</code>: ${program.description}</p>` : nothing}
        ${renderOutcome(this.last)}
      </div>
    </section>`;
  }

  /** A tab waiting for an incoming migration has no guest of its own to run or replace. */
  private renderWaiting() {
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Machine</h2>
      </div>
      <div class="panel-body">
        <p class="waiting">
          <b>Waiting for an incoming migration</b> (QEMU's <code>-incoming</code>): the guest, its program and its state arrive with it, and it
          runs here once the whole machine has arrived.
        </p>
      </div>
    </section>`;
  }

  /** The guest went to another tab (the migration committed): this copy may not run again. */
  private spent(runstate: string | undefined): boolean {
    const m = this.migration.service;
    if (!m || runstate !== 'postmigrate' || m.outgoingStatus !== 'completed') return false;
    const uri = m.outgoingUri ?? '';
    return !uri.startsWith('idb:') && !uri.startsWith('file:');
  }

  private onPick(e: Event): void {
    this.picked = true;
    this.selected = (e.target as HTMLSelectElement).value;
    this.args = this.machine.service?.findProgram(this.selected)?.defaultArgs ?? '';
  }

  private onArgs(e: Event): void {
    this.picked = true;
    this.args = (e.target as HTMLInputElement).value;
  }

  private loadBuiltin(): void {
    if (!this.selected) return;
    void this.run({ execute: 'x-tabmig-load', arguments: { program: this.selected, args: this.args } });
  }

  private async onFile(): Promise<void> {
    const file = this.fileInput.files?.[0];
    this.fileInput.value = '';
    if (!file) return;
    let elf: string;
    try {
      elf = await fileToBase64(file);
    } catch (e) {
      this.last = { cmd: `reading ${file.name}`, error: { class: 'GenericError', desc: String(e) }, pending: false };
      return;
    }
    await this.run({ execute: 'x-tabmig-load', arguments: { elf, name: file.name } });
  }

  private async run(cmd: QmpCommand): Promise<void> {
    await runCommand(
      this.qmp,
      cmd,
      (o) => {
        this.busy = o.pending;
        this.last = o;
      },
      shortCommand(cmd),
    );
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-controls': TmControls;
  }
}
