// Loading a new program or resetting the machine rewrites RAM from the main thread, behind the
// vCPU's back. A migration running meanwhile must still deliver exactly the source's RAM.

import { equal } from './helpers/assert.js';
import { MiB, loopbackName, perTest } from './fixtures/migration-harness.js';

const { tab } = perTest();

describe('RAM rewritten during a migration', () => {
  for (const action of ['x-tabmig-load', 'system_reset'] as const) {
    it(`${action} in the middle of a precopy: the destination still gets the source's RAM`, async () => {
      const a = await tab({ program: 'stress', args: 'wss=4M rate=1M mode=random' });
      const b = await tab({ incoming: 'defer', startPaused: true });
      const uri = `loopback:${loopbackName('reload')}`;
      await b.ok('migrate-incoming', { uri });
      // Slow enough that the migration is still copying when the RAM is rewritten.
      await a.setParams({ 'max-bandwidth': 2 * MiB });
      await a.ok('migrate', { uri });
      await a.waitStatus('active');
      if (action === 'x-tabmig-load') await a.ok('x-tabmig-load', { program: 'ab', args: 'size=1M' });
      else await a.ok('system_reset');
      await a.setParams({ 'max-bandwidth': 1024 * MiB });
      const info = await a.waitStatus(['completed', 'failed', 'cancelled']);
      equal(info.status, 'completed', `source status (${info['error-desc'] ?? ''})`);
      await b.waitStatus(['completed', 'failed']);
      equal(await b.ramHash(), await a.ramHash(), 'RAM hash');
      equal((await b.ok('x-tabmig-guest-info')).program, (await a.ok('x-tabmig-guest-info')).program, 'program');
    });
  }

  it('a tab waiting for an incoming migration refuses x-tabmig-load', async () => {
    const b = await tab({ incoming: 'defer' });
    equal(await b.err('x-tabmig-load', { program: 'ab' }), 'Guest is waiting for an incoming migration');
  });
});
