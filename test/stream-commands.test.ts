// QEMU_VM_COMMAND packets and return-path messages: round trips, and the table checks that refuse
// unknown types and wrong lengths before anything is dispatched (savevm.c / migration.c texts).
import {
  BufferSink,
  MIG_CMD_ARGS,
  RP_CMD_ARGS,
  SectionType,
  StreamEndError,
  StreamFormatError,
  StreamReader,
  StreamWriter,
  checkPageRequest,
  decodeRpMessages,
  encodeRpMessage,
  maxDiscardRanges,
  readCommand,
  readRpMessage,
  writeCommand,
  writeRpMessage,
  type MigCommand,
  type RpMessage,
} from '../src/migration/stream/index.js';
import { deepEqual, equal, ok, rejects, throws } from './helpers/assert.js';

async function bytesOf(write: (w: StreamWriter) => void): Promise<Uint8Array> {
  const sink = new BufferSink();
  const w = new StreamWriter(sink);
  write(w);
  await w.flush();
  return sink.toBytes();
}

async function readOne(bytes: Uint8Array | number[]): Promise<MigCommand> {
  const r = StreamReader.fromBytes(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  equal(await r.readU8(), SectionType.COMMAND);
  return readCommand(r);
}

async function expectFormatError(p: Promise<unknown>, code: string, text: string): Promise<void> {
  const e = await rejects(p, `expected ${code}`);
  ok(e instanceof StreamFormatError, `a StreamFormatError, got ${e}`);
  equal(e.code, code, 'code');
  equal(e.message, text);
}

const cmd = (num: number, payload: number[]) => [0x08, num >> 8, num & 255, payload.length >> 8, payload.length & 255, ...payload];

const COMMANDS: MigCommand[] = [
  { type: 'OPEN_RETURN_PATH' },
  { type: 'PING', value: 0xdeadbeef },
  { type: 'POSTCOPY_ADVISE', hostPageSize: 4096, targetPageSize: 4096 },
  { type: 'POSTCOPY_ADVISE' },
  { type: 'POSTCOPY_LISTEN' },
  { type: 'POSTCOPY_RUN' },
  {
    type: 'POSTCOPY_RAM_DISCARD',
    blockName: 'riscv_virt_board.ram',
    ranges: [
      { start: 0, length: 4096 },
      { start: 2 ** 40, length: 8192 },
    ],
  },
  { type: 'ENABLE_COLO' },
  { type: 'POSTCOPY_RESUME' },
  { type: 'RECV_BITMAP', blockName: 'riscv_virt_board.ram' },
  { type: 'SWITCHOVER_START' },
];

describe('migration commands', () => {
  for (const c of COMMANDS) {
    it(`round-trips ${c.type}${c.type === 'POSTCOPY_ADVISE' && c.hostPageSize === undefined ? ' (empty)' : ''}`, async () => {
      const bytes = await bytesOf((w) => writeCommand(w, c));
      deepEqual(await readOne(bytes), c);
    });
  }

  it('round-trips PACKAGED with its nested stream after the command', async () => {
    const inner = new Uint8Array([1, 2, 3, 4, 5, 0]);
    const bytes = await bytesOf((w) => {
      writeCommand(w, { type: 'PACKAGED', data: inner });
      w.putU8(0x42);
    });
    deepEqual(Array.from(bytes), [...cmd(7, [0, 0, 0, 6]), 1, 2, 3, 4, 5, 0, 0x42]);
    const r = StreamReader.fromBytes(bytes);
    await r.readU8();
    const got = await readCommand(r);
    equal(got.type, 'PACKAGED');
    deepEqual(Array.from((got as { data: Uint8Array }).data), Array.from(inner));
    equal(await r.readU8(), 0x42, 'reading continues after the package');
  });

  it('encodes QEMU byte for byte', async () => {
    deepEqual(Array.from(await bytesOf((w) => writeCommand(w, { type: 'PING', value: 3 }))), cmd(2, [0, 0, 0, 3]));
    deepEqual(Array.from(await bytesOf((w) => writeCommand(w, { type: 'OPEN_RETURN_PATH' }))), cmd(1, []));
    deepEqual(Array.from(await bytesOf((w) => writeCommand(w, { type: 'RECV_BITMAP', blockName: 'ab' }))), cmd(10, [2, 97, 98]));
    deepEqual(
      Array.from(await bytesOf((w) => writeCommand(w, { type: 'POSTCOPY_RAM_DISCARD', blockName: 'ab', ranges: [{ start: 1, length: 2 }] }))),
      cmd(6, [0, 2, 97, 98, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]),
    );
  });

  it('the table and the writer agree on every fixed length', () => {
    equal(MIG_CMD_ARGS.length, 12);
    deepEqual(
      MIG_CMD_ARGS.map((a) => a.name),
      ['INVALID', 'OPEN_RETURN_PATH', 'PING', 'POSTCOPY_ADVISE', 'POSTCOPY_LISTEN', 'POSTCOPY_RUN', 'POSTCOPY_RAM_DISCARD', 'PACKAGED', 'ENABLE_COLO', 'POSTCOPY_RESUME', 'RECV_BITMAP', 'SWITCHOVER_START'],
    );
    ok(maxDiscardRanges('riscv_virt_board.ram') > 4000);
    ok(throws(() => writeCommand(new StreamWriter(new BufferSink()), { type: 'POSTCOPY_RAM_DISCARD', blockName: 'x', ranges: [] })) instanceof RangeError);
  });
});

describe('migration commands: malformed input', () => {
  it('unknown command numbers', async () => {
    await expectFormatError(readOne(cmd(0, [])), 'unknown-command', 'MIG_CMD 0x0 unknown (len 0x0)');
    await expectFormatError(readOne(cmd(12, [1, 2])), 'unknown-command', 'MIG_CMD 0xc unknown (len 0x2)');
  });

  it('a fixed-length command with the wrong length', async () => {
    await expectFormatError(readOne(cmd(2, [0, 0, 3])), 'bad-command-length', 'PING received with bad length - expecting 4, got 3');
    await expectFormatError(readOne(cmd(1, [0])), 'bad-command-length', 'OPEN_RETURN_PATH received with bad length - expecting 0, got 1');
    await expectFormatError(readOne(cmd(7, [0, 0, 0, 0, 0])), 'bad-command-length', 'PACKAGED received with bad length - expecting 4, got 5');
  });

  it('POSTCOPY_ADVISE of neither 0 nor 16 bytes', () =>
    expectFormatError(readOne(cmd(3, [0, 0, 0, 0, 0, 0, 0, 0])), 'bad-command-length', 'CMD_POSTCOPY_ADVISE invalid length (8)'));

  it('POSTCOPY_RAM_DISCARD: short, wrong version, missing nil, ragged ranges', async () => {
    await expectFormatError(readOne(cmd(6, [0, 1, 97, 0])), 'bad-command-length', 'CMD_POSTCOPY_RAM_DISCARD invalid length (4)');
    const range = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    await expectFormatError(readOne(cmd(6, [1, 1, 97, 0, ...range])), 'bad-command', 'CMD_POSTCOPY_RAM_DISCARD invalid version (1)');
    await expectFormatError(readOne(cmd(6, [0, 1, 97, 7, ...range])), 'bad-command', 'CMD_POSTCOPY_RAM_DISCARD missing nil (7)');
    await expectFormatError(readOne(cmd(6, [0, 1, 97, 0, ...range, 5])), 'bad-command-length', 'CMD_POSTCOPY_RAM_DISCARD invalid length (17)');
    await expectFormatError(readOne(cmd(6, [0, 30, 97, 0, ...range])), 'bad-command-length', 'CMD_POSTCOPY_RAM_DISCARD invalid length (20)');
  });

  it('RECV_BITMAP whose name does not fill the payload', async () => {
    await expectFormatError(readOne(cmd(10, [])), 'bad-command', 'loadvm_handle_recv_bitmap: failed to read block name');
    await expectFormatError(readOne(cmd(10, [3, 97])), 'bad-command-length', 'loadvm_handle_recv_bitmap: invalid payload length (2)');
  });

  it('PACKAGED larger than allowed', async () => {
    const r = StreamReader.fromBytes(new Uint8Array(cmd(7, [0x10, 0, 0, 0])));
    await r.readU8();
    await expectFormatError(readCommand(r, { packagedMax: 1 << 20 }), 'packaged-too-large', 'Unreasonably large packaged state: 268435456');
  });

  it('a command or its package cut short', async () => {
    ok((await rejects(readOne(cmd(2, [0, 0, 0, 3]).slice(0, 7)))) instanceof StreamEndError);
    ok((await rejects(readOne([...cmd(7, [0, 0, 0, 9]), 1, 2]))) instanceof StreamEndError);
  });
});

const RP: RpMessage[] = [
  { type: 'SHUT', error: 0 },
  { type: 'SHUT', error: 5 },
  { type: 'PONG', value: 0x01020304 },
  { type: 'REQ_PAGES_ID', start: 0x1000, length: 8192, blockName: 'riscv_virt_board.ram' },
  { type: 'REQ_PAGES', start: 2 ** 33, length: 4096 },
  { type: 'RECV_BITMAP', blockName: 'riscv_virt_board.ram' },
  { type: 'RESUME_ACK', value: 1 },
];

describe('return-path messages', () => {
  for (const m of RP) {
    it(`round-trips ${m.type}`, async () => {
      const bytes = encodeRpMessage(m);
      deepEqual(decodeRpMessages(bytes), [m]);
      const r = StreamReader.fromBytes(await bytesOf((w) => writeRpMessage(w, m)));
      deepEqual(await readRpMessage(r), m);
      equal(await readRpMessage(r), null, 'clean end between messages');
    });
  }

  it('encodes QEMU byte for byte', () => {
    deepEqual(Array.from(encodeRpMessage({ type: 'PONG', value: 7 })), [0, 2, 0, 4, 0, 0, 0, 7]);
    deepEqual(Array.from(encodeRpMessage({ type: 'REQ_PAGES', start: 0x2000, length: 0x1000 })), [0, 4, 0, 12, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0x10, 0]);
    deepEqual(Array.from(encodeRpMessage({ type: 'REQ_PAGES_ID', start: 0, length: 0x1000, blockName: 'ab' })), [0, 3, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 2, 97, 98]);
  });

  it('decodes several messages from one buffer', () => {
    const all = new Uint8Array(RP.reduce((n, m) => n + encodeRpMessage(m).length, 0));
    let at = 0;
    for (const m of RP) {
      const b = encodeRpMessage(m);
      all.set(b, at);
      at += b.length;
    }
    deepEqual(decodeRpMessages(all), RP);
  });

  it('the table matches migration.c', () => {
    deepEqual(
      RP_CMD_ARGS.map((a) => [a.name, a.len]),
      [
        ['INVALID', -1],
        ['SHUT', 4],
        ['PONG', 4],
        ['REQ_PAGES_ID', -1],
        ['REQ_PAGES', 12],
        ['RECV_BITMAP', -1],
        ['RESUME_ACK', 4],
      ],
    );
  });
});

describe('return-path messages: malformed input', () => {
  const rp = (type: number, payload: number[]) => new Uint8Array([type >> 8, type & 255, payload.length >> 8, payload.length & 255, ...payload]);
  const expectRp = async (bytes: Uint8Array, code: string, text: string) => {
    const e = throws(() => decodeRpMessages(bytes));
    ok(e instanceof StreamFormatError, `a StreamFormatError, got ${e}`);
    equal(e.code, code);
    equal(e.message, text);
    await expectFormatError(readRpMessage(StreamReader.fromBytes(bytes)), code, text);
  };

  it('unknown type, checked before the payload', async () => {
    await expectRp(rp(0, []), 'bad-rp-message', 'RP: Received invalid message 0x0000 length 0x0000');
    await expectRp(rp(7, [1]), 'bad-rp-message', 'RP: Received invalid message 0x0007 length 0x0001');
    await expectRp(new Uint8Array([0xff, 0xff, 0, 0]), 'bad-rp-message', 'RP: Received invalid message 0xffff length 0x0000');
  });

  it('wrong length for a fixed-length type', async () => {
    await expectRp(rp(2, [0, 0, 1]), 'bad-rp-length', "RP: Received 'PONG' message (0x0002) with incorrect length 3 expecting 4");
    await expectRp(rp(4, new Array(16).fill(0)), 'bad-rp-length', "RP: Received 'REQ_PAGES' message (0x0004) with incorrect length 16 expecting 12");
  });

  it('a variable-length message longer than the receive buffer', () =>
    expectRp(rp(3, new Array(600).fill(0)), 'bad-rp-length', "RP: Received 'REQ_PAGES_ID' message (0x0003) with incorrect length 600 expecting at most 512"));

  it('REQ_PAGES_ID whose name length disagrees', async () => {
    await expectRp(rp(3, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 5, 97]), 'bad-rp-length', 'RP: Req_Page_id with length 14 expecting 18');
    await expectRp(rp(3, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0]), 'bad-rp-length', 'RP: Req_Page_id with length 12 expecting 13');
  });

  it('RECV_BITMAP without a block name', () => expectRp(rp(5, []), 'bad-rp-length', 'RP: RECV_BITMAP: missing block name'));

  it('a message cut short is incomplete', async () => {
    ok(throws(() => decodeRpMessages(rp(2, [0, 0, 0, 1]).subarray(0, 6))) instanceof StreamEndError);
    ok(throws(() => decodeRpMessages(new Uint8Array([0, 2, 0]))) instanceof StreamEndError);
    ok((await rejects(readRpMessage(StreamReader.fromBytes(rp(2, [0, 0, 0, 1]).subarray(0, 6))))) instanceof StreamEndError);
  });

  it('page requests must be for whole pages', () => {
    equal(checkPageRequest(0x2000, 0x1000, 4096), null);
    const e = checkPageRequest(0x2001, 0x1000, 4096)!;
    equal(e.code, 'misaligned-page-request');
    equal(e.message, 'Misaligned page request, start: 2001 len: 4096');
    equal(checkPageRequest(0x2000, 100, 4096)!.code, 'misaligned-page-request');
  });
});
