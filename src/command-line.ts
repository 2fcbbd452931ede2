// The page's address is its QEMU command line: `?m=256M&S&name=lab&incoming=defer`.
// Every value is checked here, before a machine exists, so a bad one becomes a clear message on
// the page instead of a half-started guest.

import { RAM_SIZE_DEFAULT, checkRamSize, parseRamSize } from './guest/memory-map.js';

export interface CommandLine {
  /** -m: guest RAM in bytes. */
  ramSize: number;
  /** -S: do not start the CPU. */
  startPaused: boolean;
  /** -name */
  name?: string;
  /** -incoming URI (`defer` waits for migrate-incoming). */
  incoming?: string;
  /** -global migration.NAME=VALUE, in order. */
  globals: string[];
}

export class CommandLineError extends Error {
  override name = 'CommandLineError';
}

const KNOWN = ['m', 'S', 'name', 'incoming', 'global'];

export function parseCommandLine(search: string): CommandLine {
  const params = new URLSearchParams(search);
  const out: CommandLine = { ramSize: RAM_SIZE_DEFAULT, startPaused: false, globals: [] };
  for (const [key, value] of params) {
    switch (key) {
      case 'm': {
        let bytes: number;
        try {
          bytes = parseRamSize(value);
          checkRamSize(bytes);
        } catch (e) {
          throw new CommandLineError(`-m ${value}: ${(e as Error).message}`);
        }
        out.ramSize = bytes;
        break;
      }
      case 'S':
        if (value !== '' && value !== 'on') throw new CommandLineError(`-S takes no value (got 'S=${value}')`);
        out.startPaused = true;
        break;
      case 'name':
        if (value === '') throw new CommandLineError('-name needs a value');
        out.name = value;
        break;
      case 'incoming':
        if (value === '') throw new CommandLineError('-incoming needs a URI (for example incoming=defer)');
        out.incoming = value;
        break;
      case 'global':
        out.globals.push(value);
        break;
      default:
        throw new CommandLineError(`'${key}' is not an option tabmig knows (known: ${KNOWN.join(', ')})`);
    }
  }
  return out;
}
