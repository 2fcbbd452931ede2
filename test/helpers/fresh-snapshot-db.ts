// A fresh IndexedDB snapshot database for each test (registered with mocha's beforeEach and
// afterEach), deleted afterwards, so tests never see each other's snapshots.

import { SnapshotStore } from '../../src/transport/idb-store.js';

export interface FreshSnapshotDb {
  /** The database of the running test. */
  name: string;
  store: SnapshotStore;
}

export function freshSnapshotDb(prefix: string): FreshSnapshotDb {
  const db = { name: '', store: null as unknown as SnapshotStore };
  beforeEach(async () => {
    db.name = `${prefix}-${Math.random().toString(36).slice(2)}`;
    db.store = await SnapshotStore.open(db.name);
  });
  afterEach(async () => {
    db.store.close();
    await new Promise((r) => {
      const req = indexedDB.deleteDatabase(db.name);
      req.onsuccess = req.onerror = req.onblocked = r;
    });
  });
  return db;
}
