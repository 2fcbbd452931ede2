// Postcopy between two real tabs over WebRTC: an a-b guest whose range precopy cannot move is
// switched with migrate-start-postcopy; the destination runs it while pages still come (on demand,
// over the return path and the preempt channel, and in the background). Then recovery: the link
// broken mid-postcopy (migrate-pause at the source, or the destination's connection dropped), both
// sides paused, migrate-recover + migrate resume=true, a second failure during the recovery
// handshake, and the guest's own invariant intact at the end.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep } from './harness.mjs';
import { sharedBrowser } from './session.mjs';

const FINAL = ['completed', 'failed', 'cancelled'];
const RAM_BASE = 0x8000_0000;
const PAGE = 4096;
const SIZE = 32 << 20;
const caps = (list) => ({ capabilities: Object.entries(list).map(([capability, state]) => ({ capability, state })) });

/** QEMU migration-test's check, read through HMP xp on the first byte of every page of the range. */
async function abCheck(tab, size) {
  const start = RAM_BASE + 0x10_0000;
  const bytes = await tab.page.evaluate(
    async ({ start, size, PAGE }) => {
      const out = [];
      for (let a = start; a < start + size; a += PAGE) {
        const r = await window.qmp({ execute: 'human-monitor-command', arguments: { 'command-line': `xp /1xb 0x${a.toString(16)}` } });
        const m = /:\s*0x([0-9a-f]+)/i.exec(r.return ?? '');
        out.push(m ? parseInt(m[1], 16) : -1);
      }
      return out;
    },
    { start, size, PAGE },
  );
  let drops = 0;
  for (let i = 1; i < bytes.length; i++) {
    if (bytes[i] === bytes[i - 1]) continue;
    if (bytes[i] === ((bytes[i - 1] - 1) & 255) && ++drops === 1) continue;
    return `page ${i} holds ${bytes[i]} after ${bytes[i - 1]}`;
  }
  return bytes.includes(-1) ? 'xp did not answer' : null;
}

describe('postcopy between two tabs', () => {
  const session = sharedBrowser();

  async function runs(tab) {
    const a = (await tab.ret('x-tabmig-guest-info')).instructions;
    await sleep(500);
    return (await tab.ret('x-tabmig-guest-info')).instructions > a;
  }

  /**
   * A destination with postcopy-ram (and blocktime), a running ab source; switched to postcopy.
   * `early`: precopy barely starts (nearly every page is still missing at the switch).
   */
  async function switched(postcopyBandwidth, { releaseRam = false, early = false, program = { program: 'ab', args: `size=${SIZE >> 20}M` } } = {}) {
    const b = await session.browser.open('?m=64M&incoming=defer&name=dest');
    await b.ret('migrate-set-capabilities', caps({ 'postcopy-ram': true, 'postcopy-blocktime': true, events: true }));
    await b.ret('migrate-incoming', { uri: 'webrtc:' });
    const { id } = await b.ret('x-tabmig-peer');
    const a = await session.browser.open('?m=64M&S&name=source');
    await a.ret('migrate-set-capabilities', caps({ 'postcopy-ram': true, 'return-path': true, events: true, 'release-ram': releaseRam }));
    if (postcopyBandwidth) await a.ret('migrate-set-parameters', { 'max-postcopy-bandwidth': postcopyBandwidth });
    if (early) await a.ret('migrate-set-parameters', { 'max-bandwidth': 64 << 10 });
    await a.ret('x-tabmig-load', program);
    await a.ret('cont');
    await sleep(300);
    await a.ret('migrate', { uri: 'webrtc:' + id });
    if (!early) {
      await a.until('query-migrate', (v) => v.status === 'active', 30000);
      await sleep(1000);
    }
    await a.ret('migrate-start-postcopy');
    return { a, b, id };
  }

  async function inPostcopy(postcopyBandwidth, options) {
    const { a, b, id } = await switched(postcopyBandwidth, options);
    await a.until('query-migrate', (v) => v.status !== 'active', 30000);
    await b.until('query-status', (v) => v.status === 'running', 30000);
    return { a, b, id };
  }

  /** Both sides paused: migrate-recover on the destination, migrate resume=true on the source; the scan at full speed. */
  async function recovers(a, b, id) {
    await b.ret('migrate-recover', { uri: 'webrtc:' });
    await a.ret('migrate', { uri: 'webrtc:' + id, resume: true });
    await a.until('query-migrate', (v) => v.status === 'postcopy-active' || v.status === 'completed', 60000);
    await a.ret('migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
  }

  async function completes(a, b) {
    const info = await a.until('query-migrate', (v) => FINAL.includes(v.status), 240000);
    assert.equal(info.status, 'completed', JSON.stringify(info).slice(0, 300));
    await b.until('query-migrate', (v) => v.status === 'completed', 30000);
    assert.ok(await runs(b), 'the destination guest runs');
    await b.ret('stop');
    assert.equal(await abCheck(b, SIZE), null, 'a-b invariant at the destination');
    assert.equal((await a.ret('query-status')).status, 'postmigrate');
    return info;
  }

  it('moves a guest precopy cannot converge; the destination runs while pages still come', async () => {
    const { a, b } = await inPostcopy(0);
    const during = (await a.ret('query-migrate')).status;
    assert.ok(['postcopy-active', 'completed'].includes(during), during);
    const info = await completes(a, b);
    assert.ok(info.ram['postcopy-requests'] > 0, 'pages were asked for');
    assert.match(await a.hmp('info migrate'), /postcopy request count: \d+/);
    const dest = await b.ret('query-migrate');
    assert.equal(typeof dest['postcopy-blocktime'], 'number', 'postcopy-blocktime reported');
    assert.equal(dest['postcopy-vcpu-blocktime'].length, 1);
    assert.match(await b.hmp('info migrate'), /postcopy blocktime: \d+/);
    const st = await a.ret('query-status');
    assert.notEqual(st.status, 'running', 'the source never runs the guest again');
    await a.page.close();
    await b.page.close();
  });

  it('recovers from migrate-pause: both sides pause, then recover and resume', async () => {
    const { a, b, id } = await inPostcopy(2 << 20);
    await a.ret('migrate-pause');
    await a.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    await b.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    assert.notEqual((await a.ret('query-status')).status, 'running');
    const err = await a.qmp({ execute: 'migrate-recover', arguments: { uri: 'webrtc:' } });
    assert.equal(err.error?.desc, 'Migrate recover can only be run when postcopy is paused.', 'recover is the destination\'s');
    await b.ret('migrate-recover', { uri: 'webrtc:' });
    const again = await b.qmp({ execute: 'migrate-recover', arguments: { uri: 'webrtc:' } });
    assert.equal(again.error?.desc, 'Migrate recovery is triggered already');
    await a.ret('migrate', { uri: 'webrtc:' + id, resume: true });
    await a.until('query-migrate', (v) => v.status === 'postcopy-active' || v.status === 'completed', 60000);
    await a.ret('migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
    await completes(a, b);
    await a.page.close();
    await b.page.close();
  });

  it("recovers after the destination's connection is dropped, and after a second failure during the handshake", async () => {
    const { a, b, id } = await inPostcopy(2 << 20);
    assert.deepEqual(await b.ret('x-tabmig-drop-link'), { dropped: true });
    await a.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    await b.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    // Second failure: the source is held once the new link is up (postcopy-recover), then the
    // link breaks before the handshake is done. Both sides pause again.
    await a.ret('x-tabmig-hold', { point: 'postcopy-recover' });
    await b.ret('migrate-recover', { uri: 'webrtc:' });
    await a.ret('migrate', { uri: 'webrtc:' + id, resume: true });
    await a.until('x-tabmig-held', (v) => v.point === 'postcopy-recover', 60000);
    assert.equal((await a.ret('query-migrate')).status, 'postcopy-recover');
    await a.ret('x-tabmig-drop-link');
    await a.ret('x-tabmig-release');
    await a.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    await b.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    // And the third time it works.
    await recovers(a, b, id);
    await completes(a, b);
    await a.page.close();
    await b.page.close();
  });

  it('release-ram: the link dropped during the background scan, recovered; no page given back was lost', async () => {
    const { a, b, id } = await inPostcopy(256 << 10, { releaseRam: true });
    // The scan has pages in flight (and some given back on the destination's receipts) when the link goes.
    await a.until('x-tabmig-postcopy-info', (v) => v['page-states'].released > 0, 30000);
    assert.deepEqual(await b.ret('x-tabmig-drop-link'), { dropped: true });
    await a.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    await b.until('query-migrate', (v) => v.status === 'postcopy-paused', 30000);
    await recovers(a, b, id);
    await completes(a, b);
    await a.page.close();
    await b.page.close();
  });

  it('a RAM hash asked of a destination still missing some 16k pages is answered, and the migration completes', async () => {
    const { a, b } = await inPostcopy(256 << 10, { early: true });
    const info = await b.ret('x-tabmig-postcopy-info');
    assert.ok(info['missing-pages'] > 12 * 1024, `pages missing at the destination: ${info['missing-pages']}`);
    const { hash } = await b.ret('x-tabmig-ram-hash');
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal((await b.ret('x-tabmig-postcopy-info'))['missing-pages'], 0, 'every page was brought in to hash it');
    await completes(a, b);
    await a.page.close();
    await b.page.close();
  });

  it('a package the destination refuses (a device check fails): the source runs its guest again', async () => {
    // A guest that points the display at a frame outside RAM: the device check refuses it at
    // the destination, and in postcopy the device state travels only in the package.
    const { a, b } = await switched(0, { early: true, program: { elf: badDisplayElf(), name: 'bad-display' } });
    const failed = await a.until('query-migrate', (v) => FINAL.includes(v.status), 60000);
    assert.equal(failed.status, 'failed', JSON.stringify(failed).slice(0, 300));
    assert.match(failed['error-desc'], /tabmig-display/);
    assert.equal((await a.ret('query-status')).status, 'running', 'the source runs its guest again');
    assert.ok(await runs(a), 'and the guest advances there');
    assert.equal((await b.until('query-migrate', (v) => FINAL.includes(v.status), 30000)).status, 'failed');
    assert.equal((await b.ret('query-status')).status, 'inmigrate', "the destination's guest never ran");
    await a.page.close();
    await b.page.close();
  });
});

/**
 * A tiny RV32 guest, as an ELF in base64: enables a 64x64 display whose frame is at address 0
 * (outside RAM), then counts in a loop.
 */
function badDisplayElf() {
  const code = [
    0x100012b7, // lui  t0, 0x10001       (the display's registers)
    0x04000313, // addi t1, zero, 64
    0x0062a223, // sw   t1, 4(t0)         width
    0x0062a423, // sw   t1, 8(t0)         height
    0x00100313, // addi t1, zero, 1
    0x0062a823, // sw   t1, 16(t0)        enable (fb_addr stays 0)
    0x00138393, // addi t2, t2, 1
    0xffdff06f, // j    .-4
  ];
  const text = new Uint8Array(new Uint32Array(code).buffer);
  const file = new Uint8Array(52 + 32 + text.length);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 243, true); // EM_RISCV
  v.setUint32(20, 1, true);
  v.setUint32(24, RAM_BASE, true); // entry
  v.setUint32(28, 52, true); // phoff
  v.setUint16(40, 52, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, 1, true);
  v.setUint32(52, 1, true); // PT_LOAD
  v.setUint32(56, 84, true); // offset
  v.setUint32(60, RAM_BASE, true);
  v.setUint32(64, RAM_BASE, true);
  v.setUint32(68, text.length, true);
  v.setUint32(72, text.length, true);
  v.setUint32(76, 7, true);
  v.setUint32(80, 4, true);
  file.set(text, 84);
  return Buffer.from(file).toString('base64');
}
