// Two-tab end-to-end harness: serves the production build (vite preview, with the COOP/COEP
// headers) on a free loopback port and opens real headless Chromium tabs that tests drive
// through window.qmp, exactly as a user's scripts would.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { chromium } from 'playwright-core';
import { CHROME_ARGS, findChrome } from '../../scripts/find-chrome.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `vite preview` on the built page (building it first if there is no dist/). `env` adds
 * to the server's environment (e.g. TABMIG_RELAY_LIMITS for the relay's limits).
 */
export async function startServer({ env = {} } = {}) {
  if (!existsSync('dist/index.html')) {
    await new Promise((resolve, reject) => {
      const b = spawn('npx', ['vite', 'build', '--logLevel', 'warn'], { stdio: 'inherit' });
      b.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited ${code}`))));
    });
  }
  const port = await freePort();
  const proc = spawn('npx', ['vite', 'preview', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...env },
  });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(base)).ok) break;
    } catch {}
    if (i > 120) throw new Error('preview server did not start: ' + log.slice(-500));
    await sleep(250);
  }
  return {
    base,
    /** What the server printed so far (the relay logs its refusals there). */
    log: () => log,
    stop() {
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {}
    },
  };
}

/** A browser with one context (tabs in one context share BroadcastChannel, like a user's tabs). */
export async function startBrowser(base) {
  const browser = await chromium.launch({ executablePath: findChrome(), args: CHROME_ARGS });
  const context = await browser.newContext({ acceptDownloads: true });
  const pageErrors = [];
  return {
    pageErrors,
    /** A tab as the user gets it, without waiting for anything. */
    async openPage(query = '') {
      const page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(base + query);
      return page;
    },
    async open(query = '') {
      const page = await this.openPage(query);
      await page.waitForFunction(() => typeof window.qmp === 'function', null, { timeout: 30000 });
      return new Tab(page);
    },
    close: () => browser.close(),
  };
}

export class Tab {
  constructor(page) {
    this.page = page;
  }
  qmp(cmd) {
    return this.page.evaluate((c) => window.qmp(c), cmd);
  }
  /** Runs a command that must succeed and returns its `return` value. */
  async ret(execute, args) {
    const reply = await this.qmp(args ? { execute, arguments: args } : { execute });
    if (reply.error) throw new Error(`${execute}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return;
  }
  async hmp(line) {
    return this.ret('human-monitor-command', { 'command-line': line });
  }
  async hash() {
    return (await this.ret('x-tabmig-ram-hash')).hash;
  }
  /** Polls a query until pred holds (for asynchronous effects; fails after ms). */
  async until(execute, pred, ms = 30000) {
    const t0 = Date.now();
    for (;;) {
      const v = await this.ret(execute);
      if (pred(v)) return v;
      if (Date.now() - t0 > ms) throw new Error(`${execute} stuck at ${JSON.stringify(v).slice(0, 400)}`);
      await sleep(100);
    }
  }
}

