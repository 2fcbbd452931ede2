// Which extra data channels x-multifd uses: ids CHANNEL.multifdBase + 0 … channels − 1. Both
// sides open the same negotiated ids, so both must have x-multifd on with the same
// x-multifd-channels (QEMU's destination too needs the capability and the count).

import { CHANNEL } from '../../../transport/routes.js';
import type { MigrationOptions } from '../../options.js';

export function multifdIds(options: MigrationOptions): number[] {
  if (!options.capability('x-multifd')) return [];
  return Array.from({ length: options.parameter('x-multifd-channels') }, (_, i) => CHANNEL.multifdBase + i);
}
