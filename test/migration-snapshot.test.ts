// Migration to and from IndexedDB snapshots (idb:NAME), QEMU's "migrate to file" and
// "-incoming file:" for a browser: a save of a running guest completes like a migration, a new
// tab started with -incoming idb:NAME comes back with the same RAM and devices, and a save that
// is cancelled never appears in the list.

import { SnapshotStore } from '../src/transport/idb-store.js';
import { deepEqual, equal, eventually, ok } from './helpers/assert.js';
import { MiB, abCheck, abPasses, advances, loopbackName, type Tab, perTest } from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();

/** A fresh snapshot name, deleted from IndexedDB after the test. */
function snapshotName(what: string): string {
  const n = loopbackName(what);
  onCleanup(async () => {
    const store = await SnapshotStore.open();
    try {
      await store.delete(n);
    } finally {
      store.close();
    }
  });
  return n;
}

async function listed(name: string): Promise<{ name: string; size: number } | undefined> {
  const store = await SnapshotStore.open();
  try {
    return (await store.list()).find((s) => s.name === name);
  } finally {
    store.close();
  }
}

async function save(a: Tab, name: string): Promise<any> {
  await a.ok('migrate', { uri: `idb:${name}` });
  const info = await a.waitStatus(['completed', 'failed', 'cancelled']);
  equal(info.status, 'completed', `save to idb:${name} (${info['error-desc'] ?? ''})`);
  return info;
}

describe('snapshots: migrate to idb and -incoming idb', () => {
  it('saves a running guest and loads it into a new tab: same RAM, same devices', async () => {
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.setCaps({ events: true });
    const name = snapshotName('snap');
    const info = await save(a, name);
    equal(await a.runstate(), 'postmigrate', 'the saved guest stays stopped, as after a migration');
    deepEqual(a.migrationEvents(), ['setup', 'active', 'completed']);
    equal(info.ram.total, 16 * MiB);
    const entry = await listed(name);
    ok(entry, 'the snapshot is listed');
    equal(entry.size, info.ram.transferred, 'the snapshot holds exactly the bytes transferred');

    const b = await tab({ incoming: `idb:${name}`, startPaused: true });
    const binfo = await b.waitStatus(['completed', 'failed']);
    equal(binfo.status, 'completed', `load (${binfo['error-desc'] ?? ''})`);
    equal(await b.runstate(), 'paused', '-S: loaded but not started');
    equal(await b.ramHash(), await a.ramHash(), 'RAM hash');
    deepEqual(Array.from(b.machine.deviceState.bytes), Array.from(a.machine.deviceState.bytes), 'device state');
    equal(abCheck(b.machine.ramBytes, b.machine.ramSize), null, 'a-b invariant');
    await b.ok('cont');
    await advances(b, 'the restored guest to run');

    // A snapshot can be loaded more than once; without -S the guest starts by itself.
    const c = await tab({ incoming: `idb:${name}` });
    equal((await c.waitStatus(['completed', 'failed'])).status, 'completed');
    equal(await c.runstate(), 'running');
    await advances(c, 'the second restored guest to run');

    // And the source may go on after its save (QEMU: cont from postmigrate).
    await a.ok('cont');
    equal(await a.runstate(), 'running');
    await advances(a);
  });

  it('a paused guest is restored paused, even with autostart', async () => {
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.ok('stop');
    const name = snapshotName('paused');
    await save(a, name);
    const b = await tab({ incoming: `idb:${name}` });
    equal((await b.waitStatus(['completed', 'failed'])).status, 'completed');
    equal(await b.runstate(), 'paused');
    equal(await b.ramHash(), await a.ramHash(), 'RAM hash');
  });

  it('saving again under the same name replaces the snapshot', async () => {
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    const name = snapshotName('again');
    await save(a, name);
    const first = await a.ramHash();
    await a.ok('cont');
    await abPasses(a, 3);
    await save(a, name);
    const second = await a.ramHash();
    ok(first !== second, 'the guest changed between the saves');
    const store = await SnapshotStore.open();
    try {
      equal((await store.list()).filter((s) => s.name === name).length, 1, 'one snapshot of that name');
    } finally {
      store.close();
    }
    const b = await tab({ incoming: `idb:${name}`, startPaused: true });
    equal((await b.waitStatus(['completed', 'failed'])).status, 'completed');
    equal(await b.ramHash(), second, 'the newer save is the one loaded');
  });

  it('a save that is cancelled never shows up', async () => {
    const a = await tab({ program: 'ab', args: 'size=8M' });
    await a.setParams({ 'max-bandwidth': 1_000_000 });
    const name = snapshotName('cancelled');
    await a.ok('migrate', { uri: `idb:${name}` });
    await a.waitStatus('active');
    await eventually(async () => (await a.queryMigrate()).ram.transferred > 64 * 1024, 20000, 'pages written before the cancel');
    await a.ok('migrate_cancel');
    equal((await a.waitStatus(['cancelled', 'completed', 'failed'])).status, 'cancelled');
    equal(await a.runstate(), 'running');
    equal(await listed(name), undefined, 'no snapshot of a cancelled save');

    // Nor can a tab load it.
    const b = await tab({ incoming: `idb:${name}` });
    const info = await b.waitStatus(['failed', 'completed']);
    equal(info.status, 'failed');
    equal(info['error-desc'], `Failed to open 'idb:${name}': No such snapshot`);
    equal(await b.runstate(), 'inmigrate');
  });
});
