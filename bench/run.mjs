// `npm run bench`: headless measurements in one browser, one run, printed as a table and written
// to bench/results.json. Every migration figure is read against the raw tab-to-tab data channel
// of the same run (these machines are shared and noisy: ratios travel, absolute numbers do not).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { sleep, startBrowser, startServer } from '../test/e2e/harness.mjs';
import { benches, ratios, reducerReport } from './suite.mjs';

const only = process.argv.slice(2);
// The bench measures this checkout: build it (the harness would serve a stale dist/ otherwise).
await new Promise((resolve, reject) => {
  const b = spawn('npx', ['vite', 'build', '--logLevel', 'warn'], { stdio: 'inherit' });
  b.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited ${code}`))));
});
const server = await startServer();
const browser = await startBrowser(server.base);
const RESULTS = new URL('./results.json', import.meta.url);
// A run of some benches (`npm run bench memory-map`) updates their figures and keeps the others,
// noting what it ran and when; a full run starts the file afresh. The load average goes with
// each: on a shared machine it says how far to trust the figures.
const previous = only.length && existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : null;
const thisRun = { date: new Date().toISOString(), cores: os.cpus().length, loadavg_before: os.loadavg().map((x) => +x.toFixed(2)) };
const results = previous
  ? { ...previous, partial_runs: [...(previous.partial_runs ?? []), { ...thisRun, benches: only }], figures: { ...previous.figures } }
  : { ...thisRun, figures: {} };
/** What this run measured (merged into results.figures at the end). */
const fresh = {};
try {
  for (const bench of benches) {
    if (only.length && !only.includes(bench.name)) continue;
    process.stderr.write(`bench: ${bench.name}…\n`);
    const t0 = Date.now();
    try {
      const figures = await bench.run({ browser, sleep });
      Object.assign(fresh, figures);
      delete results.figures[`${bench.name}_error`];
    } catch (e) {
      fresh[`${bench.name}_error`] = String(e?.message ?? e);
    }
    process.stderr.write(`bench: ${bench.name} took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
} finally {
  await browser.close();
  server.stop();
}

// The raw channel is measured before and after the migrations; ratios use the mean of both.
for (const [mean, after] of [
  ['raw_channel_mb_s', 'raw_channel_after_mb_s'],
  ['raw_channel_256k_mb_s', 'raw_channel_256k_after_mb_s'],
]) {
  if (fresh[mean] && fresh[after]) fresh[mean] = (fresh[mean] + fresh[after]) / 2;
}
Object.assign(results.figures, fresh);
Object.assign(results.figures, ratios(results.figures));
// Print what this run measured (and the ratios); the file keeps the rest.
const rows = Object.entries({ ...fresh, ...ratios(results.figures) })
  .filter(([, v]) => !Array.isArray(v))
  .map(([k, v]) => [k, typeof v === 'number' ? +v.toFixed(3) : v]);
const w = Math.max(...rows.map(([k]) => k.length));
console.log('\n' + 'figure'.padEnd(w) + '  value');
console.log('-'.repeat(w) + '  -----');
for (const [k, v] of rows) console.log(k.padEnd(w) + '  ' + v);
if (!only.length || only.includes('reducers')) console.log(reducerReport(results.figures));
const after = os.loadavg().map((x) => +x.toFixed(2));
if (previous) results.partial_runs[results.partial_runs.length - 1].loadavg_after = after;
else results.loadavg_after = after;
console.log(`load average (1, 5, 15 min): before ${thisRun.loadavg_before.join(', ')}, after ${after.join(', ')}`);
writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
console.log('\nwritten to bench/results.json');
