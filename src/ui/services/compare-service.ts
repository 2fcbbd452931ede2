// Compare: the same guest moved between the same two tabs by each method in turn — stop-and-copy
// (what a user does without live migration: stop, migrate, cont), precopy, postcopy, and precopy
// with each byte reducer the class picked (compare-variants.ts) — through QMP only, as a user at
// the console would. Every run sets every variant's capability (its own on, the others off), so
// one run's xbzrle or throttle does not leak into the next, and the tab is left with them off. The source tab drives; the destination tab re-arms itself
// for each run (a reload as `-incoming defer`, which is how QEMU gets a fresh destination process)
// when asked on a BroadcastChannel, and reports the downtime its guest saw (the stress guest
// prints `clock jumped N ms`). Results land in the run history, labelled.

import { VARIANT_CAPABILITIES, capabilitiesFor, type CompareVariant } from '../compare-variants.js';
import type { RunRecord } from './history-db.js';
import type { HistoryService } from './history-service.js';
import { executeSafely, type QmpClient, type QmpCommand } from './qmp-client.js';

const CHANNEL = 'tabmig-compare';
const FINAL = ['completed', 'failed', 'cancelled'];
/** As often as a QMP client (e.g. drive.mjs, libvirt) asks query-migrate. */
const POLL_MS = 250;

type Msg =
  | { type: 'prepare'; token: string; to: string; query: string }
  /** The comparison is over: the destination takes off what it was set up with (its address, capabilities). */
  | { type: 'finished'; token: string; to: string }
  | { type: 'armed'; token: string; id: string }
  | { type: 'cont'; token: string; to: string }
  | { type: 'started'; token: string; guestDowntime: number | null }
  | { type: 'failed'; token: string; error: string };

export interface CompareRequest {
  /** Peer id of the destination tab (any tab of this browser with the page open). */
  destination: string;
  program: string;
  args: string;
  /** RAM size for the destination's reload (`m=`), e.g. "64M". */
  ramSize: string;
  /** In order; each is one migration. */
  variants: readonly CompareVariant[];
}

export interface CompareProgress {
  /** The variants in the order they run (ids). */
  planned: string[];
  /** How many have finished (stored, or stopped). */
  finished: number;
  /** The variant running (its id, e.g. "precopy+xbzrle"), or null between runs. */
  method: string | null;
  step: string;
  runs: RunRecord[];
  error: string | null;
  done: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TabBefore {
  capabilities: Record<string, boolean>;
  program: string;
  args: string;
  running: boolean;
}

async function ret<T = unknown>(qmp: QmpClient, execute: string, args?: object): Promise<T> {
  const cmd: QmpCommand = args ? { execute, arguments: args } : { execute };
  const r = await executeSafely(qmp, cmd);
  if (r.error) throw new Error(`${execute}: ${r.error.desc}`);
  return r.return as T;
}

function caps(list: Record<string, boolean>) {
  return { capabilities: Object.entries(list).map(([capability, state]) => ({ capability, state })) };
}

/** The largest `clock jumped N ms` the stress guest printed, if any (the switchover's gap). */
function clockJump(serial: string): number | null {
  const all = [...serial.matchAll(/clock jumped (\d+) ms/g)].map((m) => +m[1]!);
  return all.length ? Math.max(...all) : null;
}

export class CompareService {
  private readonly channel = new BroadcastChannel(CHANNEL);
  private cancelled = false;

  constructor(
    private readonly qmp: QmpClient,
    private readonly history: HistoryService | undefined,
    /** This tab's peer id now (it changes on reload). */
    private readonly ownId: () => string,
    // The URL then reload (not assign): only the hash may differ from the last run's.
    private readonly navigate: (url: string) => void = (url) => {
      window.history.replaceState(null, '', location.pathname + url);
      location.reload();
    },
  ) {
    this.channel.addEventListener('message', (e: MessageEvent<Msg>) => void this.onMessage(e.data));
  }

  close(): void {
    this.cancelled = true;
    this.channel.close();
  }

  cancel(): void {
    this.cancelled = true;
  }

  // ---- destination side -------------------------------------------------------------------

  private async onMessage(msg: Msg): Promise<void> {
    if (msg.type === 'prepare' && msg.to === this.ownId()) this.navigate(msg.query);
    if (msg.type === 'finished' && msg.to === this.ownId() && this.armedToken === msg.token) await this.takeOffCompare();
  }

  /** The token this tab was armed with, and the capabilities it switched on for it. */
  private armedToken: string | null = null;
  private armedCaps: string[] = [];

  /**
   * The last run is over: this tab keeps the guest it received, but its address loses the
   * comparison's hash and the capabilities it switched on for the run go off again.
   */
  private async takeOffCompare(): Promise<void> {
    window.history.replaceState(null, '', location.pathname + location.search);
    if (this.armedCaps.length) await executeSafely(this.qmp, { execute: 'migrate-set-capabilities', arguments: caps(Object.fromEntries(this.armedCaps.map((c) => [c, false]))) });
    this.armedToken = null;
    this.armedCaps = [];
  }

  /**
   * Called at start-up when the page was loaded with `#compare=TOKEN` (in the hash: the query is
   * QEMU's command line, which knows no such option): arm, then report.
   */
  async armFromUrl(params: URLSearchParams): Promise<void> {
    const token = params.get('compare');
    if (!token) return;
    try {
      const want = (params.get('caps') ?? '').split(',').filter(Boolean);
      if (want.length) await ret(this.qmp, 'migrate-set-capabilities', caps(Object.fromEntries(want.map((c) => [c, true]))));
      this.armedToken = token;
      this.armedCaps = want;
      await ret(this.qmp, 'migrate-incoming', { uri: 'webrtc:' });
      const peer = await ret<{ id?: string; name?: string }>(this.qmp, 'x-tabmig-peer');
      const waitCont = this.waitFor((m) => m.type === 'cont' && m.token === token, 600000).catch(() => null);
      this.post({ type: 'armed', token, id: peer.id ?? peer.name ?? this.ownId() });
      // Until the guest is ours and running (stop-and-copy: after the source says cont).
      for (;;) {
        await sleep(POLL_MS);
        const st = await ret<{ status: string }>(this.qmp, 'query-status');
        const mig = await ret<{ status?: string }>(this.qmp, 'query-migrate');
        if (mig.status === 'failed') throw new Error('the incoming migration failed');
        if (st.status === 'running') break;
        if (st.status === 'paused' && mig.status === 'completed') {
          await waitCont;
          await ret(this.qmp, 'cont');
        }
      }
      // The stress guest notices the jump on its next look at the clock.
      await sleep(1500);
      const g = await ret<{ serial: string }>(this.qmp, 'x-tabmig-guest-info');
      this.post({ type: 'started', token, guestDowntime: clockJump(g.serial) });
    } catch (e) {
      this.post({ type: 'failed', token, error: e instanceof Error ? e.message : String(e) });
    }
  }

  // ---- source side ------------------------------------------------------------------------

  async run(req: CompareRequest, progress: (p: CompareProgress) => void): Promise<RunRecord[]> {
    this.cancelled = false;
    const runs: RunRecord[] = [];
    const batch = Date.now().toString(36).slice(-4);
    let destination = req.destination;
    const planned = req.variants.map((v) => v.id);
    let finished = 0;
    let lastToken: string | null = null;
    const report = (method: string | null, step: string, error: string | null = null, done = false) =>
      progress({ planned, finished, method, step, runs: [...runs], error, done });
    // What this tab was, to put back at the end: its capabilities, its guest and whether it ran.
    const before = await this.readTab();
    // Only capabilities this build knows can be set (or cleared): asked once, first.
    let known = new Set<string>();
    const settable = (list: Record<string, boolean>) => Object.fromEntries(Object.entries(list).filter(([c]) => known.has(c)));
    try {
      known = new Set((await ret<{ capability: string }[]>(this.qmp, 'query-migrate-capabilities')).map((c) => c.capability));
      for (const variant of req.variants) {
        if (this.cancelled) throw new Error('cancelled');
        const { method, id } = variant;
        const missing = variant.capabilities.filter((c) => !known.has(c));
        if (missing.length) throw new Error(`${id}: this build has no ${missing.join(', ')} capability`);
        const token = `${batch}-${id}-${Math.random().toString(36).slice(2, 8)}`;
        lastToken = token;
        report(id, 'Reloading the destination tab as -incoming defer (a fresh destination)');
        const capsList = variant.destinationCapabilities.join(',');
        const query = `?m=${encodeURIComponent(req.ramSize)}&incoming=defer#compare=${encodeURIComponent(token)}${capsList ? `&caps=${capsList}` : ''}`;
        const armed = this.waitFor((m) => m.type === 'armed' && m.token === token, 30000);
        const failed = this.waitFor((m) => m.type === 'failed' && m.token === token, 600000);
        failed.catch(() => {});
        this.post({ type: 'prepare', token, to: destination, query });
        const answer = await Promise.race([armed, failed]);
        if (answer.type === 'failed') throw new Error(`destination: ${answer.error}`);
        destination = (answer as Extract<Msg, { type: 'armed' }>).id;

        report(id, `Loading ${req.program} ${req.args} here`);
        await ret(this.qmp, 'x-tabmig-load', { program: req.program, ...(req.args ? { args: req.args } : {}) });
        await ret(this.qmp, 'cont');
        if (req.program === 'stress') {
          for (const t0 = Date.now(); ; await sleep(POLL_MS)) {
            const g = await ret<{ serial: string }>(this.qmp, 'x-tabmig-guest-info');
            if (g.serial.includes('stress: ready')) break;
            if (Date.now() - t0 > 120000) throw new Error('the stress guest never said ready');
          }
        }
        await sleep(1000);
        await ret(this.qmp, 'migrate-set-capabilities', caps({ 'return-path': true }));
        report(id, `migrate-set-capabilities ${variant.capabilities.join(', ') || '(none of the reducers)'}`);
        await ret(this.qmp, 'migrate-set-capabilities', caps(settable(capabilitiesFor(variant))));

        if (this.history) this.history.nextRun = { label: id, method, guest: { program: req.program, args: req.args } };
        const stored = this.history?.nextStored();
        const started = this.waitFor((m) => m.type === 'started' && m.token === token, 600000);
        started.catch(() => {});
        const tStop = performance.now();
        if (method === 'stop-and-copy') await ret(this.qmp, 'stop');
        report(id, `migrate webrtc:${destination}`);
        await ret(this.qmp, 'migrate', { uri: `webrtc:${destination}` });
        let startedPostcopy = false;
        let info: { status?: string; [k: string]: unknown } = {};
        for (const t0 = Date.now(); ; await sleep(POLL_MS)) {
          info = await ret(this.qmp, 'query-migrate');
          if (method === 'postcopy' && !startedPostcopy && info.status === 'active' && Date.now() - t0 > 1000) {
            startedPostcopy = true;
            report(id, 'migrate-start-postcopy');
            const r = await executeSafely(this.qmp, { execute: 'migrate-start-postcopy' });
            if (r.error) {
              // This build cannot switch to postcopy: do not let a precopy pass as one.
              await executeSafely(this.qmp, { execute: 'migrate_cancel' });
              throw new Error(`migrate-start-postcopy: ${r.error.desc}`);
            }
          }
          if (FINAL.includes(info.status ?? '')) break;
          if (this.cancelled) await executeSafely(this.qmp, { execute: 'migrate_cancel' });
        }
        if (info.status !== 'completed') throw new Error(`${id} ended ${info.status}`);
        if (method === 'stop-and-copy') {
          report(id, 'cont on the destination');
          this.post({ type: 'cont', token, to: destination });
        }
        report(id, 'Waiting for the destination guest to run');
        const outcome = await Promise.race([started, failed]);
        if (outcome.type === 'failed') throw new Error(`destination: ${outcome.error}`);
        const seen = (outcome as Extract<Msg, { type: 'started' }>).guestDowntime;
        const whole = performance.now() - tStop;
        const run = stored ? await stored : null;
        if (run) {
          // Stop-and-copy without a guest clock: the guest was down from stop until it ran again.
          run.guestDowntime = seen ?? (method === 'stop-and-copy' ? Math.round(whole) : null);
          await this.history!.put(run);
          runs.push(run);
        }
        finished++;
      }
      report(null, 'Putting this tab back as it was');
      await this.putBack(before, settable, destination, lastToken);
      report(null, 'Done', null, true);
    } catch (e) {
      report(null, 'Stopped; putting this tab back as it was', e instanceof Error ? e.message : String(e));
      await this.putBack(before, settable, destination, lastToken);
      report(null, 'Stopped', e instanceof Error ? e.message : String(e), true);
    }
    return runs;
  }

  /** What Compare changes in this tab, read before it starts. */
  private async readTab(): Promise<TabBefore> {
    const capsNow = await executeSafely(this.qmp, { execute: 'query-migrate-capabilities' });
    const guest = await executeSafely(this.qmp, { execute: 'x-tabmig-guest-info' });
    const st = await executeSafely(this.qmp, { execute: 'query-status' });
    const g = (guest.return ?? {}) as { program?: string; args?: string };
    return {
      capabilities: Object.fromEntries(((capsNow.return ?? []) as { capability: string; state: boolean }[]).map((c) => [c.capability, c.state])),
      program: g.program ?? '',
      args: g.args ?? '',
      running: (st.return as { status?: string } | undefined)?.status === 'running',
    };
  }

  /**
   * Leaves this tab as it found it: every capability Compare touched back to what it was (a
   * change is refused while a migration runs; then it stays), its program loaded again (the one
   * it had went to the other tab, or was replaced), running if it ran; the other tab loses the
   * comparison's address and capabilities and keeps the last run's guest.
   */
  private async putBack(before: TabBefore, settable: (list: Record<string, boolean>) => Record<string, boolean>, destination: string, token: string | null): Promise<void> {
    const touched = [...VARIANT_CAPABILITIES, 'return-path'];
    const back = settable(Object.fromEntries(touched.map((c) => [c, before.capabilities[c] ?? false])));
    await executeSafely(this.qmp, { execute: 'migrate-set-capabilities', arguments: caps(back) });
    if (before.program) {
      await executeSafely(this.qmp, { execute: 'x-tabmig-load', arguments: { program: before.program, ...(before.args ? { args: before.args } : {}) } });
      if (before.running) await executeSafely(this.qmp, { execute: 'cont' });
    }
    if (token) this.post({ type: 'finished', token, to: destination });
  }

  private post(msg: Msg): void {
    this.channel.postMessage(msg);
  }

  private waitFor(pred: (m: Msg) => boolean, ms: number): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const on = (e: MessageEvent<Msg>) => {
        if (!pred(e.data)) return;
        clearTimeout(timer);
        this.channel.removeEventListener('message', on);
        resolve(e.data);
      };
      const timer = setTimeout(() => {
        this.channel.removeEventListener('message', on);
        reject(new Error('the destination tab did not answer (is it open, with this page?)'));
      }, ms);
      this.channel.addEventListener('message', on);
    });
  }
}
