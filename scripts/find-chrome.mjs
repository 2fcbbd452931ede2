// Finds a system Chromium or Chrome for the tests: CHROME_PATH first, then the usual places.
// No test tool here downloads a browser of its own.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const candidates = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

export const HOW_TO_INSTALL =
  'No Chromium or Chrome found. Install one (Debian/Ubuntu: sudo apt-get install -y chromium) ' +
  'or point CHROME_PATH at a Chrome/Chromium executable.';

export function findChrome() {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    throw new Error(`CHROME_PATH is set to ${fromEnv}, which does not exist. ${HOW_TO_INSTALL}`);
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(HOW_TO_INSTALL);
  return found;
}

/** Launch flags that keep headless Chromium off the (closed) network and quiet. */
export const CHROME_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(findChrome());
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
