// How a destination in doubt learns what its source did (DESIGN §10). Its link broke after it said
// 'ready' and before 'commit' arrived, so it holds a complete paused copy that is the guest if the
// source committed (or is gone) and a stale duplicate if the source resumed. It asks the source
// tab — over signaling for a webrtc: source, in the page for a loopback: one — by the migration's
// id, and watches the source page's Web Lock when the source is a tab of this browser. The
// source answers from its own record (source side: the migration service's fateOf).

/** A source's word on one of its migrations. 'unknown': no such migration here (a reloaded page). */
export type SourceFate = 'committed' | 'resumed' | 'unknown';

/** What the destination ends up knowing. 'unreachable': nobody answered within the window. */
export type DoubtOutcome = 'committed' | 'resumed' | 'gone' | 'unreachable';

/** destination → source, as signaling `signal` data. */
export interface FateQuestion {
  fate: 'ask';
  migration: number;
}

/** source → destination, the answer. */
export interface FateAnswer {
  fate: 'answer';
  migration: number;
  outcome: SourceFate;
}

const FATES: readonly string[] = ['committed', 'resumed', 'unknown'];

export function isFateQuestion(data: unknown): data is FateQuestion {
  const d = data as Partial<FateQuestion> | null;
  return typeof d === 'object' && d !== null && d.fate === 'ask' && typeof d.migration === 'number';
}

export function isFateAnswer(data: unknown): data is FateAnswer {
  const d = data as Partial<FateAnswer> | null;
  return typeof d === 'object' && d !== null && d.fate === 'answer' && typeof d.migration === 'number' && FATES.includes(d.outcome as string);
}

/** The signaling connection id of a question and its answer (one conversation per migration). */
export function fateConversation(migration: number): string {
  return `fate-${migration}`;
}

// ---- sources in this page (loopback:) ----------------------------------------------------------

/** How many in-page migrations are remembered (the oldest is forgotten first). */
const IN_PAGE_REMEMBERED = 64;
/** Held weakly: a tab disposed in a test page must not be kept alive by its old migrations. */
const inPage = new Map<number, WeakRef<{ fateOf(migration: number): SourceFate }>>();

/** A loopback migration's source, for destinations of this page that may have to ask it. */
export function registerInPageSource(migration: number, source: { fateOf(migration: number): SourceFate }): void {
  inPage.delete(migration);
  inPage.set(migration, new WeakRef(source));
  while (inPage.size > IN_PAGE_REMEMBERED) inPage.delete(inPage.keys().next().value!);
}

/** What the in-page source of `migration` says; 'unknown' when none of this page holds it any more. */
export function askInPage(migration: number): SourceFate {
  return inPage.get(migration)?.deref()?.fateOf(migration) ?? 'unknown';
}

// ---- the destination's side ---------------------------------------------------------------------

export interface DoubtResolverOptions {
  /** Sends the question once (its answer comes back through answer()). */
  ask: () => void;
  /** Resolves when the source's page is gone (its Web Lock released); null when that cannot be known. */
  sourceGone: ((signal: AbortSignal) => Promise<void>) | null;
  /** Between two questions (default 1 s; then every 4 s once the window passed). */
  intervalMs?: number;
  /** How long without any answer before the person must decide (default 8 s). */
  windowMs?: number;
  /** Called once asking is over for good (settled or disposed): stop listening for answers. */
  done?: () => void;
}

/**
 * Asks until the source's fate is known: committed, resumed, or gone (its page closed, or it no
 * longer knows the migration: reloaded). Past the window without a word it reports 'unreachable'
 * once and goes on asking, less often, so a late answer still settles it; dispose() stops it (a
 * person decided, or the tab loaded another guest). Each outcome is reported from a task of its
 * own, never from inside start() or answer().
 */
export class DoubtResolver {
  private readonly abort = new AbortController();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private settled = false;
  private reportedUnreachable = false;
  private readonly startedAt = performance.now();

  constructor(
    private readonly opts: DoubtResolverOptions,
    private readonly onOutcome: (outcome: DoubtOutcome) => void,
  ) {}

  start(): void {
    this.opts.sourceGone?.(this.abort.signal).then(
      () => this.settle('gone'),
      () => {},
    );
    this.tick();
  }

  /** The source answered. */
  answer(fate: SourceFate): void {
    this.settle(fate === 'unknown' ? 'gone' : fate);
  }

  dispose(): void {
    this.settled = true;
    this.stop();
  }

  private tick(): void {
    if (this.settled) return;
    this.opts.ask();
    if (this.settled) return;
    const window = this.opts.windowMs ?? 8000;
    if (!this.reportedUnreachable && performance.now() - this.startedAt >= window) {
      this.reportedUnreachable = true;
      queueMicrotask(() => {
        if (!this.settled) this.onOutcome('unreachable');
      });
    }
    // Within the window every interval (the last question right at its end); past it, less often.
    const interval = this.opts.intervalMs ?? 1000;
    const next = this.reportedUnreachable ? 4 * interval : Math.max(0, Math.min(interval, this.startedAt + window - performance.now()));
    this.timer = setTimeout(() => this.tick(), next);
  }

  private settle(outcome: Exclude<DoubtOutcome, 'unreachable'>): void {
    if (this.settled) return;
    this.settled = true;
    this.stop();
    queueMicrotask(() => this.onOutcome(outcome));
  }

  private stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort();
    this.opts.done?.();
  }
}
