// tabmig's own QMP commands for reaching peers beyond this browser: pairing facts, consent,
// copy-paste tokens and ICE servers. (QEMU's side of this is tls-creds and the URI.)

import type { MigrationService } from '../migration/migration-service.js';
import { QmpError } from '../qapi/qmp-error.js';
import { currentIdentity } from '../transport/identity.js';
import { parseIceConfig } from '../transport/ice-config.js';
import type { Signaling } from '../transport/signaling.js';
import type { TokenSignaling } from '../transport/token.js';
import type { QmpDispatcher } from './dispatcher.js';

export function registerTransportCommands(dispatcher: QmpDispatcher, mig: MigrationService, signaling: Signaling, tokens: TokenSignaling): void {
  dispatcher.register({
    name: 'x-tabmig-pairing',
    handler: () => {
      const id = currentIdentity();
      return {
        fingerprint: id?.fingerprint ?? '',
        sas: id?.sas ?? '',
        code: mig.consent.code,
        failedAttempts: mig.consent.failedAttempts,
        agreed: mig.consent.agreed,
        relay: signaling.relayState,
      };
    },
  });
  dispatcher.register({ name: 'x-tabmig-consent', handler: () => mig.consent.agree() });
  dispatcher.register({ name: 'x-tabmig-token-peer', handler: () => ({ peer: tokens.newPeer() }) });
  dispatcher.register({
    name: 'x-tabmig-token',
    handler: () => {
      if (!tokens.latest) throw QmpError.generic('No token yet: migrate to a token peer, or paste an offer while waiting');
      return { token: tokens.latest };
    },
  });
  dispatcher.register<{ token: string }>({
    name: 'x-tabmig-token-paste',
    args: { token: 'str' },
    handler: async (a) => {
      try {
        return { kind: await tokens.paste(a.token) };
      } catch (e) {
        throw QmpError.generic((e as Error).message);
      }
    },
  });
  dispatcher.register<{ servers: string }>({
    name: 'x-tabmig-set-ice',
    args: { servers: 'str' },
    handler: (a) => {
      try {
        mig.ice = a.servers ? parseIceConfig(a.servers) : {};
      } catch (e) {
        throw QmpError.generic((e as Error).message);
      }
    },
  });
}
