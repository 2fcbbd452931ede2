// Keepalive, both ways. The source sends {keepalive} on the control conversation while a
// migration runs and the destination echoes each one, so either side hears silence: the
// destination through x-incoming-idle-timeout (migration-incoming.test.ts), the source through
// x-outgoing-idle-timeout, here. A destination that goes silent without closing anything (a
// frozen tab, a network that black-holes) is detected within the timeout: before the commit
// the migration fails and the source's guest runs on; after it the source stays stopped.

import { listenLoopback } from '../src/transport/loopback.js';
import { equal, match, ok } from './helpers/assert.js';
import { abPasses, advances, listenFakeDestination, loopbackName, perTest } from './fixtures/migration-harness.js';

const { tab, onCleanup } = perTest();
const TIMEOUT = 1000;

describe('keepalive: the source hears a silent destination (x-outgoing-idle-timeout)', () => {
  it('a destination frozen from the start (never reads, never answers): failed within the timeout, the guest runs on', async () => {
    const name = loopbackName('frozen');
    const listener = listenLoopback(name, { routes: [{ id: 0 }, { id: 1 }, { id: 2 }] });
    onCleanup(() => listener.close());
    let link: { close(reason?: string): void } | null = null;
    void listener.connection.then((l) => (link = l)); // accepted, then nothing: a frozen tab
    onCleanup(() => link?.close('test over'));
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.setParams({ 'x-outgoing-idle-timeout': TIMEOUT });
    const t0 = performance.now();
    await a.ok('migrate', { uri: `loopback:${name}` });
    const info = await a.waitStatus(['failed', 'completed', 'cancelled'], 15000);
    const detect = performance.now() - t0;
    equal(info.status, 'failed');
    match(info['error-desc'] ?? '', /No word from the migration destination for 1000 ms \(x-outgoing-idle-timeout\)/);
    // Bounded: the timeout plus a check, with room for a loaded machine (before, it never came).
    ok(detect < TIMEOUT + 9000, `detected in ${Math.round(detect)} ms`);
    equal(await a.runstate(), 'running', 'the source resumes its guest');
    await advances(a, 'the source guest to run on');
  });

  it('a destination that said ready and then went silent: committed, so the source stays stopped', async () => {
    const name = loopbackName('silent-after-ready');
    const fake = listenFakeDestination(name);
    onCleanup(() => fake.close());
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.setParams({ 'x-outgoing-idle-timeout': TIMEOUT });
    await a.ok('migrate', { uri: `loopback:${name}` });
    const dest = await fake.connection;
    onCleanup(() => dest.close());
    await dest.loaded;
    void dest.ready();
    dest.deafen(); // from now on it hears nothing and says nothing (no 'started', no echo)
    const info = await a.waitStatus(['failed', 'completed', 'cancelled'], 15000);
    equal(info.status, 'failed');
    match(info['error-desc'] ?? '', /committed.*x-outgoing-idle-timeout|x-outgoing-idle-timeout.*committed|The switchover was committed/);
    equal(await a.runstate(), 'postmigrate', 'after the commit the source never resumes');
  });

  it('a destination that answers keeps a migration alive well past the timeout', async () => {
    const name = loopbackName('answers');
    const fake = listenFakeDestination(name);
    onCleanup(() => fake.close());
    const a = await tab({ program: 'ab' });
    await abPasses(a, 1);
    await a.setCaps({ 'pause-before-switchover': true });
    await a.setParams({ 'x-outgoing-idle-timeout': TIMEOUT });
    await a.ok('migrate', { uri: `loopback:${name}` });
    await a.waitStatus('pre-switchover');
    await new Promise((r) => setTimeout(r, 3 * TIMEOUT)); // three timeouts of a quiet stream: only echoes go by
    equal((await a.queryMigrate()).status, 'pre-switchover', 'still waiting for migrate-continue');
    await a.ok('migrate_cancel');
    await a.waitStatus('cancelled');
    equal(await a.runstate(), 'running');
  });

  it('x-outgoing-idle-timeout is range-checked and shown by info migrate_parameters', async () => {
    const a = await tab();
    equal((await a.ok('query-migrate-parameters'))['x-outgoing-idle-timeout'], 10000);
    match(await a.err('migrate-set-parameters', { 'x-outgoing-idle-timeout': 50 }), /x-outgoing-idle-timeout.*100 to 3600000 milliseconds/);
    await a.setParams({ 'x-outgoing-idle-timeout': 0 });
    match(await a.ok('human-monitor-command', { 'command-line': 'info migrate_parameters' }), /^x-outgoing-idle-timeout: 0 milliseconds$/m);
  });
});
