import { LitElement, css, html } from 'lit';
import { customElement, query, state } from 'lit/decorators.js';
import { formatTime } from './format.js';
import { QmpController } from './controllers/qmp-controller.js';
import { highlightJson } from './json-highlight.js';
import { hmpCommand, type QmpCommand, type QmpEvent, type QmpReply } from './services/qmp-client.js';
import { chipStyles, panelStyles } from './styles/theme.js';

type Entry =
  | { kind: 'qmp-in'; text: string }
  | { kind: 'hmp-in'; text: string }
  | { kind: 'reply'; text: string; error: boolean; pending?: boolean }
  | { kind: 'hmp-out'; text: string }
  | { kind: 'event'; name: string; data: string; time: string };

const KEEP_ENTRIES = 400;
const KEEP_HISTORY = 100;

const CHIPS: { label: string; line: string; title: string }[] = [
  { label: 'query-status', line: '{"execute": "query-status"}', title: 'QMP: is the guest running?' },
  { label: 'stop', line: '{"execute": "stop"}', title: 'QMP: pause the guest' },
  { label: 'cont', line: '{"execute": "cont"}', title: 'QMP: resume the guest' },
  { label: 'info status', line: 'info status', title: 'HMP: the runstate in words' },
  { label: 'xp /8xw 0x80000000', line: 'xp /8xw 0x80000000', title: 'HMP: dump 8 words of guest RAM at its start' },
];

function eventTime(e: QmpEvent): string {
  const ms = e.timestamp.seconds * 1000 + Math.floor(e.timestamp.microseconds / 1000);
  return formatTime(ms, true);
}

/**
 * A QMP monitor: JSON goes to QMP as typed; anything else is an HMP line, sent through
 * human-monitor-command. Shows each command, its reply, and QMP events as they arrive.
 */
@customElement('tm-qmp-console')
export class TmQmpConsole extends LitElement {
  static override styles = [
    panelStyles,
    chipStyles,
    css`
      .chips {
        display: flex;
        flex-wrap: wrap;
        gap: 0.4rem;
        padding: 0 1rem 0.6rem;
      }
      .chip {
        padding: 0.22rem 0.65rem;
      }
      .chip.hmp {
        background: var(--tm-neutral-soft);
        color: #3c4655;
      }
      .chip.hmp:hover:not(:disabled) {
        background: #e0e4ea;
      }
      .log {
        flex: 1 1 auto;
        min-height: 16rem;
        margin: 0 1rem;
        padding: 0.6rem 0.75rem;
        overflow: auto;
        border: 1px solid var(--tm-border);
        border-radius: 8px;
        background: #fafbfc;
        font-family: var(--tm-mono);
        font-size: 0.84rem;
        line-height: 1.45;
      }
      .entry {
        margin: 0;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
      }
      .entry + .entry {
        margin-top: 0.15rem;
      }
      .qmp-in,
      .hmp-in {
        margin-top: 0.55rem !important;
        color: var(--tm-accent);
        font-weight: 600;
      }
      .entry:first-child {
        margin-top: 0 !important;
      }
      .dir {
        display: inline-block;
        width: 1.4em;
        color: var(--tm-muted);
        font-weight: 400;
      }
      .reply {
        color: #2d3643;
      }
      .reply.error {
        color: var(--tm-danger);
      }
      .reply.pending {
        color: var(--tm-muted);
      }
      .hmp-out {
        color: #2d3643;
      }
      .event {
        color: var(--tm-info);
      }
      .event .name {
        font-weight: 650;
      }
      .event .time {
        color: var(--tm-muted);
        margin-left: 0.5em;
      }
      .j-key {
        color: #3451d1;
      }
      .j-str {
        color: #1f7a3a;
      }
      .j-num {
        color: #b35c00;
      }
      .j-lit {
        color: #9c36b5;
      }
      .error .j-key,
      .error .j-str {
        color: inherit;
      }
      .empty {
        color: var(--tm-muted);
        font-family: var(--tm-font);
        font-size: 0.88rem;
      }
      .empty code {
        color: var(--tm-text);
      }
      form {
        display: flex;
        gap: 0.5rem;
        align-items: center;
        padding: 0.7rem 1rem 1rem;
      }
      .prompt {
        font-family: var(--tm-mono);
        color: var(--tm-muted);
        font-size: 0.9rem;
      }
      form input {
        flex: 1;
        font-family: var(--tm-mono);
        font-size: 0.9rem;
      }
      label.events {
        display: inline-flex;
        align-items: center;
        gap: 0.3rem;
        margin-left: auto;
        font-size: 0.8rem;
        color: var(--tm-muted);
        cursor: pointer;
      }
      .panel-head .hint {
        order: 3;
        flex-basis: 100%;
      }
      .tools {
        display: flex;
        align-items: center;
        gap: 0.6rem;
        margin-left: auto;
      }
      .link {
        padding: 0.1rem 0.4rem;
        border: 0;
        background: none;
        color: var(--tm-muted);
        font-size: 0.8rem;
        font-weight: 500;
      }
      .link:hover:not(:disabled) {
        background: var(--tm-surface-2);
        color: var(--tm-text);
      }
    `,
  ];

  @state() private entries: Entry[] = [];
  @state() private showEvents = true;
  @state() private busy = false;
  @query('.log') private log!: HTMLDivElement;
  @query('form input') private input!: HTMLInputElement;

  private readonly qmp = new QmpController(this, (e) => this.onEvent(e));
  private history: string[] = [];
  /** Position while walking the history with the arrow keys (history.length: the draft). */
  private cursor = 0;
  private draft = '';
  private stick = true;

  override render() {
    return html`<section class="panel">
      <div class="panel-head">
        <h2>QMP monitor</h2>
        <p class="hint">Talk to the machine as QEMU's tools do: type QMP JSON, or an HMP line such as <code>info status</code>.</p>
        <span class="tools">
          <label class="events" title="Show QMP events (STOP, RESUME, MIGRATION, …) as they arrive"
            ><input type="checkbox" .checked=${this.showEvents} @change=${(e: Event) => (this.showEvents = (e.target as HTMLInputElement).checked)} /> events</label
          >
          <button class="link" @click=${() => (this.entries = [])} ?disabled=${this.entries.length === 0} aria-label="clear the QMP transcript">clear</button>
        </span>
      </div>
      <div class="chips" role="group" aria-label="Quick commands">
        ${CHIPS.map(
          (c) =>
            html`<button class="chip ${c.line.startsWith('{') ? '' : 'hmp'}" title=${c.title} ?disabled=${this.busy} @click=${() => this.send(c.line)}>${c.label}</button>`,
        )}
      </div>
      <div class="log" role="log" aria-label="QMP transcript" tabindex="0" @scroll=${this.onScroll}>
        ${this.entries.length === 0
          ? html`<p class="empty">Replies and events appear here. Try a chip above, or type <code>{"execute": "query-status"}</code>.</p>`
          : this.entries.filter((e) => this.showEvents || e.kind !== 'event').map((e) => this.renderEntry(e))}
      </div>
      <form @submit=${this.onSubmit}>
        <span class="prompt" aria-hidden="true">›</span>
        <input
          aria-label="QMP or HMP command"
          placeholder='{"execute":"query-status"}  or  info status'
          autocomplete="off"
          spellcheck="false"
          @keydown=${this.onKeyDown}
        />
        <button class="primary" type="submit" ?disabled=${this.busy} aria-label="Send the command">Send</button>
      </form>
    </section>`;
  }

  private renderEntry(e: Entry) {
    switch (e.kind) {
      case 'qmp-in':
        return html`<p class="entry qmp-in"><span class="dir" title="sent">→</span>${e.text}</p>`;
      case 'hmp-in':
        return html`<p class="entry hmp-in"><span class="dir" title="sent">→</span>(qemu) ${e.text}</p>`;
      case 'reply':
        return html`<p class="entry reply ${e.error ? 'error' : ''} ${e.pending ? 'pending' : ''}">${
          e.pending ? e.text : highlightJson(e.text)
        }</p>`;
      case 'hmp-out':
        return html`<p class="entry hmp-out">${e.text}</p>`;
      case 'event':
        return html`<p class="entry event"><span class="dir" title="event">⚡</span><span class="name">${e.name}</span> ${e.data}<span class="time">${e.time}</span></p>`;
    }
  }

  protected override willUpdate(): void {
    const log = this.log;
    if (log) this.stick = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  }

  protected override updated(): void {
    if (this.stick && this.log) this.log.scrollTop = this.log.scrollHeight;
  }

  private onScroll(): void {
    const log = this.log;
    this.stick = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  }

  private add(...entries: Entry[]): void {
    this.entries = [...this.entries, ...entries].slice(-KEEP_ENTRIES);
  }

  private onEvent(e: QmpEvent): void {
    const data = e.data === undefined ? '' : JSON.stringify(e.data);
    this.add({ kind: 'event', name: e.event, data, time: eventTime(e) });
  }

  private onSubmit(e: Event): void {
    e.preventDefault();
    const line = this.input.value.trim();
    if (!line || this.busy) return;
    this.input.value = '';
    void this.send(line);
  }

  private onKeyDown(e: KeyboardEvent): void {
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    if (this.history.length === 0) return;
    e.preventDefault();
    if (this.cursor === this.history.length) this.draft = this.input.value;
    this.cursor = Math.max(0, Math.min(this.history.length, this.cursor + (e.key === 'ArrowUp' ? -1 : 1)));
    this.input.value = this.cursor === this.history.length ? this.draft : this.history[this.cursor]!;
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
  }

  private remember(line: string): void {
    if (this.history[this.history.length - 1] !== line) this.history.push(line);
    if (this.history.length > KEEP_HISTORY) this.history.shift();
    this.cursor = this.history.length;
    this.draft = '';
  }

  /** Sends one console line: JSON as QMP, as typed; anything else as HMP. */
  async send(line: string): Promise<void> {
    this.remember(line);
    this.stick = true;
    if (!line.startsWith('{')) {
      this.add({ kind: 'hmp-in', text: line });
      this.finish(await this.exchange(hmpCommand(line)), true);
      return;
    }
    let cmd: unknown;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      this.add({ kind: 'qmp-in', text: line });
      this.finish({ error: { class: 'GenericError', desc: `JSON parse error, ${(err as Error).message}` } }, false);
      return;
    }
    this.add({ kind: 'qmp-in', text: JSON.stringify(cmd) });
    if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd)) {
      this.finish({ error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } }, false);
      return;
    }
    this.finish(await this.exchange(cmd as QmpCommand), false);
  }

  private async exchange(cmd: QmpCommand): Promise<QmpReply> {
    this.busy = true;
    this.add({ kind: 'reply', text: 'waiting for the reply…', error: false, pending: true });
    try {
      return await this.qmp.execute(cmd);
    } finally {
      this.busy = false;
      this.entries = this.entries.filter((e) => !(e.kind === 'reply' && e.pending));
    }
  }

  private finish(reply: QmpReply, hmp: boolean): void {
    if (hmp && !reply.error && typeof reply.return === 'string') {
      const text = reply.return.replace(/\r\n/g, '\n').replace(/\n$/, '');
      if (text) this.add({ kind: 'hmp-out', text });
      return;
    }
    this.add({ kind: 'reply', text: JSON.stringify(reply, null, 2), error: reply.error !== undefined });
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-qmp-console': TmQmpConsole;
  }
}
