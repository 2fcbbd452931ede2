// The IndexedDB schema for saved migration streams ("migrate to file", in the browser): the one
// DBSchema and its upgrades, keyed on oldVersion. Usable from the main thread and workers.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

export const SNAPSHOT_DB_NAME = 'tabmig-snapshots';
export const SNAPSHOT_DB_VERSION = 1;

/** A committed, visible snapshot. */
export interface SnapshotRecord {
  name: string;
  /** Which chunks are this snapshot's (a fresh id per save, so an overwrite never mixes). */
  save: string;
  size: number;
  chunks: number;
  /** ms since the epoch, when committed. */
  created: number;
}

/** A piece of a stream, in order by seq within its save. */
export interface ChunkRecord {
  save: string;
  seq: number;
  data: ArrayBuffer;
}

/** A save in progress (or abandoned by a crashed tab: garbage to collect). */
export interface PendingRecord {
  save: string;
  name: string;
  started: number;
}

export interface SnapshotDB extends DBSchema {
  snapshots: { key: string; value: SnapshotRecord; indexes: { save: string } };
  chunks: { key: [string, number]; value: ChunkRecord };
  pending: { key: string; value: PendingRecord };
}

export type SnapshotDatabase = IDBPDatabase<SnapshotDB>;

export function openSnapshotDB(name = SNAPSHOT_DB_NAME): Promise<SnapshotDatabase> {
  return openDB<SnapshotDB>(name, SNAPSHOT_DB_VERSION, {
    upgrade(db, oldVersion) {
      // Each step takes the schema from one version to the next; fall through on purpose.
      switch (oldVersion) {
        case 0: {
          const snapshots = db.createObjectStore('snapshots', { keyPath: 'name' });
          snapshots.createIndex('save', 'save', { unique: true });
          db.createObjectStore('chunks', { keyPath: ['save', 'seq'] });
          db.createObjectStore('pending', { keyPath: 'save' });
        }
      }
    },
    blocking() {
      // A newer version wants to upgrade in another tab: step aside rather than block it.
    },
  });
}

/** Key range of every chunk of one save. */
export function chunkRange(save: string): IDBKeyRange {
  return IDBKeyRange.bound([save, 0], [save, Infinity]);
}
