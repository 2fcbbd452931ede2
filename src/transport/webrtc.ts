// `webrtc:PEER` / `webrtc:`: a migration connection between two tabs.
//
// simple-peer owns the RTCPeerConnection, offer/answer and ICE (relayed by Signaling), and its
// own channel carries only a small JSON control conversation:
//
//   source                                   destination
//   hello {role:'source', channels}  ──►     checks role, protocol, channel set;
//                                            creates its channels, posts them to its workers
//                                    ◄──     hello {role:'destination', channels}
//   checks; creates its channels,
//   posts them to its workers
//   ready                            ──►     (both links resolve)
//   ...                                      ...
//   bye {reason}                     ◄─►     orderly end of the link
//
// Migration bytes never go through simple-peer's stream: both sides create the same negotiated
// data channels (`negotiated: true, id: N`) directly on the RTCPeerConnection and transfer each
// to its worker in the same task that created it (Chromium refuses the transfer after an await
// or a send). Each side creates its channels before it says so, and nobody sends on a channel
// before the other side has said so, so no message reaches a stream id the peer has no channel
// for yet.
//
// Pairing (pairing.ts) comes first on the control channel, before any hello: a CPace run whose
// password is the secret and whose channel identifier is both DTLS fingerprints as this
// connection verified them (the peer's from the certificate DTLS received, never from the SDP).
// No hello, and so no channel and no migration byte, before both sides confirmed the same key.
// A session description that carries anything but one sha-256 fingerprint is refused before a
// connection is even made (dtls-fingerprint.ts says why).
//
// Signaling is only trusted as far as it must be: a session listens to its own peer's messages
// that came the way that peer did (BroadcastChannel, relay, token), takes one answer, and once
// the connection is up ignores signaling altogether (refuse and bye travel inside DTLS then).
//
// Reliance on simple-peer internals: `peer._pc` (the RTCPeerConnection; simple-peer 9 exposes no
// public accessor). simple-peer's own channel is negotiated too, on CONTROL_CHANNEL_ID, so it
// can never take a stream id our channels need (a non-negotiated channel would take 0 or 1).

import * as simplePeerModule from 'simple-peer/simplepeer.min.js';
import type SimplePeerNs from 'simple-peer';
import { TransportError, type CloseInfo } from './channel.js';
import { channelLabel, checkRoutes, deliverChannel, type ChannelId, type ChannelRoute } from './routes.js';
import { fingerprintOf, sdpFingerprint, sdpFingerprintProblem, verifiedRemoteFingerprint } from './dtls-fingerprint.js';
import { OPEN_POLICY, Pairing, tlsHandshakeError, type Fingerprints, type MigrationRole, type PairingMessage, type PairingPolicy } from './pairing.js';
import { newPeerId, type PeerLeftDetail, type PeerVia, type SignalMessage, type Signaling } from './signaling.js';

export const WEBRTC_PROTOCOL = 1;
/** Stream id of simple-peer's control channel; routes may use 0..1022. */
export const CONTROL_CHANNEL_ID = 1023;

type PeerCtor = SimplePeerNs.SimplePeer;
type SimplePeer = SimplePeerNs.Instance;

function peerClass(): PeerCtor {
  // Vite turns the UMD bundle into a module with a default export; served untransformed (the
  // test runner) the bundle exports nothing and sets globalThis.SimplePeer instead.
  const mod = simplePeerModule as unknown as { default?: PeerCtor };
  const ctor = mod.default ?? (globalThis as { SimplePeer?: PeerCtor }).SimplePeer;
  if (typeof ctor !== 'function') throw new TransportError('simple-peer did not load');
  return ctor;
}

export type { MigrationRole } from './pairing.js';

interface Hello {
  t: 'hello';
  app: 'tabmig';
  protocol: number;
  role: MigrationRole;
  id: string;
  name: string;
  channels: ChannelId[];
  info?: unknown;
}

type Control =
  | Hello
  | PairingMessage
  | { t: 'ready' }
  | { t: 'refuse'; reason: string }
  | { t: 'bye'; reason: string }
  | { t: 'app'; data: unknown };

export interface RemoteHello {
  id: string;
  name: string;
  protocol: number;
  role: MigrationRole;
  channels: ChannelId[];
  /** Whatever the peer passed as `info` (e.g. its stream version or RAM size). */
  info?: unknown;
}

export interface PeerLink {
  readonly uri: string;
  readonly role: MigrationRole;
  readonly peerId: string;
  readonly remote: RemoteHello;
  /** One per connection attempt; also in every ChannelMessage. */
  readonly connection: string;
  /** Channels whose route had no `to`, kept on this thread (wrap them with fromDataChannel). */
  readonly channels: ReadonlyMap<ChannelId, RTCDataChannel>;
  /** For getStats(); do not close it directly, use close(). */
  readonly pc: RTCPeerConnection;
  /**
   * Resolves once when the link ends: ok=true after close() on either side; ok=false with a
   * reason naming the peer when the connection is lost (tab closed, crashed, network).
   */
  readonly closed: Promise<CloseInfo>;
  onclose: ((info: CloseInfo) => void) | null;
  /** Small application messages over the control channel (JSON-serializable). */
  sendControl(data: unknown): void;
  oncontrol: ((data: unknown) => void) | null;
  /**
   * Ends the link: tells the peer, then closes the peer connection and with it every channel.
   * Workers should close() their channels first; channels still open then fail on both sides.
   */
  close(reason?: string): Promise<void>;
  /**
   * Fault tests: the connection breaks as a network failure would (no bye): this side's peer
   * connection and every channel on it go, and the peer sees them fail.
   */
  drop(): void;
}

export interface WebRtcCommon {
  /** Channels this side creates and where each goes; both sides must name the same ids. */
  routes: readonly ChannelRoute[];
  /** Default none: same-browser tabs need no STUN, and none is contacted unless configured. */
  iceServers?: RTCIceServer[];
  /** 'relay' forces every connection through a TURN server (tests, strict networks). */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Sent in the hello, seen by the peer as remote.info. */
  info?: unknown;
  /**
   * Asked with the peer's hello info before this side creates its channels: a reason refuses the
   * peer (it hears the reason; a destination keeps waiting), null lets it in.
   */
  checkPeer?: (info: unknown, peer: { id: string; name: string }) => string | null;
}

export interface ConnectOptions extends WebRtcCommon {
  /** Give up after this long (default 20 s). */
  timeoutMs?: number;
  /** How long to wait for an unknown peer id to show up in the peer list (default 3 s). */
  discoveryTimeoutMs?: number;
  /** The pairing secret this side proves (tls-creds, or the destination's pairing code); '' none. */
  secret?: string;
}

export interface AcceptOptions extends WebRtcCommon {
  /** Only this peer id may connect (`webrtc:PEER`); null/undefined = anyone (`webrtc:`). */
  from?: string | null;
  /** Per attempt: a connection that has not finished its handshake by then is dropped (20 s). */
  handshakeTimeoutMs?: number;
  /** What a source must prove, and the words of a refusal (default: anyone, no secret needed). */
  pairing?: PairingPolicy;
  /** An attempt failed before it got this side's channels (wrong secret, bad SDP, …): for the log. */
  onRefused?: (peer: string, reason: string) => void;
  /**
   * Connection attempts in handshake at once (default 8). Each sender has one at a time; when
   * all are taken, a new sender's offer replaces the oldest attempt that is evictAfterMs old
   * (default 2 s) and has not paired (one that has not even connected first), so stalled
   * attempts cannot keep a real source out.
   */
  maxPendingAttempts?: number;
  evictAfterMs?: number;
}

export interface WebRtcIncoming {
  /**
   * Resolves with the first link whose handshake completes. Rejects if cancelled, or if a peer
   * failed after this side had already handed its channels to workers (the incoming migration
   * fails then, as QEMU's does when its one connection breaks).
   */
  readonly connection: Promise<PeerLink>;
  cancel(reason?: string): void;
}

function sameIds(a: readonly ChannelId[], b: readonly ChannelId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function routeIds(routes: readonly ChannelRoute[]): ChannelId[] {
  return routes.map((r) => r.id).sort((a, b) => a - b);
}

function checkWebRtcRoutes(routes: readonly ChannelRoute[]): void {
  checkRoutes(routes);
  for (const r of routes) if (r.id === CONTROL_CHANNEL_ID) throw new RangeError(`channel id ${CONTROL_CHANNEL_ID} is reserved for control`);
}

/**
 * Creates the negotiated data channels on pc and posts each along its route, all in this one
 * synchronous call (the same task that created them). Returns the channels kept on this thread.
 */
export function createNegotiatedChannels(pc: RTCPeerConnection, routes: readonly ChannelRoute[], connection: string): Map<ChannelId, RTCDataChannel> {
  const kept = new Map<ChannelId, RTCDataChannel>();
  for (const route of routes) {
    const label = route.label ?? channelLabel(route.id);
    const dc = pc.createDataChannel(label, { negotiated: true, id: route.id, ordered: true });
    if (!deliverChannel(route, dc, { id: route.id, label, connection, transport: 'webrtc' })) kept.set(route.id, dc);
  }
  return kept;
}

/**
 * One simple-peer instance towards one remote tab, from first offer to close: relays its signals,
 * runs the handshake, and becomes the PeerLink.
 */
class Session implements PeerLink {
  readonly uri: string;
  readonly peer: SimplePeer;
  readonly pc: RTCPeerConnection;
  readonly closed: Promise<CloseInfo>;
  onclose: ((info: CloseInfo) => void) | null = null;
  oncontrol: ((data: unknown) => void) | null = null;
  remote!: RemoteHello;
  channels: ReadonlyMap<ChannelId, RTCDataChannel> = new Map();
  /** Channels have been created and handed over (cannot be taken back). */
  committed = false;
  established = false;
  private resolveClosed!: (i: CloseInfo) => void;
  private closeInfo: CloseInfo | null = null;
  private byeReason: string | null = null;
  private localReason: string | null = null;
  private lastError = '';
  private readonly cleanups: (() => void)[] = [];
  /** ICE and DTLS are up: signaling is no longer listened to. */
  private connected = false;
  /** Source: the destination's answer arrived (one is taken; later SDP is dropped). */
  private answered = false;
  /** Pairing finished: hellos may flow. */
  private authed = false;
  private readonly pairing: Pairing;
  readonly startedAt = Date.now();

  constructor(
    readonly sig: Signaling,
    readonly role: MigrationRole,
    readonly peerId: string,
    readonly connection: string,
    private readonly opts: WebRtcCommon & { secret?: string; pairing?: PairingPolicy },
    /** Which way this peer's signaling travels; messages that come another way are not its. */
    readonly via: PeerVia,
    /** Handshake outcome: called once with null (ready) or an error. */
    private readonly settle: (error: TransportError | null) => void,
    /** Asked just before this session creates its channels; false refuses the peer instead. */
    private readonly mayCommit: () => string | null = () => null,
  ) {
    this.uri = role === 'source' ? `webrtc:${peerId}` : 'webrtc:';
    this.closed = new Promise<CloseInfo>((r) => (this.resolveClosed = r));
    this.pairing = new Pairing({
      role,
      via,
      send: (m) => this.sendCtl(m),
      fingerprints: () => this.fingerprints(),
      secret: opts.secret ?? '',
      policy: opts.pairing ?? OPEN_POLICY,
    });
    this.pairing.done.then(
      () => {
        if (this.closeInfo) return;
        this.authed = true;
        if (this.role === 'source') this.sendCtl(this.hello());
      },
      (e: Error) => this.authFail(e.message),
    );
    const Peer = peerClass();
    const config: RTCConfiguration = { iceServers: opts.iceServers ?? [] };
    if (opts.iceTransportPolicy) config.iceTransportPolicy = opts.iceTransportPolicy;
    if (sig.certificate) config.certificates = [sig.certificate];
    this.peer = new Peer({
      initiator: role === 'source',
      trickle: true,
      objectMode: true,
      config,
      channelName: 'tabmig-control',
      channelConfig: { negotiated: true, id: CONTROL_CHANNEL_ID, ordered: true },
    });
    this.pc = (this.peer as unknown as { _pc: RTCPeerConnection | null })._pc!;
    if (!this.pc) throw new TransportError('WebRTC is not available in this browser');
    this.peer.on('signal', (data: unknown) => sig.sendSignal(peerId, connection, data));
    this.peer.on('connect', () => this.onConnect());
    this.peer.on('data', (data: unknown) => this.onData(data));
    this.peer.on('error', (err: Error & { code?: string }) => (this.lastError = err.message || err.code || 'error'));
    this.peer.on('close', () => this.onPeerClose());

    const onSignal = (e: Event) => {
      const m = (e as CustomEvent<SignalMessage>).detail;
      if (m.from !== peerId || m.conn !== connection) return;
      e.preventDefault(); // claimed: Signaling refuses unclaimed offers on our behalf
      if ((m.via ?? 'local') !== this.via) return sig.note('via', `signaling: a message for connection ${connection} came the wrong way (${m.via}); dropped`);
      // Once DTLS is up, refusals and byes travel inside it; signaling could only be forged.
      if (this.connected) return sig.note('late-signal', `signaling: ${m.kind} for an established connection to ${peerId} ignored`);
      const sdp = (m.data as { type?: unknown } | null)?.type;
      if (m.kind === 'reject') {
        // After the answer, the destination speaks over the connection: a reject is not its.
        if (this.role === 'source' && this.answered) return sig.note('late-reject', `signaling: a reject for connection ${connection} after its answer ignored`);
        this.fail(m.reason || 'refused', false);
      } else if (sdp === 'offer' || sdp === 'answer') {
        // One answer per attempt (the destination gets its one offer through signal()).
        if (this.role === 'destination' || this.answered || sdp === 'offer') return sig.note('extra-sdp', `signaling: an unexpected ${sdp} for connection ${connection} dropped`);
        this.answered = true;
        const problem = sdpFingerprintProblem((m.data as { sdp?: string }).sdp);
        if (problem) return this.fail(tlsHandshakeError(`the answer from '${peerId}': ${problem}`));
        try {
          this.peer.signal(m.data as SimplePeerNs.SignalData);
        } catch (err) {
          this.fail(`signaling failed: ${(err as Error).message}`);
        }
      } else if (!this.peer.destroyed) {
        try {
          this.peer.signal(m.data as SimplePeerNs.SignalData);
        } catch (err) {
          this.fail(`signaling failed: ${(err as Error).message}`);
        }
      }
    };
    // A crashed tab says no bye, and ICE takes ~15 s to call the connection failed. Two weaker
    // witnesses together are enough: the peer stopped answering signaling queries AND the ICE
    // connection went 'disconnected' (no consent responses for a few seconds).
    let silent = false;
    const disconnected = () => this.pc.iceConnectionState === 'disconnected' || this.pc.connectionState === 'disconnected';
    const crashed = () => this.fail(`connection to peer '${peerId}' lost (peer stopped responding)`);
    const onLeft = (e: Event) => {
      const d = (e as CustomEvent<PeerLeftDetail>).detail;
      if (d.id !== peerId) return;
      // A bye (the tab closed or reloaded; signed, so it is the peer's) ends the link at once;
      // silence only together with a disconnected ICE connection — also before the link is up
      // (the handshake timeout bounds that): a busy machine is slow to answer queries, and a
      // handshake is not worth failing for that.
      if (d.reason === 'bye' || d.reason === 'closed') this.fail(`peer '${peerId}' went away (tab closed or reloaded)`);
      else {
        silent = true;
        if (disconnected()) crashed();
      }
    };
    const onPeers = () => {
      if (silent && sig.peer(peerId)) silent = false;
    };
    const onState = () => {
      if (silent && disconnected()) crashed();
    };
    sig.addEventListener('signal', onSignal);
    sig.addEventListener('peer-left', onLeft);
    sig.addEventListener('peers', onPeers);
    this.pc.addEventListener('iceconnectionstatechange', onState);
    this.pc.addEventListener('connectionstatechange', onState);
    this.cleanups.push(() => {
      sig.removeEventListener('signal', onSignal);
      sig.removeEventListener('peer-left', onLeft);
      sig.removeEventListener('peers', onPeers);
      this.pc.removeEventListener('iceconnectionstatechange', onState);
      this.pc.removeEventListener('connectionstatechange', onState);
    });
  }

  /** Feeds the first offer (destination side). */
  signal(data: unknown): void {
    this.peer.signal(data as SimplePeerNs.SignalData);
  }

  private hello(): Hello {
    return {
      t: 'hello',
      app: 'tabmig',
      protocol: WEBRTC_PROTOCOL,
      role: this.role,
      id: this.sig.id,
      name: this.sig.name,
      channels: routeIds(this.opts.routes),
      info: this.opts.info,
    };
  }

  private sendCtl(m: Control): void {
    if (this.peer.destroyed) return;
    try {
      this.peer.send(JSON.stringify(m));
    } catch {
      // the close event reports it
    }
  }

  /** Whether ICE and DTLS are up (the pairing runs from then on). */
  get isConnected(): boolean {
    return this.connected;
  }

  /** Whether both sides proved the secret. */
  get isPaired(): boolean {
    return this.authed;
  }

  private onConnect(): void {
    this.connected = true;
    this.pairing.start();
  }

  /**
   * This side's fingerprint (its certificate's; with none configured, the one of the SDP it
   * wrote itself) and the peer's: the certificate DTLS received, which must also be the one its
   * SDP and its announcement named.
   */
  private async fingerprints(): Promise<Fingerprints | string> {
    const mine = this.sig.certificate ? fingerprintOf(this.sig.certificate) : sdpFingerprint(this.pc.localDescription?.sdp);
    const theirs = await verifiedRemoteFingerprint(this.pc);
    if (!mine || !theirs) return 'no verified DTLS certificate on this connection';
    if (theirs !== sdpFingerprint(this.pc.remoteDescription?.sdp)) return `peer '${this.peerId}' presented a certificate other than the one its session description names`;
    // A peer that announced its certificate must present that one (a takeover would not).
    const announced = this.sig.peer(this.peerId)?.fp;
    if (announced && announced !== theirs) return `peer '${this.peerId}' presented a certificate other than the one it announced`;
    return { mine, theirs };
  }

  private authFail(reason: string): void {
    if (this.closeInfo) return;
    this.sendCtl({ t: 'refuse', reason });
    this.fail(reason);
  }

  /** What is wrong with the peer's hello, or null. */
  private checkHello(h: Hello): string | null {
    if (h.app !== 'tabmig') return 'peer is not tabmig';
    if (h.protocol !== WEBRTC_PROTOCOL) return `peer speaks tabmig connection protocol ${h.protocol}, this tab speaks ${WEBRTC_PROTOCOL}`;
    const want: MigrationRole = this.role === 'source' ? 'destination' : 'source';
    if (h.role !== want) return `peer is a migration ${h.role}, expected a ${want}`;
    const disagreement = this.opts.checkPeer?.(h.info, { id: String(h.id), name: String(h.name) });
    if (disagreement) return disagreement;
    const mine = routeIds(this.opts.routes);
    if (!Array.isArray(h.channels) || !sameIds([...h.channels].sort((a, b) => a - b), mine)) {
      return `channel mismatch: this tab uses [${mine.join(',')}], peer uses [${String(h.channels)}] (multifd/postcopy settings differ?)`;
    }
    return null;
  }

  private takeHello(h: Hello): void {
    this.remote = { id: h.id, name: h.name, protocol: h.protocol, role: h.role, channels: h.channels, info: h.info };
  }

  private commitChannels(): void {
    // Synchronous from here to the end of the loop: the transfer must happen in this task.
    this.channels = createNegotiatedChannels(this.pc, this.opts.routes, this.connection);
    this.committed = true;
  }

  private onData(raw: unknown): void {
    let m: Control;
    try {
      m = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw as Uint8Array)) as Control;
    } catch {
      return this.fail('malformed control message');
    }
    if (typeof m !== 'object' || m === null) return this.fail('malformed control message');
    switch (m.t) {
      case 'auth':
      case 'pake':
      case 'pake-confirm':
        this.pairing.receive(m);
        break;
      case 'hello': {
        if (this.committed) return; // duplicate: channels exist already
        if (!this.authed) return this.authFail(tlsHandshakeError('hello before pairing'));
        const problem = this.checkHello(m);
        if (problem) {
          this.sendCtl({ t: 'refuse', reason: problem });
          return this.fail(problem);
        }
        const busy = this.mayCommit();
        if (busy) {
          this.sendCtl({ t: 'refuse', reason: busy });
          return this.fail(busy);
        }
        this.takeHello(m);
        this.commitChannels();
        if (this.role === 'destination') {
          this.sendCtl(this.hello());
        } else {
          this.sendCtl({ t: 'ready' });
          this.established = true;
          this.settle(null);
        }
        break;
      }
      case 'ready':
        if (this.role === 'destination' && this.committed && !this.established) {
          this.established = true;
          this.settle(null);
        }
        break;
      case 'refuse':
        this.fail(`refused by peer: ${String(m.reason).slice(0, 300)}`);
        break;
      case 'bye':
        this.byeReason = String(m.reason || 'closed by peer').slice(0, 300);
        this.peer.destroy();
        break;
      case 'app':
        if (this.established) this.oncontrol?.(m.data);
        break;
    }
  }

  private onPeerClose(): void {
    if (this.localReason !== null) this.finish({ ok: true, by: 'local', reason: this.localReason });
    else if (this.byeReason !== null) this.finish({ ok: true, by: 'remote', reason: this.byeReason });
    else this.fail(`connection to peer '${this.peerId}' lost${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  /** Ends the session with an error (handshake failure or lost link). */
  fail(reason: string, tellPeer = true): void {
    if (this.closeInfo) return;
    // Before the link is up the peer may not hear about it otherwise: tell it through signaling.
    if (!this.established && tellPeer) this.sig.sendReject(this.peerId, this.connection, reason);
    if (!this.peer.destroyed) this.peer.destroy();
    this.finish({ ok: false, by: 'transport', reason });
  }

  private finish(info: CloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    for (const c of this.cleanups.splice(0)) c();
    if (!this.peer.destroyed) this.peer.destroy();
    if (!this.established) this.settle(new TransportError(info.reason));
    this.resolveClosed(info);
    try {
      this.onclose?.(info);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  sendControl(data: unknown): void {
    this.sendCtl({ t: 'app', data });
  }

  drop(): void {
    if (this.closeInfo || this.localReason !== null) return;
    this.fail(`connection to peer '${this.peerId}' lost`, false);
  }

  async close(reason = 'closed'): Promise<void> {
    if (this.closeInfo || this.localReason !== null) {
      await this.closed;
      return;
    }
    this.localReason = reason;
    this.sendCtl({ t: 'bye', reason });
    // Let the bye leave before the connection goes (it is tiny; bounded wait).
    const ch = (this.peer as unknown as { _channel?: RTCDataChannel })._channel;
    for (let i = 0; i < 50 && ch && ch.readyState === 'open' && ch.bufferedAmount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    this.peer.destroy();
    await this.closed;
  }
}

/**
 * Source side of `webrtc:PEER`: connects to the tab with that peer id, which must be waiting in
 * acceptFromPeer. Creates this side's channels along `routes` once the destination agreed, and
 * resolves when both sides have them. Rejects with TransportError (message ready for the user).
 */
export async function connectToPeer(sig: Signaling, peerId: string, opts: ConnectOptions): Promise<PeerLink> {
  checkWebRtcRoutes(opts.routes);
  const where = `Failed to connect to 'webrtc:${peerId}'`;
  if (!peerId) throw new TransportError(`${where}: no peer id`);
  if (peerId === sig.id) throw new TransportError(`${where}: that is this tab`);
  if (sig.closed) throw new TransportError(`${where}: signaling is closed`);
  const discoveryMs = opts.discoveryTimeoutMs ?? 3000;
  const listed = await sig.waitForPeer(peerId, discoveryMs);
  if (!listed) throw new TransportError(`${where}: no tab with that peer id`);
  // A tab that is not waiting ignores offers (it does not answer them): its presence says so.
  const known = await sig.waitForPeer(peerId, discoveryMs, (p) => p.incoming);
  if (!known) throw new TransportError(`${where}: that tab is not waiting for an incoming migration`);
  if (known.incomingFrom && known.incomingFrom !== sig.id) throw new TransportError(`${where}: that tab accepts an incoming migration only from '${known.incomingFrom}'`);
  // A copy-paste token goes through people: give them minutes, not seconds.
  const timeoutMs = opts.timeoutMs ?? (known.via === 'token' ? 600000 : 20000);
  return new Promise<PeerLink>((resolve, reject) => {
    let session: Session | null = null;
    const timer = setTimeout(() => session?.fail(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
    try {
      session = new Session(sig, 'source', peerId, newPeerId(12), opts, known.via, (err) => {
        clearTimeout(timer);
        if (err) reject(new TransportError(`${where}: ${err.message}`));
        else resolve(session!);
      });
    } catch (e) {
      clearTimeout(timer);
      reject(e instanceof TransportError ? e : new TransportError(`${where}: ${(e as Error).message}`));
    }
  });
}

/**
 * Destination side of `webrtc:` / `webrtc:PEER`: announces that this tab waits for an incoming
 * migration and accepts the first source that completes the handshake (others are refused with
 * a reason the source shows). Channels go along `routes` when the source's hello is accepted.
 */
export function acceptFromPeer(sig: Signaling, opts: AcceptOptions): WebRtcIncoming {
  checkWebRtcRoutes(opts.routes);
  const from = opts.from || null;
  const attempts = new Map<string, Session>(); // key: peerId + ' ' + conn
  let done = false;
  let committed: Session | null = null;
  let resolve!: (l: PeerLink) => void;
  let reject!: (e: unknown) => void;
  const connection = new Promise<PeerLink>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  connection.catch(() => {});

  const stop = () => {
    done = true;
    sig.removeEventListener('signal', onSignal);
    sig.setIncoming(false);
  };

  const maxPending = opts.maxPendingAttempts ?? 8;
  const evictAfterMs = opts.evictAfterMs ?? 2000;
  /** A slot for a new sender: free, or freed from a stalled attempt (not connected, else not paired; the oldest). */
  const makeRoom = (): boolean => {
    if (attempts.size < maxPending) return true;
    const stalled = [...attempts.values()]
      .filter((s) => !s.isPaired && !s.committed && Date.now() - s.startedAt >= evictAfterMs)
      .sort((x, y) => Number(x.isConnected) - Number(y.isConnected) || x.startedAt - y.startedAt);
    if (!stalled.length) return false;
    stalled[0]!.fail('this tab has too many connection attempts in progress; yours did not pair in time');
    return true;
  };
  const onSignal = (e: Event) => {
    const m = (e as CustomEvent<SignalMessage>).detail;
    if (m.kind !== 'signal') return;
    const key = `${m.from} ${m.conn}`;
    if (attempts.has(key)) return; // the session's own listener takes it
    e.preventDefault();
    // Only an offer starts an attempt; stray candidates or answers are nobody's.
    if ((m.data as { type?: unknown } | null)?.type !== 'offer') return;
    if (from && m.from !== from) return sig.sendReject(m.from, m.conn, `this tab accepts an incoming migration only from '${from}'`);
    if (committed || done) return sig.sendReject(m.from, m.conn, 'this tab already has an incoming migration');
    // A source announces itself before it offers (its presence reaches us first, on the same
    // channel): an offer from an id nobody announced is made up.
    const known = sig.peer(m.from);
    if (!known || known.via !== (m.via ?? 'local')) {
      sig.note('offer-unknown', `signaling: an offer from unknown peer '${String(m.from).slice(0, 40)}' dropped`);
      return;
    }
    // One attempt per sender at a time: a sender's further offers are dropped, so one member of
    // a room cannot take the slots of the others.
    if ([...attempts.values()].some((a) => a.peerId === m.from)) {
      sig.note('offer-flood', `signaling: another offer from ${m.from} while its attempt is in progress; dropped`);
      return;
    }
    const problem = sdpFingerprintProblem((m.data as { sdp?: string }).sdp);
    if (problem) {
      const reason = tlsHandshakeError(`the offer from '${m.from}': ${problem}`);
      opts.onRefused?.(m.from, reason);
      return sig.sendReject(m.from, m.conn, reason);
    }
    if (!makeRoom()) {
      sig.note('offer-busy', `signaling: too many connection attempts at once; the offer from ${m.from} refused`);
      return sig.sendReject(m.from, m.conn, 'this tab has too many connection attempts in progress; try again in a moment');
    }
    let session!: Session;
    // A token's answer goes back through people: minutes, not seconds.
    const timer = setTimeout(() => session?.fail('handshake timed out'), opts.handshakeTimeoutMs ?? (m.via === 'token' ? 600000 : 20000));
    const settle = (err: TransportError | null) => {
      clearTimeout(timer);
      attempts.delete(key);
      if (err && !session.committed) opts.onRefused?.(m.from, err.message);
      if (done && !err) return;
      if (!err) {
        stop();
        for (const other of attempts.values()) other.fail('another source connected first');
        attempts.clear();
        resolve(session);
      } else if (session.committed) {
        // Our channels already went to the workers for this peer: the incoming migration fails.
        stop();
        for (const other of attempts.values()) other.fail('incoming migration failed');
        attempts.clear();
        reject(new TransportError(`incoming migration from '${m.from}' failed: ${err.message}`));
      }
      // else: an attempt that never got as far as our channels; keep listening.
    };
    const mayCommit = () => {
      if (committed || done) return 'this tab already has an incoming migration';
      committed = session;
      return null;
    };
    try {
      session = new Session(sig, 'destination', m.from, m.conn, opts, m.via ?? 'local', settle, mayCommit);
    } catch (err) {
      clearTimeout(timer);
      return sig.sendReject(m.from, m.conn, (err as Error).message);
    }
    attempts.set(key, session);
    try {
      session.signal(m.data);
    } catch (err) {
      session.fail(`signaling failed: ${(err as Error).message}`);
    }
  };

  sig.addEventListener('signal', onSignal);
  sig.setIncoming(true, from);
  return {
    connection,
    cancel(reason = 'cancelled') {
      if (done) return;
      stop();
      for (const s of attempts.values()) s.fail(reason);
      attempts.clear();
      reject(new TransportError(`incoming migration ${reason}`));
    },
  };
}
