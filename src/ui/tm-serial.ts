import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import xtermCss from '@xterm/xterm/css/xterm.css?inline';
import { LitElement, css, html, unsafeCSS } from 'lit';
import { customElement, query, state } from 'lit/decorators.js';
import { MachineController } from './controllers/machine-controller.js';
import { MigrationController } from './controllers/migration-controller.js';
import { formatTime } from './format.js';
import { SerialCollapse } from './services/serial-collapse.js';
import type { MigrationView } from './services/migration-view.js';
import { panelStyles } from './styles/theme.js';

/** Dim, then back to normal: the console's own notes, apart from what the guest printed. */
const NOTE = (text: string) => `\x1b[2;36m── ${text} ──\x1b[0m\r\n`;

/**
 * Where this tab's guest came from, for the mark its console prints when an incoming migration
 * completes: the service's log names the source tab (or the snapshot) when it connects.
 */
function arrivedFrom(m: MigrationView): string {
  for (let i = m.log.length - 1; i >= 0; i--) {
    const text = m.log[i]!.text;
    const tab = /^incoming migration from '([^']*)' \((.*)\)$/.exec(text);
    if (tab) return tab[2] && tab[2] !== `Tab ${tab[1]}` ? `${tab[2]} (webrtc:${tab[1]})` : `Tab ${tab[1]} (webrtc:${tab[1]})`;
    const saved = /^incoming migration from (\S+)$/.exec(text);
    if (saved) return saved[1]!;
  }
  return 'another tab';
}

/**
 * The guest's serial console (its UART) on xterm.js: colours, cursor moves and line redraws as a
 * real terminal shows them; typing, pasting and control keys go to the guest as a terminal sends
 * them. The stress guest's "clock jumped" lines collapse into one counting line, and a guest that
 * arrives by migration gets a mark saying where from, its output following on below.
 */
@customElement('tm-serial')
export class TmSerial extends LitElement {
  static override styles = [
    panelStyles,
    unsafeCSS(xtermCss),
    css`
      .term {
        position: relative;
        flex: 1 1 auto;
        min-height: 6rem;
        margin: 0 1rem 1rem;
        padding: 0.5rem 0.2rem 0.3rem 0.7rem;
        border-radius: 8px;
        background: var(--tm-term-bg);
        border: 1px solid #0b0f14;
        box-shadow: inset 0 1px 6px rgb(0 0 0 / 35%);
        cursor: text;
        overflow: hidden;
      }
      .term:focus-within {
        outline: 3px solid color-mix(in srgb, var(--tm-accent) 50%, transparent);
        outline-offset: 1px;
      }
      .screen {
        position: absolute;
        inset: 0.5rem 0.2rem 0.3rem 0.7rem;
      }
      .xterm .xterm-viewport {
        background: var(--tm-term-bg) !important;
      }
      .keys {
        margin-left: auto;
        font-size: 0.8rem;
        color: var(--tm-muted);
      }
      .keys.on {
        color: var(--tm-ok);
        font-weight: 600;
      }
    `,
  ];

  @query('.screen') private screen!: HTMLDivElement;
  @state() private focused = false;

  private readonly machine = new MachineController(this);
  private readonly migration = new MigrationController(this, { onChange: () => this.followIncoming() });
  private terminal: Terminal | null = null;
  private fit: FitAddon | null = null;
  private resize: ResizeObserver | null = null;
  private collapse = new SerialCollapse();
  private unlisten: (() => void) | null = null;
  private listening: unknown = null;
  private incoming = '';

  override render() {
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Serial console</h2>
        <p class="hint">The guest's UART. Click here and type: keys go to the guest.</p>
        <span class="keys ${this.focused ? 'on' : ''}">${this.focused ? 'keyboard → guest' : 'click to type'}</span>
      </div>
      <div class="term" @focusin=${() => (this.focused = true)} @focusout=${() => (this.focused = false)}>
        <div class="screen" role="log" aria-label="Serial output"></div>
      </div>
    </section>`;
  }

  protected override firstUpdated(): void {
    const term = new Terminal({
      convertEol: true,
      cursorBlink: true,
      fontFamily: getComputedStyle(this).getPropertyValue('--tm-mono') || 'monospace',
      fontSize: 13,
      lineHeight: 1.2,
      scrollback: 5000,
      theme: { background: '#10151c', foreground: '#d5dde7', cursor: '#7ee0a1', selectionBackground: '#3a4a63' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(this.screen);
    // What the person types (keys, pastes with CR line ends, control keys) goes to the guest.
    term.onData((data) => this.machine.service?.sendInput(data));
    this.terminal = term;
    this.fit = fit;
    this.resize = new ResizeObserver(() => this.refit());
    this.resize.observe(this.screen);
    this.refit();
    this.listen();
  }

  protected override updated(): void {
    this.listen();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unlisten?.();
    this.unlisten = null;
    this.listening = null;
    this.resize?.disconnect();
    this.terminal?.dispose();
    this.terminal = null;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // Re-attached after a move: the terminal is made again on the next first render.
    if (this.hasUpdated && !this.terminal) this.firstUpdated();
  }

  override focus(): void {
    this.terminal?.focus();
  }

  /** The text on the terminal's screen and scrollback, line by line (for tests and copies). */
  screenText(): string {
    const buf = this.terminal?.buffer.active;
    if (!buf) return '';
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').replace(/\n+$/, '');
  }

  private refit(): void {
    if (!this.terminal || !this.screen.clientWidth || !this.screen.clientHeight) return;
    try {
      this.fit?.fit();
    } catch {
      // Not laid out yet: the next resize fits it.
    }
  }

  /** Follows the machine's serial output (again, when the service changed). */
  private listen(): void {
    const svc = this.machine.service;
    if (!this.terminal || !svc || this.listening === svc) return;
    this.unlisten?.();
    this.listening = svc;
    this.unlisten = svc.onSerial((text, fresh) => {
      const term = this.terminal;
      if (!term) return;
      if (fresh) {
        term.reset();
        this.collapse = new SerialCollapse();
      }
      term.write(this.collapse.write(text));
    });
  }

  /** An incoming migration that completes: the guest is here now, and its console says from where. */
  private followIncoming(): void {
    const m = this.migration.service;
    if (!m) return;
    const status = m.incomingStatus;
    if (status === this.incoming) return;
    const was = this.incoming;
    this.incoming = status;
    if (status === 'completed' && was !== '' && was !== 'completed') {
      this.terminal?.write(NOTE(`migrated here from ${arrivedFrom(m)} at ${formatTime(Date.now())}; the guest's output goes on below`));
    } else if (status === 'postcopy-active' && was !== '') {
      this.terminal?.write(NOTE(`migrated here from ${arrivedFrom(m)} at ${formatTime(Date.now())} (postcopy: pages follow on demand)`));
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-serial': TmSerial;
  }
}
