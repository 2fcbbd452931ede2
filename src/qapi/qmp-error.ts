// Errors that reach a QMP client: QEMU's error classes and its wording.

export type QmpErrorClass = 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound' | 'KVMMissingCap';

export class QmpError extends Error {
  override name = 'QmpError';
  constructor(
    readonly errorClass: QmpErrorClass,
    readonly desc: string,
  ) {
    super(desc);
  }

  static generic(desc: string): QmpError {
    return new QmpError('GenericError', desc);
  }

  toReply(): { error: { class: QmpErrorClass; desc: string } } {
    return { error: { class: this.errorClass, desc: this.desc } };
  }
}
