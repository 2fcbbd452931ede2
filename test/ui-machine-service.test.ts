// The machine as the UI sees it, in postcopy: the display asks for the pages of its frame on
// every frame while some are missing. Those asks must not pile up while a pause lasts (a
// postcopy pause can last minutes at 60 frames a second): one wait per range at a time.

import type { DisplayMode } from '../src/guest/devices/display.js';
import type { RunState } from '../src/guest/runstate.js';
import { MachineService, type MachineLike } from '../src/ui/services/machine-service.js';
import { equal, ok } from './helpers/assert.js';

class GateStub {
  waits = 0;
  missingNow = true;
  private release: (() => void)[] = [];
  anyMissing(): boolean {
    return this.missingNow;
  }
  whenPresent(): Promise<void> {
    this.waits++;
    return new Promise((r) => this.release.push(r));
  }
  land(): void {
    for (const r of this.release.splice(0)) r();
  }
}

class StubMachine extends EventTarget implements MachineLike {
  runstate: RunState = 'running';
  readonly ramSize = 1 << 20;
  readonly ramBytes = new Uint8Array(this.ramSize);
  readonly pageGate = new GateStub();
  programName = 'life';
  programArgs = '';
  instructionsRetired = 0;
  serialOutput = '';
  display: DisplayMode = { fbAddr: 0x8000_0000, width: 64, height: 64, stride: 256, enabled: true, frame: 0 };
  sendInput(): void {}
}

describe('machine service: the display in postcopy', () => {
  it('asks once per missing range while the pages are awaited, not once per frame', async () => {
    const m = new StubMachine();
    const svc = new MachineService(m);
    for (let frame = 0; frame < 600; frame++) ok(svc.missing(0, 64 * 256), `frame ${frame}: the frame is not drawn`);
    equal(m.pageGate.waits, 1, 'one wait for the frame, however many frames');
    svc.missing(64 * 256, 4096);
    equal(m.pageGate.waits, 2, 'another range waits on its own');
    m.pageGate.land();
    await new Promise((r) => setTimeout(r, 0));
    svc.missing(0, 64 * 256);
    equal(m.pageGate.waits, 3, 'once the pages landed, a range still missing is asked for again');
  });
});
