// The migration service: the one place on the main thread that knows about migration. QMP
// commands, HMP and the UI all go through it. It holds the capabilities and parameters, the
// outgoing migration's shared block and status, the incoming side's status, the migration
// blockers, and it announces every state change (as QMP MIGRATION events when `events` is on).

import type { BlockerRefusal } from '../guest/control-block.js';
import { HOSTDEV_BLOCKER_REASON, HOSTDEV_ID } from '../guest/devices/host-device.js';
import type { Machine, MachineEventMap } from '../guest/machine.js';
import { QmpError } from '../qapi/qmp-error.js';
import { IncomingConsent } from '../transport/consent.js';
import type { Signaling } from '../transport/signaling.js';
import { parseMigrationUri, type MigrationUri } from '../transport/uri.js';
import { IncomingMigration, type IncomingSource } from './incoming-migration.js';
import { MigCounter, MigWord, MigrationBlock } from './migration-block.js';
import { PageState } from './page-state.js';
import { Commit, HoldPoints, SOURCE_HOLD_POINTS, newMigrationId, type HoldPoint } from './switchover.js';
import { GuestOwnership, RESET_INMIGRATE_TEXT, RESET_POSTCOPY_TEXT, RESET_SWITCHOVER_TEXT, SPENT_CONT_TEXT, SPENT_MIGRATE_TEXT, pagesMissingText, type Ownership } from './ownership.js';
import { DoubtResolver, askInPage, fateConversation, isFateAnswer, isFateQuestion, registerInPageSource, type DoubtOutcome, type FateAnswer, type FateQuestion, type SourceFate } from './guest-fate.js';
import { whenLockFree } from '../transport/page-lock.js';
import type { SignalMessage } from '../transport/signaling.js';
import { RoundRecords } from './round-records.js';
import { StreamLog } from './stream-log.js';
import { PAGE_SIZE } from '../guest/memory-map.js';
import { destinationMigrationInfo, sourceMigrationInfo, type MigrationInfo } from './migration-info.js';
import { MigrationOptions, type OptionsContext } from './options.js';
import { ERR } from './options-schema.js';
import { OutgoingMigration } from './outgoing-migration.js';
import { PostcopyBlock } from './postcopy/postcopy-block.js';
import { postcopyHostSupport } from './postcopy/postcopy-support.js';
import { MigrationStateMachine, isFinished, isSetupOrActive, type MigrationStatus } from './state.js';

/** The machine type written in (and required of) every stream's configuration section. */
export const MACHINE_TYPE = 'tabmig-rv32-virt';

/** migrate_add_blocker's error when it refuses a blocker. */
export function blockerRefusalText(why: BlockerRefusal, reason: string): string {
  const because = why === 'only-migratable' ? '--only-migratable' : 'migration in progress';
  return `disallowing migration blocker (${because}) for: ${reason}`;
}

export interface MigrationEventSink {
  emit(event: string, data?: Record<string, unknown>): unknown;
}

export type MigrationLogEntry = { t: number; text: string };

/** The stream of a finished `file:NAME` migration (the 'file' event's detail). */
export interface MigrationFile {
  name: string;
  blob: Blob;
}

export class MigrationService extends EventTarget {
  readonly block = new MigrationBlock();
  /** One byte per guest page: what migration knows of it (source or destination side). */
  readonly pageState: PageState;
  /** Per-round records of the outgoing migration, written by the migration worker. */
  readonly rounds = new RoundRecords();
  /** Each section and command of this tab's migration stream, as its worker writes or reads it. */
  readonly streamLog = new StreamLog();
  /** Postcopy's source block (start request, page requests, recovery words). */
  readonly postcopy: PostcopyBlock;
  /** migrate-recover was asked for this pause (QEMU's postcopy_recover_triggered). */
  private recoverTriggered = false;
  private outStatus: MigrationStatus = 'none';
  private outError: string | null = null;
  private outgoing: OutgoingMigration | null = null;
  private readonly incomingState = new MigrationStateMachine((to) => {
    this.note(`incoming migration ${to}${to === 'failed' && this.inError ? `: ${this.inError}` : ''}`);
    this.announce(to);
  });
  private inError: string | null = null;
  private incoming: IncomingMigration | null = null;
  private incomingStarted = false;
  /** A failed incoming migration left the tab in 'inmigrate': migrate-incoming may try again. */
  private incomingRetry = false;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private incomingBytes = 0;
  private readonly blockers = new Map<string, string>();
  readonly log: MigrationLogEntry[] = [];
  /** Who may migrate into this tab (consent, pairing code); see transport/consent.ts. */
  readonly consent: IncomingConsent;
  /** ICE servers and policy for webrtc: connections (?ice= and the settings panel). */
  ice: { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy } = {};

  constructor(
    readonly machine: Machine,
    readonly options: MigrationOptions,
    private readonly events: MigrationEventSink,
    readonly signaling: Signaling | null,
    /** -incoming: set when the page was started to receive a migration. */
    private readonly deferredIncoming: boolean,
    private readonly autostart: () => boolean,
    /** False for a tab a link opened as `?incoming=webrtc:`: it waits for the person's consent. */
    agreed = true,
  ) {
    super();
    this.consent = new IncomingConsent(agreed);
    this.consent.addEventListener('agree', () => {
      this.note('this tab agreed to receive a migration');
      this.changed();
    });
    this.consent.addEventListener('failed', () => {
      const n = this.consent.failedAttempts;
      this.note(`pairing: ${n} failed attempt${n === 1 ? '' : 's'} so far; the pairing code changes after each`);
      this.changed();
    });
    // Dropped and refused signaling goes to the event log.
    signaling?.addEventListener('note', (e) => {
      this.note((e as CustomEvent<string>).detail);
      this.changed();
    });
    this.pageState = new PageState(machine.ramSize / PAGE_SIZE);
    this.postcopy = new PostcopyBlock(machine.ramSize / PAGE_SIZE);
    // The vCPU decides on the guest's blockers by itself, so it must know the rule.
    machine.control.onlyMigratable = options.onlyMigratable;
    // QEMU lets a source continue after its guest moved (and risks two copies); tabmig does not:
    // once the switchover was committed the guest is the destination's, and this tab is spent.
    this.ownership = new GuestOwnership(machine.runstate === 'inmigrate' ? 'empty' : 'owner');
    machine.contRefusal = () => this.contRefusal();
    machine.resetRefusal = () => this.resetRefusal();
    machine.addEventListener('load', () => this.guestLoaded());
    machine.addEventListener('runstate', () => this.ownerRan());
    signaling?.addEventListener('signal', (e) => this.onFateQuestion(e as CustomEvent<SignalMessage>));
    machine.addEventListener('hostdev', (e) => this.onHostDevice((e as CustomEvent<MachineEventMap['hostdev']>).detail));
  }

  // ---- status --------------------------------------------------------------------------------

  get outgoingStatus(): MigrationStatus {
    return this.outStatus;
  }

  get incomingStatus(): MigrationStatus {
    return this.incomingState.status;
  }

  /** The URI of the last outgoing migration, as given to `migrate` ('' before the first). */
  get outgoingUri(): string {
    return this.outUri;
  }
  private outUri = '';

  get lastError(): string | null {
    return this.outError ?? this.inError;
  }

  get incomingBytesReceived(): number {
    return this.incomingBytes;
  }

  /** What migrate-set-capabilities checks against (QEMU looks at the outgoing state and runstate). */
  optionsContext(): OptionsContext {
    return { status: this.outStatus, inmigrate: this.machine.runstate === 'inmigrate', postcopyRamSupportedByHost: postcopyHostSupport };
  }

  queryMigrate(): MigrationInfo {
    // qmp_query_migrate fills the destination's view first and the source's over it: a VM that
    // received a migration and then sent one on reports the outgoing one. (This used to prefer
    // the incoming status, so a tab that had been a destination showed 'completed' for ever.)
    if (this.outStatus === 'none') {
      const info = destinationMigrationInfo(this.incomingState.status, this.doubtText ?? this.inError);
      // QEMU's fill_destination_postcopy_migration_info: with postcopy-blocktime on at the destination.
      if (this.incomingBlocktime && this.incomingState.status !== 'none') {
        const b = this.machine.pageGate.blocktime();
        info['postcopy-blocktime'] = b.total;
        info['postcopy-vcpu-blocktime'] = b.perVcpu;
      }
      return info;
    }
    const o = this.options;
    return sourceMigrationInfo(this.block, this.outStatus, this.outError, this.machine.control.throttlePercent, Date.now(), {
      xbzrle: o.capability('xbzrle'),
      xbzrleCacheSize: o.xbzrleCacheSize,
      compress: o.capability('compress'),
    });
  }

  /** Mirrors a status change already made in the shared block (by a worker or by us). */
  private setOutgoing(to: MigrationStatus): void {
    this.outStatus = to;
    this.noteSpent();
    if (isFinished(to)) this.guestReturned();
    this.tickWhileMigrating(!isFinished(to));
    if (isFinished(to)) {
      // The vCPU refuses blockers while a migration is in progress (ControlBlock.tryEnableHostDevice).
      this.machine.control.endMigration();
    }
    this.note(`migration ${to}${to === 'failed' && this.outError ? `: ${this.outError}` : ''}`);
    this.announce(to);
  }

  /** The incoming side's status lives on this thread only; the state machine checks each step. */
  private setIncoming(to: MigrationStatus, error?: string): void {
    if (error) this.inError ??= error;
    // A received guest is this machine's own (a postcopy one from RUN on, its pages still coming).
    if (to === 'completed' || to === 'postcopy-active') this.ownership.own();
    // Checked against the transition table: a wrong step is our bug, not the user's.
    this.incomingState.set(this.incomingState.status, to);
    // A failed load that started nothing (discarded, or its source went silent) leaves the tab
    // waiting in 'inmigrate': it may receive another migration (migrate-incoming again).
    if (to === 'failed' && this.machine.runstate === 'inmigrate') {
      this.incomingStarted = false;
      this.incomingRetry = true;
      this.signaling?.setIncoming(false);
    }
  }

  /**
   * Live panels (query-migrate's counters) re-render on 'change': while a migration runs the
   * counters move without a status change, so say 'change' five times a second. (Charts read
   * the round records and the memory map the page state directly, on animation frames.)
   */
  private tickWhileMigrating(on: boolean): void {
    if (on && this.ticker === null) this.ticker = setInterval(() => this.changed(), 200);
    if (!on && this.ticker !== null) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  private announce(status: MigrationStatus): void {
    if (this.options.useEvents) this.events.emit('MIGRATION', { status });
    this.changed();
  }

  private note(text: string): void {
    this.log.push({ t: Date.now(), text });
    if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
  }

  private changed(): void {
    this.dispatchEvent(new Event('change'));
  }

  // ---- blockers ------------------------------------------------------------------------------

  /** QEMU's migrate_add_blocker: refused under only-migratable or while a migration runs. */
  /** `cont`/`stop` while inmigrate changed autostart (MachineControl.onAutostartChange). */
  autostartChanged(): void {
    this.incoming?.autostartChanged();
  }

  addBlocker(id: string, reason: string): void {
    if (this.options.onlyMigratable) throw QmpError.generic(blockerRefusalText('only-migratable', reason));
    if (isSetupOrActive(this.outStatus) || this.outStatus === 'cancelling') {
      throw QmpError.generic(blockerRefusalText('migration-in-progress', reason));
    }
    this.blockers.set(id, reason);
    this.changed();
  }

  removeBlocker(id: string): void {
    if (this.blockers.delete(id)) this.changed();
  }

  get activeBlockers(): string[] {
    return [...this.blockers.values()];
  }

  /** The guest's host device: the vCPU already applied migrate_add_blocker's rules; here the
   *  blocker is recorded, or the refusal logged as QEMU reports it. */
  private onHostDevice({ enabled, refused }: MachineEventMap['hostdev']): void {
    if (refused) this.note(blockerRefusalText(refused, HOSTDEV_BLOCKER_REASON));
    if (!enabled) {
      this.removeBlocker(HOSTDEV_ID);
      if (refused) this.changed();
      return;
    }
    try {
      this.addBlocker(HOSTDEV_ID, HOSTDEV_BLOCKER_REASON);
    } catch (e) {
      // Cannot happen while the control block's guard holds; migrate() still checks it.
      this.note(e instanceof QmpError ? e.desc : String(e));
    }
  }

  // ---- outgoing ------------------------------------------------------------------------------

  /** qmp_migrate: checks, then starts; the migration itself runs on in the workers. */
  migrate(uriText: unknown, flags: { blk?: boolean; inc?: boolean; detach?: boolean; resume?: boolean } = {}): void {
    if (flags.resume) {
      if (this.outStatus !== 'postcopy-paused') throw QmpError.generic('Cannot resume if there is no paused migration');
      // A resume skips migrate_init: the paused migration goes on through a new connection.
      this.outgoing?.resume(parseMigrationUri(uriText, 'outgoing'));
      return;
    }
    if (isSetupOrActive(this.outStatus) || this.outStatus === 'cancelling' || this.outStatus === 'colo') {
      throw QmpError.generic(ERR.migrationActive);
    }
    if (this.machine.runstate === 'inmigrate') throw QmpError.generic('Guest is waiting for an incoming migration');
    // Only an owner migrates or is saved (DESIGN §10), whatever the URI: checked before anything
    // of the last migration (its commit word above all) is touched.
    const notOwner = this.migrateRefusal();
    if (notOwner) throw QmpError.generic(notOwner);
    const blocker = this.activeBlockers[0];
    if (blocker) throw QmpError.generic(blocker);
    if (flags.blk || flags.inc) throw QmpError.generic('QEMU compiled without old-style (blk/-b, inc/-i) block migration');
    let uri: MigrationUri | null = null;
    let badUri: unknown = null;
    try {
      uri = parseMigrationUri(uriText, 'outgoing');
    } catch (e) {
      badUri = e;
    }
    // The guest may have enabled its host device a moment ago, before this thread heard of it.
    if (!this.machine.control.tryBeginMigration()) throw QmpError.generic(HOSTDEV_BLOCKER_REASON);

    // migrate_init: a new migration, with an id of its own that every control message names.
    this.rememberFate();
    this.block.reset('setup', newMigrationId());
    this.outgoingPeer = uri?.kind === 'webrtc' ? (uri.peer ?? null) : null;
    this.outgoingLive = uri?.kind === 'webrtc' || uri?.kind === 'loopback';
    if (uri?.kind === 'loopback') registerInPageSource(this.block.migrationId, this);
    this.block.set(MigCounter.START_TIME, Date.now());
    this.block.set(MigCounter.EXPECTED_DOWNTIME, this.options.downtimeLimit);
    this.outError = null;
    this.outUri = typeof uriText === 'string' ? uriText : '';
    this.rounds.reset();
    // migrate-start-postcopy before migrate is remembered (QEMU keeps start_postcopy set).
    const early = this.postcopyAskedEarly;
    this.postcopy.reset();
    if (early) this.postcopy.requestStart();
    this.postcopyAskedEarly = false;
    this.setOutgoing('setup');

    // QEMU's qmp_migrate: an unknown protocol fails the migration it just set up.
    if (!uri) {
      this.block.compareAndSet('setup', 'failed');
      this.setOutgoing('failed');
      throw badUri;
    }
    const out = new OutgoingMigration(this.machine, this.block, this.options.clone(), uri, this.signaling, MACHINE_TYPE, {
      status: (_from, to) => this.setOutgoing(to),
      error: (message) => (this.outError ??= message),
      log: (text) => this.note(text),
      // The page (which has a document) turns this into a download; see src/main.ts.
      file: (name, blob) => this.dispatchEvent(new CustomEvent<MigrationFile>('file', { detail: { name, blob } })),
    }, this.pageState, this.rounds, this.postcopy, this.ice, this.streamLog);
    this.outgoing = out;
    void out.start();
  }

  /**
   * qmp_migrate_cancel: from any setup or active state; a no-op otherwise, as in QEMU, and a
   * no-op once the migration worker committed the switchover (the guest belongs to the
   * destination from that instant, even while the source still waits for its confirmation).
   */
  cancel(): void {
    for (;;) {
      const s = this.block.status;
      if (!isSetupOrActive(s)) return;
      // Whoever moves the commit word first wins: the worker (commit) or this cancel (abandon).
      const commit = Atomics.compareExchange(this.block.words, MigWord.COMMIT, Commit.OPEN, Commit.ABANDONED);
      if (commit === Commit.COMMITTED) return;
      if (this.block.compareAndSet(s, 'cancelling')) {
        this.setOutgoing('cancelling');
        this.outgoing?.cancel();
        return;
      }
    }
  }

  // ---- fault tests (x-tabmig-hold, x-tabmig-release, x-tabmig-drop-link) ----------------------

  /** The hold points of this tab's side of a migration: the source's, or the destination's. */
  private holdsFor(point: HoldPoint): HoldPoints | null {
    if (SOURCE_HOLD_POINTS.includes(point)) return new HoldPoints(this.block.words, MigWord.HOLD);
    return this.incoming?.holds ?? null;
  }

  /** Arms a hold point: the worker that passes it waits there until release(). */
  hold(point: HoldPoint): void {
    const holds = this.holdsFor(point);
    if (!holds) throw QmpError.generic(`No incoming migration to hold at '${point}'`);
    holds.arm(point);
  }

  /** Lets every held worker of this tab go on, and disarms its points. */
  releaseHolds(): void {
    new HoldPoints(this.block.words, MigWord.HOLD).release();
    this.incoming?.holds?.release();
  }

  /** Where a worker of this tab is held (or was last held), or null. */
  heldAt(): HoldPoint | null {
    return new HoldPoints(this.block.words, MigWord.HOLD).reached ?? this.incoming?.holds?.reached ?? null;
  }

  /**
   * Fault tests (x-tabmig-held's `committed`): whether this tab's last outgoing migration passed
   * the point of no return. Its error text may not say so (QEMU keeps the first error, and a
   * lost link is often reported before the worker's own account).
   */
  switchoverCommitted(): boolean {
    return Atomics.load(this.block.words, MigWord.COMMIT) === Commit.COMMITTED;
  }

  /** Fault tests (x-tabmig-drop-link): breaks the outgoing migration's link as a network would. */
  dropLink(): boolean {
    return this.outgoing?.dropLink() ?? this.incoming?.dropLink?.() ?? false;
  }

  /** Fault tests (x-tabmig-close-return-path): the destination hangs up its return path. */
  closeReturnPath(): boolean {
    return this.incoming?.closeReturnPath() ?? false;
  }

  /** qmp_migrate_continue: leaves the pre-switchover pause. */
  continue(state: MigrationStatus): void {
    if (this.outStatus !== state) throw QmpError.generic(`Migration not in expected state: ${this.outStatus}`);
    this.block.bumpWord(MigWord.CONTINUE);
  }

  // ---- postcopy --------------------------------------------------------------------------------

  private postcopyAskedEarly = false;
  private incomingBlocktime = false;

  /** qmp_migrate_start_postcopy. */
  startPostcopy(): void {
    if (!this.options.postcopyRam) throw QmpError.generic('Enable postcopy with migrate_set_capability before the start of migration');
    if (this.outStatus === 'none') throw QmpError.generic('Postcopy must be started after migration has been started');
    // Not an error once the migration finished: that would race with the command (QEMU's note).
    if (isSetupOrActive(this.outStatus)) this.postcopy.requestStart();
  }

  /** qmp_migrate_pause: the source's or the destination's link, during postcopy-active. */
  pause(): void {
    if (this.outStatus === 'postcopy-active') {
      this.outgoing?.pause();
      return;
    }
    if (this.incomingState.status === 'postcopy-active') {
      if (!this.incoming?.dropLink()) throw QmpError.generic('Failed to pause destination migration');
      return;
    }
    throw QmpError.generic('migrate-pause is currently only supported during postcopy-active state');
  }

  /** qmp_migrate_recover: the destination listens again for the paused postcopy. */
  recover(uriText: unknown): void {
    if (this.incomingState.status !== 'postcopy-paused') throw QmpError.generic('Migrate recover can only be run when postcopy is paused.');
    if (this.recoverTriggered) throw QmpError.generic('Migrate recovery is triggered already');
    const uri = parseMigrationUri(uriText, 'incoming');
    this.recoverTriggered = true;
    this.incoming?.recover(uri);
  }

  /** x-tabmig-postcopy-info: this tab's page gate (destination) and request queue (source). */
  postcopyInfo(): Record<string, unknown> {
    const g = this.machine.pageGate;
    const b = g.blocktime();
    return {
      'gate-active': g.active,
      'missing-pages': g.active ? g.missingCount() : 0,
      faults: b.faults,
      'blocktime-ms': b.total,
      'vcpu-blocktime-ms': b.perVcpu,
      'start-requested': this.postcopy.startRequested,
      'queued-requests': this.postcopy.hasRequests,
      'page-states': this.pageState.counts(),
      'last-error': this.lastError,
      'recent-waits-us': g.recentWaits(),
      log: this.log.slice(-10).map((e) => e.text),
    };
  }

  /** While postcopy is active or paused the guest's memory is split between two tabs. */
  get postcopyInProgress(): boolean {
    const split = (s: MigrationStatus) => s === 'postcopy-active' || s === 'postcopy-paused' || s === 'postcopy-recover';
    return split(this.outStatus) || split(this.incomingState.status);
  }

  /** migrate-set-parameters: checked and applied by the options; a live limit follows at once. */
  setParameters(args: unknown): void {
    const changed = this.options.setParameters(args);
    if (changed.includes('max-bandwidth')) this.outgoing?.setRateLimit(this.options.maxBandwidth);
    // QEMU's migration thread reads downtime-limit live too (migration_update_counters); the
    // worker had only the value from the start, so raising it could not end a stuck migration.
    if (changed.includes('downtime-limit')) this.outgoing?.setDowntimeLimit(this.options.downtimeLimit);
    if (changed.includes('max-postcopy-bandwidth')) this.outgoing?.setPostcopyRateLimit(this.options.parameter('max-postcopy-bandwidth'));
    this.changed();
  }

  /** The options changed behind the service's back (legacy and HMP commands): apply them live. */
  optionsChanged(): void {
    this.outgoing?.setRateLimit(this.options.maxBandwidth);
    this.outgoing?.setDowntimeLimit(this.options.downtimeLimit); // migrate_set_downtime, HMP
    this.changed();
  }

  setCapabilities(list: unknown): void {
    this.options.setCapabilities(list, this.optionsContext());
    this.changed();
  }

  // ---- incoming ------------------------------------------------------------------------------

  /** qmp_migrate_incoming (and -incoming at start-up, with `fromCommandLine`). */
  migrateIncoming(uriText: unknown, opts: { fromCommandLine?: boolean; file?: Blob } = {}): void {
    if (!opts.fromCommandLine) {
      if (!this.deferredIncoming && !this.incomingRetry) throw QmpError.generic("For use with '-incoming defer'");
      if (this.incomingStarted) throw QmpError.generic('The incoming migration has already been started');
      // migrate-incoming typed by the person is consent.
      this.consent.agree();
    }
    const uri = parseMigrationUri(uriText, 'incoming');
    if (uri.kind === 'defer') return;
    this.incomingBlocktime = this.options.capability('postcopy-blocktime');
    // The live options: the incoming thread takes them when the source connects, so what is
    // switched on in the waiting tab counts (QEMU reads the destination's capabilities then).
    const inc = new IncomingMigration(this.machine, this.options, uri, this.signaling, MACHINE_TYPE, {
      status: (to, error) => {
        if (to === 'active') this.incomingBlocktime = this.options.capability('postcopy-blocktime');
        if (to === 'postcopy-paused') this.recoverTriggered = false;
        this.setIncoming(to, error);
      },
      log: (text) => this.note(text),
      progress: (bytes) => {
        this.incomingBytes = bytes;
        this.changed();
      },
      autostart: this.autostart,
      inDoubt: () => this.inDoubt(inc),
    }, opts.file, this.pageState, {
      policy: this.consent.policy(() => this.options.tlsCreds),
      ice: this.ice,
    }, this.streamLog);
    try {
      inc.start();
    } catch (e) {
      inc.dispose();
      throw e;
    }
    this.incoming = inc;
    this.incomingStarted = true;
    if (uri.kind === 'webrtc') this.signaling?.setIncoming(true, uri.peer);
  }

  get waitingForIncoming(): boolean {
    return this.incoming !== null && (this.incomingState.status === 'setup' || this.incomingState.status === 'active');
  }

  // ---- guest ownership (DESIGN §10) ----------------------------------------------------------

  private readonly ownership: GuestOwnership;
  /** Whether the last outgoing migration went to another machine (webrtc:, loopback:): a snapshot does not. */
  private outgoingLive = false;
  /** The migration whose commit spent this machine (noteSpent counts each once). */
  private spentBy = 0;
  /** The peer the last outgoing migration went to (webrtc:): only it may ask what became of it. */
  private outgoingPeer: string | null = null;
  /** Earlier outgoing migrations of this tab and how each ended, for a destination in doubt. */
  private readonly pastFates = new Map<number, { fate: 'committed' | 'resumed'; peer: string | null }>();
  /** The in-doubt destination's question to its source, while it is out. */
  private doubt: DoubtResolver | null = null;
  /** Why this destination's copy is in doubt, or how the doubt ended: query-migrate's error-desc. */
  private doubtText: string | null = null;

  /** Who holds the guest here: empty, owner, spent or in doubt (x-tabmig-ownership). */
  get guestOwnership(): Ownership {
    this.noteSpent();
    return this.ownership.state;
  }

  /**
   * A live migration passed its point of no return (commit, or postcopy's RUN): the guest left.
   * Once per migration: a guest loaded afterwards is this machine's own.
   */
  private noteSpent(): void {
    const id = this.block.migrationId;
    if (!this.outgoingLive || this.spentBy === id || !this.switchoverCommitted()) return;
    // A source that runs its guest again (a postcopy package its destination refused) keeps it.
    if (this.machine.runstate === 'running') return;
    this.spentBy = id;
    this.ownership.spend();
  }

  /**
   * A migration that ended with the guest running here again kept it here, whatever its commit
   * word said (a postcopy package its destination refused resumes the source).
   */
  private guestReturned(): void {
    if (this.ownership.spent && this.spentBy === this.block.migrationId && this.machine.runstate === 'running') this.ownership.own();
  }

  private contRefusal(): string | null {
    this.noteSpent();
    if (this.ownership.spent) return SPENT_CONT_TEXT;
    if (this.ownership.inDoubt && this.doubt && this.incomingState.status === 'active') {
      return 'The source is being asked whether it committed the switchover: this paused copy runs by itself if it did (query-migrate says what came of it)';
    }
    return null;
  }

  /** Why `migrate` (any URI) may not take this machine's guest anywhere, or null. */
  private migrateRefusal(): string | null {
    this.noteSpent();
    if (this.ownership.spent) return SPENT_MIGRATE_TEXT;
    if (this.ownership.inDoubt) {
      return 'The paused copy here is in doubt (its source may still run the guest): cont it first if the source does not, then migrate it';
    }
    const gate = this.machine.pageGate;
    if (gate.active && gate.missingCount() > 0) return pagesMissingText(gate.missingCount());
    return null;
  }

  /** Why system_reset (or x-tabmig-load) would damage a migration in flight now, or null. */
  private resetRefusal(): string | null {
    if (this.machine.runstate === 'inmigrate') return RESET_INMIGRATE_TEXT;
    const s = this.incomingState.status;
    if (s === 'postcopy-active' || s === 'postcopy-paused' || s === 'postcopy-recover') return RESET_POSTCOPY_TEXT;
    if (this.machine.runstate === 'finish-migrate') return RESET_SWITCHOVER_TEXT;
    return null;
  }

  /** x-tabmig-load: a new guest of this machine's own, whatever the machine held before. */
  private guestLoaded(): void {
    this.endDoubt();
    this.ownership.own();
    this.changed();
  }

  /** A kept copy that runs (`cont` by the person, or the doubt resolved) is the guest: no more doubt. */
  private ownerRan(): void {
    if (this.ownership.inDoubt && this.machine.runstate === 'running') {
      this.endDoubt();
      this.ownership.own();
      this.note('the kept copy runs: it is the guest now');
      this.changed();
    }
  }

  /** Keeps the fate of the migration that just ended, before the block starts over for the next. */
  private rememberFate(): void {
    const id = this.block.migrationId;
    if (id === 0 || !this.outgoingLive) return;
    this.pastFates.set(id, { fate: this.switchoverCommitted() ? 'committed' : 'resumed', peer: this.outgoingPeer });
    while (this.pastFates.size > 32) this.pastFates.delete(this.pastFates.keys().next().value!);
  }

  /**
   * What became of this tab's migration `id`, for its destination in doubt. One still undecided
   * is decided now: the destination asks because its link broke, so the commit could never reach
   * it; the commit word is abandoned (as migrate_cancel does) and the guest stays here.
   */
  fateOf(id: number): SourceFate {
    if (id !== 0 && id === this.block.migrationId && this.outgoingLive) {
      for (;;) {
        const commit = Atomics.load(this.block.words, MigWord.COMMIT);
        if (commit === Commit.COMMITTED) return 'committed';
        if (commit === Commit.ABANDONED) return 'resumed';
        if (Atomics.compareExchange(this.block.words, MigWord.COMMIT, Commit.OPEN, Commit.ABANDONED) === Commit.OPEN) {
          this.outError ??= 'The destination lost the connection after it was ready, before the commit: the guest stays here';
          this.note('the destination, in doubt, asked: the switchover is abandoned and the guest stays here');
          this.block.setWord(MigWord.LINK_LOST, 1);
          return 'resumed';
        }
      }
    }
    return this.pastFates.get(id)?.fate ?? 'unknown';
  }

  /** Whether `peer` may ask about migration `id`: the destination it went to (webrtc:). */
  private askedByItsDestination(id: number, peer: string): boolean {
    if (id === this.block.migrationId) return this.outgoingLive && this.outgoingPeer === peer;
    return this.pastFates.get(id)?.peer === peer;
  }

  /** Source side: a destination in doubt asks over signaling what became of a migration. */
  private onFateQuestion(e: CustomEvent<SignalMessage>): void {
    const m = e.detail;
    if (m.kind !== 'signal' || !isFateQuestion(m.data)) return;
    e.preventDefault();
    const q: FateQuestion = m.data;
    // Only the destination of that migration is told (and may make an open one decide).
    if (!this.askedByItsDestination(q.migration, m.from)) return;
    const answer: FateAnswer = { fate: 'answer', migration: q.migration, outcome: this.fateOf(q.migration) };
    this.signaling?.sendSignal(m.from, m.conn, answer);
  }

  /** Destination side: the link broke between 'ready' and the verdict; ask the source what it did. */
  private inDoubt(inc: IncomingMigration): void {
    if (this.incoming !== inc) return;
    this.ownership.doubt();
    this.doubtText = null;
    this.note("the link to the source broke after this side was ready and before the switchover's commit: asking the source what it did");
    this.changed();
    const source = inc.source;
    this.doubt = source ? this.askSource(source, (o) => this.doubtResolved(inc, o)) : null;
    if (!this.doubt) this.doubtResolved(inc, 'unreachable');
  }

  /** Starts asking `source` (in the page, or over signaling, and its page's Web Lock); null if it cannot be asked. */
  private askSource(source: IncomingSource, onOutcome: (o: DoubtOutcome) => void): DoubtResolver | null {
    const { migration, peer } = source;
    if (!peer) {
      // loopback: the source is in this page, or gone from it.
      const r = new DoubtResolver({ ask: () => r.answer(askInPage(migration)), sourceGone: null }, onOutcome);
      r.start();
      return r;
    }
    const signaling = this.signaling;
    // A copy-paste token peer can only be asked through people: leave it to them.
    if (!signaling || (source.via !== 'local' && source.via !== 'relay')) return null;
    const conn = fateConversation(migration);
    const onAnswer = (e: Event) => {
      const m = (e as CustomEvent<SignalMessage>).detail;
      if (m.kind !== 'signal' || m.from !== peer || !isFateAnswer(m.data) || m.data.migration !== migration) return;
      e.preventDefault();
      r.answer(m.data.outcome);
    };
    // Only a tab of this browser shares this page's Web Locks.
    const lock = source.via === 'local' ? source.lock : null;
    const r = new DoubtResolver(
      {
        ask: () => signaling.sendSignal(peer, conn, { fate: 'ask', migration } satisfies FateQuestion),
        sourceGone: lock ? (signal) => whenLockFree(lock, signal) : null,
        done: () => signaling.removeEventListener('signal', onAnswer),
      },
      onOutcome,
    );
    signaling.addEventListener('signal', onAnswer);
    r.start();
    return r;
  }

  /** The source's fate is known (or nobody answered): run the copy, discard it, or leave it to the person. */
  private doubtResolved(inc: IncomingMigration, outcome: DoubtOutcome): void {
    if (this.incoming !== inc || !this.ownership.inDoubt) return;
    switch (outcome) {
      case 'committed':
      case 'gone': {
        this.endDoubt();
        this.ownership.own();
        const why = outcome === 'committed' ? 'the source says it committed the switchover' : 'the source tab is gone';
        this.doubtText = null;
        this.note(`${why}: the kept copy is the guest${this.autostart() ? ' and runs' : ' (-S: it waits for cont)'}`);
        inc.settleDoubt('completed');
        if (this.incomingState.status === 'failed') this.doubtText = `The connection to the source was lost before the switchover was confirmed; ${why}: this copy is the guest`;
        if (this.autostart() && this.machine.runstate === 'paused') void this.machine.cont();
        break;
      }
      case 'resumed': {
        this.endDoubt();
        this.ownership.empty();
        this.doubtText = 'The connection to the source was lost before the switchover was confirmed, and the source kept the guest (it runs there): the copy loaded here is discarded';
        this.note('the source says it kept the guest: the copy loaded here is discarded');
        // Back to waiting for a guest, as a destination that never got one (migrate-incoming may try again).
        this.machine.setRunstate('inmigrate');
        inc.settleDoubt('failed', this.doubtText);
        if (this.incomingState.status === 'failed') {
          this.incomingStarted = false;
          this.incomingRetry = true;
          this.signaling?.setIncoming(false);
        }
        break;
      }
      case 'unreachable':
        this.doubtText =
          "The connection to the source was lost after this side was ready and before the switchover was confirmed, and the source cannot be reached to ask what it did. This paused copy is the guest if the source committed or is gone, and a stale duplicate if the source still runs it: 'cont' runs it here (only if the source does not run the guest); x-tabmig-load or a new migration replaces it";
        this.note('the source does not answer: whether the kept copy is the guest is left to you (query-migrate says what is at stake)');
        inc.settleDoubt('failed', this.doubtText);
        break;
    }
    this.changed();
  }

  private endDoubt(): void {
    this.doubt?.dispose();
    this.doubt = null;
  }
}
