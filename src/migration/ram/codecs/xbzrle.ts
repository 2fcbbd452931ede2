// XBZRLE, QEMU's "XOR based zero run length encoding" (migration/xbzrle.c, docs/xbzrle.txt), as
// its own codec with no migration state: the source XORs a page against the copy the destination
// already holds; what is left is runs of equal bytes (zero runs, only their length is sent) and
// runs of changed bytes (length, then the new bytes). Lengths are ULEB128 of at most two bytes.
//
//   page  = zrun nzrun | zrun nzrun page
//   zrun  = length
//   nzrun = length byte…
//
// A trailing zero run is not written; an unchanged page encodes to nothing (length 0). The
// encoder gives up (-1) once the output would not fit in `dlen`, as QEMU's does, and the sender
// then sends the page plain. The decoder writes the changed bytes over the page it holds.

/** Largest length ULEB128 "small" carries: two 7-bit groups. */
export const ULEB128_SMALL_MAX = 0x3fff;

export class XbzrleError extends Error {
  override name = 'XbzrleError';
}

/** Writes `n` (< 2^14) as one or two ULEB128 bytes at `at`; returns the bytes written. */
export function uleb128EncodeSmall(dst: Uint8Array, at: number, n: number): number {
  if (n < 0 || n > ULEB128_SMALL_MAX) throw new RangeError(`ULEB128 small value out of range: ${n}`);
  if (n < 0x80) {
    dst[at] = n;
    return 1;
  }
  dst[at] = (n & 0x7f) | 0x80;
  dst[at + 1] = n >>> 7;
  return 2;
}

/** Reads a one- or two-byte ULEB128 at `at`: [value, bytes read], or null if it is longer. */
export function uleb128DecodeSmall(src: Uint8Array, at: number): [number, number] | null {
  const b0 = src[at]!;
  if (!(b0 & 0x80)) return [b0, 1];
  const b1 = src[at + 1]!;
  if (b1 & 0x80) return null;
  return [(b0 & 0x7f) | (b1 << 7), 2];
}

/**
 * Encodes `next` against `old` (same length, a multiple of 4) into `dst` (at most `dlen` bytes):
 * the encoded length, 0 if the page is unchanged, or -1 if the encoding would not fit.
 */
export function xbzrleEncode(old: Uint8Array, next: Uint8Array, dst: Uint8Array, dlen = dst.length): number {
  const slen = next.length;
  if (old.length !== slen) throw new RangeError('XBZRLE: pages of different sizes');
  if (slen % 4 !== 0) throw new RangeError('XBZRLE: page size must be a multiple of 4');
  // Word views for the long equal and unequal stretches (a page is 4-byte aligned in its buffer
  // when it comes from a slice; fall back to bytes if not).
  const aligned = old.byteOffset % 4 === 0 && next.byteOffset % 4 === 0;
  const ow = aligned ? new Uint32Array(old.buffer, old.byteOffset, slen >> 2) : null;
  const nw = aligned ? new Uint32Array(next.buffer, next.byteOffset, slen >> 2) : null;
  let d = 0;
  let i = 0;
  while (i < slen) {
    if (d + 2 > dlen) return -1;
    // zero run
    const zStart = i;
    if (ow && nw) {
      while (i < slen && i % 4 !== 0 && old[i] === next[i]) i++;
      if (i % 4 === 0) while (i < slen && ow[i >> 2] === nw[i >> 2]) i += 4;
    }
    while (i < slen && old[i] === next[i]) i++;
    const zrun = i - zStart;
    if (zrun === slen) return 0;
    if (i === slen) return d;
    d += uleb128EncodeSmall(dst, d, zrun);
    if (d + 2 > dlen) return -1;
    // changed run: stops at the first equal byte
    const nStart = i;
    if (ow && nw) {
      while (i < slen && i % 4 !== 0 && old[i] !== next[i]) i++;
      if (i % 4 === 0) {
        while (i < slen) {
          const x = (ow[i >> 2]! ^ nw[i >> 2]!) >>> 0;
          // every byte of the word differs: no zero byte in the XOR
          if ((x & 0xff) && (x & 0xff00) && (x & 0xff0000) && (x & 0xff000000)) i += 4;
          else break;
        }
      }
    }
    while (i < slen && old[i] !== next[i]) i++;
    const nzrun = i - nStart;
    d += uleb128EncodeSmall(dst, d, nzrun);
    if (d + nzrun > dlen) return -1;
    dst.set(next.subarray(nStart, i), d);
    d += nzrun;
  }
  return d;
}

/**
 * Applies an encoding to `dst` (the page the destination holds) in place. Returns the number of
 * bytes the encoding covers, or -1 if it is malformed or runs past the page (QEMU's checks).
 */
export function xbzrleDecode(src: Uint8Array, dst: Uint8Array): number {
  const slen = src.length;
  const dlen = dst.length;
  let i = 0;
  let d = 0;
  while (i < slen) {
    if (slen - i < 2) return -1;
    let r = uleb128DecodeSmall(src, i);
    if (!r || (i !== 0 && r[0] === 0)) return -1;
    i += r[1];
    d += r[0];
    if (d > dlen) return -1;
    if (slen - i < 2) return -1;
    r = uleb128DecodeSmall(src, i);
    if (!r || r[0] === 0) return -1;
    i += r[1];
    const count = r[0];
    if (d + count > dlen || i + count > slen) return -1;
    dst.set(src.subarray(i, i + count), d);
    d += count;
    i += count;
  }
  return d;
}
