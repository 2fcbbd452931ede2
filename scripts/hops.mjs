// `npm run hops [-- HOPS]`: ping-pong. A running a-b guest hops A→B→A… HOPS times (default 100)
// between two real headless tabs over WebRTC. At every hop: the migration completes, the
// destination (started with -S, so it can be checked before it runs) holds exactly the source's
// RAM (x-tabmig-ram-hash) and QEMU migration-test's a-b invariant (HMP `xp /1xb` on the first
// byte of every page of the range), then `cont` runs it and it makes progress; the tab it left
// reloads as the next destination. The guest's serial output is continuous: its one 'A' (printed
// once at boot) appears once in the whole run, and every hop's destination prints more 'B's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { startBrowser, startServer } from '../test/e2e/harness.mjs';
import { runHops } from '../test/e2e/reliability.mjs';

const hops = Number(process.argv[2] ?? process.env.HOPS ?? 100);
if (!process.env.SOAK_NO_BUILD) {
  const b = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
}
const server = await startServer();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (server.stop(), process.exit(130)));
const browser = await startBrowser(server.base);
let result;
try {
  result = await runHops(browser, hops, (h) => console.log(`hop ${String(h.hop).padStart(3)} ${h.from}→${h.to}: ${h.ok ? 'ok' : 'FAIL ' + h.problem}  ${h.ms} ms (downtime ${h.downtime} ms${h.nudged ? ', downtime-limit raised' : ''}${h.retried ? `, retried after: ${h.retried}` : ''}, B's so far ${h.bs})`));
} finally {
  await browser.close();
  server.stop();
}
mkdirSync('.scratch', { recursive: true });
writeFileSync('.scratch/hops-last.json', JSON.stringify(result, null, 1));
const { summary } = result;
console.log(JSON.stringify(summary, null, 1));
console.log(`${summary.failed === 0 && summary.hops === hops ? 'OK' : 'FAIL'} hops: ${summary.hops}/${hops} intact, a-b invariant held at every hop: ${summary.abOk}, serial continuous: ${summary.serialOk}, downtime-limit raised for ${summary.nudged} (precopy did not converge in 45 s), retried after a clean failure ${summary.retried.length}`);
process.exit(summary.failed === 0 && summary.hops === hops ? 0 : 1);
