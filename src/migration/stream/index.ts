// The stream layer (QEMUFile's role and QEMU's migration stream format), usable without the
// orchestrator: import from here.

export * from './errors.js';
export * from './format.js';
export * from './stream-writer.js';
export * from './stream-reader.js';
export * from './vmstate.js';
export * from './vm-description.js';
export * from './ram-format.js';
export * from './commands.js';
export * from './rp-messages.js';
export * from './file-header.js';
