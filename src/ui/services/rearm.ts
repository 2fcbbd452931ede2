// "Migrate again with …": a remedy the non-convergence banner offers when a capability must change,
// which QEMU allows only between migrations. The source cancels (its guest runs on), switches the
// capability on, asks the destination tab it was migrating to (a tab of this browser, over a
// BroadcastChannel) to wait again, and migrates once it does. The destination agrees only to the
// source whose migration into it has just failed, within a minute, and waits for that source
// alone (migrate-incoming webrtc:SOURCE); a capability it is asked to switch on must be one both
// ends need (capability-agreement.ts). Everything goes through QMP, as a person would type it.

import { AGREED_CAPABILITIES } from '../../migration/capability-agreement.js';
import { executeSafely, type QmpClient } from './qmp-client.js';
import type { MigrationView } from './migration-view.js';

const CHANNEL = 'tabmig-rearm';
/** How long after its incoming migration failed a destination agrees to wait again. */
const AGREE_WITHIN_MS = 60_000;
const ANSWER_MS = 10_000;

type Msg =
  | { type: 'wait-again'; to: string; from: string; capabilities: string[] }
  | { type: 'waiting'; to: string; from: string }
  | { type: 'refused'; to: string; from: string; reason: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const caps = (list: readonly string[]) => ({ capabilities: list.map((capability) => ({ capability, state: true })) });

export interface Rearm {
  /** The source's side: cancel, switch on, have the destination wait again, migrate. */
  migrateAgainWith(capabilities: readonly string[], destinationCapabilities: readonly string[], progress: (step: string) => void): Promise<void>;
  close(): void;
}

export function createRearm(qmp: QmpClient, migration: MigrationView, runstate: () => string | undefined): Rearm {
  const channel = new BroadcastChannel(CHANNEL);
  const ownId = () => migration.signaling?.id ?? '';
  let failedAt = 0;
  let lastIncoming = migration.incomingStatus;
  const onChange = () => {
    if (migration.incomingStatus !== lastIncoming && migration.incomingStatus === 'failed') failedAt = Date.now();
    lastIncoming = migration.incomingStatus;
  };
  migration.addEventListener('change', onChange);
  const post = (m: Msg) => channel.postMessage(m);

  // ---- destination side ----
  channel.addEventListener('message', (e: MessageEvent<Msg>) => {
    const m = e.data;
    if (m?.type !== 'wait-again' || m.to !== ownId() || typeof m.from !== 'string') return;
    void (async () => {
      const refuse = (reason: string) => post({ type: 'refused', to: m.from, from: ownId(), reason });
      if (runstate() !== 'inmigrate' || migration.incomingStatus !== 'failed' || Date.now() - failedAt > AGREE_WITHIN_MS) {
        return refuse('it is not a destination whose migration just failed');
      }
      const wanted = (Array.isArray(m.capabilities) ? m.capabilities : []).filter((c) => (AGREED_CAPABILITIES as readonly string[]).includes(c));
      if (wanted.length) {
        const r = await executeSafely(qmp, { execute: 'migrate-set-capabilities', arguments: caps(wanted) });
        if (r.error) return refuse(r.error.desc);
      }
      const r = await executeSafely(qmp, { execute: 'migrate-incoming', arguments: { uri: `webrtc:${m.from}` } });
      if (r.error) return refuse(r.error.desc);
      post({ type: 'waiting', to: m.from, from: ownId() });
    })();
  });

  // ---- source side ----
  const answer = (from: string) =>
    new Promise<Msg>((resolve, reject) => {
      const on = (e: MessageEvent<Msg>) => {
        const m = e.data;
        if ((m?.type !== 'waiting' && m?.type !== 'refused') || m.to !== ownId() || m.from !== from) return;
        clearTimeout(timer);
        channel.removeEventListener('message', on);
        resolve(m);
      };
      const timer = setTimeout(() => {
        channel.removeEventListener('message', on);
        reject(new Error('the destination tab did not answer (is it a tab of this browser?)'));
      }, ANSWER_MS);
      channel.addEventListener('message', on);
    });

  async function migrateAgainWith(capabilities: readonly string[], destinationCapabilities: readonly string[], progress: (step: string) => void): Promise<void> {
    const uri = migration.outgoingUri ?? '';
    const ret = async (execute: string, args?: Record<string, unknown>) => {
      const r = await executeSafely(qmp, args ? { execute, arguments: args } : { execute });
      if (r.error) throw new Error(`${execute}: ${r.error.desc}`);
      return r.return;
    };
    progress('migrate_cancel: the guest runs on here');
    await ret('migrate_cancel');
    for (const t0 = Date.now(); migration.outgoingStatus !== 'cancelled' && migration.outgoingStatus !== 'failed'; await sleep(100)) {
      if (migration.outgoingStatus === 'completed') throw new Error('the migration completed before it could be cancelled');
      if (Date.now() - t0 > 15_000) throw new Error(`the migration is still ${migration.outgoingStatus}`);
    }
    progress(`migrate-set-capabilities ${capabilities.join(', ')} on`);
    await ret('migrate-set-capabilities', caps(capabilities));
    const peer = uri.startsWith('webrtc:') ? uri.slice('webrtc:'.length) : '';
    if (peer) {
      progress(`asking ${peer} to wait again${destinationCapabilities.length ? ` with ${destinationCapabilities.join(', ')} on` : ''}`);
      const reply = answer(peer);
      post({ type: 'wait-again', to: peer, from: ownId(), capabilities: [...destinationCapabilities] });
      const m = await reply;
      if (m.type === 'refused') throw new Error(`${peer} would not wait again: ${m.reason}`);
      // Its presence (waiting) reaches this tab's peer list a moment later.
      for (const t0 = Date.now(); !migration.signaling?.peers.some((p) => p.id === peer && p.incoming); await sleep(100)) {
        if (Date.now() - t0 > 5000) break;
      }
    } else if (!uri.startsWith('idb:') && !uri.startsWith('file:')) {
      throw new Error(`${uri || 'the destination'} must be made to wait again by hand; then press Migrate`);
    }
    progress(`migrate ${uri}`);
    await ret('migrate', { uri });
  }

  return {
    migrateAgainWith,
    close() {
      migration.removeEventListener('change', onChange);
      channel.close();
    },
  };
}
