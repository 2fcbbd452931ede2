// Device state lives in one SharedArrayBuffer so that the vCPU worker, the migration worker and the
// incoming worker all see it without copies through the main thread. Each device declares its state
// once, as named and typed fields with a version (QEMU's VMStateDescription): the same table lays
// out the buffer here and, in src/migration/, is serialized field by field and described in the
// stream's VM description JSON.
//
// The vCPU keeps its hot state in locals while it runs and writes it back here whenever it stops,
// so whoever reads this buffer must first make sure the vCPU is idle (ControlBlock.vcpuIdle).

export type FieldType = 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int32' | 'bool' | 'buffer';

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  /** Number of elements for an array field (QEMU's array_len). */
  readonly count?: number;
  /** Byte size of a 'buffer' field. */
  readonly size?: number;
}

export interface DeviceSpec {
  /** Section name in the stream (QEMU's vmsd name / idstr). */
  readonly name: string;
  readonly instanceId: number;
  /** Version written to the stream; the loader refuses newer ones. */
  readonly version: number;
  /** Oldest version the loader accepts. */
  readonly minimumVersion: number;
  readonly fields: readonly FieldSpec[];
}

const CPU: DeviceSpec = {
  name: 'cpu',
  instanceId: 0,
  version: 1,
  minimumVersion: 1,
  fields: [
    { name: 'pc', type: 'uint32' },
    { name: 'regs', type: 'uint32', count: 32 },
    { name: 'mstatus', type: 'uint32' },
    { name: 'mie', type: 'uint32' },
    { name: 'mip', type: 'uint32' },
    { name: 'mtvec', type: 'uint32' },
    { name: 'mscratch', type: 'uint32' },
    { name: 'mepc', type: 'uint32' },
    { name: 'mcause', type: 'uint32' },
    { name: 'mtval', type: 'uint32' },
    { name: 'mcycle', type: 'uint64' },
    { name: 'minstret', type: 'uint64' },
    /** 1 while the hart sits in WFI waiting for an interrupt. */
    { name: 'wfi', type: 'bool' },
  ],
};

const UART: DeviceSpec = {
  name: 'serial',
  instanceId: 0,
  version: 1,
  minimumVersion: 1,
  fields: [
    { name: 'divider', type: 'uint16' },
    { name: 'ier', type: 'uint8' },
    { name: 'iir', type: 'uint8' },
    { name: 'lcr', type: 'uint8' },
    { name: 'mcr', type: 'uint8' },
    { name: 'lsr', type: 'uint8' },
    { name: 'msr', type: 'uint8' },
    { name: 'scr', type: 'uint8' },
    { name: 'fcr', type: 'uint8' },
    /** Receive FIFO (keyboard input not yet read by the guest), oldest first. */
    { name: 'rx_fifo', type: 'buffer', size: 16 },
    { name: 'rx_count', type: 'uint8' },
  ],
};

const CLINT: DeviceSpec = {
  name: 'riscv.aclint.mtimer',
  instanceId: 0,
  version: 1,
  minimumVersion: 1,
  fields: [
    /** Wall-clock microseconds (Unix epoch) at which mtime was 0: mtime follows real time, so a
     *  guest that migrates sees the downtime as a gap in its own clock. */
    { name: 'epoch_us', type: 'uint64' },
    { name: 'mtimecmp', type: 'uint64' },
    { name: 'msip', type: 'uint32' },
  ],
};

const DISPLAY: DeviceSpec = {
  name: 'tabmig-display',
  instanceId: 0,
  version: 1,
  minimumVersion: 1,
  fields: [
    { name: 'fb_addr', type: 'uint32' },
    { name: 'width', type: 'uint32' },
    { name: 'height', type: 'uint32' },
    { name: 'stride', type: 'uint32' },
    { name: 'enable', type: 'uint32' },
    { name: 'frame', type: 'uint32' },
  ],
};

/** Which program the machine runs: what a reset reloads, and where tohost is. */
const MACHINE: DeviceSpec = {
  name: 'tabmig-machine',
  instanceId: 0,
  version: 1,
  minimumVersion: 1,
  fields: [
    { name: 'program', type: 'buffer', size: 64 },
    { name: 'args', type: 'buffer', size: 256 },
    /** Guest address of the ELF symbol `tohost`, 0 when the program has none. */
    { name: 'tohost', type: 'uint32' },
    /** Exit code once the guest has ended through tohost or the finisher, else 0. */
    { name: 'exit_code', type: 'uint32' },
  ],
};

/** Every device, in the order their sections appear in a migration stream. */
export const DEVICES = [MACHINE, CPU, UART, CLINT, DISPLAY] as const;

export const DeviceName = {
  MACHINE: MACHINE.name,
  CPU: CPU.name,
  UART: UART.name,
  CLINT: CLINT.name,
  DISPLAY: DISPLAY.name,
} as const;

export function fieldByteSize(f: FieldSpec): number {
  const one = { uint8: 1, bool: 1, uint16: 2, uint32: 4, int32: 4, uint64: 8, buffer: f.size ?? 0 }[f.type];
  return one * (f.count ?? 1);
}

function alignmentOf(f: FieldSpec): number {
  return f.type === 'buffer' ? 1 : Math.min(8, fieldByteSize({ ...f, count: 1 }));
}

export interface FieldLayout extends FieldSpec {
  /** Byte offset in the device-state buffer, naturally aligned so typed-array views work. */
  readonly offset: number;
  readonly byteSize: number;
}

export interface DeviceLayout {
  readonly spec: DeviceSpec;
  readonly fields: ReadonlyMap<string, FieldLayout>;
}

function layOut(): { devices: Map<string, DeviceLayout>; bytes: number } {
  let offset = 0;
  const devices = new Map<string, DeviceLayout>();
  for (const spec of DEVICES) {
    const fields = new Map<string, FieldLayout>();
    for (const f of spec.fields) {
      const align = alignmentOf(f);
      offset = Math.ceil(offset / align) * align;
      const byteSize = fieldByteSize(f);
      fields.set(f.name, { ...f, offset, byteSize });
      offset += byteSize;
    }
    devices.set(spec.name, { spec, fields });
  }
  return { devices, bytes: Math.ceil(offset / 8) * 8 };
}

const LAYOUT = layOut();
export const DEVICE_STATE_BYTES = LAYOUT.bytes;

export function deviceLayout(name: string): DeviceLayout {
  const d = LAYOUT.devices.get(name);
  if (!d) throw new Error(`no device '${name}'`);
  return d;
}

export function fieldLayout(device: string, field: string): FieldLayout {
  const f = deviceLayout(device).fields.get(field);
  if (!f) throw new Error(`device '${device}' has no field '${field}'`);
  return f;
}

/**
 * Typed access to the device-state buffer by device and field name. Values are stored
 * little-endian (the host's order, so typed-array views over the same bytes agree).
 */
export class DeviceState {
  readonly view: DataView;
  readonly bytes: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(DEVICE_STATE_BYTES)) {
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
  }

  /** Reads a scalar field (or element `index` of an array field) as a number. */
  get(device: string, field: string, index = 0): number {
    const f = fieldLayout(device, field);
    const at = f.offset + index * (f.byteSize / (f.count ?? 1));
    switch (f.type) {
      case 'uint8':
      case 'bool':
        return this.view.getUint8(at);
      case 'uint16':
        return this.view.getUint16(at, true);
      case 'uint32':
        return this.view.getUint32(at, true);
      case 'int32':
        return this.view.getInt32(at, true);
      case 'uint64':
        return Number(this.view.getBigUint64(at, true));
      case 'buffer':
        throw new TypeError(`${device}.${field} is a buffer: use getBytes`);
    }
  }

  set(device: string, field: string, value: number, index = 0): void {
    const f = fieldLayout(device, field);
    const at = f.offset + index * (f.byteSize / (f.count ?? 1));
    switch (f.type) {
      case 'uint8':
      case 'bool':
        return this.view.setUint8(at, value);
      case 'uint16':
        return this.view.setUint16(at, value, true);
      case 'uint32':
        return this.view.setUint32(at, value >>> 0, true);
      case 'int32':
        return this.view.setInt32(at, value, true);
      case 'uint64':
        return this.view.setBigUint64(at, BigInt(Math.trunc(value)), true);
      case 'buffer':
        throw new TypeError(`${device}.${field} is a buffer: use setBytes`);
    }
  }

  /** The raw bytes of a field (a live view, not a copy). */
  fieldBytes(device: string, field: string): Uint8Array {
    const f = fieldLayout(device, field);
    return new Uint8Array(this.buffer, f.offset, f.byteSize);
  }

  getString(device: string, field: string): string {
    const b = this.fieldBytes(device, field).slice();
    const end = b.indexOf(0);
    return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
  }

  setString(device: string, field: string, text: string): void {
    const dst = this.fieldBytes(device, field);
    const src = new TextEncoder().encode(text);
    if (src.length >= dst.length) throw new RangeError(`${device}.${field} holds at most ${dst.length - 1} bytes`);
    dst.fill(0);
    dst.set(src);
  }

  /** All state of one device, for tests and debugging. */
  snapshot(device: string): Record<string, number | number[] | string> {
    const out: Record<string, number | number[] | string> = {};
    for (const f of deviceLayout(device).spec.fields) {
      if (f.type === 'buffer') out[f.name] = Array.from(this.fieldBytes(device, f.name)).join(',');
      else if (f.count) out[f.name] = Array.from({ length: f.count }, (_, i) => this.get(device, f.name, i));
      else out[f.name] = this.get(device, f.name);
    }
    return out;
  }
}
