// The tabmig display: registers describing a framebuffer that lives in guest RAM. The guest draws
// into RAM (so frames migrate as RAM pages); the page reads the registers and RAM to paint a canvas.

import {
  DISPLAY_ENABLE,
  DISPLAY_FB_ADDR,
  DISPLAY_FRAME,
  DISPLAY_HEIGHT,
  DISPLAY_MAX_HEIGHT,
  DISPLAY_MAX_WIDTH,
  DISPLAY_STRIDE,
  DISPLAY_WIDTH,
} from '../memory-map.js';
import { DeviceName, type DeviceState } from '../device-state.js';

const REGISTERS: Record<number, string> = {
  [DISPLAY_FB_ADDR]: 'fb_addr',
  [DISPLAY_WIDTH]: 'width',
  [DISPLAY_HEIGHT]: 'height',
  [DISPLAY_STRIDE]: 'stride',
  [DISPLAY_ENABLE]: 'enable',
  [DISPLAY_FRAME]: 'frame',
};

export interface DisplayMode {
  fbAddr: number;
  width: number;
  height: number;
  stride: number;
  enabled: boolean;
  frame: number;
}

export class Display {
  constructor(private readonly state: DeviceState) {}

  reset(): void {
    for (const field of Object.values(REGISTERS)) this.state.set(DeviceName.DISPLAY, field, 0);
  }

  read(offset: number, size: number): number | undefined {
    const field = REGISTERS[offset];
    if (field === undefined || size !== 4) return undefined;
    return this.state.get(DeviceName.DISPLAY, field);
  }

  write(offset: number, size: number, value: number): boolean {
    const field = REGISTERS[offset];
    if (field === undefined || size !== 4) return false;
    if (field === 'width') value = Math.min(value >>> 0, DISPLAY_MAX_WIDTH);
    if (field === 'height') value = Math.min(value >>> 0, DISPLAY_MAX_HEIGHT);
    this.state.set(DeviceName.DISPLAY, field, value);
    return true;
  }
}

/** Reads the display registers (any thread; values may be mid-update, which only affects a frame). */
export function readDisplayMode(state: DeviceState): DisplayMode {
  const get = (f: string) => state.get(DeviceName.DISPLAY, f);
  const width = get('width');
  return {
    fbAddr: get('fb_addr'),
    width,
    height: get('height'),
    stride: get('stride') || width * 4,
    enabled: get('enable') !== 0,
    frame: get('frame'),
  };
}
