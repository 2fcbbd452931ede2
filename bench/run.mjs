// `npm run bench`: headless measurements in one browser, one run, printed as a table and written
// to bench/results.json. Every migration figure is read against the raw tab-to-tab data channel
// of the same run (these machines are shared and noisy: ratios travel, absolute numbers do not).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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
const results = { date: new Date().toISOString(), cores: (await import('node:os')).cpus().length, figures: {} };
try {
  for (const bench of benches) {
    if (only.length && !only.includes(bench.name)) continue;
    process.stderr.write(`bench: ${bench.name}…\n`);
    const t0 = Date.now();
    try {
      const figures = await bench.run({ browser, sleep });
      Object.assign(results.figures, figures);
    } catch (e) {
      results.figures[`${bench.name}_error`] = String(e?.message ?? e);
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
  if (results.figures[mean] && results.figures[after]) results.figures[mean] = (results.figures[mean] + results.figures[after]) / 2;
}
Object.assign(results.figures, ratios(results.figures));
const rows = Object.entries(results.figures)
  .filter(([, v]) => !Array.isArray(v))
  .map(([k, v]) => [k, typeof v === 'number' ? +v.toFixed(3) : v]);
const w = Math.max(...rows.map(([k]) => k.length));
console.log('\n' + 'figure'.padEnd(w) + '  value');
console.log('-'.repeat(w) + '  -----');
for (const [k, v] of rows) console.log(k.padEnd(w) + '  ' + v);
console.log(reducerReport(results.figures));
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
console.log('\nwritten to bench/results.json');
