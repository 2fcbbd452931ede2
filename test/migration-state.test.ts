// The migration state machine (state.ts), the shared block's compare-and-set status (QEMU's
// migrate_set_state, migration-block.ts) and query-migrate's reply per status
// (fill_source_migration_info / populate_ram_info, migration-info.ts), against QEMU 3.0.

import { MigCounter, MigWord, MigrationBlock } from '../src/migration/migration-block.js';
import { destinationMigrationInfo, sourceMigrationInfo } from '../src/migration/migration-info.js';
import {
  MIGRATION_STATUSES,
  MigrationStateMachine,
  canTransition,
  isFinished,
  isSetupOrActive,
  type MigrationStatus,
} from '../src/migration/state.js';
import { deepEqual, equal, match, ok, throws } from './helpers/assert.js';

/** qapi/migration.json MigrationStatus, in QEMU 3.0's order (the block stores the index). */
const QAPI_ORDER = [
  'none',
  'setup',
  'cancelling',
  'cancelled',
  'active',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
  'completed',
  'failed',
  'colo',
  'pre-switchover',
  'device',
];

/** migration_is_setup_or_active() in QEMU 3.0. */
const SETUP_OR_ACTIVE = ['setup', 'active', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'pre-switchover', 'device'];
const TERMINAL = ['completed', 'failed', 'cancelled'];

function walk(path: MigrationStatus[]): void {
  for (let i = 1; i < path.length; i++) ok(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} → ${path[i]} is allowed`);
}

describe('migration states (state.ts)', () => {
  it('are QEMU\'s MigrationStatus, in QAPI order', () => {
    deepEqual([...MIGRATION_STATUSES], QAPI_ORDER);
  });

  it('isSetupOrActive is migration_is_setup_or_active; isFinished is none or terminal', () => {
    for (const s of MIGRATION_STATUSES) {
      equal(isSetupOrActive(s), SETUP_OR_ACTIVE.includes(s), `isSetupOrActive(${s})`);
      equal(isFinished(s), s === 'none' || TERMINAL.includes(s), `isFinished(${s})`);
    }
  });

  it('allows the paths a source takes', () => {
    walk(['none', 'setup', 'active', 'completed']);
    walk(['none', 'setup', 'active', 'pre-switchover', 'device', 'completed']); // pause-before-switchover
    walk(['none', 'setup', 'active', 'postcopy-active', 'completed']);
    walk(['none', 'setup', 'active', 'device', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'postcopy-active', 'completed']);
    walk(['none', 'setup', 'failed']); // bad URI, connection refused
    // A new migration starts from wherever the last one ended (migrate_init).
    for (const s of TERMINAL) ok(canTransition(s as MigrationStatus, 'setup'), `${s} → setup`);
  });

  it('allows the paths a destination takes', () => {
    walk(['none', 'setup', 'active', 'completed']);
    walk(['none', 'setup', 'active', 'failed']);
    walk(['none', 'setup', 'failed']);
    ok(canTransition('none', 'active'), 'QEMU\'s process_incoming_migration_co goes none → active');
  });

  it('migrate_cancel can start from every setup-or-active state, and ends cancelled', () => {
    // migrate_fd_cancel: cancelling from any state migration_is_setup_or_active() accepts.
    for (const s of SETUP_OR_ACTIVE) ok(canTransition(s as MigrationStatus, 'cancelling'), `${s} → cancelling`);
    ok(canTransition('cancelling', 'cancelled'));
    ok(canTransition('cancelling', 'failed'), 'a failure while cancelling');
    for (const s of MIGRATION_STATUSES) {
      if (!SETUP_OR_ACTIVE.includes(s)) equal(canTransition(s, 'cancelling'), false, `${s} → cancelling is not a cancel`);
    }
  });

  it('every setup-or-active state can fail', () => {
    for (const s of SETUP_OR_ACTIVE) ok(canTransition(s as MigrationStatus, 'failed'), `${s} → failed`);
  });

  it('refuses shortcuts and resurrections', () => {
    const refused: [MigrationStatus, MigrationStatus][] = [
      ['none', 'completed'],
      ['setup', 'pre-switchover'],
      ['pre-switchover', 'completed'], // migrate-continue goes through device
      ['cancelling', 'completed'], // a cancel that started wins over a completion
      ['cancelling', 'active'],
      ['completed', 'active'],
      ['failed', 'active'],
      ['cancelled', 'cancelling'],
      ['completed', 'failed'],
      ['failed', 'completed'],
    ];
    for (const [from, to] of refused) equal(canTransition(from, to), false, `${from} → ${to}`);
    for (const s of MIGRATION_STATUSES) equal(canTransition(s, s), false, `${s} → ${s}`);
  });

  it('MigrationStateMachine: moves only from the expected state, refuses what the table refuses', () => {
    const seen: string[] = [];
    const m = new MigrationStateMachine((to, from) => seen.push(`${from}>${to}`));
    equal(m.status, 'none');
    equal(m.set('active', 'completed'), false, 'not in active: no move');
    equal(m.status, 'none');
    ok(m.set('none', 'setup'));
    ok(m.set('setup', 'active'));
    const e = throws(() => m.set('active', 'setup'));
    ok(e instanceof Error && /active -> setup/.test(e.message), `invalid change named (${e})`);
    equal(m.status, 'active', 'an invalid change leaves the state alone');
    m.force('cancelling');
    m.force('cancelling'); // no change, no callback
    ok(m.set('cancelling', 'cancelled'));
    deepEqual(seen, ['none>setup', 'setup>active', 'active>cancelling', 'cancelling>cancelled']);
  });
});

describe('migration block (compare-and-set status)', () => {
  it('starts at none and moves only from the expected state', () => {
    const b = new MigrationBlock();
    equal(b.status, 'none');
    equal(b.compareAndSet('setup', 'active'), false);
    equal(b.status, 'none');
    ok(b.compareAndSet('none', 'setup'));
    ok(b.compareAndSet('setup', 'active'));
    // The cancel/complete race, in one thread: whoever comes second loses and changes nothing.
    ok(b.compareAndSet('active', 'cancelling'));
    equal(b.compareAndSet('active', 'completed'), false);
    equal(b.status, 'cancelling');
  });

  it('is shared: a second view of the buffer sees and races on the same status', () => {
    const a = new MigrationBlock();
    const b = new MigrationBlock(a.buffer);
    ok(a.compareAndSet('none', 'active'));
    equal(b.status, 'active');
    ok(b.compareAndSet('active', 'failed'));
    equal(a.compareAndSet('active', 'completed'), false);
    equal(a.status, 'failed');
  });

  it('reset starts a new migration: status set, words and counters cleared', () => {
    const b = new MigrationBlock();
    for (const [from, to] of [['none', 'setup'], ['setup', 'active'], ['active', 'completed']] as const) b.compareAndSet(from, to);
    b.set(MigCounter.TRANSFERRED, 12345);
    b.set(MigCounter.DOWNTIME, 42);
    b.setWord(MigWord.RP_SHUT, 2);
    b.bumpWord(MigWord.CONTINUE);
    b.reset('setup');
    equal(b.status, 'setup');
    equal(b.get(MigCounter.TRANSFERRED), 0);
    equal(b.get(MigCounter.DOWNTIME), 0);
    equal(b.word(MigWord.RP_SHUT), 0);
    equal(b.word(MigWord.CONTINUE), 0);
  });

  it('refuses a change the transition table does not allow, whatever the current status', () => {
    const b = new MigrationBlock();
    const e = throws(() => b.compareAndSet('none', 'completed'));
    match(String(e), /invalid migration state change none -> completed/);
    equal(b.status, 'none');
  });

  it('counters hold exact integers beyond 2^32', () => {
    const b = new MigrationBlock();
    b.set(MigCounter.TRANSFERRED, 2 ** 40 + 1);
    b.add(MigCounter.TRANSFERRED, 4096);
    equal(b.get(MigCounter.TRANSFERRED), 2 ** 40 + 4097);
  });

  it('waitWhile wakes when another view bumps the word (migrate-continue)', async () => {
    const b = new MigrationBlock();
    const other = new MigrationBlock(b.buffer);
    let woke = false;
    const p = b.waitWhile(MigWord.CONTINUE, 0, 10000).then(() => (woke = true));
    await Promise.resolve();
    equal(woke, false);
    other.bumpWord(MigWord.CONTINUE);
    await p;
    ok(woke);
  });

  it('a real cross-thread race between complete and cancel has exactly one winner, every time', async () => {
    const block = new MigrationBlock();
    const sync = new Int32Array(new SharedArrayBuffer(16));
    const worker = new Worker(new URL('./fixtures/migration-cas.worker.ts', import.meta.url), { type: 'module' });
    const stopped = new Promise((r) => (worker.onmessage = r));
    worker.postMessage({ block: block.buffer, sync: sync.buffer });
    try {
      for (let round = 1; round <= 300; round++) {
        block.reset('active');
        Atomics.store(sync, 0, round);
        Atomics.notify(sync, 0);
        const cancelled = block.compareAndSet('active', 'cancelling');
        for (;;) {
          if (Atomics.load(sync, 1) === round) break;
          const w = Atomics.waitAsync(sync, 1, Atomics.load(sync, 1), 5000);
          if (w.async) await w.value;
        }
        const completed = Atomics.load(sync, 2) === 1;
        ok(cancelled !== completed, `round ${round}: exactly one of cancel (${cancelled}) and complete (${completed}) won`);
        equal(block.status, cancelled ? 'cancelling' : 'completed', `round ${round}: the winner's state stuck`);
      }
    } finally {
      Atomics.store(sync, 0, -1);
      Atomics.notify(sync, 0);
      await stopped;
      worker.terminate();
    }
  });
});

describe('query-migrate fields per status (fill_source_migration_info)', () => {
  function block(): MigrationBlock {
    const b = new MigrationBlock();
    b.set(MigCounter.START_TIME, 1_000_000);
    b.set(MigCounter.SETUP_TIME, 7);
    b.set(MigCounter.EXPECTED_DOWNTIME, 300);
    b.set(MigCounter.TOTAL_TIME, 5000);
    b.set(MigCounter.DOWNTIME, 40);
    b.set(MigCounter.TRANSFERRED, 9_000_000);
    b.set(MigCounter.TOTAL, 16 << 20);
    b.set(MigCounter.DUPLICATE, 3000);
    b.set(MigCounter.NORMAL, 1100);
    b.set(MigCounter.DIRTY_SYNC_COUNT, 4);
    b.set(MigCounter.REMAINING, 8192);
    b.set(MigCounter.DIRTY_PAGES_RATE, 250);
    b.set(MigCounter.MBPS, 123.5);
    return b;
  }
  const NOW = 1_002_500;
  const RAM_ALWAYS = ['transferred', 'total', 'duplicate', 'skipped', 'normal', 'normal-bytes', 'mbps', 'dirty-sync-count', 'postcopy-requests', 'page-size', 'multifd-bytes'];
  const keys = (o: object | undefined) => Object.keys(o ?? {}).sort();

  it('none: nothing at all', () => {
    deepEqual(sourceMigrationInfo(block(), 'none', null, 0, NOW), {});
  });

  it('setup: the status only', () => {
    deepEqual(sourceMigrationInfo(block(), 'setup', null, 0, NOW), { status: 'setup' });
  });

  for (const s of ['active', 'cancelling', 'pre-switchover', 'device', 'postcopy-active', 'postcopy-paused', 'postcopy-recover'] as const) {
    it(`${s}: running times, expected downtime, ram with remaining and dirty-pages-rate`, () => {
      const info = sourceMigrationInfo(block(), s, null, 0, NOW);
      deepEqual(keys(info), ['expected-downtime', 'ram', 'setup-time', 'status', 'total-time']);
      equal(info.status, s);
      equal(info['total-time'], 2500, 'total-time runs from the start time');
      equal(info['expected-downtime'], 300);
      equal(info['setup-time'], 7);
      deepEqual(keys(info.ram), [...RAM_ALWAYS, 'dirty-pages-rate', 'remaining'].sort());
      equal(info.ram!.remaining, 8192);
      equal(info.ram!['dirty-pages-rate'], 250);
    });
  }

  it('ram counters: normal-bytes = normal × page size, skipped and multifd-bytes 0', () => {
    const ram = sourceMigrationInfo(block(), 'active', null, 0, NOW).ram!;
    equal(ram['page-size'], 4096);
    equal(ram['normal-bytes'], 1100 * 4096);
    equal(ram.skipped, 0);
    equal(ram['multifd-bytes'], 0);
    equal(ram.transferred, 9_000_000);
    equal(ram.total, 16 << 20);
    equal(ram.duplicate, 3000);
    equal(ram['dirty-sync-count'], 4);
    equal(ram.mbps, 123.5);
  });

  it('cpu-throttle-percentage only while the guest is throttled', () => {
    equal(sourceMigrationInfo(block(), 'active', null, 0, NOW)['cpu-throttle-percentage'], undefined);
    equal(sourceMigrationInfo(block(), 'active', null, 30, NOW)['cpu-throttle-percentage'], 30);
  });

  it('completed: final times and downtime, ram without remaining; no expected downtime', () => {
    const info = sourceMigrationInfo(block(), 'completed', null, 0, NOW);
    deepEqual(keys(info), ['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    equal(info['total-time'], 5000, 'the recorded total, not a running clock');
    equal(info.downtime, 40);
    deepEqual(keys(info.ram), [...RAM_ALWAYS].sort());
  });

  it('failed: the status, and error-desc when there is an error', () => {
    deepEqual(sourceMigrationInfo(block(), 'failed', null, 0, NOW), { status: 'failed' });
    deepEqual(sourceMigrationInfo(block(), 'failed', 'boom', 0, NOW), { status: 'failed', 'error-desc': 'boom' });
  });

  it('cancelled and colo: the status only', () => {
    deepEqual(sourceMigrationInfo(block(), 'cancelled', 'ignored', 0, NOW), { status: 'cancelled' });
    deepEqual(sourceMigrationInfo(block(), 'colo', null, 0, NOW), { status: 'colo' });
  });

  it('destination: the status only, error-desc when it failed', () => {
    deepEqual(destinationMigrationInfo('none', null), {});
    for (const s of ['setup', 'active', 'completed'] as const) deepEqual(destinationMigrationInfo(s, null), { status: s });
    deepEqual(destinationMigrationInfo('failed', 'Not a migration stream'), { status: 'failed', 'error-desc': 'Not a migration stream' });
  });
});
