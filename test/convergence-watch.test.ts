// The convergence watch (convergence.ts): from the round records, whether the guest dirties
// faster than the link carries, and which remedies would help.
import { equal, match, ok } from './helpers/assert.js';
import { ConvergenceWatch, type ConvergenceSample } from '../src/migration/source/convergence.js';
import { MigrationOptions } from '../src/migration/options.js';

const MB = 1e6;
const round = (r: Partial<ConvergenceSample>): ConvergenceSample => ({
  dirtyBytes: 2 * MB,
  durationMs: 300,
  bandwidth: 7 * MB / 1000,
  remaining: 2 * MB,
  threshold: 1 * MB,
  throttle: 0,
  ...r,
});

describe('convergence watch', () => {
  it('says a migration is not converging when the guest dirties about what the link carries and nothing shrinks', () => {
    const w = new ConvergenceWatch(new MigrationOptions());
    equal(w.add(round({})), null);
    equal(w.add(round({})), null);
    const v = w.add(round({}));
    ok(v && !v.converging);
    match(v!.text, /^migration is not converging: the guest dirties 6\.7 MB\/s, the link carries 7\.0 MB\/s, 2\.0 MB left against 1\.0 MB allowed\. Remedies: /);
  });

  it('rates the dirtying over the rounds\' whole time: a round a quiet look ended after a few ms does not read as GB/s', () => {
    const w = new ConvergenceWatch(new MigrationOptions());
    w.add(round({}));
    // A look's own dirty sync closes a round a few ms after the one before; its pages were
    // dirtied over the look, not in those few ms.
    w.add(round({ durationMs: 3, dirtyBytes: 2 * MB }));
    const v = w.add(round({}));
    ok(v, 'a verdict after three rounds');
    ok(v!.dirtyRate < 20 * MB, `dirty rate ${v!.dirtyRate / MB} MB/s`);
  });
});
