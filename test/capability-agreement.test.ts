// The capabilities both ends of a migration must agree on, said before the stream starts.

import { capabilitiesOf, capabilityMismatch, sideCapabilities } from '../src/migration/capability-agreement.js';
import { equal, ok } from './helpers/assert.js';

const names = { source: 'Tab src', destination: 'Tab dst' };
const set = (...c: string[]) => new Set(c);

describe('capability agreement', () => {
  it('says what to switch on where when postcopy-ram is on at the source only', () => {
    const why = capabilityMismatch(set('postcopy-ram'), set(), names);
    ok(why !== null);
    ok(why!.includes('postcopy-ram is on in the source (Tab src) but off in the destination (Tab dst)'), why!);
    ok(why!.includes('switch postcopy-ram on in Tab dst'), why!);
  });

  it('lets a destination have postcopy-ram or compress on when the source does not use them', () => {
    equal(capabilityMismatch(set(), set('postcopy-ram', 'compress'), names), null);
    equal(capabilityMismatch(set('postcopy-ram'), set('postcopy-ram'), names), null);
  });

  it('needs x-multifd equal at both ends, and names every difference', () => {
    const why = capabilityMismatch(set('compress'), set('x-multifd'), names)!;
    ok(why.includes('compress is on in the source'), why);
    ok(why.includes('x-multifd is on in the destination (Tab dst) but off in the source (Tab src)'), why);
  });

  it('reads only a well-formed list from a hello, and lists only the agreed capabilities', () => {
    equal(capabilitiesOf({ ramSize: 1 }), null);
    equal(capabilitiesOf({ capabilities: [1] }), null);
    equal([...capabilitiesOf({ capabilities: ['postcopy-ram'] })!].join(), 'postcopy-ram');
    equal(sideCapabilities((c) => c === 'postcopy-ram' || c === 'xbzrle').capabilities.join(), 'postcopy-ram');
  });
});
