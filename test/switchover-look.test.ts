// The quiet look before a switchover (migration-thread.ts, DESIGN §8): the source stops its guest
// only once the destination has said, by echoing a probe sent behind the queue, that everything
// sent so far has reached its loader. A destination still loading a backlog (an idle guest's first
// pass: thousands of zero-page records per stream chunk, each a page to check there) answers late,
// and a switchover decided without its answer waits for all of that backlog with the guest stopped.
import { equal, eventually, ok } from './helpers/assert.js';
import { listenFakeDestination, loopbackName, perTest } from './fixtures/migration-harness.js';
import { IncomingCounter } from '../src/migration/incoming-block.js';

const { tab, onCleanup } = perTest();

describe('the quiet look before a switchover', () => {
  it('does not stop the guest while the destination leaves its probe unanswered, and does once it answers', async () => {
    const name = loopbackName('look');
    const fake = listenFakeDestination(name);
    onCleanup(() => fake.close());
    // 8 MiB of incompressible data to send first, then a trickle of dirtying: QEMU's rule holds
    // as soon as the first pass is over.
    const a = await tab({ program: 'stress', args: 'wss=8M rate=64K mode=random' });
    await eventually(async () => (await a.ok('x-tabmig-guest-info')).serial.includes('stress: ready'), 30000, 'stress ready');
    await a.setParams({ 'max-bandwidth': 10_000_000 });
    await a.ok('migrate', { uri: `loopback:${name}` });
    const dest = await fake.connection;
    onCleanup(() => dest.close());
    // The destination answers the probes of the first pass's first half, then falls behind: its
    // loader has a backlog, and a probe waits behind it.
    dest.echoProbes = true;
    await eventually(() => dest.block.get(IncomingCounter.BYTES) > 4 << 20, 30000, 'half the first pass loaded');
    dest.echoProbes = false;
    // Well past the look's wait for its probe (at most 4 × downtime-limit, 1.2 s), and more than
    // one look: the guest runs on, the migration goes on.
    const silentUntil = performance.now() + 3000;
    while (performance.now() < silentUntil) {
      equal(await a.runstate(), 'running', 'the source guest runs while the destination has not answered');
      equal((await a.queryMigrate()).status, 'active');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The destination caught up: the next look hears it, and the switchover happens.
    dest.echoProbes = true;
    await a.setParams({ 'max-bandwidth': 1_000_000_000 });
    await eventually(async () => (await a.runstate()) === 'finish-migrate', 30000, 'the source stopped its guest for the switchover');
    await dest.loaded;
    await dest.ready();
    const info = await a.waitStatus(['completed', 'failed', 'cancelled']);
    equal(info.status, 'completed', `source status (${info['error-desc'] ?? ''})`);
    ok(
      a.migration.log.some((e) => /^switching over/.test(e.text)),
      `the log says why it switched: ${a.migration.log.map((e) => e.text).join(' | ')}`,
    );
  });
});
