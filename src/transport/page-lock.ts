// A Web Lock this page holds for its whole life, named once per page load. A tab of the same
// browser that knows the name learns the moment this page is gone — closed, crashed or reloaded:
// the browser releases the lock then, and a request for it is granted (DESIGN §10: a destination
// in doubt about its source's fate). Web Locks are per browser profile and origin: for a peer in
// another browser the lock says nothing, and nobody asks it.

let held: Promise<string | null> | null = null;

function lockManager(): LockManager | null {
  return (globalThis.navigator as Navigator | undefined)?.locks ?? null;
}

/**
 * Takes this page's lock (once per page) and resolves with its name once it is granted; null
 * where there are no Web Locks (then nobody can learn from it).
 */
export function holdPageLock(): Promise<string | null> {
  held ??= new Promise<string | null>((resolve) => {
    const locks = lockManager();
    if (!locks) return resolve(null);
    const [a, b] = crypto.getRandomValues(new Uint32Array(2));
    const name = `tabmig-page-${a!.toString(36)}${b!.toString(36)}`;
    // Held until the page goes: the callback's promise never settles.
    locks.request(name, () => (resolve(name), new Promise<never>(() => {}))).catch(() => resolve(null));
  });
  return held;
}

/**
 * Resolves once the lock `name` is free — the page that held it is gone — and lets it go at once;
 * never while that page lives. `signal` stops waiting (the promise then rejects).
 */
export async function whenLockFree(name: string, signal: AbortSignal): Promise<void> {
  const locks = lockManager();
  if (!locks) return new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  await locks.request(name, { signal }, () => undefined);
}
