// The switchover handshake (DESIGN §8): tabmig's answer to "the source cannot know whether the
// destination started". It runs for every live migration, whatever the return-path capability,
// on a negotiated channel of its own beside the stream, so the QEMU stream stays byte-identical:
//
//   source worker             switchover channel               destination worker
//   stop vCPU, last pages,  ─── stream ─────────────────────────► load, validate everything
//   devices, EOF
//                           ◄── control {switchover:'ready'} ──── holds the complete machine
//   CAS commit 0→1 (point of no return; migrate_cancel CASes 0→2 and wins only before it)
//                           ─── control {switchover:'commit'} ──► start the guest (unless -S)
//                           ◄── control {switchover:'started'} ── (its runstate)
//   completed, postmigrate
//
// Before the commit word is 1, any failure, cancel or timeout resumes the source and the source
// sends 'abort' (the destination discards what it loaded). After it, the source never resumes.
// A destination whose link breaks after 'ready' and before 'commit' keeps the machine paused.
//
// The workers make every decision, and carry the messages themselves on the connection's
// switchover channel, worker to worker (switchover-link.ts): a main thread busy with its page
// would otherwise stretch the guest's downtime by as long as it is busy. A connection without
// that channel falls back to the main threads' relay on the control conversation.

/**
 * Control-conversation payloads of the handshake (inside the transport's app messages). Each
 * names its migration (`migration`, the id the source drew for it and announced when it
 * connected): a message from an earlier attempt — a late 'ready' from a destination that gave
 * up — never moves a later one.
 */
export type SwitchoverMessage = { migration: number } & SwitchoverBody;

/** What a handshake message says, apart from the migration it names. */
export type SwitchoverBody =
  /** destination → source: everything loaded and checked; the machine is complete. */
  | { switchover: 'ready' }
  /** destination → source: the stream was refused; `error` is the destination's reason. */
  | { switchover: 'failed'; error: string }
  /** source → destination: the point of no return was passed: start the guest. */
  | { switchover: 'commit' }
  /** source → destination: the migration ends without a switchover: discard what loaded. */
  | { switchover: 'abort'; reason: string }
  /** destination → source: the guest is the destination's now (running, or paused under -S). */
  | { switchover: 'started'; runstate: string; at?: number };

export function isSwitchoverMessage(data: unknown): data is SwitchoverMessage {
  return typeof data === 'object' && data !== null && typeof (data as { switchover?: unknown }).switchover === 'string';
}

/**
 * A fresh migration id: a positive 31-bit integer (it lives in an Int32 word of the shared
 * blocks), random so that no two attempts of one tab, nor two tabs, are likely to share one.
 */
export function newMigrationId(): number {
  const [x] = crypto.getRandomValues(new Uint32Array(1));
  return (x! & 0x7fff_ffff) || 1;
}

/** What a source tells its destination when it connects (the transport's hello `info`). */
export interface SourceHello {
  /** The migration this connection carries: every handshake message names it. */
  migration: number;
  /**
   * The Web Lock the source's page holds for its whole life (transport/page-lock.ts): a
   * destination in the same browser sees the source tab gone when it is released.
   */
  lock?: string;
}

/** The source's hello, if a peer's hello `info` carries one. */
export function sourceHelloOf(info: unknown): SourceHello | null {
  if (typeof info !== 'object' || info === null) return null;
  const { migration, lock } = info as { migration?: unknown; lock?: unknown };
  if (typeof migration !== 'number' || !Number.isInteger(migration) || migration <= 0 || migration > 0x7fff_ffff) return null;
  return typeof lock === 'string' && lock.length <= 100 ? { migration, lock } : { migration };
}

/**
 * source → destination, on the same control conversation, every KEEPALIVE_INTERVAL_MS while a
 * migration is under way: the source lives even when its stream is quiet (paused in
 * pre-switchover, or waiting for the destination), so x-incoming-idle-timeout measures real
 * silence: a frozen tab or a network that black-holes.
 */
export interface KeepaliveMessage {
  keepalive: number;
  /** The migration it belongs to (the destination echoes it back). */
  migration: number;
}
export const KEEPALIVE_INTERVAL_MS = 2000;

/**
 * The other direction (x-outgoing-idle-timeout): the destination echoes every keepalive back,
 * so a source hears of a frozen destination tab or a black-holed network. The source sends them
 * often enough that two in a row can go missing inside its timeout.
 */
export function keepaliveInterval(outgoingIdleTimeout: number): number {
  if (outgoingIdleTimeout <= 0) return KEEPALIVE_INTERVAL_MS;
  return Math.max(30, Math.min(KEEPALIVE_INTERVAL_MS, Math.floor(outgoingIdleTimeout / 3)));
}

export function outgoingIdleText(ms: number): string {
  return `No word from the migration destination for ${ms} ms (x-outgoing-idle-timeout): giving up`;
}

export function isKeepalive(data: unknown): data is KeepaliveMessage {
  return typeof data === 'object' && data !== null && typeof (data as { keepalive?: unknown }).keepalive === 'number';
}

/** Values of the source's COMMIT word (MigWord.COMMIT). */
export const Commit = {
  /** Not decided yet: a cancel or a failure still resumes the source. */
  OPEN: 0,
  /** The source sent commit: it never resumes the guest again. */
  COMMITTED: 1,
  /** migrate_cancel or a failure got there first: the source resumes, the destination discards. */
  ABANDONED: 2,
} as const;

/** Values of the destination's verdict word (IncomingWord.VERDICT), written by the main thread. */
export const Verdict = {
  WAITING: 0,
  COMMIT: 1,
  ABORT: 2,
  /** The link to the source broke (or went silent) before a verdict arrived. */
  LINK_LOST: 3,
} as const;

/** How long the source waits for 'ready' after its last byte, and for 'started' after commit. */
export const SWITCHOVER_TIMEOUT_MS = 30_000;

// ---- delayed and reordered control messages, for fault tests ------------------------------------
// x-tabmig-delay-control: every control message this tab sends (the handshake, keepalives and
// their echoes) waits a random time in [min, max] ms before it leaves, so messages arrive late
// and out of order, as over a congested or reordering network. Per tab: the main thread's
// setting is forwarded to the tab's migration workers (watchControlDelay).

let controlDelay: { min: number; max: number } | null = null;

const delayWatchers = new Set<(minMs: number, maxMs: number) => void>();

export function setControlDelay(minMs: number, maxMs: number): void {
  controlDelay = maxMs > 0 ? { min: Math.max(0, minMs), max: Math.max(minMs, maxMs) } : null;
  for (const w of delayWatchers) w(controlDelay?.min ?? 0, controlDelay?.max ?? 0);
}

/**
 * Calls `fn` with the tab's delay now and whenever it changes: a migration forwards it to its
 * worker, which sends the handshake itself on the switchover channel. Returns the unsubscribe.
 */
export function watchControlDelay(fn: (minMs: number, maxMs: number) => void): () => void {
  delayWatchers.add(fn);
  fn(controlDelay?.min ?? 0, controlDelay?.max ?? 0);
  return () => delayWatchers.delete(fn);
}

/** Sends one control message through `send`, now or (under x-tabmig-delay-control) later. */
export function sendControl(send: (data: unknown) => void, data: unknown): void {
  const d = controlDelay;
  const go = () => {
    try {
      send(data);
    } catch {
      // the link ended meanwhile: a late message is a lost message
    }
  };
  if (!d) go();
  else setTimeout(go, d.min + Math.random() * (d.max - d.min));
}

// ---- hold points, for fault tests ---------------------------------------------------------------
// A test (through x-tabmig-hold) can stop a worker at a named instant of the switchover, act
// (cancel, close a tab, drop the link), then release it. Three Int32 words of a shared block:
// the mask of armed points, the point last reached (0 = none), and a release counter.

export const HOLD_POINTS = [
  /** source: the last byte of the stream left; 'ready' not yet awaited. */
  'all-sent',
  /** source: 'ready' arrived; commit not yet decided. */
  'ready-received',
  /** source: commit sent; 'started' not yet awaited. */
  'commit-sent',
  /** destination: the whole stream loaded and checked; 'ready' not yet sent. */
  'loaded',
  /** destination: 'commit' arrived; the guest not yet started. */
  'commit-received',
  /** source, postcopy recovery: the new connection is up (postcopy-recover); RECV_BITMAP not yet sent. */
  'postcopy-recover',
] as const;
export type HoldPoint = (typeof HOLD_POINTS)[number];
/** The points the source's migration worker passes; the others are the destination's. */
export const SOURCE_HOLD_POINTS: readonly HoldPoint[] = ['all-sent', 'ready-received', 'commit-sent', 'postcopy-recover'];

export class HoldPoints {
  constructor(
    private readonly words: Int32Array,
    /** Index of the first of the three words. */
    private readonly at: number,
  ) {}

  arm(point: HoldPoint): void {
    Atomics.or(this.words, this.at, 1 << HOLD_POINTS.indexOf(point));
  }

  /** Disarms everything and lets a held worker go on. */
  release(): void {
    Atomics.store(this.words, this.at, 0);
    Atomics.add(this.words, this.at + 2, 1);
    Atomics.notify(this.words, this.at + 2);
  }

  /** The point a worker is held at now (or was last held at), or null. */
  get reached(): HoldPoint | null {
    const i = Atomics.load(this.words, this.at + 1);
    return i === 0 ? null : HOLD_POINTS[i - 1]!;
  }

  clear(): void {
    Atomics.store(this.words, this.at, 0);
    Atomics.store(this.words, this.at + 1, 0);
  }

  /** In a worker: if `point` is armed, waits there until released or `abandon()` says stop. */
  async pass(point: HoldPoint, abandon: () => boolean = () => false): Promise<void> {
    const bit = 1 << HOLD_POINTS.indexOf(point);
    if ((Atomics.load(this.words, this.at) & bit) === 0) return;
    const seen = Atomics.load(this.words, this.at + 2);
    Atomics.store(this.words, this.at + 1, HOLD_POINTS.indexOf(point) + 1);
    while (Atomics.load(this.words, this.at + 2) === seen && !abandon()) {
      const w = Atomics.waitAsync(this.words, this.at + 2, seen, 100);
      if (w.async) await w.value;
    }
  }
}
