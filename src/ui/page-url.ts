// Addresses of this page as a destination. QEMU's -incoming is a start-up option, so "receive a
// migration" and "restore a snapshot" reload the tab with `?incoming=URI`, keeping its -m and
// -name (the destination must have the same RAM size as the source) and -global options.

// -global migration.* settings must match at both ends, so they stay too.
const KEEP = ['m', 'name', 'global'];

/** Query values keep ':' readable (`incoming=webrtc:`), as a person would type them. */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ':');
}

/** The address of this page started as `-incoming URI`, keeping `m` and `name` from `current`. */
export function incomingPageUrl(current: string | URL, incoming: string): string {
  const url = new URL(current);
  const parts = [`incoming=${encode(incoming)}`];
  for (const key of KEEP) {
    for (const value of url.searchParams.getAll(key)) parts.push(`${key}=${encode(value)}`);
  }
  return `${url.origin}${url.pathname}?${parts.join('&')}`;
}

/** How a panel leaves the page (tests replace it). */
export type Navigate = (url: string) => void;

export const navigateTo: Navigate = (url) => location.assign(url);
