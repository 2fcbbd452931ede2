// The byte layer: StreamWriter and StreamReader round trips, chunking, back-pressure, sticky
// errors, shutdown and the rate limiter's window accounting (on an injected clock).
import {
  BufferSink,
  StreamEndError,
  StreamFormatError,
  StreamIOError,
  StreamReader,
  StreamWriter,
  chunkSource,
  type ByteSink,
  type RateClock,
} from '../src/migration/stream/index.js';
import { deepEqual, equal, ok, rejects, throws } from './helpers/assert.js';

/** Splits bytes into pieces of pseudo-random sizes (1..max), to cross every boundary. */
function split(bytes: Uint8Array, seed: number, max = 13): Uint8Array[] {
  const out: Uint8Array[] = [];
  let s = seed >>> 0 || 1;
  for (let at = 0; at < bytes.length; ) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const n = 1 + (s % max);
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  return out;
}

class FakeClock implements RateClock {
  t = 1000;
  private sleepers: Array<{ until: number; resolve: () => void }> = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.sleepers.push({ until: this.t + ms, resolve }));
  }
  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.until <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.until > this.t);
    for (const s of due) s.resolve();
  }
  get sleeping(): number {
    return this.sleepers.length;
  }
}

/** A sink whose writes complete only when the test says so. */
class GatedSink implements ByteSink {
  chunks: Uint8Array[] = [];
  private gates: Array<() => void> = [];
  write(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk);
    return new Promise((resolve) => this.gates.push(resolve));
  }
  release(n = Infinity): void {
    while (n-- > 0 && this.gates.length) this.gates.shift()!();
  }
  get waiting(): number {
    return this.gates.length;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('stream writer and reader', () => {
  it('round-trips every primitive, across every chunk boundary', async () => {
    const sink = new BufferSink();
    const w = new StreamWriter(sink, { chunkSize: 64 });
    const page = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
    for (let i = 0; i < 50; i++) {
      w.putU8(i);
      w.putBe16(0xbeef ^ i);
      w.putBe32(0xdeadbeef - i);
      w.putBe64(2 ** 52 + i);
      w.putBe64Big(0xfedcba9876543210n - BigInt(i));
      w.putBe64Parts(0x12345678, 0x9abcdef0);
      w.putCountedString(`block-${i}`);
      w.putBytes(page, i, 100 + i);
    }
    w.putBytes(page);
    const total = w.transferred;
    await w.close();
    equal(w.error, null, 'no error');
    equal(sink.length, total, 'every byte put reached the sink');
    ok(sink.chunks.every((c) => c.length <= 64), 'no chunk larger than chunkSize');
    ok(sink.closed, 'sink closed');

    for (const seed of [1, 2, 3, 99]) {
      const r = new StreamReader(chunkSource(split(sink.toBytes(), seed)));
      for (let i = 0; i < 50; i++) {
        await r.ensure(1 + 2 + 4 + 8 + 8 + 8);
        equal(r.getU8(), i);
        equal(r.getBe16(), 0xbeef ^ i);
        equal(r.getBe32(), (0xdeadbeef - i) >>> 0);
        equal(r.getBe64(), 2 ** 52 + i);
        equal(r.getBe64Big(), 0xfedcba9876543210n - BigInt(i));
        equal(r.getBe64Big(), 0x123456789abcdef0n);
        equal(await r.readCountedString(), `block-${i}`);
        deepEqual(Array.from(await r.readBytes(100 + i)), Array.from(page.subarray(i, i + 100 + i)));
      }
      deepEqual(Array.from(await r.readBytes(4096)), Array.from(page));
      equal(r.position, total, 'position counts every byte consumed');
      equal(r.received, total, 'received counts every byte read');
      ok(await r.atEnd(), 'at end');
    }
  });

  it('big-endian on the wire', async () => {
    const sink = new BufferSink();
    const w = new StreamWriter(sink);
    w.putBe16(0x0102);
    w.putBe32(0x03040506);
    w.putBe64(0x0708090a0b0c);
    w.putCountedString('ab');
    await w.flush();
    deepEqual(Array.from(sink.toBytes()), [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 2, 97, 98]);
  });

  it('refuses values that do not fit, before writing them', () => {
    const w = new StreamWriter(new BufferSink());
    ok(throws(() => w.putBe64(-1)) instanceof RangeError);
    ok(throws(() => w.putBe64(2 ** 53)) instanceof RangeError);
    ok(throws(() => w.putCountedString('x'.repeat(256))) instanceof RangeError);
    ok(throws(() => w.putBytes(new Uint8Array(4), 2, 3)) instanceof RangeError);
    equal(w.transferred, 0);
  });

  it('getBytes is a view; a record straddling chunks is stitched once', async () => {
    const a = new Uint8Array([1, 2, 3, 4, 5]);
    const b = new Uint8Array([6, 7, 8, 9]);
    const r = new StreamReader(chunkSource([a, b]));
    await r.ensure(3);
    const v = r.getBytes(3);
    equal(v.buffer, a.buffer, 'a record inside one chunk is a view of it');
    await r.ensure(4);
    deepEqual(Array.from(r.getBytes(4)), [4, 5, 6, 7]);
    await r.ensure(2);
    const rest = r.getBytes(2);
    equal(rest.buffer, b.buffer, 'after the stitch, reading continues in the next chunk in place');
    equal(r.position, 9);
  });

  it('early end of stream is a StreamEndError, and sticky', async () => {
    const r = new StreamReader(chunkSource([new Uint8Array([1, 2, 3])]));
    const e = await rejects(r.ensure(4));
    ok(e instanceof StreamEndError, `StreamEndError, got ${e}`);
    equal((e as Error).name, 'StreamEndError');
    equal(r.error, e, 'kept as the stream error');
    equal(await rejects(r.ensure(1)), e, 'later reads fail with the same error');
  });

  it('ensure beyond the limit is malformed, not a huge allocation', async () => {
    const r = new StreamReader(chunkSource([new Uint8Array(10)]), { maxEnsure: 1024 });
    const e = await rejects(r.ensure(4096));
    ok(e instanceof StreamFormatError && e.code === 'too-large');
  });

  it('a be64 of 2^53 or more is refused by getBe64', async () => {
    const r = StreamReader.fromBytes(new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0]));
    const e = await rejects(r.readBe64());
    ok(e instanceof StreamFormatError && e.code === 'too-large');
  });

  it('reading past ensured bytes is a bug, reported as RangeError', () => {
    const r = StreamReader.fromBytes(new Uint8Array(4));
    ok(throws(() => r.getBe32()) instanceof RangeError);
  });

  it('back-pressure: ready() waits while more than highWater bytes are queued', async () => {
    const sink = new GatedSink();
    const w = new StreamWriter(sink, { chunkSize: 64, highWater: 128 });
    w.putBytes(new Uint8Array(64 * 4 + 10));
    await tick();
    equal(sink.chunks.length, 1, 'one write at a time');
    ok(w.needsDrain, 'more than highWater queued');
    let ready = false;
    void w.ready().then(() => (ready = true));
    await tick();
    equal(ready, false);
    sink.release(1);
    await tick();
    equal(ready, false, '192 bytes still wait');
    sink.release(1);
    await tick();
    equal(ready, true, 'ready once at most highWater bytes wait');
    equal(w.written, 128);
    equal(w.pending, 128 + 10, 'two chunks queued and 10 bytes in the open chunk');
    let flushed = false;
    void w.flush().then(() => (flushed = true));
    for (let i = 0; i < 6; i++) {
      sink.release();
      await tick();
    }
    ok(flushed, 'flush resolves when the sink has everything');
    equal(w.written, 64 * 4 + 10);
    equal(sink.chunks.reduce((n, c) => n + c.length, 0), 64 * 4 + 10);
  });

  it('keeps the first error; every later operation is a no-op', async () => {
    let calls = 0;
    const sink: ByteSink = {
      write: () => {
        calls++;
        return Promise.reject(calls === 1 ? new Error('peer went away') : new Error('second'));
      },
    };
    const w = new StreamWriter(sink, { chunkSize: 64 });
    w.putBytes(new Uint8Array(200));
    await w.flush();
    ok(w.error instanceof StreamIOError, 'an I/O error');
    ok(/peer went away/.test(w.error!.message), w.error!.message);
    const first = w.error;
    const before = w.transferred;
    w.putBe32(1);
    w.putBytes(new Uint8Array(500));
    await w.flush();
    equal(w.transferred, before, 'puts after the error do nothing');
    equal(calls, 1, 'nothing more reaches the sink');
    equal(await w.close(), first, 'close returns the first error');
    ok(w.rateLimitExceeded(), 'an errored stream is always over the limit');
    equal(await w.waitForRateLimit(), false, 'and never waits');
  });

  it('shutdown: writer and reader fail with an I/O error and release waiters', async () => {
    let shut = false;
    const sink = new GatedSink();
    (sink as ByteSink).shutdown = () => (shut = true);
    const w = new StreamWriter(sink, { chunkSize: 64, highWater: 64 });
    w.putBytes(new Uint8Array(64 * 3));
    const ready = w.ready();
    w.shutdown();
    await ready;
    ok(w.error instanceof StreamIOError);
    ok(shut, 'sink told');
    sink.release();
    await tick();
    equal(w.written, 64, 'the write in flight completed');
    ok(w.pending >= 0 && !w.needsDrain, 'queue accounting stays sane after the error');

    let cancelled = false;
    const r = new StreamReader({ read: () => new Promise<Uint8Array | null>(() => {}), cancel: () => (cancelled = true) });
    const pending = r.ensure(1);
    r.shutdown();
    const e = await rejects(pending);
    ok(e instanceof StreamIOError, `I/O error, got ${e}`);
    ok(cancelled);
  });

  it('a failing source is an I/O error', async () => {
    const r = new StreamReader({ read: () => Promise.reject(new Error('channel closed')) });
    const e = await rejects(r.readU8());
    ok(e instanceof StreamIOError && /channel closed/.test(e.message));
  });
});

describe('rate limit (per 100 ms window)', () => {
  it('is exceeded only past the window budget, and a new window starts after 100 ms', () => {
    const clock = new FakeClock();
    const w = new StreamWriter(new BufferSink(), { clock });
    w.setRateLimit(1_000_000);
    equal(w.rateLimitPerWindow, 100_000);
    w.putBytes(new Uint8Array(100_000));
    equal(w.rateLimitExceeded(), false, 'exactly the budget is allowed');
    w.putU8(0);
    equal(w.rateLimitExceeded(), true, 'one byte over');
    equal(w.rateLimitUsed, 100_001);
    clock.advance(99);
    equal(w.rateLimitExceeded(), true, 'still the same window at 99 ms');
    clock.advance(1);
    equal(w.rateLimitExceeded(), false, 'a new window at 100 ms');
    equal(w.rateLimitUsed, 0);
    w.putBytes(new Uint8Array(60_000));
    clock.advance(50);
    w.putBytes(new Uint8Array(40_001));
    equal(w.rateLimitExceeded(), true, 'bytes add up within a window');
  });

  it('0 means unlimited', () => {
    const clock = new FakeClock();
    const w = new StreamWriter(new BufferSink(), { clock });
    w.setRateLimit(0);
    w.putBytes(new Uint8Array(1 << 20));
    equal(w.rateLimitExceeded(), false);
  });

  it('waitForRateLimit sleeps to the end of the window', async () => {
    const clock = new FakeClock();
    const w = new StreamWriter(new BufferSink(), { clock });
    w.setRateLimit(10_000); // 1000 bytes per window
    clock.advance(30);
    w.resetRateLimit();
    w.putBytes(new Uint8Array(1001));
    clock.advance(40);
    let done: boolean | null = null;
    void w.waitForRateLimit().then((urgent) => (done = urgent));
    await tick();
    equal(clock.sleeping, 1, 'asleep');
    clock.advance(59);
    await tick();
    equal(done, null, 'not before the window ends');
    clock.advance(1);
    await tick();
    equal(done, false, 'woken by the window, not urgent');
    equal(w.rateLimitExceeded(), false, 'fresh window');
  });

  it('kick() ends a wait early and reports urgency', async () => {
    const clock = new FakeClock();
    const w = new StreamWriter(new BufferSink(), { clock });
    w.setRateLimit(10_000);
    w.putBytes(new Uint8Array(5000));
    const p = w.waitForRateLimit();
    await tick();
    w.kick();
    equal(await p, true, 'urgent');
    w.kick();
    equal(await w.waitForRateLimit(), true, 'a kick before the wait makes it return at once');
    const q = w.waitForRateLimit();
    await tick();
    equal(clock.sleeping, 2, 'the kick was consumed: the next wait sleeps (beside the first, abandoned sleep)');
    clock.advance(100);
    equal(await q, false);
  });

  it('does not wait when under the limit', async () => {
    const clock = new FakeClock();
    const w = new StreamWriter(new BufferSink(), { clock });
    w.setRateLimit(10_000);
    w.putBytes(new Uint8Array(10));
    equal(await w.waitForRateLimit(), false);
    equal(clock.sleeping, 0);
  });
});
