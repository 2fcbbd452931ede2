// This browser's WebRTC identity: a DTLS certificate made once with
// RTCPeerConnection.generateCertificate and kept in IndexedDB (identity-db.ts), its sha-256
// fingerprint as the SDP carries it, and a short authentication string people can compare.
// Also this tab's pairing code: what the waiting tab shows for a peer to type.

import { fingerprintOf } from './dtls-fingerprint.js';
import { openIdentityDB } from './identity-db.js';
import { newPeerId } from './signaling.js';

export interface Identity {
  certificate: RTCCertificate | null;
  /** 'AB:CD:…' (upper case, as in `a=fingerprint:sha-256`), or '' when none could be made. */
  fingerprint: string;
  /** Short authentication string from the fingerprint: 'k7d2-9xqf'. */
  sas: string;
}

/** A certificate is renewed this long before it expires (Chromium's default lifetime: 30 days). */
const RENEW_MARGIN_MS = 24 * 3600 * 1000;
const CERT_LIFETIME_MS = 365 * 24 * 3600 * 1000;

let loaded: Identity | null = null;
let loading: Promise<Identity> | null = null;

const SAS_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** 8 symbols of a SHA-256 over the fingerprint: two people can read them out to each other. */
export async function shortAuthString(fingerprint: string): Promise<string> {
  if (!fingerprint) return '';
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`tabmig-sas|${fingerprint}`)));
  let s = '';
  for (let i = 0; i < 8; i++) s += SAS_ALPHABET[h[i]! % SAS_ALPHABET.length];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

async function makeCertificate(): Promise<RTCCertificate> {
  return RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256', expires: CERT_LIFETIME_MS } as AlgorithmIdentifier);
}

async function load(): Promise<Identity> {
  let cert: RTCCertificate | null = null;
  try {
    const db = await openIdentityDB();
    try {
      const rec = await db.get('certificates', 'dtls');
      if (rec && rec.certificate.expires - Date.now() > RENEW_MARGIN_MS) cert = rec.certificate;
      else {
        cert = await makeCertificate();
        await db.put('certificates', { name: 'dtls', certificate: cert, created: Date.now() });
      }
    } finally {
      db.close();
    }
  } catch {
    // No IndexedDB (private mode, sandbox): a certificate for this tab's life only.
    try {
      cert = await makeCertificate();
    } catch {
      cert = null;
    }
  }
  const fingerprint = cert ? fingerprintOf(cert) : '';
  return { certificate: cert, fingerprint, sas: await shortAuthString(fingerprint) };
}

/** Loads (or makes) the identity once per page. */
export function loadIdentity(): Promise<Identity> {
  loading ??= load().then((id) => (loaded = id));
  return loading;
}

/** The identity if loadIdentity() has finished, else null. */
export function currentIdentity(): Identity | null {
  return loaded;
}

/** A pairing code for this tab: 8 symbols (40 bits), shown as 'abcd-efgh'. */
export function newPairingCode(): string {
  const s = newPeerId(8);
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

/**
 * A secret as the handshake uses it: trimmed; a pairing code ('ABCD-efgh', 'abcd efgh') is
 * compared without case, spaces or dashes, since people type it.
 */
export function normalizeSecret(s: string): string {
  const t = s.trim();
  return /^[a-z0-9]{4}[-\s]?[a-z0-9]{4}$/i.test(t) ? t.toLowerCase().replace(/[-\s]/g, '') : t;
}
