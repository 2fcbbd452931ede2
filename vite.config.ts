import { defineConfig } from 'vite';
import { signalRelayPlugin } from './server/signal-relay.js';

// SharedArrayBuffer (guest RAM, dirty log, control block) needs cross-origin isolation.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  // The signaling relay (WebSocket at /signal) for pages in other browsers or on other machines.
  plugins: [signalRelayPlugin()],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
});
