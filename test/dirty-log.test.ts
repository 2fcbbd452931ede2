import { Machine } from '../src/guest/machine.js';
import { ok, equal, eventually } from './helpers/assert.js';

// The guarantee migration rests on: while the guest writes as fast as it can, a thread that syncs
// the dirty log and copies dirty pages ends up with exactly the guest's RAM once the guest stops.
describe('dirty log', () => {
  it('records every guest write while another worker syncs', async () => {
    const machine = new Machine({ ramSize: 16 << 20, runstate: 'prelaunch' });
    try {
      await machine.load({ builtin: 'stress' }, 'wss=4M rate=0 mode=random');
      await machine.cont();
      await eventually(() => machine.serialOutput.includes('stress: ready'), 20000, 'stress to fill its working set');

      const shadow = new SharedArrayBuffer(machine.ramSize);
      const control = new Int32Array(new SharedArrayBuffer(4));
      control[0] = 1;
      const worker = new Worker(new URL('./fixtures/dirty-sync.worker.ts', import.meta.url), { type: 'module' });
      const done = new Promise<{ passes: number; copied: number }>((r) => (worker.onmessage = (e) => r(e.data)));
      worker.postMessage({ ram: machine.ram, dirty: machine.dirtyLog, shadow, control: control.buffer });

      const before = machine.instructionsRetired;
      await new Promise((r) => setTimeout(r, 1500));
      await machine.stop();
      ok(machine.instructionsRetired > before + 1_000_000, 'the guest ran while the log was synced');
      Atomics.store(control, 0, 0);
      const { passes, copied } = await done;
      worker.terminate();
      ok(passes > 2, `several sync passes ran concurrently with the guest (${passes})`);
      ok(copied > 0, 'dirty pages were found and copied');

      const ram = machine.ramBytes;
      const copy = new Uint8Array(shadow);
      let firstDiff = -1;
      for (let i = 0; i < ram.length; i++) {
        if (ram[i] !== copy[i]) {
          firstDiff = i;
          break;
        }
      }
      equal(firstDiff, -1, 'first byte where the synced copy differs from guest RAM');
    } finally {
      machine.terminate();
    }
  });
});
