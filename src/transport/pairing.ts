// Pairing: the authenticated handshake two peers run on the negotiated control channel before
// anything else. The shared secret is QEMU's `tls-creds` parameter, or the pairing code the
// waiting tab shows; it is the password of a CPace run (pake.ts) whose channel identifier is
// both DTLS certificate fingerprints as this connection verified them (dtls-fingerprint.ts) and
// whose session id is both sides' nonces. libp2p's WebRTC transport binds the same two
// fingerprints with Noise.
//
//   source                                     destination
//   auth {nonce}                        ◄─►    auth {nonce}
//   pake {share Ya, secret: yes/no}     ──►    picks the secret it expects from such a peer
//                                       ◄──    pake {share Yb}
//   pake-confirm {tag Ta}               ──►    checks Ta: refuse (a failed guess), or
//                                       ◄──    pake-confirm {tag Tb}
//   checks Tb; hello …
//
// What each party can learn: a peer that does not hold the secret commits to one guess with its
// share and learns only whether that one guess was right (the refusal, or Tb); nothing it sees
// lets it test another guess offline. A relay or page in the middle of the signaling that
// terminates DTLS itself leaves the two sides with different fingerprint pairs, so their
// generators differ and no tag agrees. The destination judges the source first, so a wrong
// secret is refused with the destination's own words, and a wrong pairing code is counted there
// (consent.ts rotates the code, so each code can be guessed once).

import { normalizeSecret } from './identity.js';
import { CpaceRun, confirmationTag, intermediateSessionKey, lvCat, sameBytes } from './pake.js';
import type { PeerVia } from './signaling.js';

export type MigrationRole = 'source' | 'destination';

/** Named in the channel identifier: a change of this handshake changes every key. */
const LABEL = 'tabmig-pair-v2';

/** QEMU's wording (crypto/tlssession.c) for a failed handshake, with tabmig's reason. */
export function tlsHandshakeError(reason: string): string {
  return `TLS handshake failed: ${reason}`;
}

export type PairingMessage =
  | { t: 'auth'; nonce: string }
  | { t: 'pake'; share: string; secret?: boolean }
  | { t: 'pake-confirm'; tag: string };

/** What a waiting tab accepts, and what it says when it refuses. */
export interface PairingPolicy {
  /** The secret a source that came `via` and says it holds one must prove; whether one that holds none is let in. */
  expect(via: PeerVia): { secret: string; allowNone: boolean };
  /** Why a source is refused that proved no secret (usedNone) or a wrong one. */
  refusal(via: PeerVia, usedNone: boolean): string;
  /** A source's key confirmation failed for `secret` (a wrong guess, or a tampered connection). */
  failedGuess?(via: PeerVia, secret: string): void;
}

/** Accepts any source, with no secret or an empty one: the default of a bare acceptFromPeer. */
export const OPEN_POLICY: PairingPolicy = {
  expect: () => ({ secret: '', allowNone: true }),
  refusal: (_via, usedNone) => tlsHandshakeError(usedNone ? 'the destination requires a pairing secret (set tls-creds)' : 'the pairing secret (tls-creds) or code does not match'),
};

/** Both DTLS fingerprints: this side's certificate and the one the peer presented in the handshake. */
export interface Fingerprints {
  mine: string;
  theirs: string;
}

export interface PairingOptions {
  role: MigrationRole;
  /** Which way the peer came (the destination's policy depends on it). */
  via: PeerVia;
  send(m: PairingMessage): void;
  /** The verified fingerprints, or why they cannot be had (the handshake then fails). */
  fingerprints(): Promise<Fingerprints | string>;
  /** Source: the secret it proves ('' none). */
  secret?: string;
  /** Destination: what it accepts. */
  policy?: PairingPolicy;
}

/** A pairing failure: `reason` is for both sides (the peer is told it). */
export class PairingError extends Error {
  override name = 'PairingError';
}

const b64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));

function unb64(s: unknown, maxChars = 200): Uint8Array | null {
  if (typeof s !== 'string' || s.length > maxChars) return null;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const AD = { source: utf8('source'), destination: utf8('destination') } as const;

/** One side of one connection's pairing. Messages are handled one at a time, in order. */
export class Pairing {
  /** Resolves once both sides proved the same secret over this connection; rejects with a PairingError. */
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (e: PairingError) => void;
  private settled = false;
  private readonly nonce = crypto.getRandomValues(new Uint8Array(32));
  private peerNonce: Uint8Array | null = null;
  private sentAuth = false;
  private run: CpaceRun | null = null;
  private peerShare: Uint8Array | null = null;
  private sid: Uint8Array | null = null;
  private isk: Uint8Array | null = null;
  /** Destination: the secret it ran CPace with. */
  private secretUsed = '';
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: PairingOptions) {
    this.done = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.done.catch(() => {});
  }

  get finished(): boolean {
    return this.settled;
  }

  /** The connection is up: say this side's nonce. */
  start(): void {
    if (this.sentAuth) return;
    this.sentAuth = true;
    this.o.send({ t: 'auth', nonce: b64(this.nonce) });
  }

  /** A pairing message from the peer (anything not well-formed fails the pairing). */
  receive(m: PairingMessage): void {
    this.chain = this.chain.then(() => (this.settled ? undefined : this.step(m))).catch((e: unknown) => this.fail(e instanceof PairingError ? e.message : tlsHandshakeError(String(e))));
  }

  private fail(reason: string): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(new PairingError(reason));
  }

  private succeed(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve();
  }

  private async step(m: PairingMessage): Promise<void> {
    const src = this.o.role === 'source';
    switch (m.t) {
      case 'auth': {
        const n = unb64(m.nonce);
        if (this.peerNonce || !n || n.length !== 32) throw malformed();
        this.peerNonce = n;
        this.start();
        this.sid = src ? lvCat(this.nonce, n) : lvCat(n, this.nonce);
        if (src) {
          this.run = await CpaceRun.start(this.prs(this.o.secret ?? ''), await this.channelId(), this.sid);
          this.o.send({ t: 'pake', share: b64(this.run.share), secret: (this.o.secret ?? '') !== '' });
        }
        return;
      }
      case 'pake': {
        const share = unb64(m.share);
        if (!this.sid || this.peerShare || !share) throw malformed();
        this.peerShare = share;
        if (src) {
          // The destination's share: the source confirms first, so the destination judges.
          this.isk = await this.sessionKey(this.run!, this.run!.share, share);
          this.o.send({ t: 'pake-confirm', tag: b64(await confirmationTag(this.sid, this.isk, this.run!.share, AD.source)) });
          return;
        }
        const policy = this.o.policy ?? OPEN_POLICY;
        const { secret, allowNone } = policy.expect(this.o.via);
        if (m.secret !== true && !allowNone) throw new PairingError(policy.refusal(this.o.via, true));
        this.secretUsed = m.secret === true ? secret : '';
        this.run = await CpaceRun.start(this.prs(this.secretUsed), await this.channelId(), this.sid);
        this.isk = await this.sessionKey(this.run, share, this.run.share);
        this.o.send({ t: 'pake', share: b64(this.run.share) });
        return;
      }
      case 'pake-confirm': {
        const tag = unb64(m.tag);
        if (!this.isk || !this.peerShare || !this.sid || !tag) throw malformed();
        const expected = await confirmationTag(this.sid, this.isk, this.peerShare, src ? AD.destination : AD.source);
        if (src) {
          if (!sameBytes(tag, expected)) throw new PairingError(tlsHandshakeError('the destination did not prove the pairing secret (tls-creds)'));
          return this.succeed();
        }
        if (!sameBytes(tag, expected)) {
          const policy = this.o.policy ?? OPEN_POLICY;
          policy.failedGuess?.(this.o.via, this.secretUsed);
          throw new PairingError(policy.refusal(this.o.via, false));
        }
        this.o.send({ t: 'pake-confirm', tag: b64(await confirmationTag(this.sid, this.isk, this.run!.share, AD.destination)) });
        return this.succeed();
      }
      default:
        throw malformed();
    }
  }

  private prs(secret: string): Uint8Array {
    return utf8(normalizeSecret(secret));
  }

  /** CI: both verified fingerprints, the source's first. */
  private async channelId(): Promise<Uint8Array> {
    const fps = await this.o.fingerprints();
    if (typeof fps === 'string') throw new PairingError(tlsHandshakeError(fps));
    const [s, d] = this.o.role === 'source' ? [fps.mine, fps.theirs] : [fps.theirs, fps.mine];
    return lvCat(utf8(LABEL), utf8(s), utf8(d));
  }

  private async sessionKey(run: CpaceRun, ya: Uint8Array, yb: Uint8Array): Promise<Uint8Array> {
    const k = run.secretPoint(this.o.role === 'source' ? yb : ya);
    if (!k) throw new PairingError(tlsHandshakeError('the peer sent an invalid key share'));
    return intermediateSessionKey(this.sid!, k, ya, AD.source, yb, AD.destination);
  }
}

function malformed(): PairingError {
  return new PairingError(tlsHandshakeError('malformed pairing message'));
}
