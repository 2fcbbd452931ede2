// Pairing, consent, ICE settings and tokens on their own: CPace against the draft's own test
// vectors; the pairing handshake binds secret and both fingerprints, and a wrong guess is judged
// by the destination; SDPs with anything but one sha-256 fingerprint are refused; consent's rules
// and the code that changes after a failed attempt; ?ice= parsing; tokens round-trip and refuse
// damage; the certificate stays the same across loads (IndexedDB).

import { parseCommandLine } from '../src/command-line.js';
import { IncomingConsent } from '../src/transport/consent.js';
import { sdpFingerprint, sdpFingerprintProblem } from '../src/transport/dtls-fingerprint.js';
import { formatIceConfig, parseIceConfig } from '../src/transport/ice-config.js';
import { loadIdentity, normalizeSecret } from '../src/transport/identity.js';
import { CpaceRun, calculateGenerator, generatorString, intermediateSessionKey, scalarFromLE } from '../src/transport/pake.js';
import { Pairing, type MigrationRole, type PairingMessage, type PairingPolicy } from '../src/transport/pairing.js';
import type { PeerVia } from '../src/transport/signaling.js';
import { decodeToken, encodeToken } from '../src/transport/token.js';
import { deepEqual, equal, match, ok, rejects } from './helpers/assert.js';

const hex = (h: string) => Uint8Array.from(h.replace(/\s+/g, '').match(/../g)!.map((x) => parseInt(x, 16)));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Two sides of one pairing, wired to each other in memory; `tamper` may rewrite what the source sends. */
function pair(opts: {
  sourceSecret: string;
  policy: PairingPolicy;
  via?: PeerVia;
  fps?: { source: [string, string]; destination: [string, string] };
  tamper?: (m: PairingMessage) => PairingMessage;
}) {
  const fps = opts.fps ?? { source: ['AA:01', 'BB:02'], destination: ['BB:02', 'AA:01'] };
  const sent: Record<MigrationRole, PairingMessage[]> = { source: [], destination: [] };
  const sides = {} as Record<MigrationRole, Pairing>;
  for (const role of ['source', 'destination'] as const) {
    const [mine, theirs] = fps[role];
    sides[role] = new Pairing({
      role,
      via: opts.via ?? 'relay',
      secret: role === 'source' ? opts.sourceSecret : undefined,
      policy: role === 'destination' ? opts.policy : undefined,
      fingerprints: async () => ({ mine, theirs }),
      send: (m) => {
        sent[role].push(m);
        const out = role === 'source' && opts.tamper ? opts.tamper(m) : m;
        // Asynchronously, as a data channel delivers.
        setTimeout(() => sides[role === 'source' ? 'destination' : 'source'].receive(out), 0);
      },
    });
  }
  sides.source.start();
  sides.destination.start();
  return { ...sides, sent };
}

const settled = (p: Promise<void>) => p.then(() => 'ok', (e: Error) => e.message);

describe('transport: pairing', () => {
  it("CPace over ristretto255/SHA-512 gives the draft's test vectors", async () => {
    const prs = utf8('Password');
    const ci = hex('0b415f696e69746961746f720b425f726573706f6e646572');
    const sid = hex('7e4b4791d6a8ef019b936c79fb7f2c57');
    const genStr = generatorString(prs, ci, sid);
    equal(genStr.length, 170);
    match(toHex(genStr), /^11435061636552697374726574746f3235350850617373776f726464(00){100}180b415f696e69746961746f720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f2c57$/);
    equal(toHex((await calculateGenerator(prs, ci, sid)).toBytes()), '222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56');
    const ya = scalarFromLE(hex('da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08'));
    const yb = scalarFromLE(hex('d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d'));
    const a = await CpaceRun.start(prs, ci, sid, ya);
    const b = await CpaceRun.start(prs, ci, sid, yb);
    equal(toHex(a.share), 'd6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157');
    equal(toHex(b.share), '3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258');
    const k = a.secretPoint(b.share)!;
    equal(toHex(k), '80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f');
    equal(toHex(b.secretPoint(a.share)!), toHex(k));
    const isk = await intermediateSessionKey(sid, k, a.share, utf8('ADa'), b.share, utf8('ADb'));
    equal(toHex(isk), 'b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dcae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c3fa2068af7900447');
    equal(a.secretPoint(new Uint8Array(32)), null, 'the identity is refused');
    equal(a.secretPoint(new Uint8Array(32).fill(0xff)), null, 'a string that is no element is refused');
  });

  it('pairs on the same secret and both fingerprints; a wrong guess is refused by the destination and counted', async () => {
    const consent = new IncomingConsent(false);
    const policy = consent.policy(() => '');
    const good = pair({ sourceSecret: consent.code.toUpperCase(), policy });
    equal(await settled(good.source.done), 'ok');
    equal(await settled(good.destination.done), 'ok');
    equal(consent.failedAttempts, 0);

    const code = consent.code;
    const bad = pair({ sourceSecret: 'abcd-2345', policy });
    equal(await settled(bad.destination.done), 'TLS handshake failed: the pairing code or secret (tls-creds) does not match');
    equal(consent.failedAttempts, 1, 'the failed attempt is counted');
    ok(consent.code !== code, 'and the guessed code is replaced');
    // The source learns only that its one guess was wrong: it has no tag from the destination.
    equal(bad.sent.destination.filter((m) => m.t === 'pake-confirm').length, 0);
    const old = pair({ sourceSecret: code, policy });
    equal(await settled(old.destination.done), 'TLS handshake failed: the pairing code or secret (tls-creds) does not match', 'the old code no longer pairs');
  });

  it('fingerprints that differ (someone in the middle of the signaling) never pair, whatever the secret', async () => {
    const policy = new IncomingConsent(true).policy(() => 'class-42');
    const mitm = pair({ sourceSecret: 'class-42', policy, fps: { source: ['AA:01', 'EE:66'], destination: ['BB:02', 'EE:77'] } });
    match(await settled(mitm.destination.done), /^TLS handshake failed: the pairing secret \(tls-creds\) does not match$/);
  });

  it('a source without a secret is refused up front where one is needed; a malformed or invalid share fails the pairing', async () => {
    const consent = new IncomingConsent(true);
    const none = pair({ sourceSecret: '', policy: consent.policy(() => '') });
    match(await settled(none.destination.done), /^TLS handshake failed: a peer in another browser must pair/);
    equal(consent.failedAttempts, 0, 'no guess was made');
    const local = pair({ sourceSecret: '', policy: consent.policy(() => ''), via: 'local' });
    equal(await settled(local.destination.done), 'ok', 'a tab of this browser that agreed needs no secret');
    const identity = pair({ sourceSecret: 'x', policy: consent.policy(() => 'x'), tamper: (m) => (m.t === 'pake' ? { ...m, share: btoa(String.fromCharCode(...new Uint8Array(32))) } : m) });
    equal(await settled(identity.destination.done), 'TLS handshake failed: the peer sent an invalid key share');
    const junk = pair({ sourceSecret: 'x', policy: consent.policy(() => 'x'), tamper: (m) => (m.t === 'auth' ? { t: 'auth', nonce: 'short' } : m) });
    equal(await settled(junk.destination.done), 'TLS handshake failed: malformed pairing message');
  });

  it('refuses a session description with two fingerprints, another hash, or none', () => {
    const fp = 'AB:CD:01';
    const one = `v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:sha-256 ab:CD:01\r\n`;
    equal(sdpFingerprintProblem(one), null);
    equal(sdpFingerprint(one), fp);
    const sessionAndMedia = `v=0\r\na=fingerprint:sha-256 EE:EE:EE\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:sha-256 AB:CD:01\r\n`;
    match(sdpFingerprintProblem(sessionAndMedia)!, /carries 2 DTLS fingerprints \(sha-256, sha-256\); only one sha-256 fingerprint is accepted/);
    equal(sdpFingerprint(sessionAndMedia), '');
    match(sdpFingerprintProblem(`${one}a=fingerprint:sha-512 00:11\r\n`)!, /carries 2 DTLS fingerprints \(sha-256, sha-512\)/);
    match(sdpFingerprintProblem('v=0\r\na=fingerprint:sha-1 00:11\r\n')!, /carries a sha-1 DTLS fingerprint/);
    match(sdpFingerprintProblem('v=0\r\n')!, /carries no DTLS fingerprint/);
  });

  it('pairing codes are typed without case, spaces or dashes; the certificate is the same on the next load', async () => {
    equal(normalizeSecret('ABCD-ef23'), 'abcdef23');
    equal(normalizeSecret(' abcd ef23 '), 'abcdef23');
    equal(normalizeSecret('Class-42-Secret'), 'Class-42-Secret', 'a longer secret is taken as written');
    const id = await loadIdentity();
    match(id.fingerprint, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    match(id.sas, /^[a-z2-9]{4}-[a-z2-9]{4}$/);
    ok(id.certificate);
  });

  it('consent: tls-creds rules alone; else the code, and no secret only from this browser once agreed', () => {
    const c = new IncomingConsent(false);
    deepEqual(c.expect('local', ''), { secret: c.code, allowNone: false });
    deepEqual(c.expect('relay', ''), { secret: c.code, allowNone: false });
    deepEqual(c.expect('local', 's3'), { secret: 's3', allowNone: false });
    c.agree();
    deepEqual(c.expect('local', ''), { secret: c.code, allowNone: true });
    deepEqual(c.expect('relay', ''), { secret: c.code, allowNone: false }, 'another browser must always pair');
    match(c.refusal('relay', true, ''), /^TLS handshake failed: a peer in another browser must pair/);
    match(c.refusal('local', false, 's3'), /^TLS handshake failed: the pairing secret \(tls-creds\) does not match$/);
    const code = c.code;
    c.failedGuess('s3');
    equal(c.code, code, 'a failed tls-creds attempt leaves the code alone');
    equal(c.failedAttempts, 1, 'but is counted');
  });

  it('parses ?ice= (STUN, TURN with credentials, relay-only) and the page options', () => {
    const c = parseIceConfig('stun:127.0.0.1:3478, turn:u%40x:p%3Aw@127.0.0.1:3478?transport=udp, relay');
    deepEqual(c, {
      iceServers: [{ urls: 'stun:127.0.0.1:3478' }, { urls: 'turn:127.0.0.1:3478?transport=udp', username: 'u@x', credential: 'p:w' }],
      iceTransportPolicy: 'relay',
    });
    deepEqual(parseIceConfig(formatIceConfig(c)), c, 'round trip');
    let e: unknown = null;
    try {
      parseIceConfig('relay,stun:h:1');
    } catch (x) {
      e = x;
    }
    match((e as Error).message, /needs a TURN server/);
    const cl = parseCommandLine('?room=class-7b&relay=off&ice=stun:127.0.0.1:3478');
    equal(cl.room, 'class-7b');
    equal(cl.relay, false);
    equal(cl.ice?.iceServers.length, 1);
    let bad: unknown = null;
    try {
      parseCommandLine('?room=no spaces!');
    } catch (x) {
      bad = x;
    }
    match((bad as Error).message, /^room=no spaces!: a room name/);
  });

  it('tokens round-trip, and a damaged or foreign one is refused', async () => {
    const body = { v: 1 as const, kind: 'offer' as const, from: 'abcd2345', name: 'Tab', peer: 'tok-abcd2345', conn: 'c1', signals: [{ type: 'offer', sdp: 'v=0\r\n'.repeat(50) }] };
    const text = await encodeToken(body);
    match(text, /^tabmig1\.[A-Za-z0-9_-]+$/);
    ok(text.length < 600, `compact (${text.length} chars)`);
    deepEqual(await decodeToken(` ${text.slice(0, 40)}\n${text.slice(40)} `), body, 'line breaks from a chat are fine');
    match(((await rejects(decodeToken(text.slice(0, -12)))) as Error).message, /damaged/);
    match(((await rejects(decodeToken('hello'))) as Error).message, /not a tabmig token/);
    const evil = await encodeToken({ ...body, peer: '../../x' });
    match(((await rejects(decodeToken(evil))) as Error).message, /malformed/);
  });
});
