// The destination's incoming thread (QEMU's process_incoming_migration_co and its bottom half):
// reads the stream from the connection's main channel, a saved snapshot or a file through the
// loadvm loop; pages go straight into shared guest RAM, device state into a staging copy. Once
// every handler's check passed it decides the runstate and starts the guest itself, through the
// control block — after the source's commit for a live migration (DESIGN §8), at once for a
// saved stream. Status, counters and that decision live in the incoming block; the main thread
// observes them and carries the handshake's messages to the source.
//
// It runs in incoming.worker (a thin entry) or, in tests, on any thread: nothing here touches
// `self`, and everything it says goes through `post`.

import { ControlBlock } from '../../guest/control-block.js';
import { DEVICES, DeviceState } from '../../guest/device-state.js';
import { PAGE_SIZE, RAM_BASE } from '../../guest/memory-map.js';
import type { RunState } from '../../guest/runstate.js';
import { blobSource } from '../../transport/file.js';
import { SnapshotStore } from '../../transport/idb-store.js';
import type { ChannelSet } from '../../transport/channel-set.js';
import type { MigrationChannel } from '../../transport/channel.js';
import { CHANNEL } from '../../transport/routes.js';
import { IncomingBlock, IncomingCounter, IncomingWord, Phase } from '../incoming-block.js';
import { machineLoadHandlers } from '../load-handlers.js';
import { continueLoadVm, loadCleanupAll, loadVm, validateAll, type LoadVmOptions, type LoadVmState } from '../loadvm.js';
import { PageGate } from '../../guest/page-gate.js';
import { PostcopyIncoming } from '../postcopy/postcopy-incoming.js';
import { MigrationOptions } from '../options.js';
import { PageState } from '../page-state.js';
import { ramLoadHandler } from '../ram/ram-load.js';
import { MultifdReceiver } from '../ram/multifd-receiver.js';
import { multifdIds } from '../ram/codecs/multifd-channels.js';
import { CodecPool } from '../ram/codecs/codec-pool.js';
import { LoadCodecs } from '../ram/codecs/load-codecs.js';
import type { MigrationStatus } from '../state.js';
import { RAM_BLOCK_MAIN, StreamReader, encodeRpMessage, type ByteSource, type MigCommand } from '../stream/index.js';
import { SWITCHOVER_TIMEOUT_MS, Verdict, isSwitchoverMessage, type SwitchoverBody } from '../switchover.js';
import { SwitchoverLink } from '../switchover-link.js';
import { echoOf, isProbe } from '../source/switchover-cost.js';
import { IdleWatch } from './idle-watch.js';
import type { FromIncoming, IncomingStart } from './incoming-protocol.js';
import { incomingStreamTap } from './stream-log-tap.js';
import { decideRunstate, giveGuest } from './runstate-decision.js';

/** RV32IM without the C extension: instructions are 4-byte aligned. */
const PC_ALIGN = 4;
const PROGRESS_MS = 250;
/** After a failed load, how long the channels stay up so the 'failed' message reaches the source first. */
const FAILED_LINGER_MS = 500;
/** How long 'started' waits for the vCPU to say it runs (a starved worker: the request's time stands). */
const GUEST_START_WAIT_MS = 250;

export const ABORTED_TEXT = 'The source abandoned the migration before the switchover; what was loaded is discarded';

/** Thrown into the load when the tab stops waiting. */
class IncomingCancelled extends Error {
  override name = 'IncomingCancelled';
}

interface OpenedSource {
  source: ByteSource;
  rp: MigrationChannel | null;
  /** x-multifd's extra data channels (empty otherwise). */
  multifd?: MigrationChannel[];
  close(failed: boolean): void;
}

export class IncomingThread {
  readonly block: IncomingBlock;
  private readonly options: MigrationOptions;
  private readonly handshake: boolean;
  private readonly abort = new AbortController();
  private reader: StreamReader | null = null;
  /**
   * Bytes the loader has taken from the channels so far, counted now: what a probe's echo tells
   * the source (the wire's rate and what is still on its way to the loader, for the downtime
   * decision). The published counter lags by up to a RAM part.
   */
  private receivedNow: () => number = () => 0;
  private rp: MigrationChannel | null = null;
  private rpOpen = false;
  private cancelReason: string | null = null;
  private idle: IdleWatch | null = null;
  /** When the source last said it lives (keepalive), for the verdict wait. */
  private lastAlive = performance.now();
  private running: Promise<void> | null = null;
  /** Postcopy's destination side; null when this tab has no page gate (tests, snapshots). */
  private postcopy: PostcopyIncoming | null = null;
  /** Starts the guest at POSTCOPY_RUN (set up by main(), which holds the staging state). */
  private startGuestAtRun: (() => void) | null = null;
  /** The channels of the current connection (a new set after a postcopy recovery). */
  private currentChannels: ChannelSet | null;
  private reconnected: ((set: ChannelSet) => void) | null = null;
  /** Set while postcopy is paused and waits for migrate-recover's new connection. */
  awaitingReconnect = false;

  constructor(
    private readonly start: IncomingStart,
    /** The connection's channels (a channel source); the thread waits for main and return path. */
    private readonly channels: ChannelSet | null,
    private readonly post: (msg: FromIncoming) => void,
  ) {
    this.block = new IncomingBlock(start.block);
    this.options = MigrationOptions.fromPlain(start.options);
    this.handshake = start.handshake ?? start.source.kind === 'channel';
    this.currentChannels = channels;
    this.switchoverLink = new SwitchoverLink({
      // Without the handshake (a saved stream, a test's stand-in destination) the thread keeps
      // off the switchover channel: whoever plays the destination owns it.
      channels: () => (this.handshake ? this.currentChannels : null),
      relay: (message) => this.post({ type: 'switchover', message }),
      heard: (m) => this.heard(m),
    });
    this.switchoverLink.listen();
    this.block.set(IncomingCounter.START_TIME, Date.now());
    this.setStatus('none', 'setup');
  }

  /** Where the handshake travels (the switchover channel, worker to worker). */
  private readonly switchoverLink: SwitchoverLink;

  /**
   * The source's worker said something on the switchover channel: a probe is echoed at once with
   * the bytes read so far (it measures the wire); commit and abort become the verdict the thread
   * waits on, as the main thread would write them for a relayed message.
   */
  private heard(m: unknown): void {
    this.sourceAlive();
    if (isProbe(m)) {
      if (!m.echo) this.switchoverLink.sendDirect(echoOf(m, this.receivedNow()));
      return;
    }
    // Only a message naming this migration moves it (never one from another attempt).
    if (!isSwitchoverMessage(m) || m.migration === 0 || m.migration !== this.block.migrationId) return;
    if (m.switchover === 'commit') this.block.setVerdict(Verdict.COMMIT);
    else if (m.switchover === 'abort') this.block.setVerdict(Verdict.ABORT);
    else return;
    this.post({ type: 'heard', message: m });
  }

  /** Runs the whole incoming migration once; resolves when it is over, whatever the outcome. */
  run(): Promise<void> {
    this.running ??= this.main();
    return this.running;
  }

  /**
   * The tab stops waiting: a load in progress fails (the guest never starts); a machine that
   * was already complete ('ready' sent) is kept paused, as for a lost link.
   */
  cancel(reason: string): void {
    this.cancelReason ??= reason;
    this.abort.abort(new IncomingCancelled(reason));
    if (this.reader) {
      this.reader.fail(new IncomingCancelled(reason));
      this.reader.shutdown();
    }
    this.block.setVerdict(Verdict.LINK_LOST);
  }

  /** The link broke (or migrate-pause): in postcopy the thread pauses and waits for a recovery. */
  linkLost(reason: string): void {
    if (!this.postcopy?.running) {
      this.cancel(reason);
      return;
    }
    this.reader?.fail(new Error(`connection to the source lost: ${reason}`));
    this.reader?.shutdown();
  }

  /** migrate-recover's new connection: its channels, for the paused postcopy. */
  reconnect(set: ChannelSet): void {
    this.reconnected?.(set);
  }

  /** query-migrate's postcopy-blocktime fields, when the capability was on. */
  blocktime(): { total: number; perVcpu: number[] } | null {
    return this.postcopy?.blocktime() ?? null;
  }

  /** The source's keepalive: silence is measured from now (the stream, or the verdict wait). */
  sourceAlive(): void {
    this.lastAlive = performance.now();
    this.idle?.touch();
  }

  /** Fault tests: the return path is hung up (aborted) as a failing destination's would be. */
  closeReturnPath(): void {
    this.rp?.abort('fault injection: the destination closed the return path');
  }

  // ---- the run -------------------------------------------------------------------------------

  private async main(): Promise<void> {
    const s = this.start;
    const ram = new Uint8Array(s.ram);
    const real = new DeviceState(s.deviceState);
    const staging = new DeviceState();
    staging.bytes.set(real.bytes);
    const pageState = s.pageState ? new PageState(s.pageState) : null;
    const block = this.block;
    const gate = s.pageGate ? new PageGate(s.pageGate) : null;
    if (gate) {
      gate.setActive(false);
      gate.reset(false);
      this.postcopy = new PostcopyIncoming({
        ram,
        pageSize: PAGE_SIZE,
        gate,
        pageState,
        block,
        enabled: this.options.postcopyRam,
        blocktime: this.options.capability('postcopy-blocktime'),
        sendRp: (bytes) => this.sendRp(bytes),
        // Receipts for release-ram travel worker to worker, beside the stream (placed-pages.ts).
        sendReceipt: (msg) => this.switchoverLink.sendDirect(msg),
        setStatus: (from, to, error) => this.setStatus(from, to, error),
        log: (text) => this.post({ type: 'command', name: text }),
      });
    }
    const compress = this.options.capability('compress');
    let multifd: MultifdReceiver | null = null;
    // Bytes read so far on every channel, kept current for the source's probes (it measures
    // the wire by what arrived here).
    this.receivedNow = () => (this.reader?.received ?? 0) + (multifd?.bytes ?? 0);
    const publishReceived = () => block.set(IncomingCounter.BYTES, this.receivedNow());
    const streamTap = incomingStreamTap(s.streamLog, ram.length / PAGE_SIZE, () => ramLoad.totals);
    const ramLoad = ramLoadHandler({
      ram,
      onPage: streamTap ? (p) => streamTap.page(p) : null,
      block: { name: RAM_BLOCK_MAIN, length: ram.length },
      pageSize: PAGE_SIZE,
      pageState,
      placer: this.postcopy,
      // XBZRLE records are always understood (QEMU's loader needs no capability for them);
      // compressed ones only with `compress` on, inflated by decompress-threads workers.
      codecs: new LoadCodecs({
        ram,
        pageSize: PAGE_SIZE,
        pool: compress ? new CodecPool(this.options.parameter('decompress-threads'), { ram: s.ram, pageSize: PAGE_SIZE, level: 0 }) : null,
        errorCheck: this.options.decompressErrorCheck,
      }),
      allowCompressed: compress,
      // Channels open later (openSource); the loader asks through this once they have.
      multifd: {
        flush: () => multifd?.flush() ?? Promise.resolve(),
      },
      onPart: (t) => {
        block.set(IncomingCounter.PAGES, t.pages);
        block.set(IncomingCounter.ZERO_PAGES, t.zeroPages);
        publishReceived();
      },
    });
    const machine = machineLoadHandlers({
      staging,
      limits: { ramBase: RAM_BASE, ramSize: ram.length, pcAlign: PC_ALIGN },
      machineType: s.machineType,
      devices: DEVICES,
    });
    const handlers = [machine.configuration, ramLoad, machine.globalState, ...machine.devices];
    this.postcopy?.setVisitor(ramLoad.visitor);
    this.startGuestAtRun = () => {
      // Every device section came in the package before RUN: check them as a whole, then run.
      const why = validateAll(handlers);
      if (why) throw new Error(why);
      real.bytes.set(staging.bytes);
      const next = decideRunstate(machine.globalState.runstate, block.autostart);
      const from = giveGuest(this.start.control, next);
      block.setRunstate(next);
      block.setWord(IncomingWord.PHASE, Phase.STARTED);
      this.post({ type: 'runstate', from, to: next });
    };
    const progress = setInterval(() => this.progress(ramLoad.totals.pages), PROGRESS_MS);
    let opened: OpenedSource | null = null;
    let failed = false;
    try {
      opened = await this.openSource();
      this.rp = opened.rp;
      if (opened.multifd?.length) {
        multifd = new MultifdReceiver(opened.multifd, {
          ram,
          pageSize: PAGE_SIZE,
          blockName: RAM_BLOCK_MAIN,
          maxPageCount: this.options.parameter('x-multifd-page-count'),
          pageState,
          onPage: streamTap ? (p) => streamTap.page(p) : null,
          onPages: (n) => {
            ramLoad.totals.pages += n;
            publishReceived();
          },
        });
      }
      this.setStatus('setup', 'active');
      const idle = new IdleWatch(opened.source, s.source.kind === 'channel' ? this.options.incomingIdleTimeout : 0);
      this.idle = idle;
      const reader = new StreamReader(idle);
      this.reader = reader;
      if (this.cancelReason !== null) throw new IncomingCancelled(this.cancelReason);
      idle.arm(reader);
      const loadOptions: LoadVmOptions = {
        handlers,
        footers: this.options.sendSectionFooter,
        requireConfiguration: this.options.sendConfiguration,
        onCommand: (cmd) => this.onCommand(cmd),
        onSection: () => block.add(IncomingCounter.SECTIONS, 1),
        tap: streamTap?.tap ?? null,
      };
      let loaded;
      try {
        loaded = await loadVm(reader, loadOptions);
      } finally {
        idle.disarm();
      }
      if (!loaded.reachedEof && this.postcopy?.running) {
        // POSTCOPY_RUN: the guest runs; the rest of the stream is read as QEMU's listen thread does.
        const close = await this.postcopyListen(reader, loadOptions, loaded.state);
        if (close) opened = { ...opened, close };
        block.set(IncomingCounter.LOAD_TIME, Date.now() - block.get(IncomingCounter.START_TIME));
        return;
      }
      // Everything arrived and every handler's check passed: the machine is complete.
      real.bytes.set(staging.bytes);
      block.set(IncomingCounter.LOAD_TIME, Date.now() - block.get(IncomingCounter.START_TIME));
      this.progress(ramLoad.totals.pages);
      this.post({ type: 'loaded', runstate: machine.globalState.runstate, bytes: reader.received });
      if (this.handshake) await this.switchover(machine.globalState.runstate);
      else this.complete(decideRunstate(machine.globalState.runstate, block.autostart));
    } catch (e) {
      failed = true;
      this.loadFailed(errorText(e));
    } finally {
      clearInterval(progress);
      this.postcopy?.stop();
      multifd?.close();
      loadCleanupAll(handlers);
      this.progress(ramLoad.totals.pages);
      if (failed) await sleep(s.failedLingerMs ?? FAILED_LINGER_MS);
      opened?.close(failed);
      if (!opened) void this.channels?.closeAll('incoming migration ended');
      this.post({ type: 'done' });
    }
  }

  /** The channel set's main channel (and return path), or the saved stream. */
  private async openSource(): Promise<OpenedSource> {
    const s = this.start;
    switch (s.source.kind) {
      case 'channel': {
        const set = this.channels;
        if (!set) throw new Error('incoming migration: no channels for a channel source');
        const mfIds = multifdIds(this.options);
        await set.whenAll([CHANNEL.main, CHANNEL.returnPath, ...mfIds], this.abort.signal);
        const main = set.open(CHANNEL.main);
        const rp = set.open(CHANNEL.returnPath);
        const multifd = mfIds.map((id) => set.open(id));
        await Promise.race([Promise.all([main.opened, ...multifd.map((c) => c.opened)]), abortPromise(this.abort.signal)]);
        return {
          source: main,
          rp,
          multifd,
          close: (failed) => void set.closeAll(failed ? 'the destination failed to load the migration stream' : undefined),
        };
      }
      case 'idb': {
        const store = await SnapshotStore.open();
        try {
          return { source: await store.openSource(s.source.name), rp: null, close: () => store.close() };
        } catch (e) {
          store.close();
          throw e;
        }
      }
      case 'file':
        return { source: blobSource(s.source.blob), rp: null, close: () => {} };
    }
  }

  private async onCommand(cmd: MigCommand): Promise<void | 'quit'> {
    const pc = this.postcopy;
    if (PostcopyIncoming.handles(cmd)) {
      if (!pc) throw new Error(`tabmig does not support the migration command ${cmd.type} here`);
      this.post({ type: 'command', name: cmd.type });
      switch (cmd.type) {
        case 'POSTCOPY_ADVISE':
          return pc.advise(cmd);
        case 'POSTCOPY_RAM_DISCARD':
          return pc.discard(cmd);
        case 'POSTCOPY_LISTEN':
          return pc.listen(this.currentChannels);
        case 'POSTCOPY_RUN':
          pc.run(() => this.startGuestAtRun?.());
          return 'quit';
        case 'RECV_BITMAP':
          return pc.sendRecvBitmap(cmd.blockName);
        case 'POSTCOPY_RESUME':
          return pc.resume();
        default:
          return; // PACKAGED: the loop loaded it already
      }
    }
    switch (cmd.type) {
      case 'OPEN_RETURN_PATH':
        if (!this.rp) throw new Error('Unable to open return-path for postcopy');
        this.rpOpen = true;
        this.block.setWord(IncomingWord.RP_OPEN, 1);
        this.post({ type: 'command', name: cmd.type });
        return;
      case 'PING':
        // QEMU answers a PING only on an open return path; without one it is just logged.
        this.sendRp(encodeRpMessage({ type: 'PONG', value: cmd.value }));
        if (this.rpOpen) this.block.bumpWord(IncomingWord.PONGS);
        this.post({ type: 'command', name: cmd.type, value: cmd.value });
        return;
      default:
        throw new Error(`tabmig does not support the migration command ${cmd.type} yet`);
    }
  }

  /**
   * After POSTCOPY_RUN: the rest of the main stream until EOF. A broken link pauses (the guest's
   * memory is split between the tabs: neither side may fail) until migrate-recover brings a new
   * connection; then the stream goes on from it. Returns how to close the last connection.
   */
  private async postcopyListen(first: StreamReader, options: LoadVmOptions, state: LoadVmState): Promise<((failed: boolean) => void) | null> {
    const pc = this.postcopy!;
    let r = first;
    let close: ((failed: boolean) => void) | null = null;
    // The guest runs here now and waits on the source for its pages: a source gone silent (no
    // close) must pause postcopy within x-incoming-idle-timeout, not leave it waiting for ever.
    this.idle?.arm(first);
    for (;;) {
      try {
        const res = await continueLoadVm(r, options, state);
        if (res.reachedEof) {
          // Requested pages still on their way on the preempt channel land before the end.
          await pc.drained();
          break;
        }
      } catch (e) {
        this.idle?.disarm();
        r = await this.pausePostcopy(errorText(e));
        const set = this.currentChannels!;
        close = (failed) => void set.closeAll(failed ? 'the destination failed to load the migration stream' : undefined);
      }
    }
    this.idle?.disarm();
    pc.finish();
    this.sendRp(encodeRpMessage({ type: 'SHUT', error: 0 }));
    this.setStatus('postcopy-active', 'completed');
    return close;
  }

  /** postcopy_pause_incoming: paused until the new connection's channels arrive; then recover. */
  private async pausePostcopy(why: string): Promise<StreamReader> {
    const from = this.block.status;
    this.post({ type: 'command', name: `postcopy paused (${from}): ${why}` });
    if (from === 'postcopy-active' || from === 'postcopy-recover') this.setStatus(from, 'postcopy-paused', why);
    this.reader?.shutdown();
    this.rpOpen = false;
    const old = this.currentChannels;
    const next = new Promise<ChannelSet>((resolve) => (this.reconnected = resolve));
    this.awaitingReconnect = true;
    void old?.closeAll(why);
    const set = await next;
    this.awaitingReconnect = false;
    this.reconnected = null;
    this.currentChannels = set;
    this.switchoverLink.listen();
    await set.whenAll([CHANNEL.main, CHANNEL.returnPath]);
    // The preempt channel is a message of its own: it must be held before urgent pages come.
    await Promise.race([set.whenAll([CHANNEL.postcopy]).catch(() => {}), sleep(2000)]);
    const main = set.open(CHANNEL.main);
    this.rp = set.open(CHANNEL.returnPath);
    this.rpOpen = true;
    this.postcopy!.openPreempt(set);
    this.setStatus('postcopy-paused', 'postcopy-recover');
    // The recovery's stream is watched as the first one was (a second silence pauses again).
    const idle = new IdleWatch(main, this.options.incomingIdleTimeout);
    this.idle = idle;
    const reader = new StreamReader(idle);
    this.reader = reader;
    idle.arm(reader);
    return reader;
  }

  private sendRp(bytes: Uint8Array): void {
    if (this.rpOpen && this.rp) void this.rp.write(bytes).catch(() => {});
  }

  // ---- the switchover (DESIGN §8) ---------------------------------------------------------------

  private async switchover(globalRunstate: string | null): Promise<void> {
    const block = this.block;
    await block.holds.pass('loaded', () => block.verdict !== Verdict.WAITING);
    if (block.verdict !== Verdict.WAITING) {
      // The source gave up (or the link went) before this side said 'ready': it cannot have
      // committed, so nothing is lost by discarding.
      this.discard(block.verdict === Verdict.ABORT ? ABORTED_TEXT : this.lostBeforeReadyText());
      return;
    }
    // 'ready' names the migration: the source announced it when it connected.
    if (!(await this.migrationNamed())) {
      if (block.verdict === Verdict.WAITING) throw new Error('the source never named its migration');
      this.discard(block.verdict === Verdict.ABORT ? ABORTED_TEXT : this.lostBeforeReadyText());
      return;
    }
    this.sendRp(encodeRpMessage({ type: 'SHUT', error: 0 }));
    block.setWord(IncomingWord.PHASE, Phase.READY);
    this.say({ switchover: 'ready' });
    const readyAt = Date.now();
    const verdict = await this.awaitVerdict();
    block.set(IncomingCounter.VERDICT_WAIT, Date.now() - readyAt);
    switch (verdict) {
      case Verdict.COMMIT: {
        await block.holds.pass('commit-received');
        // Decided now, not at EOF: `cont` or `stop` while waiting changes autostart.
        const next = decideRunstate(globalRunstate, block.autostart);
        const committedAt = Date.now();
        this.complete(next);
        // The downtime ends when the guest really runs here: the vCPU worker's own stamp, a
        // wake-up after the request (the guest's clock saw 5-15 ms more than the request's time).
        const ranAt = next === 'running' ? await new ControlBlock(this.start.control).startedAt(GUEST_START_WAIT_MS) : null;
        this.say({ switchover: 'started', runstate: next, at: ranAt ?? committedAt });
        return;
      }
      case Verdict.ABORT:
        this.discard(ABORTED_TEXT);
        return;
      default:
        this.keepPaused();
    }
  }

  private lostBeforeReadyText(): string {
    return `The connection to the source was lost before the switchover${this.cancelReason ? ` (${this.cancelReason})` : ''}; what was loaded is discarded`;
  }

  /** The verdict word, or LINK_LOST once the source stays silent for the idle timeout. */
  private async awaitVerdict(): Promise<number> {
    const block = this.block;
    const limit = this.options.incomingIdleTimeout;
    this.lastAlive = performance.now();
    while (block.verdict === Verdict.WAITING) {
      const left = limit > 0 ? this.lastAlive + limit - performance.now() : Infinity;
      if (left <= 0) {
        block.setVerdict(Verdict.LINK_LOST); // a verdict arriving now loses the race
        break;
      }
      await block.waitWhile(IncomingWord.VERDICT, Verdict.WAITING, Math.min(left, 1000));
    }
    return block.verdict;
  }

  /**
   * Waits (bounded) until the main thread wrote the id the source named when it connected; it
   * normally has long before the stream ends. False if it never came, or a verdict did first.
   */
  private async migrationNamed(): Promise<boolean> {
    const block = this.block;
    const deadline = performance.now() + SWITCHOVER_TIMEOUT_MS;
    while (block.migrationId === 0 && block.verdict === Verdict.WAITING) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await block.waitWhile(IncomingWord.MIGRATION, 0, Math.min(left, 100));
    }
    return block.migrationId !== 0 && block.verdict === Verdict.WAITING;
  }

  private say(message: SwitchoverBody): void {
    this.switchoverLink.send({ ...message, migration: this.block.migrationId });
  }

  // ---- endings ---------------------------------------------------------------------------------

  /** The guest is ours: runstate decided (running, or paused under -S), status completed. */
  private complete(next: RunState): void {
    const from = giveGuest(this.start.control, next);
    this.block.setRunstate(next);
    this.block.setWord(IncomingWord.PHASE, Phase.STARTED);
    this.setStatus('active', 'completed');
    this.post({ type: 'runstate', from, to: next });
  }

  /**
   * The link went away (or went silent, or the tab stopped waiting) after 'ready': the source may
   * have committed, so throwing the machine away could lose the guest. It stays here, complete
   * and paused, and in doubt: the status stays 'active' while the main thread asks the source
   * what it did (guest-fate.ts) and then completes, discards or leaves it to the person.
   */
  private keepPaused(): void {
    const from = giveGuest(this.start.control, 'paused');
    this.block.setRunstate('paused');
    this.block.setWord(IncomingWord.PHASE, Phase.KEPT_PAUSED);
    this.post({ type: 'runstate', from, to: 'paused' });
    this.post({ type: 'in-doubt' });
  }

  /** No switchover: the guest never starts, the tab stays in inmigrate. */
  private discard(error: string): void {
    this.block.setWord(IncomingWord.PHASE, Phase.DISCARDED);
    const s = this.block.status;
    // postcopy-active from LISTEN on: a package refused before its RUN started no guest either.
    if (s === 'setup' || s === 'active' || (s === 'postcopy-active' && !this.postcopy?.running)) this.setStatus(s, 'failed', error);
  }

  /** Anything thrown before the verdict: tell the source why (SHUT 1, and 'failed'), discard. */
  private loadFailed(error: string): void {
    if (this.block.phase !== Phase.LOADING) {
      // Failed after 'ready' (a hold released late, a post that threw): keep what is complete.
      if (this.block.phase === Phase.READY) this.keepPaused();
      return;
    }
    this.sendRp(encodeRpMessage({ type: 'SHUT', error: 1 }));
    if (this.handshake) this.say({ switchover: 'failed', error });
    this.discard(error);
  }

  private setStatus(from: MigrationStatus, to: MigrationStatus, error?: string): void {
    if (this.block.compareAndSet(from, to)) this.post(error === undefined ? { type: 'status', status: to } : { type: 'status', status: to, error });
  }

  private progress(pages: number): void {
    const bytes = this.reader?.received ?? 0;
    this.block.set(IncomingCounter.BYTES, Math.max(bytes, this.block.get(IncomingCounter.BYTES)));
    this.post({ type: 'progress', bytes, pages });
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
