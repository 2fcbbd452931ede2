// QEMU's XBZRLE page cache (migration/page_cache.c): a direct-mapped table of
// xbzrle-cache-size / page-size slots (a power of two), indexed by page number. Each slot remembers
// the page it holds and the dirty-sync round it was last used in; a slot used in the last
// CACHED_PAGE_LIFETIME rounds is not given to another page (the newcomer is not cached).

/** Rounds a slot stays reserved for its page after it was last used. */
export const CACHED_PAGE_LIFETIME = 2;

export class PageCache {
  readonly slots: number;
  private readonly mask: number;
  private readonly data: Uint8Array;
  /** Page offset held in each slot, -1 for none. */
  private readonly addr: Float64Array;
  private readonly age: Float64Array;

  /**
   * `cacheSize` bytes (a power of two, at least one page). Slots beyond what `ramSize` could use
   * are never touched, so they are not allocated.
   */
  constructor(
    cacheSize: number,
    readonly pageSize: number,
    ramSize: number,
  ) {
    const slots = Math.floor(cacheSize / pageSize);
    if (slots < 1 || (slots & (slots - 1)) !== 0) throw new RangeError('Parameter cache size is not a power of two');
    this.mask = slots - 1;
    const pages = Math.ceil(ramSize / pageSize);
    this.slots = Math.min(slots, 2 ** Math.ceil(Math.log2(Math.max(1, pages))));
    this.data = new Uint8Array(this.slots * pageSize);
    this.addr = new Float64Array(this.slots).fill(-1);
    this.age = new Float64Array(this.slots);
  }

  private slot(offset: number): number {
    return (offset / this.pageSize) & this.mask & (this.slots - 1);
  }

  /** True if `offset`'s page is cached; marks it used in `round`. */
  isCached(offset: number, round: number): boolean {
    const s = this.slot(offset);
    if (this.addr[s] !== offset) return false;
    this.age[s] = round;
    return true;
  }

  /** The cached copy (a view: writing it updates the cache). Only after isCached(). */
  get(offset: number): Uint8Array {
    const s = this.slot(offset);
    return this.data.subarray(s * this.pageSize, (s + 1) * this.pageSize);
  }

  /** Caches `page` for `offset`; false if its slot holds another page still fresh. */
  insert(offset: number, page: Uint8Array, round: number): boolean {
    const s = this.slot(offset);
    const held = this.addr[s]!;
    if (held !== -1 && held !== offset && this.age[s]! + CACHED_PAGE_LIFETIME > round) return false;
    this.addr[s] = offset;
    this.age[s] = round;
    this.data.set(page, s * this.pageSize);
    return true;
  }
}
