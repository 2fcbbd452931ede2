// Messages between the main thread and vcpu.worker. Run/stop/throttle/reset do NOT travel here:
// they go through the control block so the migration worker can use them too. Only what needs
// the worker's event loop does: the one-time setup, keyboard input, and what the guest reports.

import type { BlockerRefusal } from './control-block.js';

export interface VcpuInit {
  type: 'init';
  ram: SharedArrayBuffer;
  dirtyLog: SharedArrayBuffer;
  control: SharedArrayBuffer;
  deviceState: SharedArrayBuffer;
  /** Postcopy's page gate (page-gate.ts); absent in tests that run no migration. */
  pageGate?: SharedArrayBuffer;
}

export interface VcpuInput {
  type: 'input';
  bytes: Uint8Array;
}

export type ToVcpu = VcpuInit | VcpuInput;

export type FromVcpu =
  | { type: 'ready' }
  /** Bytes the guest wrote to the UART since the last message. */
  | { type: 'serial'; bytes: Uint8Array }
  /** The guest ended through tohost or the test finisher; code 0 = pass. */
  | { type: 'exit'; code: number; via: 'tohost' | 'finisher' }
  /** The guest faulted with no way to handle it. */
  | { type: 'panic'; message: string }
  /** The guest enabled or disabled the tabmig-hostdev device, or an enable was refused (why), since
   *  the last message. The control block's MIGRATION_GUARD word holds the current state. */
  | { type: 'hostdev'; enabled: boolean; refused?: BlockerRefusal }
  /** The guest asked for a machine reset (test finisher). The vCPU has stopped and waits. */
  | { type: 'reset-request' }
  /** A bug in tabmig itself, not the guest: reported, the worker keeps serving. */
  | { type: 'internal-error'; message: string };
