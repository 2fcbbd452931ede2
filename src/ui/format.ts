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
