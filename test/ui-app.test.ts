// The page as a user sees it: <tm-app> over a fake machine and a fake QMP client. Each test acts
// as a user would (click, type) and checks what appears on the page or what QMP was asked.

import { sendKeys } from '@web/test-runner-commands';
import type { DisplayMode } from '../src/guest/devices/display.js';
import { Machine } from '../src/guest/machine.js';
import { RAM_BASE } from '../src/guest/memory-map.js';
import type { RunState } from '../src/guest/runstate.js';
import { createQmp } from '../src/qmp/index.js';
import type { MachineLike, ProgramInfo } from '../src/ui/services/machine-service.js';
import type { QmpClient, QmpCommand, QmpReply } from '../src/ui/services/qmp-client.js';
import '../src/ui/tm-app.js';
import type { TmApp } from '../src/ui/tm-app.js';
import { deepEqual, equal, eventually, match, ok } from './helpers/assert.js';

class FakeMachine extends EventTarget implements MachineLike {
  runstate: RunState = 'running';
  readonly ramSize = 1 << 20;
  readonly ramBytes = new Uint8Array(this.ramSize);
  programName = 'ab';
  programArgs = '';
  instructionsRetired = 0;
  serialOutput = '';
  display: DisplayMode = { fbAddr: 0, width: 0, height: 0, stride: 0, enabled: false, frame: 0 };
  readonly input: string[] = [];

  sendInput(text: string): void {
    this.input.push(text);
  }

  setRunstate(to: RunState): void {
    const from = this.runstate;
    this.runstate = to;
    this.dispatchEvent(new CustomEvent('runstate', { detail: { from, to } }));
  }

  print(text: string): void {
    this.serialOutput += text;
    this.dispatchEvent(new CustomEvent('serial', { detail: { text } }));
  }
}

class FakeQmp implements QmpClient {
  readonly events = new EventTarget();
  readonly sent: QmpCommand[] = [];
  replies: Record<string, QmpReply> = {};

  async execute(cmd: QmpCommand): Promise<QmpReply> {
    this.sent.push(cmd);
    if (cmd.execute === 'human-monitor-command') return { return: 'VM status: running\r\n' };
    return this.replies[cmd.execute] ?? { return: {} };
  }

  emit(event: string, data: unknown): void {
    const detail = { event, data, timestamp: { seconds: 1700000000, microseconds: 0 } };
    this.events.dispatchEvent(new CustomEvent('qmp-event', { detail }));
  }
}

const PROGRAMS: ProgramInfo[] = [
  { name: 'life', description: "Conway's Game of Life on the display", defaultArgs: 'speed=20' },
  { name: 'ab', description: "QEMU's migration test program", defaultArgs: '' },
];

let app: TmApp;
let machine: FakeMachine;
let qmp: FakeQmp;

async function mount(setup: (a: TmApp) => void = () => {}): Promise<void> {
  app = document.createElement('tm-app');
  setup(app);
  document.body.append(app);
  await app.updateComplete;
}

/** The first element matching `selector` inside the shadow root of `tag` (inside <tm-app>). */
function inPanel<E extends Element = HTMLElement>(tag: string, selector: string): E {
  const host = app.shadowRoot!.querySelector(tag);
  ok(host, `<${tag}> is on the page`);
  const el = host.shadowRoot!.querySelector<E>(selector);
  ok(el, `${selector} in <${tag}>`);
  return el;
}

function text(tag: string, selector: string): string {
  return inPanel(tag, selector).textContent ?? '';
}

/** Waits for `selector` in `tag` to exist and satisfy `pred` (the panels render asynchronously). */
async function until<E extends Element = HTMLElement>(tag: string, selector: string, pred: (el: E) => unknown = () => true, what = selector): Promise<E> {
  const found = await eventually(() => {
    const el = app.shadowRoot?.querySelector(tag)?.shadowRoot?.querySelector<E>(selector);
    return el && pred(el) ? el : null;
  }, 5000, what);
  return found!;
}

function lastSent(): QmpCommand | undefined {
  return qmp.sent[qmp.sent.length - 1];
}

async function typeIntoConsole(line: string): Promise<void> {
  const input = await until<HTMLInputElement>('tm-qmp-console', 'form input');
  input.value = line;
  inPanel<HTMLFormElement>('tm-qmp-console', 'form').requestSubmit();
}

afterEach(() => {
  app?.remove();
});

describe('tm-app: startup error', () => {
  it('shows the error in a banner instead of a blank page', async () => {
    await mount((a) => {
      a.startupError = "Invalid RAM size: '3G' is out of range: tabmig takes 16M to 1G";
      a.vmName = 'alice';
    });
    const banner = app.shadowRoot!.querySelector('[role=alert]');
    ok(banner, 'an alert banner is shown');
    match(banner.textContent ?? '', /Invalid RAM size: '3G' is out of range/);
    match(banner.textContent ?? '', /could not start/);
    equal(app.shadowRoot!.querySelector('tm-controls'), null, 'no machine controls without a machine');
  });

  it('shows no banner when the machine started', async () => {
    machine = new FakeMachine();
    qmp = new FakeQmp();
    await mount((a) => Object.assign(a, { machine, qmp, programs: PROGRAMS }));
    equal(app.shadowRoot!.querySelector('.banner'), null);
  });
});

describe('tm-app: machine panels', () => {
  beforeEach(async () => {
    machine = new FakeMachine();
    qmp = new FakeQmp();
    await mount((a) => Object.assign(a, { machine, qmp, programs: PROGRAMS, vmName: 'alice' }));
  });

  it('shows the tab name and the runstate, and follows runstate changes', async () => {
    await until('tm-header', '.value', (el) => el.textContent === 'alice');
    await until('tm-status', 'tm-runstate-badge', (el) => (el as HTMLElement & { state: string }).state === 'running');
    match(text('tm-status', 'footer'), /ab/);
    machine.setRunstate('paused');
    await until('tm-status', 'tm-runstate-badge', (el) => el.shadowRoot?.textContent?.includes('paused'), 'status shows paused');
    const header = await until('tm-header', 'tm-runstate-badge');
    await eventually(() => header.shadowRoot?.textContent?.includes('paused'), 5000, 'header shows paused');
    match(document.title, /alice · paused/);
  });

  it('sends stop when Pause is clicked, and cont when Run is', async () => {
    (await until('tm-controls', 'button.pause')).click();
    await eventually(() => lastSent(), 5000, 'a command');
    deepEqual(lastSent(), { execute: 'stop' });
    machine.setRunstate('paused');
    (await until('tm-controls', 'button.run')).click();
    await eventually(() => lastSent()?.execute === 'cont', 5000, 'cont');
  });

  it('sends system_reset for Reset', async () => {
    const reset = await eventually(() => {
      const buttons = app.shadowRoot!.querySelector('tm-controls')?.shadowRoot?.querySelectorAll('button') ?? [];
      return [...buttons].find((b) => b.textContent?.trim() === 'Reset');
    }, 5000, 'the Reset button');
    reset!.click();
    await eventually(() => lastSent()?.execute === 'system_reset', 5000, 'system_reset');
  });

  it("shows QEMU's error inline when a command fails", async () => {
    machine.setRunstate('shutdown');
    qmp.replies.cont = { error: { class: 'GenericError', desc: 'Resetting the Virtual Machine is required' } };
    (await until('tm-controls', 'button.run')).click();
    const feedback = await until('tm-controls', '.feedback.failed');
    match(feedback.textContent ?? '', /GenericError: Resetting the Virtual Machine is required/);
  });

  it('loads a built-in program with its default arguments through x-tabmig-load', async () => {
    const select = await until<HTMLSelectElement>('tm-controls', 'select', (s) => s.value === 'ab', 'picker shows the running program');
    match(text('tm-controls', '.desc'), /migration test program/);
    select.value = 'life';
    select.dispatchEvent(new Event('change'));
    const args = await until<HTMLInputElement>('tm-controls', 'input.args', (i) => i.value === 'speed=20', 'args prefilled');
    equal(args.value, 'speed=20');
    match(text('tm-controls', '.desc'), /Game of Life/);
    (await until<HTMLButtonElement>('tm-controls', 'button.primary')).click();
    await eventually(() => lastSent()?.execute === 'x-tabmig-load', 5000, 'x-tabmig-load');
    deepEqual(lastSent(), { execute: 'x-tabmig-load', arguments: { program: 'life', args: 'speed=20' } });
  });

  it('the QMP console sends JSON as typed and shows the reply', async () => {
    qmp.replies['query-status'] = { return: { status: 'running', running: true } };
    await typeIntoConsole('{"execute": "query-status"}');
    await eventually(() => lastSent(), 5000, 'a command');
    deepEqual(lastSent(), { execute: 'query-status' });
    const log = await until('tm-qmp-console', '.log', (el) => el.textContent?.includes('"running": true'), 'the reply');
    match(log.textContent ?? '', /→\{"execute":"query-status"\}/);
  });

  it('the QMP console sends any other line as HMP and shows its text', async () => {
    await typeIntoConsole('info status');
    await eventually(() => lastSent(), 5000, 'a command');
    deepEqual(lastSent(), { execute: 'human-monitor-command', arguments: { 'command-line': 'info status' } });
    const out = await until('tm-qmp-console', '.hmp-out');
    equal(out.textContent, 'VM status: running');
    match(text('tm-qmp-console', '.log'), /\(qemu\) info status/);
  });

  it('the QMP console answers malformed JSON itself, as QEMU would', async () => {
    await typeIntoConsole('{"execute": ');
    const err = await until('tm-qmp-console', '.reply.error');
    match(err.textContent ?? '', /"GenericError"/);
    match(err.textContent ?? '', /JSON parse error/);
    equal(qmp.sent.length, 0, 'nothing was sent');
  });

  it('the QMP console recalls earlier commands with the up arrow', async () => {
    await typeIntoConsole('info status');
    await typeIntoConsole('{"execute": "stop"}');
    await eventually(() => qmp.sent.length === 2, 5000, 'both sent');
    const input = inPanel<HTMLInputElement>('tm-qmp-console', 'form input');
    input.focus();
    await sendKeys({ press: 'ArrowUp' });
    equal(input.value, '{"execute": "stop"}');
    await sendKeys({ press: 'ArrowUp' });
    equal(input.value, 'info status');
    await sendKeys({ press: 'ArrowDown' });
    await sendKeys({ press: 'ArrowDown' });
    equal(input.value, '');
  });

  it('quick-command chips send their command', async () => {
    const chip = await until<HTMLButtonElement>('tm-qmp-console', '.chip', (c) => c.textContent === 'query-status');
    chip.click();
    await eventually(() => lastSent()?.execute === 'query-status', 5000, 'query-status');
    const xp = await until<HTMLButtonElement>('tm-qmp-console', '.chip.hmp:last-of-type', (c) => c.textContent?.startsWith('xp'));
    xp.click();
    await eventually(() => lastSent()?.execute === 'human-monitor-command', 5000, 'xp via HMP');
    deepEqual(lastSent()?.arguments, { 'command-line': 'xp /8xw 0x80000000' });
  });

  it('the QMP console shows events as they arrive', async () => {
    await until('tm-qmp-console', '.log');
    qmp.emit('MIGRATION', { status: 'active' });
    const ev = await until('tm-qmp-console', '.event');
    match(ev.textContent ?? '', /MIGRATION/);
    match(ev.textContent ?? '', /"status":"active"/);
  });

  /** What the serial console's terminal shows, line by line. */
  const serialText = () => (app.shadowRoot?.querySelector('tm-serial') as (HTMLElement & { screenText(): string }) | null)?.screenText() ?? '';

  it('the serial console shows what the guest prints, as a terminal does (CR redraws, colours)', async () => {
    machine.print('Hello from the \x1b[1;32mguest\x1b[0m\r\n');
    machine.print('progress 10%\rprogress 20%');
    await eventually(() => serialText().includes('progress 20%'), 5000, 'the output on the terminal');
    match(serialText(), /^Hello from the guest\nprogress 20%/);
    ok(!serialText().includes('10%'), 'a carriage return redraws the line');
  });

  it('the serial console sends typed keys to the guest', async () => {
    const area = await until<HTMLTextAreaElement>('tm-serial', 'textarea');
    area.focus();
    await sendKeys({ type: 'ls' });
    await sendKeys({ press: 'Enter' });
    await sendKeys({ press: 'Backspace' });
    await eventually(() => machine.input.join('') === 'ls\r\x7f', 5000, `keys reach the guest (got ${JSON.stringify(machine.input)})`);
  });

  it('the serial console sends pasted text with CR line ends', async () => {
    const area = await until<HTMLTextAreaElement>('tm-serial', 'textarea');
    const data = new DataTransfer();
    data.setData('text/plain', 'one\ntwo\n');
    area.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    await eventually(() => machine.input.join('') === 'one\rtwo\r', 5000, `the paste reaches the guest (got ${JSON.stringify(machine.input)})`);
  });

  it('the display says it is off when the guest has none', async () => {
    const note = await until('tm-display', '.off-note');
    match(note.textContent ?? '', /Display off/);
    match(note.textContent ?? '', /ab/);
  });

  it('the display paints the framebuffer from guest RAM', async () => {
    const words = new Uint32Array(machine.ramBytes.buffer);
    const fb = 0x1000; // offset into RAM
    const colours = [0x00ff0000, 0x0000ff00, 0x000000ff, 0x00ffffff]; // red, green, blue, white
    colours.forEach((c, i) => (words[fb / 4 + i] = c));
    machine.display = { fbAddr: RAM_BASE + fb, width: 2, height: 2, stride: 8, enabled: true, frame: 1 };
    const canvas = await until<HTMLCanvasElement>('tm-display', 'canvas', (c) => !c.hidden && c.width === 2);
    const px = await eventually(() => {
      const d = canvas.getContext('2d')!.getImageData(0, 0, 2, 2).data;
      return d[3] === 255 ? Array.from(d) : null;
    }, 5000, 'a painted frame');
    deepEqual(px, [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255]);
    equal(getComputedStyle(canvas).imageRendering, 'pixelated');
  });

  it('the status line shows speed while running', async () => {
    const start = performance.now();
    const timer = setInterval(() => (machine.instructionsRetired = Math.round((performance.now() - start) * 5000)), 50);
    try {
      await until('tm-status', '.mips', (el) => /\d MIPS/.test(el.textContent ?? ''), 'MIPS figure');
      machine.setRunstate('paused');
      await until('tm-status', '.mips', (el) => el.textContent === '—', 'no MIPS while paused');
    } finally {
      clearInterval(timer);
    }
  });
});

describe('tm-app: with the real machine and QMP', () => {
  let real: Machine;

  afterEach(() => real?.terminate());

  it('runs the demo: the display paints, the serial console prints, Pause stops the guest', async () => {
    real = new Machine({ ramSize: 16 << 20, runstate: 'running' });
    await real.ready;
    await real.load({ builtin: 'life' });
    const q = createQmp({ machine: real, name: 'alice' });
    await mount((a) => Object.assign(a, { machine: real, qmp: { execute: (c: QmpCommand) => q.dispatcher.execute(c), events: q.events }, vmName: 'alice' }));

    await eventually(() => ((app.shadowRoot?.querySelector('tm-serial') as (HTMLElement & { screenText(): string }) | null)?.screenText() ?? '').includes('Game of Life'), 10000, 'the guest banner on serial');
    const canvas = await until<HTMLCanvasElement>('tm-display', 'canvas', (c) => !c.hidden && c.width === real.display.width);
    await eventually(() => {
      const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < d.length; i += 4) if (d[i]! + d[i + 1]! + d[i + 2]! > 0) return true;
      return false;
    }, 10000, 'living cells on the canvas');

    (await until('tm-controls', 'button.pause')).click();
    await until('tm-status', 'tm-runstate-badge', (el) => (el as HTMLElement & { state: string }).state === 'paused', 'status shows paused');
    equal(real.runstate, 'paused');
    await until('tm-controls', '.feedback', (el) => el.textContent?.includes('✓'), 'stop acknowledged');

    await typeIntoConsole('info status');
    await until('tm-qmp-console', '.hmp-out', (el) => /paused/.test(el.textContent ?? ''), 'info status says paused');
  });
});
