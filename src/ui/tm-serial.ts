import { LitElement, css, html } from 'lit';
import { customElement, query, state } from 'lit/decorators.js';
import { repeat } from 'lit/directives/repeat.js';
import { MachineController } from './controllers/machine-controller.js';
import { panelStyles } from './styles/theme.js';

/** Keys that do not produce text, as the bytes a serial terminal sends for them. */
const KEY_BYTES: Record<string, string> = {
  Enter: '\r',
  Backspace: '\x7f',
  Tab: '\t',
  Escape: '\x1b',
  ArrowUp: '\x1b[A',
  ArrowDown: '\x1b[B',
  ArrowRight: '\x1b[C',
  ArrowLeft: '\x1b[D',
  Home: '\x1b[H',
  End: '\x1b[F',
  Delete: '\x1b[3~',
};

/** The bytes for a key press, or null if the key is text (it arrives as an input event) or ours. */
function keyBytes(e: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'altKey' | 'metaKey'>): string | null {
  if (e.metaKey || e.altKey) return null;
  if (e.ctrlKey) {
    // Ctrl+A..Ctrl+Z and friends are control characters; Ctrl+V stays a paste.
    if (e.key.length === 1 && /[a-z@[\\\]^_]/i.test(e.key) && e.key.toLowerCase() !== 'v') {
      return String.fromCharCode(e.key.toUpperCase().charCodeAt(0) & 0x1f);
    }
    return null;
  }
  return KEY_BYTES[e.key] ?? null;
}

/**
 * The guest's serial console (its UART): what the guest prints, and a keyboard. Focus goes to a
 * transparent textarea over the terminal, so typing, pasting and input methods all work; text is
 * sent as typed, with line ends turned into CR as a terminal sends them.
 */
@customElement('tm-serial')
export class TmSerial extends LitElement {
  static override styles = [
    panelStyles,
    css`
      .term {
        position: relative;
        flex: 1 1 auto;
        min-height: 6rem;
        margin: 0 1rem 1rem;
        border-radius: 8px;
        background: var(--tm-term-bg);
        border: 1px solid #0b0f14;
        box-shadow: inset 0 1px 6px rgb(0 0 0 / 35%);
        cursor: text;
      }
      .term:focus-within {
        outline: 3px solid color-mix(in srgb, var(--tm-accent) 50%, transparent);
        outline-offset: 1px;
      }
      .screen {
        position: absolute;
        inset: 0;
        margin: 0;
        padding: 0.7rem 0.85rem;
        overflow: auto;
        color: var(--tm-term-fg);
        font-family: var(--tm-mono);
        font-size: 0.9rem;
        line-height: 1.4;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
        tab-size: 8;
        user-select: text;
        contain: strict;
      }
      .screen > div {
        /* Finished blocks keep their layout; only the last one changes as output arrives. */
        contain: layout style;
      }
      .screen::-webkit-scrollbar {
        width: 10px;
      }
      .screen::-webkit-scrollbar-thumb {
        background: #2c3644;
        border-radius: 5px;
      }
      .cursor {
        display: inline-block;
        width: 0.55em;
        height: 1.1em;
        vertical-align: text-bottom;
        background: var(--tm-term-dim);
        opacity: 0.5;
      }
      .term:focus-within .cursor {
        background: #7ee0a1;
        opacity: 1;
        animation: blink 1.1s steps(1) infinite;
      }
      @keyframes blink {
        50% {
          opacity: 0;
        }
      }
      .empty {
        color: var(--tm-term-dim);
        font-style: italic;
      }
      textarea {
        position: absolute;
        left: 0;
        bottom: 0;
        width: 1px;
        height: 1px;
        opacity: 0;
        border: 0;
        padding: 0;
        resize: none;
        overflow: hidden;
        white-space: nowrap;
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
  @query('textarea') private input!: HTMLTextAreaElement;
  @state() private focused = false;

  private readonly machine = new MachineController(this);
  /** Whether the view was scrolled to the end before the last update (then it follows new output). */
  private stick = true;

  override render() {
    const serial = this.machine.service?.serial;
    const empty = !serial || (serial.blocks.length === 0 && serial.tail === '');
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Serial console</h2>
        <p class="hint">The guest's UART. Click here and type: keys go to the guest.</p>
        <span class="keys ${this.focused ? 'on' : ''}">${this.focused ? 'keyboard → guest' : 'click to type'}</span>
      </div>
      <div class="term" @mouseup=${this.onMouseUp}>
        <div class="screen" role="log" aria-live="off" aria-label="Serial output" @scroll=${this.onScroll}>${empty
            ? html`<div><span class="empty">No output yet.</span><span class="cursor"></span></div>`
            : html`${repeat(serial.blocks, (b) => b.id, (b) => html`<div>${b.text}</div>`)}<div>${serial.tail}<span class="cursor"></span></div>`}</div>
        <textarea
          aria-label="Type to the guest"
          autocapitalize="off"
          autocomplete="off"
          spellcheck="false"
          @keydown=${this.onKeyDown}
          @input=${this.onInput}
          @compositionend=${this.flush}
          @focus=${() => (this.focused = true)}
          @blur=${() => (this.focused = false)}
        ></textarea>
      </div>
    </section>`;
  }

  override focus(): void {
    this.input?.focus({ preventScroll: true });
  }

  protected override willUpdate(): void {
    const screen = this.screen;
    if (screen) this.stick = screen.scrollHeight - screen.scrollTop - screen.clientHeight < 24;
  }

  protected override updated(): void {
    if (this.stick && this.screen) this.screen.scrollTop = this.screen.scrollHeight;
  }

  private onScroll(): void {
    const screen = this.screen;
    this.stick = screen.scrollHeight - screen.scrollTop - screen.clientHeight < 24;
  }

  /** A click focuses the keyboard; a drag selects text to copy instead. */
  private onMouseUp(): void {
    const selection = (this.shadowRoot as ShadowRoot & { getSelection?: () => Selection | null }).getSelection?.() ?? document.getSelection();
    if (!selection || selection.isCollapsed) this.focus();
  }

  private onKeyDown(e: KeyboardEvent): void {
    if (e.isComposing) return;
    const bytes = keyBytes(e);
    if (bytes === null) return;
    e.preventDefault();
    this.machine.service?.sendInput(bytes);
  }

  private onInput(e: InputEvent): void {
    if (!e.isComposing) this.flush();
  }

  /** Sends what was typed or pasted into the textarea, line ends as CR. */
  private flush(): void {
    const text = this.input.value.replace(/\r?\n/g, '\r');
    this.input.value = '';
    this.machine.service?.sendInput(text);
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-serial': TmSerial;
  }
}
