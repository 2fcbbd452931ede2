// Who may migrate into a waiting tab. A tab opened by a link as `?incoming=webrtc:` accepts
// nothing until the person in it agrees once (a button), or a source proves the pairing code the
// tab shows, or the tls-creds secret it was given; `migrate-incoming` typed by the user is
// consent. A peer that is not a tab of this browser (relay, token) must always pair.

import { newPairingCode } from './identity.js';
import { tlsHandshakeError } from './pairing.js';
import type { PeerVia } from './signaling.js';

/** The "Receive a migration" button reloads its tab with this in sessionStorage: that press was consent. */
export const CONSENT_KEY = 'tabmig-incoming-consent';

export class IncomingConsent extends EventTarget {
  /** Shown on the waiting tab; a source proves it by setting tls-creds to it. */
  readonly code = newPairingCode();
  private _agreed: boolean;

  constructor(agreed = true) {
    super();
    this._agreed = agreed;
  }

  get agreed(): boolean {
    return this._agreed;
  }

  /** The person agreed (the button, or migrate-incoming typed by them). Once is enough. */
  agree(): void {
    if (this._agreed) return;
    this._agreed = true;
    this.dispatchEvent(new Event('change'));
  }

  /** The secrets accepted from a source that came `via`, given this tab's tls-creds ('' none). */
  secrets(via: PeerVia, tlsCreds: string): string[] {
    if (tlsCreds) return [tlsCreds]; // tls-creds set: nothing else pairs (QEMU: TLS required)
    return via === 'local' && this._agreed ? ['', this.code] : [this.code];
  }

  /** Why a source is refused: it proved no secret (usedNone), or one this tab does not accept. */
  refusal(via: PeerVia, usedNone: boolean, tlsCreds: string): string {
    if (tlsCreds) return tlsHandshakeError(usedNone ? 'the destination requires the pairing secret (tls-creds)' : 'the pairing secret (tls-creds) does not match');
    if (!usedNone) return tlsHandshakeError('the pairing code or secret (tls-creds) does not match');
    if (via === 'local') return 'the destination tab has not agreed to receive a migration: press Accept in it, or set tls-creds to the pairing code it shows';
    return tlsHandshakeError(`a peer in another browser must pair: set tls-creds to the pairing code the destination tab shows`);
  }
}
