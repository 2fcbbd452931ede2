// Peer discovery and offer/answer/ICE relay. Same-browser tabs meet over BroadcastChannel (no
// server, the default); with a relay URL (the Vite servers' WebSocket at /signal, see
// server/signal-relay.ts) tabs of other browsers and machines in the same room are listed too;
// copy-paste tokens (token.ts) add peers with no server at all. Every peer and every message
// says which of these it came by (`via`), and a session only listens to its peer's.
//
// Hardening against a hostile page that can post on the BroadcastChannel: every message a tab
// posts there is signed (ECDSA P-256, a key pair made per page load whose private half never
// leaves memory) and its presence carries the public half, bound to its id and instance at first
// sight, so no page can speak as another — forge its bye, its reject, its answer or its
// presence. A peer id, once held by a live instance, is not taken over by another instance
// claiming it (an id yields only to an instance that was there first, within this tab's first
// query round: a duplicated tab); a bye also needs the leave token whose hash the tab
// announced; floods are capped per sender and malformed or unsigned messages dropped, each with
// a note ('note' events, the event log). Nothing a peer sends makes this tab send without
// bound: an offer to a tab that is not waiting is ignored (not answered), refusals are rate
// limited, and queries are answered with at most a few announcements a second.
//
// Each tab has a peer id kept in sessionStorage, so a reload keeps it. A duplicated tab copies
// sessionStorage and with it the id; every instance also carries a per-load nonce and its start
// time, and when two live instances share an id the younger one takes a new id.
//
// Liveness without trusting timers (Chromium throttles a hidden tab's timers, to once a minute
// after a while, but still runs its message handlers promptly): every tick a tab sends a query,
// everyone answers with an announcement, and a peer that misses `missedLimit` consecutive
// queries is dropped. A closing tab also says bye on pagehide, so usually it goes at once.

import { RELAY_MAX_BYTES, RELAY_PATH, RELAY_PROTOCOL, isRelayPresence, type FromRelay, type RelayPresence, type ToRelay } from './relay-protocol.js';

export const SIGNALING_PROTOCOL = 1;
const APP = 'tabmig';

/** How a peer was found and how its messages travel. */
export type PeerVia = 'local' | 'relay' | 'token';

export interface PeerInfo {
  id: string;
  /** Human name shown in the peer list. */
  name: string;
  /** Waiting for an incoming migration (migrate-incoming with a webrtc: URI). */
  incoming: boolean;
  /** When incoming: only this peer id may connect (null = anyone). */
  incomingFrom: string | null;
  /** Per-load nonce: changes on reload. */
  instance: string;
  /** performance.timeOrigin-based ms when that instance started. */
  since: number;
  /** Date.now() of the last message heard from it. */
  lastSeen: number;
  /** BroadcastChannel (a tab of this browser), the relay, or a copy-paste token. */
  via: PeerVia;
  /** sha-256 fingerprint of its DTLS certificate, as it announced it ('' if unknown). */
  fp: string;
}

type Presence = Omit<PeerInfo, 'lastSeen' | 'via'> & {
  /** Hex SHA-256 of the token its bye will carry (BroadcastChannel only). */
  leave?: string;
  /** Base64 raw P-256 public key its BroadcastChannel messages are signed with. */
  pub?: string;
};

export type SignalPayload = unknown;

/** A relayed message addressed to this tab. */
export interface SignalMessage {
  from: string;
  /** Connection id chosen by the initiator: one per connection attempt. */
  conn: string;
  kind: 'signal' | 'reject';
  data?: SignalPayload;
  reason?: string;
  /** Set on arrival: which way it came (a session only listens to its peer's). */
  via?: PeerVia;
}

type Wire = (
  | { app: typeof APP; v: number; type: 'announce' | 'query'; peer: Presence }
  | { app: typeof APP; v: number; type: 'bye'; from: string; instance: string; leave?: string }
  | { app: typeof APP; v: number; type: 'relay'; from: string; to: string; msg: SignalMessage }
) & {
  /** ECDSA P-256 / SHA-256 signature (base64) over the JSON of the message without it. */
  sig?: string;
};

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Refusals sent per second (and the burst), whatever the peers send. */
const REJECT_PER_S = 5;
const REJECT_BURST = 10;
/** Queries are answered with one announcement at most this often. */
const ANSWER_INTERVAL_MS = 200;
/** Presence messages (announce, query) per second from one known peer, and from all unknown ones. */
const PRESENCE_PER_SENDER = 20;
const PRESENCE_FROM_UNKNOWN = 200;

function b64(bytes: ArrayBuffer): string {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(s: string): Uint8Array<ArrayBuffer> | null {
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export interface SignalingOptions {
  /** BroadcastChannel name; tabs on the same name see each other. */
  channelName?: string;
  /** Human name announced with the id. Default "Tab <id>". */
  name?: string;
  /** Where the id persists across reloads; default sessionStorage (null: nowhere). */
  storage?: Storage | null;
  storageKey?: string;
  /** Use this id (it still yields to an older live instance holding the same id). */
  id?: string;
  /** Query period in ms (default 1500). */
  queryIntervalMs?: number;
  /** Consecutive unanswered queries before a peer is dropped (default 2). */
  missedLimit?: number;
  /** WebSocket URL of a signaling relay (null/undefined: BroadcastChannel only). */
  relayUrl?: string | null;
  /** Relayed messages for this tab handled per second and sender before the rest are dropped (default 100). */
  floodLimit?: number;
}

/** The relay on the page's own server: `ws(s)://HOST/signal?room=ROOM`. */
export function relayUrlFor(loc: { protocol: string; host: string }, room = 'default'): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${RELAY_PATH}?room=${encodeURIComponent(room)}`;
}

async function sha256Hex(s: string): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)));
  return [...h].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

const ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789'; // no l/o/0/1: ids get typed by people

export function newPeerId(length = 8): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let s = '';
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}

function defaultStorage(): Storage | null {
  try {
    return typeof sessionStorage !== 'undefined' ? sessionStorage : null;
  } catch {
    return null; // sandboxed frames throw on access
  }
}

export type PeerLeftDetail = { id: string; reason: 'bye' | 'timeout' | 'closed' };
export type RelayState = 'off' | 'connecting' | 'connected' | 'failed';
export type IdChangedDetail = { old: string; id: string };

/**
 * Events:
 *  - 'peers': the peer list changed (Event)
 *  - 'peer-left': CustomEvent<PeerLeftDetail>
 *  - 'id': this tab's id changed (duplicate detected), CustomEvent<IdChangedDetail>
 *  - 'signal': CustomEvent<SignalMessage> addressed to this tab; cancelable: a listener that
 *    handles it calls preventDefault(); an offer nobody claims is ignored (noted, not answered).
 *  - 'note': CustomEvent<string>, something dropped or refused, for the event log
 *  - 'relay': the relay connection's state changed (Event; see relayState)
 *  - 'token': CustomEvent<{peer: string; token: string}>, a copy-paste token is ready
 */
export class Signaling extends EventTarget {
  readonly instance = newPeerId(12);
  readonly since = performance.timeOrigin + performance.now();
  readonly channelName: string;
  private _id: string;
  private _name: string;
  private _incoming = false;
  private _incomingFrom: string | null = null;
  private readonly storage: Storage | null;
  private readonly storageKey: string;
  private readonly bc: BroadcastChannel;
  private readonly table = new Map<string, PeerInfo & { missed: number; leave?: string; pub?: string }>();
  /** This load's signing key pair (the private key is not extractable and never stored). */
  private readonly keys: Promise<{ pair: CryptoKeyPair; pub: string }>;
  private pub: string | undefined;
  /** Posts go out in order, each once signed. */
  private sendChain: Promise<void> = Promise.resolve();
  /** Received messages are checked in order per claimed sender. */
  private readonly recvChains = new Map<string, Promise<void>>();
  private readonly verifyKeys = new Map<string, Promise<CryptoKey | null>>();
  /** The bye, signed in advance: pagehide gives no time to sign. */
  private signedBye: Wire | null = null;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly missedLimit: number;
  private lastQueryAt = 0;
  private closedFlag = false;
  /** Relay peers, and token peers (tables of their own: a local entry wins an id). */
  private readonly remote = new Map<string, PeerInfo>();
  private fingerprint = '';
  private _certificate: RTCCertificate | null = null;
  private readonly leaveToken = newPeerId(24);
  private leaveHash: string | undefined;
  private readonly startedAt = Date.now();
  private readonly settleMs: number;
  private readonly floodLimit: number;
  private floodWindow = 0;
  private floodCount = 0;
  private readonly floodBySender = new Map<string, number>();
  private readonly noted = new Map<string, number>();
  /** Refusals this tab may still send (a token bucket: a flood of offers is not answered in kind). */
  private rejectTokens = REJECT_BURST;
  private rejectRefill = Date.now();
  /** Query answers: one announcement at most every ANSWER_INTERVAL_MS, the rest coalesced. */
  private lastAnswerAt = 0;
  private answerTimer: ReturnType<typeof setTimeout> | null = null;
  /** Presence messages per claimed sender in the current second, and from senders not yet known. */
  private presenceWindow = 0;
  private readonly presenceBySender = new Map<string, number>();
  private presenceFromUnknown = 0;
  // relay
  private readonly relayUrl: string | null;
  private ws: WebSocket | null = null;
  private relayTries = 0;
  private relayTimer: ReturnType<typeof setTimeout> | null = null;
  private _relayState: RelayState = 'off';
  /** Token peers: their outgoing signals, collected until a token can be written. */
  private readonly tokenOut = new Map<string, { conn: string; signals: unknown[]; timer: ReturnType<typeof setTimeout> | null }>();
  // A page going into the back/forward cache may come back: say bye, but keep the channel.
  private readonly onPageHide = (e: PageTransitionEvent) => (e.persisted ? this.bye() : this.close());
  private readonly onPageShow = (e: PageTransitionEvent) => e.persisted && this.query();

  constructor(opts: SignalingOptions = {}) {
    super();
    this.channelName = opts.channelName ?? 'tabmig-signaling';
    this.storage = opts.storage === undefined ? defaultStorage() : opts.storage;
    this.storageKey = opts.storageKey ?? 'tabmig-peer-id';
    this._id = opts.id ?? this.loadId() ?? newPeerId();
    this.saveId();
    this._name = opts.name ?? `Tab ${this._id}`;
    this.missedLimit = opts.missedLimit ?? 2;
    this.settleMs = 2 * (opts.queryIntervalMs ?? 1500);
    this.floodLimit = opts.floodLimit ?? 100;
    this.relayUrl = opts.relayUrl ?? null;
    this.keys = (async () => {
      const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
      const pub = b64(await crypto.subtle.exportKey('raw', pair.publicKey));
      this.leaveHash = await sha256Hex(this.leaveToken);
      this.pub = pub;
      return { pair, pub };
    })();
    void this.keys.then(() => this.prepareBye());
    this.bc = new BroadcastChannel(this.channelName);
    this.bc.onmessage = (e: MessageEvent) => this.onWire(e.data as Wire);
    this.timer = setInterval(() => this.tick(), opts.queryIntervalMs ?? 1500);
    if (typeof window !== 'undefined') {
      addEventListener('pagehide', this.onPageHide);
      addEventListener('pageshow', this.onPageShow);
    }
    this.query();
    if (this.relayUrl) this.connectRelay();
  }

  get id(): string {
    return this._id;
  }

  get name(): string {
    return this._name;
  }

  get incoming(): boolean {
    return this._incoming;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get relayState(): RelayState {
    return this._relayState;
  }

  /** This tab's DTLS certificate (identity.ts), used for every peer connection, or null. */
  get certificate(): RTCCertificate | null {
    return this._certificate;
  }

  get fp(): string {
    return this.fingerprint;
  }

  /** Sets the certificate this tab connects with and announces its fingerprint. */
  setIdentity(certificate: RTCCertificate | null, fingerprint: string): void {
    this._certificate = certificate;
    this.fingerprint = fingerprint;
    this.announce();
  }

  /** Live peers (not this tab), sorted by name then id. */
  get peers(): PeerInfo[] {
    const local = [...this.table.values()].map(({ missed: _missed, leave: _leave, ...p }) => p);
    const others = [...this.remote.values()].filter((p) => !this.table.has(p.id));
    return [...local, ...others].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  peer(id: string): PeerInfo | undefined {
    const p = this.table.get(id);
    if (!p) return this.remote.get(id);
    const { missed: _missed, leave: _leave, ...info } = p;
    return info;
  }

  setName(name: string): void {
    this._name = name;
    this.announce();
  }

  /** Announces whether this tab waits for an incoming migration (and from whom). */
  setIncoming(incoming: boolean, from: string | null = null): void {
    this._incoming = incoming;
    this._incomingFrom = incoming ? from : null;
    this.announce();
  }

  /** Records something dropped or refused (rate-limited per kind), as a 'note' event. */
  note(kind: string, text: string): void {
    const now = Date.now();
    if (now - (this.noted.get(kind) ?? 0) < 1000) return;
    this.noted.set(kind, now);
    this.dispatchEvent(new CustomEvent<string>('note', { detail: text }));
  }

  /** Calls fn on every peer-list change and once now; returns the unsubscribe function. */
  subscribe(fn: (peers: PeerInfo[]) => void): () => void {
    const h = () => fn(this.peers);
    this.addEventListener('peers', h);
    h();
    return () => this.removeEventListener('peers', h);
  }

  /** Resolves with the peer once it is known (and `pred` holds for it), or undefined after timeoutMs. */
  waitForPeer(id: string, timeoutMs: number, pred: (p: PeerInfo) => boolean = () => true): Promise<PeerInfo | undefined> {
    const now = this.peer(id);
    if ((now && pred(now)) || this.closedFlag) return Promise.resolve(now && pred(now) ? now : undefined);
    return new Promise((resolve) => {
      const done = (p: PeerInfo | undefined) => {
        clearTimeout(t);
        this.removeEventListener('peers', check);
        resolve(p);
      };
      const check = () => {
        const p = this.peer(id);
        if (p && pred(p)) done(p);
      };
      const t = setTimeout(() => done(undefined), timeoutMs);
      this.addEventListener('peers', check);
      this.query();
    });
  }

  /** Relays simple-peer signal data (offer/answer/candidate) to a peer. */
  sendSignal(to: string, conn: string, data: SignalPayload): void {
    this.route(to, { from: this._id, conn, kind: 'signal', data });
  }

  /**
   * Tells an initiator its connection attempt is refused. Rate limited: refusals answer what
   * peers send, and a flood of offers must not make this tab flood the relay (which would cut
   * it off) or the BroadcastChannel.
   */
  sendReject(to: string, conn: string, reason: string): void {
    const now = Date.now();
    this.rejectTokens = Math.min(REJECT_BURST, this.rejectTokens + ((now - this.rejectRefill) / 1000) * REJECT_PER_S);
    this.rejectRefill = now;
    if (this.rejectTokens < 1) return this.note('reject-limit', `signaling: too many refusals to send; the one to ${to} dropped`);
    this.rejectTokens -= 1;
    this.route(to, { from: this._id, conn, kind: 'reject', reason });
  }

  /** Which way messages to this peer go: BroadcastChannel if it is a tab of this browser. */
  private route(to: string, msg: SignalMessage): void {
    if (this.table.has(to)) return this.relay(to, msg);
    const r = this.remote.get(to);
    if (r?.via === 'relay') return this.relaySend({ t: 'to', to, msg });
    if (r?.via === 'token') return this.tokenCollect(to, msg);
    this.relay(to, msg);
  }

  // ---- copy-paste tokens (the signals themselves are packed by token.ts) ----

  /** Adds a peer that is reached by copy-paste tokens; returns its id. */
  addTokenPeer(id: string, name = `Token peer ${id}`, fp = ''): string {
    this.remote.set(id, { id, name, incoming: true, incomingFrom: null, instance: id, since: 0, lastSeen: Date.now(), via: 'token', fp });
    this.dispatchEvent(new Event('peers'));
    return id;
  }

  /** Feeds the signals of a pasted token, as if they had come from that token peer. */
  deliverTokenSignals(from: string, conn: string, signals: unknown[]): void {
    const p = this.remote.get(from);
    if (!p || p.via !== 'token') throw new Error(`'${from}' is not a token peer`);
    for (const data of signals) this.deliver({ from, conn, kind: 'signal', data, via: 'token' });
  }

  /**
   * A token peer's outgoing signals are held until ICE gathering goes quiet (loopback and LAN
   * candidates come at once; a STUN or TURN server's within a second or two), then written as
   * one token.
   */
  private tokenCollect(to: string, msg: SignalMessage): void {
    if (msg.kind === 'reject') {
      this.note('token-reject', `copy-paste peer ${to}: ${msg.reason ?? 'refused'}`);
      return;
    }
    let out = this.tokenOut.get(to);
    if (!out || out.conn !== msg.conn) {
      if (out?.timer) clearTimeout(out.timer);
      out = { conn: msg.conn, signals: [], timer: null };
      this.tokenOut.set(to, out);
    }
    out.signals.push(msg.data);
    if (out.timer) clearTimeout(out.timer);
    const o = out;
    o.timer = setTimeout(() => {
      o.timer = null;
      this.dispatchEvent(new CustomEvent('token-signals', { detail: { peer: to, conn: o.conn, signals: [...o.signals] } }));
    }, 1500);
  }

  // ---- relay ----

  private setRelayState(s: RelayState): void {
    if (this._relayState === s) return;
    this._relayState = s;
    this.dispatchEvent(new Event('relay'));
  }

  private connectRelay(): void {
    if (this.closedFlag || !this.relayUrl) return;
    this.setRelayState('connecting');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.relayUrl);
    } catch {
      return this.setRelayState('failed');
    }
    this.ws = ws;
    ws.onopen = () => {
      this.relayTries = 0;
      this.relaySend({ t: 'join', v: RELAY_PROTOCOL, peer: this.relayPresence() });
    };
    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data !== 'string' || e.data.length > RELAY_MAX_BYTES) return this.note('relay-malformed', 'relay: malformed message dropped');
      let m: FromRelay;
      try {
        m = JSON.parse(e.data) as FromRelay;
      } catch {
        return this.note('relay-malformed', 'relay: malformed message dropped');
      }
      this.onRelay(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.dropRelayPeers();
      if (this.closedFlag) return;
      // Bounded: back off to 30 s, give up after 20 tries (no relay on this server).
      if (++this.relayTries > 20) return this.setRelayState('failed');
      this.setRelayState('connecting');
      this.relayTimer = setTimeout(() => this.connectRelay(), Math.min(30000, 500 * 2 ** Math.min(this.relayTries, 6)));
    };
  }

  private dropRelayPeers(): void {
    let changed = false;
    for (const [id, p] of this.remote) {
      if (p.via !== 'relay') continue;
      this.remote.delete(id);
      changed = true;
      if (!this.table.has(id)) this.dispatchEvent(new CustomEvent<PeerLeftDetail>('peer-left', { detail: { id, reason: 'timeout' } }));
    }
    if (changed) this.dispatchEvent(new Event('peers'));
  }

  private relayPresence(): RelayPresence {
    const { leave: _leave, pub: _pub, ...p } = this.presence();
    return p;
  }

  private relaySend(m: ToRelay): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  private onRelay(m: FromRelay): void {
    if (!isObj(m)) return this.note('relay-malformed', 'relay: malformed message dropped');
    switch (m.t) {
      case 'joined':
        this.setRelayState('connected');
        return;
      case 'id-taken':
        // Someone in the room holds this id: this tab takes another (the relay keeps ids apart).
        this.note('relay-id', `relay: peer id ${m.id} is taken in this room; this tab takes a new one`);
        this.renew();
        return;
      case 'peers':
        if (!Array.isArray(m.peers)) return;
        for (const p of m.peers) this.onRelayPeer(p);
        return;
      case 'peer':
        this.onRelayPeer(m.peer);
        return;
      case 'left': {
        const p = this.remote.get(m.id);
        if (!p || p.via !== 'relay') return;
        this.remote.delete(m.id);
        if (!this.table.has(m.id)) {
          // The relay lost its socket: like silence, not a bye (the peer link may well live on).
          this.dispatchEvent(new CustomEvent<PeerLeftDetail>('peer-left', { detail: { id: m.id, reason: 'timeout' } }));
          this.dispatchEvent(new Event('peers'));
        }
        return;
      }
      case 'from': {
        const msg = m.msg as SignalMessage;
        // The relay stamped `from` from the sender's connection: the message must agree with it.
        if (!isObj(msg) || msg.from !== m.from || typeof msg.conn !== 'string' || (msg.kind !== 'signal' && msg.kind !== 'reject')) {
          return this.note('relay-malformed', `relay: malformed message from ${String(m.from)} dropped`);
        }
        if (this.table.has(m.from)) return this.note('relay-spoof', `relay: message as ${m.from}, a tab of this browser, dropped`);
        this.deliver({ ...msg, via: 'relay' });
        return;
      }
      case 'no-peer':
        this.note('relay-no-peer', `relay: no peer ${m.to} in this room`);
        return;
      case 'error':
        this.note('relay-error', `relay: ${m.reason}`);
        return;
      default:
        this.note('relay-malformed', 'relay: malformed message dropped');
    }
  }

  private onRelayPeer(p: unknown): void {
    if (!isRelayPresence(p) || p.id === this._id) return;
    const old = this.remote.get(p.id);
    this.remote.set(p.id, { ...p, lastSeen: Date.now(), via: 'relay' });
    if (!this.table.has(p.id) && (!old || old.name !== p.name || old.incoming !== p.incoming || old.incomingFrom !== p.incomingFrom || old.fp !== p.fp)) {
      this.dispatchEvent(new Event('peers'));
    }
  }

  /**
   * Dispatches a message addressed to this tab. An offer nobody claims (this tab is not waiting)
   * is ignored, not answered: a source sees from the presence whether a tab waits.
   */
  private deliver(msg: SignalMessage): void {
    const claimed = !this.dispatchEvent(new CustomEvent<SignalMessage>('signal', { detail: msg, cancelable: true }));
    const offer = msg.kind === 'signal' && (msg.data as { type?: unknown } | null)?.type === 'offer';
    if (!claimed && offer) this.note('offer-not-waiting', `signaling: an offer from ${String(msg.from).slice(0, 40)} while this tab is not waiting for a migration; ignored`);
  }

  /**
   * Leaves: says bye (unless announce is false, which behaves like a crashed tab) and stops.
   */
  close(opts: { announce?: boolean } = {}): void {
    if (this.closedFlag) return;
    if (opts.announce !== false) this.bye();
    this.closedFlag = true;
    clearInterval(this.timer);
    this.bc.close();
    if (this.relayTimer) clearTimeout(this.relayTimer);
    if (this.answerTimer) clearTimeout(this.answerTimer);
    this.ws?.close();
    this.ws = null;
    for (const o of this.tokenOut.values()) if (o.timer) clearTimeout(o.timer);
    this.remote.clear();
    if (typeof window !== 'undefined') {
      removeEventListener('pagehide', this.onPageHide);
      removeEventListener('pageshow', this.onPageShow);
    }
    const had = [...this.table.keys()];
    this.table.clear();
    for (const id of had) this.dispatchEvent(new CustomEvent<PeerLeftDetail>('peer-left', { detail: { id, reason: 'closed' } }));
    if (had.length) this.dispatchEvent(new Event('peers'));
  }

  // ---- internals ----

  private presence(): Presence {
    return {
      id: this._id,
      name: this._name,
      incoming: this._incoming,
      incomingFrom: this._incomingFrom,
      instance: this.instance,
      since: this.since,
      fp: this.fingerprint,
      ...(this.leaveHash ? { leave: this.leaveHash } : {}),
      ...(this.pub ? { pub: this.pub } : {}),
    };
  }

  /** Signs and posts, in order (the first posts wait for the key pair). */
  private post(m: Wire, sent?: () => void): void {
    if (this.closedFlag) return;
    this.sendChain = this.sendChain.then(async () => {
      const signed = await this.sign(m);
      if (!this.closedFlag && signed) {
        // Answers are only expected from when the query really left.
        sent?.();
        this.bc.postMessage(signed);
      }
    });
  }

  private async sign(m: Wire): Promise<Wire | null> {
    try {
      const { pair } = await this.keys;
      // Presence made before the key existed gets it now.
      if ((m.type === 'announce' || m.type === 'query') && !m.peer.pub) m = { ...m, peer: this.presence() };
      const sig = await crypto.subtle.sign(SIGN, pair.privateKey, new TextEncoder().encode(JSON.stringify(m)));
      return { ...m, sig: b64(sig) };
    } catch {
      return null; // no WebCrypto (not a secure context): this tab cannot sign, nor be trusted
    }
  }

  private async prepareBye(): Promise<void> {
    const id = this._id;
    const bye = await this.sign({ app: APP, v: SIGNALING_PROTOCOL, type: 'bye', from: id, instance: this.instance, leave: this.leaveToken });
    if (this._id === id) this.signedBye = bye;
  }

  private verifyKey(pub: string): Promise<CryptoKey | null> {
    let k = this.verifyKeys.get(pub);
    if (!k) {
      const raw = unb64(pub);
      k = raw ? crypto.subtle.importKey('raw', raw, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']).catch(() => null) : Promise.resolve(null);
      if (this.verifyKeys.size > 512) this.verifyKeys.clear();
      this.verifyKeys.set(pub, k);
    }
    return k;
  }

  /** Whether m carries a valid signature by pub. */
  private async verified(m: Wire, pub: string | undefined): Promise<boolean> {
    if (!pub || typeof m.sig !== 'string') return false;
    const sig = unb64(m.sig);
    const key = await this.verifyKey(pub);
    if (!sig || !key) return false;
    const { sig: _sig, ...rest } = m;
    try {
      return await crypto.subtle.verify(SIGN, key, sig, new TextEncoder().encode(JSON.stringify(rest)));
    } catch {
      return false;
    }
  }

  private bye(): void {
    // Synchronously: a closing page has no time to sign (see prepareBye).
    if (this.signedBye && !this.closedFlag) this.bc.postMessage(this.signedBye);
  }

  /** This tab's presence changed: say it here and to the relay's room. */
  private announce(): void {
    this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'announce', peer: this.presence() });
    this.relaySend({ t: 'update', peer: this.relayPresence() });
  }

  /**
   * Answers a query on the BroadcastChannel (the relay keeps presence itself): at once if the
   * last answer is ANSWER_INTERVAL_MS old, else once when it is, for all queries in between.
   */
  private answerQuery(): void {
    if (this.answerTimer) return;
    const wait = this.lastAnswerAt + ANSWER_INTERVAL_MS - Date.now();
    const answer = () => {
      this.answerTimer = null;
      this.lastAnswerAt = Date.now();
      this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'announce', peer: this.presence() });
    };
    if (wait <= 0) answer();
    else this.answerTimer = setTimeout(answer, wait);
  }

  private query(): void {
    this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'query', peer: this.presence() }, () => (this.lastQueryAt = Date.now()));
  }

  private relay(to: string, msg: SignalMessage): void {
    this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'relay', from: this._id, to, msg });
  }

  private loadId(): string | null {
    try {
      return this.storage?.getItem(this.storageKey) || null;
    } catch {
      return null;
    }
  }

  private saveId(): void {
    try {
      this.storage?.setItem(this.storageKey, this._id);
    } catch {
      // storage full or denied: the id just will not survive a reload
    }
  }

  private tick(): void {
    let changed = false;
    for (const [id, p] of this.table) {
      // A message of its still being checked (signatures take a moment on a busy page) is not silence.
      if (p.lastSeen >= this.lastQueryAt || this.recvChains.has(id)) continue;
      if (++p.missed >= this.missedLimit) {
        this.table.delete(id);
        changed = true;
        this.dispatchEvent(new CustomEvent<PeerLeftDetail>('peer-left', { detail: { id, reason: 'timeout' } }));
      }
    }
    if (changed) this.dispatchEvent(new Event('peers'));
    this.query();
  }

  private onWire(m: Wire): void {
    if (this.closedFlag) return;
    if (!isObj(m) || m.app !== APP || m.v !== SIGNALING_PROTOCOL) return this.note('malformed', 'signaling: malformed message dropped');
    if (m.type === 'relay' && m.to !== this._id) return; // someone else's: not worth a signature check
    // A flood of relayed messages (a hostile page posting offers as fast as it can) is cut per
    // sender at floodLimit a second, and at ten times that in all; presence is not counted, so
    // real peers stay listed through it, and one sender's flood does not silence the others.
    if (m.type === 'relay' && m.to === this._id) {
      const now = Date.now();
      if (now - this.floodWindow >= 1000) {
        this.floodWindow = now;
        this.floodCount = 0;
        this.floodBySender.clear();
      }
      const key = String(m.from).slice(0, 40);
      const n = (this.floodBySender.get(key) ?? 0) + 1;
      if (this.floodBySender.size < 4096 || this.floodBySender.has(key)) this.floodBySender.set(key, n);
      if (n > this.floodLimit || ++this.floodCount > 10 * this.floodLimit) {
        return this.note('flood', `signaling: a flood of messages for this tab (from ${key}); the rest of this second's dropped`);
      }
    }
    // Presence is checked (a signature each) at a bounded rate: per known peer, and in all for
    // ids this tab does not know yet, so a flood of made-up peers does not crowd out real ones.
    if (m.type === 'announce' || m.type === 'query') {
      const now = Date.now();
      if (now - this.presenceWindow >= 1000) {
        this.presenceWindow = now;
        this.presenceBySender.clear();
        this.presenceFromUnknown = 0;
      }
      const id = isObj(m.peer) ? String(m.peer.id).slice(0, 40) : '';
      const over = this.table.has(id)
        ? (this.presenceBySender.set(id, (this.presenceBySender.get(id) ?? 0) + 1).get(id) ?? 0) > PRESENCE_PER_SENDER
        : ++this.presenceFromUnknown > PRESENCE_FROM_UNKNOWN;
      if (over) return this.note('presence-flood', `signaling: a flood of presence messages (as ${id || 'unknown'}); the rest of this second's dropped`);
    }
    // Checked in order per claimed sender: presence against the key it carries when the id
    // and instance are new here, everything else against the key its sender's presence bound.
    const claimed = m.type === 'announce' || m.type === 'query' ? (isObj(m.peer) ? String(m.peer.id) : '') : String((m as { from?: unknown }).from);
    const key = claimed.slice(0, 40);
    const prev = this.recvChains.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      const known = this.table.get(claimed);
      let pub: string | undefined;
      if (m.type === 'announce' || m.type === 'query') {
        if (!this.validPresence(m.peer)) return this.note('malformed', 'signaling: malformed presence dropped');
        pub = known && known.instance === m.peer.instance && known.pub ? known.pub : m.peer.pub;
      } else {
        pub = known?.pub;
      }
      if (!(await this.verified(m, pub))) {
        return this.note('unsigned', `signaling: a message as '${key}' without its signature dropped`);
      }
      if (!this.closedFlag) this.onVerified(m);
    });
    this.recvChains.set(key, next);
    void next.finally(() => {
      if (this.recvChains.get(key) === next) this.recvChains.delete(key);
    });
  }

  private onVerified(m: Wire): void {
    switch (m.type) {
      case 'announce':
      case 'query':
        this.onPresence(m.peer);
        if (m.type === 'query') this.answerQuery();
        break;
      case 'bye': {
        const p = this.table.get(m.from);
        if (!p || p.instance !== m.instance) break;
        // Only the instance that announced the leave hash holds the token.
        const expected = p.leave;
        if (!expected) break; // it never announced one: silence will drop it
        void sha256Hex(String(m.leave ?? '')).then((h) => {
          if (h !== expected) return this.note('forged-bye', `signaling: a bye for ${m.from} without its leave token, ignored`);
          const now = this.table.get(m.from);
          if (!now || now.instance !== m.instance) return;
          this.table.delete(m.from);
          this.dispatchEvent(new CustomEvent<PeerLeftDetail>('peer-left', { detail: { id: m.from, reason: 'bye' } }));
          this.dispatchEvent(new Event('peers'));
        });
        break;
      }
      case 'relay': {
        const msg = m.msg;
        if (m.to !== this._id) break;
        if (!isObj(msg) || msg.from !== m.from || typeof msg.conn !== 'string' || (msg.kind !== 'signal' && msg.kind !== 'reject')) {
          return this.note('malformed', 'signaling: malformed message dropped');
        }
        this.deliver({ ...msg, via: 'local' });
        break;
      }
      default:
        this.note('malformed', 'signaling: malformed message dropped');
    }
  }

  private validPresence(p: unknown): p is Presence {
    if (!isObj(p)) return false;
    return (
      typeof p.id === 'string' &&
      p.id.length > 0 &&
      p.id.length <= 40 &&
      typeof p.name === 'string' &&
      p.name.length <= 80 &&
      typeof p.incoming === 'boolean' &&
      (p.incomingFrom === null || typeof p.incomingFrom === 'string') &&
      typeof p.instance === 'string' &&
      typeof p.since === 'number' &&
      (p.fp === undefined || typeof p.fp === 'string') &&
      (p.leave === undefined || typeof p.leave === 'string') &&
      typeof p.pub === 'string' &&
      p.pub.length < 200
    );
  }

  private onPresence(p: Presence): void {
    if (!p || typeof p.id !== 'string') return;
    if (p.id === this._id) {
      if (p.instance === this.instance) return;
      // Two live instances with one id: a duplicated tab (copied sessionStorage) meets the
      // original in its first query round and moves. Once settled, an id is never given up to
      // a claimant, whatever age it says it has: that would be a takeover.
      const iAmYounger = p.since < this.since || (p.since === this.since && p.instance < this.instance);
      if (iAmYounger && Date.now() - this.startedAt < this.settleMs) this.renew();
      else {
        this.note('takeover', `signaling: another instance claims this tab's id ${p.id}; ignored`);
        this.announce();
      }
      return;
    }
    const old = this.table.get(p.id);
    if (old && old.instance !== p.instance && old.missed === 0 && Date.now() - old.lastSeen < this.settleMs) {
      // The id's holder is alive: a second instance does not take it over (a reload says bye first).
      return this.note('takeover', `signaling: a second instance claims peer id ${p.id}; ignored while its holder is alive`);
    }
    if (!old && this.table.size >= 256) return this.note('flood', 'signaling: too many peers announced; a new one ignored');
    const entry = { ...p, fp: p.fp ?? '', via: 'local' as const, lastSeen: Date.now(), missed: 0 };
    const changed =
      !old ||
      old.name !== p.name ||
      old.incoming !== p.incoming ||
      old.incomingFrom !== p.incomingFrom ||
      old.fp !== entry.fp ||
      old.instance !== p.instance;
    this.table.set(p.id, entry);
    if (changed) this.dispatchEvent(new Event('peers'));
  }

  private renew(): void {
    const old = this._id;
    this._id = newPeerId();
    this.saveId();
    if (this._name === `Tab ${old}`) this._name = `Tab ${this._id}`;
    this.dispatchEvent(new CustomEvent<IdChangedDetail>('id', { detail: { old, id: this._id } }));
    this.signedBye = null;
    void this.prepareBye();
    this.query();
    if (this.ws?.readyState === WebSocket.OPEN) this.relaySend({ t: 'join', v: RELAY_PROTOCOL, peer: this.relayPresence() });
  }
}
