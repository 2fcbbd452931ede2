// The capabilities both ends of a migration must agree on, checked when a source connects and
// before any byte of the stream moves. QEMU finds a mismatch only deep in the stream (the
// destination's "RAM postcopy is disabled but have 16 byte advise"), after precopy has run for a
// while; a class should hear at once what to switch on where. The source names its capabilities
// in its connection hello; the destination compares them with its own, as they are then, and
// refuses the connection with the reason, so it keeps waiting and the source's migration fails
// before it starts. No DOM: this runs beside the transport.

import type { MigrationCapability } from './options-schema.js';

/** Capabilities the source's hello carries (the ones whose absence at one end breaks the stream). */
export const AGREED_CAPABILITIES = ['postcopy-ram', 'compress', 'x-multifd'] as const satisfies readonly MigrationCapability[];

type Agreed = (typeof AGREED_CAPABILITIES)[number];

/**
 * Which mismatches break a migration: `source` — on at the source needs it on at the destination
 * (postcopy's ADVISE, compressed pages); `both` — the two must be equal (x-multifd's channels).
 */
const RULE: Record<Agreed, 'source' | 'both'> = {
  'postcopy-ram': 'source',
  compress: 'source',
  'x-multifd': 'both',
};

/** What a side tells the other about itself in its hello's `info`. */
export interface SideCapabilities {
  /** The agreed capabilities that are on at this end. */
  capabilities: Agreed[];
}

export function sideCapabilities(on: (cap: MigrationCapability) => boolean): SideCapabilities {
  return { capabilities: AGREED_CAPABILITIES.filter((c) => on(c)) };
}

/** Reads the source's capabilities from its hello info (anything else: null, nothing to check). */
export function capabilitiesOf(info: unknown): Set<string> | null {
  const list = (info as { capabilities?: unknown } | null)?.capabilities;
  if (!Array.isArray(list) || list.length > 64 || !list.every((c) => typeof c === 'string')) return null;
  return new Set(list as string[]);
}

/**
 * Why a source with `source` capabilities cannot migrate into a destination with `destination`
 * on, in words that say what to switch on where; null if they agree. Names the tabs as the peer
 * lists show them.
 */
export function capabilityMismatch(
  source: ReadonlySet<string>,
  destination: ReadonlySet<string>,
  names: { source: string; destination: string },
): string | null {
  const problems: string[] = [];
  for (const cap of AGREED_CAPABILITIES) {
    const s = source.has(cap);
    const d = destination.has(cap);
    if (s === d || (RULE[cap] === 'source' && !s)) continue;
    problems.push(
      s
        ? `${cap} is on in the source (${names.source}) but off in the destination (${names.destination}): switch ${cap} on in ${names.destination} (its Capabilities panel; the tab keeps waiting), or off in ${names.source}`
        : `${cap} is on in the destination (${names.destination}) but off in the source (${names.source}): switch ${cap} on in ${names.source}, or off in ${names.destination}`,
    );
  }
  return problems.length ? `capabilities differ: ${problems.join('; ')}; then migrate again` : null;
}
