// What Compare can run: the three ways to move a guest, and precopy with each of QEMU's byte
// reducers on. Each says which capabilities it turns on, on which side, and what QEMU does with
// them, in a sentence, so a class can choose which to run and read why the figures differ.

import type { RunMethod } from './services/history-db.js';

export interface CompareVariant {
  /** Also the run's label in the history and the table. */
  readonly id: string;
  readonly method: RunMethod;
  readonly label: string;
  /** Capabilities set on the source for this run (every other one of VARIANT_CAPABILITIES off). */
  readonly capabilities: readonly string[];
  /** Capabilities the destination must have too (QEMU needs both ends to agree on these). */
  readonly destinationCapabilities: readonly string[];
  readonly explain: string;
  /** Run by default (the three methods); a class adds the reducers it wants to see. */
  readonly byDefault: boolean;
}

export const COMPARE_VARIANTS: readonly CompareVariant[] = [
  {
    id: 'stop-and-copy',
    method: 'stop-and-copy',
    label: 'Stop-and-copy',
    capabilities: [],
    destinationCapabilities: [],
    explain: 'stop, migrate, cont: what you would do without live migration.',
    byDefault: true,
  },
  {
    id: 'precopy',
    method: 'precopy',
    label: 'Precopy',
    capabilities: [],
    destinationCapabilities: [],
    explain: 'copy RAM while the guest runs, then stop briefly for what is left.',
    byDefault: true,
  },
  {
    id: 'postcopy',
    method: 'postcopy',
    label: 'Postcopy',
    capabilities: ['postcopy-ram'],
    destinationCapabilities: ['postcopy-ram'],
    explain: 'move the guest early; fetch missing pages when it touches them.',
    byDefault: true,
  },
  {
    id: 'precopy+xbzrle',
    method: 'precopy',
    label: 'Precopy + xbzrle',
    capabilities: ['xbzrle'],
    destinationCapabilities: [],
    explain: 'QEMU keeps a cache of pages already sent and resends a dirtied page as the XOR-RLE delta against it, not the whole 4 KiB.',
    byDefault: false,
  },
  {
    id: 'precopy+compress',
    method: 'precopy',
    label: 'Precopy + compress',
    capabilities: ['compress'],
    destinationCapabilities: ['compress'],
    explain: 'QEMU deflates each page with zlib in compress-threads worker threads; the destination inflates them in its decompress-threads.',
    byDefault: false,
  },
  {
    id: 'precopy+x-multifd',
    method: 'precopy',
    label: 'Precopy + x-multifd',
    capabilities: ['x-multifd'],
    destinationCapabilities: ['x-multifd'],
    explain: 'QEMU sends pages in packets over several extra channels in parallel, the main stream carrying only the control records.',
    byDefault: false,
  },
  {
    id: 'precopy+auto-converge',
    method: 'precopy',
    label: 'Precopy + auto-converge',
    capabilities: ['auto-converge'],
    destinationCapabilities: [],
    explain: 'QEMU throttles the guest\u2019s vCPU, more at each round that does not converge, so it dirties pages slower than they are sent.',
    byDefault: false,
  },
];

/** Every capability a variant may turn on: each run starts with all of them off, so none leaks into the next. */
export const VARIANT_CAPABILITIES: readonly string[] = [...new Set(COMPARE_VARIANTS.flatMap((v) => v.capabilities))];

export function variantById(id: string): CompareVariant | undefined {
  return COMPARE_VARIANTS.find((v) => v.id === id);
}

/** The source's capability settings for one run: the variant's on, every other variant's off. */
export function capabilitiesFor(v: CompareVariant): Record<string, boolean> {
  return Object.fromEntries(VARIANT_CAPABILITIES.map((c) => [c, v.capabilities.includes(c)]));
}
