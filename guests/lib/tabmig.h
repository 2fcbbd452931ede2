/* tabmig guest library: the toy machine's devices, boot information, console output and
 * command-line arguments, for freestanding RV32IM programs (no libc).
 *
 * The address map mirrors src/guest/memory-map.ts.
 */
#ifndef TABMIG_H
#define TABMIG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- address map -------------------------------------------------------------------------- */

#define TM_RAM_BASE        0x80000000u
#define TM_RAM_SIZE_DEFAULT (64u << 20)
#define TM_PAGE_SIZE       4096u

#define TM_EXIT_BASE       0x00100000u /* SiFive test finisher */
#define TM_EXIT_PASS       0x5555u
#define TM_EXIT_FAIL       0x3333u
#define TM_EXIT_RESET      0x7777u

#define TM_CLINT_BASE      0x02000000u
#define TM_CLINT_MTIME     (TM_CLINT_BASE + 0xbff8u)
#define TM_CLINT_MTIMECMP  (TM_CLINT_BASE + 0x4000u)
#define TM_TIMEBASE_HZ     10000000u   /* mtime ticks per second */

#define TM_UART_BASE       0x10000000u /* NS16550A, byte registers */
#define TM_UART_RBR        0
#define TM_UART_THR        0
#define TM_UART_LSR        5
#define TM_UART_LSR_DR     0x01u
#define TM_UART_LSR_THRE   0x20u

#define TM_DISPLAY_BASE    0x10001000u /* 32-bit registers */
#define TM_DISPLAY_FB_ADDR 0x00
#define TM_DISPLAY_WIDTH   0x04
#define TM_DISPLAY_HEIGHT  0x08
#define TM_DISPLAY_STRIDE  0x0c
#define TM_DISPLAY_ENABLE  0x10
#define TM_DISPLAY_FRAME   0x14

#define TM_HOSTDEV_BASE    0x10002000u /* tabmig-hostdev (a migration blocker), 32-bit registers */
#define TM_HOSTDEV_ENABLE  0x00        /* write 1 enable, 0 disable; reads 1 while enabled */
#define TM_HOSTDEV_STATUS  0x04        /* reads 1 if the last enable was refused */

#define TM_BOOTINFO_MAGIC  0x544d4249u /* "TMBI" */

/* ---- MMIO --------------------------------------------------------------------------------- */

static inline uint8_t tm_read8(uint32_t addr) { return *(volatile uint8_t *)(uintptr_t)addr; }
static inline void tm_write8(uint32_t addr, uint8_t v) { *(volatile uint8_t *)(uintptr_t)addr = v; }
static inline uint32_t tm_read32(uint32_t addr) { return *(volatile uint32_t *)(uintptr_t)addr; }
static inline void tm_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }

/* ---- host device ------------------------------------------------------------------------- */

/* Enables (on != 0) or disables the tabmig-hostdev device, a host device passed through like VFIO:
 * while it is enabled the VM cannot migrate. An enable is refused (the device stays off and
 * STATUS reads 1) when the VM runs with only-migratable or while a migration is in progress.
 * Returns 1 if the device is enabled afterwards. */
static inline int tm_hostdev_set(int on) {
  tm_write32(TM_HOSTDEV_BASE + TM_HOSTDEV_ENABLE, on ? 1u : 0u);
  return (int)(tm_read32(TM_HOSTDEV_BASE + TM_HOSTDEV_ENABLE) & 1u);
}
static inline int tm_hostdev_refused(void) { return (int)(tm_read32(TM_HOSTDEV_BASE + TM_HOSTDEV_STATUS) & 1u); }

/* ---- boot information --------------------------------------------------------------------- */

/* Filled in by tm_init() from the page the loader passes in a1 (defaults if it is missing). */
struct tm_bootinfo {
  uint32_t ram_base;
  uint32_t ram_size;
  const char *cmdline; /* never NULL; "" when there are no arguments */
  uint32_t stack_top;  /* initial stack pointer: the stack grows down from here */
  int valid;           /* 1 if the loader's boot-info page was found */
};
extern struct tm_bootinfo tm_boot;

/* First and one-past-last byte of the program image (page-aligned end), from the linker. */
extern char _start[];
extern char _end[];

/* ---- time --------------------------------------------------------------------------------- */

uint64_t tm_mtime(void); /* 10 MHz, safe against the low word wrapping between the two reads */
void tm_delay_us(uint32_t us);
/* Sleeps until mtime reaches t: arms the CLINT timer and waits in WFI (interrupts stay masked in
 * mstatus, so nothing traps; the pending timer only wakes the hart). The vCPU thread sleeps too,
 * instead of spinning on mtime, which leaves the host's cores to the migration. */
void tm_wait_until(uint64_t t);

/* ---- exit --------------------------------------------------------------------------------- */

__attribute__((noreturn)) void tm_exit(int code); /* 0 = pass, else fail with that code */

/* ---- console (UART) ----------------------------------------------------------------------- */

void tm_putc(char c);
void tm_puts(const char *s);          /* no newline added */
void tm_put_dec(uint32_t v);
void tm_put_u64(uint64_t v);
void tm_put_hex(uint32_t v);          /* 0x%08x */
int tm_getc(void);                    /* -1 if nothing is waiting */
/* printf subset: %s %c %d %u %x %X %p %%, with flags '0', '-' and a width ("%08x", "%-6s").
 * A single 'l' is still 32 bits (use %lu/%lx for uint32_t, which is unsigned long on ilp32);
 * %llu/%lld/%llx take 64-bit values. */
void tm_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tm_vprintf(const char *fmt, va_list ap);

/* ---- command line ------------------------------------------------------------------------- */

/* The command line is "key=value key2=value2 ...". tm_arg() finds key and copies its value
 * into buf (NUL-terminated, truncated to size). Returns 1 if present, 0 if not. A bare word
 * "key" counts as present with an empty value. */
int tm_arg(const char *key, char *buf, size_t size);
/* Parses a size: decimal or 0x hex, optional K/M/G suffix (powers of 1024), optional "iB"/"B".
 * Returns 0 on success, -1 on a malformed or too large (>= 4 GiB) value. */
int tm_parse_size(const char *s, uint32_t *out);
int tm_parse_uint(const char *s, uint32_t *out);
/* Reads a size argument, falling back to def; prints an error and exits (fail code 2) if malformed. */
uint32_t tm_arg_size(const char *key, uint32_t def);
uint32_t tm_arg_uint(const char *key, uint32_t def);
/* Prints a warning for every argument whose key is not in the NULL-terminated list. */
void tm_warn_unknown_args(const char *prog, const char *const *known);

/* ---- small libc pieces (the compiler may call these) --------------------------------------- */

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* ---- called from crt0 --------------------------------------------------------------------- */

const char *tm_init(const uint32_t *bootinfo);
void tm_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval);

/* ---- pseudo-random numbers ---------------------------------------------------------------- */

static inline uint32_t tm_xorshift32(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

#endif
