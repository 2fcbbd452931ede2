/* ab: the a-b memory stress test from QEMU's migration tests, for tabmig's RV32 machine.
 *
 * It prints 'A' once, then loops forever over the pages of
 *   [RAM base + 1 MiB, RAM base + 1 MiB + size)      (memory-map.ts abRange)
 * adding one to the first byte of every 4 KiB page, and prints one 'B' after every full pass.
 * There is no delay: the point is to dirty pages as fast as the vCPU runs.
 *
 * size= sets the range (default 2M; `size=max` walks up to 1 MiB below the end of RAM). Every
 * page of the range is dirty again after one pass, so precopy can only finish when the whole
 * range fits in the downtime limit: bandwidth x downtime-limit. 2 MiB does at a few MB/s and the
 * default 300 ms; QEMU's own test walks 99 MB and raises downtime-limit to 30 s instead.
 *
 * Invariant after a migration (what the tests check): walking the range upwards, the first
 * byte of every page holds some value N up to the page the loop had reached, and N - 1 (mod 256)
 * from there to the end of the range. Any other pattern means a page was lost or duplicated.
 *
 * Before the first pass the first byte of every page is set to zero, one byte per page (as
 * QEMU's aarch64 a-b guest does). A fresh load already has zeroed RAM, but a reset that keeps
 * RAM would otherwise leave a half-finished pass behind and break the invariant. The rest of
 * each page is never touched.
 */

#include "lib/tabmig.h"

#define AB_MARGIN (1u << 20)

#define AB_DEFAULT_SIZE (2u << 20)

int main(const char *cmdline) {
  (void)cmdline;
  static const char *const known[] = {"size", 0};
  tm_warn_unknown_args("ab", known);
  uint32_t start = tm_boot.ram_base + AB_MARGIN;
  uint32_t limit = tm_boot.ram_base + tm_boot.ram_size - AB_MARGIN;
  uint32_t size = AB_DEFAULT_SIZE;
  char word[16];
  if (tm_arg("size", word, sizeof word) && strcmp(word, "max") == 0) size = limit - start;
  else size = tm_arg_size("size", AB_DEFAULT_SIZE);
  size &= ~(TM_PAGE_SIZE - 1);
  if (size < TM_PAGE_SIZE) size = TM_PAGE_SIZE;
  if (size > limit - start) size = limit - start;
  uint32_t end = start + size;

  tm_putc('A');

  for (uint32_t p = start; p < end; p += TM_PAGE_SIZE) *(volatile uint8_t *)(uintptr_t)p = 0;

  for (;;) {
    for (uint32_t p = start; p < end; p += TM_PAGE_SIZE) {
      volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)p;
      *b = (uint8_t)(*b + 1);
    }
    tm_putc('B');
  }
}
