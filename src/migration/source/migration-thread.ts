// The source's migration thread (QEMU's migration_thread): setup, iterations of dirty sync and
// page sending paced by the rate limit, the convergence test against bandwidth × downtime-limit,
// and the stop-and-copy, where this thread stops the vCPU itself through the control block. On
// failure or cancel the guest runs again exactly as it was.

import { ControlBlock } from '../../guest/control-block.js';
import { DEVICES, DeviceState } from '../../guest/device-state.js';
import type { RunState } from '../../guest/runstate.js';
import { MigCounter, MigWord, MigrationBlock } from '../migration-block.js';
import { MigrationOptions } from '../options.js';
import { isFinished, type MigrationStatus } from '../state.js';
import {
  BUFFER_DELAY_MS,
  GLOBALSTATE_SPEC,
  RAM_SECTION_INSTANCE,
  RAM_SECTION_NAME,
  RAM_SECTION_VERSION,
  StreamWriter,
  buildVmDescription,
  writeCommand,
  writeConfiguration,
  writeDeviceSection,
  writeEof,
  writeGlobalStateSection,
  writeSectionEnd,
  writeSectionFooter,
  writeSectionPart,
  writeSectionStart,
  writeStreamHeader,
  writeVmDescription,
} from '../stream/index.js';
import { RamSaver } from './ram-saver.js';
import type { FromSource, SourceStart } from './source-protocol.js';
import type { OpenedTarget } from './stream-target.js';

const RAM_SECTION_ID = 0;
const GLOBALSTATE_SECTION_ID = 1;
const FIRST_DEVICE_SECTION_ID = 2;
/** How long the source waits for the destination's SHUT after the last byte (QEMU waits forever
 *  on a socket; a browser tab that vanished must not hang the source). */
const RETURN_PATH_SHUT_TIMEOUT_MS = 30_000;
/** Chunk size of the stream: large messages carry more per data-channel send. */
const STREAM_CHUNK = 256 * 1024;

export class MigrationThread {
  private readonly block: MigrationBlock;
  private readonly ctl: ControlBlock;
  private readonly state: DeviceState;
  private readonly options: MigrationOptions;
  private readonly w: StreamWriter;
  private readonly ram: RamSaver;
  private readonly footers: boolean;
  private vmWasRunning = false;
  private runstateAtStop: RunState = 'running';
  private downtimeStart = 0;
  private iterationStart = 0;
  private iterationInitialBytes = 0;
  private thresholdBytes = 0;
  private error: string | null = null;
  /** Live copy of downtime-limit (set-downtime-limit changes it; the options are a snapshot). */
  private downtimeLimit: number;
  /** Set once the last byte of the stream has left. */
  private allSent = false;

  constructor(
    private readonly start: SourceStart,
    private readonly target: OpenedTarget,
    private readonly post: (msg: FromSource) => void,
  ) {
    this.block = new MigrationBlock(start.block);
    this.ctl = new ControlBlock(start.control);
    this.state = new DeviceState(start.deviceState);
    this.options = MigrationOptions.fromPlain(start.options);
    this.footers = this.options.sendSectionFooter;
    this.downtimeLimit = this.options.downtimeLimit;
    this.w = new StreamWriter(target.sink, { chunkSize: STREAM_CHUNK, highWater: 2 * STREAM_CHUNK });
    this.w.setRateLimit(this.options.maxBandwidth);
    this.ram = new RamSaver(new Uint8Array(start.ram), start.dirtyLog, this.w, this.block);
    target.channel?.closed.then((info) => {
      // Once every byte is out, a close is the destination being done; the return path's SHUT
      // (or its absence) decides how the migration ended.
      if (!this.allSent) this.fail(`Unable to write to the migration channel: ${info.reason}`);
    });
  }

  /** migrate-set-parameters downtime-limit mid-migration: the next convergence test uses it. */
  setDowntimeLimit(ms: number): void {
    this.downtimeLimit = ms;
  }

  setRateLimit(bytesPerSecond: number): void {
    // Once the guest is stopped the limit no longer applies (QEMU sets it to the maximum).
    if (this.block.status === 'active' || this.block.status === 'setup') this.w.setRateLimit(bytesPerSecond);
  }

  /** migrate_cancel: the status is already 'cancelling'; make every pending write fail now. */
  cancel(): void {
    this.w.shutdown();
    this.block.bumpWord(MigWord.CONTINUE);
  }

  async run(): Promise<void> {
    const setupStart = performance.now();
    this.iterationStart = setupStart;
    try {
      this.setupStream();
      this.block.set(MigCounter.SETUP_TIME, Math.round(performance.now() - setupStart));
      // The header and block list count as transferred from the moment the migration is active.
      this.block.set(MigCounter.TRANSFERRED, this.w.transferred);
      this.transition('setup', 'active');
      while (this.block.status === 'active') {
        if (!this.w.rateLimitExceeded()) {
          const pending = this.ram.pending(this.thresholdBytes);
          if (pending > 0 && pending >= this.thresholdBytes) this.iterate();
          else {
            await this.completion();
            break;
          }
        }
        if (this.w.error) {
          this.fail(this.w.error.message);
          break;
        }
        this.updateCounters(performance.now());
        if (this.w.rateLimitExceeded()) await this.w.waitForRateLimit();
        if (this.w.needsDrain) await this.w.ready();
        else await yieldToEventLoop();
      }
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
    await this.finish();
  }

  private setupStream(): void {
    writeStreamHeader(this.w);
    if (this.options.sendConfiguration) writeConfiguration(this.w, this.start.machineType);
    if (this.start.returnPath) {
      writeCommand(this.w, { type: 'OPEN_RETURN_PATH' });
      writeCommand(this.w, { type: 'PING', value: 1 });
    }
    writeSectionStart(this.w, RAM_SECTION_ID, RAM_SECTION_NAME, RAM_SECTION_INSTANCE, RAM_SECTION_VERSION);
    this.ram.setup();
    this.footer(RAM_SECTION_ID);
  }

  private iterate(): void {
    writeSectionPart(this.w, RAM_SECTION_ID);
    this.ram.iterate();
    this.ram.writeEos();
    this.footer(RAM_SECTION_ID);
    this.block.add(MigCounter.ITERATIONS, 1);
    this.block.set(MigCounter.TRANSFERRED, this.w.transferred);
  }

  /** QEMU's migration_update_counters: every 100 ms, bandwidth → threshold, mbps, expected downtime. */
  private updateCounters(now: number): void {
    this.block.set(MigCounter.TRANSFERRED, this.w.transferred);
    this.block.set(MigCounter.TOTAL_TIME, Math.round(Date.now() - this.block.get(MigCounter.START_TIME)));
    if (now < this.iterationStart + BUFFER_DELAY_MS) return;
    const transferred = this.w.transferred - this.iterationInitialBytes;
    const ms = now - this.iterationStart;
    const bandwidth = transferred / ms;
    this.thresholdBytes = bandwidth * this.downtimeLimit;
    this.block.set(MigCounter.BANDWIDTH, bandwidth);
    this.block.set(MigCounter.THRESHOLD, this.thresholdBytes);
    this.block.set(MigCounter.MBPS, (transferred * 8) / (ms / 1000) / 1e6);
    if (this.block.get(MigCounter.DIRTY_PAGES_RATE) > 0 && transferred > 10000) {
      this.block.set(MigCounter.EXPECTED_DOWNTIME, Math.round(this.ram.remainingBytes / bandwidth));
    }
    // (The writer starts a fresh rate-limit window by itself every 100 ms; resetting it here too
    // would hand out two budgets in one window.)
    this.iterationStart = now;
    this.iterationInitialBytes = this.w.transferred;
  }

  /** QEMU's migration_completion: stop the guest, last pages, devices, EOF, wait for SHUT. */
  private async completion(): Promise<void> {
    this.downtimeStart = Date.now();
    this.vmWasRunning = this.ctl.runstate === 'running';
    this.runstateAtStop = this.ctl.runstate;
    if (!this.ctl.stopAndWait(2000)) throw new Error('the vCPU did not stop');
    this.setRunstate('finish-migrate');

    let current: MigrationStatus = 'active';
    if (this.options.pauseBeforeSwitchover) {
      if (!this.transition('active', 'pre-switchover')) return;
      const seen = this.block.word(MigWord.CONTINUE);
      while (this.block.status === 'pre-switchover' && this.block.word(MigWord.CONTINUE) === seen) {
        await this.block.waitWhile(MigWord.CONTINUE, seen, 1000);
      }
      if (!this.transition('pre-switchover', 'device')) return;
      current = 'device';
    }

    this.w.setRateLimit(0);
    writeSectionEnd(this.w, RAM_SECTION_ID);
    this.ram.complete();
    this.ram.writeEos();
    this.footer(RAM_SECTION_ID);
    this.writeDevices();
    writeEof(this.w);
    writeVmDescription(this.w, buildVmDescription({ devices: this.describedDevices(), machineType: this.start.machineType }));
    await this.w.flush();
    this.block.set(MigCounter.TRANSFERRED, this.w.transferred);
    if (this.w.error) throw this.w.error;
    this.allSent = true;

    if (this.start.returnPath) await this.awaitReturnPathShut();
    if (this.w.error) throw this.w.error;
    if (this.block.status !== current) return; // cancelled meanwhile
    const blob = await this.target.commit();
    if (blob && this.start.target.kind === 'file') this.post({ type: 'file', name: this.start.target.name, blob });
    // Everything query-migrate and query-status report for a completed migration is in place
    // before anyone hears 'completed' (QEMU sets them a moment later, in
    // migration_iteration_finish; a client polling in between would see zeros and finish-migrate).
    this.calculateComplete();
    this.setRunstate('postmigrate');
    this.transition(current, 'completed');
  }

  private get sendsGlobalState(): boolean {
    // QEMU sends globalstate unless store-global-state is off and the state is running or paused.
    return this.options.storeGlobalState || !['running', 'paused'].includes(this.globalRunstate);
  }

  /** The runstate the destination should take on: what the guest was doing when we stopped it. */
  private get globalRunstate(): RunState {
    // QEMU's global_state_store(): the runstate from just before the stop for the switchover.
    return this.runstateAtStop;
  }

  private describedDevices() {
    return this.sendsGlobalState ? [GLOBALSTATE_SPEC, ...DEVICES] : [...DEVICES];
  }

  private writeDevices(): void {
    const footers = this.footers;
    if (this.sendsGlobalState) writeGlobalStateSection(this.w, this.globalRunstate, GLOBALSTATE_SECTION_ID, { footers });
    DEVICES.forEach((spec, i) => writeDeviceSection(this.w, spec, this.state, FIRST_DEVICE_SECTION_ID + i, { footers }));
  }

  private async awaitReturnPathShut(): Promise<void> {
    const deadline = performance.now() + RETURN_PATH_SHUT_TIMEOUT_MS;
    while (this.block.word(MigWord.RP_SHUT) === 0 && this.block.word(MigWord.RP_ERROR) === 0) {
      if (this.w.error || this.isCancelling()) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error('the destination never confirmed the end of the migration on the return path');
      await this.block.waitWhile(MigWord.RP_SHUT, 0, Math.min(left, 200));
    }
    if (this.block.word(MigWord.RP_ERROR) !== 0) throw new Error(this.error ?? 'the return path failed');
    if (this.block.word(MigWord.RP_SHUT) === 2) throw new Error('the destination failed to load the migration stream');
  }

  private footer(sectionId: number): void {
    if (this.footers) writeSectionFooter(this.w, sectionId);
  }

  private isCancelling(): boolean {
    return this.block.status === 'cancelling';
  }

  /** QEMU's migration_calculate_complete: total time, downtime and the average throughput. */
  private calculateComplete(): void {
    const end = Date.now();
    const total = end - this.block.get(MigCounter.START_TIME);
    this.block.set(MigCounter.TOTAL_TIME, total);
    this.block.set(MigCounter.DOWNTIME, end - this.downtimeStart);
    const transferTime = total - this.block.get(MigCounter.SETUP_TIME);
    if (transferTime > 0) this.block.set(MigCounter.MBPS, (this.w.transferred * 8) / transferTime / 1000);
    this.block.set(MigCounter.REMAINING, 0);
  }

  /** QEMU's migration_iteration_finish and cleanup: the guest's fate and the final state. */
  private async finish(): Promise<void> {
    const status = this.block.status;
    if (status === 'completed') {
      await this.w.close();
    } else {
      this.w.shutdown();
      await this.target.abort(this.error ?? 'cancelled').catch(() => {});
      if (this.vmWasRunning) {
        this.setRunstate('running');
      } else if (this.ctl.runstate === 'finish-migrate') {
        this.setRunstate('postmigrate');
      }
      if (status === 'cancelling') this.transition('cancelling', 'cancelled');
    }
    this.post({ type: 'finished' });
  }

  private setRunstate(to: RunState): void {
    const from = this.ctl.runstate;
    this.ctl.runstate = to;
    this.ctl.requestRun(to === 'running');
    if (from !== to) this.post({ type: 'runstate', from, to });
  }

  private transition(from: MigrationStatus, to: MigrationStatus, error?: string): boolean {
    if (!this.block.compareAndSet(from, to)) return false;
    this.post(error === undefined ? { type: 'status', from, to } : { type: 'status', from, to, error });
    return true;
  }

  /** Fails the migration from whatever active state it is in, keeping the first error. */
  fail(message: string): void {
    this.error ??= message;
    for (;;) {
      const s = this.block.status;
      if (isFinished(s) || s === 'cancelling') return;
      // The guest runs again before anyone hears of the failure (QEMU restarts it in
      // migration_iteration_finish), so no one sees a failed migration with a frozen guest.
      if (this.vmWasRunning && this.ctl.runstate === 'finish-migrate' && this.block.status === s) this.setRunstate('running');
      if (this.transition(s, 'failed', this.error)) {
        this.w.shutdown();
        return;
      }
    }
  }
}

const tick = new MessageChannel();
let tickResolve: (() => void) | null = null;
tick.port1.onmessage = () => tickResolve?.();
/** Lets cancel and rate-limit messages in without setTimeout's clamping. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => {
    tickResolve = r;
    tick.port2.postMessage(0);
  });
}
