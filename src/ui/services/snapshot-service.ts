// The saved snapshots as the UI sees them: a plain class over the IndexedDB SnapshotStore that
// keeps the list (name, size, date) current across tabs and tells subscribers when it changes.
// Saving is not here: a snapshot is made by `migrate idb:NAME`, through QMP.

import { SnapshotStore, type SnapshotInfo } from '../../transport/idb-store.js';

export type { SnapshotInfo } from '../../transport/idb-store.js';

/** What <tm-snapshots> needs; SnapshotService implements it, tests pass a fake. */
export interface SnapshotsView {
  readonly snapshots: readonly SnapshotInfo[];
  /** False until the first list has been read. */
  readonly ready: boolean;
  /** Why the store could not be opened or listed, if it could not. */
  readonly error: string | null;
  subscribe(listener: () => void): () => void;
  unsubscribe(listener: () => void): void;
  delete(name: string): Promise<boolean>;
  exportBlob(name: string): Promise<Blob>;
  importBlob(name: string, blob: Blob, onProgress?: (done: number, total: number) => void): Promise<SnapshotInfo>;
}

export class SnapshotService implements SnapshotsView {
  snapshots: readonly SnapshotInfo[] = [];
  ready = false;
  error: string | null = null;

  private store: Promise<SnapshotStore> | null = null;
  private stopWatching: (() => void) | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly open: () => Promise<SnapshotStore> = () => SnapshotStore.open()) {}

  /** Calls `listener` after every change until unsubscribed; opens the store on first use. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) void this.attach();
    return () => this.unsubscribe(listener);
  }

  unsubscribe(listener: () => void): void {
    if (this.listeners.delete(listener) && this.listeners.size === 0) {
      this.stopWatching?.();
      this.stopWatching = null;
    }
  }

  async delete(name: string): Promise<boolean> {
    return (await this.opened()).delete(name);
  }

  async exportBlob(name: string): Promise<Blob> {
    return (await this.opened()).exportBlob(name);
  }

  async importBlob(name: string, blob: Blob, onProgress?: (done: number, total: number) => void): Promise<SnapshotInfo> {
    return (await this.opened()).importBlob(name, blob, onProgress);
  }

  private opened(): Promise<SnapshotStore> {
    this.store ??= this.open();
    return this.store;
  }

  private async attach(): Promise<void> {
    try {
      const store = await this.opened();
      if (this.listeners.size === 0 || this.stopWatching) return;
      this.stopWatching = store.subscribe(() => void this.refresh());
      await this.refresh();
    } catch (e) {
      this.store = null;
      this.error = `IndexedDB is not available: ${(e as Error).message ?? e}`;
      this.ready = true;
      this.notify();
    }
  }

  private async refresh(): Promise<void> {
    try {
      this.snapshots = await (await this.opened()).list();
      this.error = null;
    } catch (e) {
      this.error = `Could not list the snapshots: ${(e as Error).message ?? e}`;
    }
    this.ready = true;
    this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}
