import { QmpDispatcher, qapiArray, qapiEnum, qapiStruct, type QmpReply } from '../src/qmp/dispatcher.js';
import { registerControlCommands } from '../src/qmp/control-commands.js';
import { Hmp } from '../src/qmp/hmp.js';
import { QmpError } from '../src/qapi/qmp-error.js';
import { deepEqual, equal, ok } from './helpers/assert.js';

const generic = (desc: string) => ({ error: { class: 'GenericError', desc } });

/** A dispatcher with commands shaped like the migration ones, to exercise the argument checks. */
function makeDispatcher(opts: { timeoutMs?: number } = {}): { d: QmpDispatcher; calls: unknown[] } {
  const d = new QmpDispatcher(opts);
  const calls: unknown[] = [];
  d.register({
    name: 'migrate',
    args: { uri: 'str', '*detach': 'bool', '*resume': 'bool' },
    handler: (a) => {
      calls.push(a);
    },
  });
  d.register({
    name: 'migrate-set-capabilities',
    args: {
      capabilities: qapiArray(qapiStruct({ capability: qapiEnum(['xbzrle', 'postcopy-ram']), state: 'bool' })),
    },
    handler: (a) => {
      calls.push(a);
    },
  });
  d.register({
    name: 'typed',
    args: {
      '*i': 'int',
      '*n': 'number',
      '*u8': 'uint8',
      '*u64': 'uint64',
      '*sz': 'size',
      '*i8': 'int8',
      '*o': 'object',
      '*a': 'any',
      '*z': 'null',
      '*list': qapiArray('str'),
      '*modes': qapiArray(qapiEnum(['a', 'b'])),
    },
    handler: (a) => a,
  });
  d.register({ name: 'echo', args: { '*v': 'any' }, handler: (a) => a.v });
  return { d, calls };
}

describe('QMP dispatcher: the request object', () => {
  it('rejects input that is not a JSON object, without an id', async () => {
    const { d } = makeDispatcher();
    for (const input of [5, 'stop', null, [], [{ execute: 'stop' }], true, undefined]) {
      deepEqual(await d.execute(input), generic('QMP input must be a JSON object'), JSON.stringify(input));
    }
  });

  it('checks execute, arguments and stray members with QEMU texts', async () => {
    const { d } = makeDispatcher();
    deepEqual(await d.execute({}), generic("QMP input lacks member 'execute'"));
    deepEqual(await d.execute({ arguments: {} }), generic("QMP input lacks member 'execute'"));
    deepEqual(await d.execute({ execute: 3 }), generic("QMP input member 'execute' must be a string"));
    deepEqual(await d.execute({ execute: 'echo', arguments: [] }), generic("QMP input member 'arguments' must be an object"));
    deepEqual(await d.execute({ execute: 'echo', arguments: 'x' }), generic("QMP input member 'arguments' must be an object"));
    deepEqual(await d.execute({ execute: 'echo', foo: 1 }), generic("QMP input member 'foo' is unexpected"));
    // Without OOB negotiated, exec-oob is just another stray member.
    deepEqual(await d.execute({ 'exec-oob': 'echo' }), generic("QMP input member 'exec-oob' is unexpected"));
  });

  it('answers an unknown command with CommandNotFound', async () => {
    const { d } = makeDispatcher();
    deepEqual(await d.execute({ execute: 'foo' }), {
      error: { class: 'CommandNotFound', desc: 'The command foo has not been found' },
    });
  });

  it('echoes the id, on success and on error', async () => {
    const { d } = makeDispatcher();
    deepEqual(await d.execute({ execute: 'echo', id: 'abc' }), { return: {}, id: 'abc' });
    deepEqual(await d.execute({ execute: 'echo', arguments: { v: 1 }, id: 7 }), { return: 1, id: 7 });
    deepEqual(await d.execute({ execute: 'nope', id: { seq: [1, 2] } }), {
      error: { class: 'CommandNotFound', desc: 'The command nope has not been found' },
      id: { seq: [1, 2] },
    });
    deepEqual(await d.execute({ id: 3 }), { ...generic("QMP input lacks member 'execute'"), id: 3 });
    deepEqual(await d.execute({ execute: 'echo', id: null }), { return: {}, id: null });
    const noId = await d.execute({ execute: 'echo' });
    ok(!('id' in noId), 'no id member when the request had none');
  });

  it('answers {} for a command that returns nothing, and JSON for the rest', async () => {
    const { d, calls } = makeDispatcher();
    deepEqual(await d.execute({ execute: 'migrate', arguments: { uri: 'loopback:a' } }), { return: {} });
    deepEqual(calls, [{ uri: 'loopback:a' }]);
    deepEqual(await d.execute({ execute: 'echo', arguments: { v: { a: [1, 'x', null, true] } } }), {
      return: { a: [1, 'x', null, true] },
    });
    // The reply is what would cross a wire: members set to undefined are simply absent.
    const r = (await d.execute({ execute: 'echo', arguments: { v: { a: 1 } } })) as { return: Record<string, unknown> };
    deepEqual(Object.keys(r.return), ['a']);
  });
});

describe('QMP dispatcher: arguments', () => {
  it('reports a missing argument', async () => {
    const { d } = makeDispatcher();
    deepEqual(await d.execute({ execute: 'migrate' }), generic("Parameter 'uri' is missing"));
    deepEqual(await d.execute({ execute: 'migrate', arguments: { detach: true } }), generic("Parameter 'uri' is missing"));
  });

  it('reports a wrong type with QEMU type names', async () => {
    const { d } = makeDispatcher();
    const bad = async (args: Record<string, unknown>, desc: string) =>
      deepEqual(await d.execute({ execute: 'typed', arguments: args }), generic(desc), JSON.stringify(args));
    deepEqual(await d.execute({ execute: 'migrate', arguments: { uri: 5 } }), generic("Invalid parameter type for 'uri', expected: string"));
    deepEqual(
      await d.execute({ execute: 'migrate', arguments: { uri: 'x', detach: 'yes' } }),
      generic("Invalid parameter type for 'detach', expected: boolean"),
    );
    await bad({ i: '1' }, "Invalid parameter type for 'i', expected: integer");
    await bad({ i: 1.5 }, "Invalid parameter type for 'i', expected: integer");
    await bad({ n: 'x' }, "Invalid parameter type for 'n', expected: number");
    await bad({ o: [] }, "Invalid parameter type for 'o', expected: object");
    await bad({ z: 0 }, "Invalid parameter type for 'z', expected: null");
    await bad({ list: 'a' }, "Invalid parameter type for 'list', expected: array");
    await bad({ list: ['a', 2] }, "Invalid parameter type for 'list[1]', expected: string");
    // Unsigned types go through uint64 first; narrower ones are then range-checked by plain name.
    await bad({ u8: 'x' }, "Parameter 'u8' expects uint64");
    await bad({ u8: 256 }, "Parameter 'u8' expects uint8");
    await bad({ u8: -1 }, "Parameter 'u8' expects uint8");
    await bad({ u64: 1.5 }, "Parameter 'u64' expects uint64");
    await bad({ i8: 128 }, "Parameter 'i8' expects int8");
  });

  it('passes checked values through', async () => {
    const { d } = makeDispatcher();
    const args = { i: -3, n: 1.5, u8: 255, u64: 2 ** 40, i8: -128, o: { k: 1 }, a: [1], z: null, list: ['a'], modes: ['b'] };
    deepEqual(await d.execute({ execute: 'typed', arguments: args }), { return: args });
    // QEMU takes a negative for an unsigned 64-bit value as its two's complement.
    deepEqual(await d.execute({ execute: 'typed', arguments: { sz: -1 } }), { return: { sz: 2 ** 64 } });
  });

  it('reports an unexpected argument after checking the known ones', async () => {
    const { d } = makeDispatcher();
    deepEqual(await d.execute({ execute: 'migrate', arguments: { uri: 'x', foo: 1 } }), generic("Parameter 'foo' is unexpected"));
    deepEqual(await d.execute({ execute: 'echo', arguments: { foo: 1 } }), generic("Parameter 'foo' is unexpected"));
    // Member errors come first, as QEMU visits members before checking for leftovers.
    deepEqual(await d.execute({ execute: 'migrate', arguments: { foo: 1 } }), generic("Parameter 'uri' is missing"));
    // A command without arguments still refuses some.
    const d2 = new QmpDispatcher();
    d2.register({ name: 'stop', handler: () => undefined });
    deepEqual(await d2.execute({ execute: 'stop', arguments: { now: true } }), generic("Parameter 'now' is unexpected"));
  });

  it('names nested members as QEMU prints them', async () => {
    const { d, calls } = makeDispatcher();
    const set = (capabilities: unknown) => d.execute({ execute: 'migrate-set-capabilities', arguments: { capabilities } });
    deepEqual(await set('x'), generic("Invalid parameter type for 'capabilities', expected: array"));
    deepEqual(await set([1]), generic("Invalid parameter type for 'capabilities[0]', expected: object"));
    deepEqual(await set([{ capability: 'xbzrle' }]), generic("Parameter 'capabilities[0].state' is missing"));
    deepEqual(
      await set([{ capability: 'xbzrle', state: true }, { capability: 'xbzrle', state: 'on' }]),
      generic("Invalid parameter type for 'capabilities[1].state', expected: boolean"),
    );
    deepEqual(
      await set([{ capability: 'xbzrle', state: true, foo: 1 }]),
      generic("Parameter 'capabilities[0].foo' is unexpected"),
    );
    deepEqual(
      await set([{ capability: 5, state: true }]),
      generic("Invalid parameter type for 'capabilities[0].capability', expected: string"),
    );
    // The enum text names the member alone.
    deepEqual(await set([{ capability: 'foo', state: true }]), generic("Parameter 'capability' does not accept value 'foo'"));
    deepEqual(await set([]), { return: {} });
    deepEqual(await set([{ capability: 'postcopy-ram', state: false }]), { return: {} });
    deepEqual(calls, [{ capabilities: [] }, { capabilities: [{ capability: 'postcopy-ram', state: false }] }]);
    // An enum inside a list has no name of its own.
    deepEqual(await d.execute({ execute: 'typed', arguments: { modes: ['c'] } }), generic("Parameter 'null' does not accept value 'c'"));
  });
});

describe('QMP dispatcher: handlers', () => {
  it('turns exceptions into errors instead of throwing', async () => {
    const d = new QmpDispatcher();
    d.register({ name: 'qmp-fail', handler: () => Promise.reject(new QmpError('DeviceNotFound', "Device 'x' not found")) });
    d.register({ name: 'js-fail', handler: () => JSON.parse('{') });
    d.register({ name: 'throw-string', handler: () => { throw 'plain string'; } });
    d.register({ name: 'not-json', handler: () => 10n });
    deepEqual(await d.execute({ execute: 'qmp-fail' }), { error: { class: 'DeviceNotFound', desc: "Device 'x' not found" } });
    const js = (await d.execute({ execute: 'js-fail' })) as { error: { class: string; desc: string } };
    equal(js.error.class, 'GenericError');
    ok(js.error.desc.length > 0, 'the exception message becomes the desc');
    deepEqual(await d.execute({ execute: 'throw-string' }), generic('plain string'));
    equal(((await d.execute({ execute: 'not-json' })) as { error: { class: string } }).error.class, 'GenericError');
  });

  it('runs commands one at a time, in order', async () => {
    const d = new QmpDispatcher();
    const order: string[] = [];
    d.register({
      name: 'slow',
      handler: async () => {
        order.push('slow start');
        await new Promise((r) => setTimeout(r, 50));
        order.push('slow end');
      },
    });
    d.register({ name: 'fast', handler: () => void order.push('fast') });
    await Promise.all([d.execute({ execute: 'slow' }), d.execute({ execute: 'fast' })]);
    deepEqual(order, ['slow start', 'slow end', 'fast']);
  });

  it('gives up on a command that never answers, and goes on with the next', async () => {
    const d = new QmpDispatcher({ timeoutMs: 100 });
    d.register({ name: 'hang', handler: () => new Promise(() => {}) });
    d.register({ name: 'ok', handler: () => 1 });
    const [hung, next] = await Promise.all([d.execute({ execute: 'hang', id: 1 }), d.execute({ execute: 'ok' })]);
    deepEqual(hung, { ...generic('Command hang did not complete within 100 ms'), id: 1 });
    deepEqual(next, { return: 1 });
  });

  it('lets a handler call another command without deadlocking', async () => {
    const d = new QmpDispatcher({ timeoutMs: 1000 });
    d.register({ name: 'inner', args: { x: 'int' }, handler: (a) => a.x * 2 });
    d.register({ name: 'outer', handler: () => d.call('inner', { x: 21 }) });
    d.register({ name: 'outer-bad', handler: () => d.call('inner', { x: 'a' }) });
    deepEqual(await d.execute({ execute: 'outer' }), { return: 42 });
    deepEqual(await d.execute({ execute: 'outer-bad' }), generic("Invalid parameter type for 'x', expected: integer"));
  });

  it('refuses to register a name twice', () => {
    const d = new QmpDispatcher();
    d.register({ name: 'a', handler: () => 1 });
    let threw = false;
    try {
      d.register({ name: 'a', handler: () => 2 });
    } catch {
      threw = true;
    }
    ok(threw, 'duplicate registration throws');
  });

  it('parses JSON text for a console', async () => {
    const { d } = makeDispatcher();
    deepEqual(await d.executeJson('{"execute": "echo", "arguments": {"v": 2}, "id": "c1"}'), { return: 2, id: 'c1' });
    const r = (await d.executeJson('{"execute": ')) as { error: { class: string; desc: string } };
    equal(r.error.class, 'GenericError');
    ok(r.error.desc.startsWith('JSON parse error, '), r.error.desc);
  });
});

describe('QMP control commands', () => {
  it('query-commands lists every command, including ones registered later', async () => {
    const { d } = makeDispatcher();
    registerControlCommands(d, new Hmp());
    const names = () =>
      d.execute({ execute: 'query-commands' }).then((r: QmpReply) => (r as { return: { name: string }[] }).return.map((c) => c.name));
    const before = await names();
    for (const n of ['migrate', 'migrate-set-capabilities', 'query-commands', 'qmp_capabilities', 'human-monitor-command']) {
      ok(before.includes(n), `${n} is listed`);
    }
    d.register({ name: 'query-migrate', handler: () => ({}) });
    ok((await names()).includes('query-migrate'), 'a command added later is listed');
    const r = (await d.execute({ execute: 'query-commands' })) as { return: object[] };
    ok(r.return.every((c) => Object.keys(c).join() === 'name'), 'each entry is {name}');
  });

  it('qmp_capabilities says negotiation is over', async () => {
    const d = new QmpDispatcher();
    registerControlCommands(d, new Hmp());
    deepEqual(await d.execute({ execute: 'qmp_capabilities' }), {
      error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' },
    });
    deepEqual(
      await d.execute({ execute: 'qmp_capabilities', arguments: { enable: ['fast'] } }),
      generic("Parameter 'null' does not accept value 'fast'"),
    );
  });

  it('human-monitor-command runs HMP and checks cpu-index', async () => {
    const d = new QmpDispatcher();
    registerControlCommands(d, new Hmp());
    deepEqual(await d.execute({ execute: 'human-monitor-command', arguments: { 'command-line': 'nosuch' } }), {
      return: "unknown command: 'nosuch'\r\n",
    });
    deepEqual(await d.execute({ execute: 'human-monitor-command', arguments: { 'command-line': '' } }), { return: '' });
    deepEqual(
      await d.execute({ execute: 'human-monitor-command', arguments: { 'command-line': 'help', 'cpu-index': 1 } }),
      generic("Parameter 'cpu-index' expects a CPU number"),
    );
    deepEqual(await d.execute({ execute: 'human-monitor-command' }), generic("Parameter 'command-line' is missing"));
  });
});
