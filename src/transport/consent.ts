// Who may migrate into a waiting tab. A tab opened by a link as `?incoming=webrtc:` accepts
// nothing until the person in it agrees once (a button), or a source proves the pairing code the
// tab shows, or the tls-creds secret it was given; `migrate-incoming` typed by the user is
// consent. A peer that is not a tab of this browser (relay, token) must always pair.
//
// The pairing code is 40 bits and pairing (pairing.ts) lets a peer test one guess per attempt:
// after each failed attempt the code changes, so a guess is worth 2^-40 however many are made,
// and the page says how many attempts failed.

import { newPairingCode } from './identity.js';
import { tlsHandshakeError, type PairingPolicy } from './pairing.js';
import type { PeerVia } from './signaling.js';

/** The "Receive a migration" button reloads its tab with this in sessionStorage: that press was consent. */
export const CONSENT_KEY = 'tabmig-incoming-consent';

/**
 * Events: 'agree' (the person agreed), 'failed' (a pairing attempt failed; the code may have
 * changed), both plain Events.
 */
export class IncomingConsent extends EventTarget {
  private _code = newPairingCode();
  private _agreed: boolean;
  private _failed = 0;

  constructor(agreed = true) {
    super();
    this._agreed = agreed;
  }

  /** Shown on the waiting tab; a source proves it by setting tls-creds to it. Changes after a failed attempt. */
  get code(): string {
    return this._code;
  }

  get agreed(): boolean {
    return this._agreed;
  }

  /** Pairing attempts that failed their key confirmation since this page loaded. */
  get failedAttempts(): number {
    return this._failed;
  }

  /** The person agreed (the button, or migrate-incoming typed by them). Once is enough. */
  agree(): void {
    if (this._agreed) return;
    this._agreed = true;
    this.dispatchEvent(new Event('agree'));
  }

  /** What a source that came `via` must prove, given this tab's tls-creds ('' none). */
  expect(via: PeerVia, tlsCreds: string): { secret: string; allowNone: boolean } {
    if (tlsCreds) return { secret: tlsCreds, allowNone: false }; // tls-creds set: nothing else pairs (QEMU: TLS required)
    return { secret: this._code, allowNone: via === 'local' && this._agreed };
  }

  /** Why a source is refused: it proved no secret (usedNone), or one this tab does not accept. */
  refusal(via: PeerVia, usedNone: boolean, tlsCreds: string): string {
    if (tlsCreds) return tlsHandshakeError(usedNone ? 'the destination requires the pairing secret (tls-creds)' : 'the pairing secret (tls-creds) does not match');
    if (!usedNone) return tlsHandshakeError('the pairing code or secret (tls-creds) does not match');
    if (via === 'local') return 'the destination tab has not agreed to receive a migration: press Accept in it, or set tls-creds to the pairing code it shows';
    return tlsHandshakeError(`a peer in another browser must pair: set tls-creds to the pairing code the destination tab shows`);
  }

  /** A source's attempt with `secret` failed: counted, and a guessed pairing code is replaced. */
  failedGuess(secret: string): void {
    this._failed++;
    if (secret !== '' && secret === this._code) this._code = newPairingCode();
    this.dispatchEvent(new Event('failed'));
  }

  /** The destination's pairing policy, reading tls-creds when each attempt asks. */
  policy(tlsCreds: () => string): PairingPolicy {
    return {
      expect: (via) => this.expect(via, tlsCreds()),
      refusal: (via, usedNone) => this.refusal(via, usedNone, tlsCreds()),
      failedGuess: (_via, secret) => this.failedGuess(secret),
    };
  }
}
