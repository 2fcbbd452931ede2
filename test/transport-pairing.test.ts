// Pairing, consent, ICE settings and tokens on their own: the MAC binds secret, both
// fingerprints and both nonces; consent's rules; ?ice= parsing; tokens round-trip and refuse
// damage; the certificate stays the same across loads (IndexedDB).

import { parseCommandLine } from '../src/command-line.js';
import { IncomingConsent } from '../src/transport/consent.js';
import { formatIceConfig, parseIceConfig } from '../src/transport/ice-config.js';
import { loadIdentity, normalizeSecret, sdpFingerprint } from '../src/transport/identity.js';
import { checkPairingMac, newNonce, pairingMac } from '../src/transport/pairing.js';
import { decodeToken, encodeToken } from '../src/transport/token.js';
import { deepEqual, equal, match, ok, rejects } from './helpers/assert.js';

const t = { sourceFp: 'AA:01', destFp: 'BB:02', sourceNonce: newNonce(), destNonce: newNonce() };

describe('transport: pairing', () => {
  it('a MAC holds only for the same secret, fingerprints, nonces and role', async () => {
    const mac = await pairingMac('class-42', t, 'source');
    ok(await checkPairingMac('class-42', t, 'source', mac));
    equal(await checkPairingMac('class-43', t, 'source', mac), false, 'other secret');
    equal(await checkPairingMac('class-42', { ...t, destFp: 'CC:03' }, 'source', mac), false, 'a man in the middle sees other fingerprints');
    equal(await checkPairingMac('class-42', { ...t, destNonce: newNonce() }, 'source', mac), false, 'replayed into another connection');
    equal(await checkPairingMac('class-42', t, 'destination', mac), false, 'reflected back');
    equal(await checkPairingMac('class-42', t, 'source', 'not base64!'), false);
  });

  it('pairing codes are typed without case, spaces or dashes', async () => {
    equal(normalizeSecret('ABCD-ef23'), 'abcdef23');
    equal(normalizeSecret(' abcd ef23 '), 'abcdef23');
    equal(normalizeSecret('Class-42-Secret'), 'Class-42-Secret', 'a longer secret is taken as written');
    const mac = await pairingMac('abcd-ef23', t, 'source');
    ok(await checkPairingMac('ABCDEF23', t, 'source', mac));
  });

  it('reads the DTLS fingerprint of an SDP; the certificate is the same on the next load', async () => {
    equal(sdpFingerprint('v=0\r\na=fingerprint:sha-256 ab:CD:01\r\n'), 'AB:CD:01');
    equal(sdpFingerprint('v=0\r\n'), '');
    const id = await loadIdentity();
    match(id.fingerprint, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    match(id.sas, /^[a-z2-9]{4}-[a-z2-9]{4}$/);
    ok(id.certificate);
  });

  it('consent: tls-creds rules alone; else the code, and no secret only from this browser once agreed', () => {
    const c = new IncomingConsent(false);
    deepEqual(c.secrets('local', ''), [c.code]);
    deepEqual(c.secrets('relay', ''), [c.code]);
    deepEqual(c.secrets('local', 's3'), ['s3']);
    c.agree();
    deepEqual(c.secrets('local', ''), ['', c.code]);
    deepEqual(c.secrets('relay', ''), [c.code], 'another browser must always pair');
    match(c.refusal('relay', true, ''), /^TLS handshake failed: a peer in another browser must pair/);
    match(c.refusal('local', false, 's3'), /^TLS handshake failed: the pairing secret \(tls-creds\) does not match$/);
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
