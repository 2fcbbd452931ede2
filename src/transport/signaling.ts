// Same-browser peer discovery and offer/answer/ICE relay over BroadcastChannel: no server.
//
// Each tab has a peer id kept in sessionStorage, so a reload keeps it. A duplicated tab copies
// sessionStorage and with it the id; every instance also carries a per-load nonce and its start
// time, and when two live instances share an id the younger one takes a new id.
//
// Liveness without trusting timers (Chromium throttles a hidden tab's timers, to once a minute
// after a while, but still runs its message handlers promptly): every tick a tab sends a query,
// everyone answers with an announcement, and a peer that misses `missedLimit` consecutive
// queries is dropped. A closing tab also says bye on pagehide, so usually it goes at once.

export const SIGNALING_PROTOCOL = 1;
const APP = 'tabmig';

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
}

type Presence = Omit<PeerInfo, 'lastSeen'>;

export type SignalPayload = unknown;

/** A relayed message addressed to this tab. */
export interface SignalMessage {
  from: string;
  /** Connection id chosen by the initiator: one per connection attempt. */
  conn: string;
  kind: 'signal' | 'reject';
  data?: SignalPayload;
  reason?: string;
}

type Wire =
  | { app: typeof APP; v: number; type: 'announce' | 'query'; peer: Presence }
  | { app: typeof APP; v: number; type: 'bye'; from: string; instance: string }
  | { app: typeof APP; v: number; type: 'relay'; from: string; to: string; msg: SignalMessage };

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
}

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
export type IdChangedDetail = { old: string; id: string };

/**
 * Events:
 *  - 'peers': the peer list changed (Event)
 *  - 'peer-left': CustomEvent<PeerLeftDetail>
 *  - 'id': this tab's id changed (duplicate detected), CustomEvent<IdChangedDetail>
 *  - 'signal': CustomEvent<SignalMessage> addressed to this tab; cancelable: a listener that
 *    handles it calls preventDefault(), and an offer nobody claims is refused automatically.
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
  private readonly table = new Map<string, PeerInfo & { missed: number }>();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly missedLimit: number;
  private lastQueryAt = 0;
  private closedFlag = false;
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
    this.bc = new BroadcastChannel(this.channelName);
    this.bc.onmessage = (e: MessageEvent) => this.onWire(e.data as Wire);
    this.timer = setInterval(() => this.tick(), opts.queryIntervalMs ?? 1500);
    if (typeof window !== 'undefined') {
      addEventListener('pagehide', this.onPageHide);
      addEventListener('pageshow', this.onPageShow);
    }
    this.query();
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

  /** Live peers (not this tab), sorted by name then id. */
  get peers(): PeerInfo[] {
    return [...this.table.values()]
      .map(({ missed: _missed, ...p }) => p)
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  peer(id: string): PeerInfo | undefined {
    const p = this.table.get(id);
    if (!p) return undefined;
    const { missed: _missed, ...info } = p;
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

  /** Calls fn on every peer-list change and once now; returns the unsubscribe function. */
  subscribe(fn: (peers: PeerInfo[]) => void): () => void {
    const h = () => fn(this.peers);
    this.addEventListener('peers', h);
    h();
    return () => this.removeEventListener('peers', h);
  }

  /** Resolves with the peer once it is known, or undefined after timeoutMs. */
  waitForPeer(id: string, timeoutMs: number): Promise<PeerInfo | undefined> {
    const now = this.peer(id);
    if (now || this.closedFlag) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (p: PeerInfo | undefined) => {
        clearTimeout(t);
        this.removeEventListener('peers', check);
        resolve(p);
      };
      const check = () => {
        const p = this.peer(id);
        if (p) done(p);
      };
      const t = setTimeout(() => done(undefined), timeoutMs);
      this.addEventListener('peers', check);
      this.query();
    });
  }

  /** Relays simple-peer signal data (offer/answer/candidate) to a peer. */
  sendSignal(to: string, conn: string, data: SignalPayload): void {
    this.relay(to, { from: this._id, conn, kind: 'signal', data });
  }

  /** Tells an initiator its connection attempt is refused. */
  sendReject(to: string, conn: string, reason: string): void {
    this.relay(to, { from: this._id, conn, kind: 'reject', reason });
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
    };
  }

  private post(m: Wire): void {
    if (this.closedFlag) return;
    this.bc.postMessage(m);
  }

  private bye(): void {
    this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'bye', from: this._id, instance: this.instance });
  }

  private announce(): void {
    this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'announce', peer: this.presence() });
  }

  private query(): void {
    this.lastQueryAt = Date.now();
    this.post({ app: APP, v: SIGNALING_PROTOCOL, type: 'query', peer: this.presence() });
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
      if (p.lastSeen >= this.lastQueryAt) continue;
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
    if (this.closedFlag || !m || m.app !== APP || m.v !== SIGNALING_PROTOCOL) return;
    switch (m.type) {
      case 'announce':
      case 'query':
        this.onPresence(m.peer);
        if (m.type === 'query') this.announce();
        break;
      case 'bye': {
        const p = this.table.get(m.from);
        if (p && p.instance === m.instance) {
          this.table.delete(m.from);
          this.dispatchEvent(new CustomEvent<PeerLeftDetail>('peer-left', { detail: { id: m.from, reason: 'bye' } }));
          this.dispatchEvent(new Event('peers'));
        }
        break;
      }
      case 'relay':
        if (m.to === this._id && m.msg?.from === m.from) {
          const claimed = !this.dispatchEvent(new CustomEvent<SignalMessage>('signal', { detail: m.msg, cancelable: true }));
          // An offer nobody here listens for: refuse it now rather than let the caller time out.
          const offer = m.msg.kind === 'signal' && (m.msg.data as { type?: unknown } | null)?.type === 'offer';
          if (!claimed && offer) this.sendReject(m.from, m.msg.conn, 'this tab is not waiting for an incoming migration');
        }
        break;
    }
  }

  private onPresence(p: Presence): void {
    if (!p || typeof p.id !== 'string') return;
    if (p.id === this._id) {
      if (p.instance === this.instance) return;
      // Two live instances with one id: the younger (a duplicated tab) moves.
      const iAmYounger = p.since < this.since || (p.since === this.since && p.instance < this.instance);
      if (iAmYounger) this.renew();
      else this.announce();
      return;
    }
    const old = this.table.get(p.id);
    const entry = { ...p, lastSeen: Date.now(), missed: 0 };
    const changed =
      !old ||
      old.name !== p.name ||
      old.incoming !== p.incoming ||
      old.incomingFrom !== p.incomingFrom ||
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
    this.query();
  }
}
