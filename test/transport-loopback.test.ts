// loopback:NAME and the channel semantics shared by every transport: order, integrity,
// back-pressure, orderly close, abort, and a worker holding one end.

import { ChannelClosedError, fromMessagePort, TransportError, type MigrationChannel } from '../src/transport/channel.js';
import { connectLoopback, listenLoopback, loopbackListeners } from '../src/transport/loopback.js';
import { CHANNEL } from '../src/transport/routes.js';
import { equal, match, ok, rejects, throws } from './helpers/assert.js';
import { EchoWorker } from './fixtures/transport-worker-client.js';

const routes = [{ id: CHANNEL.main }, { id: CHANNEL.returnPath }];
let n = 0;
const uniq = () => `t${Date.now().toString(36)}-${n++}`;

async function pair(): Promise<{ src: MigrationChannel; dst: MigrationChannel; srcRp: MigrationChannel; dstRp: MigrationChannel }> {
  const name = uniq();
  const incoming = listenLoopback(name, { routes });
  const out = connectLoopback(name, { routes });
  const inLink = await incoming.connection;
  return {
    src: fromMessagePort(out.channels.get(CHANNEL.main)!),
    srcRp: fromMessagePort(out.channels.get(CHANNEL.returnPath)!),
    dst: fromMessagePort(inLink.channels.get(CHANNEL.main)!),
    dstRp: fromMessagePort(inLink.channels.get(CHANNEL.returnPath)!),
  };
}

describe('transport: loopback', () => {
  it('refuses to connect to a name nobody listens on', () => {
    const e = throws(() => connectLoopback('nobody-' + uniq(), { routes }));
    ok(e instanceof TransportError);
    equal((e as Error).message.startsWith("Failed to connect to 'loopback:nobody-"), true);
    match((e as Error).message, /Connection refused$/);
  });

  it('accepts one connection per listen, and one listener per name', async () => {
    const name = uniq();
    const l = listenLoopback(name, { routes });
    throws(() => listenLoopback(name, { routes }));
    ok(loopbackListeners().includes(name));
    connectLoopback(name, { routes });
    await l.connection;
    throws(() => connectLoopback(name, { routes }), 'second connect refused');
    const l2 = listenLoopback(uniq(), { routes });
    l2.close();
    await rejects(l2.connection);
  });

  it('carries bytes in order, both ways, with chunk boundaries kept', async () => {
    const { src, dst, srcRp, dstRp } = await pair();
    src.send(new Uint8Array([1, 2, 3]));
    await src.write(new Uint8Array([4, 5]));
    equal((await dst.read())!.join(), '1,2,3');
    equal((await dst.read())!.join(), '4,5');
    await dstRp.write(new Uint8Array([9]));
    equal((await srcRp.read())!.join(), '9');
    equal(src.bytesSent, 5);
    equal(dst.bytesReceived, 5);
  });

  it('copies what it sends (the caller may reuse or share its buffer)', async () => {
    const { src, dst } = await pair();
    const sab = new Uint8Array(new SharedArrayBuffer(4));
    sab.set([7, 7, 7, 7]);
    src.send(sab);
    sab.fill(0);
    const buf = new Uint8Array([1, 1]);
    src.send(buf);
    buf.fill(2);
    equal((await dst.read())!.join(), '7,7,7,7');
    equal((await dst.read())!.join(), '1,1');
  });

  it('splits writes larger than maxMessageSize', async () => {
    const { src, dst } = await pair();
    const big = new Uint8Array(src.maxMessageSize * 2 + 10).map((_, i) => i & 255);
    await src.write(big);
    await src.close();
    const parts: Uint8Array[] = [];
    for await (const c of dst) parts.push(c);
    equal(parts.length, 3);
    const all = new Uint8Array(big.length);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    equal(at, big.length);
    ok(all.every((v, i) => v === (i & 255)), 'bytes intact');
    throws(() => src.send(new Uint8Array(1)), 'send after close throws');
  });

  it('applies back-pressure until the reader consumes', async () => {
    const { src, dst } = await pair();
    const chunk = new Uint8Array(64 * 1024);
    let written = 0;
    const writer = (async () => {
      for (let i = 0; i < 160; i++) {
        await src.write(chunk); // 10 MiB total, far above the 4 MiB high-water mark
        written += chunk.length;
        ok(src.bufferedAmount <= src.highWaterMark, `bufferedAmount ${src.bufferedAmount} over the high-water mark`);
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    ok(written <= src.highWaterMark, `writer ran ahead to ${written} bytes with no reader`);
    let got = 0;
    while (got < 160 * chunk.length) got += (await dst.read())!.length;
    await writer;
    equal(written, 160 * chunk.length);
  });

  it('orderly close: the reader gets everything, then null; both closed promises say ok', async () => {
    const { src, dst } = await pair();
    await src.write(new Uint8Array([1]));
    await src.write(new Uint8Array([2]));
    await src.close();
    equal((await dst.read())![0], 1);
    equal((await dst.read())![0], 2);
    equal(await dst.read(), null);
    equal(await dst.read(), null);
    const a = await src.closed;
    const b = await dst.closed;
    equal(a.ok, true);
    equal(a.by, 'local');
    equal(b.ok, true);
    equal(b.by, 'remote');
  });

  it('abort: the peer reader and writer fail with the reason instead of hanging', async () => {
    const { src, dst } = await pair();
    const pending = dst.read();
    src.abort('migration cancelled');
    const e = await rejects(pending);
    ok(e instanceof ChannelClosedError);
    equal(e.reason, 'migration cancelled');
    equal(e.by, 'remote');
    match(e.message, /aborted by peer: migration cancelled/);
    await rejects(dst.write(new Uint8Array(1)));
    const info = await dst.closed;
    equal(info.ok, false);
    await rejects(src.read());
  });

  it('onmessage takes over delivery, including chunks already queued', async () => {
    const { src, dst } = await pair();
    src.send(new Uint8Array([1]));
    await new Promise((r) => setTimeout(r, 20));
    const seen: number[] = [];
    dst.onmessage = (c) => seen.push(c[0]);
    src.send(new Uint8Array([2]));
    await new Promise((r) => setTimeout(r, 20));
    equal(seen.join(), '1,2');
  });

  it('hands ports to a worker along the routes; the worker streams 16 MiB back intact', async () => {
    const w = new EchoWorker();
    try {
      const name = uniq();
      const incoming = listenLoopback(name, { routes: [{ id: CHANNEL.main, to: w.worker }] });
      const out = connectLoopback(name, { routes: [{ id: CHANNEL.main }] });
      await incoming.connection;
      await w.channels(1);
      equal(w.channelsSeen[0].transport, 'loopback');
      equal(w.channelsSeen[0].label, 'main');
      const local = fromMessagePort(out.channels.get(CHANNEL.main)!);
      const sending = w.call({ cmd: 'send', id: CHANNEL.main, bytes: 16 << 20, close: true });
      let got = 0;
      let bad = -1;
      for await (const c of local) {
        for (let i = 0; bad < 0 && i < c.length; i++) if (c[i] !== (got + i) % 251) bad = got + i;
        got += c.length;
      }
      equal(bad, -1, 'first corrupt offset');
      equal(got, 16 << 20);
      const r = await sending;
      ok(r.ok, JSON.stringify(r));
      ok((r.maxBuffered as number) <= (r.highWaterMark as number), 'worker respected the high-water mark');
    } finally {
      w.terminate();
    }
  });
});
