// The IndexedDB schema for the run history (every migration this browser sent, with what it was
// asked and what came of it): one DBSchema, upgrades keyed on oldVersion.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { MigrationInfo } from '../../migration/migration-info.js';
import type { RoundRecord } from '../../migration/round-records.js';

export const HISTORY_DB_NAME = 'tabmig-history';
export const HISTORY_DB_VERSION = 1;

/**
 * How the guest was moved: live (precopy, postcopy), as a user without live migration would
 * (stop-and-copy), or saved into a snapshot (`idb:` or `file:`, QEMU's migrate to a file).
 */
export type RunMethod = 'stop-and-copy' | 'precopy' | 'postcopy' | 'snapshot';

export interface RunRecord {
  /** Assigned by the store. */
  id?: number;
  /** ms since the epoch, when the migration started. */
  started: number;
  uri: string;
  method: RunMethod;
  /** A name for the run (e.g. "compare 3 · precopy"); empty for a plain migration. */
  label: string;
  /** The guest that was moved, when known (program, arguments, RAM size). */
  guest?: { program?: string; args?: string; ramSize?: number };
  capabilities: Record<string, boolean>;
  parameters: Record<string, unknown>;
  rounds: RoundRecord[];
  /** query-migrate at the end. */
  result: MigrationInfo;
  /** Downtime as the guest saw it (ms), when measured (compare runs); else query-migrate's. */
  guestDowntime?: number | null;
}

export interface HistoryDB extends DBSchema {
  runs: { key: number; value: RunRecord; indexes: { started: number } };
}

export type HistoryDatabase = IDBPDatabase<HistoryDB>;

export function openHistoryDB(name = HISTORY_DB_NAME): Promise<HistoryDatabase> {
  return openDB<HistoryDB>(name, HISTORY_DB_VERSION, {
    upgrade(db, oldVersion) {
      // Each step takes the schema from one version to the next; fall through on purpose.
      switch (oldVersion) {
        case 0: {
          const runs = db.createObjectStore('runs', { keyPath: 'id', autoIncrement: true });
          runs.createIndex('started', 'started');
        }
      }
    },
    blocking() {
      // A newer version wants to upgrade in another tab: step aside rather than block it.
    },
  });
}
