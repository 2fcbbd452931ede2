// Migration blockers (QEMU's migrate_add_blocker): the guest's tabmig-hostdev device stands for a
// host device passed through like VFIO. While the guest has it enabled, `migrate` is refused with
// the blocker's reason; only-migratable refuses the enable itself, and so does a migration in
// progress. A page is wired the way src/main.ts wires it (Machine, QMP, MigrationService).

import { ControlBlock } from '../src/guest/control-block.js';
import { HOSTDEV_BLOCKER_REASON } from '../src/guest/devices/host-device.js';
import { Machine } from '../src/guest/machine.js';
import { MigrationService } from '../src/migration/migration-service.js';
import { migrationOptionsFromGlobals } from '../src/migration/options-global.js';
import { createQmp, type QmpReply } from '../src/qmp/index.js';
import { registerMigrationCommands } from '../src/qmp/migration-commands.js';
import { listenLoopback } from '../src/transport/loopback.js';
import { equal, eventually, ok } from './helpers/assert.js';

interface Page {
  machine: Machine;
  migration: MigrationService;
  qmp(execute: string, args?: Record<string, unknown>): Promise<QmpReply>;
  ok(execute: string, args?: Record<string, unknown>): Promise<any>;
  err(execute: string, args?: Record<string, unknown>): Promise<string>;
  serial(line: string): Promise<void>;
  hostdev(): Promise<boolean>;
  dispose(): void;
}

const REFUSED_ONLY_MIGRATABLE = `disallowing migration blocker (--only-migratable) for: ${HOSTDEV_BLOCKER_REASON}`;
const REFUSED_IN_PROGRESS = `disallowing migration blocker (migration in progress) for: ${HOSTDEV_BLOCKER_REASON}`;

async function page(globals: string[] = []): Promise<Page> {
  const options = migrationOptionsFromGlobals(globals);
  const machine = new Machine({ ramSize: 16 << 20, runstate: 'prelaunch' });
  await machine.ready;
  const qmpApi = createQmp({ machine, autostart: false, timeoutMs: 20_000 });
  const migration = new MigrationService(machine, options, qmpApi.events, null, false, () => qmpApi.vm.autostart);
  registerMigrationCommands(qmpApi.dispatcher, qmpApi.hmp, migration, null);
  const qmp = (execute: string, args?: Record<string, unknown>) =>
    qmpApi.dispatcher.execute(args === undefined ? { execute } : { execute, arguments: args }) as Promise<QmpReply>;
  const p: Page = {
    machine,
    migration,
    qmp,
    async ok(execute, args) {
      const r = await qmp(execute, args);
      if ('error' in r) throw new Error(`${execute} failed: ${r.error.desc}`);
      return r.return;
    },
    async err(execute, args) {
      const r = await qmp(execute, args);
      if (!('error' in r)) throw new Error(`${execute} was expected to fail, returned ${JSON.stringify(r.return)}`);
      return r.error.desc;
    },
    async serial(line) {
      await eventually(() => machine.serialOutput.includes(line), 15000, `serial line '${line}'`);
    },
    async hostdev() {
      return Boolean((await p.ok('x-tabmig-guest-info')).hostdev);
    },
    dispose() {
      try {
        migration.cancel();
      } catch {
        // nothing to cancel
      }
      qmpApi.vm.dispose();
      machine.terminate();
    },
  };
  return p;
}

/** Starts the guest program and waits for its line. */
async function boot(p: Page, program: string, args: string, line: string): Promise<void> {
  await p.ok('x-tabmig-load', { program, args });
  await p.ok('cont');
  await p.serial(line);
}

/** `migrate` was accepted (not blocked): it then fails on its own, as nobody listens on loopback:x. */
async function migrateNotBlocked(p: Page): Promise<void> {
  const r = await p.qmp('migrate', { uri: 'loopback:x' });
  ok(!('error' in r), `migrate was refused: ${'error' in r ? r.error.desc : ''}`);
  const info = await eventually(async () => {
    const q = await p.ok('query-migrate');
    return q.status === 'failed' || q.status === 'completed' ? q : null;
  }, 15000, 'the migration to end');
  ok(info['error-desc'] !== HOSTDEV_BLOCKER_REASON, 'the migration failed because of the blocker');
}

describe('migration blockers: tabmig-hostdev', () => {
  it('guards the vCPU and the migration against each other in one control-block word', () => {
    const ctl = new ControlBlock();
    equal(ctl.tryEnableHostDevice(), 'ok');
    equal(ctl.tryBeginMigration(), false, 'a migration starts while the device is enabled');
    ok(ctl.disableHostDevice(), 'disable says the device was on');
    equal(ctl.disableHostDevice(), false, 'a second disable');
    equal(ctl.tryBeginMigration(), true);
    equal(ctl.tryEnableHostDevice(), 'migration-in-progress');
    equal(ctl.hostDeviceEnabled, false);
    ctl.endMigration();
    ctl.onlyMigratable = true;
    equal(ctl.tryEnableHostDevice(), 'only-migratable');
    ctl.onlyMigratable = false;
    equal(ctl.tryEnableHostDevice(), 'ok');
  });

  it('refuses migrate with the blocker reason while the guest has the host device enabled', async () => {
    const p = await page();
    try {
      await boot(p, 'stress', 'wss=1M rate=1M hostdev=on', 'stress: host device enabled');
      equal(await p.hostdev(), true, 'guest-info hostdev');
      equal(p.migration.activeBlockers.join('|'), HOSTDEV_BLOCKER_REASON, 'blockers');
      equal(await p.err('migrate', { uri: 'loopback:x' }), HOSTDEV_BLOCKER_REASON);
      equal((await p.ok('query-migrate')).status, undefined, 'a refused migrate does not start (query-migrate is empty)');
      equal((await p.ok('query-status')).status, 'running', 'the guest runs on');
    } finally {
      p.dispose();
    }
  });

  it('drops the blocker when another program is loaded, or the machine is reset', async () => {
    const p = await page();
    try {
      await boot(p, 'stress', 'wss=1M rate=1M hostdev=on', 'stress: host device enabled');
      // Stopped first, so the program does not boot again (and re-enable it) before we look.
      await p.ok('stop');
      await p.ok('system_reset');
      equal(await p.hostdev(), false, 'guest-info hostdev after system_reset');
      equal(p.migration.activeBlockers.length, 0, 'blockers after system_reset');
      // The program enables it again when it boots again.
      await p.ok('cont');
      await eventually(() => p.machine.serialOutput.split('stress: host device enabled').length > 2, 15000, 'the re-enable');
      await eventually(async () => (await p.hostdev()) && p.migration.activeBlockers.length === 1, 5000, 'the blocker again');

      await boot(p, 'stress', 'wss=1M rate=1M', 'stress: ready');
      equal(await p.hostdev(), false, 'guest-info hostdev after a load');
      equal(p.migration.activeBlockers.length, 0, 'blockers after a load');
      await migrateNotBlocked(p);
    } finally {
      p.dispose();
    }
  });

  it('with only-migratable refuses the guest the device, and migrate is not blocked', async () => {
    const p = await page(['migration.only-migratable=on']);
    try {
      ok(p.machine.control.onlyMigratable, 'the vCPU is told');
      await boot(p, 'stress', 'wss=1M rate=1M hostdev=on', 'stress: host device refused');
      equal(await p.hostdev(), false, 'guest-info hostdev');
      equal(p.migration.activeBlockers.length, 0, 'blockers');
      await eventually(() => p.migration.log.some((e) => e.text === REFUSED_ONLY_MIGRATABLE), 5000, 'the refusal in the log');
      await migrateNotBlocked(p);
    } finally {
      p.dispose();
    }
  });

  it('refuses the enable while a migration is in progress, takes it after, and the guest can disable it', async () => {
    const p = await page();
    // A destination that accepts and then reads nothing: the migration stays in progress.
    const name = `blocker-hold-${Date.now().toString(36)}`;
    const listener = listenLoopback(name, { routes: [] });
    try {
      await boot(p, 'life', 'speed=60 seed=1', 'h host device');
      await p.ok('migrate', { uri: `loopback:${name}` });
      await eventually(async () => ['setup', 'active'].includes((await p.ok('query-migrate')).status), 10000, 'setup or active');
      p.machine.sendInput('h');
      await p.serial('life: host device refused');
      equal(await p.hostdev(), false, 'guest-info hostdev during the migration');
      await eventually(() => p.migration.log.some((e) => e.text === REFUSED_IN_PROGRESS), 5000, 'the refusal in the log');
      ok(['setup', 'active'].includes((await p.ok('query-migrate')).status), 'the migration carries on');

      await p.ok('migrate_cancel');
      await eventually(async () => (await p.ok('query-migrate')).status === 'cancelled', 15000, 'cancelled');
      p.machine.sendInput('h');
      await p.serial('life: host device enabled');
      equal(await p.hostdev(), true, 'guest-info hostdev after the cancel');
      await eventually(() => p.migration.activeBlockers.length === 1, 5000, 'the blocker');
      equal(await p.err('migrate', { uri: 'loopback:x' }), HOSTDEV_BLOCKER_REASON);

      p.machine.sendInput('h');
      await p.serial('life: host device disabled');
      equal(await p.hostdev(), false, 'guest-info hostdev after the disable');
      await eventually(() => p.migration.activeBlockers.length === 0, 5000, 'no blocker');
      await migrateNotBlocked(p);
    } finally {
      listener.close();
      p.dispose();
    }
  });
});
