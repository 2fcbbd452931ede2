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

/** query-migrate's xbzrle-cache (QAPI XBZRLECacheStats). */
export interface XbzrleCacheStats {
  'cache-size': number;
  bytes: number;
  pages: number;
  'cache-miss': number;
  'cache-miss-rate': number;
  overflow: number;
}

/** query-migrate's compression (QAPI CompressionStats, QEMU 3.1). */
export interface CompressionStats {
  pages: number;
  busy: number;
  'busy-rate': number;
  'compressed-size': number;
  'compression-rate': number;
}

/** Which optional members the source reports (the capabilities of its migration). */
export interface InfoFeatures {
  xbzrle: boolean;
  xbzrleCacheSize: number;
  compress: boolean;
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
  'xbzrle-cache'?: XbzrleCacheStats;
  compression?: CompressionStats;
}

function addFeatureStats(info: MigrationInfo, b: MigrationBlock, f: InfoFeatures | undefined): void {
  if (f?.xbzrle) {
    info['xbzrle-cache'] = {
      'cache-size': f.xbzrleCacheSize,
      bytes: b.get(MigCounter.XBZRLE_BYTES),
      pages: b.get(MigCounter.XBZRLE_PAGES),
      'cache-miss': b.get(MigCounter.XBZRLE_CACHE_MISS),
      'cache-miss-rate': b.get(MigCounter.XBZRLE_CACHE_MISS_RATE),
      overflow: b.get(MigCounter.XBZRLE_OVERFLOW),
    };
  }
  if (f?.compress) {
    info.compression = {
      pages: b.get(MigCounter.COMPRESS_PAGES),
      busy: b.get(MigCounter.COMPRESS_BUSY),
      'busy-rate': b.get(MigCounter.COMPRESS_BUSY_RATE),
      'compressed-size': b.get(MigCounter.COMPRESSED_SIZE),
      'compression-rate': b.get(MigCounter.COMPRESSION_RATE),
    };
  }
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
    'multifd-bytes': b.get(MigCounter.MULTIFD_BYTES),
  };
  if (status !== 'completed') {
    ram.remaining = b.get(MigCounter.REMAINING);
    ram['dirty-pages-rate'] = b.get(MigCounter.DIRTY_PAGES_RATE);
  }
  return ram;
}

/** The source's view. `now` is Date.now() for the running total time. */
export function sourceMigrationInfo(b: MigrationBlock, status: MigrationStatus, error: string | null, throttle: number, now: number, features?: InfoFeatures): MigrationInfo {
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
      addFeatureStats(info, b, features);
      if (throttle > 0) info['cpu-throttle-percentage'] = throttle;
      return info;
    }
    case 'completed': {
      const info: MigrationInfo = {
        status,
        'total-time': b.get(MigCounter.TOTAL_TIME),
        downtime: b.get(MigCounter.DOWNTIME),
        'setup-time': b.get(MigCounter.SETUP_TIME),
        ram: ramInfo(b, status),
      };
      addFeatureStats(info, b, features);
      return info;
    }
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
