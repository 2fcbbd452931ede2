// CPace, the balanced password-authenticated key exchange of draft-irtf-cfrg-cpace, over
// ristretto255 with SHA-512, in its initiator/responder setting, with the draft's explicit key
// confirmation. Each side derives a generator from the password (PRS), a channel identifier (CI)
// and a session id (sid), sends y·g for a random y, and computes K = y·Y' from the other side's
// share. Both get the same intermediate session key (ISK) only with the same password, CI and
// sid; a peer that does not know the password can test one guess per run (it must pick one
// generator), and nothing it sees lets it test another guess offline.
//
// The group is @noble/curves' ristretto255 (audited, no dependencies of its own beyond
// @noble/hashes); the hashes are WebCrypto's SHA-512 and HMAC. This file only lays out the
// draft's inputs; the unit tests hold it to the draft's own test vectors.

import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';

type Point = InstanceType<typeof ristretto255.Point>;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
/** G_Ristretto255.DSI, and G.DSI || "_ISK". */
const DSI = utf8('CPaceRistretto255');
const DSI_ISK = utf8('CPaceRistretto255_ISK');
const MAC_LABEL = utf8('CPaceMac');
/** SHA-512's input block size, H.s_in_bytes: the generator string pads its first block to it. */
const S_IN_BYTES = 128;

export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** prepend_len: the length as LEB128, then the bytes. */
export function prependLen(data: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = data.length;
  do {
    const low = n & 0x7f;
    n >>>= 7;
    len.push(n ? low | 0x80 : low);
  } while (n);
  return concatBytes(Uint8Array.from(len), data);
}

/** lv_cat: each part with its length in front. */
export function lvCat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return concatBytes(...parts.map(prependLen));
}

async function sha512(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-512', data));
}

/** generator_string(G.DSI, PRS, CI, sid, H.s_in_bytes). */
export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array<ArrayBuffer> {
  const zpad = Math.max(0, S_IN_BYTES - 1 - prependLen(prs).length - prependLen(DSI).length);
  return lvCat(DSI, prs, new Uint8Array(zpad), ci, sid);
}

/** G.calculate_generator: element derivation (RFC 9496) of the generator string's SHA-512. */
export async function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Promise<Point> {
  return ristretto255_hasher.deriveToCurve!(await sha512(generatorString(prs, ci, sid)));
}

/** G.sample_scalar as the draft recommends: 32 random bytes, bits from 252 up cleared, little-endian. */
export function sampleScalar(): bigint {
  for (;;) {
    const b = crypto.getRandomValues(new Uint8Array(32));
    b[31]! &= 0x0f;
    const y = scalarFromLE(b);
    if (y !== 0n) return y;
  }
}

export function scalarFromLE(bytes: Uint8Array): bigint {
  let y = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!);
  return y;
}

/** G.scalar_mult_vfy: y·X for an encoded X, or null when X does not decode or the result is the identity. */
export function scalarMultVfy(y: bigint, encoded: Uint8Array): Uint8Array | null {
  let x: Point;
  try {
    x = ristretto255.Point.fromBytes(encoded);
  } catch {
    return null;
  }
  if (x.is0()) return null;
  const k = x.multiply(y);
  return k.is0() ? null : k.toBytes();
}

/** ISK = H(lv_cat(DSI_ISK, sid, K) || transcript_ir(Ya, ADa, Yb, ADb)). */
export function intermediateSessionKey(sid: Uint8Array, k: Uint8Array, ya: Uint8Array, adA: Uint8Array, yb: Uint8Array, adB: Uint8Array): Promise<Uint8Array> {
  return sha512(concatBytes(lvCat(DSI_ISK, sid, k), lvCat(ya, adA), lvCat(yb, adB)));
}

/** Key confirmation: HMAC-SHA-512 under H("CPaceMac" || sid || ISK) over the share a side sent, lv_cat(Y, AD). */
export async function confirmationTag(sid: Uint8Array, isk: Uint8Array, y: Uint8Array, ad: Uint8Array): Promise<Uint8Array> {
  const macKey = await sha512(concatBytes(MAC_LABEL, sid, isk));
  const key = await crypto.subtle.importKey('raw', macKey as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-512' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, lvCat(y, ad)));
}

/** Equal bytes, in time that does not depend on where they differ. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** One side's run: its secret scalar and the share it sends. */
export class CpaceRun {
  private constructor(
    private readonly y: bigint,
    /** This side's encoded share, Ya or Yb. */
    readonly share: Uint8Array,
  ) {}

  static async start(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array, y = sampleScalar()): Promise<CpaceRun> {
    const g = await calculateGenerator(prs, ci, sid);
    return new CpaceRun(y, g.multiply(y).toBytes());
  }

  /** K from the peer's share, or null when the share is not a valid non-identity element (abort). */
  secretPoint(peerShare: Uint8Array): Uint8Array | null {
    return scalarMultVfy(this.y, peerShare);
  }
}
