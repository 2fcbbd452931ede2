// What a switchover really costs, measured as the migration goes, so the decision to stop the
// guest keeps downtime-limit as the guest's own clock sees it (QEMU compares only the bytes left
// with bandwidth × downtime-limit, and overshoots). The stop-and-copy takes:
//
//   stop the vCPU                     measured: how long the vCPU took to stop for a probe-free
//                                     estimate we use its slice; the real stop is measured once
//   bytes still queued (writer + data channel), the pages left, the device state
//                                     ÷ the wire's drain rate (bytes that really left, per ms)
//   the destination's load of them    counted in the drain rate (it parses faster than the wire)
//   the handshake                     'ready' back and 'commit' forth: one round trip on the
//                                     control conversation, probed every PROBE_INTERVAL_MS
//   the destination's start           a vCPU wake-up
//
// expected-downtime in query-migrate is this estimate for the bytes left now, and the threshold
// the thread compares the pending bytes with is its inverse: the bytes that fit in the planned
// share of the limit (switchover-decision.ts keeps the margin below it).

/**
 * source → destination and back: a round-trip probe. On the switchover channel the two workers
 * send and echo it; without one, the main threads do, on the control conversation.
 */
export interface ProbeMessage {
  /** The sender's performance.now() when it sent the probe. */
  probe: number;
  /** Set on a probe the migration worker asked for (it waits for this one's echo). */
  id?: number;
  /** The sender's wall clock then (Date.now()). */
  wall?: number;
  echo?: boolean;
  /** The echoing side's wall clock when it echoed. */
  peerWall?: number;
  /** Bytes the destination had read from its channels when it echoed (the wire, measured). */
  received?: number;
}

export function isProbe(data: unknown): data is ProbeMessage {
  return typeof data === 'object' && data !== null && typeof (data as { probe?: unknown }).probe === 'number';
}

/** What an echo says: the round trip (ms, on the prober's clock) and the peer's wall clock − ours, if it said. */
export function echoFigures(echo: ProbeMessage, now: number): { ms: number; offset?: number } {
  const ms = now - echo.probe;
  // The peer's clock against ours, assuming the echo was half-way (it needs no common clock).
  if (echo.wall === undefined || echo.peerWall === undefined) return { ms };
  return { ms, offset: echo.peerWall - (echo.wall + ms / 2) };
}

/** The echo of a probe, as the destination sends it back with the bytes it has read. */
export function echoOf(probe: ProbeMessage, received: number): ProbeMessage {
  return { ...probe, echo: true, peerWall: Date.now(), received };
}

export const PROBE_INTERVAL_MS = 250;
/** Before any probe came back: a same-machine round trip through both main threads. */
const DEFAULT_RTT_MS = 8;
/** The vCPU stops at its next slice boundary. */
const DEFAULT_STOP_MS = 4;
/**
 * From the destination's 'started' to the guest's next look at its own clock: the vCPU worker
 * wakes, loads its registers and decodes afresh. The guest saw 5–11 ms more than `downtime` in
 * every run of the downtime check on a quiet 2-core host, so that is what the decision plans for.
 */
const DEST_START_MS = 8;
/** The handshake in probe round trips (see fixedMs). */
const HANDSHAKE_RTTS = 1.5;
export class SwitchoverCost {
  /** Bytes per ms the queue drains at (the wire), smoothed. 0 until measured. */
  bandwidth = 0;
  /** Probes that came back so far. */
  private probes = 0;
  stopMs = DEFAULT_STOP_MS;
  /** Bytes of the sections sent after RAM in the stop-and-copy (devices, globalstate, EOF). */
  deviceBytes: number;

  /**
   * `codecPaced`: pages go through a codec slower than the wire may be (compress: zlib in a worker
   * pool), so the sender's own pace bounds the pages' time too. Without one the sender's pace is
   * the wire's, seen through its buffers' back-pressure, and only noise on top of it.
   */
  constructor(
    deviceBytes: number,
    private readonly codecPaced = false,
  ) {
    this.deviceBytes = deviceBytes;
  }

  /** peer wall clock − ours, from the fastest probe so far (NTP's estimate). */
  clockOffset = 0;
  private offsetRtt = Infinity;

  /** A probe came back after `ms`; `offset` is the peer's clock offset it measured, if it did. */
  addRtt(ms: number, offset?: number): void {
    this.bestRtt = Math.min(this.bestRtt, ms);
    this.probes++;
    if (offset !== undefined && ms < this.offsetRtt) {
      this.offsetRtt = ms;
      this.clockOffset = offset;
    }
  }

  /** A probe sent with nothing queued, just before the decision: the round trip the handshake will see. */
  freshRtt: number | null = null;

  /**
   * The last probe that went out with nothing queued (the decision's own, after the drain). The
   * probes sent all along share the link with the stream, and a data channel sends one message
   * whole before the next on any stream of the association: they measure the queue ahead of
   * them, which the switchover drains first. Planning with them would take a busy link for a
   * slow handshake, and (as happened) give up on keeping the limit at all.
   */
  quietRtt: number | null = null;

  /**
   * Round trip to plan with: a fresh probe when there is one; else the last quiet one; else the
   * fastest probe so far (the least queued).
   */
  get rtt(): number {
    if (this.freshRtt !== null) return this.freshRtt;
    if (this.quietRtt !== null) return this.quietRtt;
    return this.probes === 0 ? DEFAULT_RTT_MS : this.bestRtt;
  }

  /** True once a probe came back: without one there is nothing measured to plan with. */
  get probed(): boolean {
    return this.probes > 0;
  }

  private bestRtt = Infinity;

  /** Bytes the destination had read at the last echo, and when (our performance.now()). */
  private received = 0;
  private receivedAt = 0;
  /** Whether the wire was measured by the destination's count (else: the put rate stands in). */
  measured = false;

  /**
   * An echo said the destination had read `received` bytes at about `at`, when `sent` bytes had
   * been put. The wire's rate is what arrived between two echoes, counted only over windows
   * where bytes were in flight (an idle window measures the guest, not the link). Bytes that
   * left this side's buffers are not on the destination yet: SCTP and the browser hold more than
   * bufferedAmount shows, which is why the destination's count is the measure.
   */
  delivered(received: number, at: number, sent: number): void {
    if (this.receivedAt > 0 && at > this.receivedAt + 20 && received >= this.received) {
      const inFlight = this.lastSent - this.received;
      const bw = (received - this.received) / (at - this.receivedAt);
      if (inFlight > 64 * 1024 && bw > 0) {
        this.bandwidth = this.measured ? 0.6 * this.bandwidth + 0.4 * bw : bw;
        this.measured = true;
      }
    }
    this.received = received;
    this.receivedAt = at;
    this.lastSent = sent;
  }

  /** Bytes put and not yet read by the destination, as best known at `now`. */
  inFlight(sent: number, now: number): number {
    if (this.receivedAt === 0) return 0;
    const arrivedSince = this.bandwidth * Math.max(0, now - this.receivedAt);
    return Math.max(0, sent - this.received - arrivedSince);
  }

  private lastSent = 0;

  /**
   * Milliseconds that do not depend on bytes. The handshake is 'ready' back and 'commit' forth
   * plus a hop into each side's worker: a worker-to-worker probe's round trip and half again.
   */
  get fixedMs(): number {
    return this.stopMs + HANDSHAKE_RTTS * this.rtt + DEST_START_MS;
  }

  /**
   * Stream bytes per page byte for the pages the sender sends: about 1 for plain pages, less for
   * zero pages and XBZRLE deltas or compressed pages. Learned from the rounds after the first pass
   * only (the pages a guest dirties again are what the stop-and-copy sends; the first pass is
   * mostly zero pages, which cost a few bytes each); until then pages count whole.
   */
  wireShare = 1;
  /**
   * Page bytes (pages × page size) the sender clears per ms while it has pages to send: the pace
   * of the sender itself. It clears into buffers faster than the wire empties them, so it bounds
   * the pages' time from below only, and only behind a codec (see codecPaced).
   */
  pageRate = 0;
  private shareSampled = false;

  /** A window in which the sender, busy all along, cleared `pageBytes` of pages in `ms`, putting `streamBytes` on the stream. */
  samplePages(pageBytes: number, ms: number, streamBytes: number): void {
    if (ms <= 0 || pageBytes <= 0) return;
    const r = pageBytes / ms;
    this.pageRate = this.pageRate === 0 ? r : 0.7 * this.pageRate + 0.3 * r;
    if (streamBytes <= 0) return;
    const share = streamBytes / pageBytes;
    this.wireShare = this.shareSampled ? 0.7 * this.wireShare + 0.3 * share : share;
    this.shareSampled = true;
  }

  /**
   * Milliseconds the pages left take in the stop-and-copy: the stream bytes they become at the
   * wire's rate (timing them at the sender's pace promised an a-b guest 107 ms that took 162, and
   * 128 that took 241, with two CPU burners beside it), or a codec's pace if that is slower.
   */
  private pagesMs(remaining: number): number {
    const wire = (remaining * this.wireShare) / this.bandwidth;
    return Math.max(wire, remaining / this.codecPace);
  }

  /** Page bytes per ms a codec clears them at (Infinity without one, or before it was measured). */
  private get codecPace(): number {
    return this.codecPaced && this.pageRate > 0 ? this.pageRate : Infinity;
  }

  /** Expected downtime (ms) if the guest stopped now with `remaining` page bytes left and `inFlight` bytes on their way. */
  expected(remaining: number, inFlight: number): number {
    if (this.bandwidth <= 0) return Infinity;
    return this.fixedMs + (inFlight + this.deviceBytes) / this.bandwidth + this.pagesMs(remaining);
  }

  /**
   * What a quiet look's drain should take by this model: `queued` bytes at the wire's rate, then
   * the round trip of the probe that follows them. The look times it: a rehearsal of the estimate.
   */
  rehearsalMs(queued: number): number {
    if (this.bandwidth <= 0) return Infinity;
    return queued / this.bandwidth + this.rtt;
  }

  /** The estimate's parts in words, for the log line that says why the guest stopped when it did. */
  explain(remaining: number, inFlight: number): string {
    const mbs = (bytesPerMs: number) => (bytesPerMs / 1000).toFixed(1);
    const ms = (v: number) => Math.round(v);
    const pagesMs = this.bandwidth > 0 ? this.pagesMs(remaining) : Infinity;
    return (
      `stop ${ms(this.stopMs)} ms, handshake ${ms(HANDSHAKE_RTTS * this.rtt)} ms, start ${DEST_START_MS} ms; ` +
      `${inFlight + this.deviceBytes} bytes queued and of device state at ${mbs(this.bandwidth)} MB/s; ` +
      `${remaining} bytes of pages in ${ms(pagesMs)} ms (${mbs(remaining / pagesMs)} MB/s)`
    );
  }

  /** Page bytes that may be left for the stop-and-copy for it to take no more than `plannedMs`. */
  threshold(plannedMs: number, inFlight: number): number {
    if (this.bandwidth <= 0) return 0;
    const left = plannedMs - this.fixedMs - (inFlight + this.deviceBytes) / this.bandwidth;
    if (left <= 0) return 0;
    // The inverse of pagesMs: the slower of the wire (per stream byte) and a codec's pace.
    const perMs = Math.min(this.bandwidth / this.wireShare, this.codecPace);
    return left * perMs;
  }
}
