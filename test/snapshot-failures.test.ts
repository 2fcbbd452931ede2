// Snapshots under failure: the quota runs out part way through a save (or at its commit), the
// tab saving dies part way, a corrupt file is imported. In every case no half snapshot becomes
// visible, and an older snapshot of the same name is neither lost nor replaced: it still reads
// back byte for byte, and the failed save leaves no records behind (once its lock is gone).

import { RECORD_SIZE, SnapshotStore } from '../src/transport/idb-store.js';
import { openSnapshotDB } from '../src/transport/snapshot-db.js';
import { SnapshotService } from '../src/ui/services/snapshot-service.js';
import { StreamCheckError } from '../src/ui/services/stream-check.js';
import fc from 'fast-check';
import { applyMutations, mutation } from './fuzz/arbitraries.js';
import { FUZZ_MACHINE_TYPE, buildCorpus } from './fuzz/corpus.js';
import { equal, ok, rejects } from './helpers/assert.js';

const MiB = 1 << 20;
let dbName = '';
let store: SnapshotStore;

beforeEach(async () => {
  dbName = `tabmig-snapshot-failures-${Math.random().toString(36).slice(2)}`;
  store = await SnapshotStore.open(dbName);
});
afterEach(async () => {
  store.close();
  await new Promise((r) => {
    const req = indexedDB.deleteDatabase(dbName);
    req.onsuccess = req.onerror = req.onblocked = r;
  });
});

function pattern(bytes: number, salt: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 7 + salt) & 0xff;
  return b;
}

async function save(name: string, bytes: Uint8Array): Promise<void> {
  const sink = await store.createSink(name);
  for (let at = 0; at < bytes.length; at += 300001) await sink.write(bytes.subarray(at, at + 300001));
  await sink.commit();
}

async function readBack(name: string): Promise<Uint8Array> {
  return new Uint8Array(await (await store.exportBlob(name)).arrayBuffer());
}

async function records(): Promise<{ chunks: number; pending: number }> {
  const db = await openSnapshotDB(dbName);
  try {
    return { chunks: await db.count('chunks'), pending: await db.count('pending') };
  } finally {
    db.close();
  }
}

/** The older snapshot is still there, unchanged, and it is the only one. */
async function olderIntact(name: string, bytes: Uint8Array, created: number): Promise<void> {
  const list = await store.list();
  equal(list.length, 1, `only the older snapshot is listed: ${JSON.stringify(list)}`);
  equal(list[0]!.name, name);
  equal(list[0]!.created, created, 'not replaced');
  const back = await readBack(name);
  equal(back.length, bytes.length);
  ok(back.every((v, i) => v === bytes[i]), 'reads back byte for byte');
}

/** Makes IndexedDB refuse writes to `storeName` as a full disk does, after `after` successful ones. */
function exhaustQuota(storeName: string, after: number): () => void {
  const put = IDBObjectStore.prototype.put;
  let n = 0;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    if (this.name === storeName && n++ >= after) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return put.apply(this, args);
  } as IDBObjectStore['put'];
  return () => {
    IDBObjectStore.prototype.put = put;
  };
}

describe('snapshots under failure', () => {
  it('quota exhausted part way through a save: the save fails, no half snapshot, the older one stays', async () => {
    const older = pattern(3 * MiB + 5, 1);
    await save('lesson', older);
    const created = (await store.get('lesson'))!.created;
    const restore = exhaustQuota('chunks', 2);
    try {
      const sink = await store.createSink('lesson');
      const e = await rejects(
        (async () => {
          const next = pattern(6 * MiB, 2);
          for (let at = 0; at < next.length; at += RECORD_SIZE / 2) await sink.write(next.subarray(at, at + RECORD_SIZE / 2));
          await sink.commit();
        })(),
      );
      ok(/quota/i.test(String(e)), String(e));
      await sink.abort('quota');
    } finally {
      restore();
    }
    await olderIntact('lesson', older, created);
    equal((await records()).pending, 0, 'no pending save left');
    equal((await records()).chunks, Math.ceil(older.length / RECORD_SIZE), "only the older snapshot's records remain");
  });

  it('quota exhausted at the commit itself: nothing replaced', async () => {
    const older = pattern(2 * MiB, 3);
    await save('lesson', older);
    const created = (await store.get('lesson'))!.created;
    const sink = await store.createSink('lesson');
    await sink.write(pattern(2 * MiB + 77, 4));
    const restore = exhaustQuota('snapshots', 0);
    try {
      await rejects(sink.commit());
    } finally {
      restore();
    }
    await olderIntact('lesson', older, created);
    equal((await records()).chunks, Math.ceil(older.length / RECORD_SIZE));
  });

  it('the saving tab killed part way: never visible, the older one stays, its records are collected', async () => {
    const older = pattern(2 * MiB + 3, 5);
    await save('lesson', older);
    const created = (await store.get('lesson'))!.created;
    const w = new Worker(new URL('./fixtures/transport-idb.worker.ts', import.meta.url), { type: 'module' });
    const r = await new Promise<{ ok: boolean; error?: string }>((res) => {
      w.onmessage = (e) => res(e.data);
      w.postMessage({ db: dbName, name: 'lesson', bytes: 3 * MiB, then: 'hang' });
    });
    ok(r.ok, r.error);
    w.terminate(); // the tab dies mid-save: its Web Lock goes with it
    await new Promise((res) => setTimeout(res, 200));
    await olderIntact('lesson', older, created);
    equal(await store.collectGarbage(), 1, 'the dead save is garbage');
    equal((await records()).chunks, Math.ceil(older.length / RECORD_SIZE), "only the older snapshot's records remain");
    await olderIntact('lesson', older, created);
  });

  it('corrupt files imported over an existing snapshot: each refused leaves it as it was', async () => {
    const corpus = await buildCorpus();
    const seed = corpus.find((s) => s.ramSize === 256 << 10 && s.footers && s.bytes.length > 0)!;
    const expect = { machineType: FUZZ_MACHINE_TYPE, ramSize: seed.ramSize };
    const service = new SnapshotService(() => Promise.resolve(store));
    // A saved stream of this kind has no commands: take one without (the seeds with a return path carry two).
    const good = (await buildCorpus()).find((s) => s.ramSize === seed.ramSize && s.footers && !s.name.endsWith('-rp')) ?? seed;
    await service.importBlob('lesson', new Blob([good.bytes as Uint8Array<ArrayBuffer>]), { expect });
    const older = await readBack('lesson');
    let created = (await store.get('lesson'))!.created;
    let refused = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (ms, overwrite) => {
        const bad = applyMutations(good.bytes, ms, corpus);
        try {
          await service.importBlob(overwrite ? 'lesson' : 'other', new Blob([bad as Uint8Array<ArrayBuffer>]), { expect, overwrite });
        } catch (e) {
          if (!(e instanceof StreamCheckError)) throw new Error(`an import failed otherwise than refused: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
          refused++;
          const list = await store.list();
          if (list.length !== 1 || list[0]!.created !== created) throw new Error(`after a refused import: ${JSON.stringify(list)}`);
          const left = await records();
          if (left.pending !== 0) throw new Error(`a refused import left ${left.pending} pending saves`);
          return true;
        }
        // The checker passed it (damage inside page data has no checksum to catch it): a complete
        // stream, and the user chose the name. Put the older one back for the next input.
        accepted++;
        if (overwrite) {
          await service.importBlob('lesson', new Blob([older as Uint8Array<ArrayBuffer>]), { expect, overwrite: true });
          created = (await store.get('lesson'))!.created;
        } else await store.delete('other');
        return true;
      }),
      { numRuns: 60, seed: 42, includeErrorInReport: true },
    );
    ok(refused > 0, `refused ${refused}, accepted ${accepted}`);
    const list = await store.list();
    equal(list.length, 1);
    const back = await readBack('lesson');
    ok(back.length === older.length && back.every((v, i) => v === older[i]), 'the snapshot reads back as before');
  });
});
