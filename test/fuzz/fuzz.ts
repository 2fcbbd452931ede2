// The stream fuzzer's driver: fast-check properties over the corpus of real saved streams, run
// through runCase (the real incoming thread over a loopback channel). Three kinds of input:
//   seed    an unmodified saved stream (under random chunking / ends / verdicts): must load to
//           exactly the source's machine whenever it completes;
//   mutate  byte-level mutations of a saved stream;
//   hostile structure-aware streams with valid framing and hostile values.
// Used by test/stream-fuzz.test.ts (a few thousand, in the browser) and scripts/fuzz.mjs
// (`npm run fuzz`, 100 000+ in Node).

import fc from 'fast-check';
import { DEVICES } from '../../src/guest/device-state.js';
import { BufferSink, StreamWriter, saveDeviceState } from '../../src/migration/stream/index.js';
import { applyMutations, buildHostile, chaos, hostileSpec, mutation } from './arbitraries.js';
import { buildCorpus, type Seed } from './corpus.js';
import { runCase, type CaseResult, type Chaos } from './run-case.js';

export type Kind = 'seed' | 'mutate' | 'hostile';

export interface Violation {
  kind: Kind;
  seed: string;
  outcome: string;
  violation: string;
  chaos: Chaos;
  /** The input, base64 (first 64 KiB), to replay it. */
  input: string;
  length: number;
}

export interface FuzzReport {
  runs: number;
  byKind: Record<Kind, number>;
  outcomes: Record<string, number>;
  violations: Violation[];
  uncaught: string[];
  /** One error text per outcome class, to show what each class means. */
  examples: Record<string, string>;
  /** Outcomes split by kind of input ("hostile/failed:ram"). */
  kindOutcomes: Record<string, number>;
  ms: number;
  maxCaseMs: number;
  bytes: number;
}

export interface FuzzOptions {
  runs: number;
  seed?: number;
  /** Stop at the first violation (CI) rather than count them all. */
  failFast?: boolean;
  onProgress?: (report: FuzzReport) => void;
  /** Called once with the live report (it fills as inputs run), e.g. to print it if the run is stopped. */
  onStart?: (report: FuzzReport) => void;
  /** Where uncaught exceptions are collected from (window or process); the caller installs it. */
  uncaught?: string[];
}

function b64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < Math.min(bytes.length, 65536); i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

/** A real stream's bytes from its first device section (after the ram END's footer) to its end. */
function tailOf(seed: Seed): Uint8Array {
  // The first FULL section (0x04) whose name is a device: search for "\x04" + id + counted name.
  const b = seed.bytes;
  const first = DEVICES[0]!.name;
  const name = new TextEncoder().encode(first);
  for (let i = 0; i + 6 + name.length < b.length; i++) {
    if (b[i] !== 0x04 || b[i + 5] !== name.length) continue;
    let hit = true;
    for (let j = 0; j < name.length && hit; j++) hit = b[i + 6 + j] === name[j];
    if (hit) return b.subarray(i);
  }
  return new Uint8Array([0]);
}

export async function fuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const corpus = await buildCorpus();
  const withFooters = corpus.filter((s) => s.footers);
  const stateBytes: Uint8Array[] = [];
  for (const spec of DEVICES) {
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    saveDeviceState(w, spec, corpus[0]!.state);
    await w.flush();
    stateBytes.push(sink.toBytes());
  }
  const validState = (i: number) => stateBytes[i]!;
  const tails = new Map(withFooters.map((s) => [s.ramSize, tailOf(s)] as const));
  const sizes = [...new Set(withFooters.map((s) => s.ramSize))];

  const report: FuzzReport = { runs: 0, byKind: { seed: 0, mutate: 0, hostile: 0 }, outcomes: {}, violations: [], uncaught: opts.uncaught ?? [], examples: {}, kindOutcomes: {}, ms: 0, maxCaseMs: 0, bytes: 0 };
  const t0 = performance.now();
  opts.onStart?.(report);
  const input = fc.oneof(
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('seed' as const), seed: fc.nat(corpus.length - 1), mutations: fc.constant([]), hostile: fc.constant(null) }) },
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('mutate' as const), seed: fc.nat(corpus.length - 1), mutations: fc.array(mutation, { minLength: 1, maxLength: 5 }), hostile: fc.constant(null) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('hostile' as const), seed: fc.constant(0), mutations: fc.constant([]), hostile: hostileSpec(sizes) }) },
  );

  const property = fc.asyncProperty(input, chaos, async (inp, ch) => {
    let bytes: Uint8Array;
    let seed: Seed;
    if (inp.kind === 'hostile') {
      const spec = inp.hostile!;
      seed = withFooters.find((s) => s.ramSize === spec.ramSize)!;
      bytes = buildHostile(spec, tails.get(spec.ramSize)!, validState);
    } else {
      seed = corpus[inp.seed]!;
      bytes = inp.kind === 'seed' ? seed.bytes : applyMutations(seed.bytes, inp.mutations, corpus);
    }
    const uncaughtBefore = report.uncaught.length;
    let r: CaseResult;
    try {
      r = await runCase(
        { bytes, ramSize: seed.ramSize, footers: seed.footers, expect: inp.kind === 'seed' ? { ram: seed.ram, state: seed.state } : null },
        ch,
      );
    } catch (e) {
      r = { outcome: 'THROWN', violation: `the harness caught ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, ms: 0 };
    }
    if (!r.violation && report.uncaught.length > uncaughtBefore) r = { ...r, outcome: 'UNCAUGHT', violation: report.uncaught.at(-1)! };
    report.runs++;
    report.byKind[inp.kind]++;
    report.bytes += bytes.length;
    report.outcomes[r.outcome] = (report.outcomes[r.outcome] ?? 0) + 1;
    const ko = `${inp.kind}/${r.outcome}`;
    report.kindOutcomes[ko] = (report.kindOutcomes[ko] ?? 0) + 1;
    report.maxCaseMs = Math.max(report.maxCaseMs, r.ms);
    if (r.error && !(r.outcome in report.examples)) report.examples[r.outcome] = r.error.slice(0, 160);
    if (r.violation) {
      report.violations.push({ kind: inp.kind, seed: seed.name, outcome: r.outcome, violation: r.violation, chaos: ch, input: b64(bytes), length: bytes.length });
    }
    report.ms = performance.now() - t0;
    if (opts.onProgress && report.runs % 1000 === 0) {
      report.ms = performance.now() - t0;
      opts.onProgress(report);
    }
    return !(opts.failFast && r.violation);
  });
  const result = await fc.check(property, { numRuns: opts.runs, seed: opts.seed, endOnFailure: true, interruptAfterTimeLimit: undefined });
  report.ms = performance.now() - t0;
  if (result.failed && opts.failFast && report.violations.length === 0) {
    report.violations.push({ kind: 'seed', seed: '?', outcome: 'PROPERTY', violation: fc.defaultReportMessage(result) ?? 'failed', chaos: null as unknown as Chaos, input: '', length: 0 });
  }
  return report;
}

/** The report as lines of text (counts by outcome, most frequent first). */
export function formatReport(r: FuzzReport): string {
  const lines = [
    `stream fuzz: ${r.runs} inputs (${r.byKind.seed} saved streams, ${r.byKind.mutate} mutated, ${r.byKind.hostile} hostile), ${(r.bytes / 1e6).toFixed(1)} MB, ${(r.ms / 1000).toFixed(1)} s, slowest case ${Math.round(r.maxCaseMs)} ms`,
    'outcomes:',
    ...Object.entries(r.outcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `  ${k.padEnd(28)} ${String(n).padStart(7)}  ${r.examples[k] ? `e.g. ${r.examples[k]}` : ''}`),
    `violations: ${r.violations.length}`,
    ...r.violations.slice(0, 10).map((v) => `  ${v.outcome} [${v.kind} ${v.seed}, ${v.length} bytes, ${JSON.stringify(v.chaos)}]: ${v.violation}`),
    `uncaught exceptions: ${r.uncaught.length}`,
  ];
  return lines.join('\n');
}
