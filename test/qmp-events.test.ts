import { QmpDispatcher } from '../src/qmp/dispatcher.js';
import { QMP_EVENT, QmpEvents, forwardQmpEvents, type QmpEvent } from '../src/qmp/events.js';
import { installQmp, type QmpFunction } from '../src/qmp/install.js';
import { deepEqual, equal, ok } from './helpers/assert.js';

describe('QMP events', () => {
  it('have QEMU shape: event, data only when given, timestamp in seconds and microseconds', () => {
    const events = new QmpEvents({ nowMicros: () => 1_267_040_730_682_951 });
    const stop = events.emit('STOP');
    deepEqual(stop, { event: 'STOP', timestamp: { seconds: 1267040730, microseconds: 682951 } });
    ok(!('data' in stop), 'no data member for an event without data');
    const shutdown = events.emit('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    deepEqual(shutdown, {
      event: 'SHUTDOWN',
      data: { guest: true, reason: 'guest-shutdown' },
      timestamp: { seconds: 1267040730, microseconds: 682951 },
    });
  });

  it('stamp the wall clock', () => {
    const events = new QmpEvents();
    const before = Date.now() / 1000;
    const { timestamp } = events.emit('RESUME');
    const after = Date.now() / 1000;
    const t = timestamp.seconds + timestamp.microseconds / 1e6;
    ok(t >= before - 0.01 && t <= after + 0.01, `timestamp ${t} between ${before} and ${after}`);
    ok(Number.isInteger(timestamp.microseconds) && timestamp.microseconds >= 0 && timestamp.microseconds < 1e6, 'microseconds in range');
  });

  it('keep a bounded log, oldest first', () => {
    const events = new QmpEvents({ logSize: 3 });
    for (let i = 0; i < 5; i++) events.emit('E', { i });
    deepEqual(
      events.log.map((e) => e.data?.i),
      [2, 3, 4],
    );
    events.clearLog();
    equal(events.log.length, 0);
  });

  it('reach subscribers and a forwarded target as qmp-event CustomEvents', () => {
    const events = new QmpEvents();
    const seen: QmpEvent[] = [];
    const unsubscribe = events.subscribe((e) => seen.push(e));
    const target = new EventTarget();
    const forwarded: QmpEvent[] = [];
    target.addEventListener(QMP_EVENT, (e) => forwarded.push((e as CustomEvent<QmpEvent>).detail));
    const stopForwarding = forwardQmpEvents(events, target);
    const ev = events.emit('STOP');
    equal(seen[0], ev);
    equal(forwarded[0], ev);
    unsubscribe();
    stopForwarding();
    events.emit('RESUME');
    equal(seen.length, 1);
    equal(forwarded.length, 1);
  });
});

describe('installQmp', () => {
  it('puts qmp() on the target and forwards events until removed', async () => {
    const dispatcher = new QmpDispatcher();
    dispatcher.register({ name: 'query-name', handler: () => ({ name: 'lab' }) });
    const events = new QmpEvents();
    const page = new EventTarget() as EventTarget & { qmp?: QmpFunction };
    const got: QmpEvent[] = [];
    page.addEventListener('qmp-event', (e) => got.push((e as CustomEvent<QmpEvent>).detail));
    const uninstall = installQmp(page, dispatcher, events);
    ok(page.qmp, 'qmp installed');
    deepEqual(await page.qmp({ execute: 'query-name', id: 1 }), { return: { name: 'lab' }, id: 1 });
    deepEqual(await page.qmp('not an object'), { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
    events.emit('STOP');
    equal(got.length, 1);
    equal(got[0]!.event, 'STOP');
    uninstall();
    equal(page.qmp, undefined);
    events.emit('RESUME');
    equal(got.length, 1);
  });
});
