// The serial console's filter: the guest's output as it comes, the stress guest's "clock jumped"
// lines collapsed into one counting line redrawn in place.

import { SerialCollapse } from '../src/ui/services/serial-collapse.js';
import { equal } from './helpers/assert.js';

function written(...chunks: string[]): string {
  const c = new SerialCollapse();
  return chunks.map((x) => c.write(x)).join('');
}

describe('serial console: clock-jump lines collapse', () => {
  it('passes other output through untouched, colours and carriage returns included', () => {
    equal(written('\x1b[32mgreen\x1b[0m\n', 'progress 10%\rprogress 20%'), '\x1b[32mgreen\x1b[0m\nprogress 10%\rprogress 20%');
  });

  it('counts a run of clock jumps on one redrawn line, with the largest', () => {
    const out = written('stress: clock jumped 14 ms\n', 'stress: clock jumped 85 ms\nstress: clock jumped 12 ms\n');
    equal(out, 'stress: clock jumped 14 ms\r\x1b[Kstress: clock jumped ×2 (max 85 ms)\r\x1b[Kstress: clock jumped ×3 (max 85 ms)');
  });

  it('ends the run at the next other line, which starts on a line of its own', () => {
    equal(written('stress: clock jumped 5 ms\nstress: clock jumped 6 ms\nstress: t=3s\nstress: clock jumped 7 ms\n'), 'stress: clock jumped 5 ms\r\x1b[Kstress: clock jumped ×2 (max 6 ms)\nstress: t=3s\nstress: clock jumped 7 ms');
  });

  it('holds a clock line split across chunks until its end, but not a prompt', () => {
    const c = new SerialCollapse();
    equal(c.write('stress: clock ju'), '');
    equal(c.write('mped 9 ms\n'), 'stress: clock jumped 9 ms');
    equal(c.write('$ '), '\n$ ');
  });
});
