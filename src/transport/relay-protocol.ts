// The wire between a page and the signaling relay (server/signal-relay.ts), types and limits
// only: shared by both ends. JSON text frames. The relay forwards signaling only (presence,
// offer/answer/ICE, refusals), never migration bytes; it stamps every forwarded message with the
// sender's id as it knows it from that connection, so no page can speak for another.

export const RELAY_PROTOCOL = 1;
/** Path of the relay's WebSocket on the page's own origin. */
export const RELAY_PATH = '/signal';
/** Largest frame either side sends or accepts (an SDP offer with candidates is ~3 KiB). */
export const RELAY_MAX_BYTES = 16 * 1024;
/** Room names: what a teacher types after ?room= */
export const ROOM_PATTERN = /^[A-Za-z0-9_.-]{1,40}$/;
/** Peer ids: what Signaling's newPeerId makes (and people type). */
export const PEER_ID_PATTERN = /^[a-z0-9-]{4,40}$/;

/** What a page says about itself; the relay passes it on unchanged except for the id. */
export interface RelayPresence {
  id: string;
  name: string;
  incoming: boolean;
  incomingFrom: string | null;
  instance: string;
  since: number;
  /** sha-256 fingerprint of the page's DTLS certificate (as the SDP has it). */
  fp: string;
}

export type ToRelay =
  | { t: 'join'; v: number; peer: RelayPresence }
  | { t: 'update'; peer: RelayPresence }
  | { t: 'to'; to: string; msg: unknown };

export type FromRelay =
  | { t: 'joined'; id: string; room: string }
  /** The id is held by another live connection in this room: take a new one and join again. */
  | { t: 'id-taken'; id: string }
  | { t: 'peers'; peers: RelayPresence[] }
  | { t: 'peer'; peer: RelayPresence }
  | { t: 'left'; id: string }
  /** A message from another page, `from` as the relay knows that page's connection. */
  | { t: 'from'; from: string; msg: unknown }
  | { t: 'no-peer'; to: string }
  | { t: 'error'; reason: string };

/** Checks a presence's shape and sizes (both ends use it; nothing else is trusted). */
export function isRelayPresence(p: unknown): p is RelayPresence {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  return (
    typeof o.id === 'string' &&
    PEER_ID_PATTERN.test(o.id) &&
    typeof o.name === 'string' &&
    o.name.length <= 80 &&
    typeof o.incoming === 'boolean' &&
    (o.incomingFrom === null || (typeof o.incomingFrom === 'string' && o.incomingFrom.length <= 40)) &&
    typeof o.instance === 'string' &&
    o.instance.length <= 40 &&
    typeof o.since === 'number' &&
    typeof o.fp === 'string' &&
    o.fp.length <= 200
  );
}
