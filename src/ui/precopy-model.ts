// The analytic precopy model taught with live migration (Clark et al. 2005; Akoush et al. 2010):
// with a link of bandwidth B and a guest dirtying memory at D bytes/s, each round resends what the
// previous one let the guest dirty, so round i+1 sends D × t_i bytes in t_{i+1} = D × t_i / B:
// rounds shrink geometrically by r = D ÷ B, and precopy converges only if r < 1. The switchover
// happens once what is left fits in the downtime limit (QEMU's threshold = B × downtime-limit).
// Fed with the first measured round only, so the prediction can be drawn over the measurement.

import type { RoundRecord } from '../migration/round-records.js';

const PAGE = 4096;
/** The model gives up here, as a teacher would: "this never converges". */
const MAX_ROUNDS = 30;

export interface ModelRound {
  round: number;
  /** ms since migrate, at the end of this round. */
  time: number;
  /** Bytes sent in this round. */
  bytes: number;
  /** The same, in 4 KiB pages. */
  pages: number;
  /** Bytes left to send after this round (what the guest dirtied meanwhile). */
  remaining: number;
  /** Downtime (ms) if the switchover happened after this round. */
  expectedDowntime: number;
}

export interface PrecopyPrediction {
  /** Bandwidth (bytes/s) and dirty rate (bytes/s) read from the first round. */
  bandwidth: number;
  dirtyRate: number;
  /** D ÷ B: each round is this fraction of the one before. */
  ratio: number;
  converges: boolean;
  rounds: ModelRound[];
  /** Predicted total time and downtime (ms); total is Infinity when it does not converge. */
  totalTime: number;
  downtime: number;
}

/**
 * The prediction from the first round of `records` (null until there is one with a bandwidth):
 * round 1 as measured, then geometric rounds until the remainder fits `downtimeLimitMs`.
 */
export function predictPrecopy(records: readonly RoundRecord[], downtimeLimitMs: number): PrecopyPrediction | null {
  const first = records[0];
  if (!first || !(first.bandwidth > 0) || !(first.duration > 0)) return null;
  const B = first.bandwidth;
  const D = (first.dirtyPages * PAGE) / (first.duration / 1000);
  const ratio = D / B;
  const threshold = (B * downtimeLimitMs) / 1000;
  const rounds: ModelRound[] = [];
  let time = first.time;
  let remaining = first.dirtyPages * PAGE;
  rounds.push({ round: first.round, time, bytes: first.bytesSent, pages: first.pagesSent, remaining, expectedDowntime: (remaining / B) * 1000 });
  let converges = true;
  for (let i = 2; remaining > threshold; i++) {
    if (i > MAX_ROUNDS || ratio >= 1) {
      converges = false;
      break;
    }
    const bytes = remaining;
    const t = (bytes / B) * 1000;
    time += t;
    remaining = D * (t / 1000);
    rounds.push({ round: first.round + i - 1, time, bytes, pages: bytes / PAGE, remaining, expectedDowntime: (remaining / B) * 1000 });
  }
  const downtime = (remaining / B) * 1000;
  return { bandwidth: B, dirtyRate: D, ratio, converges, rounds, totalTime: converges ? time + downtime : Infinity, downtime };
}

/** One paragraph: how the measurement compares with the model, and the likely reason when they differ. */
export function explainDifference(p: PrecopyPrediction, measured: readonly RoundRecord[], measuredDowntime?: number): string {
  const n = measured.length;
  const r = p.ratio;
  const head = `From round 1 the model reads a bandwidth of ${mb(p.bandwidth)} and a dirty rate of ${mb(p.dirtyRate)}, so each round should be ${(r * 100).toFixed(r < 0.1 ? 1 : 0)} % of the one before`;
  if (!p.converges) {
    return `${head}: at that ratio precopy never catches up (r = D ÷ B ≥ 1 or the rounds stop shrinking), which is why QEMU offers auto-converge (throttle the guest so D falls), postcopy (switch now, fetch the rest on demand) and a larger downtime-limit. ${
      n > 1 ? `Measured so far: ${n} rounds.` : ''
    }`;
  }
  const predicted = p.rounds.length;
  const parts = [`${head}, converging in ${predicted} round${predicted === 1 ? '' : 's'}; measured: ${n}.`];
  const later = measured.slice(1);
  const meanDirty = later.length ? later.reduce((s, x) => s + x.dirtyPages, 0) / later.length : 0;
  if (n > predicted + 1) {
    parts.push(
      'More rounds than predicted: the guest keeps rewriting a set of hot pages (its writable working set), so a short round still finds them dirty — the dirtied amount does not shrink with the round as the model assumes.',
    );
  } else if (n + 1 < predicted) {
    parts.push(
      'Fewer rounds than predicted: the guest rewrites the same pages, so the dirty rate measured over the long first round overstates how many distinct pages a short round dirties.',
    );
  } else {
    parts.push('The model holds here: the guest dirties pages at a steady rate, spread over more memory than one round resends.');
  }
  const bws = later.filter((x) => x.duration >= 20 && x.bytesSent > 0).map((x) => x.bandwidth);
  if (bws.length && Math.abs(bws.reduce((a, b) => a + b, 0) / bws.length / p.bandwidth - 1) > 0.25) {
    parts.push('Bandwidth also changed after round 1 (zero pages are cheap to send, small rounds pay fixed costs), which the model holds constant.');
  }
  if (measured.some((x) => x.throttle > 0)) parts.push('Auto-converge throttled the vCPU, lowering the dirty rate below what round 1 showed.');
  if (measuredDowntime !== undefined) {
    parts.push(
      `Predicted downtime ${p.downtime.toFixed(0)} ms, measured ${measuredDowntime} ms: the measured one also pays for stopping the vCPU, the device state and the commit handshake.`,
    );
  } else if (meanDirty > 0) {
    parts.push(`Later rounds found ${Math.round(meanDirty).toLocaleString('en-US')} dirty pages on average.`);
  }
  return parts.join(' ');
}

function mb(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(bytesPerSecond >= 1e8 ? 0 : 1)} MB/s`;
}
