// The byte source/sink pair every migration byte path speaks, defined once. Types (and one tiny
// adapter), importing nothing: the stream layer (src/migration/stream/) imports these from here, so the stream stays
// free of guest/ and of any transport code, and transports (channels, IndexedDB, files) implement
// them without depending on the stream. Transport is the lower layer: bytes move before they mean
// anything, so the interface for moving them lives here and the stream's parser sits above it.
//
// Two sink roles really differ, so they have two names:
//   ByteSink    a pipe the stream writer pushes chunks into (QEMUFile's output side);
//               close/shutdown are optional because a memory buffer needs neither.
//   CommitSink  a transactional sink whose bytes only "happen" on commit (a saved snapshot, a
//               download, a channel whose orderly close delivers everything); abort discards.

/** Pull side of a byte stream: chunks in order, null at a clean end, rejects on failure. */
export interface ByteSource {
  /** The next chunk (the consumer keeps it and never writes to it), or null at end of stream. */
  read(): Promise<Uint8Array | null>;
  /** Stop producing (StreamReader.shutdown() calls it); optional. */
  cancel?(): void;
}

/** Where the stream writer's chunks go. */
export interface ByteSink {
  /**
   * Takes ownership of `chunk` (the writer never touches it again, so the sink may keep or
   * transfer it). Resolves when the sink can take more; rejects if the path failed.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Called once by StreamWriter.close() after everything has been written. */
  close?(): Promise<void>;
  /** Abort now: called by StreamWriter.shutdown(); pending writes may be dropped. */
  shutdown?(): void;
}

/**
 * Push side of a byte stream that only "happens" on commit. write() may return before the bytes
 * are durable; commit() makes them so (or rejects); abort() discards everything written. After
 * either, write() rejects.
 */
export interface CommitSink {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(reason?: string): Promise<void>;
}

/**
 * A CommitSink seen by the stream writer: writes pass through and the writer's shutdown aborts.
 * Commit stays with the caller (it decides when a save is complete, after the writer's flush).
 */
export function commitSinkAsByteSink(t: CommitSink): ByteSink {
  return { write: (c) => t.write(c), shutdown: () => void t.abort('shut down').catch(() => {}) };
}
