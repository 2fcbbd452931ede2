import { QmpError } from '../src/qapi/qmp-error.js';
import {
  IDLE_CONTEXT,
  MIGRATION_CAPABILITIES,
  MigrationOptions,
  TABMIG_IMPLEMENTED_CAPABILITIES,
  type MigrationCapability,
  type OptionsContext,
} from '../src/migration/options.js';
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
  qemuStrtosz,
} from '../src/migration/options-hmp.js';
import { globalsFromUrl, migrationOptionsFromGlobals, parseGlobalOption, parseMigrationGlobal } from '../src/migration/options-global.js';
import { deepEqual, equal, ok } from './helpers/assert.js';

/** Runs fn, which must throw a GenericError QmpError, and returns its desc. */
function qmpError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    ok(e instanceof QmpError, `expected a QmpError, got ${String(e)}`);
    equal(e.errorClass, 'GenericError', 'error class');
    return e.desc;
  }
  throw new Error('expected a QmpError, nothing was thrown');
}

const ACTIVE_STATES = ['setup', 'active', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'pre-switchover', 'device'] as const;
const IDLE_STATES = ['none', 'cancelling', 'cancelled', 'completed', 'failed', 'colo'] as const;
const IN_PROGRESS = "There's a migration process in progress";
const COMPRESS_LEVEL = "Parameter 'compress_level' expects is invalid, it should be in the range of 0 to 9";
const XBZRLE_SIZE =
  "Parameter 'xbzrle_cache_size' expects is invalid, it should be bigger than target page size and a power of two";
const DOWNTIME = "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds";

const DEFAULT_PARAMETERS = {
  'compress-level': 1,
  'compress-threads': 8,
  'decompress-threads': 2,
  'cpu-throttle-initial': 20,
  'cpu-throttle-increment': 10,
  'tls-creds': '',
  'tls-hostname': '',
  'max-bandwidth': 33554432,
  'downtime-limit': 300,
  'x-checkpoint-delay': 200,
  'block-incremental': false,
  'x-multifd-channels': 2,
  'x-multifd-page-count': 16,
  'xbzrle-cache-size': 67108864,
  'max-postcopy-bandwidth': 0,
  'x-incoming-idle-timeout': 10000,
  'x-outgoing-idle-timeout': 10000,
};

const QUERY_ORDER = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'compress',
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'return-path',
  'pause-before-switchover',
  'x-multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
];

describe('migration options: defaults and queries', () => {
  it('query-migrate-parameters answers QEMU 3.0 defaults in QEMU order', () => {
    const opts = new MigrationOptions();
    deepEqual(opts.queryParameters(), DEFAULT_PARAMETERS);
    equal(JSON.stringify(Object.keys(opts.queryParameters())), JSON.stringify(Object.keys(DEFAULT_PARAMETERS)), 'key order');
  });

  it('query-migrate-capabilities lists every capability but block, in QEMU order, all off', () => {
    const caps = new MigrationOptions().queryCapabilities();
    deepEqual(
      caps.map((c) => c.capability),
      QUERY_ORDER,
    );
    ok(caps.every((c) => c.state === false), 'all off');
    deepEqual(caps[0], { capability: 'xbzrle', state: false });
  });

  it('typed getters and the migration object globals have QEMU defaults', () => {
    const opts = new MigrationOptions();
    equal(opts.maxBandwidth, 32 << 20);
    equal(opts.downtimeLimit, 300);
    equal(opts.xbzrleCacheSize, 64 << 20);
    equal(opts.parameter('x-checkpoint-delay'), 200);
    equal(opts.capability('events'), false);
    equal(opts.useEvents, false);
    equal(opts.useReturnPath, false);
    equal(opts.pauseBeforeSwitchover, false);
    equal(opts.postcopyRam, false);
    equal(opts.storeGlobalState, true);
    equal(opts.onlyMigratable, false);
    equal(opts.sendConfiguration, true);
    equal(opts.sendSectionFooter, true);
    equal(opts.decompressErrorCheck, true);
  });

  it('crosses to a worker as a plain object and back', () => {
    const opts = new MigrationOptions();
    opts.setCapabilities([{ capability: 'events', state: true }], IDLE_CONTEXT);
    opts.setParameters({ 'downtime-limit': 1234, 'tls-creds': 'tls0' });
    const copy = MigrationOptions.fromPlain(structuredClone(opts.toPlain()));
    deepEqual(copy.toPlain(), opts.toPlain());
    equal(copy.useEvents, true);
    equal(copy.downtimeLimit, 1234);
    deepEqual(JSON.parse(JSON.stringify(opts.toPlain())), opts.toPlain(), 'JSON round trip');
  });

  it('getters return copies: changing them does not change the options', () => {
    const opts = new MigrationOptions();
    const params = opts.parameters as Record<string, unknown>;
    params['downtime-limit'] = 1;
    equal(opts.downtimeLimit, 300);
  });
});

describe('migrate-set-capabilities', () => {
  it('enables and disables implemented capabilities', () => {
    const opts = new MigrationOptions();
    opts.setCapabilities(
      [
        { capability: 'events', state: true },
        { capability: 'return-path', state: true },
        { capability: 'pause-before-switchover', state: true },
      ],
      IDLE_CONTEXT,
    );
    ok(opts.useEvents && opts.useReturnPath && opts.pauseBeforeSwitchover, 'all three on');
    const q = opts.queryCapabilities();
    equal(q.find((c) => c.capability === 'events')?.state, true);
    opts.setCapabilities([{ capability: 'return-path', state: false }], IDLE_CONTEXT);
    equal(opts.useReturnPath, false);
    equal(opts.useEvents, true, 'untouched capability keeps its state');
  });

  it('the implemented list: the reducers of issue 8, events, return-path, pause-before-switchover, postcopy\'s three and x-multifd', () => {
    deepEqual([...TABMIG_IMPLEMENTED_CAPABILITIES], ['xbzrle', 'auto-converge', 'compress', 'events', 'return-path', 'pause-before-switchover', 'postcopy-ram', 'postcopy-blocktime', 'release-ram', 'x-multifd']);
  });

  it('refuses every capability tabmig does not implement yet, naming it', () => {
    for (const cap of MIGRATION_CAPABILITIES) {
      if (TABMIG_IMPLEMENTED_CAPABILITIES.includes(cap) || cap === 'block') continue;
      const opts = new MigrationOptions();
      equal(
        qmpError(() => opts.setCapabilities([{ capability: cap, state: true }], IDLE_CONTEXT)),
        `Capability '${cap}' is not supported by tabmig yet`,
        cap,
      );
      equal(opts.capability(cap), false, `${cap} stays off`);
    }
  });

  it('accepts turning an unimplemented capability off', () => {
    const opts = new MigrationOptions();
    opts.setCapabilities([{ capability: 'x-colo', state: false }], IDLE_CONTEXT);
    equal(opts.capability('x-colo'), false);
  });

  it('is all-or-nothing: one refused capability leaves every other one unchanged', () => {
    const opts = new MigrationOptions();
    qmpError(() =>
      opts.setCapabilities(
        [
          { capability: 'events', state: true },
          { capability: 'x-colo', state: true },
          { capability: 'return-path', state: true },
        ],
        IDLE_CONTEXT,
      ),
    );
    ok(!opts.useEvents && !opts.useReturnPath, 'nothing applied');
  });

  it('the last entry for a capability wins', () => {
    const opts = new MigrationOptions();
    opts.setCapabilities(
      [
        { capability: 'x-colo', state: true },
        { capability: 'x-colo', state: false },
        { capability: 'events', state: true },
      ],
      IDLE_CONTEXT,
    );
    equal(opts.capability('x-colo'), false);
    equal(opts.useEvents, true);
  });

  it('refuses any change while a migration is set up or active', () => {
    for (const status of ACTIVE_STATES) {
      const opts = new MigrationOptions();
      equal(qmpError(() => opts.setCapabilities([{ capability: 'events', state: true }], { status })), IN_PROGRESS, status);
      equal(qmpError(() => opts.setCapabilities([], { status })), IN_PROGRESS, `${status}, empty list`);
      equal(opts.useEvents, false);
    }
    for (const status of IDLE_STATES) {
      const opts = new MigrationOptions();
      opts.setCapabilities([{ capability: 'events', state: true }], { status });
      equal(opts.useEvents, true, status);
    }
  });

  it('postcopy-ram with compress: QEMU conflict text comes before the tabmig refusal', () => {
    const opts = new MigrationOptions();
    equal(
      qmpError(() =>
        opts.setCapabilities(
          [
            { capability: 'postcopy-ram', state: true },
            { capability: 'compress', state: true },
          ],
          IDLE_CONTEXT,
        ),
      ),
      'Postcopy is not currently compatible with compression',
    );
  });

  it('postcopy-ram with x-multifd is refused (tabmig\'s multifd sender has no postcopy half)', () => {
    const opts = new MigrationOptions();
    equal(
      qmpError(() =>
        opts.setCapabilities(
          [
            { capability: 'postcopy-ram', state: true },
            { capability: 'x-multifd', state: true },
          ],
          IDLE_CONTEXT,
        ),
      ),
      'Postcopy is not yet compatible with multifd',
    );
    equal(opts.capability('postcopy-ram'), false);
    equal(opts.capability('x-multifd'), false);
  });

  it('postcopy-ram on a destination without host support: "Postcopy is not supported"', () => {
    const opts = new MigrationOptions();
    const noHost: OptionsContext = { status: 'none', inmigrate: true, postcopyRamSupportedByHost: () => false };
    equal(qmpError(() => opts.setCapabilities([{ capability: 'postcopy-ram', state: true }], noHost)), 'Postcopy is not supported');
    equal(opts.capability('postcopy-ram'), false);
    const host: OptionsContext = { status: 'none', inmigrate: true, postcopyRamSupportedByHost: () => true };
    opts.setCapabilities([{ capability: 'postcopy-ram', state: true }], host);
    equal(opts.capability('postcopy-ram'), true, 'a destination with host support');
    const src = new MigrationOptions();
    src.setCapabilities([{ capability: 'postcopy-ram', state: true }], { status: 'none', inmigrate: false, postcopyRamSupportedByHost: () => false });
    equal(src.capability('postcopy-ram'), true, 'source side does not ask the host');
  });

  it('block: QEMU built without old-style block migration', () => {
    const opts = new MigrationOptions();
    equal(
      qmpError(() => opts.setCapabilities([{ capability: 'block', state: true }], IDLE_CONTEXT)),
      'QEMU compiled without old-style (blk/-b, inc/-i) block migration',
    );
    opts.setCapabilities([{ capability: 'block', state: false }], IDLE_CONTEXT);
  });

  it('unknown capability names get QAPI enum error', () => {
    const opts = new MigrationOptions();
    equal(
      qmpError(() => opts.setCapabilities([{ capability: 'foo', state: true }], IDLE_CONTEXT)),
      "Parameter 'capability' does not accept value 'foo'",
    );
    equal(
      qmpError(() => opts.setCapabilities([{ capability: 'multifd', state: true }], IDLE_CONTEXT)),
      "Parameter 'capability' does not accept value 'multifd'",
      'QEMU 3.0 calls it x-multifd',
    );
  });

  it('malformed lists get QAPI input visitor errors, with member paths', () => {
    const opts = new MigrationOptions();
    const set = (list: unknown) => qmpError(() => opts.setCapabilities(list, IDLE_CONTEXT));
    equal(set(undefined), "Parameter 'capabilities' is missing");
    equal(set({ capability: 'events', state: true }), "Invalid parameter type for 'capabilities', expected: array");
    equal(set(['events']), "Invalid parameter type for 'capabilities[0]', expected: object");
    equal(set([{ state: true }]), "Parameter 'capabilities[0].capability' is missing");
    equal(set([{ capability: 1, state: true }]), "Invalid parameter type for 'capabilities[0].capability', expected: string");
    equal(set([{ capability: 'events' }]), "Parameter 'capabilities[0].state' is missing");
    equal(
      set([
        { capability: 'events', state: true },
        { capability: 'events', state: 'on' },
      ]),
      "Invalid parameter type for 'capabilities[1].state', expected: boolean",
    );
    equal(set([{ capability: 'events', state: true, extra: 1 }]), "Parameter 'capabilities[0].extra' is unexpected");
  });

  it('input errors are reported before the in-progress refusal, as QAPI unmarshals first', () => {
    const opts = new MigrationOptions();
    equal(
      qmpError(() => opts.setCapabilities([{ capability: 'foo', state: true }], { status: 'active' })),
      "Parameter 'capability' does not accept value 'foo'",
    );
  });
});

describe('migrate-set-parameters', () => {
  /** Sets one parameter on fresh options and returns the error text, or '' on success. */
  function trySet(name: string, value: unknown): string {
    const opts = new MigrationOptions();
    try {
      opts.setParameters({ [name]: value });
    } catch (e) {
      ok(e instanceof QmpError, String(e));
      return e.desc;
    }
    equal((opts.queryParameters() as unknown as Record<string, unknown>)[name], value === null ? '' : value, `${name} applied`);
    return '';
  }

  const ranges: [string, number[], number[], string][] = [
    ['compress-level', [0, 9], [-1, 10, 265], COMPRESS_LEVEL],
    ['compress-threads', [1, 255], [0, 256, -1], "Parameter 'compress_threads' expects is invalid, it should be in the range of 1 to 255"],
    ['decompress-threads', [1, 255], [0, 256], "Parameter 'decompress_threads' expects is invalid, it should be in the range of 1 to 255"],
    ['cpu-throttle-initial', [1, 99], [0, 100], "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"],
    ['cpu-throttle-increment', [1, 99], [0, 100], "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99"],
    [
      'max-bandwidth',
      [0, 2 ** 53 - 1],
      [-1],
      "Parameter 'max_bandwidth' expects an integer in the range of 0 to 18446744073709551615 bytes/second",
    ],
    ['downtime-limit', [0, 2000000], [-1, 2000001], DOWNTIME],
    ['x-checkpoint-delay', [0, 2 ** 32 - 1], [-1, 2 ** 32], "Parameter 'x-checkpoint-delay' expects uint32"],
    ['x-multifd-channels', [1, 255], [0, 256], "Parameter 'multifd_channels' expects is invalid, it should be in the range of 1 to 255"],
    [
      'x-multifd-page-count',
      [1, 10000],
      [0, 10001],
      "Parameter 'multifd_page_count' expects is invalid, it should be in the range of 1 to 10000",
    ],
    ['xbzrle-cache-size', [4096, 8192, 2 ** 30, 2 ** 62], [0, 2048, 4095, 4097, 6144, -4096, 2 ** 53 - 1], XBZRLE_SIZE],
    ['max-postcopy-bandwidth', [0, 1, 2 ** 40], [-1], "Parameter 'max-postcopy-bandwidth' expects uint64"],
  ];
  for (const [name, good, bad, text] of ranges) {
    it(`${name}: range checked at both ends`, () => {
      for (const v of good) equal(trySet(name, v), '', `${name}=${v}`);
      for (const v of bad) equal(trySet(name, v), text, `${name}=${v}`);
    });
  }

  it('strings and booleans', () => {
    equal(trySet('tls-creds', 'tls0'), '');
    equal(trySet('tls-hostname', 'example.org'), '');
    equal(trySet('tls-creds', null), '', 'null means ""');
    equal(trySet('block-incremental', true), '');
  });

  it('wrong JSON types get QAPI input visitor errors', () => {
    equal(trySet('compress-level', '1'), "Invalid parameter type for 'compress-level', expected: integer");
    equal(trySet('downtime-limit', 1.5), "Invalid parameter type for 'downtime-limit', expected: integer");
    equal(trySet('max-bandwidth', 2 ** 63), "Invalid parameter type for 'max-bandwidth', expected: integer");
    equal(trySet('xbzrle-cache-size', 'big'), "Parameter 'xbzrle-cache-size' expects uint64");
    equal(trySet('max-postcopy-bandwidth', 2 ** 64), "Parameter 'max-postcopy-bandwidth' expects uint64");
    equal(trySet('block-incremental', 'on'), "Invalid parameter type for 'block-incremental', expected: boolean");
    equal(trySet('tls-creds', 5), "Invalid parameter type for 'tls-creds', expected: StrOrNull");
    equal(trySet('max_bandwidth', 1), "Parameter 'max_bandwidth' is unexpected");
    equal(qmpError(() => new MigrationOptions().setParameters(['x'])), "Invalid parameter type for 'null', expected: object");
  });

  it('accepts bigint integers from a lossless JSON parser', () => {
    const opts = new MigrationOptions();
    opts.setParameters({ 'max-bandwidth': 1000n });
    equal(opts.maxBandwidth, 1000);
  });

  it('a type error in a known member wins over an unexpected member', () => {
    const opts = new MigrationOptions();
    equal(
      qmpError(() => opts.setParameters({ foo: 1, 'downtime-limit': 'x' })),
      "Invalid parameter type for 'downtime-limit', expected: integer",
    );
  });

  it('is all-or-nothing, and the first failing check in QEMU order is reported', () => {
    const opts = new MigrationOptions();
    equal(qmpError(() => opts.setParameters({ 'downtime-limit': 500, 'compress-level': 10 })), COMPRESS_LEVEL);
    equal(opts.downtimeLimit, 300, 'valid member not applied');
    equal(qmpError(() => opts.setParameters({ 'xbzrle-cache-size': 3, 'downtime-limit': -5 })), DOWNTIME);
    equal(qmpError(() => opts.setParameters({ 'max-bandwidth': 5, foo: 1 })), "Parameter 'foo' is unexpected");
    equal(opts.maxBandwidth, 32 << 20);
  });

  it('applies several members at once and reports which were set', () => {
    const opts = new MigrationOptions();
    const changed = opts.setParameters({ 'max-bandwidth': 1 << 20, 'downtime-limit': 50, 'x-multifd-channels': 4 });
    deepEqual(changed, ['max-bandwidth', 'downtime-limit', 'x-multifd-channels']);
    equal(opts.maxBandwidth, 1 << 20);
    equal(opts.downtimeLimit, 50);
    equal(opts.parameter('x-multifd-channels'), 4);
    deepEqual(opts.setParameters({}), []);
    deepEqual(opts.setParameters(undefined), []);
  });
});

describe('legacy migration commands', () => {
  it('migrate_set_speed sets max-bandwidth', () => {
    const opts = new MigrationOptions();
    opts.migrateSetSpeed(1000);
    equal(opts.maxBandwidth, 1000);
    equal(qmpError(() => opts.migrateSetSpeed('fast')), "Invalid parameter type for 'value', expected: integer");
    equal(
      qmpError(() => opts.migrateSetSpeed(-1)),
      "Parameter 'max_bandwidth' expects an integer in the range of 0 to 18446744073709551615 bytes/second",
    );
    equal(opts.maxBandwidth, 1000);
  });

  it('migrate_set_downtime converts seconds to milliseconds with its own range check', () => {
    const opts = new MigrationOptions();
    opts.migrateSetDowntime(0.5);
    equal(opts.downtimeLimit, 500);
    opts.migrateSetDowntime(2000);
    equal(opts.downtimeLimit, 2000000);
    opts.migrateSetDowntime(0);
    equal(opts.downtimeLimit, 0);
    opts.migrateSetDowntime(0.0015);
    equal(opts.downtimeLimit, 1, 'truncated like the C conversion');
    const text = "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000 seconds";
    equal(qmpError(() => opts.migrateSetDowntime(2000.001)), text);
    equal(qmpError(() => opts.migrateSetDowntime(-0.001)), text);
    equal(qmpError(() => opts.migrateSetDowntime('1')), "Invalid parameter type for 'value', expected: number");
    equal(opts.downtimeLimit, 1);
  });

  it('migrate-set-cache-size and query-migrate-cache-size use xbzrle-cache-size', () => {
    const opts = new MigrationOptions();
    equal(opts.queryMigrateCacheSize(), 64 << 20);
    opts.migrateSetCacheSize(1 << 20);
    equal(opts.queryMigrateCacheSize(), 1 << 20);
    equal(opts.parameter('xbzrle-cache-size'), 1 << 20);
    equal(qmpError(() => opts.migrateSetCacheSize(1000)), XBZRLE_SIZE);
    equal(qmpError(() => opts.migrateSetCacheSize(-1)), XBZRLE_SIZE);
    equal(qmpError(() => opts.migrateSetCacheSize('1M')), "Invalid parameter type for 'value', expected: integer");
    equal(opts.queryMigrateCacheSize(), 1 << 20);
  });
});

describe('HMP', () => {
  it('info migrate_capabilities prints one line per capability', () => {
    const opts = new MigrationOptions();
    opts.setCapabilities([{ capability: 'events', state: true }], IDLE_CONTEXT);
    const text = formatInfoMigrateCapabilities(opts);
    equal(text, QUERY_ORDER.map((c) => `${c}: ${c === 'events' ? 'on' : 'off'}\n`).join(''));
    ok(text.startsWith('xbzrle: off\nrdma-pin-all: off\n'), 'first lines');
  });

  it('info migrate_parameters uses QEMU 3.0 wording and units', () => {
    const opts = new MigrationOptions();
    equal(
      formatInfoMigrateParameters(opts),
      'compress-level: 1\n' +
        'compress-threads: 8\n' +
        'decompress-threads: 2\n' +
        'cpu-throttle-initial: 20\n' +
        'cpu-throttle-increment: 10\n' +
        "tls-creds: ''\n" +
        "tls-hostname: ''\n" +
        'max-bandwidth: 33554432 bytes/second\n' +
        'downtime-limit: 300 milliseconds\n' +
        'x-checkpoint-delay: 200\n' +
        'block-incremental: off\n' +
        'x-multifd-channels: 2\n' +
        'x-multifd-page-count: 16\n' +
        'xbzrle-cache-size: 67108864\n' +
        'max-postcopy-bandwidth: 0\n' +
        'x-incoming-idle-timeout: 10000 milliseconds\n' +
        'x-outgoing-idle-timeout: 10000 milliseconds\n',
    );
    opts.setParameters({ 'tls-creds': 'tls0', 'block-incremental': true, 'max-bandwidth': 134217728 });
    const text = formatInfoMigrateParameters(opts);
    ok(text.includes("tls-creds: 'tls0'\n"), text);
    ok(text.includes('block-incremental: on\n'), text);
    ok(text.includes('max-bandwidth: 134217728 bytes/second\n'), text);
  });

  it('info migrate_cache_size, and the globals and capabilities lines of info migrate', () => {
    const opts = new MigrationOptions();
    equal(formatInfoMigrateCacheSize(opts), 'xbzrel cache size: 65536 kbytes\n');
    equal(
      formatMigrationGlobals(opts),
      'globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\nsend-section-footer: on\ndecompress-error-check: on\n',
    );
    equal(formatCapabilitiesLine(opts), 'capabilities: ' + QUERY_ORDER.map((c) => `${c}: off `).join('') + '\n');
  });

  it('migrate_set_capability', () => {
    const opts = new MigrationOptions();
    const help = 'Try "help migrate_set_capability" for more information\n';
    equal(hmpMigrateSetCapability(opts, 'events on', IDLE_CONTEXT), '');
    equal(opts.useEvents, true);
    equal(hmpMigrateSetCapability(opts, '  events   off  ', IDLE_CONTEXT), '');
    equal(opts.useEvents, false);
    equal(hmpMigrateSetCapability(opts, 'foo on', IDLE_CONTEXT), 'Error: invalid parameter value: foo\n');
    equal(hmpMigrateSetCapability(opts, 'events yes', IDLE_CONTEXT), "Expected 'on' or 'off'\n" + help);
    equal(hmpMigrateSetCapability(opts, 'events', IDLE_CONTEXT), "Expected 'on' or 'off'\n" + help);
    equal(hmpMigrateSetCapability(opts, '', IDLE_CONTEXT), 'migrate_set_capability: string expected\n' + help);
    equal(
      hmpMigrateSetCapability(opts, 'events on now', IDLE_CONTEXT),
      'migrate_set_capability: extraneous characters at the end of line\n' + help,
    );
    equal(hmpMigrateSetCapability(opts, 'x-colo on', IDLE_CONTEXT), "Error: Capability 'x-colo' is not supported by tabmig yet\n");
    equal(hmpMigrateSetCapability(opts, 'events on', { status: 'active' }), `Error: ${IN_PROGRESS}\n`);
    equal(opts.useEvents, false);
  });

  it('migrate_set_parameter: sizes, integers, booleans, strings', () => {
    const opts = new MigrationOptions();
    const set = (args: string) => hmpMigrateSetParameter(opts, args);
    equal(set('max-bandwidth 100'), '');
    equal(opts.maxBandwidth, 100 << 20, 'bare number is MiB/s');
    equal(set('max-bandwidth 1G'), '');
    equal(opts.maxBandwidth, 1 << 30);
    equal(set('max-bandwidth 512k'), '');
    equal(opts.maxBandwidth, 512 << 10);
    equal(set('max-bandwidth 1000B'), '');
    equal(opts.maxBandwidth, 1000);
    equal(set('max-bandwidth 1.5'), '');
    equal(opts.maxBandwidth, 1.5 * 2 ** 20);
    equal(set('max-bandwidth 10x'), 'Error: Invalid size 10x\n');
    equal(set('max-bandwidth -1'), 'Error: Invalid size -1\n');
    equal(set('xbzrle-cache-size 128M'), '');
    equal(opts.xbzrleCacheSize, 128 << 20);
    equal(set('xbzrle-cache-size 1048576'), '');
    equal(opts.xbzrleCacheSize, 1 << 20, 'bare number is bytes');
    equal(set('xbzrle-cache-size 1000'), `Error: ${XBZRLE_SIZE}\n`);
    equal(set('xbzrle-cache-size abc'), "Error: Parameter 'xbzrle-cache-size' expects a non-negative number below 2^64\n");
    equal(set('xbzrle-cache-size -1'), "Error: Value '-1' is out of range for parameter 'xbzrle-cache-size'\n");
    equal(set('max-postcopy-bandwidth 1K'), '');
    equal(opts.parameter('max-postcopy-bandwidth'), 1024);
    equal(set('downtime-limit 500'), '');
    equal(opts.downtimeLimit, 500);
    equal(set('downtime-limit 0x10'), '');
    equal(opts.downtimeLimit, 16);
    equal(set('downtime-limit 010'), '');
    equal(opts.downtimeLimit, 8, 'leading zero is octal');
    equal(set('downtime-limit 5s'), "Error: Parameter 'downtime-limit' expects int64\n");
    equal(set('downtime-limit 2000001'), `Error: ${DOWNTIME}\n`);
    equal(set('compress-level 10'), `Error: ${COMPRESS_LEVEL}\n`);
    equal(set('block-incremental on'), '');
    equal(opts.parameter('block-incremental'), true);
    equal(set('block-incremental false'), '');
    equal(opts.parameter('block-incremental'), false);
    equal(set('block-incremental maybe'), "Error: Parameter 'block-incremental' expects 'on' or 'off'\n");
    equal(set('tls-creds tls0'), '');
    equal(opts.parameter('tls-creds'), 'tls0');
    equal(set('tls-hostname "my host"'), '');
    equal(opts.parameter('tls-hostname'), 'my host');
    equal(set('tls-creds ""'), '');
    equal(opts.parameter('tls-creds'), '');
    equal(set('foo 1'), 'Error: invalid parameter value: foo\n');
    const help = 'Try "help migrate_set_parameter" for more information\n';
    equal(set('downtime-limit'), 'migrate_set_parameter: string expected\n' + help);
    equal(set('downtime-limit 1 2'), 'migrate_set_parameter: extraneous characters at the end of line\n' + help);
    equal(set('tls-creds "open'), 'migrate_set_parameter: string expected\n' + help);
  });

  it('migrate_set_speed, migrate_set_downtime, migrate_set_cache_size', () => {
    const opts = new MigrationOptions();
    equal(hmpMigrateSetSpeed(opts, '64'), '');
    equal(opts.maxBandwidth, 64 << 20);
    equal(hmpMigrateSetSpeed(opts, '1g'), '');
    equal(opts.maxBandwidth, 1 << 30);
    equal(hmpMigrateSetSpeed(opts, 'abc'), 'invalid size\nTry "help migrate_set_speed" for more information\n');
    equal(hmpMigrateSetSpeed(opts, '-1'), 'invalid size\nTry "help migrate_set_speed" for more information\n');
    equal(
      hmpMigrateSetSpeed(opts, '10x'),
      'migrate_set_speed: extraneous characters at the end of line\nTry "help migrate_set_speed" for more information\n',
    );

    equal(hmpMigrateSetDowntime(opts, '0.5'), '');
    equal(opts.downtimeLimit, 500);
    equal(hmpMigrateSetDowntime(opts, '100ms'), '');
    equal(opts.downtimeLimit, 100);
    equal(hmpMigrateSetDowntime(opts, '2500'), '', 'QEMU drops the error silently');
    equal(opts.downtimeLimit, 100);
    equal(hmpMigrateSetDowntime(opts, '1x'), 'Unknown unit suffix\nTry "help migrate_set_downtime" for more information\n');
    equal(hmpMigrateSetDowntime(opts, 'abc'), 'Number expected\nTry "help migrate_set_downtime" for more information\n');
    equal(hmpMigrateSetDowntime(opts, 'inf'), 'Bad number\nTry "help migrate_set_downtime" for more information\n');

    equal(hmpMigrateSetCacheSize(opts, '128'), '');
    equal(opts.xbzrleCacheSize, 128 << 20);
    equal(hmpMigrateSetCacheSize(opts, '1000b'), `Error: ${XBZRLE_SIZE}\n`);
    equal(opts.xbzrleCacheSize, 128 << 20);
  });

  it('qemu_strtosz: suffixes, fractions and trailing text', () => {
    deepEqual(qemuStrtosz('4k'), { ok: true, value: 4096, end: 2 });
    deepEqual(qemuStrtosz('1E'), { ok: true, value: 2 ** 60, end: 2 });
    deepEqual(qemuStrtosz('0.5K'), { ok: true, value: 512, end: 4 });
    equal(qemuStrtosz('1.5').ok, false, 'fraction of a byte');
    equal(qemuStrtosz('16E').ok, false, '2^64 is out of range');
    equal(qemuStrtosz('1q').ok, false);
    deepEqual(qemuStrtosz('1q', 'B', true), { ok: true, value: 1, end: 1 });
    deepEqual(qemuStrtosz('2', 'M'), { ok: true, value: 2 << 20, end: 1 });
  });
});

describe('-global migration properties', () => {
  const cant = (g: string, why: string) => `can't apply global ${g}: ${why}`;
  const parseErr = (text: string) => qmpError(() => parseMigrationGlobal(text));

  it('parses the short and the long -global forms', () => {
    deepEqual(parseGlobalOption('migration.send-section-footer=off'), {
      driver: 'migration',
      property: 'send-section-footer',
      value: 'off',
    });
    deepEqual(parseGlobalOption('driver=migration,property=only-migratable,value=on'), {
      driver: 'migration',
      property: 'only-migratable',
      value: 'on',
    });
    equal(qmpError(() => parseGlobalOption('migration')), "Invalid parameter 'migration'");
  });

  it('sets the migration object booleans', () => {
    deepEqual(parseMigrationGlobal('migration.send-section-footer=off'), {
      property: 'send-section-footer',
      target: { kind: 'global', name: 'send-section-footer' },
      value: false,
    });
    const opts = migrationOptionsFromGlobals([
      'migration.send-section-footer=off',
      'migration.send-configuration=no',
      'migration.only-migratable=on',
      'migration.store-global-state=false',
      'migration.decompress-error-check=n',
    ]);
    equal(opts.sendSectionFooter, false);
    equal(opts.sendConfiguration, false);
    equal(opts.onlyMigratable, true);
    equal(opts.storeGlobalState, false);
    equal(opts.decompressErrorCheck, false);
  });

  it('sets parameters and capabilities through their x- properties', () => {
    const opts = migrationOptionsFromGlobals([
      'migration.x-max-bandwidth=1G',
      'migration.x-downtime-limit=50',
      'migration.x-compress-level=9',
      'migration.x-checkpoint-delay=0x100',
      'migration.xbzrle-cache-size=1M',
      'migration.max-postcopy-bandwidth=4k',
      'migration.x-multifd-channels=8',
      'migration.x-events=on',
      'migration.x-return-path=on',
    ]);
    equal(opts.maxBandwidth, 1 << 30);
    equal(opts.downtimeLimit, 50);
    equal(opts.parameter('compress-level'), 9);
    equal(opts.parameter('x-checkpoint-delay'), 256);
    equal(opts.xbzrleCacheSize, 1 << 20);
    equal(opts.parameter('max-postcopy-bandwidth'), 4096);
    equal(opts.parameter('x-multifd-channels'), 8);
    equal(opts.useEvents, true);
    equal(opts.useReturnPath, true);
  });

  it('unknown properties and bad values get QOM/QAPI wording', () => {
    equal(parseErr('migration.foo=on'), cant('migration.foo=on', "Property 'migration.foo' not found"));
    equal(parseErr('migration.pause-before-switchover=on'), cant('migration.pause-before-switchover=on', "Property 'migration.pause-before-switchover' not found"));
    equal(
      parseErr('migration.send-section-footer=maybe'),
      cant('migration.send-section-footer=maybe', "Parameter 'send-section-footer' expects 'on' or 'off'"),
    );
    equal(parseErr('migration.x-events='), cant('migration.x-events=', "Parameter 'x-events' expects 'on' or 'off'"));
    equal(parseErr('migration.x-compress-level=256'), cant('migration.x-compress-level=256', "Parameter 'x-compress-level' expects uint8"));
    equal(parseErr('migration.x-compress-level=-1'), cant('migration.x-compress-level=-1', "Parameter 'x-compress-level' expects uint8"));
    equal(parseErr('migration.x-checkpoint-delay=4294967296'), cant('migration.x-checkpoint-delay=4294967296', "Parameter 'x-checkpoint-delay' expects uint32"));
    equal(parseErr('migration.x-downtime-limit=soon'), cant('migration.x-downtime-limit=soon', "Parameter 'x-downtime-limit' expects uint64"));
    equal(
      parseErr('migration.xbzrle-cache-size=lots'),
      cant('migration.xbzrle-cache-size=lots', "Parameter 'xbzrle-cache-size' expects a non-negative number below 2^64"),
    );
  });

  it('leaves other drivers alone', () => {
    equal(parseMigrationGlobal('virtio-net-pci.mac=52:54:00:12:34:56'), null);
    const opts = migrationOptionsFromGlobals(['uart.chardev=serial0', 'migration.x-events=on']);
    equal(opts.useEvents, true);
  });

  it('the object check judges the result as QEMU does at start-up', () => {
    const startErr = (globals: string[]) => qmpError(() => migrationOptionsFromGlobals(globals));
    equal(startErr(['migration.x-compress-level=10']), COMPRESS_LEVEL);
    equal(startErr(['migration.xbzrle-cache-size=1000']), XBZRLE_SIZE);
    equal(startErr(['migration.x-downtime-limit=-1']), DOWNTIME, 'strtoull wraps -1');
    equal(startErr(['migration.x-block=on']), 'QEMU compiled without old-style (blk/-b, inc/-i) block migration');
    equal(startErr(['migration.x-postcopy-ram=on', 'migration.x-compress=on']), 'Postcopy is not currently compatible with compression');
    equal(startErr(['migration.x-colo=on']), "Capability 'x-colo' is not supported by tabmig yet");
    equal(startErr(['migration.foo=1']), cant('migration.foo=1', "Property 'migration.foo' not found"));
  });

  it('reads global entries from a page URL', () => {
    deepEqual(globalsFromUrl('?global=migration.send-section-footer=off&x=1&global=migration.x-events=on'), [
      'migration.send-section-footer=off',
      'migration.x-events=on',
    ]);
    deepEqual(globalsFromUrl(''), []);
    const opts = migrationOptionsFromGlobals(globalsFromUrl('?global=migration.send-section-footer%3Doff'));
    equal(opts.sendSectionFooter, false);
  });
});

describe('capability table sanity', () => {
  it('every implemented capability is a QEMU capability', () => {
    for (const cap of TABMIG_IMPLEMENTED_CAPABILITIES) ok((MIGRATION_CAPABILITIES as readonly MigrationCapability[]).includes(cap), cap);
    equal(MIGRATION_CAPABILITIES.length, 16);
  });
});
