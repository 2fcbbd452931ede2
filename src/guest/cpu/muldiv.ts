// The M extension's high-half multiplies without BigInt: 16-bit limbs keep every partial product
// exact in a double. Division needs no helper: (a / b) | 0 truncates toward zero as RISC-V does,
// and a double quotient of two 32-bit integers is never close enough to an integer to round onto it.

/** High 32 bits of the unsigned 64-bit product of a and b (as int32 bits). */
export function mulhu(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lo = al * bl;
  const m1 = ah * bl;
  const m2 = al * bh;
  const mid = (lo >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (ah * bh + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16)) | 0;
}

/** High half of signed × signed: the unsigned product corrected for each negative operand. */
export function mulh(a: number, b: number): number {
  return (mulhu(a, b) - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
}

/** High half of signed a × unsigned b. */
export function mulhsu(a: number, b: number): number {
  return (mulhu(a, b) - (a < 0 ? b : 0)) | 0;
}
