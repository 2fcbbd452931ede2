// QEMU's postcopy_ram_supported_by_host, for a browser tab: the destination's vCPU blocks on a
// missing page with Atomics.wait over shared memory, which needs SharedArrayBuffer (a
// cross-origin-isolated page). Without it postcopy-ram cannot be enabled at the destination.
export function postcopyHostSupport(): boolean {
  return typeof SharedArrayBuffer === 'function' && typeof Atomics.waitAsync === 'function' && (globalThis.crossOriginIsolated ?? true);
}
