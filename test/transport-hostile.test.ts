// A hostile page on the same origin: it can post anything on the BroadcastChannel and run its own
// WebRTC peers. Each attack fails — injection into a waiting tab, taking over a peer id, forged
// bye and reject, a flood of offers, malformed messages — and a transfer in progress completes.

import { IncomingConsent } from '../src/transport/consent.js';
import { CHANNEL } from '../src/transport/routes.js';
import { Signaling } from '../src/transport/signaling.js';
import { acceptFromPeer, connectToPeer, type AcceptOptions } from '../src/transport/webrtc.js';
import { equal, eventually, match, ok, rejects } from './helpers/assert.js';
import { EchoWorker } from './fixtures/transport-worker-client.js';

const MiB = 1 << 20;
const APP = { app: 'tabmig', v: 1 };
let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

function world(names: string[]) {
  const channelName = `tabmig-hostile-${Math.random().toString(36).slice(2)}`;
  const sigs = names.map((name) => new Signaling({ channelName, storage: null, name, queryIntervalMs: 250 }));
  const evil = new BroadcastChannel(channelName);
  const notes: string[] = [];
  for (const s of sigs) s.addEventListener('note', (e) => notes.push((e as CustomEvent<string>).detail));
  cleanup.push(() => {
    sigs.forEach((s) => s.close());
    evil.close();
  });
  return { sigs, evil, notes };
}

function worker(): EchoWorker {
  const w = new EchoWorker();
  cleanup.push(() => w.terminate());
  return w;
}

const routes = [{ id: CHANNEL.main }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The hostile page signs too — with a key of its own, which is all it can have. */
const b64 = (b: ArrayBuffer) => btoa(String.fromCharCode(...new Uint8Array(b)));
async function evilPub(): Promise<string> {
  return b64(await crypto.subtle.exportKey('raw', (await evilExportable).publicKey));
}
const evilExportable = crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
async function signed(m: Record<string, unknown>): Promise<Record<string, unknown>> {
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, (await evilExportable).privateKey, new TextEncoder().encode(JSON.stringify(m)));
  return { ...m, sig: b64(sig) };
}

/** The destination's rules as the migration service applies them (tls-creds '' unless given). */
function destRules(consent: IncomingConsent, tlsCreds = ''): Pick<AcceptOptions, 'pairing'> {
  return { pairing: consent.policy(() => tlsCreds) };
}

describe('hostile tab', () => {
  it('cannot inject a guest into a tab that waits with tls-creds; the tab keeps waiting for the paired source', async () => {
    const { sigs } = world(['source', 'dest', 'evil']);
    const [a, b, evil] = sigs as [Signaling, Signaling, Signaling];
    const refused: string[] = [];
    const incoming = acceptFromPeer(b, { routes, ...destRules(new IncomingConsent(true), 'class-secret'), onRefused: (_p, r) => refused.push(r) });
    await eventually(() => evil.peer(b.id)?.incoming, 5000, 'evil sees B waiting');
    const e = await rejects(connectToPeer(evil, b.id, { routes }));
    match((e as Error).message, /refused by peer: TLS handshake failed: the destination requires the pairing secret/);
    const e2 = await rejects(connectToPeer(evil, b.id, { routes, secret: 'guess' }));
    match((e2 as Error).message, /TLS handshake failed: the pairing secret \(tls-creds\) does not match/);
    await eventually(() => refused.length === 2, 3000, 'B noted both refusals');
    match(refused[0]!, /TLS handshake failed/);
    ok(b.incoming, 'B still waits');
    const la = await connectToPeer(a, b.id, { routes, secret: 'class-secret' });
    const lb = await incoming.connection;
    equal(lb.peerId, a.id);
    await la.close();
  });

  it('cannot inject into a tab a link opened as ?incoming=webrtc: until its person agrees', async () => {
    const { sigs } = world(['source', 'dest']);
    const [a, b] = sigs as [Signaling, Signaling];
    const consent = new IncomingConsent(false);
    const incoming = acceptFromPeer(b, { routes, ...destRules(consent) });
    await eventually(() => a.peer(b.id)?.incoming, 5000, 'B waiting');
    const e = await rejects(connectToPeer(a, b.id, { routes }));
    match((e as Error).message, /has not agreed to receive a migration/);
    // The pairing code it shows is consent enough …
    const la = await connectToPeer(a, b.id, { routes, secret: consent.code.toUpperCase() });
    equal((await incoming.connection).peerId, a.id);
    await la.close();
    // … and so is the button, once.
    const again = acceptFromPeer(b, { routes, ...destRules(consent) });
    consent.agree();
    const la2 = await connectToPeer(a, b.id, { routes });
    equal((await again.connection).peerId, a.id);
    await la2.close();
  });

  it("cannot take over a peer id: the holder keeps it, and a source reaches the real tab", async () => {
    const { sigs, evil, notes } = world(['source', 'dest']);
    const [a, b] = sigs as [Signaling, Signaling];
    await eventually(() => a.peer(b.id), 5000, 'discovery');
    await sleep(600); // both settled
    const bId = b.id;
    const realInstance = b.instance;
    const pub = await evilPub();
    for (let i = 0; i < 5; i++) {
      // Unsigned, signed as itself with B's instance, and signed as a new instance of B's id.
      evil.postMessage({ ...APP, type: 'announce', peer: { id: bId, name: 'evil', incoming: true, incomingFrom: null, instance: 'evil-instance', since: 0, fp: 'AA:BB' } });
      evil.postMessage(await signed({ ...APP, type: 'announce', peer: { id: bId, name: 'evil', incoming: true, incomingFrom: null, instance: realInstance, since: 0, fp: 'AA:BB', pub } }));
      evil.postMessage(await signed({ ...APP, type: 'announce', peer: { id: bId, name: 'evil', incoming: true, incomingFrom: null, instance: 'evil-instance', since: 0, fp: 'AA:BB', pub } }));
      await sleep(50);
    }
    await sleep(300);
    equal(b.id, bId, 'B did not give up its id');
    equal(a.peer(bId)?.instance, realInstance, "A still knows B's real instance");
    equal(a.peer(bId)?.name, 'dest');
    ok(notes.some((n) => /claims/.test(n)), 'takeover noted in the event log');
    ok(notes.some((n) => /without its signature/.test(n)), 'forged presence noted in the event log');
    const incoming = acceptFromPeer(b, { routes });
    const la = await connectToPeer(a, bId, { routes });
    equal((await incoming.connection).peerId, a.id);
    await la.close();
  });

  it('forged bye, reject and answers do not end a transfer in progress; it completes intact', async () => {
    const { sigs, evil, notes } = world(['source', 'dest']);
    const [a, b] = sigs as [Signaling, Signaling];
    const wa = worker();
    const wb = worker();
    const incoming = acceptFromPeer(b, { routes: [{ id: CHANNEL.main, to: wb.worker }] });
    await eventually(() => a.peer(b.id)?.incoming, 5000, 'B waiting');
    const la = await connectToPeer(a, b.id, { routes: [{ id: CHANNEL.main, to: wa.worker }] });
    const lb = await incoming.connection;
    cleanup.push(() => void la.close());
    await wa.channels(1);
    await wb.channels(1);
    let closed = false;
    void la.closed.then(() => (closed = true));
    void lb.closed.then(() => (closed = true));
    const receiving = wb.call({ cmd: 'recv', id: CHANNEL.main });
    const sending = wa.call({ cmd: 'send', id: CHANNEL.main, bytes: 16 * MiB, close: true }, 120000);
    // While it runs: a bye for each side, rejects and a bogus answer for the connection.
    const conn = la.connection;
    for (const [who, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const m of [
        { ...APP, type: 'bye', from: who.id, instance: who.instance, leave: 'guessed' },
        { ...APP, type: 'relay', from: who.id, to: to.id, msg: { from: who.id, conn, kind: 'reject', reason: 'forged' } },
        { ...APP, type: 'relay', from: who.id, to: to.id, msg: { from: who.id, conn, kind: 'signal', data: { type: 'answer', sdp: 'v=0\r\n' } } },
      ]) {
        evil.postMessage(m);
        evil.postMessage(await signed(m));
      }
    }
    const sent = await sending;
    ok(sent.ok, JSON.stringify(sent));
    const got = await receiving;
    equal(got.got, 16 * MiB);
    equal(got.bad, -1);
    equal(closed, false, 'neither link ended');
    ok(a.peer(b.id) && b.peer(a.id), 'both still listed after forged byes');
    ok(notes.some((n) => /without its signature/.test(n)), 'forgeries noted');
    // A bye with the real token still counts.
    b.close();
    await eventually(() => !a.peer(b.id), 3000, 'real bye handled');
  });

  it('a flood of offers is capped; the real source still connects and its transfer completes', async () => {
    const { sigs, evil, notes } = world(['source', 'dest']);
    const [a, b] = sigs as [Signaling, Signaling];
    const wa = worker();
    const wb = worker();
    const incoming = acceptFromPeer(b, { routes: [{ id: CHANNEL.main, to: wb.worker }] });
    await eventually(() => a.peer(b.id)?.incoming, 5000, 'B waiting');
    // 400 bogus offers from made-up ids (a real offer's SDP would be no better without DTLS).
    const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' };
    for (let i = 0; i < 400; i++) {
      const from = `evil${i}`;
      evil.postMessage({ ...APP, type: 'relay', from, to: b.id, msg: { from, conn: `c${i}`, kind: 'signal', data: offer } });
    }
    // And 400 more from one id that did announce itself.
    evil.postMessage(await signed({ ...APP, type: 'announce', peer: { id: 'evilpeer', name: 'evil', incoming: false, incomingFrom: null, instance: 'ev', since: 0, fp: '', pub: await evilPub() } }));
    await sleep(100);
    for (let i = 0; i < 400; i++) {
      evil.postMessage(await signed({ ...APP, type: 'relay', from: 'evilpeer', to: b.id, msg: { from: 'evilpeer', conn: `d${i}`, kind: 'signal', data: offer } }));
    }
    await sleep(300);
    ok(notes.some((n) => /as 'evil\d+' without its signature dropped/.test(n)), `made-up senders noted: ${notes.join(' | ')}`);
    ok(notes.some((n) => /a flood of messages for this tab \(from evilpeer\)|too many connection attempts/.test(n)), `flood noted: ${notes.join(' | ')}`);
    const la = await connectToPeer(a, b.id, { routes: [{ id: CHANNEL.main, to: wa.worker }], timeoutMs: 40000 });
    await incoming.connection;
    await wa.channels(1);
    await wb.channels(1);
    const receiving = wb.call({ cmd: 'recv', id: CHANNEL.main });
    ok((await wa.call({ cmd: 'send', id: CHANNEL.main, bytes: 4 * MiB, close: true })).ok);
    equal((await receiving).got, 4 * MiB);
    await la.close();
  });

  it('stalled offers from many peers cannot keep a real source out, and one peer holds one attempt', async () => {
    const { sigs, notes } = world(['source', 'dest', ...Array.from({ length: 9 }, (_, i) => `staller${i}`)]);
    const [a, b, ...stallers] = sigs as [Signaling, Signaling, ...Signaling[]];
    const refused: string[] = [];
    const incoming = acceptFromPeer(b, { routes, maxPendingAttempts: 8, evictAfterMs: 1000, onRefused: (p, r) => refused.push(`${p}: ${r}`) });
    await eventually(() => stallers.every((s) => s.peer(b.id)?.incoming) && a.peer(b.id)?.incoming, 5000, 'all see B waiting');
    // Each staller sends a real offer (its own connection, one sha-256 fingerprint) and then nothing:
    // the destination answers and waits for an ICE and DTLS handshake that never comes.
    const pcs: RTCPeerConnection[] = [];
    cleanup.push(() => pcs.forEach((pc) => pc.close()));
    const stall = async (s: Signaling, conn: string) => {
      const pc = new RTCPeerConnection();
      pcs.push(pc);
      pc.createDataChannel('x');
      await pc.setLocalDescription();
      s.sendSignal(b.id, conn, { type: 'offer', sdp: pc.localDescription!.sdp });
    };
    for (let i = 0; i < 8; i++) await stall(stallers[i]!, `s${i}`);
    for (let i = 0; i < 5; i++) await stall(stallers[0]!, `again${i}`);
    await eventually(() => notes.some((n) => /another offer from .* while its attempt is in progress; dropped/.test(n)), 3000, 'one attempt per peer');
    // The ninth is turned away at once while every attempt is young …
    await stall(stallers[8]!, 'late');
    await eventually(() => notes.some((n) => /too many connection attempts at once/.test(n)), 3000, 'refused while all are young');
    // … and once they are old enough, a real source takes the place of the oldest.
    await sleep(1200);
    const la = await connectToPeer(a, b.id, { routes, timeoutMs: 30000 });
    equal((await incoming.connection).peerId, a.id);
    ok(refused.some((r) => r.startsWith(`${stallers[0]!.id}: this tab has too many connection attempts in progress; yours did not pair in time`)), `the oldest stalled attempt gave way: ${refused.join(' | ')}`);
    await la.close();
  });

  it('malformed messages are dropped with a note, and signaling goes on', async () => {
    const { sigs, evil, notes } = world(['source', 'dest']);
    const [a, b] = sigs as [Signaling, Signaling];
    await eventually(() => a.peer(b.id), 5000, 'discovery');
    const junk: unknown[] = [
      null,
      'hello',
      42,
      { ...APP },
      { ...APP, type: 'announce', peer: null },
      { ...APP, type: 'announce', peer: { id: 7 } },
      { ...APP, type: 'announce', peer: { id: 'x'.repeat(500), name: 'n', incoming: false, incomingFrom: null, instance: 'i', since: 0 } },
      { ...APP, type: 'relay', from: 'evil', to: b.id, msg: 5 },
      { ...APP, type: 'relay', from: 'evil', to: b.id, msg: { from: 'someone-else', conn: 'c', kind: 'signal' } },
      { ...APP, type: 'relay', from: 'evil', to: b.id, msg: { from: 'evil', conn: 'c', kind: 'explode' } },
      { ...APP, type: 'nonsense' },
    ];
    for (const m of junk) evil.postMessage(m);
    await eventually(() => notes.some((n) => /malformed/.test(n)), 3000, 'noted');
    equal(a.peers.length, 1, 'nothing new listed');
    const incoming = acceptFromPeer(b, { routes });
    const la = await connectToPeer(a, b.id, { routes });
    equal((await incoming.connection).peerId, a.id);
    await la.close();
  });
});
