// Looking inside the machine's devices: HMP `info registers` (the vCPU's registers, as QEMU
// prints them for RISC-V) and `x-tabmig-device-state` (every migrated device field by name).
// Both read the shared device-state buffer, which holds the registers as of the vCPU's last stop.

import { DEVICES, DeviceName, type DeviceState } from '../guest/device-state.js';
import type { QmpDispatcher } from './dispatcher.js';
import type { Hmp } from './hmp.js';

const ABI_NAMES = [
  'zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
];

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

export function formatRegisters(state: DeviceState): string {
  const get = (f: string, i = 0) => state.get(DeviceName.CPU, f, i);
  let s = '';
  s += ` ${'pc'.padEnd(8)} ${hex8(get('pc'))}\n`;
  s += ` ${'mhartid'.padEnd(8)} ${hex8(0)}\n`;
  for (const csr of ['mstatus', 'mip', 'mie', 'mtvec', 'mscratch', 'mepc', 'mcause', 'mtval']) {
    s += ` ${csr.padEnd(8)} ${hex8(get(csr))}\n`;
  }
  for (let i = 0; i < 32; i++) {
    s += ` ${`x${i}/${ABI_NAMES[i]}`.padEnd(8)} ${hex8(get('regs', i))}`;
    if ((i & 3) === 3) s += '\n';
  }
  return s;
}

export function registerDeviceCommands(dispatcher: QmpDispatcher, hmp: Hmp, state: DeviceState): void {
  hmp.registerInfo({
    name: 'registers',
    argsType: 'cpustate_all:-a',
    params: '[-a]',
    help: 'show the cpu registers (-a: all CPUs)',
    handler: (out) => out.print(formatRegisters(state)),
  });
  dispatcher.register({
    name: 'x-tabmig-device-state',
    handler: () => Object.fromEntries(DEVICES.map((d) => [d.name, state.snapshot(d.name)])),
  });
}
