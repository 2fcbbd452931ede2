// The load side of every non-RAM section, as LoadHandlers: each device of the one DEVICES registry
// (into a staging DeviceState that replaces the real one only after the whole stream loaded and
// was checked), `globalstate` (the source's runstate) and the configuration section (the machine
// type). Each device's fields are range-checked as QEMU's VMSTATE_VALIDATE / post_load hooks do,
// so a hostile or corrupt stream can never hand the vCPU or the display an impossible state.
// Every hook runs in the destination's incoming worker.

import { DEVICES, DeviceName, type DeviceSpec, type DeviceState } from '../guest/device-state.js';
import { DISPLAY_MAX_HEIGHT, DISPLAY_MAX_WIDTH } from '../guest/memory-map.js';
import { RUN_STATES } from '../guest/runstate.js';
import type { LoadContext, LoadHandler } from './handlers.js';
import {
  CONFIGURATION_VMSD,
  GLOBALSTATE_SPEC,
  StreamFormatError,
  decodeDeviceFields,
  decodeFieldValues,
  describeFields,
  loadGlobalState,
  readConfiguration,
  readDeviceFields,
  type FieldValue,
  type StreamReader,
} from './stream/index.js';

/** What the device checks need to know of the machine they load into. */
export interface MachineLimits {
  /** Guest-physical address of the first RAM byte. */
  readonly ramBase: number;
  readonly ramSize: number;
  /** Bytes an instruction address must be aligned to (4 for RV32IM without C). */
  readonly pcAlign: number;
}

/** A device's post_load check on its decoded fields: an error text, or null when sound. */
export type DeviceValidator = (fields: Readonly<Record<string, FieldValue>>, limits: MachineLimits) => string | null;

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** QEMU's "Input validation failed: vmsd/field" (vmstate.c), with what was wrong. */
function invalid(device: string, field: string, why: string): string {
  return `Input validation failed: ${device}/${field} (${why})`;
}

/** The checks, by device name (QEMU keeps them beside each VMStateDescription). */
export const DEVICE_VALIDATORS: Readonly<Record<string, DeviceValidator>> = {
  [DeviceName.CPU]: (f, m) => {
    const pc = f.pc as number;
    if (pc < m.ramBase || pc >= m.ramBase + m.ramSize) return invalid('cpu', 'pc', `${hex(pc)} is outside RAM`);
    if (pc % m.pcAlign !== 0) return invalid('cpu', 'pc', `${hex(pc)} is not ${m.pcAlign}-byte aligned`);
    return null;
  },
  [DeviceName.UART]: (f) => {
    // The receive FIFO is oldest-first with a count: the count is its only index.
    const count = f.rx_count as number;
    const size = (f.rx_fifo as Uint8Array).length;
    if (count > size) return invalid('serial', 'rx_count', `${count} > ${size}`);
    return null;
  },
  [DeviceName.DISPLAY]: (f, m) => {
    const width = f.width as number;
    const height = f.height as number;
    if (width > DISPLAY_MAX_WIDTH) return invalid('tabmig-display', 'width', `${width} > ${DISPLAY_MAX_WIDTH}`);
    if (height > DISPLAY_MAX_HEIGHT) return invalid('tabmig-display', 'height', `${height} > ${DISPLAY_MAX_HEIGHT}`);
    if ((f.enable as number) === 0 || width === 0 || height === 0) return null; // no frame to draw
    const stride = (f.stride as number) || width * 4;
    if (stride < width * 4) return invalid('tabmig-display', 'stride', `${stride} < ${width * 4}`);
    const fb = f.fb_addr as number;
    const frameEnd = fb + stride * (height - 1) + width * 4;
    if (fb < m.ramBase || frameEnd > m.ramBase + m.ramSize) {
      return invalid('tabmig-display', 'fb_addr', `a ${width}x${height} frame at ${hex(fb)} does not fit in RAM`);
    }
    return null;
  },
};

/** QEMU's message when a device section fails to load (qemu_loadvm_section_start_full). */
export function deviceLoadError(name: string, instanceId: number, why: string): StreamFormatError {
  return new StreamFormatError('bad-value', `error while loading state for instance 0x${instanceId.toString(16)} of device '${name}': ${why}`);
}

export interface DeviceLoadHandler extends LoadHandler {
  /** Whether a section for this device arrived. */
  readonly loaded: boolean;
}

/**
 * A device section into `staging`: fields read and version-checked, range-checked, and only then
 * stored. `required` refuses a stream that never sends this device (the CPU: a guest without
 * its registers would start at whatever pc this tab held).
 */
export function deviceLoadHandler(spec: DeviceSpec, staging: DeviceState, limits: MachineLimits, required = false): DeviceLoadHandler {
  const check = DEVICE_VALIDATORS[spec.name];
  const h = {
    name: spec.name,
    instanceId: spec.instanceId,
    version: spec.version,
    minimumVersion: spec.minimumVersion,
    kind: 'device' as const,
    fields: describeFields(spec),
    loaded: false,
    async loadState(r: StreamReader, ctx: LoadContext) {
      const wire = await readDeviceFields(r, spec, ctx.versionId);
      const why = check?.(decodeFieldValues(spec, wire), limits);
      if (why) throw r.fail(deviceLoadError(spec.name, spec.instanceId, why));
      decodeDeviceFields(spec, wire, staging);
      h.loaded = true;
    },
    validate() {
      return required && !h.loaded ? `Migration stream carries no '${spec.name}' section` : null;
    },
  };
  return h;
}

/** Runstates a source can have been in when it saved globalstate (QEMU's global_state_store). */
const NOT_SENDABLE: readonly string[] = ['inmigrate', 'finish-migrate'];

export interface GlobalStateLoadHandler extends LoadHandler {
  /** The source's runstate, or null if the stream carried no globalstate. */
  readonly runstate: string | null;
}

export function globalStateLoadHandler(): GlobalStateLoadHandler {
  const h = {
    name: GLOBALSTATE_SPEC.name,
    instanceId: GLOBALSTATE_SPEC.instanceId,
    version: GLOBALSTATE_SPEC.version,
    minimumVersion: GLOBALSTATE_SPEC.minimumVersion,
    kind: 'device' as const,
    fields: describeFields(GLOBALSTATE_SPEC),
    runstate: null as string | null,
    async loadState(r: StreamReader, ctx: LoadContext) {
      const runstate = await loadGlobalState(r, ctx.versionId, RUN_STATES);
      // A source stores its runstate from before the switchover stop; these two are states of
      // the migration itself, and a destination that took them on would never run its guest.
      if (NOT_SENDABLE.includes(runstate)) {
        throw r.fail(deviceLoadError('globalstate', 0, `runstate '${runstate}' is not a state a guest can be resumed in`));
      }
      h.runstate = runstate;
    },
  };
  return h;
}

export interface ConfigurationLoadHandler extends LoadHandler {
  readonly machineType: string | null;
}

/** The configuration section: refuses a stream for another machine type in QEMU's words. */
export function configurationLoadHandler(localMachineType?: string): ConfigurationLoadHandler {
  const h = {
    name: CONFIGURATION_VMSD,
    instanceId: 0,
    version: 1,
    minimumVersion: 1,
    kind: 'configuration' as const,
    machineType: null as string | null,
    async loadState(r: StreamReader) {
      h.machineType = await readConfiguration(r, localMachineType);
    },
  };
  return h;
}

export interface MachineLoadHandlers {
  readonly configuration: ConfigurationLoadHandler;
  readonly globalState: GlobalStateLoadHandler;
  readonly devices: readonly DeviceLoadHandler[];
  /** Everything above, in one list for loadVm (RAM is added by the caller). */
  readonly all: readonly LoadHandler[];
}

/** Every non-RAM handler of this machine: DEVICES (the CPU required), globalstate, configuration. */
export function machineLoadHandlers(opts: {
  staging: DeviceState;
  limits: MachineLimits;
  machineType?: string;
  devices?: readonly DeviceSpec[];
}): MachineLoadHandlers {
  const configuration = configurationLoadHandler(opts.machineType);
  const globalState = globalStateLoadHandler();
  const devices = (opts.devices ?? DEVICES).map((spec) => deviceLoadHandler(spec, opts.staging, opts.limits, spec.name === DeviceName.CPU));
  return { configuration, globalState, devices, all: [configuration, globalState, ...devices] };
}
