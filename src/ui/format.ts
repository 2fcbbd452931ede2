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

/** A duration as the teaching panels print it: "7 ms" under a second, "8.64 s" from one on. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${formatCount(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The page's one date format: "2025-03-04 14:05:09" (local time, 24-hour, ISO order). */
export function formatDateTime(t: number): string {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatTime(t)}`;
}

/** The time of day in the same format, "14:05:09", with milliseconds when asked ("14:05:09.042"). */
export function formatTime(t: number, millis = false): string {
  const d = new Date(t);
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${hms}.${pad(d.getMilliseconds(), 3)}` : hms;
}

/** query-migrate's mbps as every panel prints it: "31.5 Mbit/s", "123 Mbit/s". */
export function formatMbps(mbps: number): string {
  return `${mbps >= 100 ? mbps.toFixed(0) : mbps.toFixed(1)} Mbit/s`;
}
