// The stream layer's failure domains, one Error subclass each (msgpack's DecodeError style):
//  - StreamFormatError: the bytes are there but wrong (bad magic, unknown section, bad length, ...);
//  - StreamEndError: the bytes stopped before the stream said they would (truncated, peer gone);
//  - StreamIOError: the channel under the stream failed or was shut down.
// Messages carry QEMU's wording where QEMU has one, so they can be shown to a user as they are.

/** Machine-readable reason for a StreamFormatError, so callers and tests need not match on text. */
export type StreamFormatCode =
  | 'bad-magic'
  | 'bad-version'
  | 'obsolete-version'
  | 'no-configuration'
  | 'machine-mismatch'
  | 'unknown-section-type'
  | 'unknown-section'
  | 'unknown-section-id'
  | 'bad-section-name'
  | 'version-too-new'
  | 'version-too-old'
  | 'missing-footer'
  | 'footer-mismatch'
  | 'unknown-subsection'
  | 'bad-field'
  | 'unknown-command'
  | 'bad-command-length'
  | 'bad-command'
  | 'packaged-too-large'
  | 'unknown-ram-flags'
  | 'bad-ram-flags'
  | 'ram-continue-without-block'
  | 'unknown-ramblock'
  | 'ram-size-mismatch'
  | 'ram-total-mismatch'
  | 'illegal-ram-offset'
  | 'unexpected-compressed-page'
  | 'bad-compressed-length'
  | 'bad-xbzrle'
  | 'bad-rp-message'
  | 'bad-rp-length'
  | 'misaligned-page-request'
  | 'bad-bitmap'
  | 'bad-vmdescription'
  | 'too-large'
  | 'bad-value';

export class StreamFormatError extends Error {
  override name = 'StreamFormatError';
  constructor(
    readonly code: StreamFormatCode,
    message: string,
  ) {
    super(message);
  }
}

export class StreamEndError extends Error {
  override name = 'StreamEndError';
}

export class StreamIOError extends Error {
  override name = 'StreamIOError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** True for the errors a malformed or cut-off stream may produce (as opposed to bugs). */
export function isStreamDataError(e: unknown): e is StreamFormatError | StreamEndError {
  return e instanceof StreamFormatError || e instanceof StreamEndError;
}

/** C-style "0x%x" for messages. */
export function hex(n: number): string {
  return Math.trunc(n).toString(16);
}
