// Numbers as the panels print them.

/** Bytes in binary units, as QEMU prints sizes: "64 MiB", "1 GiB", "4 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  const digits = n >= 100 || Number.isInteger(n) ? 0 : 1;
  return `${n.toFixed(digits)} ${units[i]}`;
}

/** A count with thousands separators ("1,234,567"). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Million instructions per second, with a decimal while small. */
export function formatMips(mips: number): string {
  return mips >= 100 ? mips.toFixed(0) : mips.toFixed(1);
}

/** Milliseconds with separators ("1,234 ms"). */
export function formatMs(ms: number): string {
  return `${formatCount(ms)} ms`;
}

/** Seconds for chart axes: "0 s", "2.5 s", "12 s". */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 || Number.isInteger(s) ? s.toFixed(0) : s.toFixed(1)} s`;
}

/** A number in three significant figures or so, for axis labels ("1.5k", "23", "0.75"). */
export function formatShort(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toPrecision(3)}k`;
  return `${+n.toPrecision(3)}`;
}
