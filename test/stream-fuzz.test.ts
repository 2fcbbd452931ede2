// The stream fuzzer in the browser (CI's share: a few thousand inputs; `npm run fuzz` runs
// 100 000+ in Node): real saved streams mutated byte by byte and structure-aware hostile streams,
// each through the real incoming thread over a loopback channel with random chunking, stalls,
// early closes and verdicts. Every input must end in a clear error or a complete, valid machine
// (test/fuzz/run-case.ts says exactly what is checked).
import { MACHINE_TYPE } from '../src/migration/migration-service.js';
import { FUZZ_MACHINE_TYPE } from './fuzz/corpus.js';
import { formatReport, fuzz } from './fuzz/fuzz.js';
import { equal, ok } from './helpers/assert.js';

const RUNS = 2500;

describe('stream fuzz through the incoming thread', () => {
  it(`${RUNS} saved, mutated and hostile streams: a clear error or a complete machine, never a hang, a crash or a guest after a failure`, async function () {
    this.timeout(120000);
    equal(FUZZ_MACHINE_TYPE, MACHINE_TYPE, "the fuzzer's machine type is this build's");
    const uncaught: string[] = [];
    const onError = (e: ErrorEvent) => uncaught.push(`error: ${e.message}`);
    const onRejection = (e: PromiseRejectionEvent) => uncaught.push(`unhandledrejection: ${String(e.reason)}`);
    addEventListener('error', onError);
    addEventListener('unhandledrejection', onRejection);
    const seed = Date.now() % 2 ** 31;
    try {
      const report = await fuzz({ runs: RUNS, seed, failFast: true, uncaught });
      const text = formatReport(report);
      console.log(`${text}\nseed ${seed}`);
      ok(report.violations.length === 0, `seed ${seed}:\n${text}`);
      equal(uncaught.length, 0, uncaught.join('\n'));
      equal(report.runs, RUNS);
      ok((report.outcomes['completed:running'] ?? 0) + (report.outcomes['completed:paused'] ?? 0) > 0, 'some inputs load completely');
    } finally {
      removeEventListener('error', onError);
      removeEventListener('unhandledrejection', onRejection);
    }
  });
});
