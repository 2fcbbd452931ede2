// Importing a stream file as a snapshot: the file is walked by the stream layer's own load loop
// first (magic and version, machine type, sections framed to EOF and nothing after), a file that
// would not load is refused with the reason and leaves nothing behind, and a taken name is only
// replaced when the caller says the user chose to.

import { MACHINE_TYPE } from '../src/migration/migration-service.js';
import { SnapshotStore } from '../src/transport/idb-store.js';
import { checkStream, StreamCheckError } from '../src/ui/services/stream-check.js';
import { SnapshotExistsError, SnapshotService } from '../src/ui/services/snapshot-service.js';
import { equal, match, ok, rejects } from './helpers/assert.js';
import { MiB, abPasses, createTab, loopbackName } from './fixtures/migration-harness.js';

const RAM = 16 * MiB;
const expect = { machineType: MACHINE_TYPE, ramSize: RAM };
const dbName = `tabmig-import-test-${Date.now().toString(36)}`;

/** A real saved stream: a running a-b guest saved with `migrate idb:NAME`, exported as a file. */
let saved: Blob;
let store: SnapshotStore;
let service: SnapshotService;

async function refused(blob: Blob, pattern: RegExp, exp = expect): Promise<void> {
  const e = await rejects(checkStream(blob, exp));
  ok(e instanceof StreamCheckError, String(e));
  match((e as Error).message, pattern);
}

before(async () => {
  const a = await createTab({ program: 'ab', ramSize: RAM });
  const name = loopbackName('import-src');
  const defaultStore = await SnapshotStore.open();
  try {
    await abPasses(a, 1);
    await a.ok('migrate', { uri: `idb:${name}` });
    const info = await a.waitStatus(['completed', 'failed', 'cancelled']);
    equal(info.status, 'completed', `save (${info['error-desc'] ?? ''})`);
    saved = await defaultStore.exportBlob(name);
  } finally {
    await defaultStore.delete(name).catch(() => {});
    defaultStore.close();
    a.dispose();
  }
});

beforeEach(async () => {
  store = await SnapshotStore.open(dbName);
  for (const s of await store.list()) await store.delete(s.name);
  service = new SnapshotService(() => Promise.resolve(store));
});

afterEach(() => store.close());

after(() => indexedDB.deleteDatabase(dbName));

describe('snapshot import: the file is checked first', () => {
  it('a saved stream passes: every section walked to EOF', async () => {
    const progress: number[] = [];
    const r = await checkStream(saved, expect, (done) => progress.push(done));
    equal(r.machineType, MACHINE_TYPE);
    equal(r.bytes, saved.size, 'the walk consumed the whole file');
    ok(r.sections > 3, `sections walked: ${r.sections}`);
    equal(progress[progress.length - 1], saved.size);
  });

  it('a stream saved with xbzrle or compress on passes (the loader takes their records)', async function () {
    this.timeout(120000);
    const small = expect;
    for (const cap of ['xbzrle', 'compress']) {
      const a = await createTab({ program: 'ab', ramSize: small.ramSize });
      const name = loopbackName(`import-${cap}`);
      const defaultStore = await SnapshotStore.open();
      try {
        await abPasses(a, 1);
        await a.setCaps({ [cap]: true });
        // XBZRLE encodes pages a running guest dirtied again; compression every page, in one pass.
        if (cap === 'compress') await a.ok('stop');
        await a.ok('migrate', { uri: `idb:${name}` });
        equal((await a.waitStatus(['completed', 'failed', 'cancelled'], 60000)).status, 'completed');
        const blob = await defaultStore.exportBlob(name);
        let encoded = 0;
        const r = await checkStream(blob, small, undefined, { ramPart: (st) => (encoded += cap === 'xbzrle' ? st.xbzrlePages : st.compressedPages) });
        equal(r.bytes, blob.size, `${cap}: the walk consumed the whole file`);
        // Whether XBZRLE found a page to encode depends on the guest's timing; compression always does.
        if (cap === 'compress') ok(encoded > 0, `${cap}: the stream holds ${cap} records (${encoded})`);
      } finally {
        await defaultStore.delete(name).catch(() => {});
        defaultStore.close();
        a.dispose();
      }
    }
  });

  it('refuses a file that is not a migration stream', async () => {
    await refused(new Blob([new TextEncoder().encode('hello, this is a text file')]), /^Not a loadable migration stream: Not a migration stream$/);
    await refused(new Blob([]), /^Not a loadable migration stream: /);
  });

  it('refuses an unsupported stream version', async () => {
    const bytes = new Uint8Array(await saved.arrayBuffer());
    bytes[7] = 2; // version 2: QEMU's obsolete format
    await refused(new Blob([bytes]), /SaveVM v2 format is obsolete/);
  });

  it("refuses another machine's stream in QEMU's words", async () => {
    await refused(saved, /Machine type received is 'tabmig-rv32-virt' and local is 'other-machine'/, { ...expect, machineType: 'other-machine' });
  });

  it('refuses a stream this tab could not load for its RAM size', async () => {
    await refused(saved, /Size mismatch: riscv_virt_board\.ram/, { ...expect, ramSize: 2 * RAM });
  });

  it('refuses a cut-off stream and one with bytes after its end', async () => {
    await refused(saved.slice(0, Math.floor(saved.size / 2)), /^Not a loadable migration stream: /);
    await refused(saved.slice(0, saved.size - 1), /^Not a loadable migration stream: /);
    await refused(new Blob([saved, new Uint8Array([0x42, 0x42])]), /2 bytes follow the end of the stream/);
  });

  it('refuses a stream whose sections are badly framed', async () => {
    // The first section after the configuration starts right after it; make its type unknown.
    const bytes = new Uint8Array(await saved.arrayBuffer());
    const configLen = new DataView(bytes.buffer).getUint32(9);
    const firstSection = 8 + 1 + 4 + configLen;
    bytes[firstSection] = 0x7f;
    await refused(new Blob([bytes]), /^Not a loadable migration stream: /);
  });

  it('a refused file leaves nothing in the store', async () => {
    const e = await rejects(service.importBlob('bad', new Blob([new Uint8Array(100)]), { expect }));
    ok(e instanceof StreamCheckError);
    equal((await store.list()).length, 0);
  });

  it('a good file is imported, checked then copied', async () => {
    const phases = new Set<string>();
    const info = await service.importBlob('good', saved, { expect, onProgress: (_d, _t, phase) => phases.add(phase) });
    equal(info.size, saved.size);
    equal([...phases].join(), 'checking,copying');
    equal((await store.exportBlob('good')).size, saved.size);
  });
});

describe('snapshot import: a taken name', () => {
  it('is refused, saying the name exists, and the old snapshot stays', async () => {
    await service.importBlob('lesson', saved, { expect });
    const before = await store.get('lesson');
    const e = await rejects(service.importBlob('lesson', saved, { expect }));
    ok(e instanceof SnapshotExistsError, String(e));
    equal((e as Error).message, "A snapshot named 'lesson' already exists");
    equal((await store.get('lesson'))?.created, before?.created, 'not replaced');
  });

  it('is replaced when the user chose to overwrite it', async () => {
    await service.importBlob('lesson', saved, { expect });
    const before = await store.get('lesson');
    await new Promise((r) => setTimeout(r, 5));
    const info = await service.importBlob('lesson', saved, { expect, overwrite: true });
    ok(info.created > before!.created, 'a new snapshot under the old name');
    equal((await store.list()).length, 1);
  });

  it('an overwrite still checks the file first', async () => {
    await service.importBlob('lesson', saved, { expect });
    await rejects(service.importBlob('lesson', new Blob([new Uint8Array(10)]), { expect, overwrite: true }));
    equal((await store.get('lesson'))?.size, saved.size, 'the good snapshot survives a bad overwrite');
  });
});
