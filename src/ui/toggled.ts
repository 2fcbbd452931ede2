// A checkbox list's selection as a Lit property: a new Set each change, so Lit sees it change.

/** `set` with `item` in it (`on`) or not, as a new Set. */
export function toggled<T>(set: ReadonlySet<T>, item: T, on: boolean): Set<T> {
  const next = new Set(set);
  if (on) next.add(item);
  else next.delete(item);
  return next;
}
