// Migration URIs, checked the way QEMU checks them: prefixes are case-sensitive, and an unknown
// protocol fails with QEMU's own text (qmp_migrate: "Parameter 'uri' expects a valid migration
// protocol"; qemu_start_incoming_migration: "unknown migration protocol: URI").
//
//   webrtc:PEER     outgoing: to the tab with that peer id; incoming: only from that peer
//   webrtc:         incoming only: from any peer
//   loopback:NAME   an in-page pair (tests, demo)
//   idb:NAME        a snapshot in IndexedDB (save / load)
//   file:NAME       a downloaded file (save triggers a download; load reads a picked file)
//   defer           incoming only: wait for migrate-incoming

import { QmpError } from '../qapi/qmp-error.js';

export type MigrationUri =
  | { kind: 'webrtc'; uri: string; /** null = any peer (incoming only) */ peer: string | null }
  | { kind: 'loopback'; uri: string; name: string }
  | { kind: 'idb'; uri: string; name: string }
  | { kind: 'file'; uri: string; name: string }
  | { kind: 'defer'; uri: string };

export type UriDirection = 'outgoing' | 'incoming';

const PROTOCOLS = ['webrtc', 'loopback', 'idb', 'file'] as const;
type Protocol = (typeof PROTOCOLS)[number];

const WHAT: Record<Protocol, string> = {
  webrtc: "a peer id after 'webrtc:'",
  loopback: "a name after 'loopback:'",
  idb: "a snapshot name after 'idb:'",
  file: "a file name after 'file:'",
};

/** QEMU's QERR_INVALID_PARAMETER_VALUE, for the 'uri' argument. */
function invalidUri(expects: string): QmpError {
  return QmpError.generic(`Parameter 'uri' expects ${expects}`);
}

function unknownProtocol(uri: string, direction: UriDirection): QmpError {
  return direction === 'outgoing' ? invalidUri('a valid migration protocol') : QmpError.generic(`unknown migration protocol: ${uri}`);
}

/**
 * Parses a migration URI for `migrate` (outgoing) or `migrate-incoming` / `-incoming` (incoming).
 * Throws QmpError (GenericError) with QEMU's wording.
 */
export function parseMigrationUri(uri: unknown, direction: UriDirection): MigrationUri {
  if (typeof uri !== 'string') throw QmpError.generic("Invalid parameter type for 'uri', expected: string");
  if (uri === 'defer') {
    if (direction === 'incoming') return { kind: 'defer', uri };
    throw unknownProtocol(uri, direction);
  }
  const colon = uri.indexOf(':');
  const proto = colon > 0 ? uri.slice(0, colon) : '';
  if (!(PROTOCOLS as readonly string[]).includes(proto)) throw unknownProtocol(uri, direction);
  const rest = uri.slice(colon + 1);
  switch (proto as Protocol) {
    case 'webrtc':
      if (rest === '') {
        if (direction === 'incoming') return { kind: 'webrtc', uri, peer: null };
        throw invalidUri(WHAT.webrtc);
      }
      if (/\s/.test(rest)) throw invalidUri(WHAT.webrtc);
      return { kind: 'webrtc', uri, peer: rest };
    case 'loopback':
    case 'idb':
    case 'file':
      if (rest === '') throw invalidUri(WHAT[proto as Protocol]);
      return { kind: proto as 'loopback' | 'idb' | 'file', uri, name: rest };
  }
}

/** For `migrate`. */
export function parseOutgoingUri(uri: unknown): MigrationUri {
  return parseMigrationUri(uri, 'outgoing');
}

/** For `migrate-incoming`, `migrate-recover` and the `incoming` page parameter. */
export function parseIncomingUri(uri: unknown): MigrationUri {
  return parseMigrationUri(uri, 'incoming');
}

export function formatMigrationUri(u: MigrationUri): string {
  switch (u.kind) {
    case 'webrtc':
      return `webrtc:${u.peer ?? ''}`;
    case 'defer':
      return 'defer';
    default:
      return `${u.kind}:${u.name}`;
  }
}
