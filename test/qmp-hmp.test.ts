import { Hmp, evaluate } from '../src/qmp/hmp.js';
import { registerMemoryDump, type PhysicalReader } from '../src/qmp/hmp-memory.js';
import { QmpError } from '../src/qapi/qmp-error.js';
import { deepEqual, equal, ok } from './helpers/assert.js';

const RAM_BASE = 0x8000_0000;

/** A 64 KiB "RAM" at 0x80000000 holding bytes 0x00, 0x01, … 0xff, 0x00, … */
function fakeMemory(): { read: PhysicalReader; ram: Uint8Array } {
  const ram = new Uint8Array(0x1_0000);
  for (let i = 0; i < ram.length; i++) ram[i] = i & 0xff;
  const read: PhysicalReader = (addr, length) => {
    const at = addr - RAM_BASE;
    if (at < 0 || at + length > ram.length) return null;
    return ram.slice(at, at + length);
  };
  return { read, ram };
}

function monitor(): { hmp: Hmp; ram: Uint8Array } {
  const hmp = new Hmp();
  const { read, ram } = fakeMemory();
  registerMemoryDump(hmp, read);
  hmp.register({ name: 'stop|s', argsType: '', params: '', help: 'stop emulation', handler: () => {} });
  hmp.register({ name: 'cont|c', argsType: '', params: '', help: 'resume emulation', handler: () => {} });
  hmp.registerInfo({
    name: 'status',
    argsType: '',
    params: '',
    help: 'show the current VM status (running|paused)',
    handler: (out) => out.print('VM status: running\n'),
  });
  hmp.registerInfo({ name: 'name', argsType: '', params: '', help: 'show the current VM name', handler: () => {} });
  return { hmp, ram };
}

/** Splits monitor output into lines, checking every line ends in "\r\n". */
function lines(text: string): string[] {
  ok(text.endsWith('\r\n'), `output ends with \\r\\n: ${JSON.stringify(text)}`);
  const parts = text.split('\r\n');
  parts.pop();
  ok(parts.every((l) => !l.includes('\n') && !l.includes('\r')), 'no bare \\n or \\r');
  return parts;
}

describe('HMP: commands and help', () => {
  it('lists commands sorted by name as "name params -- help"', async () => {
    const { hmp } = monitor();
    deepEqual(lines(await hmp.run('help')), [
      'cont|c  -- resume emulation',
      'help|? [cmd] -- show the help',
      'info [subcommand] -- show various information about the system state',
      'stop|s  -- stop emulation',
      "x /fmt addr -- virtual memory dump starting at 'addr'",
      "xp /fmt addr -- physical memory dump starting at 'addr'",
    ]);
    equal(await hmp.run('?'), await hmp.run('help'));
  });

  it('shows help for one command, an alias, or the info table', async () => {
    const { hmp } = monitor();
    equal(await hmp.run('help xp'), "xp /fmt addr -- physical memory dump starting at 'addr'\r\n");
    equal(await hmp.run('help c'), 'cont|c  -- resume emulation\r\n');
    deepEqual(lines(await hmp.run('help info')), [
      'info name  -- show the current VM name',
      'info status  -- show the current VM status (running|paused)',
    ]);
    equal(await hmp.run('help info status'), 'info status  -- show the current VM status (running|paused)\r\n');
    equal(await hmp.run('info'), await hmp.run('help info'));
    equal(await hmp.run('help nosuch'), "unknown command: 'nosuch'\r\n");
    equal(await hmp.run('help info nosuch'), "unknown command: 'info nosuch'\r\n");
  });

  it('reports unknown commands as QEMU does', async () => {
    const { hmp } = monitor();
    equal(await hmp.run('foo'), "unknown command: 'foo'\r\n");
    equal(await hmp.run('foo bar'), "unknown command: 'foo'\r\n");
    equal(await hmp.run('info foo'), "unknown command: 'info foo'\r\n");
    equal(await hmp.run(''), '');
    equal(await hmp.run('   '), '');
  });

  it('runs info subcommands and aliases', async () => {
    const { hmp } = monitor();
    equal(await hmp.run('info status'), 'VM status: running\r\n');
    equal(await hmp.run('  info   status  '), 'VM status: running\r\n');
    equal(await hmp.run('info name'), '');
    equal(await hmp.run('s'), '');
  });

  it('refuses extra arguments', async () => {
    const { hmp } = monitor();
    equal(
      await hmp.run('stop now'),
      'stop|s: extraneous characters at the end of line\r\nTry "help stop" for more information\r\n',
    );
    equal(
      await hmp.run('info status x'),
      'status: extraneous characters at the end of line\r\nTry "help info status" for more information\r\n',
    );
  });

  it('parses strings, flags, on/off, sizes and 32-bit integers per args_type', async () => {
    const hmp = new Hmp();
    const got: unknown[] = [];
    hmp.register({
      name: 'migrate',
      argsType: 'detach:-d,resume:-r,uri:s',
      params: '[-d] [-r] uri',
      help: 'migrate to URI',
      handler: (_o, a) => void got.push(a),
    });
    hmp.register({
      name: 'migrate_set_capability',
      argsType: 'capability:s,state:b',
      params: 'capability state',
      help: 'Enable/Disable the usage of a capability for migration',
      handler: (_o, a) => void got.push(a),
    });
    hmp.register({ name: 'speed', argsType: 'value:o', params: 'value', help: 'set speed', handler: (_o, a) => void got.push(a) });
    hmp.register({ name: 'port', argsType: 'n:i,rest:S?', params: 'n [rest]', help: 'port', handler: (_o, a) => void got.push(a) });
    equal(await hmp.run('migrate -d "webrtc:peer one"'), '');
    // Flags must come in args_type order: here '-d' is taken as the URI.
    equal(
      await hmp.run('migrate -r -d idb:snap'),
      'migrate: extraneous characters at the end of line\r\nTry "help migrate" for more information\r\n',
    );
    equal(await hmp.run('migrate -d -r idb:snap'), '');
    equal(await hmp.run('migrate -x idb:snap'), 'migrate: unsupported option -x\r\nTry "help migrate" for more information\r\n');
    equal(await hmp.run('migrate'), 'migrate: string expected\r\nTry "help migrate" for more information\r\n');
    equal(await hmp.run('migrate_set_capability xbzrle on'), '');
    equal(
      await hmp.run('migrate_set_capability xbzrle yes'),
      "Expected 'on' or 'off'\r\nTry \"help migrate_set_capability\" for more information\r\n",
    );
    equal(await hmp.run('speed 2G'), '');
    equal(await hmp.run('speed 3'), '');
    equal(await hmp.run('speed fast'), 'invalid size\r\nTry "help speed" for more information\r\n');
    equal(await hmp.run('port 0x10 + 2  and the rest '), '');
    equal(await hmp.run('port 0x100000000'), "'port' has failed: integer is for 32-bit values\r\nTry \"help port\" for more information\r\n");
    deepEqual(got, [
      { detach: true, uri: 'webrtc:peer one' },
      { detach: true, resume: true, uri: 'idb:snap' },
      { capability: 'xbzrle', state: true },
      { value: 2 * 2 ** 30 },
      { value: 3 * 2 ** 20 },
      { n: 18, rest: 'and the rest ' },
    ]);
  });

  it('prints handler errors as "Error: …"', async () => {
    const hmp = new Hmp();
    hmp.register({
      name: 'cont|c',
      argsType: '',
      params: '',
      help: 'resume emulation',
      handler: () => {
        throw QmpError.generic('Resetting the Virtual Machine is required');
      },
    });
    equal(await hmp.run('c'), 'Error: Resetting the Virtual Machine is required\r\n');
  });

  it('evaluates QEMU monitor expressions in 64 bits', () => {
    const val = (s: string) => {
      const r = evaluate(s, 0);
      return 'error' in r ? r.error : r.value;
    };
    equal(val('0x80000000'), 0x80000000n);
    equal(val('0x80000000 + 4*4'), 0x80000010n);
    equal(val('010'), 8n);
    equal(val('(1 + 2) * 3'), 9n);
    equal(val('1 + 2 * 3'), 7n);
    equal(val('6 | 1 + 1'), 8n); // + binds looser than | in QEMU's grammar
    equal(val('-1'), -1n);
    equal(val('~0'), -1n);
    equal(val("'A'"), 65n);
    equal(val('0xffffffffffffffff'), -1n);
    equal(val('7 % 4 - 10 / 3'), 0n);
    equal(val(''), 'unexpected end of expression');
    equal(val('(1'), "')' expected");
    equal(val('1/0'), 'division by zero');
    equal(val('$pc'), 'unknown register');
    equal(val('zz'), "invalid char 'z' in expression");
    equal(val('0x1ffffffffffffffff'), 'number too large');
  });
});

describe('HMP: xp and x', () => {
  it('dumps words by default: 16-digit physical address, four per line', async () => {
    const { hmp } = monitor();
    deepEqual(lines(await hmp.run('xp /8x 0x80000000')), [
      '0000000080000000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c',
      '0000000080000010: 0x13121110 0x17161514 0x1b1a1918 0x1f1e1d1c',
    ]);
    equal(await hmp.run('xp 0x80000004'), '0000000080000004: 0x07060504\r\n');
    equal(await hmp.run('xp/2x 0x80000000'), '0000000080000000: 0x03020100 0x07060504\r\n');
  });

  it('prints bytes eight per line, and halves and giant words sixteen bytes per line', async () => {
    const { hmp } = monitor();
    deepEqual(lines(await hmp.run('xp /10xb 0x800000f8')), [
      '00000000800000f8: 0xf8 0xf9 0xfa 0xfb 0xfc 0xfd 0xfe 0xff',
      '0000000080000100: 0x00 0x01',
    ]);
    deepEqual(lines(await hmp.run('xp /9xh 0x80000000')), [
      '0000000080000000: 0x0100 0x0302 0x0504 0x0706 0x0908 0x0b0a 0x0d0c 0x0f0e',
      '0000000080000010: 0x1110',
    ]);
    deepEqual(lines(await hmp.run('xp /3xg 0x80000000')), [
      '0000000080000000: 0x0706050403020100 0x0f0e0d0c0b0a0908',
      '0000000080000010: 0x1716151413121110',
    ]);
  });

  it('formats decimal, unsigned, octal and characters with QEMU field widths', async () => {
    const { hmp, ram } = monitor();
    equal(await hmp.run('xp /4db 0x800000fe'), '00000000800000fe: 254 255   0   1\r\n');
    equal(await hmp.run('xp /2uh 0x80000000'), '0000000080000000:   256   770\r\n');
    equal(await hmp.run('xp /1dw 0x800000fc'), '00000000800000fc: 4294901244\r\n'); // zero-extended, as QEMU
    ram.fill(0xff, 0x200, 0x208);
    equal(await hmp.run('xp /1dg 0x80000200'), '0000000080000200:                   -1\r\n');
    equal(await hmp.run('xp /1ug 0x80000200'), '0000000080000200: 18446744073709551615\r\n');
    equal(await hmp.run('xp /3ob 0x80000007'), '0000000080000007:  07 010 011\r\n');
    equal(await hmp.run('xp /2ob 0x80000100'), '0000000080000100:   0  01\r\n');
    equal(await hmp.run('xp /1ow 0x80000000'), '0000000080000000:  0300400400\r\n');
    ram.set([0x41, 0x27, 0x5c, 0x0a, 0x0d, 0x00, 0x7f, 0x20], 0x300);
    equal(await hmp.run('xp /8cb 0x80000300'), "0000000080000300: 'A' '\\'' '\\\\' '\\n' '\\r' '\\x00' '\\x7f' ' '\r\n");
  });

  it('keeps the last format and size as defaults, like QEMU', async () => {
    const { hmp } = monitor();
    await hmp.run('xp /2ub 0x80000000');
    equal(await hmp.run('xp 0x80000010'), '0000000080000010:  16\r\n');
    equal(await hmp.run('xp /2 0x80000010'), '0000000080000010:  16  17\r\n');
    equal(await hmp.run('xp /1x 0x80000010'), '0000000080000010: 0x10\r\n');
    equal(await hmp.run('xp /1w 0x80000010'), '0000000080000010: 0x13121110\r\n');
  });

  it('sizes a character dump by the unit, as QEMU does', async () => {
    const { hmp } = monitor();
    // With the default word size, /2c covers 8 bytes, printed one character each.
    equal(await hmp.run('xp /2c 0x80000041'), "0000000080000041: 'A' 'B' 'C' 'D' 'E' 'F' 'G' 'H'\r\n");
  });

  it('says "Cannot access memory" outside RAM and stops there', async () => {
    const { hmp } = monitor();
    equal(await hmp.run('xp /4x 0x1000'), '0000000000001000: Cannot access memory\r\n');
    deepEqual(lines(await hmp.run('xp /8x 0x8000fff0')), [
      '000000008000fff0: 0xf3f2f1f0 0xf7f6f5f4 0xfbfaf9f8 0xfffefdfc',
      '0000000080010000: Cannot access memory',
    ]);
    equal(await hmp.run('xp /1x -1'), 'ffffffffffffffff: Cannot access memory\r\n');
  });

  it('prints 8-digit addresses for x on this 32-bit target', async () => {
    const { hmp } = monitor();
    equal(await hmp.run('x /2x 0x80000000'), '80000000: 0x03020100 0x07060504\r\n');
    equal(await hmp.run('x /1x 0x180000000'), '80000000: 0x03020100\r\n');
  });

  it('reports bad formats and addresses with a pointer to help', async () => {
    const { hmp } = monitor();
    equal(await hmp.run('xp /4q 0x80000000'), "invalid char in format: 'q'\r\nTry \"help xp\" for more information\r\n");
    equal(await hmp.run('xp /4x'), 'unexpected end of expression\r\nTry "help xp" for more information\r\n');
    equal(
      await hmp.run('xp /4x 0x80000000 junk'),
      'xp: extraneous characters at the end of line\r\nTry "help xp" for more information\r\n',
    );
    equal(await hmp.run('xp /0x 0x80000000'), '');
    ok((await hmp.run('xp /2i 0x80000000')).includes('not supported'), 'the i format says it is not supported');
  });
});
