// ICE servers as people write them in `?ice=` and the settings panel: a comma-separated list of
// `stun:HOST:PORT` and `turn:USER:PASSWORD@HOST:PORT[?transport=udp|tcp]` (turns: likewise), and
// an optional `relay` entry that forces every connection through TURN (iceTransportPolicy).

export interface IceConfig {
  iceServers: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy;
}

export class IceConfigError extends Error {
  override name = 'IceConfigError';
}

export function parseIceConfig(text: string): IceConfig {
  const out: IceConfig = { iceServers: [] };
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    if (entry === 'relay') {
      out.iceTransportPolicy = 'relay';
      continue;
    }
    const m = /^(stuns?|turns?):(?:([^:@]+):([^@]*)@)?(.+)$/.exec(entry);
    if (!m) throw new IceConfigError(`'${entry}' is not an ICE server (stun:HOST:PORT or turn:USER:PASSWORD@HOST:PORT)`);
    const [, scheme, user, pass, rest] = m;
    if (!/^[^\s?]+(\?transport=(udp|tcp))?$/.test(rest!)) throw new IceConfigError(`'${entry}': bad host, port or transport`);
    const server: RTCIceServer = { urls: `${scheme}:${rest}` };
    if (scheme!.startsWith('turn')) {
      if (user === undefined) throw new IceConfigError(`'${entry}': a TURN server needs USER:PASSWORD@`);
      server.username = decodeURIComponent(user);
      server.credential = decodeURIComponent(pass ?? '');
    }
    out.iceServers.push(server);
  }
  if (out.iceTransportPolicy === 'relay' && !out.iceServers.some((s) => String(s.urls).startsWith('turn'))) {
    throw new IceConfigError("'relay' needs a TURN server in the list");
  }
  return out;
}

/** Back to the text form (the settings panel shows it). */
export function formatIceConfig(c: IceConfig): string {
  const parts = c.iceServers.map((s) => {
    const url = String(s.urls);
    if (!s.username) return url;
    const i = url.indexOf(':');
    return `${url.slice(0, i)}:${encodeURIComponent(s.username)}:${encodeURIComponent(String(s.credential ?? ''))}@${url.slice(i + 1)}`;
  });
  if (c.iceTransportPolicy === 'relay') parts.push('relay');
  return parts.join(',');
}

const STORAGE_KEY = 'tabmig-ice';

/** The settings panel's saved ICE servers ('' none). */
export function savedIceText(): string {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? '';
  } catch {
    return '';
  }
}

export function saveIceText(text: string): void {
  try {
    if (text) localStorage.setItem(STORAGE_KEY, text);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage denied: the setting lasts for this page only
  }
}
