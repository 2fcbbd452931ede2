// Migration URI parsing: what each URI means, and QEMU's error texts for the rest.

import { QmpError } from '../src/qapi/qmp-error.js';
import { formatMigrationUri, parseIncomingUri, parseOutgoingUri } from '../src/transport/uri.js';
import { deepEqual, equal, ok, throws } from './helpers/assert.js';

function qmpError(fn: () => unknown): QmpError {
  const e = throws(fn);
  ok(e instanceof QmpError, 'a QmpError');
  equal(e.errorClass, 'GenericError');
  return e;
}

describe('transport: migration URIs', () => {
  it('parses outgoing URIs', () => {
    deepEqual(parseOutgoingUri('webrtc:k3f9x2ab'), { kind: 'webrtc', uri: 'webrtc:k3f9x2ab', peer: 'k3f9x2ab' });
    deepEqual(parseOutgoingUri('loopback:t1'), { kind: 'loopback', uri: 'loopback:t1', name: 't1' });
    deepEqual(parseOutgoingUri('idb:before upgrade'), { kind: 'idb', uri: 'idb:before upgrade', name: 'before upgrade' });
    deepEqual(parseOutgoingUri('file:snap.qemu'), { kind: 'file', uri: 'file:snap.qemu', name: 'snap.qemu' });
    // Only the first colon separates the protocol.
    deepEqual(parseOutgoingUri('idb:a:b'), { kind: 'idb', uri: 'idb:a:b', name: 'a:b' });
  });

  it('parses incoming URIs, including webrtc: (any peer) and defer', () => {
    deepEqual(parseIncomingUri('webrtc:'), { kind: 'webrtc', uri: 'webrtc:', peer: null });
    deepEqual(parseIncomingUri('webrtc:abc'), { kind: 'webrtc', uri: 'webrtc:abc', peer: 'abc' });
    deepEqual(parseIncomingUri('defer'), { kind: 'defer', uri: 'defer' });
    deepEqual(parseIncomingUri('loopback:x'), { kind: 'loopback', uri: 'loopback:x', name: 'x' });
    deepEqual(parseIncomingUri('idb:s'), { kind: 'idb', uri: 'idb:s', name: 's' });
    deepEqual(parseIncomingUri('file:s.qemu'), { kind: 'file', uri: 'file:s.qemu', name: 's.qemu' });
  });

  it("rejects an unknown outgoing protocol with QEMU's qmp_migrate text", () => {
    for (const uri of ['tcp:127.0.0.1:4444', 'exec:cat', 'unix:/tmp/s', 'rdma:x', 'WEBRTC:abc', 'nonsense', '', ':x', 'defer']) {
      equal(qmpError(() => parseOutgoingUri(uri)).desc, "Parameter 'uri' expects a valid migration protocol", uri);
    }
  });

  it("rejects an unknown incoming protocol with QEMU's qemu_start_incoming_migration text", () => {
    equal(qmpError(() => parseIncomingUri('tcp:0:4444')).desc, 'unknown migration protocol: tcp:0:4444');
    equal(qmpError(() => parseIncomingUri('Defer')).desc, 'unknown migration protocol: Defer');
    equal(qmpError(() => parseIncomingUri('')).desc, 'unknown migration protocol: ');
  });

  it('rejects a known protocol with nothing after it', () => {
    equal(qmpError(() => parseOutgoingUri('webrtc:')).desc, "Parameter 'uri' expects a peer id after 'webrtc:'");
    equal(qmpError(() => parseOutgoingUri('webrtc:a b')).desc, "Parameter 'uri' expects a peer id after 'webrtc:'");
    equal(qmpError(() => parseOutgoingUri('loopback:')).desc, "Parameter 'uri' expects a name after 'loopback:'");
    equal(qmpError(() => parseIncomingUri('idb:')).desc, "Parameter 'uri' expects a snapshot name after 'idb:'");
    equal(qmpError(() => parseOutgoingUri('file:')).desc, "Parameter 'uri' expects a file name after 'file:'");
  });

  it('rejects a non-string uri with QEMU\'s type error', () => {
    equal(qmpError(() => parseOutgoingUri(42)).desc, "Invalid parameter type for 'uri', expected: string");
  });

  it('formats back what it parsed', () => {
    for (const uri of ['webrtc:abc', 'loopback:n', 'idb:x y', 'file:f.bin']) equal(formatMigrationUri(parseOutgoingUri(uri)), uri);
    for (const uri of ['webrtc:', 'defer']) equal(formatMigrationUri(parseIncomingUri(uri)), uri);
  });
});
