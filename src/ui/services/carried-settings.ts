// Settings that survive "Receive a migration". QEMU's -incoming is a start-up option, so that
// button reloads the tab; capabilities and parameters live in the page, and a person who switched
// postcopy-ram on and then pressed the button would find it off again. The button keeps what
// differs from QEMU's defaults in this tab's sessionStorage (this tab only, gone with it); the
// reloaded page applies it through QMP before it starts waiting.

import { defaultParameters } from '../../migration/options-schema.js';
import type { MigrationOptionsView } from './migration-view.js';
import type { QmpClient } from './qmp-client.js';

const KEY = 'tabmig-carried-settings';

interface Carried {
  capabilities: { capability: string; state: boolean }[];
  parameters: Record<string, unknown>;
}

/** What differs from the defaults: the capabilities switched on, the parameters changed. */
export function settingsToCarry(options: MigrationOptionsView): Carried {
  const defaults = defaultParameters() as unknown as Record<string, unknown>;
  const capabilities = options.queryCapabilities().filter((c) => c.state).map((c) => ({ capability: c.capability, state: true }));
  const parameters: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options.queryParameters())) {
    if (JSON.stringify(value) !== JSON.stringify(defaults[name])) parameters[name] = value;
  }
  return { capabilities, parameters };
}

/** Keeps this tab's settings for the page that the reload brings. */
export function carrySettingsOverReload(options: MigrationOptionsView): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(settingsToCarry(options)));
  } catch {
    // No storage: the reloaded tab starts with QEMU's defaults, as it would anyway.
  }
}

/**
 * Applies settings a reload carried (once: they are removed as they are read). Returns what was
 * applied, and QEMU's error for any that was refused, for the event log.
 */
export async function applyCarriedSettings(qmp: QmpClient): Promise<string[]> {
  let carried: Carried | null = null;
  try {
    const text = sessionStorage.getItem(KEY);
    sessionStorage.removeItem(KEY);
    carried = text ? (JSON.parse(text) as Carried) : null;
  } catch {
    return [];
  }
  if (!carried) return [];
  const notes: string[] = [];
  if (carried.capabilities?.length) {
    const r = await qmp.execute({ execute: 'migrate-set-capabilities', arguments: { capabilities: carried.capabilities } });
    notes.push(
      r.error
        ? `capabilities kept from before the reload refused: ${r.error.desc}`
        : `kept from before the reload: ${carried.capabilities.map((c) => c.capability).join(', ')} on`,
    );
  }
  if (carried.parameters && Object.keys(carried.parameters).length) {
    const r = await qmp.execute({ execute: 'migrate-set-parameters', arguments: carried.parameters });
    const names = Object.keys(carried.parameters).filter((n) => n !== 'tls-creds');
    notes.push(r.error ? `parameters kept from before the reload refused: ${r.error.desc}` : `kept from before the reload: ${names.join(', ') || 'tls-creds'}`);
  }
  return notes;
}
