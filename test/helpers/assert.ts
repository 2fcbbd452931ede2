// A tiny assertion helper for in-browser tests (no chai in this project): each failure says what
// was expected and what came instead.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

function show(v: unknown): string {
  try {
    return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

export function ok(value: unknown, message = 'expected a truthy value'): asserts value {
  if (!value) throw new AssertionError(`${message} (got ${show(value)})`);
}

export function equal<T>(actual: T, expected: T, message = ''): void {
  if (!Object.is(actual, expected)) {
    throw new AssertionError(`${message ? message + ': ' : ''}expected ${show(expected)}, got ${show(actual)}`);
  }
}

export function notEqual<T>(actual: T, unexpected: T, message = ''): void {
  if (Object.is(actual, unexpected)) throw new AssertionError(`${message ? message + ': ' : ''}did not expect ${show(actual)}`);
}

export function deepEqual(actual: unknown, expected: unknown, message = ''): void {
  const a = show(actual);
  const e = show(expected);
  if (a !== e) throw new AssertionError(`${message ? message + ': ' : ''}expected ${e}, got ${a}`);
}

export function match(text: string, pattern: RegExp, message = ''): void {
  if (!pattern.test(text)) throw new AssertionError(`${message ? message + ': ' : ''}${show(text)} does not match ${pattern}`);
}

/** Runs fn and returns what it threw; fails if it did not throw. */
export function throws(fn: () => unknown, message = 'expected an exception'): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new AssertionError(message);
}

export async function rejects(p: Promise<unknown> | (() => Promise<unknown>), message = 'expected a rejection'): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new AssertionError(message);
}

/** Polls cond until it is truthy or timeoutMs passes (for asynchronous effects, not for timing). */
export async function eventually<T>(cond: () => T | Promise<T>, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (performance.now() > end) throw new AssertionError(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
