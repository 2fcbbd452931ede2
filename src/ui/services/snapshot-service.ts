// The saved snapshots as the UI sees them: a plain class over the IndexedDB SnapshotStore that
// keeps the list (name, size, date) current across tabs and tells subscribers when it changes.
// Saving is not here: a snapshot is made by `migrate idb:NAME`, through QMP. Importing a file is:
// it is checked to be a stream this tab can load before a byte is stored, and it never replaces
// a snapshot of the same name unless the caller says the user chose to.

import { SnapshotExistsError, SnapshotStore, type SnapshotInfo } from '../../transport/idb-store.js';
import { checkStream, type StreamExpectations } from './stream-check.js';

export type { SnapshotInfo } from '../../transport/idb-store.js';
export { SnapshotExistsError } from '../../transport/idb-store.js';
export { StreamCheckError, type StreamExpectations } from './stream-check.js';

export interface SnapshotImportOptions {
  /** What the stream must be loadable into (this tab's machine type and RAM size). */
  expect: StreamExpectations;
  /** Replace a snapshot of the same name: only after the user confirmed it. */
  overwrite?: boolean;
  /** Bytes done of total, first while checking the file, then while copying it. */
  onProgress?: (done: number, total: number, phase: 'checking' | 'copying') => void;
}

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
  /**
   * Checks `blob` is a loadable stream (StreamCheckError if not), then stores it as `name`;
   * SnapshotExistsError if that name is taken and `overwrite` is not set.
   */
  importBlob(name: string, blob: Blob, options: SnapshotImportOptions): Promise<SnapshotInfo>;
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

  async importBlob(name: string, blob: Blob, options: SnapshotImportOptions): Promise<SnapshotInfo> {
    const { expect, overwrite = false, onProgress } = options;
    const store = await this.opened();
    // A taken name is refused before the (possibly long) check: the user answers that first.
    if (!overwrite && (await store.get(name))) throw new SnapshotExistsError(name);
    await checkStream(blob, expect, (done, total) => onProgress?.(done, total, 'checking'));
    return store.importBlob(name, blob, { overwrite, onProgress: (done, total) => onProgress?.(done, total, 'copying') });
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
