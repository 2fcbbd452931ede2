// SiFive test finisher (QEMU `virt` "sifive_test"): the guest writes one word to end the run with
// a pass or fail code, or to ask for a reset. Nothing here migrates; the outcome does, through the
// machine device's exit_code.

import { EXIT_FAIL, EXIT_PASS, EXIT_RESET } from '../memory-map.js';

export type FinisherRequest = { kind: 'exit'; code: number } | { kind: 'reset' };

export class TestFinisher {
  /** Set by a guest write; taken by the vCPU loop after the current run slice. */
  request: FinisherRequest | null = null;

  write(offset: number, size: number, value: number): boolean {
    if (offset !== 0 || size !== 4) return false;
    const low = value & 0xffff;
    if (low === EXIT_PASS) this.request = { kind: 'exit', code: 0 };
    else if (low === EXIT_FAIL) this.request = { kind: 'exit', code: value >>> 16 };
    else if (low === EXIT_RESET) this.request = { kind: 'reset' };
    return true; // other values are ignored, as on QEMU
  }

  take(): FinisherRequest | null {
    const r = this.request;
    this.request = null;
    return r;
  }
}
