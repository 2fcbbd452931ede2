// Raw tab-to-tab data-channel throughput: the wire's ceiling that every migration figure is read
// against. Two pages of one browser context (same origin) find each other over BroadcastChannel,
// connect an RTCPeerConnection with one negotiated, ordered data channel, and one floods the
// other with 64 KiB messages under bufferedAmount back-pressure. No project code runs in it, so
// it measures the browser, not tabmig.
//
//   import { rawTabToTab } from './raw-channel.mjs';
//   const mbs = await rawTabToTab(pageA, pageB, 128 << 20);        // MB/s (10^6 bytes/s)
//
// Standalone: `node bench/raw-channel.mjs [MiB]` serves the build and prints the figure.

/**
 * Runs in both pages (serialized by playwright). Resolves on the sender with
 * {bytes, ms} measured from the first send to the receiver's report of the last byte.
 */
async function side({ role, chan, total, messageSize, highWaterMark, lowWaterMark, timeoutMs }) {
  const bc = new BroadcastChannel(chan);
  const pc = new RTCPeerConnection({ iceServers: [] });
  const dc = pc.createDataChannel('raw', { negotiated: true, id: 0, ordered: true });
  dc.binaryType = 'arraybuffer';
  const post = (m) => bc.postMessage({ role, ...m });
  let timer;
  let readyTimer;
  const finish = () => {
    clearTimeout(timer);
    clearInterval(readyTimer);
    setTimeout(() => {
      pc.close();
      bc.close();
    }, 100);
  };
  return new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      finish();
      reject(new Error(`raw channel ${role}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    pc.onicecandidate = (e) => e.candidate && post({ cand: e.candidate.toJSON() });
    let offered = false;
    bc.onmessage = async ({ data }) => {
      if (data.role === role) return;
      try {
        if (data.ready && role === 'a' && !offered) {
          offered = true;
          await pc.setLocalDescription();
          post({ sdp: pc.localDescription.toJSON() });
        }
        if (data.sdp) {
          clearInterval(readyTimer);
          await pc.setRemoteDescription(data.sdp);
          if (data.sdp.type === 'offer') {
            await pc.setLocalDescription();
            post({ sdp: pc.localDescription.toJSON() });
          }
        }
        if (data.cand) await pc.addIceCandidate(data.cand).catch(() => {});
        if (data.done && role === 'a') {
          finish();
          resolve({ bytes: data.got, ms: performance.now() - globalThis.__rawT0 });
        }
      } catch (e) {
        finish();
        reject(e);
      }
    };
    if (role === 'b') {
      // Say "ready" until the offer comes: the other page may not be listening yet.
      post({ ready: true });
      readyTimer = setInterval(() => post({ ready: true }), 100);
      let got = 0;
      dc.onmessage = (e) => {
        got += e.data.byteLength;
        if (got >= total) {
          post({ done: true, got });
          finish();
          resolve({ bytes: got, ms: 0 });
        }
      };
    } else {
      dc.onopen = async () => {
        const buf = new Uint8Array(messageSize);
        for (let i = 0; i < buf.length; i++) buf[i] = i & 255;
        dc.bufferedAmountLowThreshold = lowWaterMark;
        globalThis.__rawT0 = performance.now();
        for (let sent = 0; sent < total; ) {
          if (dc.bufferedAmount > highWaterMark) await new Promise((r) => (dc.onbufferedamountlow = r));
          const n = Math.min(messageSize, total - sent);
          dc.send(n === messageSize ? buf : buf.subarray(0, n));
          sent += n;
        }
      };
    }
  });
}

/**
 * MB/s (10^6 bytes per second) of a data-channel flood from pageA to pageB.
 * @param {import('playwright-core').Page} pageA sender
 * @param {import('playwright-core').Page} pageB receiver (same browser context and origin)
 * @param {number} total bytes to send (default 128 MiB)
 * @param {{messageSize?: number, highWaterMark?: number, lowWaterMark?: number, timeoutMs?: number}} [opts]
 */
export async function rawTabToTab(pageA, pageB, total = 128 << 20, opts = {}) {
  const common = {
    chan: 'tabmig-raw-' + Math.random().toString(36).slice(2),
    total,
    messageSize: opts.messageSize ?? 64 << 10,
    highWaterMark: opts.highWaterMark ?? 4 << 20,
    lowWaterMark: opts.lowWaterMark ?? 1 << 20,
    timeoutMs: opts.timeoutMs ?? 300_000,
  };
  const [a] = await Promise.all([pageA.evaluate(side, { ...common, role: 'a' }), pageB.evaluate(side, { ...common, role: 'b' })]);
  return a.bytes / 1e6 / (a.ms / 1000);
}

// Standalone run.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { startServer } = await import('../test/e2e/harness.mjs');
  const { chromium } = await import('playwright-core');
  const { CHROME_ARGS, findChrome } = await import('../scripts/find-chrome.mjs');
  const mib = Number(process.argv[2] ?? 128);
  const server = await startServer();
  const browser = await chromium.launch({ executablePath: findChrome(), args: CHROME_ARGS });
  try {
    const ctx = await browser.newContext();
    const [a, b] = [await ctx.newPage(), await ctx.newPage()];
    await a.goto(server.base);
    await b.goto(server.base);
    const mbs = await rawTabToTab(a, b, mib << 20);
    console.log(JSON.stringify({ raw_channel_mb_s: +mbs.toFixed(1), mib }));
  } finally {
    await browser.close();
    server.stop();
  }
}
