// The migration commands' refusals, in QEMU's words (migration.c: qmp_migrate,
// qmp_migrate_incoming, qmp_migrate_continue), and migrations that fail before a byte moves.

import { deepEqual, equal, match, ok } from './helpers/assert.js';
import { abPasses, loopbackName, perTest } from './fixtures/migration-harness.js';

const { tab } = perTest();

describe('migration command errors', () => {
  it('migrate-continue outside the named state', async () => {
    const a = await tab({ program: 'ab' });
    equal(await a.err('migrate-continue', { state: 'pre-switchover' }), 'Migration not in expected state: none');
    equal(await a.err('migrate-continue', { state: 'bogus' }), "Parameter 'state' does not accept value 'bogus'");

    // Held in active by a tiny bandwidth against a range the guest keeps dirtying.
    await a.ok('x-tabmig-load', { program: 'ab', args: 'size=8M' });
    const b = await tab({ incoming: 'defer' });
    const uri = `loopback:${loopbackName('continue')}`;
    await b.ok('migrate-incoming', { uri });
    await a.setParams({ 'max-bandwidth': 1_000_000 });
    await a.setCaps({ 'pause-before-switchover': true });
    await a.ok('migrate', { uri });
    await a.waitStatus('active');
    equal(await a.err('migrate-continue', { state: 'pre-switchover' }), 'Migration not in expected state: active');

    // …and while one is in progress, another is refused, whatever the URI.
    equal(await a.err('migrate', { uri }), "There's a migration process in progress");
    equal(await a.err('migrate', { uri: 'idb:x' }), "There's a migration process in progress");
    equal((await a.queryMigrate()).status, 'active', 'the running migration is untouched');
    await a.ok('migrate_cancel');
    equal((await a.waitStatus(['cancelled', 'failed'])).status, 'cancelled');
  });

  it('migrate from a tab waiting for an incoming migration', async () => {
    const b = await tab({ incoming: 'defer' });
    equal(await b.err('migrate', { uri: 'loopback:anywhere' }), 'Guest is waiting for an incoming migration');
    equal((await b.queryMigrate()).status, undefined, 'no migration was started');
    deepEqual(await b.queryMigrate(), {});
  });

  it('migrate-incoming without -incoming defer, twice, and with a bad URI', async () => {
    const a = await tab({ program: 'ab' });
    equal(await a.err('migrate-incoming', { uri: 'loopback:x' }), "For use with '-incoming defer'");
    equal(await a.runstate(), 'running', 'the guest is untouched');

    const b = await tab({ incoming: 'defer' });
    equal(await b.err('migrate-incoming', { uri: 'tcp:0:4444' }), 'unknown migration protocol: tcp:0:4444');
    await b.ok('migrate-incoming', { uri: `loopback:${loopbackName('twice')}` });
    equal(await b.err('migrate-incoming', { uri: `loopback:${loopbackName('twice')}` }), 'The incoming migration has already been started');
    equal((await b.queryMigrate()).status, 'setup', 'the destination waits for its source');
  });

  it('migrate with a URI that is not a migration protocol fails the migration', async () => {
    const a = await tab({ program: 'ab' });
    await a.setCaps({ events: true });
    equal(await a.err('migrate', { uri: 'tcp:127.0.0.1:4444' }), "Parameter 'uri' expects a valid migration protocol");
    // QEMU's migrate_init has already moved none → setup; the bad URI fails it.
    equal((await a.queryMigrate()).status, 'failed');
    deepEqual(a.migrationEvents(), ['setup', 'failed']);
    equal(await a.runstate(), 'running');
    equal(await a.err('migrate', { uri: 'loopback:' }), "Parameter 'uri' expects a name after 'loopback:'");
    equal(await a.err('migrate', { uri: 'defer' }), "Parameter 'uri' expects a valid migration protocol");
  });

  it('migrate to a loopback name nobody listens on fails with an error-desc', async () => {
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.setCaps({ events: true, 'return-path': true });
    const name = loopbackName('nobody');
    await a.ok('migrate', { uri: `loopback:${name}` });
    const info = await a.waitStatus(['failed', 'completed', 'cancelled']);
    equal(info.status, 'failed');
    match(info['error-desc'] ?? '', new RegExp(`loopback:${name}.*Connection refused`));
    deepEqual(Object.keys(info).sort(), ['error-desc', 'status'], 'query-migrate in failed: status and error-desc');
    deepEqual(a.migrationEvents(), ['setup', 'failed']);
    equal(await a.runstate(), 'running', 'the guest never stopped');
    const hmp = await a.ok('human-monitor-command', { 'command-line': 'info migrate' });
    match(hmp, /Migration status: failed \(.*Connection refused\)/);
  });

  it('old-style block migration is refused', async () => {
    const a = await tab({ program: 'ab' });
    equal(await a.err('migrate', { uri: 'loopback:x', blk: true }), 'QEMU compiled without old-style (blk/-b, inc/-i) block migration');
    equal((await a.queryMigrate()).status, undefined, 'nothing started');
  });

  it('migrate_cancel with nothing to cancel is a no-op', async () => {
    const a = await tab({ program: 'ab' });
    await a.ok('migrate_cancel');
    deepEqual(await a.queryMigrate(), {});
    ok(a.migrationEvents().length === 0);
  });
});
