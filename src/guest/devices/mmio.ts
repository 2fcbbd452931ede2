// Routes CPU accesses below RAM to the devices by address range.

import type { MmioBus } from '../bus.js';
import {
  CLINT_BASE,
  CLINT_SIZE,
  DISPLAY_BASE,
  DISPLAY_SIZE,
  EXIT_BASE,
  EXIT_SIZE,
  HOSTDEV_BASE,
  HOSTDEV_SIZE,
  UART_BASE,
  UART_SIZE,
} from '../memory-map.js';
import type { Clint } from './clint.js';
import type { Display } from './display.js';
import type { HostDevice } from './host-device.js';
import type { TestFinisher } from './test-finisher.js';
import type { Uart } from './uart.js';

export interface Devices {
  uart: Uart;
  clint: Clint;
  display: Display;
  finisher: TestFinisher;
  hostdev: HostDevice;
}

const within = (addr: number, base: number, size: number) => addr >= base && addr < base + size;

export function createMmioBus(d: Devices): MmioBus {
  return {
    load(addr, size) {
      if (within(addr, UART_BASE, UART_SIZE)) return size === 1 ? d.uart.read(addr - UART_BASE) : undefined;
      if (within(addr, CLINT_BASE, CLINT_SIZE)) return d.clint.read(addr - CLINT_BASE, size);
      if (within(addr, DISPLAY_BASE, DISPLAY_SIZE)) return d.display.read(addr - DISPLAY_BASE, size);
      if (within(addr, EXIT_BASE, EXIT_SIZE)) return 0;
      if (within(addr, HOSTDEV_BASE, HOSTDEV_SIZE)) return d.hostdev.read(addr - HOSTDEV_BASE, size);
      return undefined;
    },
    store(addr, size, value) {
      if (within(addr, UART_BASE, UART_SIZE)) {
        if (size !== 1) return false;
        d.uart.write(addr - UART_BASE, value);
        return true;
      }
      if (within(addr, CLINT_BASE, CLINT_SIZE)) return d.clint.write(addr - CLINT_BASE, size, value);
      if (within(addr, DISPLAY_BASE, DISPLAY_SIZE)) return d.display.write(addr - DISPLAY_BASE, size, value);
      if (within(addr, EXIT_BASE, EXIT_SIZE)) return d.finisher.write(addr - EXIT_BASE, size, value);
      if (within(addr, HOSTDEV_BASE, HOSTDEV_SIZE)) return d.hostdev.write(addr - HOSTDEV_BASE, size, value);
      return false;
    },
  };
}
