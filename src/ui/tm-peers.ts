import { LitElement, css, html, nothing } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { MachineController } from './controllers/machine-controller.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { formatBytes } from './format.js';
import { incomingPageUrl, navigateTo, type Navigate } from './page-url.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import { isDeferredIncoming, type PeerView } from './services/migration-view.js';
import { panelStyles } from './styles/theme.js';
import { CONSENT_KEY } from '../transport/consent.js';
import { carrySettingsOverReload } from './services/carried-settings.js';

/**
 * The tabs that can take part in a migration: this one (its peer id, to be typed or copied into
 * `webrtc:ID`), and the others found over BroadcastChannel, with a Migrate button for each one
 * that waits for an incoming migration. Everything goes through QMP, except turning this tab into
 * a destination: QEMU's -incoming is a start-up option, so that reloads the page.
 */
@customElement('tm-peers')
export class TmPeers extends LitElement {
  static override styles = [
    panelStyles,
    feedbackStyles,
    css`
      .me {
        display: grid;
        grid-template-columns: 1fr auto;
        align-items: center;
        gap: 0.1rem 0.75rem;
        padding: 0.55rem 0.9rem;
        border-radius: 10px;
        background: var(--tm-accent-soft);
        border: 1px solid #cdd6fa;
      }
      .label {
        font-size: 0.72rem;
        text-transform: uppercase;
        letter-spacing: 0.08em;
        color: var(--tm-muted);
        font-weight: 650;
      }
      .id {
        font-family: var(--tm-mono);
        font-size: 1.8rem;
        font-weight: 700;
        letter-spacing: 0.06em;
        color: var(--tm-accent);
        line-height: 1.15;
        user-select: all;
        overflow-wrap: anywhere;
      }
      .name {
        font-size: 0.95rem;
        color: var(--tm-text);
      }
      .me button {
        grid-row: 1 / span 3;
        grid-column: 2;
      }
      .incoming {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem 0.75rem;
        margin-top: 0.75rem;
      }
      .incoming.failed .why {
        flex-basis: 100%;
        color: var(--tm-danger);
      }
      .incoming .why {
        flex: 1 1 14rem;
        margin: 0;
        font-size: 0.84rem;
        color: var(--tm-muted);
      }
      .waiting {
        display: flex;
        align-items: center;
        gap: 0.6rem;
        margin-top: 0.75rem;
        padding: 0.55rem 0.8rem;
        border-radius: 8px;
        background: var(--tm-info-soft);
        color: var(--tm-info);
        font-weight: 650;
      }
      .waiting .bytes {
        margin-left: auto;
        font-family: var(--tm-mono);
        font-weight: 500;
      }
      .spinner {
        width: 1rem;
        height: 1rem;
        border-radius: 50%;
        border: 2.5px solid color-mix(in srgb, var(--tm-info) 30%, transparent);
        border-top-color: var(--tm-info);
        animation: spin 0.9s linear infinite;
        flex: none;
      }
      @keyframes spin {
        to {
          transform: rotate(360deg);
        }
      }
      @media (prefers-reduced-motion: reduce) {
        .spinner {
          animation: none;
        }
      }
      h3 {
        margin: 1rem 0 0.4rem;
        font-size: 0.85rem;
        font-weight: 650;
        color: var(--tm-muted);
        text-transform: uppercase;
        letter-spacing: 0.06em;
      }
      ul {
        list-style: none;
        margin: 0;
        padding: 0;
        display: flex;
        flex-direction: column;
        gap: 0.4rem;
      }
      li.peer {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.3rem 0.75rem;
        padding: 0.5rem 0.7rem;
        border-radius: 8px;
        border: 1px solid var(--tm-border);
        background: var(--tm-surface-2);
      }
      li.peer.ready {
        border-color: #9fd8ab;
        background: var(--tm-ok-soft);
      }
      .who {
        display: flex;
        flex-direction: column;
        min-width: 0;
        flex: 1 1 8rem;
      }
      .who .peer-name {
        font-weight: 650;
        overflow-wrap: anywhere;
      }
      .who .peer-id {
        font-family: var(--tm-mono);
        font-size: 0.9rem;
        color: var(--tm-muted);
      }
      li.peer input.code {
        font-family: var(--tm-mono);
        width: 7.5rem;
      }
      .who .via {
        font-size: 0.78rem;
        color: var(--tm-muted);
      }
      .state {
        font-size: 0.82rem;
        color: var(--tm-muted);
      }
      .ready .state {
        color: var(--tm-ok);
        font-weight: 650;
      }
      li.peer .feedback {
        flex-basis: 100%;
        margin-top: 0.1rem;
      }
      .empty {
        margin: 0;
        color: var(--tm-muted);
        font-size: 0.9rem;
      }
      a.open {
        font-size: 0.86rem;
        color: var(--tm-accent);
        font-weight: 560;
      }
    `,
  ];

  /** How the page is reloaded as a destination (tests replace it). */
  @property({ attribute: false }) navigate: Navigate = navigateTo;

  @state() private copied = false;
  @state() private listenOutcome: CommandOutcome | null = null;
  @state() private peerOutcome = new Map<string, CommandOutcome>();
  /** Pairing codes typed next to peers in other browsers. */
  private readonly codes = new Map<string, string>();

  private readonly migration = new MigrationController(this);
  private readonly machine = new MachineController(this);
  private readonly qmp = new QmpController(this);

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const sig = m.signaling;
    const peers = sig?.peers ?? [];
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Tabs</h2>
        <p class="hint">Tabs of this browser find each other over a BroadcastChannel, other browsers and machines through this server's relay (same <code>?room=</code>); the migration then flows over WebRTC, peer to peer.</p>
      </div>
      <div class="panel-body">
        <div class="me">
          <span class="label">This tab's peer id</span>
          <span class="id" title="Others migrate to webrtc:${sig?.id ?? ''}">${sig?.id || '—'}</span>
          <span class="name">${sig?.name ?? ''}</span>
          <button @click=${this.copy} ?disabled=${!sig?.id} aria-label=${this.copied ? 'Copied ✓ the peer id' : 'Copy the peer id'} title="Copy webrtc:${sig?.id ?? ''} to the clipboard">${this.copied ? 'Copied ✓' : 'Copy'}</button>
        </div>
        ${this.renderIncoming()}
        <h3>Other tabs and peers (${peers.length})</h3>
        ${peers.length
          ? html`<ul aria-label="Other tabs">${peers.map((p) => this.renderPeer(p))}</ul>`
          : html`<p class="empty">
              No other tab yet. <a class="open" href=${this.newTabUrl()} target="_blank" rel="noopener">Open a destination tab ↗</a>
              (this page with <code>?incoming=webrtc:</code>).
            </p>`}
      </div>
    </section>`;
  }

  private renderIncoming() {
    const m = this.migration.service!;
    if (m.waitingForIncoming) {
      const bytes = m.incomingBytesReceived;
      return html`<div class="waiting" role="status">
        <span class="spinner" aria-hidden="true"></span>
        ${m.incomingStatus === 'active' ? 'receiving a migration…' : 'waiting for an incoming migration…'}
        ${bytes > 0 ? html`<span class="bytes">${formatBytes(bytes)} received</span>` : nothing}
      </div>`;
    }
    if (this.machine.service?.runstate === 'inmigrate' && m.incomingStatus === 'failed') {
      // The load failed and started nothing: this tab may wait for another migration at once.
      return html`<div class="incoming failed" role="alert">
          <p class="why"><b>The incoming migration failed:</b> ${m.lastError ?? 'no reason given'}. Nothing of it runs here.</p>
          <button class="primary listen" @click=${this.listen} title="QMP migrate-incoming {uri: webrtc:}">Wait for a migration again</button>
        </div>
        ${renderOutcome(this.listenOutcome)}`;
    }
    if (isDeferredIncoming(m, this.machine.service?.runstate)) {
      return html`<div class="incoming">
          <button class="primary listen" @click=${this.listen}>Wait for a migration</button>
          <p class="why">Started with <code>?incoming=defer</code>: sends <code>migrate-incoming {"uri": "webrtc:"}</code> to accept one from any tab.</p>
        </div>
        ${renderOutcome(this.listenOutcome)}`;
    }
    return html`<div class="incoming">
      <button class="receive" @click=${this.receive} title="Reload this tab as ?incoming=webrtc: (its guest is discarded)">Receive a migration</button>
      <p class="why">QEMU's <code>-incoming</code> is a start-up option, so this reloads the tab empty, waiting (same <code>-m</code>).</p>
    </div>`;
  }

  private renderPeer(p: PeerView) {
    const myId = this.migration.service?.signaling?.id;
    const forOther = p.incoming && p.incomingFrom !== null && p.incomingFrom !== myId;
    const ready = p.incoming && !forOther;
    const outcome = this.peerOutcome.get(p.id);
    return html`<li class="peer ${ready ? 'ready' : ''}" data-peer=${p.id}>
      <span class="who"
        ><span class="peer-name">${p.name}</span><span class="peer-id">webrtc:${p.id}</span
        ><span class="via">${p.via === 'relay' ? 'another browser (relay): pairs by code or tls-creds' : p.via === 'token' ? 'copy-paste token' : 'this browser'}</span></span
      >
      <span class="state">${ready ? 'waiting for a migration' : forOther ? `waits for ${p.incomingFrom}` : 'not waiting for one'}</span>
      ${ready && p.via && p.via !== 'local'
        ? html`<input
            class="code"
            size="10"
            placeholder="pairing code"
            aria-label="Pairing code shown on ${p.name}"
            title="The code the destination tab shows (sets tls-creds); leave empty if tls-creds is already set"
            @input=${(e: Event) => this.codes.set(p.id, (e.target as HTMLInputElement).value)}
          />`
        : nothing}
      ${ready
        ? html`<button class="primary migrate" ?disabled=${outcome?.pending} @click=${() => this.migrateTo(p.id)} aria-label="Migrate → to ${p.name}" title="QMP migrate {uri: webrtc:${p.id}}">
            Migrate →
          </button>`
        : nothing}
      ${renderOutcome(outcome)}
    </li>`;
  }

  private newTabUrl(): string {
    const url = new URL(incomingPageUrl(location.href, 'webrtc:'));
    url.searchParams.delete('name'); // a second tab with this tab's name would be confusing
    return url.href.replace(/%3A/gi, ':');
  }

  private async copy(): Promise<void> {
    const id = this.migration.service?.signaling?.id;
    if (!id) return;
    try {
      await navigator.clipboard.writeText(`webrtc:${id}`);
      this.copied = true;
      setTimeout(() => (this.copied = false), 1500);
    } catch {
      // No clipboard (permissions): the id is selectable with one click instead.
      const el = this.renderRoot.querySelector('.id');
      if (el) getSelection()?.selectAllChildren(el);
    }
  }

  private receive(): void {
    // Pressing the button is this tab's consent to receive (a link's ?incoming=webrtc: is not).
    try {
      sessionStorage.setItem(CONSENT_KEY, '1');
    } catch {
      // no storage: the reloaded tab asks once more
    }
    const m = this.migration.service;
    if (m) carrySettingsOverReload(m.options);
    this.navigate(incomingPageUrl(location.href, 'webrtc:'));
  }

  private async listen(): Promise<void> {
    await runCommand(this.qmp, { execute: 'migrate-incoming', arguments: { uri: 'webrtc:' } }, (o) => (this.listenOutcome = o));
  }

  private async migrateTo(id: string): Promise<void> {
    const show = (o: CommandOutcome) => {
      this.peerOutcome = new Map(this.peerOutcome).set(id, o);
    };
    // A peer in another browser pairs: the code typed next to it becomes tls-creds first.
    const code = this.codes.get(id)?.trim();
    if (code) {
      const r = await runCommand(this.qmp, { execute: 'migrate-set-parameters', arguments: { 'tls-creds': code } }, show);
      if (r.error) return;
    }
    await runCommand(this.qmp, { execute: 'migrate', arguments: { uri: `webrtc:${id}` } }, show);
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-peers': TmPeers;
  }
}
