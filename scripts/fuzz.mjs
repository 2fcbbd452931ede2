// `npm run fuzz [-- RUNS [SEED]]`: the stream fuzzer, headless, in Node: test/fuzz/ bundled with
// esbuild (the same modules the in-browser suite runs), 100 000 inputs by default, through the
// real incoming thread over loopback MessageChannels. Prints counts by outcome; exit 1 on any
// violation (a hang, an internal error, a guest after a failed load, an uncaught exception, …).
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const runs = Number(process.argv[2] ?? process.env.FUZZ_RUNS ?? 100000);
const seed = Number(process.argv[3] ?? process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const out = 'node_modules/.cache/tabmig-fuzz/fuzz-node.mjs';
mkdirSync('node_modules/.cache/tabmig-fuzz', { recursive: true });
await build({ entryPoints: ['test/fuzz/fuzz.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, logLevel: 'warning' });
const { fuzz, formatReport } = await import(pathToFileURL(out).href);

const uncaught = [];
process.on('uncaughtException', (e) => uncaught.push(`uncaughtException: ${e?.stack ?? e}`));
process.on('unhandledRejection', (e) => uncaught.push(`unhandledRejection: ${e?.stack ?? e}`));
let peakArrayBuffers = 0;
let peakRss = 0;
const sample = () => {
  const m = process.memoryUsage();
  peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
  peakRss = Math.max(peakRss, m.rss);
};
const timer = setInterval(sample, 200);
console.log(`stream fuzz: ${runs} inputs, seed ${seed}`);
let live = null;
// Stopped early (SIGINT/SIGTERM): the figures so far, judged the same way.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => {
  if (live) finish(live, true);
  process.exit(130);
});
const report = await fuzz({
  runs,
  seed,
  uncaught,
  onStart: (r) => (live = r),
  onProgress: (r) => {
    if (r.runs % 5000 === 0) console.log(`  ${r.runs} inputs, ${(r.ms / 1000).toFixed(0)} s, violations ${r.violations.length}`);
  },
});
process.exit(finish(report, false));

function finish(report, stopped) {
  clearInterval(timer);
  sample();
  if (stopped) console.log(`STOPPED after ${report.runs} of ${runs} inputs`);
  console.log(formatReport(report));
  console.log(`memory: peak rss ${(peakRss / 2 ** 20).toFixed(0)} MiB, peak ArrayBuffers ${(peakArrayBuffers / 2 ** 20).toFixed(0)} MiB (largest input ${(1 << 20) / 2 ** 20} MiB seed + mutations)`);
  console.log(`seed ${seed} (replay: npm run fuzz -- ${runs} ${seed})`);
  // Memory in proportion to the input: every input is at most ~1 MiB (plus a few KiB of
  // mutations), so a loader that allocates what a hostile length asks for shows up here.
  const MEMORY_LIMIT = 512 * 2 ** 20;
  const memoryOk = peakArrayBuffers < MEMORY_LIMIT;
  if (!memoryOk) console.log(`VIOLATION: ArrayBuffers peaked at ${(peakArrayBuffers / 2 ** 20).toFixed(0)} MiB, above ${MEMORY_LIMIT / 2 ** 20} MiB`);
  if (report.violations.length) {
    writeFileSync('fuzz-violations.json', JSON.stringify(report.violations, null, 1));
    console.log('violations written to fuzz-violations.json');
}
return report.violations.length || uncaught.length || !memoryOk ? 1 : 0;
}
