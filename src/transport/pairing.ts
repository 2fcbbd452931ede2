// Pairing: the authenticated handshake two peers run on the negotiated control channel before
// anything else, binding both DTLS certificate fingerprints (each side reads them from the SDP
// it set: its own and its peer's) and both sides' nonces with a shared secret — QEMU's
// `tls-creds` parameter, or the pairing code the waiting tab shows. libp2p's WebRTC transport
// does the same with Noise. A relay or a page that rewrote the SDP (a man in the middle) leaves
// the two sides with different fingerprint pairs, so their MACs cannot agree.
//
//   key  = PBKDF2-SHA256(secret, salt = SHA-256(label | fp_source | fp_dest | n_source | n_dest), 100k)
//   mac  = HMAC-SHA256(key, role)            role = 'source' | 'destination'
//
// The source proves first, the destination checks it against the secrets it accepts and only
// then proves itself with the one that matched. Pairing codes are short (40 bits): PBKDF2 and
// the handshake timeout keep an active man in the middle from trying them all while the
// handshake lasts, and a salt unique to each connection defeats tables made in advance.

import type { MigrationRole } from './webrtc.js';
import { normalizeSecret } from './identity.js';

const LABEL = 'tabmig-pair-v1';
export const PAIRING_ITERATIONS = 100_000;

export function newNonce(): string {
  return b64(crypto.getRandomValues(new Uint8Array(32)));
}

export function b64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export interface Transcript {
  sourceFp: string;
  destFp: string;
  sourceNonce: string;
  destNonce: string;
}

async function deriveKey(secret: string, t: Transcript): Promise<CryptoKey> {
  const enc = new TextEncoder();
  const salt = await crypto.subtle.digest('SHA-256', enc.encode([LABEL, t.sourceFp, t.destFp, t.sourceNonce, t.destNonce].join('|')));
  const base = await crypto.subtle.importKey('raw', enc.encode(normalizeSecret(secret)), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations: PAIRING_ITERATIONS },
    base,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign', 'verify'],
  );
}

/** The MAC `role` sends to prove it holds `secret` on this very connection. */
export async function pairingMac(secret: string, t: Transcript, role: MigrationRole): Promise<string> {
  const key = await deriveKey(secret, t);
  return b64(new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(role))));
}

/** Constant-time in the MAC (WebCrypto's verify), so timing says nothing about a near miss. */
export async function checkPairingMac(secret: string, t: Transcript, role: MigrationRole, mac: string): Promise<boolean> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.from(atob(mac), (c) => c.charCodeAt(0));
  } catch {
    return false;
  }
  const key = await deriveKey(secret, t);
  return crypto.subtle.verify('HMAC', key, bytes, new TextEncoder().encode(role));
}

/** QEMU's wording (crypto/tlssession.c) for a failed handshake, with tabmig's reason. */
export function tlsHandshakeError(reason: string): string {
  return `TLS handshake failed: ${reason}`;
}
