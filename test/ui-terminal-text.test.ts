// The serial console's text model: what a terminal would show for a UART byte stream.

import { TerminalText } from '../src/ui/services/terminal-text.js';
import { equal, ok } from './helpers/assert.js';

function shown(...chunks: string[]): string {
  const t = new TerminalText();
  for (const c of chunks) t.write(c);
  return t.text;
}

describe('serial console text', () => {
  it('ends lines at LF and CR LF, even when a chunk splits the pair', () => {
    equal(shown('a\r\nb\nc'), 'a\nb\nc');
    equal(shown('a\r', '\nb'), 'a\nb');
  });

  it('redraws the line after a lone CR', () => {
    equal(shown('x\nprogress 10%\rprogress 20%'), 'x\nprogress 20%');
    equal(shown('progress 10%\r', 'progress 20%'), 'progress 20%');
  });

  it('erases with backspace, but not past the start of the line', () => {
    equal(shown('ab\b \bc'), 'ac');
    equal(shown('a\n\b\bb'), 'a\nb');
  });

  it('drops ANSI escape sequences, also split across chunks', () => {
    equal(shown('\x1b[1;32mgreen\x1b[0m plain'), 'green plain');
    equal(shown('a\x1b[3', '1mb'), 'ab');
    equal(shown('a\x1b', '[Kb'), 'ab');
  });

  it('drops other control characters and keeps tabs', () => {
    equal(shown('a\x07b\x00c\td'), 'abc\td');
  });

  it('keeps about the last `limit` characters, dropping whole blocks of lines', () => {
    const t = new TerminalText(10_000);
    const line = (n: number) => `line ${String(n).padStart(4, '0')} ${'x'.repeat(88)}\n`; // 99 chars
    for (let n = 0; n < 500; n++) t.write(line(n));
    const text = t.text;
    ok(text.length <= 10_000 && text.length > 5_000, `kept ${text.length} characters`);
    ok(text.endsWith(line(499)), 'the newest line is kept');
    ok(text.startsWith('line '), 'the text starts at a line start');
    ok(t.blocks.length > 0, 'finished lines were closed into blocks');
    equal(t.blocks.map((b) => b.text).join('') + t.tail, text);
    t.clear();
    equal(t.text, '');
  });

  it('splits one endless line into blocks too, and a later CR redraws only the tail', () => {
    const t = new TerminalText(64 * 1024);
    t.write('A' + 'B'.repeat(10_000));
    equal(t.text, 'A' + 'B'.repeat(10_000));
    ok(t.tail.length < 4096, `tail of ${t.tail.length}`);
    t.write('\rC');
    // 10001 characters: two blocks of 4096 are finished, the CR clears the 1809 after them.
    equal(t.text, 'A' + 'B'.repeat(8191) + 'C');
  });
});
