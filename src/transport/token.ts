// Copy-paste tokens: signaling with no server. The source's offer and the destination's answer,
// each with all its ICE candidates, become one line of text two people exchange by any means
// (chat, mail, a QR code); the migration then flows peer to peer, as with any other signaling.
// Tokens are public: whoever reads one learns a fingerprint and addresses, and pairing (a secret
// or the waiting tab's code, never in the token) is what keeps a stranger from using it.
//
//   source:       x-tabmig-token-peer → migrate webrtc:tok-… → offer token
//   destination:  migrate-incoming webrtc: → paste the offer token → answer token
//   source:       paste the answer token → connected, pairing, migration

import { newPeerId, type Signaling } from './signaling.js';

const PREFIX = 'tabmig1.';
const MAX_TOKEN_CHARS = 16 * 1024;

export interface TokenBody {
  v: 1;
  kind: 'offer' | 'answer';
  /** The writer's tab id and name (shown to the reader). */
  from: string;
  name: string;
  /** The source's token peer id: the answer names the offer it answers. */
  peer: string;
  conn: string;
  signals: unknown[];
}

export class TokenError extends Error {
  override name = 'TokenError';
}

async function pipe(bytes: Uint8Array<ArrayBuffer>, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

function toB64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64url(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

export async function encodeToken(body: TokenBody): Promise<string> {
  return PREFIX + toB64url(await pipe(new TextEncoder().encode(JSON.stringify(body)), new CompressionStream('deflate-raw')));
}

export async function decodeToken(text: string): Promise<TokenBody> {
  const t = text.replace(/\s+/g, '');
  if (!t.startsWith(PREFIX)) throw new TokenError(`not a tabmig token (it starts with '${PREFIX}')`);
  if (t.length > MAX_TOKEN_CHARS) throw new TokenError('token too long');
  let body: TokenBody;
  try {
    const raw = await pipe(fromB64url(t.slice(PREFIX.length)), new DecompressionStream('deflate-raw'));
    if (raw.length > 64 * 1024) throw new Error('too large');
    body = JSON.parse(new TextDecoder().decode(raw)) as TokenBody;
  } catch {
    throw new TokenError('the token is damaged (copied only in part?)');
  }
  const ok =
    body &&
    body.v === 1 &&
    (body.kind === 'offer' || body.kind === 'answer') &&
    typeof body.from === 'string' &&
    typeof body.name === 'string' &&
    typeof body.peer === 'string' &&
    /^tok-[a-z0-9]{4,20}$/.test(body.peer) &&
    typeof body.conn === 'string' &&
    Array.isArray(body.signals) &&
    body.signals.length <= 64;
  if (!ok) throw new TokenError('the token is malformed');
  return body;
}

/** One tab's copy-paste signaling: makes token peers, writes their tokens, reads pasted ones. */
export class TokenSignaling extends EventTarget {
  private latestToken: string | null = null;
  /** Destination: token peer id here → the source's token peer id (echoed in the answer). */
  private readonly answerFor = new Map<string, string>();

  constructor(private readonly sig: Signaling) {
    super();
    sig.addEventListener('token-signals', (e) => {
      const d = (e as CustomEvent<{ peer: string; conn: string; signals: unknown[] }>).detail;
      void this.write(d.peer, d.conn, d.signals);
    });
  }

  /** The last token this tab wrote (an offer, or an answer), or null. */
  get latest(): string | null {
    return this.latestToken;
  }

  /** Source: a peer to `migrate webrtc:ID` to; the offer comes out as a token. */
  newPeer(): string {
    return this.sig.addTokenPeer(`tok-${newPeerId(8)}`, 'Copy-paste token peer');
  }

  private async write(peer: string, conn: string, signals: unknown[]): Promise<void> {
    const isAnswer = this.answerFor.has(peer);
    const token = await encodeToken({
      v: 1,
      kind: isAnswer ? 'answer' : 'offer',
      from: this.sig.id,
      name: this.sig.name,
      peer: this.answerFor.get(peer) ?? peer,
      conn,
      signals,
    });
    this.latestToken = token;
    this.dispatchEvent(new CustomEvent('token', { detail: { kind: isAnswer ? 'answer' : 'offer', token } }));
  }

  /**
   * A pasted token. An offer (destination: the tab must be waiting, migrate-incoming webrtc:) is
   * answered with a token; an answer (source) completes the connection.
   */
  async paste(text: string): Promise<'offer' | 'answer'> {
    const body = await decodeToken(text);
    if (body.kind === 'offer') {
      const local = `tok-${newPeerId(8)}`;
      this.answerFor.set(local, body.peer);
      this.sig.addTokenPeer(local, `${body.name.slice(0, 60)} (token)`);
      this.sig.deliverTokenSignals(local, body.conn, body.signals);
      return 'offer';
    }
    if (!this.sig.peer(body.peer) || this.sig.peer(body.peer)!.via !== 'token') {
      throw new TokenError(`this answer is for an offer this tab did not make (${body.peer})`);
    }
    this.sig.deliverTokenSignals(body.peer, body.conn, body.signals);
    return 'answer';
  }
}
