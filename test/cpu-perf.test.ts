// Perf smoke: runs the CPU benchmark in a worker (where the vCPU runs) and logs MIPS. Not a timed
// assertion — timings belong in bench/ — it only checks that the benchmark guests ran.

import type { CpuBenchResult } from './fixtures/cpu-bench.js';
import { ok } from './helpers/assert.js';

describe('cpu: performance smoke', () => {
  it('logs MIPS for tight loops in a worker, with dirty tracking on', async () => {
    const worker = new Worker(new URL('./fixtures/cpu-bench.worker.ts', import.meta.url), { type: 'module' });
    try {
      const results = await new Promise<CpuBenchResult[]>((resolve, reject) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => reject(new Error(e.message));
        worker.postMessage({ ms: 1000 });
      });
      for (const r of results) {
        console.log(`cpu bench ${r.kind}: ${r.mips.toFixed(1)} MIPS (${r.instructions} instructions in ${r.ms.toFixed(0)} ms)`);
        ok(r.instructions > 0, `${r.kind} ran`);
      }
      const mem = results.find((r) => r.kind === 'memory-loop');
      ok(mem && mem.dirtyPages === 256, 'the memory loop dirtied the 256 pages it writes');
    } finally {
      worker.terminate();
    }
  });
});
