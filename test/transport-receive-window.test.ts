// A data channel's receive side is bounded: the peer may have at most RECEIVE_WINDOW bytes that
// this side has not read yet. A well-behaved sender waits for the reader's acknowledgements
// (back-pressure end to end: a destination that stops reading stops the source), and a sender
// that ignores them is cut off once it overruns the window, with a clear error, instead of
// filling this tab's memory. Two real RTCPeerConnections in one page, joined by hand.

import { RECEIVE_WINDOW, fromDataChannel } from '../src/transport/channel.js';
import { equal, eventually, match, ok } from './helpers/assert.js';

const MiB = 1 << 20;
let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** Two connected peers with one negotiated data channel each side (id 0). */
async function pair(): Promise<{ a: RTCDataChannel; b: RTCDataChannel }> {
  const pa = new RTCPeerConnection();
  const pb = new RTCPeerConnection();
  cleanup.push(() => {
    pa.close();
    pb.close();
  });
  pa.onicecandidate = (e) => e.candidate && void pb.addIceCandidate(e.candidate);
  pb.onicecandidate = (e) => e.candidate && void pa.addIceCandidate(e.candidate);
  const a = pa.createDataChannel('main', { negotiated: true, id: 0 });
  const b = pb.createDataChannel('main', { negotiated: true, id: 0 });
  await pa.setLocalDescription();
  await pb.setRemoteDescription(pa.localDescription!);
  await pb.setLocalDescription();
  await pa.setRemoteDescription(pb.localDescription!);
  await Promise.all([a, b].map((c) => new Promise((r) => (c.readyState === 'open' ? r(null) : c.addEventListener('open', r, { once: true })))));
  return { a, b };
}

describe('transport: the receive window of a data channel', () => {
  it('a reader that stops reading stops the writer: at most the window waits unread; then every byte arrives in order', async () => {
    const { a, b } = await pair();
    const tx = fromDataChannel(a);
    const rx = fromDataChannel(b);
    const total = 4 * RECEIVE_WINDOW;
    const chunk = new Uint8Array(256 * 1024);
    let written = 0;
    const writing = (async () => {
      for (let at = 0; at < total; at += chunk.length) {
        for (let i = 0; i < chunk.length; i += 4096) chunk[i] = ((at + i) / 4096) & 0xff;
        await tx.write(chunk);
        written += chunk.length;
      }
      await tx.close();
    })();
    // Nobody reads: the writer must stall (or, without a window, finish) with no more than the
    // window unread at the reader.
    for (let last = -1, t0 = performance.now(); written !== last && written < total && performance.now() - t0 < 30000; ) {
      last = written;
      await new Promise((r) => setTimeout(r, 700));
    }
    ok(rx.bytesReceived <= RECEIVE_WINDOW, `the reader holds ${rx.bytesReceived} unread bytes (window ${RECEIVE_WINDOW})`);
    ok(written < total, 'the writer waits for the reader');
    let got = 0;
    let bad = -1;
    for (;;) {
      const c = await rx.read();
      if (!c) break;
      for (let i = 0; i < c.length; i += 4096) if (bad < 0 && c[i] !== ((got + i) / 4096 & 0xff)) bad = got + i;
      got += c.length;
    }
    await writing;
    equal(got, total);
    equal(bad, -1, 'first corrupt offset');
  });

  it('a writer that ignores the window is cut off with a clear error, not queued without end', async () => {
    const { a, b } = await pair();
    const rx = fromDataChannel(b);
    const message = new Uint8Array(256 * 1024);
    // A raw data channel: no acknowledgement is waited for.
    let sent = 0;
    while (sent < RECEIVE_WINDOW + 8 * MiB && a.readyState === 'open') {
      if (a.bufferedAmount > 4 * MiB) await new Promise((r) => setTimeout(r, 5));
      else {
        a.send(message);
        sent += message.length;
      }
    }
    const info = await rx.closed;
    equal(info.ok, false);
    match(info.reason, /past its receive window/);
    ok(rx.bytesReceived <= RECEIVE_WINDOW + message.length, `at most the window and one message were held (${rx.bytesReceived})`);
    await eventually(() => a.readyState === 'closed', 10000, 'the sender is hung up on');
  });
});
