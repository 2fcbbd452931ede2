import basicSsl from '@vitejs/plugin-basic-ssl';
import { defineConfig } from 'vite';
import { parseRelayLimits } from './server/relay-limits.js';
import { parseOrigins } from './server/relay-origin.js';
import { signalRelayPlugin } from './server/signal-relay.js';

// `--mode https` (npm run class) serves over HTTPS with a self-signed certificate: a page opened
// from another machine is a secure context, and so gets SharedArrayBuffer and WebCrypto, only
// over HTTPS (http://localhost is exempt, a LAN address is not). TABMIG_HTTPS=1 does the same.
const httpsFor = (mode: string) => mode === 'https' || process.env.TABMIG_HTTPS === '1';

// SharedArrayBuffer (guest RAM, dirty log, control block) needs cross-origin isolation.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig(({ mode }) => ({
  // The signaling relay (WebSocket at /signal) for pages in other browsers or on other machines.
  // TABMIG_RELAY_ORIGINS: other page origins it lets in (default: only the page's own);
  // TABMIG_RELAY_LIMITS: `name=value,…` overrides of its limits (server/relay-limits.ts).
  plugins: [
    signalRelayPlugin({
      origin: { origins: parseOrigins(process.env.TABMIG_RELAY_ORIGINS) },
      limits: parseRelayLimits(process.env.TABMIG_RELAY_LIMITS),
    }),
    ...(httpsFor(mode) ? [basicSsl({ name: 'tabmig' })] : []),
  ],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
}));
