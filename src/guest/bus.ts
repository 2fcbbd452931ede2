// What the CPU sees outside RAM. RAM accesses are inlined in the CPU over typed arrays for speed;
// everything below RAM_BASE goes through this interface to the devices.

export interface MmioBus {
  /** Reads `size` bytes (1, 2 or 4) at a device address; the value zero-extended, or undefined
   *  when nothing answers there (the CPU raises a load access fault). */
  load(addr: number, size: 1 | 2 | 4): number | undefined;
  /** Writes the low `size` bytes of value; false when nothing answers (store access fault). */
  store(addr: number, size: 1 | 2 | 4, value: number): boolean;
}

/** Why Cpu.run() returned before using up its instruction budget. */
export const StopReason = {
  /** Budget used up: run again. */
  BUDGET: 0,
  /** WFI with no interrupt pending: sleep until the timer or input wakes the hart. */
  WFI: 1,
  /** The guest stored to `tohost`, or a device asked to end the run (see Cpu.exitCode). */
  EXIT: 2,
  /** A fault the guest cannot handle (see Cpu.panicMessage): the machine is guest-panicked. */
  PANIC: 3,
  /** A device asked for a machine reset (test finisher 0x7777). */
  RESET: 4,
} as const;
export type StopReasonValue = (typeof StopReason)[keyof typeof StopReason];
