// `npm test`: everything CI checks, in order, stopping at the first failure:
// type-check, production build, in-browser unit tests, two-tab end-to-end tests.
import { spawnSync } from 'node:child_process';
import { findChrome, HOW_TO_INSTALL } from './find-chrome.mjs';

let chrome;
try {
  chrome = findChrome();
} catch (e) {
  console.error(e.message || HOW_TO_INSTALL);
  process.exit(1);
}
console.log(`Using browser: ${chrome}`);

const steps = [
  ['type-check', 'npx', ['tsc', '--noEmit']],
  ['build', 'npx', ['vite', 'build', '--logLevel', 'warn']],
  ['unit + in-browser tests', 'npx', ['web-test-runner']],
  ['two-tab end-to-end tests', 'node', ['--test', '--test-concurrency=1', 'test/e2e/']],
];
for (const [name, cmd, args] of steps) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, CHROME_PATH: chrome } });
  if (r.status !== 0) {
    console.error(`\n${name} failed (exit ${r.status ?? r.signal}).`);
    process.exit(r.status || 1);
  }
}
