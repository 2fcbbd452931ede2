// The migration panels as a user sees them: <tm-app> over a fake machine, a fake QMP client that
// records what it is asked, a fake migration service and a fake snapshot store. Each test acts as
// a user would (types, clicks) and checks the QMP command sent or what appears on the page.

import type { DisplayMode } from '../src/guest/devices/display.js';
import type { RunState } from '../src/guest/runstate.js';
import { defaultParameters, MIGRATION_CAPABILITIES, type MigrationCapability, type MigrationParameterValues } from '../src/migration/options-schema.js';
import { PageState, PageStatus } from '../src/migration/page-state.js';
import { RoundRecords, roundRecordsBytes, type RoundRecord } from '../src/migration/round-records.js';
import { StreamLog, StreamLogSide, streamLogBytes } from '../src/migration/stream-log.js';
import { StreamLogWriter } from '../src/migration/stream-log-writer.js';
import { SectionType } from '../src/migration/stream/format.js';
import { incomingPageUrl } from '../src/ui/page-url.js';
import type { MachineLike } from '../src/ui/services/machine-service.js';
import type {
  MigrationInfo,
  MigrationLogEntry,
  MigrationStatus,
  MigrationView,
  PeerView,
  SignalingView,
} from '../src/ui/services/migration-view.js';
import type { QmpClient, QmpCommand, QmpReply } from '../src/ui/services/qmp-client.js';
import { SnapshotExistsError, type SnapshotImportOptions, type SnapshotInfo, type SnapshotsView } from '../src/ui/services/snapshot-service.js';
import '../src/ui/tm-app.js';
import type { TmApp } from '../src/ui/tm-app.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';

class FakeMachine extends EventTarget implements MachineLike {
  runstate: RunState = 'running';
  readonly ramSize = 1 << 20;
  readonly ramBytes = new Uint8Array(this.ramSize);
  programName = 'ab';
  programArgs = '';
  instructionsRetired = 0;
  serialOutput = '';
  display: DisplayMode = { fbAddr: 0, width: 0, height: 0, stride: 0, enabled: false, frame: 0 };

  sendInput(): void {}

  setRunstate(to: RunState): void {
    const from = this.runstate;
    this.runstate = to;
    this.dispatchEvent(new CustomEvent('runstate', { detail: { from, to } }));
  }
}

type Answer = QmpReply | ((cmd: QmpCommand) => QmpReply);

class FakeQmp implements QmpClient {
  readonly events = new EventTarget();
  readonly sent: QmpCommand[] = [];
  replies: Record<string, Answer> = {};

  async execute(cmd: QmpCommand): Promise<QmpReply> {
    this.sent.push(cmd);
    const a = this.replies[cmd.execute];
    return typeof a === 'function' ? a(cmd) : (a ?? { return: {} });
  }

  /** Commands sent, leaving out the panels' polling (query-migrate, the pairing panel's reads). */
  get actions(): QmpCommand[] {
    return this.sent.filter((c) => !['query-migrate', 'x-tabmig-pairing', 'x-tabmig-token'].includes(c.execute));
  }

  emit(event: string, data?: Record<string, unknown>): void {
    const detail = { event, data, timestamp: { seconds: Math.floor(Date.now() / 1000), microseconds: 0 } };
    this.events.dispatchEvent(new CustomEvent('qmp-event', { detail }));
  }
}

class FakeSignaling extends EventTarget implements SignalingView {
  id = 'me2345ab';
  name = 'alice';
  peers: PeerView[] = [];

  setPeers(peers: PeerView[]): void {
    this.peers = peers;
    this.dispatchEvent(new Event('peers'));
  }
}

class FakeMigration extends EventTarget implements MigrationView {
  outgoingStatus: MigrationStatus = 'none';
  incomingStatus: MigrationStatus = 'none';
  lastError: string | null = null;
  waitingForIncoming = false;
  incomingBytesReceived = 0;
  activeBlockers: string[] = [];
  readonly rounds = new RoundRecords(new SharedArrayBuffer(roundRecordsBytes(64)));
  readonly pageState = new PageState(256);
  readonly streamLog = new StreamLog(new SharedArrayBuffer(streamLogBytes(32)));
  log: MigrationLogEntry[] = [];
  caps = Object.fromEntries(MIGRATION_CAPABILITIES.map((c) => [c, false])) as Record<MigrationCapability, boolean>;
  params: MigrationParameterValues = defaultParameters();
  readonly signaling = new FakeSignaling();
  readonly options = {
    queryCapabilities: () => MIGRATION_CAPABILITIES.filter((c) => c !== 'block').map((capability) => ({ capability, state: this.caps[capability] })),
    queryParameters: () => ({ ...this.params }),
  };

  queryMigrate(): MigrationInfo {
    return this.outgoingStatus === 'none' ? {} : { status: this.outgoingStatus };
  }

  set(changes: Partial<FakeMigration>): void {
    Object.assign(this, changes);
    this.dispatchEvent(new Event('change'));
  }
}

class FakeSnapshots implements SnapshotsView {
  snapshots: SnapshotInfo[] = [];
  ready = true;
  error: string | null = null;
  imported: { name: string; size: number; overwrite: boolean }[] = [];
  /** What the panel asked the stream to be loadable into. */
  expected: SnapshotImportOptions['expect'][] = [];
  private readonly listeners = new Set<() => void>();

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.unsubscribe(fn);
  }

  unsubscribe(fn: () => void): void {
    this.listeners.delete(fn);
  }

  async delete(name: string): Promise<boolean> {
    const had = this.snapshots.some((s) => s.name === name);
    this.snapshots = this.snapshots.filter((s) => s.name !== name);
    this.changed();
    return had;
  }

  async exportBlob(): Promise<Blob> {
    return new Blob([new Uint8Array(8)]);
  }

  async importBlob(name: string, blob: Blob, options: SnapshotImportOptions): Promise<SnapshotInfo> {
    this.expected.push(options.expect);
    // The real service's rule: a taken name needs the user's explicit overwrite.
    if (!options.overwrite && this.snapshots.some((s) => s.name === name)) throw new SnapshotExistsError(name);
    options.onProgress?.(blob.size, blob.size, 'checking');
    options.onProgress?.(blob.size, blob.size, 'copying');
    const info = { name, size: blob.size, created: Date.now() };
    this.imported.push({ name, size: blob.size, overwrite: !!options.overwrite });
    this.snapshots = [info, ...this.snapshots.filter((s) => s.name !== name)];
    this.changed();
    return info;
  }

  changed(): void {
    for (const fn of this.listeners) fn();
  }
}

let app: TmApp;
let machine: FakeMachine;
let qmp: FakeQmp;
let migration: FakeMigration;
let snapshots: FakeSnapshots;

async function mount(): Promise<void> {
  machine = new FakeMachine();
  qmp = new FakeQmp();
  migration = new FakeMigration();
  snapshots = new FakeSnapshots();
  app = document.createElement('tm-app');
  Object.assign(app, { machine, qmp, migration, snapshots, vmName: 'alice' });
  document.body.append(app);
  await app.updateComplete;
}

function root(tag: string): ShadowRoot {
  const host = app.shadowRoot!.querySelector(tag);
  ok(host?.shadowRoot, `<${tag}> is on the page`);
  return host.shadowRoot;
}

/** Waits for `selector` in `tag` to exist and satisfy `pred` (the panels render asynchronously). */
async function until<E extends Element = HTMLElement>(tag: string, selector: string, pred: (el: E) => unknown = () => true, what = `${selector} in ${tag}`): Promise<E> {
  const found = await eventually(() => {
    const el = app.shadowRoot?.querySelector(tag)?.shadowRoot?.querySelector<E>(selector);
    return el && pred(el) ? el : null;
  }, 5000, what);
  return found!;
}

async function sent(execute: string): Promise<QmpCommand> {
  const cmd = await eventually(() => qmp.actions.find((c) => c.execute === execute), 5000, `${execute} sent`);
  return cmd!;
}

function type(input: HTMLInputElement, value: string): void {
  input.value = value;
  input.dispatchEvent(new Event('input'));
}

beforeEach(mount);

afterEach(() => {
  app?.remove();
});

describe('tm-migrate-panel', () => {
  it('sends migrate with the typed URI when Migrate is clicked', async () => {
    const input = await until<HTMLInputElement>('tm-migrate-panel', 'input#uri');
    type(input, 'webrtc:bob12345');
    (await until<HTMLButtonElement>('tm-migrate-panel', 'button.migrate', (b) => !b.disabled, 'Migrate enabled')).click();
    deepEqual(await sent('migrate'), { execute: 'migrate', arguments: { uri: 'webrtc:bob12345' } });
    await until('tm-migrate-panel', '.feedback .ok');
  });

  it("shows QEMU's error reply next to the Migrate button", async () => {
    qmp.replies['migrate'] = { error: { class: 'GenericError', desc: "Parameter 'uri' expects a valid migration protocol" } };
    type(await until<HTMLInputElement>('tm-migrate-panel', 'input#uri'), 'tcp:0:4444');
    (await until<HTMLButtonElement>('tm-migrate-panel', 'button.migrate', (b) => !b.disabled)).click();
    const err = await until('tm-migrate-panel', '.feedback.failed');
    match(err.textContent ?? '', /GenericError: Parameter 'uri' expects a valid migration protocol/);
  });

  it('a suggested peer fills in its webrtc: URI', async () => {
    migration.signaling.setPeers([{ id: 'bob12345', name: 'bob', incoming: true, incomingFrom: null }]);
    const chip = await until<HTMLButtonElement>('tm-migrate-panel', '.chip', (c) => c.textContent?.includes('webrtc:bob12345'));
    chip.click();
    await until<HTMLInputElement>('tm-migrate-panel', 'input#uri', (i) => i.value === 'webrtc:bob12345');
  });

  it('Cancel is there only while a migration runs, and sends migrate_cancel', async () => {
    await until('tm-migrate-panel', 'input#uri');
    equal(root('tm-migrate-panel').querySelector('button.cancel'), null, 'nothing to cancel yet: no Cancel');
    migration.set({ outgoingStatus: 'active' });
    (await until<HTMLButtonElement>('tm-migrate-panel', 'button.cancel', (b) => !b.disabled, 'Cancel enabled')).click();
    deepEqual(await sent('migrate_cancel'), { execute: 'migrate_cancel' });
    equal(root('tm-migrate-panel').querySelector('input#uri'), null, 'no destination to type while one migration runs');
  });

  it('Continue is there with pause-before-switchover, enabled only in pre-switchover, and sends migrate-continue', async () => {
    migration.set({ outgoingStatus: 'active' });
    await until('tm-migrate-panel', 'button.cancel');
    equal(root('tm-migrate-panel').querySelector('button.continue'), null, 'no Continue without pause-before-switchover');
    migration.caps['pause-before-switchover'] = true;
    migration.set({ outgoingStatus: 'active' });
    await until<HTMLButtonElement>('tm-migrate-panel', 'button.continue', (b) => b.disabled, 'Continue disabled while active');
    migration.set({ outgoingStatus: 'pre-switchover' });
    (await until<HTMLButtonElement>('tm-migrate-panel', 'button.continue', (b) => !b.disabled, 'Continue enabled')).click();
    deepEqual(await sent('migrate-continue'), { execute: 'migrate-continue', arguments: { state: 'pre-switchover' } });
  });

  it('shows the status with its meaning, and error-desc when it failed', async () => {
    migration.set({ outgoingStatus: 'active' });
    const status = await until('tm-migrate-panel', '.status', (s) => s.classList.contains('tone-info'));
    match(status.textContent ?? '', /copying RAM while the guest keeps running/);
    migration.set({ outgoingStatus: 'failed', lastError: 'Connection to peer bob12345 lost: closed' });
    const desc = await until('tm-migrate-panel', '.error-desc');
    match(desc.textContent ?? '', /Connection to peer bob12345 lost/);
    ok(root('tm-migrate-panel').querySelector('.status.tone-danger'), 'failed is red');
    equal((root('tm-migrate-panel').querySelector('tm-migration-badge') as HTMLElement & { status: string }).status, 'failed');
  });
});

describe('tm-peers', () => {
  it("shows this tab's peer id and the other tabs, with Migrate for a waiting one", async () => {
    migration.signaling.setPeers([
      { id: 'bob12345', name: 'bob', incoming: true, incomingFrom: null },
      { id: 'carol678', name: 'carol', incoming: false, incomingFrom: null },
    ]);
    await until('tm-peers', '.id', (el) => el.textContent === 'me2345ab');
    await until('tm-peers', 'li.peer[data-peer=carol678]');
    equal(root('tm-peers').querySelector('li.peer[data-peer=carol678] button.migrate'), null, 'no Migrate for a tab that is not waiting');
    (await until<HTMLButtonElement>('tm-peers', 'li.peer[data-peer=bob12345] button.migrate')).click();
    deepEqual(await sent('migrate'), { execute: 'migrate', arguments: { uri: 'webrtc:bob12345' } });
  });

  it('a peer in another browser gets a pairing-code field: the code becomes tls-creds, then migrate', async () => {
    migration.signaling.setPeers([{ id: 'dave2345', name: 'dave', incoming: true, incomingFrom: null, via: 'relay' }]);
    const code = await until<HTMLInputElement>('tm-peers', 'li.peer[data-peer=dave2345] input.code');
    code.value = 'k7d2-9xqf';
    code.dispatchEvent(new Event('input'));
    (await until<HTMLButtonElement>('tm-peers', 'li.peer[data-peer=dave2345] button.migrate')).click();
    deepEqual(await sent('migrate-set-parameters'), { execute: 'migrate-set-parameters', arguments: { 'tls-creds': 'k7d2-9xqf' } });
    deepEqual(await sent('migrate'), { execute: 'migrate', arguments: { uri: 'webrtc:dave2345' } });
    match(root('tm-peers').querySelector('li.peer[data-peer=dave2345] .via')!.textContent!, /another browser/);
  });

  it('"Receive a migration" reloads the page as -incoming webrtc:', async () => {
    const peers = app.shadowRoot!.querySelector('tm-peers')!;
    const went: string[] = [];
    peers.navigate = (url) => went.push(url);
    (await until<HTMLButtonElement>('tm-peers', 'button.receive')).click();
    equal(went.length, 1);
    match(went[0]!, /\?incoming=webrtc:$/);
    equal(qmp.actions.length, 0, 'no QMP command: -incoming is a start-up option');
  });

  it('a failed destination says why and waits again with one click (migrate-incoming), not a reload', async () => {
    machine.setRunstate('inmigrate');
    migration.set({ incomingStatus: 'failed', lastError: 'connection to the source lost: closed' });
    const box = await until('tm-peers', '.incoming.failed');
    match(box.textContent ?? '', /The incoming migration failed:.*connection to the source lost/s);
    equal(root('tm-peers').querySelector('button.receive'), null, 'no reload offered');
    (await until<HTMLButtonElement>('tm-peers', 'button.listen')).click();
    deepEqual(await sent('migrate-incoming'), { execute: 'migrate-incoming', arguments: { uri: 'webrtc:' } });
    // A waiting tab has no guest of its own: no Run, no Load, no Migrate.
    const controls = await until('tm-controls', '.waiting');
    match(controls.textContent ?? '', /Waiting for an incoming migration/);
    equal(root('tm-controls').querySelector('button.run, button.pause'), null);
    equal(root('tm-migrate-panel').querySelector('input#uri'), null);
  });

  it('says when this tab waits for an incoming migration', async () => {
    migration.set({ waitingForIncoming: true, incomingStatus: 'setup' });
    const w = await until('tm-peers', '.waiting');
    match(w.textContent ?? '', /waiting for an incoming migration/);
  });

  it('a tab started with incoming=defer listens through migrate-incoming', async () => {
    machine.setRunstate('inmigrate');
    (await until<HTMLButtonElement>('tm-peers', 'button.listen')).click();
    deepEqual(await sent('migrate-incoming'), { execute: 'migrate-incoming', arguments: { uri: 'webrtc:' } });
  });
});

describe('tm-capabilities', () => {
  it('a switch sends migrate-set-capabilities', async () => {
    const sw = await until<HTMLInputElement>('tm-capabilities', 'li[data-capability=events] input');
    equal(sw.checked, false);
    sw.click();
    deepEqual(await sent('migrate-set-capabilities'), {
      execute: 'migrate-set-capabilities',
      arguments: { capabilities: [{ capability: 'events', state: true }] },
    });
  });

  it("shows QEMU's refusal on the capability's row and turns the switch back", async () => {
    qmp.replies['migrate-set-capabilities'] = { error: { class: 'GenericError', desc: "Capability 'xbzrle' is not supported by tabmig yet" } };
    const sw = await until<HTMLInputElement>('tm-capabilities', 'li[data-capability=xbzrle] input');
    sw.click();
    const err = await until('tm-capabilities', 'li[data-capability=xbzrle] .feedback.failed');
    match(err.textContent ?? '', /Capability 'xbzrle' is not supported by tabmig yet/);
    await eventually(() => !sw.checked, 5000, 'the switch is off again');
  });

  it('lists every capability QEMU reports, each with a description', async () => {
    await until('tm-capabilities', 'li[data-capability=late-block-activate]');
    const rows = root('tm-capabilities').querySelectorAll('li[data-capability]');
    equal(rows.length, MIGRATION_CAPABILITIES.length - 1, 'all but block (compiled out)');
    for (const row of rows) ok(row.querySelector('.desc')?.textContent?.trim(), `${row.getAttribute('data-capability')} has a description`);
  });
});

describe('tm-parameters', () => {
  it('Apply sends only the changed values', async () => {
    const dl = await until<HTMLInputElement>('tm-parameters', '[data-parameter=downtime-limit] input');
    equal(dl.value, '300');
    type(dl, '500');
    const bw = await until<HTMLInputElement>('tm-parameters', '[data-parameter=max-bandwidth] input');
    type(bw, String(migration.params['max-bandwidth'])); // typed, but the same value
    (await until<HTMLButtonElement>('tm-parameters', 'button.apply', (b) => !b.disabled, 'Apply enabled')).click();
    deepEqual(await sent('migrate-set-parameters'), { execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 500 } });
  });

  it("shows QEMU's error by the field it names", async () => {
    qmp.replies['migrate-set-parameters'] = {
      error: { class: 'GenericError', desc: "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds" },
    };
    type(await until<HTMLInputElement>('tm-parameters', '[data-parameter=downtime-limit] input'), '9999999');
    (await until<HTMLButtonElement>('tm-parameters', 'button.apply', (b) => !b.disabled)).click();
    const err = await until('tm-parameters', '[data-parameter=downtime-limit] .field-error');
    match(err.textContent ?? '', /expects an integer in the range of 0 to 2000000 milliseconds/);
  });

  it('reads max-bandwidth in MiB/s as well', async () => {
    const bw = await until<HTMLInputElement>('tm-parameters', '[data-parameter=max-bandwidth] input');
    type(bw, String(8 << 20));
    await until('tm-parameters', '[data-parameter=max-bandwidth] .readable', (el) => el.textContent === '= 8 MiB/s');
  });
});

describe('tm-migration-status', () => {
  const reply: MigrationInfo = {
    status: 'active',
    'total-time': 5062,
    'setup-time': 1,
    'expected-downtime': 442,
    ram: {
      transferred: 61_000_000,
      remaining: 5_138_022,
      total: 64 << 20,
      duplicate: 12283,
      skipped: 0,
      normal: 14000,
      'normal-bytes': 14000 * 4096,
      'dirty-pages-rate': 5421,
      mbps: 123.8,
      'dirty-sync-count': 5,
      'postcopy-requests': 0,
      'page-size': 4096,
      'multifd-bytes': 0,
    },
  };

  it('shows the fields of a query-migrate reply, with units', async () => {
    qmp.replies['query-migrate'] = { return: reply };
    migration.set({ outgoingStatus: 'active' });
    await until('tm-migration-status', '[data-field=total-time]', (el) => el.textContent === '5,062ms');
    equal(root('tm-migration-status').querySelector('[data-field=transferred]')?.textContent, '58.2MiB');
    equal(root('tm-migration-status').querySelector('[data-field=dirty-pages-rate]')?.textContent, '5,421pages/s');
    equal(root('tm-migration-status').querySelector('[data-field=mbps]')?.textContent, '124Mbit/s');
    equal(root('tm-migration-status').querySelector('.round .n')?.textContent, '5');
    const bar = root('tm-migration-status').querySelector('.bar.copied');
    equal(bar?.getAttribute('aria-valuenow'), '92', 'copied = 1 − remaining / total');
  });

  it('asks query-migrate through QMP repeatedly while a migration is active', async () => {
    qmp.replies['query-migrate'] = { return: reply };
    migration.set({ outgoingStatus: 'active' });
    const before = qmp.sent.length;
    await eventually(() => qmp.sent.filter((c) => c.execute === 'query-migrate').length >= 3 && qmp.sent.length > before + 2, 5000, 'polling');
    qmp.replies['query-migrate'] = { return: { status: 'completed', downtime: 42 } };
    migration.set({ outgoingStatus: 'completed' });
    await until('tm-migration-status', '[data-field=downtime]', (el) => el.textContent === '42ms');
    await until('tm-migration-status', '.aside', (el) => el.textContent === 'on change');
  });
});

describe('tm-event-log', () => {
  it('shows a MIGRATION event, newest first, and the migration notes', async () => {
    migration.set({ log: [{ t: Date.now() - 1000, text: 'return path: PONG 1' }] });
    await until('tm-event-log', 'li.migration');
    qmp.emit('STOP');
    qmp.emit('MIGRATION', { status: 'completed' });
    const first = await until('tm-event-log', 'li:first-child', (li) => li.textContent?.includes('MIGRATION'), 'MIGRATION on top');
    match(first.textContent ?? '', /\{"status":"completed"\}/);
    ok(first.classList.contains('tone-ok'), 'completed is green');
    match(root('tm-event-log').querySelector('.log')!.textContent ?? '', /STOP[\s\S]*PONG 1/);
  });
});

describe('tm-migration-charts', () => {
  /** A round as the migration worker records it: 1 s long, 10 MB sent, dirtying 500 pages per second more each round. */
  const round = (n: number, over: Partial<RoundRecord> = {}): RoundRecord => ({
    round: n,
    time: n * 1000,
    duration: 1000,
    dirtyPages: n * 500,
    pagesSent: 2500,
    zeroPages: 10,
    bytesSent: 10e6,
    bandwidth: 10e6,
    remaining: 30e6 - n * 5e6,
    expectedDowntime: 300,
    threshold: 3e6,
    throttle: 0,
    ...over,
  });

  const plotCount = () => root('tm-migration-charts').querySelectorAll('.uplot').length;
  /** Points uPlot holds for the measured series of a chart (its data's x column). */
  const now = (key: string) => root('tm-migration-charts').querySelector(`[data-series=${key}] .now`)?.textContent ?? '';

  it('draws the five per-round charts with uPlot from the round records, the model over them and its explanation', async () => {
    migration.set({ outgoingStatus: 'active' });
    await until('tm-migration-charts', '.empty');
    migration.rounds.append(round(1));
    migration.rounds.append(round(2));
    // The worker wrote to shared memory and said nothing: the chart finds the records itself.
    await eventually(() => plotCount() === 5, 5000, 'five uPlot charts');
    for (const key of ['pages', 'bytes', 'remaining', 'downtime', 'throttle']) ok(root('tm-migration-charts').querySelector(`[data-series=${key}] canvas`), key);
    migration.rounds.append(round(3, { bandwidth: 15e6 }));
    await eventually(() => /15\.0 MB\/s/.test(now('bytes')), 5000, 'the third round');
    match(now('pages'), /1,500 dirty/);
    match(now('remaining'), /14\.3 MiB/);
    // Round 1: 10 MB/s, 500 pages (2 MB) dirtied in 1 s: r = 0.2.
    const model = await until('tm-migration-charts', '[data-model]');
    match(model.textContent ?? '', /bandwidth of 10\.0 MB\/s and a dirty rate of 2\.0 MB\/s/);
    match(model.textContent ?? '', /20 % of the one before/);
  });

  it('starts over when the next migration resets the ring', async () => {
    migration.set({ outgoingStatus: 'active' });
    migration.rounds.append(round(1));
    migration.rounds.append(round(2));
    await eventually(() => plotCount() === 5, 5000, 'charts');
    migration.rounds.reset();
    await until('tm-migration-charts', '.empty');
    equal(plotCount(), 0);
    migration.rounds.append(round(1));
    await eventually(() => plotCount() === 5, 5000, "the new migration's charts");
  });
});

describe('tm-memory-map', () => {
  it('draws every page and counts them by state, from the shared bytes', async () => {
    const legend = (status: string) => root('tm-memory-map').querySelector(`[data-status=${status}] .count`)?.textContent;
    await until('tm-memory-map', 'canvas');
    const canvas = root('tm-memory-map').querySelector('canvas')!;
    equal(canvas.width * canvas.height >= 256, true, 'one pixel per page');
    await eventually(() => legend('clean') === '256', 5000, 'all 256 pages clean');
    // A worker writes the bytes; nobody tells the page.
    migration.pageState.bytes.fill(PageStatus.SENT, 0, 100);
    migration.pageState.bytes.fill(PageStatus.DIRTY, 100, 110);
    await eventually(() => legend('sent') === '100' && legend('dirty') === '10' && legend('clean') === '146', 5000, 'the new counts');
  });

  it('tells a page’s address and state under the pointer, and dumps it with xp on click', async () => {
    const canvas = (await until<HTMLCanvasElement>('tm-memory-map', 'canvas'));
    migration.pageState.bytes.fill(PageStatus.DIRTY, 0, 20);
    const r = canvas.getBoundingClientRect();
    // Page 3 of the first row.
    const at = { clientX: r.left + ((3.5) / canvas.width) * r.width, clientY: r.top + (0.5 / canvas.height) * r.height, bubbles: true };
    canvas.dispatchEvent(new PointerEvent('pointermove', at));
    const probe = await until('tm-memory-map', '#probe', (el) => /0x80003000/.test(el.textContent ?? ''), 'the address');
    match(probe.textContent ?? '', /dirty/);
    canvas.dispatchEvent(new MouseEvent('click', at));
    deepEqual(await sent('human-monitor-command'), { execute: 'human-monitor-command', arguments: { 'command-line': 'xp /16xw 0x80003000' } });
  });
});

const ZERO_ROUND: RoundRecord = { round: 0, time: 0, duration: 0, dirtyPages: 0, pagesSent: 0, zeroPages: 0, bytesSent: 0, bandwidth: 0, remaining: 0, expectedDowntime: 0, threshold: 0, throttle: 0 };

describe('tm-stream-inspector, live', () => {
  it("lists this tab's stream as the worker writes it, RAM summarised per round, nobody telling the page", async () => {
    const counts = { pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0 };
    let round = 1;
    const w = new StreamLogWriter(migration.streamLog, StreamLogSide.SOURCE, { isRam: (n) => n === 'ram', round: () => round, counts: () => counts });
    const sec = (type: number, name: string, sectionId: number, bytes: number) =>
      w.section({ type, name, sectionId, instanceId: 0, version: name === 'ram' ? 4 : 1, offset: 8, bytes, nested: false });
    const rows = () =>
      [...(root('tm-stream-inspector').querySelector('tm-stream-table')?.shadowRoot?.querySelectorAll('[data-live-table] tbody tr') ?? [])].map(
        (tr) => `${(tr as HTMLElement).dataset.kind} ${tr.querySelector('td:nth-child(3) .mono')?.textContent} ${tr.querySelector('.detail')?.textContent ?? ''}`.trim(),
      );
    sec(SectionType.CONFIGURATION, 'configuration', -1, 21);
    sec(SectionType.START, 'ram', 0, 67);
    counts.pages = 100;
    counts.zeroPages = 40;
    sec(SectionType.PART, 'ram', 0, 4096);
    counts.pages = 300;
    counts.xbzrlePages = 5;
    sec(SectionType.PART, 'ram', 0, 4096);
    await eventually(() => rows().length === 3, 5000, 'three rows');
    match(rows()[2]!, /^PART ram round 1: 300 pages: 40 zero, 5 XBZRLE$/);
    round = 2;
    counts.pages = 310;
    sec(SectionType.PART, 'ram', 0, 100);
    sec(SectionType.FULL, 'cpu', 1, 140);
    w.marker(SectionType.EOF, 0, 1);
    await eventually(() => rows().length === 6, 5000, 'the rest of the stream');
    match(rows()[3]!, /^PART ram round 2: 10 pages: 0 zero$/);
    deepEqual(rows().slice(4), ['FULL cpu', 'EOF EOF']);
    // The round count is the round records' (dirty-sync-count): a third round sent no page.
    for (const r of [1, 2, 3]) migration.rounds.append({ ...ZERO_ROUND, round: r });
    migration.set({});
    await eventually(() => /6 items written,.*3 rounds, 2 of them with RAM pages/s.test(root('tm-stream-inspector').querySelector('[data-live-summary]')?.textContent ?? ''), 5000, 'the summary');
  });
});

describe('tm-compare variants', () => {
  it('offers each byte reducer as a labelled checkbox that says what QEMU does with it, off until ticked', async () => {
    for (const id of ['precopy+xbzrle', 'precopy+compress', 'precopy+x-multifd', 'precopy+auto-converge']) {
      const label = await until<HTMLLabelElement>('tm-compare', `[data-variant="${id}"]`);
      const box = label.querySelector('input')!;
      equal(box.checked, false, `${id} off by default`);
      match(label.textContent ?? '', /QEMU \w+/);
      box.click();
      await eventually(() => box.checked, 2000, `${id} ticked`);
    }
    equal((await until<HTMLInputElement>('tm-compare', '[data-variant="precopy"] input')).checked, true, 'plain precopy on by default');
  });
});

describe('tm-snapshots', () => {
  it('Save sends migrate to idb:NAME', async () => {
    type(await until<HTMLInputElement>('tm-snapshots', 'input#snap-name'), 'lesson1');
    (await until<HTMLButtonElement>('tm-snapshots', 'form.save button')).click();
    deepEqual(await sent('migrate'), { execute: 'migrate', arguments: { uri: 'idb:lesson1' } });
  });

  it('lists the snapshots; Restore reloads the tab as -incoming idb:NAME', async () => {
    snapshots.snapshots = [{ name: 'lesson1', size: 5 << 20, created: Date.now() }];
    snapshots.changed();
    const row = await until('tm-snapshots', 'li[data-snapshot=lesson1]');
    match(row.textContent ?? '', /5 MiB/);
    const went: string[] = [];
    app.shadowRoot!.querySelector('tm-snapshots')!.navigate = (url) => went.push(url);
    row.querySelector<HTMLButtonElement>('button.restore')!.click();
    equal(went.length, 1);
    match(went[0]!, /\?incoming=idb:lesson1$/);
  });

  it('a picked .qemu file is imported, then offered for restore', async () => {
    const panel = app.shadowRoot!.querySelector('tm-snapshots')!;
    await until('tm-snapshots', '.drop');
    await panel.importFile(new File([new Uint8Array(1234)], 'class-demo.qemu'));
    deepEqual(snapshots.imported, [{ name: 'class-demo', size: 1234, overwrite: false }]);
    deepEqual(snapshots.expected, [{ machineType: 'tabmig-rv32-virt', ramSize: machine.ramSize }], 'checked against this tab');
    await until('tm-snapshots', 'button.restore-imported');
    await until('tm-snapshots', 'li[data-snapshot=class-demo]');
  });

  it('a file whose name is taken replaces the old snapshot only after the user says so', async () => {
    snapshots.snapshots = [{ name: 'lesson', size: 99, created: Date.now() }];
    snapshots.changed();
    const panel = app.shadowRoot!.querySelector('tm-snapshots')!;
    await until('tm-snapshots', 'li[data-snapshot=lesson]');
    await panel.importFile(new File([new Uint8Array(50)], 'lesson.qemu'));
    equal(snapshots.imported.length, 0, 'nothing imported yet');
    const alert = await until('tm-snapshots', '[role=alert]', (el) => /already exists/.test(el.textContent ?? ''));
    match(alert.textContent ?? '', /A snapshot named 'lesson' already exists/);
    // "Keep the old one" drops the file.
    alert.querySelector<HTMLButtonElement>('button.keep-snapshot')!.click();
    await eventually(() => !root('tm-snapshots').querySelector('button.replace-snapshot'), 5000, 'the question to go');
    equal(snapshots.snapshots[0]!.size, 99);
    // Asked again, this time the user replaces it.
    await panel.importFile(new File([new Uint8Array(50)], 'lesson.qemu'));
    (await until<HTMLButtonElement>('tm-snapshots', 'button.replace-snapshot')).click();
    await eventually(() => snapshots.imported.length === 1, 5000, 'the replacing import');
    deepEqual(snapshots.imported, [{ name: 'lesson', size: 50, overwrite: true }]);
    await until('tm-snapshots', 'button.restore-imported');
  });

  it('a stream file dropped anywhere on the page is imported', async () => {
    await until('tm-snapshots', '.drop');
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(77)], 'dropped.qemu'));
    window.dispatchEvent(new DragEvent('dragenter', { dataTransfer: data }));
    await until('tm-snapshots', '.overlay');
    window.dispatchEvent(new DragEvent('drop', { dataTransfer: data, cancelable: true }));
    await eventually(() => snapshots.imported.length === 1, 5000, 'the import');
    deepEqual(snapshots.imported, [{ name: 'dropped', size: 77, overwrite: false }]);
    equal(root('tm-snapshots').querySelector('.overlay'), null, 'the drop overlay is gone');
  });
});

describe('page addresses', () => {
  it('a destination keeps -m and -name and drops the rest', () => {
    equal(incomingPageUrl('http://h:5174/?m=256M&S&name=alice&global=x', 'webrtc:'), 'http://h:5174/?incoming=webrtc:&m=256M&name=alice&global=x');
    equal(incomingPageUrl('http://h/app/?name=a%20b', 'idb:snap 1'), 'http://h/app/?incoming=idb:snap%201&name=a%20b');
  });
});

describe('tm-pairing', () => {
  it('sets the pairing secret as tls-creds and saves ICE servers through QMP', async () => {
    const panel = await until<HTMLElement>('tm-pairing', '#secret');
    const input = panel as HTMLInputElement;
    input.value = 'class-42';
    input.dispatchEvent(new Event('input'));
    (await until<HTMLButtonElement>('tm-pairing', 'button.set-secret')).click();
    deepEqual(await sent('migrate-set-parameters'), { execute: 'migrate-set-parameters', arguments: { 'tls-creds': 'class-42' } });
    const ice = await until<HTMLInputElement>('tm-pairing', '#ice');
    ice.value = 'stun:127.0.0.1:3478';
    ice.dispatchEvent(new Event('input'));
    (await until<HTMLButtonElement>('tm-pairing', 'button.set-ice')).click();
    deepEqual(await sent('x-tabmig-set-ice'), { execute: 'x-tabmig-set-ice', arguments: { servers: 'stun:127.0.0.1:3478' } });
    localStorage.removeItem('tabmig-ice');
  });
});
