// One outgoing migration, seen from the main thread: opens the transport, starts the migration
// and return-path workers with the shared buffers, carries the switchover handshake between the
// migration worker and the link's control conversation, and turns what the workers report into
// status changes, runstate changes and errors. It decides nothing about the migration itself:
// the migration worker does (source/migration-thread.ts); this class only finishes a migration
// whose worker never got a channel to run on.

import type { Machine } from '../guest/machine.js';
import type { RunState } from '../guest/runstate.js';
import { connectLoopback } from '../transport/loopback.js';
import type { MigrationLink } from '../transport/link.js';
import { CHANNEL, type ChannelRoute, type ChannelTarget } from '../transport/routes.js';
import type { Signaling } from '../transport/signaling.js';
import type { MigrationUri } from '../transport/uri.js';
import { connectToPeer } from '../transport/webrtc.js';
import { sideCapabilities } from './capability-agreement.js';
import { MigWord, type MigrationBlock } from './migration-block.js';
import type { PageState } from './page-state.js';
import type { PostcopyBlock } from './postcopy/postcopy-block.js';
import { PAGE_SIZE } from '../guest/memory-map.js';
import type { RoundRecords } from './round-records.js';
import type { StreamLog } from './stream-log.js';
import { isKeepalive, isSwitchoverMessage, keepaliveInterval, sendControl, watchControlDelay, type KeepaliveMessage, type SourceHello, type SwitchoverMessage } from './switchover.js';
import { holdPageLock } from '../transport/page-lock.js';
import type { MigrationOptions } from './options.js';
import { multifdIds } from './ram/codecs/multifd-channels.js';
import { echoFigures, isProbe, type ProbeMessage } from './source/switchover-cost.js';
import type { FromReturnPath, FromSource, ReturnPathStart, StreamTarget, ToSource } from './source/source-protocol.js';

type FromMainToReturnPath = ReturnPathStart;
import { isFinished, type MigrationStatus } from './state.js';

export interface OutgoingHooks {
  /** A status change made by a worker (already applied to the block). */
  status(from: MigrationStatus, to: MigrationStatus, error?: string): void;
  /** The first error of this migration (QEMU keeps only the first). */
  error(message: string): void;
  /** A return-path message or other progress worth showing in the event log. */
  log(text: string): void;
  /** A `file:` migration finished: the page offers the stream as a download. */
  file(name: string, blob: Blob): void;
}

export class OutgoingMigration {
  private readonly worker: Worker;
  private readonly rpWorker: Worker | null;
  private link: MigrationLink | null = null;
  private ended = false;
  /** Whether the migration worker got its main channel (and so runs, and finishes, the migration). */
  private mainDelivered = false;
  private keepalive: ReturnType<typeof setInterval> | null = null;

  private readonly unwatchDelay: () => void;
  /** The id migrate() drew for this migration (in the block): every control message names it. */
  readonly migrationId: number;

  constructor(
    private readonly machine: Machine,
    private readonly block: MigrationBlock,
    private readonly options: MigrationOptions,
    private readonly uri: MigrationUri,
    private readonly signaling: Signaling | null,
    private readonly machineType: string,
    private readonly hooks: OutgoingHooks,
    private readonly pageState: PageState,
    private readonly rounds: RoundRecords,
    /** postcopy-ram: the postcopy block (page requests, start request, recovery words). */
    private readonly postcopy: PostcopyBlock | null = null,
    /** ICE servers and policy for webrtc: (the page's ?ice= and settings). */
    private readonly ice: { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy } = {},
    /** The stream inspector's log: the worker notes each section and command it writes. */
    private readonly streamLog: StreamLog | null = null,
  ) {
    this.migrationId = block.migrationId;
    this.worker = new Worker(new URL('./source/migration.worker.ts', import.meta.url), { type: 'module', name: 'migration' });
    // x-tabmig-delay-control reaches the worker, which sends the handshake itself.
    this.unwatchDelay = watchControlDelay((minMs, maxMs) => this.worker.postMessage({ type: 'control-delay', minMs, maxMs } satisfies ToSource));
    this.worker.onmessage = (e: MessageEvent<FromSource>) => this.onWorker(e.data);
    const rp = this.usesReturnPath;
    this.rpWorker = rp ? new Worker(new URL('./source/return-path.worker.ts', import.meta.url), { type: 'module', name: 'return-path' }) : null;
    if (this.rpWorker) {
      this.rpWorker.onmessage = (e: MessageEvent<FromReturnPath>) => this.onReturnPath(e.data);
      this.rpWorker.postMessage({
        type: 'start',
        block: block.buffer,
        ...(this.postcopy && options.postcopyRam ? { postcopy: { block: this.postcopy.buffer, ramLength: machine.ramSize, pageSize: PAGE_SIZE } } : {}),
      } satisfies FromMainToReturnPath);
    }
  }

  /** A return path needs a peer that can answer: never for a saved stream. */
  private get usesReturnPath(): boolean {
    // Postcopy needs one whatever the return-path capability says (QEMU opens it for postcopy-ram).
    return (this.options.useReturnPath || this.options.postcopyRam) && (this.uri.kind === 'webrtc' || this.uri.kind === 'loopback');
  }

  /** Starts the worker and, for a peer, connects; failures surface as a failed migration. */
  async start(): Promise<void> {
    const target: StreamTarget =
      this.uri.kind === 'idb' ? { kind: 'idb', name: this.uri.name } : this.uri.kind === 'file' ? { kind: 'file', name: this.uri.name } : { kind: 'channel' };
    const msg: ToSource = {
      type: 'start',
      ram: this.machine.ram,
      dirtyLog: this.machine.dirtyLog,
      control: this.machine.control.buffer,
      deviceState: this.machine.deviceState.buffer,
      block: this.block.buffer,
      options: this.options.toPlain(),
      target,
      machineType: this.machineType,
      returnPath: this.usesReturnPath,
      pageState: this.pageState.buffer,
      rounds: this.rounds.buffer,
      streamLog: this.streamLog?.buffer ?? null,
      ...(this.postcopy && this.options.postcopyRam ? { postcopy: this.postcopy.buffer } : {}),
    };
    this.worker.postMessage(msg);
    if (target.kind !== 'channel') {
      this.mainDelivered = true; // the worker opens its own target
      return;
    }
    // The migration worker holds every channel that carries pages; the return path goes to its
    // own thread (QEMU's source_return_path_thread).
    const toWorker: ChannelTarget = {
      postMessage: (message, transfer) => {
        this.worker.postMessage(message, transfer);
        if ((message as { id?: number }).id === CHANNEL.main) this.mainDelivered = true;
      },
    };
    await this.connect(this.uri, toWorker);
  }

  /** Opens the link to `uri`, its channels routed to the workers; failures surface as a lost link. */
  private async connect(uri: MigrationUri, toWorker: ChannelTarget): Promise<void> {
    const routes: ChannelRoute[] = [
      { id: CHANNEL.main, to: toWorker },
      this.rpWorker ? { id: CHANNEL.returnPath, to: this.rpWorker } : { id: CHANNEL.returnPath },
      { id: CHANNEL.postcopy, to: toWorker },
      // The switchover handshake, worker to worker (switchover-link.ts).
      { id: CHANNEL.switchover, to: toWorker },
      // x-multifd: the extra data channels, all to the migration worker (it packs them).
      ...multifdIds(this.options).map((id) => ({ id, to: toWorker })),
    ];
    try {
      if (uri.kind === 'loopback') {
        // A destination that gives up (a stream it refused, say) closes the link, which is all
        // the source may learn: the channel ports live in workers and their 'close' event is not
        // reliable (QEMU's source sees the socket close).
        const name = uri.name;
        this.attach(connectLoopback(name, { routes, info: this.hello(null) }), (reason) => `Connection to loopback:${name} closed by the destination: ${reason}`);
      } else if (uri.kind === 'webrtc') {
        if (!this.signaling) throw new Error('WebRTC signaling is not available in this page');
        const peer = uri.peer!;
        // The page's Web Lock (a destination in this browser sees this tab gone when it is released),
        // and the capabilities both ends must agree on: the destination checks them.
        const info = { ramSize: this.machine.ramSize, ...this.hello(await holdPageLock()), ...sideCapabilities((c) => this.options.capability(c)) };
        const link = await connectToPeer(this.signaling, peer, { routes, info, secret: this.options.tlsCreds, ...this.ice });
        this.attach(link, (reason) => `Connection to peer ${peer} lost: ${reason}`);
      }
      if (this.ended) this.link?.close('migration ended');
    } catch (e) {
      this.linkLost(e instanceof Error ? e.message : String(e));
    }
  }

  /** What the destination hears when this side connects: the migration's id (and the page's lock). */
  private hello(lock: string | null): SourceHello {
    return { migration: this.migrationId, ...(lock ? { lock } : {}) };
  }

  /** Carries the handshake from the link into the shared block, and notices the link's end. */
  private attach(link: MigrationLink, lostText: (reason: string) => string): void {
    this.link = link;
    let beat = 0;
    this.keepalive = setInterval(() => {
      if (!this.ended) sendControl((d) => link.sendControl(d), { keepalive: ++beat, migration: this.migrationId } satisfies KeepaliveMessage);
    }, keepaliveInterval(this.options.outgoingIdleTimeout));
    link.oncontrol = (data) => {
      // A link that outlives its migration (its close still on the way) carries nothing more.
      if (this.ended) return;
      // Anything the destination says proves it lives (x-outgoing-idle-timeout, in the worker).
      if (isSwitchoverMessage(data) || isKeepalive(data)) this.worker.postMessage({ type: 'alive' } satisfies ToSource);
      if (isSwitchoverMessage(data)) this.fromDestination(data);
      else if (isProbe(data) && data.echo) {
        // An echo of a probe the worker asked for (a connection without the switchover channel).
        this.worker.postMessage({ type: 'rtt', ...echoFigures(data, performance.now()), ...(data.id !== undefined ? { id: data.id } : {}), ...(data.received !== undefined ? { received: data.received } : {}) } satisfies ToSource);
      }
    };
    link.closed.then((info) => {
      if (!this.ended && this.link === link) this.linkLost(lostText(info.reason));
    });
  }

  /** A switchover message from the destination: the worker waits on these words. */
  private fromDestination(m: SwitchoverMessage): void {
    if (!this.block.noteFromDestination(m)) return; // commit and abort travel the other way
    if (m.switchover === 'ready') this.hooks.log('destination ready: it holds the complete machine');
    else if (m.switchover === 'failed') this.hooks.error(`The destination refused the migration: ${m.error}`);
    else if (m.switchover === 'started') this.hooks.log(`destination confirmed: the guest is there (${m.runstate})`);
  }

  /** Fault tests: break the link as a network failure would. */
  dropLink(): boolean {
    if (!this.link || this.ended) return false;
    this.link.drop();
    return true;
  }

  /** migrate with resume: true: a new link to the paused postcopy's destination, same workers. */
  resume(uri: MigrationUri): void {
    if (this.keepalive !== null) clearInterval(this.keepalive);
    this.keepalive = null;
    void this.connect(uri, this.worker);
  }

  /** migrate-pause: the link goes down on purpose; both sides pause. */
  pause(): void {
    this.worker.postMessage({ type: 'pause' } satisfies ToSource);
    this.link?.drop();
  }

  setPostcopyRateLimit(bytesPerSecond: number): void {
    this.worker.postMessage({ type: 'set-postcopy-rate-limit', bytesPerSecond } satisfies ToSource);
  }

  setDowntimeLimit(ms: number): void {
    this.worker.postMessage({ type: 'set-downtime-limit', ms } satisfies ToSource);
  }

  setRateLimit(bytesPerSecond: number): void {
    this.worker.postMessage({ type: 'set-rate-limit', bytesPerSecond } satisfies ToSource);
  }

  /** migrate_cancel (the caller already abandoned the commit and moved the status to 'cancelling'). */
  cancel(): void {
    this.block.bumpWord(MigWord.CONTINUE); // wake a pre-switchover pause
    this.worker.postMessage({ type: 'cancel' } satisfies ToSource);
    // No worker runs this migration (it never got a channel): finish it here.
    if (!this.mainDelivered) this.finishWithoutWorker();
  }

  /**
   * The link broke, or never came up. A worker that runs the migration decides what that means
   * (before the commit: resume the guest, then fail; after it: stay stopped); one that never got
   * a channel never stopped the guest, so the failure is announced here.
   */
  private linkLost(message: string): void {
    const s = this.block.status;
    if (s === 'postcopy-active' || s === 'postcopy-recover' || s === 'postcopy-paused') this.hooks.log(message);
    else this.hooks.error(message);
    this.block.setWord(MigWord.LINK_LOST, 1);
    if (!this.mainDelivered) this.finishWithoutWorker();
  }

  /** Ends a migration whose worker never started: the guest never stopped, nothing to undo. */
  private finishWithoutWorker(): void {
    for (;;) {
      const s = this.block.status;
      if (isFinished(s)) break;
      const to = s === 'cancelling' ? 'cancelled' : 'failed';
      if (this.block.compareAndSet(s, to)) {
        this.hooks.status(s, to);
        break;
      }
    }
    this.teardown();
  }

  private onWorker(msg: FromSource): void {
    switch (msg.type) {
      case 'switchover':
        if (this.link) sendControl((d) => this.link?.sendControl(d), msg.message);
        return;
      case 'status':
        if (msg.error) this.hooks.error(msg.error);
        this.hooks.status(msg.from, msg.to, msg.error);
        return;
      case 'runstate':
        this.machine.noteRunstate(msg.from as RunState);
        return;
      case 'probe':
        this.link?.sendControl({ probe: performance.now(), wall: Date.now(), ...(msg.id !== undefined ? { id: msg.id } : {}) } satisfies ProbeMessage);
        return;
      case 'heard':
        // The worker already acted on it (switchover channel); this is for the log.
        this.fromDestination(msg.message);
        return;
      case 'log':
        this.hooks.log(msg.text);
        return;
      case 'file':
        this.hooks.file(msg.name, msg.blob);
        this.hooks.log(`saved ${msg.blob.size} bytes as file ${msg.name}`);
        return;
      case 'finished':
        // A worker that ended while a cancel was in flight (say its target failed to open)
        // leaves the status at 'cancelling'; it is over, so the cancel is complete.
        if (this.block.compareAndSet('cancelling', 'cancelled')) this.hooks.status('cancelling', 'cancelled');
        this.teardown();
        return;
    }
  }

  private onReturnPath(msg: FromReturnPath): void {
    if (msg.type === 'rp-error') this.hooks.error(msg.message);
    else this.hooks.log(`return path: ${msg.name}${msg.value !== undefined ? ` ${msg.value}` : ''}`);
  }

  private teardown(): void {
    if (this.ended) return;
    this.ended = true;
    this.unwatchDelay();
    if (this.keepalive !== null) clearInterval(this.keepalive);
    const completed = this.block.status === 'completed';
    // Give the last bytes time to leave on success; drop the link at once on failure.
    setTimeout(() => this.link?.close(completed ? 'migration completed' : 'migration ended'), completed ? 2000 : 0);
    setTimeout(() => {
      this.worker.terminate();
      this.rpWorker?.terminate();
    }, completed ? 2500 : 100);
  }
}
