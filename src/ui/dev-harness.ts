// TEMPORARY: mounts <tm-app> with a real Machine and a tiny stand-in QMP, until src/main.ts exists.
import { Machine } from '../guest/machine.js';
import { parseRamSize } from '../guest/memory-map.js';
import './tm-app.js';

const app = document.querySelector('tm-app')!;
const q = new URLSearchParams(location.search);
app.vmName = q.get('name') ?? 'alice';
try {
  const machine = new Machine({ ramSize: parseRamSize(q.get('m') ?? '64M'), runstate: q.has('S') ? 'prelaunch' : 'running' });
  const events = new EventTarget();
  const emit = (event: string, data: unknown = {}) => {
    const t = Date.now();
    events.dispatchEvent(new CustomEvent('qmp-event', { detail: { event, data, timestamp: { seconds: Math.floor(t / 1000), microseconds: (t % 1000) * 1000 } } }));
  };
  const qmp = {
    events,
    async execute(cmd: { execute: string; arguments?: any }) {
      const a = cmd.arguments ?? {};
      switch (cmd.execute) {
        case 'stop': await machine.stop(); emit('STOP'); return { return: {} };
        case 'cont': await machine.cont(); emit('RESUME'); return { return: {} };
        case 'system_reset': await machine.reset(); emit('RESET', { guest: false, reason: 'host-qmp-system-reset' }); return { return: {} };
        case 'query-status': return { return: { status: machine.runstate, running: machine.runstate === 'running' } };
        case 'x-tabmig-load':
          if (a.elf) { const b = Uint8Array.from(atob(a.elf), (c) => c.charCodeAt(0)); await machine.load({ name: a.name, elf: b }, a.args); }
          else await machine.load({ builtin: a.program }, a.args);
          return { return: {} };
        case 'human-monitor-command':
          if (a['command-line'] === 'info status') return { return: `VM status: ${machine.runstate}\r\n` };
          return { return: `unknown command: '${a['command-line']}'\r\n` };
        default: return { error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` } };
      }
    },
  };
  app.machine = machine;
  app.qmp = qmp;
  await machine.ready;
  await machine.load({ builtin: q.get('program') ?? 'life' });
  if (q.has('S')) app.startupError = '';
} catch (e) {
  app.startupError = (e as Error).message;
}
