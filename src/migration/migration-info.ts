// query-migrate's reply, field for field as QEMU fills it for each status (fill_source_migration_info,
// populate_ram_info, fill_destination_migration_info).

import { PAGE_SIZE } from '../guest/memory-map.js';
import { MigCounter, type MigrationBlock } from './migration-block.js';
import type { MigrationStatus } from './state.js';

export interface MigrationRamInfo {
  transferred: number;
  remaining?: number;
  total: number;
  duplicate: number;
  skipped: number;
  normal: number;
  'normal-bytes': number;
  'dirty-pages-rate'?: number;
  mbps: number;
  'dirty-sync-count': number;
  'postcopy-requests': number;
  'page-size': number;
  'multifd-bytes': number;
}

export interface MigrationInfo {
  status?: MigrationStatus;
  ram?: MigrationRamInfo;
  'total-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'setup-time'?: number;
  'cpu-throttle-percentage'?: number;
  'error-desc'?: string;
  /** Destination, postcopy-blocktime: ms every vCPU stood still on missing pages at once. */
  'postcopy-blocktime'?: number;
  /** Destination, postcopy-blocktime: ms each vCPU stood still on missing pages. */
  'postcopy-vcpu-blocktime'?: number[];
}

function ramInfo(b: MigrationBlock, status: MigrationStatus): MigrationRamInfo {
  const normal = b.get(MigCounter.NORMAL);
  const ram: MigrationRamInfo = {
    transferred: b.get(MigCounter.TRANSFERRED),
    total: b.get(MigCounter.TOTAL),
    duplicate: b.get(MigCounter.DUPLICATE),
    skipped: 0,
    normal,
    'normal-bytes': normal * PAGE_SIZE,
    mbps: b.get(MigCounter.MBPS),
    'dirty-sync-count': b.get(MigCounter.DIRTY_SYNC_COUNT),
    'postcopy-requests': b.get(MigCounter.POSTCOPY_REQUESTS),
    'page-size': PAGE_SIZE,
    'multifd-bytes': 0,
  };
  if (status !== 'completed') {
    ram.remaining = b.get(MigCounter.REMAINING);
    ram['dirty-pages-rate'] = b.get(MigCounter.DIRTY_PAGES_RATE);
  }
  return ram;
}

/** The source's view. `now` is Date.now() for the running total time. */
export function sourceMigrationInfo(b: MigrationBlock, status: MigrationStatus, error: string | null, throttle: number, now: number): MigrationInfo {
  switch (status) {
    case 'none':
      return {};
    case 'setup':
      return { status };
    case 'active':
    case 'cancelling':
    case 'postcopy-active':
    case 'pre-switchover':
    case 'device':
    case 'postcopy-paused':
    case 'postcopy-recover': {
      const info: MigrationInfo = {
        status,
        'total-time': Math.round(now - b.get(MigCounter.START_TIME)),
        'expected-downtime': b.get(MigCounter.EXPECTED_DOWNTIME),
        'setup-time': b.get(MigCounter.SETUP_TIME),
        ram: ramInfo(b, status),
      };
      if (throttle > 0) info['cpu-throttle-percentage'] = throttle;
      return info;
    }
    case 'completed':
      return {
        status,
        'total-time': b.get(MigCounter.TOTAL_TIME),
        downtime: b.get(MigCounter.DOWNTIME),
        'setup-time': b.get(MigCounter.SETUP_TIME),
        ram: ramInfo(b, status),
      };
    case 'failed':
      return error ? { status, 'error-desc': error } : { status };
    case 'cancelled':
    case 'colo':
      return { status };
  }
}

/** The destination's view: QEMU reports only the status (and, here, why it failed). */
export function destinationMigrationInfo(status: MigrationStatus, error: string | null): MigrationInfo {
  if (status === 'none') return {};
  return status === 'failed' && error ? { status, 'error-desc': error } : { status };
}
