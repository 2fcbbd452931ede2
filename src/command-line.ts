// The page's address is its QEMU command line: `?m=256M&S&name=lab&incoming=defer`.
// Every value is checked here, before a machine exists, so a bad one becomes a clear message on
// the page instead of a half-started guest.

import { RAM_SIZE_DEFAULT, checkRamSize, parseRamSize } from './guest/memory-map.js';
import { parseIceConfig, type IceConfig } from './transport/ice-config.js';
import { ROOM_PATTERN } from './transport/relay-protocol.js';

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
  /** ?room=NAME: the signaling relay's room (classes apart); default 'default'. */
  room: string;
  /** ?relay=off: BroadcastChannel only (no relay connection). */
  relay: boolean;
  /** ?ice=…: ICE servers (STUN/TURN) and policy, see transport/ice-config.ts. */
  ice?: IceConfig;
  /** ?ice= as written (the settings panel shows it). */
  iceText?: string;
}

export class CommandLineError extends Error {
  override name = 'CommandLineError';
}

const KNOWN = ['m', 'S', 'name', 'incoming', 'global', 'room', 'relay', 'ice'];

export function parseCommandLine(search: string): CommandLine {
  const params = new URLSearchParams(search);
  const out: CommandLine = { ramSize: RAM_SIZE_DEFAULT, startPaused: false, globals: [], room: 'default', relay: true };
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
      case 'room':
        if (!ROOM_PATTERN.test(value)) throw new CommandLineError(`room=${value}: a room name is 1 to 40 letters, digits, '.', '_' or '-'`);
        out.room = value;
        break;
      case 'relay':
        if (value !== 'off' && value !== 'on') throw new CommandLineError(`relay=${value}: 'on' (default) or 'off'`);
        out.relay = value === 'on';
        break;
      case 'ice':
        try {
          out.ice = parseIceConfig(value);
        } catch (e) {
          throw new CommandLineError(`ice=${value}: ${(e as Error).message}`);
        }
        out.iceText = value;
        break;
      default:
        throw new CommandLineError(`'${key}' is not an option tabmig knows (known: ${KNOWN.join(', ')})`);
    }
  }
  return out;
}
