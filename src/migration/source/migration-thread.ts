// The source's migration thread (QEMU's migration_thread): it drives the savevm loop — setup,
// iterations paced by the rate limit, the convergence test against bandwidth × downtime-limit —
// then the stop-and-copy, where this thread stops the vCPU itself through the control block, and
// the switchover handshake (switchover.ts, DESIGN §8) that decides whose guest runs.
//
// What migrates is the handlers' business (source-sections.ts); this file only decides when.
//
// The guest's fate: before the commit word says COMMITTED, every failure, cancel or timeout
// abandons the commit, resumes the guest (if it ran) and only then announces the outcome; after
// it, the guest is the destination's and this side never runs it again.

import { ControlBlock } from '../../guest/control-block.js';
import { DeviceState } from '../../guest/device-state.js';
import { PAGE_SIZE } from '../../guest/memory-map.js';
import type { RunState } from '../../guest/runstate.js';
import { MigCounter, MigWord, MigrationBlock } from '../migration-block.js';
import { MigrationOptions } from '../options.js';
import { PageState } from '../page-state.js';
import { PageSender } from '../ram/page-sender.js';
import { MultifdPageSender } from '../ram/multifd-sender.js';
import { commitSinkAsByteSink } from '../../transport/bytes.js';
import { channelSink } from '../../transport/channel.js';
import type { RamRound } from '../ram/ram-save.js';
import { RoundRecords } from '../round-records.js';
import { SaveVmLoop } from '../savevm.js';
import { isFinished, type MigrationStatus } from '../state.js';
import { BUFFER_DELAY_MS, StreamWriter, type MigCommand } from '../stream/index.js';
import { Commit, HoldPoints, SWITCHOVER_TIMEOUT_MS, isSwitchoverMessage, outgoingIdleText, type SwitchoverBody } from '../switchover.js';
import { sourceCodecs, type SourceCodecs } from '../ram/codecs/source-codecs.js';
import { AutoConverge } from './auto-converge.js';
import { ConvergenceWatch } from './convergence.js';
import { RoundRecorder } from './round-recorder.js';
import { PcWord, PostcopyBlock } from '../postcopy/postcopy-block.js';
import { PostcopyRamSaveHandler } from '../postcopy/postcopy-ram-save.js';
import { forEachPlaced, isPlacedMessage } from '../postcopy/placed-pages.js';
import { BufferSink, RAM_BLOCK_MAIN, RAM_SECTION_NAME, writeSectionFooter, writeSectionPart } from '../stream/index.js';
import type { ChannelSet } from '../../transport/channel-set.js';
import { CHANNEL } from '../../transport/routes.js';
import { openTarget } from './stream-target.js';
import { PROBE_INTERVAL_MS, SwitchoverCost, echoFigures, isProbe, type ProbeMessage } from './switchover-cost.js';
import { SwitchoverDecision, type Look } from './switchover-decision.js';
import { SwitchoverLink } from '../switchover-link.js';
import { sourceSections } from './source-sections.js';
import { sourceStreamTap } from './stream-log-tap.js';
import type { FromSource, SourceStart } from './source-protocol.js';
import type { OpenedTarget } from './stream-target.js';

/** How long the source waits for the destination's SHUT after the last byte (QEMU waits forever
 *  on a socket; a browser tab that vanished must not hang the source). */
const RETURN_PATH_SHUT_TIMEOUT_MS = 30_000;
/** Chunk size of the stream: large messages carry more per data-channel send. */
const STREAM_CHUNK = 256 * 1024;
/** How long a worker that lost the commit race waits for the cancel to show in the status. */
const CANCEL_SETTLE_MS = 1000;
/** QEMU's MAX_DISCARDS_PER_COMMAND. */
const MAX_DISCARDS_PER_COMMAND = 12;
/** Chunk size of the postcopy preempt channel: a requested page leaves in a message of its own. */
const PREEMPT_CHUNK = 16 * 1024;
/** How long a SHUT 1 in postcopy waits for the destination's word that it refused the package. */
const REFUSAL_WAIT_MS = 2000;
/** Requested pages sent at a time (a preempt channel's worth: 256 KiB). */
const REQUEST_BATCH = 64;
/** How long a recovery waits for each step of the destination's half of the handshake. */
const RESUME_STEP_TIMEOUT_MS = 30_000;
/**
 * How long, at least, a quiet look waits for each of its probes to come back (4 × downtime-limit
 * if longer). The first waits behind everything the destination has still to load, so a look
 * that gave up early would decide on a link it does not know to be empty.
 */
const LOOK_PROBE_TIMEOUT_MS = 1000;
/** A destination that has answered no probe this long after the migration began does not answer probes. */
const SILENT_PEER_MS = 3000;

export class MigrationThread {
  private readonly block: MigrationBlock;
  private readonly ctl: ControlBlock;
  private readonly options: MigrationOptions;
  private w: StreamWriter;
  private readonly loop: SaveVmLoop;
  private readonly recorder: RoundRecorder;
  private readonly holds: HoldPoints;
  /** Live migrations run the switchover handshake; a `file:`/`idb:` save has no one to ask. */
  private readonly handshake: boolean;
  /** This migration's id: every handshake message names it, both ways. */
  private readonly migrationId: number;
  private vmWasRunning = false;
  private runstateAtStop: RunState = 'running';
  private downtimeStart = 0;
  private iterationStart = 0;
  private iterationInitialBytes = 0;
  private thresholdBytes = 0;
  private error: string | null = null;
  /** Live copy of downtime-limit (set-downtime-limit changes it; the options are a snapshot). */
  private downtimeLimit: number;
  /** Set once the last byte of the stream has left. */
  private allSent = false;
  private abortSent = false;
  private done = false;
  /** postcopy-ram: the shared postcopy block, RAM's postcopy handler and the preempt channel. */
  private readonly pc: PostcopyBlock | null;
  private pcRam: PostcopyRamSaveHandler | null = null;
  private preempt: StreamWriter | null = null;
  private preemptRam: PageSender | null = null;
  /** Downtime of a postcopy switch (the guest ran at the destination from RUN on). */
  private postcopyDowntime = -1;
  private readonly ramSectionId: number;
  private postcopyRateLimit: number;
  /** Set while postcopy is paused: resolves with a recovery's new connection. */
  private reconnected: ((set: ChannelSet) => void) | null = null;
  private pendingConnection: ChannelSet | null = null;
  /** XBZRLE / compression (issue 8): the page sender's codec and its statistics. */
  private readonly codecs: SourceCodecs;
  private readonly autoConverge: AutoConverge | null;
  private readonly convergence: ConvergenceWatch;
  /** What a switchover costs, measured as the migration goes (the downtime decision). */
  readonly cost: SwitchoverCost;
  /** When to switch over: the plan below the limit, the estimate's measured errors, the bounds. */
  private readonly decision = new SwitchoverDecision();
  private commitSentAt = 0;
  /** x-multifd: one writer per extra data channel (empty without multifd). */
  private readonly mfWriters: StreamWriter[] = [];
  private mfSender: MultifdPageSender | null = null;
  /** Pages handed to the sender so far, at the start of the current counter window. */
  private windowPages = 0;
  /** Dirty syncs at the start of the current counter window (the first pass ends at the second). */
  private windowSyncs = 0;
  /** Pages handed to the sender in the rounds a dirty sync has closed. */
  private pagesInEndedRounds = 0;
  /** When the destination last said anything on the control conversation (x-outgoing-idle-timeout). */
  private lastAlive = performance.now();

  constructor(
    private readonly start: SourceStart,
    private target: OpenedTarget,
    private readonly post: (msg: FromSource) => void,
    private channels: ChannelSet | null = null,
  ) {
    this.block = new MigrationBlock(start.block);
    this.ctl = new ControlBlock(start.control);
    this.options = MigrationOptions.fromPlain(start.options);
    this.downtimeLimit = this.options.downtimeLimit;
    this.handshake = start.target.kind === 'channel';
    this.migrationId = this.block.migrationId;
    this.holds = new HoldPoints(this.block.words, MigWord.HOLD);
    this.w = new StreamWriter(target.sink, { chunkSize: STREAM_CHUNK, highWater: 2 * STREAM_CHUNK });
    this.w.setRateLimit(this.options.maxBandwidth);
    this.cost = new SwitchoverCost(start.deviceState.byteLength + 1024, this.options.capability('compress'));
    this.recorder = new RoundRecorder(
      new RoundRecords(start.rounds),
      this.block,
      this.ctl,
      () => this.sent(),
      () => this.thresholdBytes,
      (remaining) => this.expectedDowntime(remaining),
    );
    this.codecs = sourceCodecs(this.options, this.block, PAGE_SIZE, start.ram.byteLength);
    this.autoConverge = this.options.capability('auto-converge')
      ? new AutoConverge(this.ctl, { initial: this.options.parameter('cpu-throttle-initial'), increment: this.options.parameter('cpu-throttle-increment') }, PAGE_SIZE, performance.now(), 0)
      : null;
    this.convergence = new ConvergenceWatch(this.options);
    const registry = sourceSections({
      ram: new Uint8Array(start.ram),
      dirtyLog: start.dirtyLog,
      state: new DeviceState(start.deviceState),
      ctl: this.ctl,
      block: this.block,
      pageState: new PageState(start.pageState),
      // Precopy: the main channel, with a codec when xbzrle or compress is on; with x-multifd,
      // pages in packets on the extra channels (QEMU 3.0 uses no codec with multifd either).
      sender: this.pageSender(),
      options: this.options,
      machineType: start.machineType,
      runstateAtStop: () => this.runstateAtStop,
      onSync: (round) => this.onRound(round),
    });
    this.loop = new SaveVmLoop(registry, this.w, { footers: this.options.sendSectionFooter, pageSize: PAGE_SIZE, tap: sourceStreamTap(start.streamLog, this.block) });
    this.pc = start.postcopy && this.options.postcopyRam ? new PostcopyBlock(start.postcopy) : null;
    this.postcopyRateLimit = this.options.parameter('max-postcopy-bandwidth');
    for (const e of registry.entries) if (e.handler instanceof PostcopyRamSaveHandler) this.pcRam = e.handler;
    this.ramSectionId = registry.sectionId(RAM_SECTION_NAME) ?? 0;
    this.watchChannel(target);
    this.switchoverLink = new SwitchoverLink({
      channels: () => (this.handshake ? this.channels : null),
      relay: (message) => this.post({ type: 'switchover', message }),
      heard: (m) => this.heard(m),
    });
    this.switchoverLink.listen();
  }

  /** Where the handshake and its probes travel (the switchover channel, worker to worker). */
  private readonly switchoverLink: SwitchoverLink;
  private probeTimer: ReturnType<typeof setInterval> | null = null;

  /** The destination's worker said something on the switchover channel. */
  private heard(m: unknown): void {
    this.destinationAlive();
    if (isPlacedMessage(m)) {
      // release-ram's receipts: the destination holds these pages now.
      const ram = this.pcRam;
      if (ram?.switched && !forEachPlaced(m, ram.pageCount, (p) => ram.delivered(p))) this.post({ type: 'log', text: 'postcopy: a malformed page receipt from the destination was ignored' });
      return;
    }
    if (isProbe(m)) {
      if (m.echo) {
        const { ms, offset } = echoFigures(m, performance.now());
        this.addRtt(ms, offset, m.id, m.received);
      }
      return;
    }
    // A message naming another migration (a late one from an earlier attempt) moves nothing.
    if (!isSwitchoverMessage(m) || m.migration !== this.migrationId) return;
    if (m.switchover === 'ready' || m.switchover === 'started') this.switchoverMarks[m.switchover] ??= Date.now();
    if (this.block.noteFromDestination(m)) this.post({ type: 'heard', message: m });
  }

  /** A round-trip probe, worker to worker when the connection allows (else the main threads relay it). */
  private sendProbe(id?: number): void {
    const probe: ProbeMessage = { probe: performance.now(), wall: Date.now(), ...(id !== undefined ? { id } : {}) };
    if (!this.switchoverLink.sendDirect(probe)) this.post({ type: 'probe', ...(id !== undefined ? { id } : {}) });
  }

  private watchChannel(target: OpenedTarget): void {
    target.channel?.closed.then((info) => {
      // Once every byte is out, a close is the destination being done; the handshake (or the
      // return path's SHUT) decides how the migration ended.
      if (!this.allSent && this.target === target) this.fail(`Unable to write to the migration channel: ${info.reason}`);
    });
  }

  /** max-postcopy-bandwidth changed: the scan after the switch follows it at once. */
  setPostcopyRateLimit(bytesPerSecond: number): void {
    this.postcopyRateLimit = bytesPerSecond;
    if (this.inPostcopy()) this.w.setRateLimit(bytesPerSecond);
  }

  /** A postcopy recovery's new connection (migrate with resume: true). */
  reconnect(set: ChannelSet): void {
    if (this.reconnected) this.reconnected(set);
    else this.pendingConnection = set;
  }

  /** migrate-pause: break the stream on purpose; postcopy pauses. */
  pause(): void {
    if (this.block.status === 'postcopy-active') this.pausePostcopy('migrate-pause');
  }

  private inPostcopy(): boolean {
    const s = this.block.status;
    return s === 'postcopy-active' || s === 'postcopy-paused' || s === 'postcopy-recover';
  }

  private pageSender(): PageSender {
    const mf = this.target.multifd ?? [];
    if (mf.length === 0) return new PageSender([this.w], { pageSize: PAGE_SIZE, codec: this.codecs.codec });
    for (const ch of mf) {
      this.mfWriters.push(new StreamWriter(commitSinkAsByteSink(channelSink(ch)), { chunkSize: STREAM_CHUNK, highWater: 2 * STREAM_CHUNK }));
    }
    const uuid = new Uint8Array(16);
    crypto.getRandomValues(uuid);
    this.mfSender = new MultifdPageSender(this.w, this.mfWriters, {
      pageSize: PAGE_SIZE,
      pageCount: this.options.parameter('x-multifd-page-count'),
      uuid,
      block: this.block,
    });
    return this.mfSender;
  }

  /** A dirty sync ended a round: codecs' periods, auto-converge, the convergence watch, the record. */
  private onRound(round: RamRound): void {
    const now = performance.now();
    this.pagesInEndedRounds += round.pagesSent;
    this.codecs.sync();
    this.mfSender?.newRound();
    if (this.autoConverge?.onSync(round.dirtyPages, this.sent(), now)) {
      this.block.set(MigCounter.THROTTLE, this.ctl.throttlePercent);
      this.post({ type: 'log', text: `auto-converge: cpu throttle raised to ${this.ctl.throttlePercent}%` });
    }
    const rec = this.recorder.record(round);
    if (rec && this.block.status === 'active') {
      const v = this.convergence.add({
        dirtyBytes: rec.dirtyPages * PAGE_SIZE,
        durationMs: rec.duration,
        bandwidth: this.cost.bandwidth || this.block.get(MigCounter.BANDWIDTH),
        remaining: rec.remaining,
        threshold: rec.threshold,
        throttle: rec.throttle,
      });
      if (v) this.post({ type: 'log', text: v.text });
    }
  }

  /** A round-trip probe came back (the handshake's share of the downtime). */
  addRtt(ms: number, offset?: number, id?: number, received?: number): void {
    this.cost.addRtt(ms, offset);
    // The destination counted `received` about half a round trip ago.
    if (received !== undefined) this.cost.delivered(received, performance.now() - ms / 2, this.sent());
    if (id !== undefined && id === this.probeId) this.rttWaiter?.(ms);
  }

  /**
   * Bytes on their way: what the destination has not read yet, by its own count (probes), and
   * at least what is still in this side's buffers.
   */
  private queuedBytes(): number {
    return Math.max(this.localQueued(), this.cost.inFlight(this.sent(), performance.now()));
  }

  /** Bytes still in this side's buffers: the writers' and the data channels'. */
  private localQueued(): number {
    let q = this.w.pending + (this.target.channel?.bufferedAmount ?? 0);
    for (const w of this.mfWriters) q += w.pending;
    for (const c of this.target.multifd ?? []) q += c.bufferedAmount;
    return q;
  }

  /** Bytes put on every channel (query-migrate's transferred counts the multifd channels too). */
  private sent(): number {
    let n = this.w.transferred + (this.preempt?.transferred ?? 0);
    for (const w of this.mfWriters) n += w.transferred;
    return n;
  }

  /** The estimate the switchover decision uses, for `remaining` bytes of pages left now. */
  private expectedDowntime(remaining: number): number {
    const e = this.cost.expected(remaining, this.queuedBytes());
    return Number.isFinite(e) ? Math.round(e) : 0;
  }

  /**
   * A quiet look: let what is queued leave (the guest still runs), time a probe through it — a
   * rehearsal of the estimate, whose error sets the margin — then measure the handshake with
   * nothing queued and judge the estimate for the pages dirty then (switchover-decision.ts).
   * True if the switchover should happen now. `qemuWouldSwitch`: QEMU's own rule held.
   */
  private async drainedStillFits(qemuWouldSwitch: boolean): Promise<boolean> {
    // No guest runs (a paused machine, a saved stream): there is no downtime to keep.
    if (!this.handshake || this.ctl.runstate !== 'running') return true;
    const lookStart = performance.now();
    const predicted = this.cost.probed ? this.cost.rehearsalMs(this.queuedBytes()) : Infinity;
    await Promise.all([this.w.flush(), ...this.mfWriters.map((w) => w.flush())]);
    const deadline = performance.now() + Math.max(50, this.downtimeLimit * 2);
    while (this.localQueued() > 0 && performance.now() < deadline && this.block.status === 'active' && !this.w.error) {
      await sleepMs(1);
    }
    // The handshake's round trip as it is now, with nothing queued ahead of it. The data channel's
    // bufferedAmount is 0 but SCTP and the browser's network process still hold bytes: the first
    // probe goes out behind them (its echo says the link is empty, and when: the rehearsal), the
    // second measures the round trip the handshake will see.
    const timeout = Math.max(LOOK_PROBE_TIMEOUT_MS, this.downtimeLimit * 4);
    const flushed = await this.probeRtt(timeout);
    if (flushed !== null) this.decision.errors.add(predicted, performance.now() - lookStart);
    const rtt = flushed === null || this.block.status !== 'active' ? flushed : await this.probeRtt(timeout);
    // The look's pause in sending is no time to measure the sender or the put rate over.
    this.iterationStart += performance.now() - lookStart;
    this.lookingMs += performance.now() - lookStart;
    if (this.block.status !== 'active') return false;
    // The stop-and-copy sends what the guest dirtied while the look drained the queue too: sync
    // (QEMU's ram_save_pending syncs before its test), and judge what is dirty now.
    const p = this.loop.pending(Infinity);
    const pending = p.precopyOnly + p.postcopyable;
    this.lookedAtSync = this.block.get(MigCounter.DIRTY_SYNC_COUNT);
    if (rtt === null) {
      // A peer that has answered no probe since the migration began, not even these: one that
      // does not answer probes. Nothing can be measured: QEMU's rule (already met) decides.
      if (!this.cost.probed && performance.now() - this.activeSince >= SILENT_PEER_MS) {
        this.post({ type: 'log', text: "switching over by QEMU's rule: the destination answers no round-trip probe, so the switchover cannot be measured" });
        return true;
      }
      // Otherwise the link is not known to be empty: the probe that went out behind the queue
      // waits behind whatever the destination has still to load (an idle guest's first pass is
      // thousands of zero-page records per stream chunk, each a page to check there), and a
      // switchover now would wait for all of it too. Not yet.
      return this.judged({ expectedMs: Infinity, limitMs: this.downtimeLimit, qemuWouldSwitch, parts: `the look's probe unanswered in ${Math.round(timeout)} ms` });
    }
    // A migration this short has not measured the wire yet, nor lasted a counter window: the
    // put rate while sending stands in, as it does in updateCounters.
    if (this.cost.bandwidth <= 0) this.cost.bandwidth = this.sent() / Math.max(1, performance.now() - this.activeSince - this.lookingMs);
    this.cost.freshRtt = rtt;
    this.cost.quietRtt = rtt;
    const queued = this.queuedBytes();
    const expected = this.cost.expected(pending, queued);
    const parts = this.cost.explain(pending, queued);
    this.cost.freshRtt = null;
    this.block.set(MigCounter.EXPECTED_DOWNTIME, Math.round(expected));
    return this.judged({ expectedMs: expected, limitMs: this.downtimeLimit, qemuWouldSwitch, parts });
  }

  /** The decision on a look; a switchover is logged with its reason. */
  private judged(look: Look): boolean {
    const verdict = this.decision.judge(look);
    if (!verdict.switchover) return false;
    this.post({ type: 'log', text: verdict.text });
    this.switchEstimate = look.expectedMs;
    return true;
  }

  /** When the migration became active, and how long its quiet looks have paused the sending since (ms). */
  private activeSince = 0;
  private lookingMs = 0;
  /** The dirty sync at the last quiet look: one look per round at most. */
  private lookedAtSync = -1;
  /** QEMU's own threshold (bandwidth × downtime-limit), kept beside the cost model's. */
  private qemuThresholdBytes = 0;
  /** The estimate the switchover was decided on (ms), for the log line that compares the outcome. */
  private switchEstimate: number | null = null;

  /**
   * QEMU's rule would switch over (the pages left fit bandwidth × downtime-limit), and no look was
   * taken since the last dirty sync: take one. Looking once a round keeps the drains from eating
   * the wire, and bounds in rounds how long the decision may wait once QEMU's rule holds.
   */
  private dueForQuietLook(pending: number): boolean {
    if (!this.handshake || !this.cost.probed || this.ctl.runstate !== 'running') return false;
    return pending <= this.qemuThresholdBytes && this.lookAllowed();
  }

  /** No look was taken since the last dirty sync (a decision without a look is always allowed). */
  private lookAllowed(): boolean {
    if (!this.handshake || !this.cost.probed || this.ctl.runstate !== 'running') return true;
    return this.block.get(MigCounter.DIRTY_SYNC_COUNT) !== this.lookedAtSync;
  }

  /** When the stop-and-copy's last byte was put, and the destination's 'ready' and 'started' were heard (Date.now()). */
  private readonly switchoverMarks: { put?: number; ready?: number; started?: number } = {};

  /**
   * After a switchover: the estimate it was decided on against the downtime it took, and where
   * the time went (what a rehearsal cannot see shows here: a slow stop, a slow destination).
   */
  private sayOutcome(): void {
    if (this.switchEstimate === null) return;
    const downtime = this.block.get(MigCounter.DOWNTIME);
    const error = downtime - this.switchEstimate;
    const against = Number.isFinite(error) ? `against an estimate of ${Math.round(this.switchEstimate)} ms (${error >= 0 ? '+' : ''}${Math.round(error)} ms)` : 'with no estimate';
    const at = (t: number | undefined) => (t === undefined ? '?' : `${t - this.downtimeStart}`);
    const m = this.switchoverMarks;
    this.post({
      type: 'log',
      text:
        `switchover took ${downtime} ms ${against}: ` +
        `vCPU stopped in ${Math.round(this.cost.stopMs)} ms, last byte put at ${at(m.put)} ms, 'ready' heard at ${at(m.ready)} ms, 'started' at ${at(m.started)} ms`,
    });
  }

  private rttWaiter: ((ms: number) => void) | null = null;
  private probeId = 0;

  /** Sends a probe and waits for its echo; null if none came in `timeoutMs`. */
  private probeRtt(timeoutMs: number): Promise<number | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.rttWaiter = null;
        resolve(null);
      }, timeoutMs);
      // Timed here: the probe takes the handshake's own path (the switchover channel, or the
      // main threads' relay where there is none), so it measures what the handshake will wait.
      const sentAt = performance.now();
      this.rttWaiter = () => {
        clearTimeout(timer);
        this.rttWaiter = null;
        resolve(performance.now() - sentAt);
      };
      this.sendProbe(++this.probeId);
    });
  }

  /** migrate-set-parameters downtime-limit mid-migration: the next convergence test uses it. */
  setDowntimeLimit(ms: number): void {
    this.downtimeLimit = ms;
  }

  setRateLimit(bytesPerSecond: number): void {
    // Once the guest is stopped the limit no longer applies (QEMU sets it to the maximum).
    if (this.block.status === 'active' || this.block.status === 'setup') this.w.setRateLimit(bytesPerSecond);
  }

  /** The destination lives (its keepalive echo or a handshake message arrived): silence starts over. */
  destinationAlive(): void {
    this.lastAlive = performance.now();
  }

  /** migrate_cancel: the status is already 'cancelling'; make every pending write fail now. */
  cancel(): void {
    this.w.shutdown();
    for (const w of this.mfWriters) w.shutdown();
    this.block.bumpWord(MigWord.CONTINUE);
  }

  async run(): Promise<void> {
    const setupStart = performance.now();
    this.iterationStart = setupStart;
    this.watchWord(MigWord.LINK_LOST, () => this.fail(this.linkLostText()));
    this.watchWord(MigWord.RP_ERROR, () => this.fail('RP: the return path failed: the destination sent a malformed or unexpected message, or closed it early', false));
    if (this.handshake) {
      this.watchDestination(this.options.outgoingIdleTimeout);
      // The round trip and the wire, measured all along for the downtime decision.
      this.probeTimer = setInterval(() => this.sendProbe(), PROBE_INTERVAL_MS);
    }
    try {
      this.recorder.reset();
      const commands: MigCommand[] = this.start.returnPath ? [{ type: 'OPEN_RETURN_PATH' }, { type: 'PING', value: 1 }] : [];
      // QEMU's migration_thread: postcopy is advised at the start, whether or not it is used.
      if (this.pc && this.start.returnPath) commands.push({ type: 'POSTCOPY_ADVISE', hostPageSize: PAGE_SIZE, targetPageSize: PAGE_SIZE });
      if (this.pc) this.openPreempt(this.channels);
      await this.loop.setup(commands);
      this.block.set(MigCounter.SETUP_TIME, Math.round(performance.now() - setupStart));
      // The header and block list count as transferred from the moment the migration is active.
      this.block.set(MigCounter.TRANSFERRED, this.sent());
      this.transition('setup', 'active');
      this.activeSince = performance.now();
      while (this.block.status === 'active') {
        if (!this.w.rateLimitExceeded()) {
          const p = this.loop.pending(this.thresholdBytes);
          const pending = p.precopyOnly + p.postcopyable;
          if (pending > 0 && pending >= this.thresholdBytes) {
            if (this.pc && this.start.returnPath && this.pc.startRequested && p.precopyOnly <= this.thresholdBytes) {
              // QEMU's migration_iteration_run: the user asked for postcopy and what must go
              // before the switch fits the downtime: switch now.
              await this.postcopyStart();
              break;
            }
            if (this.dueForQuietLook(pending) && (await this.drainedStillFits(true))) {
              await this.completion();
              break;
            }
            await this.iterate();
          } else if (this.lookAllowed() && (await this.drainedStillFits(pending <= this.qemuThresholdBytes))) {
            await this.completion();
            break;
          } else if (pending > 0) {
            // This round's look said not yet: send its pages; the next sync opens another.
            await this.iterate();
          }
        }
        const err = this.w.error ?? this.mfWriters.find((w) => w.error)?.error;
        if (err) {
          this.fail(err.message);
          break;
        }
        this.updateCounters(performance.now());
        if (this.w.rateLimitExceeded()) await this.w.waitForRateLimit();
        if (this.w.needsDrain) await this.w.ready();
        else await yieldToEventLoop();
      }
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
    // After RUN the migration only ends by completing (or failing for good): a pause waits in
    // postcopyRun for the recovery.
    while (this.pcRam?.switched && this.inPostcopy()) {
      try {
        await this.postcopyRun();
      } catch (e) {
        this.fail(e instanceof Error ? e.message : String(e));
      }
    }
    await this.finish();
  }

  /** One pass of the iterables (qemu_savevm_state_iterate), counted. */
  private async iterate(): Promise<void> {
    await this.loop.iterate();
    this.block.add(MigCounter.ITERATIONS, 1);
    this.block.set(MigCounter.TRANSFERRED, this.sent());
  }

  /** QEMU's migration_update_counters: every 100 ms, bandwidth → threshold, mbps, expected downtime. */
  private updateCounters(now: number): void {
    this.block.set(MigCounter.TRANSFERRED, this.sent());
    this.block.set(MigCounter.TOTAL_TIME, Math.round(Date.now() - this.block.get(MigCounter.START_TIME)));
    const queued = this.queuedBytes();
    if (now < this.iterationStart + BUFFER_DELAY_MS) return;
    const transferred = this.sent() - this.iterationInitialBytes;
    const ms = Math.max(1, now - this.iterationStart);
    // Pages handed to the sender so far, whatever their encoding: a count that runs across
    // rounds, so a window that spans a dirty sync counts the pages on both sides of it.
    const pagesNow = this.pagesInEndedRounds + this.block.get(MigCounter.PAGES_THIS_ROUND);
    const pagesSent = pagesNow - this.windowPages;
    // A window with pages still to send measures how the sender's pages become stream bytes and
    // how fast it clears them, if it began after the first pass: that pass is mostly zero pages,
    // which cost a few bytes each, and are not what the stop-and-copy sends.
    const syncs = this.block.get(MigCounter.DIRTY_SYNC_COUNT);
    const pastFirstPass = this.windowSyncs >= 2;
    if (pastFirstPass && this.block.get(MigCounter.REMAINING) > 0 && pagesSent > 0) this.cost.samplePages(pagesSent * PAGE_SIZE, ms, transferred);
    const bandwidth = transferred / ms;
    if (this.handshake && this.cost.probed) {
      // A live migration: the threshold is what fits in the planned share of the limit once
      // everything the switchover costs is counted, less what is still queued
      // (switchover-cost.ts, switchover-decision.ts). Until the destination's count measured
      // the wire, the put rate stands in.
      if (!this.cost.measured && bandwidth > 0) this.cost.bandwidth = bandwidth;
      this.thresholdBytes = this.cost.threshold(this.decision.plannedMs(this.downtimeLimit), queued);
    } else {
      this.thresholdBytes = bandwidth * this.downtimeLimit;
    }
    this.qemuThresholdBytes = bandwidth * this.downtimeLimit;
    this.block.set(MigCounter.BANDWIDTH, bandwidth);
    this.block.set(MigCounter.THRESHOLD, this.thresholdBytes);
    this.block.set(MigCounter.MBPS, (transferred * 8) / (ms / 1000) / 1e6);
    if (transferred > 10000 || this.cost.bandwidth > 0) {
      const remaining = this.block.get(MigCounter.REMAINING);
      this.block.set(MigCounter.EXPECTED_DOWNTIME, this.handshake && this.cost.probed ? this.expectedDowntime(remaining) : Math.round(remaining / bandwidth));
    }
    // (The writer starts a fresh rate-limit window by itself every 100 ms; resetting it here too
    // would hand out two budgets in one window.)
    this.iterationStart = now;
    this.iterationInitialBytes = this.sent();
    this.windowSyncs = syncs;
    this.windowPages = pagesNow;
  }

  /** QEMU's migration_completion: stop the guest, complete every handler, EOF, then the handshake. */
  private async completion(): Promise<void> {
    await this.claimSwitchover();
    this.downtimeStart = Date.now();
    this.vmWasRunning = this.ctl.runstate === 'running';
    this.runstateAtStop = this.ctl.runstate;
    const stopAt = performance.now();
    if (!this.ctl.stopAndWait(2000)) throw new Error('the vCPU did not stop');
    this.cost.stopMs = performance.now() - stopAt;
    this.codecs.lastStage();
    this.mfSender?.lastStage();
    this.setRunstate('finish-migrate');

    let current: MigrationStatus = 'active';
    if (this.options.pauseBeforeSwitchover) {
      if (!this.transition('active', 'pre-switchover')) return;
      const seen = this.block.word(MigWord.CONTINUE);
      while (this.block.status === 'pre-switchover' && this.block.word(MigWord.CONTINUE) === seen) {
        await this.block.waitWhile(MigWord.CONTINUE, seen, 1000);
      }
      if (!this.transition('pre-switchover', 'device')) return;
      current = 'device';
    }

    this.w.setRateLimit(0);
    await this.loop.completePrecopy();
    await Promise.all([this.w.flush(), ...this.mfWriters.map((w) => w.flush())]);
    this.switchoverMarks.put = Date.now();
    this.block.set(MigCounter.TRANSFERRED, this.sent());
    if (this.w.error) throw this.w.error;
    this.allSent = true;

    if (this.start.returnPath) await this.awaitReturnPathShut();
    if (this.w.error) throw this.w.error;
    if (this.block.status !== current) return; // cancelled or failed meanwhile

    if (this.handshake) {
      if (!(await this.switchover(current))) return;
      // The destination confirmed it holds the guest: that is the proof of delivery. The orderly
      // close of the main channel is a courtesy; a link that breaks now changes nothing.
      this.target.commit().catch(() => {});
    } else {
      const blob = await this.target.commit();
      if (blob && this.start.target.kind === 'file') this.post({ type: 'file', name: this.start.target.name, blob });
    }
    // Everything query-migrate and query-status report for a completed migration is in place
    // before anyone hears 'completed' (QEMU sets them a moment later, in
    // migration_iteration_finish; a client polling in between would see zeros and finish-migrate).
    this.calculateComplete();
    this.sayOutcome();
    this.setRunstate('postmigrate');
    this.transition(current, 'completed');
  }

  /**
   * The handshake (switchover.ts): wait for 'ready', pass the point of no return, send 'commit',
   * wait for 'started'. True when the destination confirmed; false when the migration ended
   * otherwise (the status already says how). Throws a failure from before the commit.
   */
  private async switchover(current: MigrationStatus): Promise<boolean> {
    const gone = () => this.block.status !== current;
    await this.holds.pass('all-sent', gone);
    if (gone()) return false;
    const id = this.migrationId;
    const ready = await this.waitFor(MigWord.DEST_READY, () => (this.block.destinationSaid(id) === 'nothing' ? null : this.block.destinationSaid(id)), current);
    if (ready === 'stopped') return false;
    if (ready === 'timeout') throw new Error('the destination did not report it was ready to start the guest');
    if (ready === 'failed') throw new Error('the destination failed to load the migration stream');
    await this.holds.pass('ready-received', gone);
    if (gone()) return false;

    // The point of no return. migrate_cancel CASes OPEN → ABANDONED; whoever moves first wins.
    const was = Atomics.compareExchange(this.block.words, MigWord.COMMIT, Commit.OPEN, Commit.COMMITTED);
    if (was !== Commit.OPEN) {
      // A cancel won: its status change follows in the same main-thread task; wait to see it.
      await this.block.waitWhile(MigWord.STATUS, this.block.words[MigWord.STATUS]!, CANCEL_SETTLE_MS);
      if (!gone()) this.fail('migration cancelled before the switchover');
      return false;
    }
    this.sendSwitchover({ switchover: 'commit' });
    this.commitSentAt = Date.now();
    await this.holds.pass('commit-sent', () => this.linkLost());
    const started = await this.waitFor(MigWord.DEST_STARTED, () => (this.block.destinationStarted(id) ? true : null), current);
    if (started === true) return true;
    this.failAfterCommit(started === 'timeout' ? 'it did not confirm that the guest started' : this.linkLostText());
    return false;
  }

  /**
   * Waits until `read` finds what the destination of this migration said (word `i` changes when
   * it does): its answer, 'stopped' if the status left `current`, or 'timeout'. A lost link counts
   * as stopped: the watcher has already failed the migration.
   */
  private async waitFor<T>(i: number, read: () => T | null, current: MigrationStatus): Promise<T | 'stopped' | 'timeout'> {
    const deadline = performance.now() + SWITCHOVER_TIMEOUT_MS;
    for (;;) {
      const seen = this.block.word(i);
      const v = read();
      if (v !== null) return v;
      if (this.block.status !== current || this.linkLost()) return 'stopped';
      const left = deadline - performance.now();
      if (left <= 0) return 'timeout';
      await this.block.waitWhile(i, seen, Math.min(left, 100));
    }
  }

  private async awaitReturnPathShut(): Promise<void> {
    const deadline = performance.now() + RETURN_PATH_SHUT_TIMEOUT_MS;
    while (this.block.word(MigWord.RP_SHUT) === 0 && this.block.word(MigWord.RP_ERROR) === 0) {
      if (this.w.error || this.isCancelling() || this.linkLost()) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error('the destination never confirmed the end of the migration on the return path');
      await this.block.waitWhile(MigWord.RP_SHUT, 0, Math.min(left, 200));
    }
    if (this.block.word(MigWord.RP_ERROR) !== 0) throw new Error(this.error ?? 'the return path failed');
    if (this.block.word(MigWord.RP_SHUT) === 2) throw new Error('the destination failed to load the migration stream');
  }

  /** Calls `onSet` once word i becomes non-zero, for as long as the migration runs. */
  private watchWord(i: number, onSet: () => void): void {
    void (async () => {
      while (!this.done) {
        if (this.block.word(i) !== 0) {
          if (!this.done) onSet();
          return;
        }
        await this.block.waitWhile(i, 0, 500);
      }
    })();
  }

  /**
   * x-outgoing-idle-timeout: a destination that says nothing (no keepalive echo, no handshake
   * message) for `ms` is gone even if no close ever arrives (a frozen tab, a black-holed
   * network). Before the commit that fails the migration and resumes the guest; after it the
   * guest is the destination's and this side stays stopped (fail() knows which); in postcopy
   * it pauses, and the watch goes on through every recovery.
   */
  private watchDestination(ms: number): void {
    if (ms <= 0) return;
    this.lastAlive = performance.now();
    const step = Math.max(20, Math.min(250, ms / 4));
    void (async () => {
      while (!this.done) {
        await new Promise((r) => setTimeout(r, step));
        if (this.done || isFinished(this.block.status)) return;
        // A paused postcopy has no link to hear from; the watch goes on for the recovery's link,
        // silence counted from the pause (else a destination silent after a recovery is never noticed).
        if (this.block.status === 'postcopy-paused') {
          this.lastAlive = performance.now();
          continue;
        }
        if (performance.now() - this.lastAlive > ms) {
          const postcopy = this.inPostcopy();
          this.fail(outgoingIdleText(ms)); // in postcopy: pauses, the guest stays at the destination
          if (!postcopy) return;
        }
      }
    })();
  }

  private linkLost(): boolean {
    return this.block.word(MigWord.LINK_LOST) !== 0;
  }

  private linkLostText(): string {
    return 'Connection to the destination lost';
  }

  private isCancelling(): boolean {
    return this.block.status === 'cancelling';
  }

  private committed(): boolean {
    return Atomics.load(this.block.words, MigWord.COMMIT) === Commit.COMMITTED;
  }

  /** Before the commit: make sure it can no longer happen. False if it already did. */
  private abandonCommit(): boolean {
    return Atomics.compareExchange(this.block.words, MigWord.COMMIT, Commit.OPEN, Commit.ABANDONED) !== Commit.COMMITTED;
  }

  /** Tells the destination to discard what it loaded (once; live migrations only). */
  private sendAbort(reason: string): void {
    if (!this.handshake || this.abortSent || this.committed()) return;
    this.abortSent = true;
    this.sendSwitchover({ switchover: 'abort', reason });
  }

  private sendSwitchover(message: SwitchoverBody): void {
    this.switchoverLink.send({ ...message, migration: this.migrationId });
  }

  /** QEMU's migration_calculate_complete: total time, downtime and the average throughput. */
  private calculateComplete(): void {
    const end = Date.now();
    const total = end - this.block.get(MigCounter.START_TIME);
    this.block.set(MigCounter.TOTAL_TIME, total);
    if (this.postcopyDowntime >= 0) {
      // A postcopy switch: the guest ran at the destination from RUN on.
      this.block.set(MigCounter.DOWNTIME, this.postcopyDowntime);
    } else {
      // The guest starts on the destination when 'commit' arrives there, about half-way between
      // sending it and hearing 'started' back: that is where its clock sees the downtime end.
      // Better: the destination said when (on its clock, which the probes related to ours).
      const at = this.block.get(MigCounter.DEST_STARTED_AT);
      const started = at > 0 ? Math.min(end, at - this.cost.clockOffset) : this.commitSentAt > 0 ? this.commitSentAt + (end - this.commitSentAt) / 2 : end;
      this.block.set(MigCounter.DOWNTIME, Math.round(started - this.downtimeStart));
    }
    const transferTime = total - this.block.get(MigCounter.SETUP_TIME);
    if (transferTime > 0) this.block.set(MigCounter.MBPS, (this.sent() * 8) / transferTime / 1000);
    this.block.set(MigCounter.REMAINING, 0);
  }

  /** QEMU's migration_iteration_finish and cleanup: the guest's fate and the final state. */
  private async finish(): Promise<void> {
    const status = this.block.status;
    if (status === 'completed') {
      await this.w.close();
      await Promise.all(this.mfWriters.map((w) => w.close()));
    } else {
      this.w.shutdown();
      for (const w of this.mfWriters) w.shutdown();
      await this.target.abort(this.error ?? 'cancelled').catch(() => {});
      if (this.committed()) {
        // The guest is the destination's: this side stays stopped whatever happened.
        if (this.ctl.runstate === 'finish-migrate') this.setRunstate('postmigrate');
      } else {
        this.abandonCommit();
        if (this.vmWasRunning) {
          this.setRunstate('running');
        } else if (this.ctl.runstate === 'finish-migrate') {
          this.setRunstate('postmigrate');
        }
        this.sendAbort(this.error ?? 'migration cancelled');
      }
      if (status === 'cancelling') this.transition('cancelling', 'cancelled');
    }
    this.done = true;
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.preempt?.shutdown();
    // cpu_throttle_stop: the guest runs at full speed again, wherever it runs.
    if (this.autoConverge) {
      this.autoConverge.stop();
      this.block.set(MigCounter.THROTTLE, 0);
    }
    this.codecs.cleanup();
    this.loop.cleanup();
    this.post({ type: 'finished' });
  }

  /**
   * Before the stop-and-copy: a system_reset or x-tabmig-load under way finishes first (every
   * page it rewrote is then marked dirty, and the last sync sends it), and none starts after.
   */
  private async claimSwitchover(): Promise<void> {
    if (!(await this.ctl.claimSwitchover())) throw new Error('a system reset of the guest did not finish');
  }

  private setRunstate(to: RunState): void {
    const from = this.ctl.runstate;
    this.ctl.runstate = to;
    this.ctl.requestRun(to === 'running');
    if (from !== to) this.post({ type: 'runstate', from, to });
  }

  private transition(from: MigrationStatus, to: MigrationStatus, error?: string): boolean {
    if (!this.block.compareAndSet(from, to)) return false;
    this.post(error === undefined ? { type: 'status', from, to } : { type: 'status', from, to, error });
    return true;
  }

  // ---- postcopy (QEMU's postcopy_start, the postcopy phase, postcopy_pause / postcopy_do_resume) ----

  /** The preempt channel's writer, when the connection has one (else urgent pages go on main). */
  private openPreempt(set: ChannelSet | null): void {
    this.preempt = null;
    this.preemptRam = null;
    if (!set || !set.has(CHANNEL.postcopy)) return;
    const ch = set.open(CHANNEL.postcopy, { highWaterMark: 256 << 10, lowWaterMark: 64 << 10 });
    this.preempt = new StreamWriter(commitSinkAsByteSink(channelSink(ch)), { chunkSize: PREEMPT_CHUNK, highWater: 256 << 10 });
    this.preemptRam = new PageSender([this.preempt], { pageSize: PAGE_SIZE });
  }

  /**
   * postcopy_start: stop the guest, send the discard ranges, then one package (LISTEN, every
   * device section, RUN). RUN is the point of no return: from it on the destination runs the
   * guest and RAM flows on demand and in the background.
   */
  private async postcopyStart(): Promise<void> {
    const ram = this.pcRam!;
    await this.claimSwitchover();
    this.downtimeStart = Date.now();
    this.vmWasRunning = this.ctl.runstate === 'running';
    this.runstateAtStop = this.ctl.runstate;
    if (!this.ctl.stopAndWait(2000)) throw new Error('the vCPU did not stop');
    this.setRunstate('finish-migrate');
    if (!this.transition('active', 'postcopy-active')) return;
    this.w.setRateLimit(0);
    ram.sync();
    // XBZRLE is precopy's (QEMU's ram_save_page skips it in postcopy): the destination drops the
    // stale copies a delta would apply to, so pages after the switch go whole.
    if (this.codecs.codec) ram.setSender(new PageSender([this.w], { pageSize: PAGE_SIZE }));
    const ranges = ram.discardRanges();
    for (let i = 0; i < ranges.length; i += MAX_DISCARDS_PER_COMMAND) {
      this.loop.command({ type: 'POSTCOPY_RAM_DISCARD', blockName: RAM_BLOCK_MAIN, ranges: ranges.slice(i, i + MAX_DISCARDS_PER_COMMAND) });
    }
    const sink = new BufferSink();
    const pw = new StreamWriter(sink, { chunkSize: STREAM_CHUNK });
    this.loop.command({ type: 'POSTCOPY_LISTEN' }, pw);
    await this.loop.saveDevices(pw);
    this.loop.command({ type: 'POSTCOPY_RUN' }, pw);
    await pw.flush();
    // The point of no return (DESIGN §8): a cancel that got here first wins.
    if (Atomics.compareExchange(this.block.words, MigWord.COMMIT, Commit.OPEN, Commit.COMMITTED) !== Commit.OPEN) {
      throw new Error('migration cancelled before the switchover');
    }
    ram.switched = true;
    this.loop.command({ type: 'PACKAGED', data: sink.toBytes() });
    await this.w.flush();
    this.postcopyDowntime = Date.now() - this.downtimeStart;
    this.block.set(MigCounter.DOWNTIME, this.postcopyDowntime);
    this.block.set(MigCounter.TRANSFERRED, this.sent());
    await this.postcopyRun();
  }

  /** After RUN: requested pages first (preempt channel), the background scan under max-postcopy-bandwidth. */
  private async postcopyRun(): Promise<void> {
    const ram = this.pcRam!;
    const pc = this.pc!;
    ram.urgent = () => pc.hasRequests;
    this.w.setRateLimit(this.postcopyRateLimit);
    for (;;) {
      if (this.refusedBeforeRun()) {
        this.resumeAfterRefusal();
        return;
      }
      const st = this.block.status;
      if (st === 'postcopy-paused') {
        if (!(await this.postcopyPaused())) return;
        continue;
      }
      if (st !== 'postcopy-active') return;
      await this.serveRequests();
      if (this.block.status !== 'postcopy-active') continue;
      if (ram.remainingBytes === 0 && !pc.hasRequests) break;
      if (this.w.error || this.preempt?.error) {
        this.pausePostcopy((this.w.error ?? this.preempt!.error)!.message);
        continue;
      }
      this.updateCounters(performance.now());
      if (ram.remainingBytes === 0 || this.w.rateLimitExceeded()) {
        await pc.waitForRequests(5);
        continue;
      }
      if (this.w.needsDrain) {
        await Promise.race([this.w.ready(), pc.waitForRequests(100)]);
        continue;
      }
      await this.loop.iterate();
      this.block.add(MigCounter.ITERATIONS, 1);
      this.block.set(MigCounter.TRANSFERRED, this.sent());
      await yieldToEventLoop();
    }
    // Everything went: END, EOF, then the destination's SHUT says it has all of it.
    await this.loop.completePostcopy();
    await this.w.flush();
    this.block.set(MigCounter.TRANSFERRED, this.sent());
    if (this.w.error) throw this.w.error;
    this.allSent = true;
    try {
      await this.awaitReturnPathShut();
    } catch (e) {
      // SHUT 1 after a short postcopy may be the refusal of the package: its 'failed' comes
      // on the switchover channel a moment later, and then the guest runs here again.
      if (this.block.word(MigWord.RP_SHUT) === 2 && (await this.refusalArrives())) {
        this.resumeAfterRefusal();
        return;
      }
      throw e;
    }
    if (this.block.status !== 'postcopy-active') return;
    // The destination has every page (its SHUT after EOF): release-ram gives back the rest.
    ram.allDelivered();
    this.calculateComplete();
    this.setRunstate('postmigrate');
    this.transition('postcopy-active', 'completed');
  }

  /**
   * migrate_handle_rp_req_pages' other half: queued requests go out now, ahead of the scan, a
   * batch at a time and only as fast as their channel drains (a destination asking for all of
   * RAM at once must not queue all of RAM in memory here).
   */
  private async serveRequests(): Promise<void> {
    const pc = this.pc!;
    while (pc.hasRequests && this.block.status === 'postcopy-active') {
      if (!this.preemptRam && this.channels?.has(CHANNEL.postcopy)) this.openPreempt(this.channels);
      const w = this.preempt ?? this.w;
      if (w.error) return;
      if (w.needsDrain) {
        await w.ready();
        continue;
      }
      this.sendRequested(pc.popRequests(REQUEST_BATCH));
    }
  }

  private sendRequested(pages: readonly number[]): void {
    if (!pages.length) return;
    if (!this.preemptRam) {
      // No preempt channel: the pages go on the main stream, framed as a part of the RAM
      // section (this runs between iterations, at a section boundary).
      const ch = this.pcRam!['sender'].main;
      const at = this.w.transferred;
      writeSectionPart(this.w, this.ramSectionId);
      for (const p of pages) {
        this.block.add(MigCounter.POSTCOPY_REQUESTS, 1);
        this.pcRam!.sendUrgent(p, ch);
      }
      ch.ram.writeEos();
      if (this.options.sendSectionFooter) writeSectionFooter(this.w, this.ramSectionId);
      this.loop.partWritten(this.ramSectionId, at);
      this.w.kick();
      return;
    }
    const ch = this.preemptRam.main;
    let sent = 0;
    for (const p of pages) {
      this.block.add(MigCounter.POSTCOPY_REQUESTS, 1);
      if (this.pcRam!.sendUrgent(p, ch)) sent++;
    }
    if (sent === 0) return;
    // Each batch is a part of its own on the preempt channel: the destination reads to EOS.
    ch.ram.writeEos();
    ch.ram.resetContinue();
    void ch.writer.flush();
  }

  /** postcopy_pause: both streams shut; the guest stays at the destination, waiting. */
  private pausePostcopy(reason: string): void {
    const s = this.block.status;
    if (s !== 'postcopy-active' && s !== 'postcopy-recover') return;
    if (!this.transition(s, 'postcopy-paused', reason)) return;
    this.pc!.bump(PcWord.PAUSES);
    this.w.shutdown();
    this.preempt?.shutdown();
    void this.target.abort(reason).catch(() => {});
    this.pc!.wake(); // the postcopy loop sees the pause now
  }

  /**
   * Paused: waits for a recovery's new connection, then postcopy_do_resume — RECV_BITMAP, reload
   * what to send from the destination's bitmap, POSTCOPY_RESUME, RESUME_ACK. False once the
   * migration ended otherwise.
   */
  private async postcopyPaused(): Promise<boolean> {
    const set = this.pendingConnection ?? (await new Promise<ChannelSet | null>((resolve) => {
      this.reconnected = resolve;
      const check = () => {
        if (this.block.status !== 'postcopy-paused' || this.refusedBeforeRun()) resolve(null);
        else setTimeout(check, 200);
      };
      check();
    }));
    this.reconnected = null;
    this.pendingConnection = null;
    if (this.refusedBeforeRun()) {
      this.resumeAfterRefusal();
      return false;
    }
    if (!set || this.block.status !== 'postcopy-paused') return this.block.status === 'postcopy-active';
    if (!this.transition('postcopy-paused', 'postcopy-recover')) return false;
    this.block.setWord(MigWord.LINK_LOST, 0);
    this.watchWord(MigWord.LINK_LOST, () => this.fail(this.linkLostText()));
    try {
      this.channels = set;
      this.switchoverLink.listen();
      // The connection's channels come one message each: wait for main and preempt to be here.
      await Promise.race([set.whenAll([CHANNEL.main, CHANNEL.postcopy]).catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
      const target = await openTarget({ kind: 'channel' }, set);
      this.target = target;
      this.w = new StreamWriter(target.sink, { chunkSize: STREAM_CHUNK, highWater: 2 * STREAM_CHUNK });
      this.loop.rebind(this.w);
      this.openPreempt(set);
      this.pcRam!.setSender(new PageSender([this.w], { pageSize: PAGE_SIZE }));
      this.watchChannel(target);
      const pc = this.pc!;
      await this.holds.pass('postcopy-recover', () => this.block.status !== 'postcopy-recover');
      if ((this.block.status as MigrationStatus) !== 'postcopy-recover') return (this.block.status as MigrationStatus) === 'postcopy-paused';
      const seq = pc.word(PcWord.BITMAP_SEQ);
      this.loop.command({ type: 'RECV_BITMAP', blockName: RAM_BLOCK_MAIN });
      await this.w.flush();
      if (!(await this.waitPc(PcWord.BITMAP_SEQ, seq))) throw new Error('the destination did not send its received bitmap');
      this.pcRam!.reloadFromReceived(pc.bitmap);
      const ack = pc.word(PcWord.RESUME_ACK);
      this.loop.command({ type: 'POSTCOPY_RESUME' });
      await this.w.flush();
      if (!(await this.waitPc(PcWord.RESUME_ACK, ack))) throw new Error('the destination did not acknowledge the resume');
      this.destinationAlive(); // its RESUME_ACK is a word from it: silence counts from here
      this.w.setRateLimit(this.postcopyRateLimit);
      return this.transition('postcopy-recover', 'postcopy-active') || this.block.status === 'postcopy-paused';
    } catch (e) {
      this.pausePostcopy(e instanceof Error ? e.message : String(e));
      return this.block.status === 'postcopy-paused';
    }
  }

  /**
   * The destination refused the package (a device check failed, a section version it does not
   * know) and said so: it says 'failed' only while still loading, before RUN started its guest.
   * The switch did not happen, and this side's copy is whole as long as release-ram gave nothing
   * back (it gives a page back only on the destination's word that it placed it, after RUN).
   */
  private refusedBeforeRun(): boolean {
    return this.pcRam?.switched === true && this.inPostcopy() && this.block.destinationSaid(this.migrationId) === 'failed';
  }

  /** Waits (briefly) for the destination's 'failed' that follows its SHUT 1. */
  private async refusalArrives(): Promise<boolean> {
    const deadline = performance.now() + REFUSAL_WAIT_MS;
    while (!this.refusedBeforeRun() && performance.now() < deadline) await this.block.waitWhile(MigWord.DEST_READY, this.block.word(MigWord.DEST_READY), 100);
    return this.refusedBeforeRun();
  }

  /** The guest never left: the commit is taken back, the guest runs here again, the migration fails. */
  private resumeAfterRefusal(): void {
    const s = this.block.status;
    if (this.pcRam!.released > 0) {
      // It placed pages (so its guest ran) yet says it refused: nothing here can be trusted to run.
      this.post({ type: 'log', text: `postcopy: the destination says it refused the package after it took ${this.pcRam!.released} pages; this side stays paused` });
      return;
    }
    Atomics.compareExchange(this.block.words, MigWord.COMMIT, Commit.COMMITTED, Commit.ABANDONED);
    this.error ??= 'The destination refused the postcopy package before its guest ran';
    this.w.shutdown();
    this.preempt?.shutdown();
    if (this.vmWasRunning && this.ctl.runstate === 'finish-migrate') this.setRunstate('running');
    this.transition(s, 'failed', this.error);
    this.post({ type: 'log', text: 'postcopy: the destination refused the package before its guest ran; the guest runs here again' });
  }

  /** Waits for a postcopy word to leave `value` while recovering; false if the recovery broke. */
  private async waitPc(i: number, value: number): Promise<boolean> {
    const deadline = performance.now() + RESUME_STEP_TIMEOUT_MS;
    while (this.pc!.word(i) === value) {
      if (this.block.status !== 'postcopy-recover' || performance.now() > deadline) return false;
      await this.pc!.waitWhile(i, value, 100);
    }
    return this.block.status === 'postcopy-recover';
  }

  /** Fails the migration from whatever active state it is in, keeping the first error. */
  fail(message: string, pauseInPostcopy = true): void {
    // After RUN the guest's memory is split between the tabs: a broken link pauses (QEMU's
    // postcopy_pause), it does not fail.
    if (pauseInPostcopy && (this.block.status === 'postcopy-active' || this.block.status === 'postcopy-recover')) {
      this.pausePostcopy(message);
      return;
    }
    if (this.block.status === 'postcopy-paused') return;
    if (this.committed() || !this.abandonCommit()) {
      this.failAfterCommit(message);
      return;
    }
    this.error ??= message;
    // The destination discards what it loaded; then the guest runs again here before anyone
    // hears of the failure (QEMU restarts it in migration_iteration_finish), so no one sees a
    // failed migration with a frozen guest.
    this.sendAbort(this.error);
    for (;;) {
      const s = this.block.status;
      if (isFinished(s) || s === 'cancelling') return;
      if (this.vmWasRunning && this.ctl.runstate === 'finish-migrate') this.setRunstate('running');
      if (this.transition(s, 'failed', this.error)) {
        this.w.shutdown();
        return;
      }
    }
  }

  /** After the commit: the guest is at the destination; fail without ever resuming it here. */
  private failAfterCommit(reason: string): void {
    // The destination confirmed before the link went (its 'started' and the close can arrive
    // in one main-thread task): the completion path announces 'completed'.
    if (this.block.destinationStarted(this.migrationId)) return;
    this.error ??= `The switchover was committed but the destination did not confirm it: ${reason}. The guest is at the destination; this side stays stopped`;
    if (this.ctl.runstate === 'finish-migrate') this.setRunstate('postmigrate');
    for (;;) {
      const s = this.block.status;
      if (isFinished(s) || s === 'cancelling') return;
      if (this.transition(s, 'failed', this.error)) {
        this.w.shutdown();
        return;
      }
    }
  }
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const tick = new MessageChannel();
let tickResolve: (() => void) | null = null;
tick.port1.onmessage = () => tickResolve?.();
/** Lets cancel and rate-limit messages in without setTimeout's clamping. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => {
    tickResolve = r;
    tick.port2.postMessage(0);
  });
}
