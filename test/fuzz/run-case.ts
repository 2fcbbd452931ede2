// One fuzz input through the real destination: an IncomingThread (the class incoming.worker runs)
// reading a loopback MessageChannel, fed the way a network would: random chunk sizes, stalls, and
// an orderly close, an abort, a close part way, or silence. The driver plays the main thread's
// part of the switchover (the verdict), then judges the end state:
//  - a clear error: status failed, the guest never given (still inmigrate, never told to run,
//    device state untouched), or, after 'ready' and a lost link, one complete paused machine;
//  - a complete machine: status completed, a runstate given, and device state that passes every
//    check the loader applies (and, for an unmodified stream, exactly the source's RAM and state);
// and never: a run that does not end within the idle timeout, an internal exception (TypeError,
// RangeError, an overrun) passed off as a load error, or an uncaught exception.

import { ControlBlock } from '../../src/guest/control-block.js';
import { DEVICES, DeviceState } from '../../src/guest/device-state.js';
import { PAGE_SIZE, RAM_BASE } from '../../src/guest/memory-map.js';
import { IncomingThread } from '../../src/migration/destination/incoming-thread.js';
import type { FromIncoming, IncomingStart } from '../../src/migration/destination/incoming-protocol.js';
import { IncomingBlock, IncomingWord, Phase } from '../../src/migration/incoming-block.js';
import { DEVICE_VALIDATORS } from '../../src/migration/load-handlers.js';
import { MigrationOptions } from '../../src/migration/options.js';
import { PageState } from '../../src/migration/page-state.js';
import { decodeFieldValues, readDeviceFields, saveDeviceState, StreamReader, StreamWriter, BufferSink } from '../../src/migration/stream/index.js';
import { Verdict } from '../../src/migration/switchover.js';
import { fromMessagePort } from '../../src/transport/channel.js';
import { ChannelSet } from '../../src/transport/channel-set.js';
import { FUZZ_MACHINE_TYPE } from './corpus.js';

export type EndMode = 'close' | 'abort' | 'cut-close' | 'silent';
export type VerdictPlan = 'commit' | 'abort' | 'link-lost' | 'none';

export interface Chaos {
  /** Chunk sizes cycle through this list (bytes per write). */
  readonly chunks: readonly number[];
  /** Stall (ms) after every `stallEvery`-th chunk; 0: never. */
  readonly stallEvery: number;
  readonly stallMs: number;
  readonly end: EndMode;
  /** For cut-close: the fraction of the stream sent before the close. */
  readonly cutAt: number;
  readonly verdict: VerdictPlan;
  /** Run the handshake (a live source); false: a saved stream (runstate decided at once). */
  readonly handshake: boolean;
}

export interface FuzzInput {
  readonly bytes: Uint8Array;
  readonly ramSize: number;
  readonly footers: boolean;
  /** When the input is an unmodified seed: what a completed load must reproduce exactly. */
  readonly expect?: { ram: Uint8Array; state: DeviceState } | null;
}

export interface CaseResult {
  /** The destination's error text, when it failed. */
  readonly error?: string;
  /** Outcome class for the counts ("completed:running", "failed:truncated", …). */
  readonly outcome: string;
  /** Set when a property was broken: what went wrong. */
  readonly violation: string | null;
  readonly ms: number;
}

/** Idle timeout of every case: the hang limit is measured from the last byte sent plus this. */
export const FUZZ_IDLE_MS = 100;
/** The migration id the fuzzed source named when it connected. */
const FUZZ_MIGRATION = 777;
/**
 * The chunk plan covers the first and last EDGE_WRITES writes (where the structure is); the
 * pages in between go in 64 KiB writes, so tiny chunks on a 1 MiB stream stay affordable.
 */
const EDGE_WRITES = 200;
const MAX_STALLS = 3;
const HANG_MARGIN_MS = 3000;

/** Engine messages that mean a bug in the loader, not a refused stream. */
const BUG_TEXT =
  /Cannot read prop|is not a function|is not iterable|of undefined|of null|Maximum call stack|Invalid typed array length|Invalid array length|Array buffer allocation failed|out of memory|StreamReader: read of|Offset is outside|RangeError|TypeError|ReferenceError/;

/** Families of refusal, for the counts (first match wins). */
const FAMILIES: ReadonlyArray<[RegExp, string]> = [
  [/^No data from the migration source/, 'idle-timeout'],
  [/Unexpected end of migration stream/, 'truncated'],
  [/aborted by peer|Unable to read from the migration channel|Channel shut down|connection to peer lost/, 'channel-lost'],
  [/Not a migration stream|magic|Unsupported migration stream version|version 2/i, 'header'],
  [/UTF-8/, 'name'],
  [/machine type|Configuration section|configuration/i, 'configuration'],
  [/Input validation failed/, 'device-check'],
  [/carries no/, 'missing-section'],
  [/Unknown savevm section or instance|Unknown savevm section \d|unknown section/i, 'unknown-section'],
  [/Unknown savevm section type|unknown section type/i, 'unknown-section-type'],
  [/footer|Missing section footer/i, 'footer'],
  [/unsupported version|version \d+ for|version-too/i, 'section-version'],
  [/RAM|ram|block|page|offset|Unknown combination of migration flags|flags/, 'ram'],
  [/subsection/i, 'subsection'],
  [/command|CMD_|PACKAGED|package|POSTCOPY/i, 'command'],
  [/vmdescription|VM description/i, 'vm-description'],
  [/exceeds the|too large|out of range|larger than/i, 'too-large'],
  [/UTF-8|name/i, 'name'],
  [/globalstate|runstate/i, 'globalstate'],
  [/bytes follow|after EOF/i, 'trailing'],
  [/error while loading state/, 'device-load'],
];

export function family(text: string): string {
  for (const [re, name] of FAMILIES) if (re.test(text)) return name;
  return 'other';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every device's stored state, encoded and decoded again, through the loader's own checks. */
async function deviceProblems(state: DeviceState, ramSize: number): Promise<string | null> {
  const limits = { ramBase: RAM_BASE, ramSize, pcAlign: 4 };
  for (const spec of DEVICES) {
    const check = DEVICE_VALIDATORS[spec.name];
    if (!check) continue;
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    saveDeviceState(w, spec, state);
    await w.flush();
    const wire = await readDeviceFields(StreamReader.fromBytes(sink.toBytes()), spec, spec.version);
    const why = check(decodeFieldValues(spec, wire), limits);
    if (why) return why;
  }
  return null;
}

/** Scratch buffers reused across cases of the same RAM size (a fresh SharedArrayBuffer per case costs more than the case). */
const ramPool = new Map<number, SharedArrayBuffer>();

export async function runCase(input: FuzzInput, chaos: Chaos): Promise<CaseResult> {
  const t0 = performance.now();
  const mainPair = new MessageChannel();
  const rpPair = new MessageChannel();
  const channels = new ChannelSet();
  channels.add(0, mainPair.port2);
  channels.add(1, rpPair.port2);
  let ramBuf = ramPool.get(input.ramSize);
  if (!ramBuf) ramPool.set(input.ramSize, (ramBuf = new SharedArrayBuffer(input.ramSize)));
  const ram = new Uint8Array(ramBuf);
  ram.fill(0);
  const state = new DeviceState();
  const before = state.bytes.slice();
  const control = new ControlBlock();
  control.runstate = 'inmigrate';
  const gen = control.generation;
  const block = new IncomingBlock();
  block.autostart = true;
  // The migration the source named when it connected (the main thread writes it from the hello).
  block.setWord(IncomingWord.MIGRATION, FUZZ_MIGRATION);
  const pageState = new PageState(input.ramSize / PAGE_SIZE);
  const options = new MigrationOptions();
  options.setParameters({ 'x-incoming-idle-timeout': FUZZ_IDLE_MS });
  options.setGlobal('send-section-footer', input.footers);
  const posts: FromIncoming[] = [];
  let readySeen = false;
  const start: IncomingStart = {
    type: 'start',
    ram: ramBuf,
    deviceState: state.buffer,
    control: control.buffer,
    block: block.buffer,
    pageState: pageState.buffer,
    options: options.toPlain(),
    source: { kind: 'channel' },
    machineType: FUZZ_MACHINE_TYPE,
    handshake: chaos.handshake,
    failedLingerMs: 0,
  };
  const thread = new IncomingThread(start, channels, (m) => {
    posts.push(m);
    if (m.type === 'switchover' && m.message.switchover === 'ready') {
      readySeen = true;
      if (chaos.verdict === 'commit') block.setVerdict(Verdict.COMMIT);
      else if (chaos.verdict === 'abort') block.setVerdict(Verdict.ABORT);
      else if (chaos.verdict === 'link-lost') block.setVerdict(Verdict.LINK_LOST);
      // 'none': the source stays silent; the thread's verdict wait must end by itself.
    }
  });
  const main = fromMessagePort(mainPair.port1, { label: 'main' });
  const rp = fromMessagePort(rpPair.port1, { label: 'return-path' });
  rp.onmessage = () => {};
  let finished = false;
  const run = thread.run().then(() => {
    finished = true;
  });

  // ---- the source: chunks, stalls, and how it ends ----
  const bytes = input.bytes;
  const limit = chaos.end === 'cut-close' ? Math.floor(bytes.length * chaos.cutAt) : bytes.length;
  let lastSend = performance.now();
  const mean = chaos.chunks.reduce((a, b) => a + b, 0) / chaos.chunks.length;
  const headEnd = EDGE_WRITES * mean;
  const tailStart = limit - EDGE_WRITES * mean;
  let stalls = 0;
  try {
    for (let at = 0, i = 0; at < limit && !finished; i++) {
      const planned = at < headEnd || at >= tailStart ? chaos.chunks[i % chaos.chunks.length]! : Math.min(65536, tailStart - at);
      const n = Math.max(1, Math.min(planned, limit - at));
      await main.write(bytes.subarray(at, at + n));
      at += n;
      lastSend = performance.now();
      if (chaos.stallEvery > 0 && i % chaos.stallEvery === chaos.stallEvery - 1 && stalls++ < MAX_STALLS) await sleep(chaos.stallMs);
    }
    if (chaos.end === 'close' || chaos.end === 'cut-close') await main.close();
    else if (chaos.end === 'abort') main.abort('fuzz: the source went away');
  } catch {
    // the destination gave up and closed the channel under the writer: fine
  }
  lastSend = performance.now();

  // ---- a bounded wait: idle timeout (stream, then verdict) plus a margin ----
  const budget = 2 * FUZZ_IDLE_MS + HANG_MARGIN_MS;
  let hung = false;
  await Promise.race([run, sleep(budget).then(() => (hung = !finished))]);
  const ms = performance.now() - t0;
  main.abort('fuzz case over');
  rp.abort('fuzz case over');
  if (hung) {
    thread.cancel('fuzz: hang');
    await Promise.race([run, sleep(2000)]);
    return { outcome: 'HANG', violation: `no end ${Math.round(performance.now() - lastSend)} ms after the last byte (${block.status})`, ms };
  }

  // ---- judge ----
  const status = block.status;
  const phase = block.phase;
  const failedText = posts.flatMap((p) => (p.type === 'status' && p.status === 'failed' ? [p.error ?? ''] : []))[0] ?? '';
  if (status === 'completed') {
    if (phase !== Phase.STARTED) return { outcome: 'BAD-END', violation: `completed in phase ${phase}`, ms };
    if (chaos.handshake && chaos.verdict !== 'commit') return { outcome: 'BAD-END', violation: `guest started with verdict ${chaos.verdict}`, ms };
    const rs: string = control.runstate;
    if (rs !== 'running' && rs !== 'paused') return { outcome: 'BAD-END', violation: `completed with runstate ${rs}`, ms };
    if (control.generation === gen) return { outcome: 'BAD-END', violation: 'completed but the vCPU was never told to reload', ms };
    const why = await deviceProblems(state, input.ramSize).catch((e: unknown) => String(e));
    if (why) return { outcome: 'INVALID-MACHINE', violation: `a started machine fails the loader's checks: ${why}`, ms };
    if (input.expect) {
      if (!ram.every((v, i) => v === input.expect!.ram[i])) return { outcome: 'WRONG-RAM', violation: 'RAM differs from the source', ms };
      if (!state.bytes.every((v, i) => v === input.expect!.state.bytes[i])) return { outcome: 'WRONG-STATE', violation: 'device state differs from the source', ms };
    }
    return { outcome: `completed:${rs}`, violation: null, ms };
  }
  if (status === 'failed') {
    if (BUG_TEXT.test(failedText)) return { outcome: 'INTERNAL-ERROR', violation: `internal error passed off as a load error: ${failedText}`, ms };
    if (!failedText) return { outcome: 'BAD-END', violation: 'failed without saying why', ms };
    if (phase !== Phase.DISCARDED) return { outcome: 'BAD-END', violation: `failed in phase ${phase}`, ms };
    if (control.runstate !== 'inmigrate' || control.runRequested || control.generation !== gen) {
      return { outcome: 'GUEST-AFTER-FAILURE', violation: `a failed load gave the guest: ${control.runstate}`, ms };
    }
    // Before 'ready' device state is only staged: a refused stream leaves the tab's untouched.
    if (!readySeen && !state.bytes.every((v, i) => v === before[i])) return { outcome: 'GUEST-AFTER-FAILURE', violation: 'a failed load changed the device state', ms };
    if (readySeen && chaos.verdict === 'abort') return { outcome: 'discarded:abort', violation: null, ms };
    return { outcome: `failed:${family(failedText)}`, violation: null, ms, error: failedText };
  }
  if (status === 'active' && phase === Phase.KEPT_PAUSED) {
    // In doubt: the complete machine kept paused; the main thread (not here) settles the status.
    if (!readySeen) return { outcome: 'BAD-END', violation: 'kept paused without having said ready', ms };
    if ((control.runstate as string) !== 'paused' || control.runRequested) return { outcome: 'BAD-END', violation: `kept-paused machine is ${control.runstate}`, ms };
    if (!posts.some((p) => p.type === 'in-doubt')) return { outcome: 'BAD-END', violation: 'kept paused without telling the main thread', ms };
    const why = await deviceProblems(state, input.ramSize).catch((e: unknown) => String(e));
    if (why) return { outcome: 'INVALID-MACHINE', violation: `a kept machine fails the loader's checks: ${why}`, ms };
    return { outcome: 'kept-paused', violation: null, ms };
  }
  return { outcome: 'BAD-END', violation: `run ended with status ${status}`, ms };
}
