// `idb:NAME`: migration streams saved in IndexedDB, QEMU's "migrate to file" for a browser.
//
// A stream of hundreds of MiB never sits in memory whole: the sink cuts it into ~1 MiB records
// stored one per transaction under a fresh save id, listed in `pending`. Only commit() makes it a
// snapshot, in one transaction that also drops any older snapshot of the same name, so a save
// that fails, is aborted, or dies with its tab never shows up. Each open sink holds a Web Lock
// named after its save; pending saves whose lock nobody holds are garbage and get collected.
// Works on the main thread and in workers.

import type { ByteSource, CommitSink } from './bytes.js';
import { ChannelClosedError, TransportError } from './channel.js';
import { chunkRange, openSnapshotDB, type SnapshotDatabase, type SnapshotRecord } from './snapshot-db.js';

/** Size of one stored record. */
export const RECORD_SIZE = 1024 * 1024;
const LOCK_PREFIX = 'tabmig-save:';
const CHANGES_CHANNEL = 'tabmig-snapshots-changed';
/** Without Web Locks, a pending save older than this is presumed dead. */
const PENDING_MAX_AGE_MS = 24 * 3600 * 1000;

export interface SnapshotInfo {
  name: string;
  /** Bytes of stream. */
  size: number;
  /** ms since the epoch, when the save was committed. */
  created: number;
}

export interface SnapshotSink extends CommitSink {
  readonly name: string;
  readonly bytesWritten: number;
}

export interface SnapshotSource extends ByteSource {
  readonly info: SnapshotInfo;
  readonly bytesRead: number;
}

function info(r: SnapshotRecord): SnapshotInfo {
  return { name: r.name, size: r.size, created: r.created };
}

function newSaveId(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function locks(): LockManager | null {
  return typeof navigator !== 'undefined' && navigator.locks ? navigator.locks : null;
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name === '') throw new TransportError('a snapshot needs a name');
}

function notFound(name: string): TransportError {
  return new TransportError(`Failed to open 'idb:${name}': No such snapshot`);
}

/** A save or import that may not replace a snapshot found one of its name. */
export class SnapshotExistsError extends TransportError {
  override name = 'SnapshotExistsError';
  constructor(readonly snapshot: string) {
    super(`A snapshot named '${snapshot}' already exists`);
  }
}

export interface CreateSinkOptions {
  /**
   * Replace a snapshot of the same name on commit (default true: `migrate idb:NAME` overwrites,
   * as QEMU's file: migration does). False: commit refuses with SnapshotExistsError instead.
   */
  replace?: boolean;
}

export interface ImportOptions {
  /** The user chose to replace an existing snapshot of this name; without it, one is refused. */
  overwrite?: boolean;
  onProgress?: (done: number, total: number) => void;
}

class IdbSink implements SnapshotSink {
  bytesWritten = 0;
  private buf = new Uint8Array(RECORD_SIZE);
  private fill = 0;
  private seq = 0;
  private inflight: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  private state: 'open' | 'committing' | 'done' = 'open';

  constructor(
    private readonly db: SnapshotDatabase,
    readonly name: string,
    private readonly save: string,
    private readonly releaseLock: () => void,
    private readonly changed: () => void,
    private readonly replace: boolean,
  ) {}

  private check(): void {
    if (this.error) throw this.error;
    if (this.state !== 'open') throw new ChannelClosedError(`idb:${this.name}`, this.state === 'done' ? 'closed' : 'committing', 'local');
  }

  private flush(): void {
    if (this.fill === 0) return;
    const data = this.buf.slice(0, this.fill).buffer;
    const seq = this.seq++;
    this.fill = 0;
    this.inflight = this.inflight.then(async () => {
      if (this.error) return;
      try {
        await this.db.put('chunks', { save: this.save, seq, data });
      } catch (e) {
        this.error ??= new TransportError(`Failed to write 'idb:${this.name}': ${(e as Error).message}`);
      }
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.check();
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(RECORD_SIZE - this.fill, chunk.byteLength - at);
      this.buf.set(chunk.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === RECORD_SIZE) {
        // One record in flight while the next fills: back-pressure without a long queue.
        await this.inflight;
        this.check();
        this.flush();
      }
    }
    this.bytesWritten += chunk.byteLength;
  }

  async commit(): Promise<void> {
    this.check();
    this.state = 'committing';
    try {
      this.flush();
      await this.inflight;
      if (this.error) throw this.error;
      const tx = this.db.transaction(['snapshots', 'chunks', 'pending'], 'readwrite');
      tx.done.catch(() => {}); // an abort below rejects it; the failure is reported from here
      try {
        const snapshots = tx.objectStore('snapshots');
        const old = await snapshots.get(this.name);
        // Checked inside the commit transaction, so a save of the same name that finished while
        // this one was being written is never replaced behind the user's back.
        if (old && !this.replace) {
          await tx.done; // nothing written yet: let it finish before discard() opens another
          throw new SnapshotExistsError(this.name);
        }
        if (old) await tx.objectStore('chunks').delete(chunkRange(old.save));
        await snapshots.put({ name: this.name, save: this.save, size: this.bytesWritten, chunks: this.seq, created: Date.now() });
        await tx.objectStore('pending').delete(this.save);
        await tx.done;
      } catch (e) {
        // All or nothing: a step that failed (a full disk, say) must not leave the older
        // snapshot's records deleted by the steps before it, which would commit with the
        // transaction otherwise.
        try {
          tx.abort();
        } catch {
          // already finished or aborted
        }
        throw e;
      }
    } catch (e) {
      this.error ??= e instanceof TransportError ? e : new TransportError(`Failed to save 'idb:${this.name}': ${(e as Error).message}`);
      await this.discard();
      throw this.error;
    }
    this.state = 'done';
    this.buf = new Uint8Array(0);
    this.releaseLock();
    this.changed();
  }

  async abort(reason = 'aborted'): Promise<void> {
    if (this.state === 'done') return;
    this.error ??= new ChannelClosedError(`idb:${this.name}`, reason, 'local');
    await this.discard();
  }

  private async discard(): Promise<void> {
    this.state = 'done';
    this.buf = new Uint8Array(0);
    await this.inflight.catch(() => {});
    try {
      const tx = this.db.transaction(['chunks', 'pending'], 'readwrite');
      await tx.objectStore('chunks').delete(chunkRange(this.save));
      await tx.objectStore('pending').delete(this.save);
      await tx.done;
    } catch {
      // left for garbage collection
    } finally {
      this.releaseLock();
    }
  }
}

class IdbSource implements SnapshotSource {
  bytesRead = 0;
  private next = 0;
  private prefetch: Promise<ArrayBuffer | undefined> | null = null;

  constructor(
    private readonly db: SnapshotDatabase,
    private readonly record: SnapshotRecord,
  ) {}

  get info(): SnapshotInfo {
    return info(this.record);
  }

  private fetch(seq: number): Promise<ArrayBuffer | undefined> {
    return this.db.get('chunks', [this.record.save, seq]).then((r) => r?.data);
  }

  async read(): Promise<Uint8Array | null> {
    if (this.next >= this.record.chunks) return null;
    const seq = this.next++;
    const data = await (this.prefetch ?? this.fetch(seq));
    this.prefetch = this.next < this.record.chunks ? this.fetch(this.next) : null;
    this.prefetch?.catch(() => {});
    if (!data) throw new TransportError(`snapshot 'idb:${this.record.name}' was deleted or overwritten while being read`);
    this.bytesRead += data.byteLength;
    return new Uint8Array(data);
  }
}

export class SnapshotStore {
  private readonly changes: BroadcastChannel | null;

  private constructor(private readonly db: SnapshotDatabase) {
    this.changes = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(CHANGES_CHANNEL) : null;
  }

  /** Opens the database (creating or upgrading it) and collects abandoned saves. */
  static async open(dbName?: string): Promise<SnapshotStore> {
    const store = new SnapshotStore(await openSnapshotDB(dbName));
    await store.collectGarbage().catch(() => {});
    return store;
  }

  close(): void {
    this.changes?.close();
    this.db.close();
  }

  async list(): Promise<SnapshotInfo[]> {
    const all = await this.db.getAll('snapshots');
    return all.map(info).sort((a, b) => b.created - a.created || a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<SnapshotInfo | undefined> {
    const r = await this.db.get('snapshots', name);
    return r && info(r);
  }

  /** Deletes a snapshot; false if there was none. */
  async delete(name: string): Promise<boolean> {
    const tx = this.db.transaction(['snapshots', 'chunks'], 'readwrite');
    const r = await tx.objectStore('snapshots').get(name);
    if (r) {
      await tx.objectStore('snapshots').delete(name);
      await tx.objectStore('chunks').delete(chunkRange(r.save));
    }
    await tx.done;
    if (r) this.notify();
    return !!r;
  }

  /** A sink that becomes snapshot `name` on commit (replacing one of that name unless told not to). */
  async createSink(name: string, options: CreateSinkOptions = {}): Promise<SnapshotSink> {
    checkName(name);
    const save = newSaveId();
    const releaseLock = await this.holdLock(save);
    try {
      await this.db.put('pending', { save, name, started: Date.now() });
    } catch (e) {
      releaseLock();
      throw new TransportError(`Failed to create 'idb:${name}': ${(e as Error).message}`);
    }
    return new IdbSink(this.db, name, save, releaseLock, () => this.notify(), options.replace ?? true);
  }

  /** Reads snapshot `name` back as chunks. Throws TransportError if there is none. */
  async openSource(name: string): Promise<SnapshotSource> {
    const r = await this.db.get('snapshots', name);
    if (!r) throw notFound(name);
    return new IdbSource(this.db, r);
  }

  /** The snapshot as a Blob (for a download), built without holding it all in memory at once. */
  async exportBlob(name: string, type = 'application/octet-stream'): Promise<Blob> {
    const src = await this.openSource(name);
    let blob = new Blob([], { type });
    let parts: BlobPart[] = [];
    for (let c = await src.read(); c; c = await src.read()) {
      parts.push(c as Uint8Array<ArrayBuffer>);
      // Fold into the Blob every few records: Chromium keeps blob parts by reference (and may
      // page them to disk), so memory stays at a few records.
      if (parts.length >= 8) {
        blob = new Blob([blob, ...parts], { type });
        parts = [];
      }
    }
    return parts.length ? new Blob([blob, ...parts], { type }) : blob;
  }

  /**
   * Saves a Blob or File (a downloaded stream) as snapshot `name`. An existing snapshot of that
   * name is refused (SnapshotExistsError) unless `overwrite` is set. The bytes are stored as they
   * are: checking that they are a loadable stream is the caller's job (SnapshotService does it),
   * so this layer stays free of the stream format.
   */
  async importBlob(name: string, blob: Blob, options: ImportOptions = {}): Promise<SnapshotInfo> {
    const { overwrite = false, onProgress } = options;
    checkName(name);
    // Refuse early, before copying anything; commit checks again in its own transaction.
    if (!overwrite && (await this.get(name))) throw new SnapshotExistsError(name);
    const sink = await this.createSink(name, { replace: overwrite });
    try {
      for (let at = 0; at < blob.size; at += RECORD_SIZE) {
        const piece = new Uint8Array(await blob.slice(at, at + RECORD_SIZE).arrayBuffer());
        await sink.write(piece);
        onProgress?.(at + piece.byteLength, blob.size);
      }
      await sink.commit();
    } catch (e) {
      await sink.abort((e as Error).message);
      throw e instanceof TransportError ? e : new TransportError(`Failed to import 'idb:${name}': ${(e as Error).message}`);
    }
    return (await this.get(name))!;
  }

  /** Calls fn when snapshots change in any tab or worker of this origin. Returns unsubscribe. */
  subscribe(fn: () => void): () => void {
    if (typeof BroadcastChannel === 'undefined') return () => {};
    const bc = new BroadcastChannel(CHANGES_CHANNEL);
    bc.onmessage = () => fn();
    const local = () => fn();
    this.localListeners.add(local);
    return () => {
      bc.close();
      this.localListeners.delete(local);
    };
  }

  private readonly localListeners = new Set<() => void>();

  private notify(): void {
    this.changes?.postMessage('changed');
    for (const f of this.localListeners) f();
  }

  /** Deletes saves that no live sink holds (tab crashed mid-save). */
  async collectGarbage(): Promise<number> {
    const pending = await this.db.getAll('pending');
    if (!pending.length) return 0;
    const lm = locks();
    let held = new Set<string>();
    if (lm) {
      const q = await lm.query();
      held = new Set([...(q.held ?? []), ...(q.pending ?? [])].map((l) => l.name ?? ''));
    }
    const dead = pending.filter((p) => (lm ? !held.has(LOCK_PREFIX + p.save) : Date.now() - p.started > PENDING_MAX_AGE_MS));
    for (const p of dead) {
      const tx = this.db.transaction(['chunks', 'pending'], 'readwrite');
      await tx.objectStore('chunks').delete(chunkRange(p.save));
      await tx.objectStore('pending').delete(p.save);
      await tx.done;
    }
    return dead.length;
  }

  /** Holds a Web Lock for the save until the returned function is called. */
  private holdLock(save: string): Promise<() => void> {
    const lm = locks();
    if (!lm) return Promise.resolve(() => {});
    return new Promise((granted, failed) => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      lm.request(LOCK_PREFIX + save, () => {
        granted(release);
        return held;
      }).catch(failed);
    });
  }
}
