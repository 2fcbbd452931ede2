// The page: reads its QEMU-style command line from the address, builds the machine, its QMP
// control plane and the migration service, boots the demo (unless -S or -incoming say
// otherwise), starts an incoming migration if asked, and mounts the UI.

import './ui/tm-app.js';
import { CommandLineError, parseCommandLine, type CommandLine } from './command-line.js';
import { Machine } from './guest/machine.js';
import { DEMO_PROGRAM } from './guest/programs.js';
import type { RunState } from './guest/runstate.js';
import { MigrationService, type MigrationFile } from './migration/migration-service.js';
import { downloadBlob } from './transport/file.js';
import { migrationOptionsFromGlobals } from './migration/options-global.js';
import { createQmp, installQmp } from './qmp/index.js';
import { registerMigrationCommands } from './qmp/migration-commands.js';
import { registerTransportCommands } from './qmp/transport-commands.js';
import { TokenSignaling } from './transport/token.js';
import { QmpError } from './qapi/qmp-error.js';
import { CONSENT_KEY } from './transport/consent.js';
import { loadIdentity } from './transport/identity.js';
import { parseIceConfig, savedIceText } from './transport/ice-config.js';
import { Signaling, relayUrlFor } from './transport/signaling.js';
import type { TmApp } from './ui/tm-app.js';
import { applyCarriedSettings } from './ui/services/carried-settings.js';

function initialRunstate(cl: CommandLine): RunState {
  if (cl.incoming) return 'inmigrate';
  return cl.startPaused ? 'prelaunch' : 'running';
}

function describe(e: unknown): string {
  return e instanceof QmpError ? e.desc : e instanceof Error ? e.message : String(e);
}

/**
 * A tab opened as `?incoming=webrtc:` by a link waits for its person's consent (or a pairing
 * code or tls-creds); one this tab's own button reloaded into that state has it already.
 */
function consentAtStart(cl: CommandLine): boolean {
  if (!cl.incoming?.startsWith('webrtc:')) return true;
  try {
    const given = sessionStorage.getItem(CONSENT_KEY) === '1';
    sessionStorage.removeItem(CONSENT_KEY);
    return given;
  } catch {
    return false;
  }
}

function savedIce(): { iceServers?: RTCIceServer[]; iceTransportPolicy?: RTCIceTransportPolicy } {
  try {
    const text = savedIceText();
    return text ? parseIceConfig(text) : {};
  } catch {
    return {};
  }
}

async function start(app: TmApp): Promise<void> {
  let cl: CommandLine;
  let options;
  try {
    cl = parseCommandLine(location.search);
    options = migrationOptionsFromGlobals(cl.globals);
  } catch (e) {
    app.startupError = e instanceof CommandLineError ? e.message : describe(e);
    return;
  }
  const machine = new Machine({ ramSize: cl.ramSize, runstate: initialRunstate(cl), onlyMigratable: options.onlyMigratable });
  await machine.ready;
  // QEMU -S loads the guest but does not start it; -incoming leaves RAM for the migration to fill.
  // Booting is not a reset, so it happens before QMP listens for the machine's events.
  if (!cl.incoming) await machine.load({ builtin: DEMO_PROGRAM });
  const qmp = createQmp({ machine, name: cl.name, autostart: !cl.startPaused });
  const signaling = new Signaling({ name: cl.name, relayUrl: cl.relay ? relayUrlFor(location, cl.room) : null });
  // The DTLS certificate (IndexedDB) before any connection: a stable fingerprint to pair on.
  const identity = await loadIdentity();
  signaling.setIdentity(identity.certificate, identity.fingerprint);
  const migration = new MigrationService(machine, options, qmp.events, signaling, cl.incoming === 'defer', () => qmp.vm.autostart, consentAtStart(cl));
  qmp.vm.onAutostartChange = () => migration.autostartChanged();
  migration.ice = cl.ice ?? savedIce();
  registerMigrationCommands(qmp.dispatcher, qmp.hmp, migration, signaling);
  // Postcopy splits the guest's memory between two tabs: closing or reloading either loses it.
  window.addEventListener('beforeunload', (e) => {
    if (!migration.postcopyInProgress) return;
    e.preventDefault();
    e.returnValue = 'A postcopy migration is in progress: the guest would be lost';
  });
  const tokens = new TokenSignaling(signaling);
  registerTransportCommands(qmp.dispatcher, migration, signaling, tokens);
  migration.addEventListener('file', (e) => {
    const { name, blob } = (e as CustomEvent<MigrationFile>).detail;
    downloadBlob(blob, name);
  });
  app.vmName = cl.name ?? '';
  app.peerId = signaling.id;
  signaling.addEventListener('id', () => (app.peerId = signaling.id));
  app.machine = machine;
  app.migration = migration;
  app.qmp = { execute: (cmd) => qmp.dispatcher.execute(cmd), events: qmp.events };
  if (cl.incoming) {
    // "Receive a migration" reloaded this tab: the capabilities and parameters set before it hold.
    for (const text of await applyCarriedSettings(app.qmp)) migration.log.push({ t: Date.now(), text });
    try {
      migration.migrateIncoming(cl.incoming, { fromCommandLine: true });
    } catch (e) {
      app.startupError = `-incoming ${cl.incoming}: ${describe(e)}`;
    }
  }
  installQmp(window, qmp.dispatcher, qmp.events);
}

const app = document.querySelector('tm-app') ?? document.body.appendChild(document.createElement('tm-app'));
start(app as TmApp).catch((e) => {
  (app as TmApp).startupError = `tabmig could not start: ${describe(e)}`;
});
