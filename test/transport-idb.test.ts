// Snapshots in IndexedDB (idb:NAME) and as files (file:NAME): saved in records, visible only once
// committed, listed, read back byte for byte, exported and imported, from a worker too.

import { ChannelClosedError, TransportError } from '../src/transport/channel.js';
import { blobSource, BlobSink } from '../src/transport/file.js';
import { RECORD_SIZE, SnapshotExistsError } from '../src/transport/idb-store.js';
import { openSnapshotDB } from '../src/transport/snapshot-db.js';
import { equal, ok, rejects } from './helpers/assert.js';
import { freshSnapshotDb } from './helpers/fresh-snapshot-db.js';

const MiB = 1 << 20;
const PERIOD = 253;

const db = freshSnapshotDb('tabmig-snapshots-test');

/** Writes `bytes` of the pattern in awkward piece sizes. */
async function fill(sink: { write(c: Uint8Array): Promise<void> }, bytes: number, pieceSize = 100003): Promise<void> {
  const piece = new Uint8Array(pieceSize);
  for (let at = 0; at < bytes; at += pieceSize) {
    const n = Math.min(pieceSize, bytes - at);
    for (let i = 0; i < n; i++) piece[i] = (at + i) % PERIOD;
    await sink.write(piece.subarray(0, n));
  }
}

/** Reads a source to the end, checking the pattern; returns [bytes, first bad offset or -1]. */
async function drain(src: { read(): Promise<Uint8Array | null> }): Promise<[number, number]> {
  let got = 0;
  let bad = -1;
  for (let c = await src.read(); c; c = await src.read()) {
    for (let i = 0; bad < 0 && i < c.length; i++) if (c[i] !== (got + i) % PERIOD) bad = got + i;
    got += c.length;
  }
  return [got, bad];
}

async function chunkCount(): Promise<number> {
  const idb = await openSnapshotDB(db.name);
  try {
    return await idb.count('chunks');
  } finally {
    idb.close();
  }
}

describe('transport: idb snapshots', () => {
  it('saves in records, lists on commit, and reads back byte for byte', async () => {
    const size = 5 * MiB + 12345;
    const t0 = Date.now();
    const sink = await db.store.createSink('first');
    await fill(sink, size);
    equal((await db.store.list()).length, 0, 'nothing visible before commit');
    await sink.commit();
    const list = await db.store.list();
    equal(list.length, 1);
    equal(list[0].name, 'first');
    equal(list[0].size, size);
    ok(list[0].created >= t0 && list[0].created <= Date.now(), 'date of the save');
    equal(await chunkCount(), Math.ceil(size / RECORD_SIZE), 'stored as separate records');
    const src = await db.store.openSource('first');
    equal(src.info.size, size);
    const [got, bad] = await drain(src);
    equal(got, size);
    equal(bad, -1, 'first corrupt offset');
    equal(await src.read(), null);
    await rejects(sink.write(new Uint8Array(1)), 'write after commit');
  });

  it('an aborted save never shows up and leaves no records', async () => {
    const sink = await db.store.createSink('aborted');
    await fill(sink, 3 * MiB);
    await sink.abort('migrate_cancel');
    equal((await db.store.list()).length, 0);
    equal(await db.store.get('aborted'), undefined);
    equal(await chunkCount(), 0);
    const e = await rejects(sink.write(new Uint8Array(1)));
    ok(e instanceof ChannelClosedError);
  });

  it('a save that dies with its worker never shows up, and its records are collected', async () => {
    const w = new Worker(new URL('./fixtures/transport-idb.worker.ts', import.meta.url), { type: 'module' });
    const r = await new Promise<{ ok: boolean; error?: string }>((res) => {
      w.onmessage = (e) => res(e.data);
      w.postMessage({ db: db.name, name: 'crashed', bytes: 3 * MiB, then: 'hang' });
    });
    ok(r.ok, r.error);
    ok((await chunkCount()) >= 2, 'records written');
    equal(await db.store.collectGarbage(), 0, 'a save whose worker lives is not garbage');
    w.terminate(); // the tab "crashes": its Web Lock goes with it
    await new Promise((res) => setTimeout(res, 200));
    equal((await db.store.list()).length, 0, 'never visible');
    equal(await db.store.collectGarbage(), 1);
    equal(await chunkCount(), 0);
  });

  it('a worker can save; the main thread reads it back', async () => {
    const w = new Worker(new URL('./fixtures/transport-idb.worker.ts', import.meta.url), { type: 'module' });
    try {
      const r = await new Promise<{ ok: boolean; error?: string }>((res) => {
        w.onmessage = (e) => res(e.data);
        w.postMessage({ db: db.name, name: 'from-worker', bytes: 2 * MiB + 1, then: 'commit' });
      });
      ok(r.ok, r.error);
      const src = await db.store.openSource('from-worker');
      const [got, bad] = await drain(src);
      equal(got, 2 * MiB + 1);
      equal(bad, -1);
    } finally {
      w.terminate();
    }
  });

  it('overwrites by name, deletes, and reports a missing snapshot', async () => {
    let sink = await db.store.createSink('s');
    await fill(sink, 3 * MiB);
    await sink.commit();
    sink = await db.store.createSink('s');
    await fill(sink, 1000);
    await sink.commit();
    const list = await db.store.list();
    equal(list.length, 1);
    equal(list[0].size, 1000);
    equal(await chunkCount(), 1, 'the old records went with the overwrite');
    equal(await db.store.delete('s'), true);
    equal(await db.store.delete('s'), false);
    equal(await chunkCount(), 0);
    const e = await rejects(db.store.openSource('s'));
    ok(e instanceof TransportError);
    equal((e as Error).message, "Failed to open 'idb:s': No such snapshot");
  });

  it('an import never silently replaces a snapshot of the same name', async () => {
    const first = await db.store.createSink('taken');
    await fill(first, 1000);
    await first.commit();
    const e = await rejects(db.store.importBlob('taken', new Blob([new Uint8Array(5)])));
    ok(e instanceof SnapshotExistsError, String(e));
    equal((e as Error).message, "A snapshot named 'taken' already exists");
    equal((await db.store.get('taken'))?.size, 1000, 'the old snapshot is untouched');
    equal(await chunkCount(), 1, 'nothing of the refused import stayed behind');
    // The user confirmed: now it replaces.
    const info = await db.store.importBlob('taken', new Blob([new Uint8Array(5)]), { overwrite: true });
    equal(info.size, 5);
    equal((await db.store.list()).length, 1);
  });

  it('a save of the same name that commits during an import is not replaced by it', async () => {
    const importing = await db.store.createSink('race', { replace: false });
    await fill(importing, 100);
    const save = await db.store.createSink('race');
    await fill(save, 200);
    await save.commit();
    const e = await rejects(importing.commit());
    ok(e instanceof SnapshotExistsError);
    equal((await db.store.get('race'))?.size, 200, 'the save that finished first stays');
    equal(await chunkCount(), 1);
  });

  it('exports a Blob for download and imports a File back identically', async () => {
    const size = 2 * MiB + 777;
    const sink = await db.store.createSink('orig');
    await fill(sink, size);
    await sink.commit();
    const blob = await db.store.exportBlob('orig');
    equal(blob.size, size);
    const file = new File([blob], 'orig.qemu');
    const progress: number[] = [];
    const info = await db.store.importBlob('copy', file, { onProgress: (done) => progress.push(done) });
    equal(info.size, size);
    equal(progress[progress.length - 1], size);
    const [got, bad] = await drain(await db.store.openSource('copy'));
    equal(got, size);
    equal(bad, -1);
    equal((await db.store.list()).map((s) => s.name).sort().join(), 'copy,orig');
  });

  it('tells subscribers when snapshots change', async () => {
    let calls = 0;
    const off = db.store.subscribe(() => calls++);
    const sink = await db.store.createSink('x');
    await fill(sink, 10);
    await sink.commit();
    await db.store.delete('x');
    off();
    ok(calls >= 2, `calls ${calls}`);
  });
});

describe('transport: file sink and source', () => {
  it('collects a stream into a Blob and reads it back', async () => {
    const sink = new BlobSink('snap.qemu');
    await fill(sink, 9 * MiB + 3);
    equal(sink.blob, null, 'no Blob before commit');
    await sink.commit();
    equal(sink.blob!.size, 9 * MiB + 3);
    const [got, bad] = await drain(blobSource(sink.blob!, 300000));
    equal(got, 9 * MiB + 3);
    equal(bad, -1);
    await rejects(sink.write(new Uint8Array(1)));
  });
});
