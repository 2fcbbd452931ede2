// The non-RAM save handlers: the configuration section, `globalstate`, and one FULL section per
// device of the one device registry (DEVICES in guest/device-state.ts, with names, instance ids
// and versions). Registration order is stream order: ram (registered by its own module), then
// globalstate, then the devices — as tabmig has always written them.
// Every hook runs in the source's migration worker (or the snapshot writer's thread).

import { DEVICES, type DeviceSpec, type DeviceState } from '../guest/device-state.js';
import type { RunState } from '../guest/runstate.js';
import type { SaveHandler } from './handlers.js';
import type { SaveHandlerRegistry } from './savevm.js';
import {
  CONFIGURATION_VMSD,
  GLOBALSTATE_SPEC,
  MACHINE_TYPE_MAX_BYTES,
  describeConfiguration,
  describeFields,
  encodeGlobalState,
  saveDeviceState,
  type VmsdSpec,
} from './stream/index.js';

/** QEMU's vmstate_configuration: be32 length, the machine type name. */
export function configurationHandler(machineType: string, isActive: () => boolean = () => true): SaveHandler {
  const name = new TextEncoder().encode(machineType);
  if (name.length > MACHINE_TYPE_MAX_BYTES) throw new RangeError(`machine type '${machineType}' is too long`);
  return {
    name: CONFIGURATION_VMSD,
    instanceId: 0,
    version: 1,
    minimumVersion: 1,
    kind: 'configuration',
    fields: describeConfiguration(machineType).fields,
    isActive,
    completePrecopy(w) {
      w.putBe32(name.length);
      w.putBytes(name);
    },
  };
}

/**
 * QEMU's global_state: the runstate the guest had when it was stopped for the switchover, so
 * the destination resumes it as it was. `runstate` is read at completion, after the stop.
 * Sent unless store-global-state is off and the state is running or paused (QEMU's
 * global_state_needed).
 */
export function globalStateHandler(runstate: () => RunState | string, storeGlobalState: boolean): SaveHandler {
  return {
    name: GLOBALSTATE_SPEC.name,
    instanceId: GLOBALSTATE_SPEC.instanceId,
    version: GLOBALSTATE_SPEC.version,
    minimumVersion: GLOBALSTATE_SPEC.minimumVersion,
    kind: 'device',
    fields: describeFields(GLOBALSTATE_SPEC),
    // Device sections are asked at completion, after the stop, so this sees the stopped runstate.
    isActive: () => storeGlobalState || !['running', 'paused'].includes(runstate()),
    completePrecopy(w) {
      w.putBytes(encodeGlobalState(runstate()));
    },
  };
}

/** One device's FULL section: its fields from the shared device-state buffer. */
export function deviceHandler(spec: DeviceSpec | VmsdSpec, state: DeviceState): SaveHandler {
  return {
    name: spec.name,
    instanceId: spec.instanceId,
    version: spec.version,
    minimumVersion: spec.minimumVersion,
    kind: 'device',
    fields: describeFields(spec),
    completePrecopy(w) {
      saveDeviceState(w, spec, state);
    },
  };
}

export interface MachineSectionsInput {
  readonly machineType: string;
  readonly state: DeviceState;
  /** The runstate to record in globalstate (read at completion). */
  readonly runstate: () => RunState | string;
  /** migrate-set-parameters send-configuration (QEMU's send-configuration property). */
  readonly sendConfiguration: boolean;
  readonly storeGlobalState: boolean;
  /** Devices in stream order (default: every tabmig device). */
  readonly devices?: readonly DeviceSpec[];
}

/** Registers configuration, globalstate and every device (RAM registers itself first). */
export function registerMachineSections(registry: SaveHandlerRegistry, input: MachineSectionsInput): void {
  registry.register(configurationHandler(input.machineType, () => input.sendConfiguration));
  registry.register(globalStateHandler(input.runstate, input.storeGlobalState));
  for (const spec of input.devices ?? DEVICES) registry.register(deviceHandler(spec, input.state));
}
