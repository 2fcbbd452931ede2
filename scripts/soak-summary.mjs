// `node scripts/soak-summary.mjs LOG...`: the soak's figures from the per-fault lines of one or
// more `npm run soak` logs (for a run that was stopped before it printed its own summary).
import { readFileSync } from 'node:fs';
import { pct } from '../test/e2e/reliability.mjs';

const line = /^ +(\d+) (\S+) +(\S+) +rp (on |off) (\S+) +(\S+)\/(\S+) ms {2}(.*)$/;
const recs = [];
let harness = 0;
for (const f of process.argv.slice(2)) {
  for (const l of readFileSync(f, 'utf8').split('\n')) {
    if (/^ +- .*harness error/.test(l)) harness++;
    const m = line.exec(l);
    if (!m) continue;
    const [, , phase, fault, rp, verdict, detect, settle, rest] = m;
    // Postcopy's lines add how the recovery went and where the fault landed: not part of the outcome.
    const outcome = rest.replace(/ \[recovered[^\]]*\]/, '').replace(/ \(at [^)]*\)/, '').trim();
    recs.push({ phase, fault, returnPath: rp.trim() === 'on', verdict, detectMs: detect === '-' ? null : +detect, settleMs: settle === '-' ? null : +settle, outcome: verdict === 'ok' ? outcome : outcome.slice(0, 200) });
  }
}
const count = (k) => recs.reduce((m, r) => ((m[r[k]] = (m[r[k]] ?? 0) + 1), m), {});
const ok = recs.filter((r) => r.verdict === 'ok');
const d = ok.filter((r) => r.detectMs != null).map((r) => r.detectMs);
const s = ok.filter((r) => r.settleMs != null).map((r) => r.settleMs);
console.log(
  JSON.stringify(
    {
      faults: recs.length,
      harnessErrors: harness,
      verdicts: count('verdict'),
      outcomes: count('outcome'),
      phases: count('phase'),
      faultKinds: count('fault'),
      returnPath: { on: recs.filter((r) => r.returnPath).length, off: recs.filter((r) => !r.returnPath).length },
      detectMs: { p50: pct(d, 0.5), p99: pct(d, 0.99), max: Math.max(...d) },
      settleMs: { p50: pct(s, 0.5), p99: pct(s, 0.99), max: Math.max(...s) },
      violations: recs.filter((r) => r.verdict !== 'ok'),
    },
    null,
    1,
  ),
);
