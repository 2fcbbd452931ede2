import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import { panelStyles } from './styles/theme.js';
import { saveIceText, savedIceText } from '../transport/ice-config.js';

interface PairingFacts {
  fingerprint: string;
  sas: string;
  code: string;
  failedAttempts: number;
  agreed: boolean;
  relay: string;
}

/**
 * Reaching tabs beyond this browser, and who may migrate in: this tab's pairing code and
 * certificate (its short authentication string), the consent button of a tab a link opened as a
 * destination, the pairing secret (QEMU's tls-creds), ICE servers (STUN/TURN), and copy-paste
 * tokens for when there is no shared server. Everything goes through QMP.
 */
@customElement('tm-pairing')
export class TmPairing extends LitElement {
  static override styles = [
    panelStyles,
    feedbackStyles,
    css`
      .facts {
        display: grid;
        grid-template-columns: auto 1fr;
        gap: 0.25rem 0.75rem;
        align-items: baseline;
        font-size: 0.9rem;
      }
      .facts dt {
        color: var(--tm-muted);
      }
      .facts dd {
        margin: 0;
        font-family: var(--tm-mono);
        overflow-wrap: anywhere;
      }
      .code {
        font-size: 1.5rem;
        font-weight: 700;
        letter-spacing: 0.08em;
        color: var(--tm-accent);
        user-select: all;
      }
      .failed {
        font-family: inherit;
        color: var(--tm-danger);
      }
      .consent {
        display: flex;
        align-items: center;
        gap: 0.75rem;
        margin: 0.6rem 0;
        padding: 0.5rem 0.75rem;
        border-radius: 8px;
        background: var(--tm-info-soft);
      }
      label {
        display: block;
        margin-top: 0.75rem;
        font-size: 0.85rem;
        color: var(--tm-muted);
      }
      .row {
        display: flex;
        gap: 0.5rem;
        margin-top: 0.25rem;
      }
      .row input {
        flex: 1;
        min-width: 0;
        font-family: var(--tm-mono);
      }
      textarea {
        width: 100%;
        box-sizing: border-box;
        font-family: var(--tm-mono);
        font-size: 0.75rem;
        min-height: 4.5rem;
      }
      h3 {
        margin: 1rem 0 0.3rem;
        font-size: 0.85rem;
        color: var(--tm-muted);
        text-transform: uppercase;
        letter-spacing: 0.06em;
      }
    `,
  ];

  @state() private facts: PairingFacts | null = null;
  @state() private secret = '';
  @state() private ice = savedIceText();
  @state() private token = '';
  @state() private paste = '';
  @state() private outcome: CommandOutcome | null = null;

  private readonly migration = new MigrationController(this, { intervalMs: 500, onChange: () => void this.refresh() });
  private readonly qmp = new QmpController(this);
  private refreshing = false;

  private async refresh(): Promise<void> {
    if (this.refreshing || !this.qmp.available) return;
    this.refreshing = true;
    try {
      const r = await this.qmp.execute({ execute: 'x-tabmig-pairing' });
      if (r.return) this.facts = r.return as PairingFacts;
      const t = await this.qmp.execute({ execute: 'x-tabmig-token' });
      if (t.return) this.token = (t.return as { token: string }).token;
    } finally {
      this.refreshing = false;
    }
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
  }

  override render() {
    const m = this.migration.service;
    const f = this.facts;
    const waiting = m?.waitingForIncoming ?? false;
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Pairing and network</h2>
        <p class="hint">Tabs in other browsers or machines meet through this server's relay (or a copy-paste token) and must pair.</p>
      </div>
      <div class="panel-body">
        ${f && !f.agreed
          ? html`<div class="consent" role="alert">
              <span>A link opened this tab to receive a migration. Nothing comes in until you agree (or a peer gives the pairing code).</span>
              <button class="primary accept" @click=${() => this.run({ execute: 'x-tabmig-consent' })}>Accept</button>
            </div>`
          : nothing}
        <dl class="facts">
          <dt>Pairing code</dt>
          <dd class="code" title="A peer sets tls-creds to this code to migrate into this tab">${f?.code ?? '—'}</dd>
          ${f && f.failedAttempts > 0
            ? html`<dt>Failed pairing</dt>
                <dd class="failed" role="status">
                  ${f.failedAttempts} attempt${f.failedAttempts === 1 ? '' : 's'} with a wrong code or secret
                  <small>(the code changes after each: read the one above again)</small>
                </dd>`
            : nothing}
          <dt>Certificate</dt>
          <dd title=${f?.fingerprint ?? ''}>${f?.sas || '—'} <small>(short authentication string of this browser's DTLS certificate)</small></dd>
          <dt>Relay</dt>
          <dd>${f?.relay ?? '—'}</dd>
        </dl>
        ${waiting ? html`<p class="hint">Waiting: give the pairing code to the person at the source (they set it as their pairing secret).</p>` : nothing}

        <label for="secret">Pairing secret (QEMU's <code>tls-creds</code>): the destination's code, or a secret both sides share</label>
        <div class="row">
          <input id="secret" type="password" autocomplete="off" .value=${this.secret} @input=${(e: Event) => (this.secret = (e.target as HTMLInputElement).value)} />
          <button class="set-secret" aria-label="Set the pairing secret" @click=${() => this.run({ execute: 'migrate-set-parameters', arguments: { 'tls-creds': this.secret } })}>Set</button>
        </div>

        <label for="ice">ICE servers: <code>stun:HOST:PORT</code>, <code>turn:USER:PASS@HOST:PORT</code>, and <code>relay</code> to force TURN</label>
        <div class="row">
          <input id="ice" .value=${this.ice} @input=${(e: Event) => (this.ice = (e.target as HTMLInputElement).value)} />
          <button class="set-ice" aria-label="Save the ICE servers" @click=${this.saveIce}>Save</button>
        </div>

        <h3>Copy-paste token</h3>
        <div class="row">
          <button class="make-offer" @click=${this.makeOffer}>Migrate by token…</button>
          <button class="copy-token" ?disabled=${!this.token} @click=${() => navigator.clipboard?.writeText(this.token)}>Copy token</button>
        </div>
        ${this.token ? html`<textarea readonly class="token" aria-label="Token to send">${this.token}</textarea>` : nothing}
        <label for="paste">Paste the token you received (an offer, on the waiting tab; the answer, on the source)</label>
        <textarea id="paste" .value=${this.paste} @input=${(e: Event) => (this.paste = (e.target as HTMLTextAreaElement).value)}></textarea>
        <div class="row"><button class="paste" ?disabled=${!this.paste.trim()} @click=${this.pasteToken}>Use token</button></div>
        ${renderOutcome(this.outcome)}
      </div>
    </section>`;
  }

  private async run(cmd: { execute: string; arguments?: Record<string, unknown> }) {
    const r = await runCommand(this.qmp, cmd, (o) => (this.outcome = o));
    void this.refresh();
    return r;
  }

  private async saveIce(): Promise<void> {
    const r = await this.run({ execute: 'x-tabmig-set-ice', arguments: { servers: this.ice.trim() } });
    if (!r.error) saveIceText(this.ice.trim());
  }

  private async makeOffer(): Promise<void> {
    const p = await this.run({ execute: 'x-tabmig-token-peer' });
    if (p.error) return;
    await this.run({ execute: 'migrate', arguments: { uri: `webrtc:${(p.return as { peer: string }).peer}` } });
    // The offer comes out once ICE gathering settles.
    for (let i = 0; i < 50 && !this.token; i++) {
      await new Promise((r) => setTimeout(r, 200));
      await this.refresh();
    }
  }

  private async pasteToken(): Promise<void> {
    const r = await this.run({ execute: 'x-tabmig-token-paste', arguments: { token: this.paste.trim() } });
    if (r.error) return;
    this.paste = '';
    for (let i = 0; i < 50; i++) {
      const before = this.token;
      await new Promise((res) => setTimeout(res, 200));
      await this.refresh();
      if (this.token !== before) break;
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-pairing': TmPairing;
  }
}
