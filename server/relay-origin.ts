// Which pages may open the relay's WebSocket. A browser sends the page's Origin with every
// WebSocket it opens, so checking it keeps any other web site a student has open from joining
// the class's rooms through that student's browser (cross-site WebSocket hijacking). By default
// only the page's own origin is let in: the Origin's host must be the Host the socket was opened
// to, and that host must be one Vite would serve a page to (an IP address, localhost, or its
// allowedHosts), so a DNS-rebinding name that points at the server does not pass either.
// TABMIG_RELAY_ORIGINS lists other origins allowed instead. A client that is not a browser can
// send any Origin: this is about web pages, not about who is on the network.

import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export interface OriginRule {
  /** Origins allowed besides the page's own (exact, e.g. `https://class.example:5173`). */
  origins: readonly string[];
  /** Vite's server.allowedHosts: host names a page may be served under (true: any). */
  allowedHosts: readonly string[] | true;
}

/** `https://a.example,https://b.example:5173` (TABMIG_RELAY_ORIGINS) as a list; throws on a malformed origin. */
export function parseOrigins(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)
    .map((o) => {
      const u = new URL(o);
      if (u.origin !== o.replace(/\/$/, '')) throw new Error(`TABMIG_RELAY_ORIGINS: '${o}' is not an origin (scheme://host[:port])`);
      return u.origin;
    });
}

function hostAllowed(host: string, allowed: readonly string[] | true): boolean {
  if (allowed === true) return true;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  if (isIP(name) || name === 'localhost' || name.endsWith('.localhost')) return true;
  return allowed.some((a) => a === name || (a.startsWith('.') && (name === a.slice(1) || name.endsWith(a))));
}

/** Why a WebSocket upgrade's Origin is refused, or null when it may open. */
export function originRefusal(req: IncomingMessage, rule: OriginRule): string | null {
  const origin = req.headers.origin;
  if (!origin) return 'no Origin header';
  if (rule.origins.includes(origin)) return null;
  const host = req.headers.host ?? '';
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return `malformed Origin '${origin.slice(0, 80)}'`;
  }
  if (originHost !== host) return `Origin ${origin.slice(0, 80)} is not this page's (${host})`;
  if (!hostAllowed(host, rule.allowedHosts)) return `host ${host} is not one this server serves (server.allowedHosts)`;
  return null;
}
