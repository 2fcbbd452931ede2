// NS16550A, the subset QEMU `virt` guests use: transmit is instant (THR always empty), receive
// has a 16-byte FIFO fed from the page's keyboard. No interrupt line is wired (there is no PLIC),
// so guests poll LSR; IIR still reports what would be pending. All registers live in the shared
// device-state buffer so that the UART migrates with the machine.

import { DeviceName, fieldLayout, type DeviceState } from '../device-state.js';

const LSR_DATA_READY = 0x01;
const LSR_OVERRUN = 0x02;
const LSR_THR_EMPTY = 0x20;
const LSR_TX_EMPTY = 0x40;
const LCR_DLAB = 0x80;
const IER_RX = 0x01;
const IER_THRE = 0x02;
const FIFO_SIZE = 16;

const off = (field: string) => fieldLayout(DeviceName.UART, field).offset;
const R = {
  divider: off('divider'),
  ier: off('ier'),
  iir: off('iir'),
  lcr: off('lcr'),
  mcr: off('mcr'),
  lsr: off('lsr'),
  msr: off('msr'),
  scr: off('scr'),
  fcr: off('fcr'),
  fifo: off('rx_fifo'),
  count: off('rx_count'),
};

export class Uart {
  private readonly b: Uint8Array;
  private readonly view: DataView;
  /** Keyboard bytes that did not fit in the FIFO yet (a paste, say); not guest-visible state. */
  private backlog: number[] = [];

  constructor(
    state: DeviceState,
    private readonly onTransmit: (byte: number) => void,
  ) {
    this.b = state.bytes;
    this.view = state.view;
  }

  reset(): void {
    this.view.setUint16(R.divider, 1, true);
    for (const k of ['ier', 'lcr', 'mcr', 'msr', 'scr', 'fcr', 'count'] as const) this.b[R[k]] = 0;
    this.b.fill(0, R.fifo, R.fifo + FIFO_SIZE);
    this.b[R.lsr] = LSR_THR_EMPTY | LSR_TX_EMPTY;
    this.b[R.iir] = 0x01;
    this.backlog = [];
  }

  /** Queues keyboard input for the guest. */
  receive(bytes: Iterable<number>): void {
    for (const byte of bytes) this.backlog.push(byte & 0xff);
    this.refill();
  }

  get hasPendingInput(): boolean {
    return this.b[R.count]! > 0 || this.backlog.length > 0;
  }

  read(offset: number): number {
    const dlab = (this.b[R.lcr]! & LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) return this.view.getUint16(R.divider, true) & 0xff;
        return this.popRx();
      case 1:
        if (dlab) return this.view.getUint16(R.divider, true) >> 8;
        return this.b[R.ier]!;
      case 2:
        return this.interruptId();
      case 3:
        return this.b[R.lcr]!;
      case 4:
        return this.b[R.mcr]!;
      case 5: {
        const lsr = this.b[R.lsr]!;
        this.b[R.lsr] = lsr & ~LSR_OVERRUN; // reading LSR clears the error bits
        return lsr;
      }
      case 6:
        return this.b[R.msr]!;
      case 7:
        return this.b[R.scr]!;
      default:
        return 0;
    }
  }

  write(offset: number, value: number): void {
    value &= 0xff;
    const dlab = (this.b[R.lcr]! & LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) this.view.setUint16(R.divider, (this.view.getUint16(R.divider, true) & 0xff00) | value, true);
        else this.onTransmit(value);
        return;
      case 1:
        if (dlab) this.view.setUint16(R.divider, (this.view.getUint16(R.divider, true) & 0xff) | (value << 8), true);
        else this.b[R.ier] = value & 0x0f;
        return;
      case 2:
        this.b[R.fcr] = value & 0xc9;
        if (value & 0x02) this.clearRx(); // receive FIFO reset
        return;
      case 3:
        this.b[R.lcr] = value;
        return;
      case 4:
        this.b[R.mcr] = value & 0x1f;
        return;
      case 7:
        this.b[R.scr] = value;
        return;
      default:
        return; // LSR and MSR are read-only
    }
  }

  private interruptId(): number {
    const fifo = this.b[R.fcr]! & 0x01 ? 0xc0 : 0;
    const ier = this.b[R.ier]!;
    let id = 0x01;
    if (ier & IER_RX && this.b[R.count]! > 0) id = 0x04;
    else if (ier & IER_THRE) id = 0x02;
    this.b[R.iir] = id | fifo;
    return id | fifo;
  }

  private popRx(): number {
    const n = this.b[R.count]!;
    if (n === 0) return 0;
    const byte = this.b[R.fifo]!;
    this.b.copyWithin(R.fifo, R.fifo + 1, R.fifo + n);
    this.b[R.count] = n - 1;
    this.refill();
    if (this.b[R.count] === 0) this.b[R.lsr] = this.b[R.lsr]! & ~LSR_DATA_READY;
    return byte;
  }

  private refill(): void {
    while (this.backlog.length > 0 && this.b[R.count]! < FIFO_SIZE) {
      const n = this.b[R.count]!;
      this.b[R.fifo + n] = this.backlog.shift()!;
      this.b[R.count] = n + 1;
    }
    if (this.b[R.count]! > 0) this.b[R.lsr] = this.b[R.lsr]! | LSR_DATA_READY;
  }

  private clearRx(): void {
    this.b[R.count] = 0;
    this.b[R.lsr] = this.b[R.lsr]! & ~LSR_DATA_READY;
    // Backlog bytes were never in the FIFO (still "on the wire"): let them in now, or they sit
    // unseen with DR clear while hasPendingInput keeps the vCPU from sleeping in WFI.
    this.refill();
  }
}
