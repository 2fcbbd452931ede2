// DTLS certificate fingerprints: the one a session description may carry, and the ones a
// connection really verified. Pairing binds the latter: an SDP is only what the signaling carried
// (a relay, a token, a page that saw it), and Chromium accepts an SDP with several fingerprint
// lines (a session-level one beside the media-level one, two sha-256 lines, an extra sha-512
// line). Whoever wrote such an SDP could show one certificate in the line a reader looks at and
// have DTLS check another. So an SDP with anything but exactly one sha-256 line is refused, and
// the peer's fingerprint is taken from the certificate the DTLS transport received.

/** 'AB:CD:…' from digest bytes, as `a=fingerprint:sha-256` writes it (upper case). */
export function formatFingerprint(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** The sha-256 fingerprint of one of this browser's certificates, upper case ('' if it has none). */
export function fingerprintOf(cert: RTCCertificate): string {
  return (cert.getFingerprints().find((f) => f.algorithm === 'sha-256')?.value ?? '').toUpperCase();
}

const FINGERPRINT_LINE = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/gm;

/**
 * Why an SDP's DTLS fingerprint is not exactly one `a=fingerprint:sha-256` line (at session or
 * media level, counted together), or null when it is.
 */
export function sdpFingerprintProblem(sdp: string | undefined | null): string | null {
  const lines = [...(sdp ?? '').matchAll(FINGERPRINT_LINE)];
  if (lines.length === 0) return 'the session description carries no DTLS fingerprint';
  if (lines.length > 1) return `the session description carries ${lines.length} DTLS fingerprints (${lines.map((m) => m[1]).join(', ')}); only one sha-256 fingerprint is accepted`;
  const alg = lines[0]![1]!.toLowerCase();
  if (alg !== 'sha-256') return `the session description carries a ${alg} DTLS fingerprint; only one sha-256 fingerprint is accepted`;
  return null;
}

/** The one sha-256 fingerprint of an SDP (upper case), or '' if it has not exactly one. */
export function sdpFingerprint(sdp: string | undefined | null): string {
  if (sdpFingerprintProblem(sdp)) return '';
  FINGERPRINT_LINE.lastIndex = 0;
  const m = FINGERPRINT_LINE.exec(sdp ?? '');
  FINGERPRINT_LINE.lastIndex = 0;
  return m ? m[2]!.toUpperCase() : '';
}

/**
 * The sha-256 fingerprint of the certificate the peer presented in the DTLS handshake of this
 * connection (its first, the leaf), or '' when there is none yet (not connected).
 */
export async function verifiedRemoteFingerprint(pc: RTCPeerConnection): Promise<string> {
  const certs = pc.sctp?.transport.getRemoteCertificates() ?? [];
  if (!certs.length) return '';
  return formatFingerprint(new Uint8Array(await crypto.subtle.digest('SHA-256', certs[0]!)));
}
