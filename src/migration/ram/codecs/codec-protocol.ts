// The types-only protocol between a migration thread and its codec workers (compress on the
// source, decompress on the destination): discriminated unions with `type` and `id`; pages cross
// as transferred ArrayBuffers; errors as {name, message}.

export type ToCodec =
  /** Destination: the guest RAM the worker inflates pages straight into. */
  | { type: 'init'; ram?: SharedArrayBuffer; pageSize: number; level: number }
  /** Source: zlib of one page (its buffer is transferred). */
  | { type: 'compress'; id: number; page: ArrayBuffer }
  /** Destination: inflate into guest RAM at `offset`. */
  | { type: 'decompress'; id: number; offset: number; data: ArrayBuffer };

export type FromCodec =
  /** `bytes` null: the page does not compress into a record (send it plain). */
  | { type: 'compressed'; id: number; bytes: ArrayBuffer | null }
  | { type: 'decompressed'; id: number }
  | { type: 'error'; id: number; error: { name: string; message: string } };
