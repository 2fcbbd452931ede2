// One incoming migration, seen from the main thread: listens on the URI, routes every channel of
// the connection (main, return path, postcopy) to incoming.worker, which loads the stream,
// decides the runstate and starts the guest itself (incoming-thread.ts). This side only observes
// the incoming block and announces what the worker did, and carries the switchover handshake
// between the worker and the link's control conversation: the worker's 'ready' / 'failed' /
// 'started' go to the source, the source's 'commit' / 'abort' (or the link's loss) go into the
// block's VERDICT word.

import type { Machine } from '../guest/machine.js';
import { listenLoopback } from '../transport/loopback.js';
import type { MigrationLink } from '../transport/link.js';
import { CHANNEL, type ChannelRoute } from '../transport/routes.js';
import type { PairingPolicy } from '../transport/pairing.js';
import type { PeerVia, Signaling } from '../transport/signaling.js';
import type { MigrationUri } from '../transport/uri.js';
import { acceptFromPeer } from '../transport/webrtc.js';
import type { FromIncoming, IncomingStart, StreamSourceSpec, ToIncoming } from './destination/incoming-protocol.js';
import { IncomingBlock, IncomingCounter, IncomingWord, Phase } from './incoming-block.js';
import type { MigrationOptions } from './options.js';
import { capabilitiesOf, capabilityMismatch, sideCapabilities } from './capability-agreement.js';
import type { PageState } from './page-state.js';
import type { StreamLog } from './stream-log.js';
import { isProbe } from './source/switchover-cost.js';
import { multifdIds } from './ram/codecs/multifd-channels.js';
import { HoldPoints, Verdict, isKeepalive, isSwitchoverMessage, sendControl, sourceHelloOf, watchControlDelay, type SwitchoverMessage } from './switchover.js';

export interface IncomingHooks {
  /** The incoming status moved (setup → active → completed / failed). */
  status(to: 'setup' | 'active' | 'completed' | 'failed' | 'postcopy-active' | 'postcopy-paused' | 'postcopy-recover', error?: string): void;
  log(text: string): void;
  progress(bytes: number, pages: number): void;
  /** QEMU's autostart: whether a guest that was running at the source starts running here. */
  autostart(): boolean;
  /**
   * The link broke between 'ready' and the verdict: the complete machine is kept paused and the
   * status stays 'active' until settleDoubt() says how it ended (DESIGN §10).
   */
  inDoubt(): void;
}

/**
 * What this side needs of the link (WebRTC's PeerLink and the loopback link both are one): its
 * remote's hello `info` names the migration, and a WebRTC link says which peer it came from.
 */
type IncomingLink = Pick<MigrationLink, 'closed' | 'sendControl' | 'oncontrol' | 'close'> & {
  drop?(): void;
  readonly remote?: { info?: unknown };
  readonly peerId?: string;
};

/** Who the source of this incoming migration is: what an in-doubt destination asks it by. */
export interface IncomingSource {
  /** The migration's id, as the source named it when it connected. */
  migration: number;
  /** The source's peer id (webrtc:), or null for an in-page loopback source. */
  peer: string | null;
  /** How the source's peer was found: a tab of this browser, the relay, a token (null: loopback). */
  via: PeerVia | null;
  /** The Web Lock the source's page holds for its life, if it said. */
  lock: string | null;
}

export class IncomingMigration {
  readonly block = new IncomingBlock();
  private readonly worker: Worker;
  private link: IncomingLink | null = null;
  private listener: { close(): void } | { cancel(reason?: string): void } | null = null;
  private done = false;
  private abortReason: string | null = null;
  /** The source, once it connected and named its migration. */
  source: IncomingSource | null = null;

  private readonly unwatchDelay: () => void;

  constructor(
    private readonly machine: Machine,
    private readonly options: MigrationOptions,
    private readonly uri: MigrationUri,
    private readonly signaling: Signaling | null,
    private readonly machineType: string,
    private readonly hooks: IncomingHooks,
    private readonly file?: Blob,
    /** The service's page state: the worker marks pages RECEIVED in it (the memory map draws it). */
    private readonly pageState?: PageState,
    /** webrtc: what a source must prove (transport/consent.ts), and the ICE servers and policy. */
    private readonly pairing?: {
      policy: PairingPolicy;
      /** ICE servers and policy (?ice= and the settings panel). */
      ice?: { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy };
    },
    /** The stream inspector's log: the worker notes each section and command it reads. */
    private readonly streamLog: StreamLog | null = null,
  ) {
    this.worker = new Worker(new URL('./destination/incoming.worker.ts', import.meta.url), { type: 'module', name: 'incoming' });
    // x-tabmig-delay-control reaches the worker, which sends the handshake itself.
    this.unwatchDelay = watchControlDelay((minMs, maxMs) => this.worker.postMessage({ type: 'control-delay', minMs, maxMs } satisfies ToIncoming));
    this.worker.onmessage = (e: MessageEvent<FromIncoming>) => this.onWorker(e.data);
  }

  /** The destination's fault-test hold points ('loaded', 'commit-received'). */
  get holds(): HoldPoints {
    return this.block.holds;
  }

  /** Starts listening (or reading a saved stream). Throws QEMU-style errors for a bad URI. */
  start(): void {
    let source: StreamSourceSpec;
    switch (this.uri.kind) {
      case 'idb':
        source = { kind: 'idb', name: this.uri.name };
        break;
      case 'file':
        if (!this.file) throw new Error(`file:${this.uri.name} must be picked or dropped on the page to be loaded`);
        source = { kind: 'file', name: this.uri.name, blob: this.file };
        break;
      default:
        source = { kind: 'channel' };
    }
    this.listen(this.uri);
    // QEMU's qemu_start_incoming_migration: 'setup' from the main thread; the worker does the rest.
    this.block.autostart = this.hooks.autostart();
    this.block.compareAndSet('none', 'setup');
    this.hooks.status('setup');
    this.startSource = source;
    // A saved stream is read at once; a connection's thread starts when the source connects.
    if (source.kind !== 'channel') {
      this.hooks.log(`incoming migration from ${this.uri.uri}`);
      this.startThread();
    }
  }

  private startSource: StreamSourceSpec | null = null;
  private threadStarted = false;

  /**
   * Starts the incoming thread with the capabilities and parameters as they are now. QEMU reads
   * the destination's capabilities when the stream asks (postcopy's ADVISE, a compressed page),
   * so what a person switches on in a waiting tab counts: the thread starts only once the
   * source has connected, before any byte of the stream is read (the channels wait for it).
   */
  private startThread(): void {
    if (this.threadStarted || !this.startSource) return;
    this.threadStarted = true;
    const start: IncomingStart = {
      type: 'start',
      ram: this.machine.ram,
      deviceState: this.machine.deviceState.buffer,
      control: this.machine.control.buffer,
      block: this.block.buffer,
      pageState: this.pageState?.buffer ?? null,
      streamLog: this.streamLog?.buffer ?? null,
      pageGate: this.machine.pageGate.buffer,
      options: this.options.toPlain(),
      source: this.startSource,
      machineType: this.machineType,
    };
    this.worker.postMessage(start);
  }

  /** Waits for the source's connection on `uri`; its channels all go to the incoming worker. */
  private listen(uri: MigrationUri): void {
    const routes: ChannelRoute[] = [
      { id: CHANNEL.main, to: this.worker },
      { id: CHANNEL.returnPath, to: this.worker },
      { id: CHANNEL.postcopy, to: this.worker },
      // The switchover handshake, worker to worker (switchover-link.ts).
      { id: CHANNEL.switchover, to: this.worker },
      ...multifdIds(this.options).map((id) => ({ id, to: this.worker })),
    ];
    if (uri.kind === 'loopback') {
      const l = listenLoopback(uri.name, { routes });
      this.listener = l;
      l.connection.then((link) => this.connected(link)).catch(() => {});
    } else if (uri.kind === 'webrtc') {
      if (!this.signaling) throw new Error('WebRTC signaling is not available in this page');
      const acc = acceptFromPeer(this.signaling, {
        routes,
        from: uri.peer,
        info: { ramSize: this.machine.ramSize },
        // Before any channel: a source whose capabilities this tab cannot follow is told what to switch on where.
        checkPeer: (info, peer) => this.capabilityRefusal(info, peer),
        ...(this.pairing ? { pairing: this.pairing.policy, ...this.pairing.ice } : {}),
        // A refused attempt leaves this tab waiting; the log says who and why.
        onRefused: (peer, reason) => this.hooks.log(`incoming connection from '${peer}' refused: ${reason}`),
      });
      this.listener = acc;
      acc.connection.then((link) => this.connected(link)).catch((e: unknown) => {
        if (this.inPostcopy) this.hooks.log(`migrate-recover: ${e instanceof Error ? e.message : String(e)}`);
        else this.cancel(e instanceof Error ? e.message : String(e));
      });
    }
  }

  /** Why a connecting source's capabilities (its hello) do not fit this tab's, as they are now. */
  private capabilityRefusal(info: unknown, peer: { id: string; name: string }): string | null {
    const source = capabilitiesOf(info);
    if (!source) return null;
    const mine = new Set(sideCapabilities((c) => this.options.capability(c)).capabilities);
    const name = (n: string, id: string) => (n && n !== `Tab ${id}` ? `${n} (${id})` : `Tab ${id}`);
    return capabilityMismatch(source, mine, { source: name(peer.name, peer.id), destination: name(this.signaling?.name ?? '', this.signaling?.id ?? '') });
  }

  /** Whether the destination is past POSTCOPY_LISTEN (a broken link pauses rather than fails). */
  get inPostcopy(): boolean {
    const s = this.block.status;
    return s === 'postcopy-active' || s === 'postcopy-paused' || s === 'postcopy-recover';
  }

  /** qmp_migrate_recover: a new connection for the paused postcopy (the service checked the state). */
  recover(uri: MigrationUri): void {
    this.listen(uri);
  }

  private connected(link: IncomingLink): void {
    this.link = link;
    if (this.done) {
      link.close('migration ended');
      return;
    }
    // The source named its migration in its hello: the worker's handshake messages carry it.
    // (A recovery's connection belongs to the same migration.)
    const hello = sourceHelloOf(link.remote?.info);
    if (hello && !this.source) {
      const peer = link.peerId ?? null;
      const via = peer ? (this.signaling?.peer(peer)?.via ?? null) : null;
      this.source = { migration: hello.migration, peer, via, lock: hello.lock ?? null };
      this.block.setWord(IncomingWord.MIGRATION, hello.migration);
    }
    this.startThread();
    // Who the guest comes from, for the log (and the destination's console mark).
    const remote = (link as { remote?: { id?: unknown; name?: unknown } }).remote;
    if (remote && typeof remote.id === 'string') this.hooks.log(`incoming migration from '${remote.id}' (${String(remote.name ?? '')})`);
    link.oncontrol = (data) => {
      if (isSwitchoverMessage(data)) this.fromSource(data);
      else if (isKeepalive(data)) {
        this.worker.postMessage({ type: 'alive' } satisfies ToIncoming);
        // Echoed, so the source hears this tab lives (its x-outgoing-idle-timeout).
        sendControl((d) => link.sendControl(d), data);
      } else if (isProbe(data) && !data.echo) link.sendControl({ ...data, echo: true, peerWall: Date.now(), received: this.block.get(IncomingCounter.BYTES) });
    };
    link.closed.then((info) => {
      if (this.done || this.link !== link) return;
      if (this.inPostcopy) {
        // The guest runs here with part of its memory still at the source: pause, never fail.
        this.hooks.log(`connection to the source lost in postcopy: ${info.reason}`);
        this.worker.postMessage({ type: 'link-lost', reason: info.reason } satisfies ToIncoming);
        return;
      }
      // Before 'ready' this fails the load; after it the worker keeps the machine paused.
      this.block.setVerdict(Verdict.LINK_LOST);
      this.worker.postMessage({ type: 'cancel', reason: `connection to the source lost: ${info.reason}` });
    });
  }

  /**
   * The source's word on the switchover, into the VERDICT word the worker waits on; or, `heard`,
   * one the worker already took from the switchover channel, for the log and the abort's reason.
   */
  private fromSource(m: SwitchoverMessage, heard = false): void {
    // A message naming another migration moves nothing here.
    if (m.migration === 0 || m.migration !== this.block.migrationId) return;
    switch (m.switchover) {
      case 'commit':
        // `cont`/`stop` while inmigrate change autostart: the worker decides with today's value.
        this.block.autostart = this.hooks.autostart();
        if (this.block.setVerdict(Verdict.COMMIT) || heard) this.hooks.log('source committed: this side starts the guest');
        return;
      case 'abort':
        this.abortReason = m.reason;
        if (this.block.setVerdict(Verdict.ABORT) || heard) this.hooks.log(`source aborted the migration: ${m.reason}`);
        return;
      default:
        return; // ready, failed and started travel the other way
    }
  }

  /** `cont` or `stop` while inmigrate changed autostart: the worker may hear 'commit' itself, so tell it now. */
  autostartChanged(): void {
    this.block.autostart = this.hooks.autostart();
  }

  /** Fault tests (x-tabmig-drop-link): breaks the link as a network failure would. */
  dropLink(): boolean {
    if (!this.link?.drop || this.done) return false;
    this.link.drop();
    return true;
  }

  /** Fault tests (x-tabmig-close-return-path): the destination hangs up the return path. */
  closeReturnPath(): boolean {
    if (this.done) return false;
    this.worker.postMessage({ type: 'close-return-path' } satisfies ToIncoming);
    return true;
  }

  /** Frees the worker of an incoming migration that never started (its URI was refused). */
  dispose(): void {
    this.done = true;
    this.unwatchDelay();
    this.worker.terminate();
  }

  /** Stops waiting (the tab is being turned back into a normal one, or closed). */
  cancel(reason: string): void {
    if (this.done) return;
    if (this.listener && 'close' in this.listener) this.listener.close();
    if (this.listener && 'cancel' in this.listener) this.listener.cancel(reason);
    // A thread that never started still reports the failure, as one that did.
    this.startThread();
    this.worker.postMessage({ type: 'cancel', reason });
  }

  private onWorker(msg: FromIncoming): void {
    this.block.autostart = this.hooks.autostart();
    switch (msg.type) {
      case 'status':
        this.announce(msg.status, msg.error);
        return;
      case 'progress':
        this.hooks.progress(msg.bytes, msg.pages);
        return;
      case 'command':
        this.hooks.log(`stream command ${msg.name}${msg.value !== undefined ? ` ${msg.value}` : ''}`);
        return;
      case 'loaded':
        // A short migration may end before the first progress tick.
        this.hooks.progress(msg.bytes, this.block.get(IncomingCounter.PAGES));
        this.hooks.log(`incoming stream loaded and checked (${msg.bytes} bytes)`);
        return;
      case 'runstate':
        // The worker already put it in the control block; the machine tells its listeners.
        this.machine.noteRunstate(msg.from as Parameters<Machine['noteRunstate']>[0]);
        return;
      case 'switchover':
        sendControl((d) => this.link?.sendControl(d), msg.message);
        return;
      case 'heard':
        this.fromSource(msg.message, true);
        return;
      case 'in-doubt':
        this.hooks.inDoubt();
        return;
      case 'done':
        this.finish();
        return;
    }
  }

  /**
   * Ends a migration left in doubt, once the main thread knows (or gave up knowing) what the
   * source did: 'completed' (the copy is the guest) or 'failed' (discarded, or left to the person).
   */
  settleDoubt(to: 'completed' | 'failed', error?: string): void {
    if (this.block.phase !== Phase.KEPT_PAUSED || !this.block.compareAndSet('active', to)) return;
    this.announce(to, error);
  }

  private announce(status: string, error?: string): void {
    if (status === 'setup') return; // announced by start()
    if (status !== 'active' && status !== 'completed' && status !== 'failed' && !status.startsWith('postcopy-')) return;
    if (status === 'completed' || status === 'failed') this.done = true;
    let why = error;
    if (status === 'failed' && this.abortReason && this.block.verdict === Verdict.ABORT) why = `${error}: ${this.abortReason}`;
    this.hooks.status(status as Parameters<IncomingHooks['status']>[0], why);
  }

  private finish(): void {
    this.done = true;
    this.unwatchDelay();
    setTimeout(() => this.link?.close('migration ended'), 1500);
    setTimeout(() => this.worker.terminate(), 2000);
  }

  /** For query-migrate and the UI: pages the worker wrote so far. */
  get pagesReceived(): number {
    return this.block.get(IncomingCounter.PAGES);
  }

  /** Whether the source opened the return path. */
  get returnPathOpen(): boolean {
    return this.block.word(IncomingWord.RP_OPEN) === 1;
  }
}
