/* ab: the a-b memory stress test from QEMU's migration tests, for tabmig's RV32 machine.
 *
 * It prints 'A' once, then loops forever over the pages of
 *   [RAM base + 1 MiB, RAM base + RAM size - 1 MiB)
 * (memory-map.ts abRange), adding one to the first byte of every 4 KiB page, and prints one 'B'
 * after every full pass. There is no delay: the point is to dirty pages as fast as the vCPU runs.
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

int main(const char *cmdline) {
  (void)cmdline;
  uint32_t start = tm_boot.ram_base + AB_MARGIN;
  uint32_t end = tm_boot.ram_base + tm_boot.ram_size - AB_MARGIN;

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
