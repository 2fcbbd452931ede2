// QMP and HMP commands of migration, with QEMU's names, arguments and wording. They only
// translate: every decision is the MigrationService's (src/migration/migration-service.ts).

import type { MigrationInfo } from '../migration/migration-info.js';
import type { MigrationService } from '../migration/migration-service.js';
import {
  formatCapabilitiesLine,
  formatInfoMigrateCacheSize,
  formatInfoMigrateCapabilities,
  formatInfoMigrateParameters,
  formatMigrationGlobals,
  hmpMigrateSetCacheSize,
  hmpMigrateSetCapability,
  hmpMigrateSetDowntime,
  hmpMigrateSetParameter,
  hmpMigrateSetSpeed,
} from '../migration/options-hmp.js';
import { MIGRATION_STATUSES } from '../migration/state.js';
import type { Signaling } from '../transport/signaling.js';
import { qapiArray, qapiEnum, qapiStruct, type QmpDispatcher } from './dispatcher.js';
import { registerFaultCommands } from './fault-commands.js';
import type { Hmp, HmpOutput } from './hmp.js';

export function registerMigrationCommands(dispatcher: QmpDispatcher, hmp: Hmp, mig: MigrationService, signaling: Signaling | null): void {
  const opts = mig.options;
  registerFaultCommands(dispatcher, mig);

  dispatcher.register<{ uri: string; blk?: boolean; inc?: boolean; detach?: boolean; resume?: boolean }>({
    name: 'migrate',
    args: { uri: 'str', '*blk': 'bool', '*inc': 'bool', '*detach': 'bool', '*resume': 'bool' },
    handler: (a) => mig.migrate(a.uri, a),
  });
  dispatcher.register<{ uri: string }>({
    name: 'migrate-incoming',
    args: { uri: 'str' },
    handler: (a) => mig.migrateIncoming(a.uri),
  });
  dispatcher.register({ name: 'migrate_cancel', handler: () => mig.cancel() });
  // Postcopy (src/migration/postcopy/).
  dispatcher.register({ name: 'migrate-start-postcopy', handler: () => mig.startPostcopy() });
  dispatcher.register({ name: 'migrate-pause', handler: () => mig.pause() });
  dispatcher.register({ name: 'x-tabmig-postcopy-info', handler: () => mig.postcopyInfo() });
  dispatcher.register<{ uri: string }>({
    name: 'migrate-recover',
    args: { uri: 'str' },
    handler: (a) => mig.recover(a.uri),
  });
  dispatcher.register<{ state: string }>({
    name: 'migrate-continue',
    args: { state: qapiEnum(MIGRATION_STATUSES) },
    handler: (a) => mig.continue(a.state as (typeof MIGRATION_STATUSES)[number]),
  });
  dispatcher.register({ name: 'query-migrate', handler: () => mig.queryMigrate() });
  // tabmig's own: who holds the guest here (DESIGN §10): empty, owner, spent or in-doubt.
  dispatcher.register({ name: 'x-tabmig-ownership', handler: () => ({ state: mig.guestOwnership }) });
  // tabmig's own: the per-round records the migration worker wrote at each dirty sync (the
  // charts read the same shared ring), for scripts and the bench.
  dispatcher.register({ name: 'x-tabmig-rounds', handler: () => ({ generation: mig.rounds.generation, rounds: mig.rounds.list() }) });
  dispatcher.register({
    name: 'migrate-set-capabilities',
    args: { capabilities: qapiArray(qapiStruct({ capability: 'str', state: 'bool' })) },
    handler: (a) => mig.setCapabilities(a.capabilities),
  });
  dispatcher.register({ name: 'query-migrate-capabilities', handler: () => opts.queryCapabilities() });
  dispatcher.register({
    name: 'migrate-set-parameters',
    args: {
      '*compress-level': 'int',
      '*compress-threads': 'int',
      '*decompress-threads': 'int',
      '*cpu-throttle-initial': 'int',
      '*cpu-throttle-increment': 'int',
      '*tls-creds': 'str',
      '*tls-hostname': 'str',
      '*max-bandwidth': 'int',
      '*downtime-limit': 'int',
      '*x-incoming-idle-timeout': 'int',
      '*x-outgoing-idle-timeout': 'int',
      '*x-checkpoint-delay': 'int',
      '*block-incremental': 'bool',
      '*x-multifd-channels': 'int',
      '*x-multifd-page-count': 'int',
      '*xbzrle-cache-size': 'size',
      '*max-postcopy-bandwidth': 'size',
    },
    handler: (a) => mig.setParameters(a),
  });
  dispatcher.register({ name: 'query-migrate-parameters', handler: () => opts.queryParameters() });
  dispatcher.register<{ value: number }>({
    name: 'migrate_set_speed',
    args: { value: 'int' },
    handler: (a) => {
      opts.migrateSetSpeed(a.value);
      mig.optionsChanged();
    },
  });
  dispatcher.register<{ value: number }>({
    name: 'migrate_set_downtime',
    args: { value: 'number' },
    handler: (a) => {
      opts.migrateSetDowntime(a.value);
      mig.optionsChanged();
    },
  });
  dispatcher.register<{ value: number }>({
    name: 'migrate-set-cache-size',
    args: { value: 'int' },
    handler: (a) => {
      opts.migrateSetCacheSize(a.value);
      mig.optionsChanged();
    },
  });
  dispatcher.register({ name: 'query-migrate-cache-size', handler: () => opts.queryMigrateCacheSize() });
  dispatcher.register({
    name: 'x-tabmig-peer',
    handler: () => (signaling ? { id: signaling.id, name: signaling.name, incoming: mig.waitingForIncoming } : { id: '', name: '', incoming: false }),
  });
  dispatcher.register({
    name: 'x-tabmig-peers',
    handler: () => (signaling ? signaling.peers.map((p) => ({ ...p })) : []),
  });

  // ---- HMP -------------------------------------------------------------------------------------

  const raw = (fn: (args: string) => string) => (out: HmpOutput, args: Record<string, unknown>) => {
    const text = fn(String(args.args ?? ''));
    mig.optionsChanged();
    if (text) out.print(text);
  };
  hmp.registerInfo({
    name: 'migrate',
    argsType: '',
    params: '',
    help: 'show migration status',
    handler: (out) => out.print(formatInfoMigrate(mig)),
  });
  hmp.registerInfo({
    name: 'migrate_capabilities',
    argsType: '',
    params: '',
    help: 'show current migration capabilities',
    handler: (out) => out.print(formatInfoMigrateCapabilities(opts)),
  });
  hmp.registerInfo({
    name: 'migrate_parameters',
    argsType: '',
    params: '',
    help: 'show current migration parameters',
    handler: (out) => out.print(formatInfoMigrateParameters(opts)),
  });
  hmp.registerInfo({
    name: 'migrate_cache_size',
    argsType: '',
    params: '',
    help: 'show current migration xbzrle cache size',
    handler: (out) => out.print(formatInfoMigrateCacheSize(opts)),
  });
  hmp.register({
    name: 'migrate',
    argsType: 'detach:-d,blk:-b,inc:-i,resume:-r,uri:s',
    params: '[-d] [-b] [-i] [-r] uri',
    help:
      'migrate to URI (using -d to not wait for completion)\n\t\t\t -b for migration without shared storage with full copy of disk\n\t\t\t -i for migration without shared storage with incremental copy of disk (base image shared between src and destination)\n\t\t\t -r to resume a paused migration',
    handler: (_out, a) => mig.migrate(a.uri, { blk: !!a.blk, inc: !!a.inc, detach: true, resume: !!a.resume }),
  });
  hmp.register({
    name: 'migrate_incoming',
    argsType: 'uri:s',
    params: 'uri',
    help: 'Continue an incoming migration from an -incoming defer',
    handler: (_out, a) => mig.migrateIncoming(a.uri),
  });
  hmp.register({ name: 'migrate_cancel', argsType: '', params: '', help: 'cancel the current VM migration', handler: () => mig.cancel() });
  hmp.register({
    name: 'migrate_start_postcopy',
    argsType: '',
    params: '',
    help: 'Followup to a migration command to switch the migration to postcopy mode. The postcopy-ram capability must be set on both source and destination before the original migration command .',
    handler: () => mig.startPostcopy(),
  });
  hmp.register({
    name: 'migrate_recover',
    argsType: 'uri:s',
    params: 'uri',
    help: 'Continue a paused incoming postcopy migration',
    handler: (_out, a) => mig.recover(a.uri),
  });
  hmp.register({ name: 'migrate_pause', argsType: '', params: '', help: 'Pause an ongoing migration (postcopy-only)', handler: () => mig.pause() });
  hmp.register({
    name: 'migrate_continue',
    argsType: 'state:s',
    params: 'state',
    help: 'Continue migration from the given paused state',
    handler: (_out, a) => {
      const state = String(a.state);
      if (!(MIGRATION_STATUSES as readonly string[]).includes(state)) throw new Error(`Invalid parameter '${state}'`); // QEMU's qapi_enum_parse
      mig.continue(state as (typeof MIGRATION_STATUSES)[number]);
    },
  });
  hmp.register({
    name: 'migrate_set_capability',
    argsType: 'args:S?',
    params: 'capability state',
    help: 'Enable/Disable the usage of a capability for migration',
    handler: raw((args) => hmpMigrateSetCapability(opts, args, mig.optionsContext())),
  });
  hmp.register({
    name: 'migrate_set_parameter',
    argsType: 'args:S?',
    params: 'parameter value',
    help: 'Set the parameter for migration',
    handler: raw((args) => hmpMigrateSetParameter(opts, args)),
  });
  hmp.register({
    name: 'migrate_set_speed',
    argsType: 'args:S?',
    params: 'value',
    help: 'set maximum speed (in bytes) for migrations. Defaults to MB if no size suffix is specified, ie. B/K/M/G/T',
    handler: raw((args) => hmpMigrateSetSpeed(opts, args)),
  });
  hmp.register({
    name: 'migrate_set_downtime',
    argsType: 'args:S?',
    params: 'value',
    help: 'set maximum tolerated downtime (in seconds) for migrations',
    handler: raw((args) => hmpMigrateSetDowntime(opts, args)),
  });
  hmp.register({
    name: 'migrate_set_cache_size',
    argsType: 'args:S?',
    params: 'value',
    help: 'set cache size (in bytes) for XBZRLE migrations,the cache size will be rounded down to the nearest power of 2.\nThe cache size affects the number of cache misses.In case of a high cache miss ratio you need to increase the cache size',
    handler: raw((args) => hmpMigrateSetCacheSize(opts, args)),
  });
}

/** `info migrate` as QEMU 3.0's hmp_info_migrate prints it. */
export function formatInfoMigrate(mig: MigrationService): string {
  const info: MigrationInfo = mig.queryMigrate();
  const opts = mig.options;
  let s = formatMigrationGlobals(opts);
  if (info.status) s += formatCapabilitiesLine(opts);
  if (info.status) {
    s += `Migration status: ${info.status}`;
    if (info.status === 'failed' && info['error-desc']) s += ` (${info['error-desc']})`;
    s += '\n';
    if (info['total-time'] !== undefined) s += `total time: ${info['total-time']} milliseconds\n`;
    if (info['expected-downtime'] !== undefined) s += `expected downtime: ${info['expected-downtime']} milliseconds\n`;
    if (info.downtime !== undefined) s += `downtime: ${info.downtime} milliseconds\n`;
    if (info['setup-time'] !== undefined) s += `setup: ${info['setup-time']} milliseconds\n`;
  }
  const ram = info.ram;
  if (ram) {
    const kb = (n: number) => `${Math.floor(n / 1024)} kbytes`;
    s += `transferred ram: ${kb(ram.transferred)}\n`;
    s += `throughput: ${ram.mbps.toFixed(2)} mbps\n`;
    s += `remaining ram: ${kb(ram.remaining ?? 0)}\n`;
    s += `total ram: ${kb(ram.total)}\n`;
    s += `duplicate: ${ram.duplicate} pages\n`;
    s += `skipped: ${ram.skipped} pages\n`;
    s += `normal: ${ram.normal} pages\n`;
    s += `normal bytes: ${kb(ram['normal-bytes'])}\n`;
    s += `dirty sync count: ${ram['dirty-sync-count']}\n`;
    s += `page size: ${kb(ram['page-size'])}\n`;
    s += `multifd bytes: ${kb(ram['multifd-bytes'])}\n`;
    if (ram['dirty-pages-rate']) s += `dirty pages rate: ${ram['dirty-pages-rate']} pages\n`;
    if (ram['postcopy-requests']) s += `postcopy request count: ${ram['postcopy-requests']}\n`;
  }
  if (info['postcopy-blocktime'] !== undefined) s += `postcopy blocktime: ${info['postcopy-blocktime']}\n`;
  if (info['postcopy-vcpu-blocktime'] !== undefined) s += `postcopy vcpu blocktime: [${info['postcopy-vcpu-blocktime'].join(', ')}]\n`;
  const x = info['xbzrle-cache'];
  if (x) {
    // hmp_info_migrate's XBZRLE block (QEMU 3.0 wording).
    s += `cache size: ${x['cache-size']} bytes\n`;
    s += `xbzrle transferred: ${Math.floor(x.bytes / 1024)} kbytes\n`;
    s += `xbzrle pages: ${x.pages} pages\n`;
    s += `xbzrle cache miss: ${x['cache-miss']}\n`;
    s += `xbzrle cache miss rate: ${x['cache-miss-rate'].toFixed(2)}\n`;
    s += `xbzrle overflow : ${x.overflow}\n`;
  }
  const c = info.compression;
  if (c) {
    // QEMU 3.1's compression block.
    s += `compression pages: ${c.pages} pages\n`;
    s += `compression busy: ${c.busy}\n`;
    s += `compression busy rate: ${c['busy-rate'].toFixed(2)}\n`;
    s += `compressed size: ${c['compressed-size']}\n`;
    s += `compression rate: ${c['compression-rate'].toFixed(2)}\n`;
  }
  if (info['cpu-throttle-percentage'] !== undefined) s += `cpu throttle percentage: ${info['cpu-throttle-percentage']}\n`;
  return s;
}
