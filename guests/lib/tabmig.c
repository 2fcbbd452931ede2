/* tabmig guest library; see tabmig.h. */

#include "tabmig.h"

struct tm_bootinfo tm_boot;

/* Called by crt0 with the boot-info page address (0 when none was found); returns the command
 * line for main(). */
const char *tm_init(const uint32_t *info) {
  tm_boot.ram_base = TM_RAM_BASE;
  tm_boot.ram_size = TM_RAM_SIZE_DEFAULT;
  tm_boot.cmdline = "";
  tm_boot.valid = 0;
  if (info && info[0] == TM_BOOTINFO_MAGIC) {
    tm_boot.valid = 1;
    tm_boot.ram_base = info[1];
    tm_boot.ram_size = info[2];
    if (info[3] != 0) tm_boot.cmdline = (const char *)(uintptr_t)info[3];
    tm_boot.stack_top = (uint32_t)(uintptr_t)info - 16;
  } else {
    tm_boot.stack_top = tm_boot.ram_base + tm_boot.ram_size - TM_PAGE_SIZE - 16;
  }
  return tm_boot.cmdline;
}

/* ---- time ---------------------------------------------------------------------------------- */

uint64_t tm_mtime(void) {
  uint32_t hi, lo;
  do {
    hi = tm_read32(TM_CLINT_MTIME + 4);
    lo = tm_read32(TM_CLINT_MTIME);
  } while (tm_read32(TM_CLINT_MTIME + 4) != hi);
  return ((uint64_t)hi << 32) | lo;
}

void tm_delay_us(uint32_t us) {
  tm_wait_until(tm_mtime() + (uint64_t)us * (TM_TIMEBASE_HZ / 1000000u));
}

void tm_wait_until(uint64_t t) {
  const uint32_t mie_mtie = 1u << 7;
  /* Writing the high word to all-ones first keeps a half-written compare from firing early. */
  tm_write32(TM_CLINT_MTIMECMP + 4, 0xffffffffu);
  tm_write32(TM_CLINT_MTIMECMP, (uint32_t)t);
  tm_write32(TM_CLINT_MTIMECMP + 4, (uint32_t)(t >> 32));
  __asm__ volatile("csrs mie, %0" ::"r"(mie_mtie));
  while (tm_mtime() < t) __asm__ volatile("wfi");
  __asm__ volatile("csrc mie, %0" ::"r"(mie_mtie));
  tm_write32(TM_CLINT_MTIMECMP + 4, 0xffffffffu);
}

/* ---- exit ---------------------------------------------------------------------------------- */

void tm_exit(int code) {
  uint32_t v = code == 0 ? TM_EXIT_PASS : (((uint32_t)code & 0xffffu) << 16) | TM_EXIT_FAIL;
  for (;;) tm_write32(TM_EXIT_BASE, v); /* the machine stops after the write; spin until it does */
}

void tm_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval) {
  tm_printf("\r\ntrap: mcause=%lu mepc=0x%08lx mtval=0x%08lx\r\n", mcause, mepc, mtval);
  tm_exit(0x7f);
}

/* ---- console ------------------------------------------------------------------------------- */

void tm_putc(char c) {
  while (!(tm_read8(TM_UART_BASE + TM_UART_LSR) & TM_UART_LSR_THRE)) {
  }
  tm_write8(TM_UART_BASE + TM_UART_THR, (uint8_t)c);
}

void tm_puts(const char *s) {
  while (*s) {
    if (*s == '\n') tm_putc('\r');
    tm_putc(*s++);
  }
}

int tm_getc(void) {
  if (!(tm_read8(TM_UART_BASE + TM_UART_LSR) & TM_UART_LSR_DR)) return -1;
  return tm_read8(TM_UART_BASE + TM_UART_RBR);
}

/* 64-bit division by 10 without libgcc: shift-and-subtract long division. */
static uint64_t divmod10(uint64_t n, uint32_t *rem) {
  uint64_t q = 0;
  uint32_t r = 0;
  for (int i = 63; i >= 0; i--) {
    r = (r << 1) | (uint32_t)((n >> i) & 1);
    if (r >= 10) {
      r -= 10;
      q |= (uint64_t)1 << i;
    }
  }
  *rem = r;
  return q;
}

static void pad(int n, char c) {
  while (n-- > 0) tm_putc(c);
}

/* Prints digits (most significant first, in buf[0..len)) with width/flags. */
static void emit(const char *digits, int len, int width, int zero, int left, int neg) {
  int total = len + neg;
  if (!left && !zero) pad(width - total, ' ');
  if (neg) tm_putc('-');
  if (!left && zero) pad(width - total, '0');
  for (int i = 0; i < len; i++) tm_putc(digits[i]);
  if (left) pad(width - total, ' ');
}

static void put_num(uint64_t v, unsigned base, int upper, int width, int zero, int left, int neg) {
  char buf[24];
  int n = 0;
  const char *xd = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    uint32_t d;
    if (base == 16) {
      d = (uint32_t)v & 15;
      v >>= 4;
    } else if (v >> 32) {
      v = divmod10(v, &d);
    } else {
      uint32_t w = (uint32_t)v;
      d = w % 10;
      v = w / 10;
    }
    buf[n++] = xd[d];
  } while (v);
  char out[24];
  for (int i = 0; i < n; i++) out[i] = buf[n - 1 - i];
  emit(out, n, width, zero, left, neg);
}

void tm_put_dec(uint32_t v) { put_num(v, 10, 0, 0, 0, 0, 0); }
void tm_put_u64(uint64_t v) { put_num(v, 10, 0, 0, 0, 0, 0); }
void tm_put_hex(uint32_t v) {
  tm_puts("0x");
  put_num(v, 16, 0, 8, 1, 0, 0);
}

void tm_vprintf(const char *fmt, va_list ap) {
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      if (*fmt == '\n') tm_putc('\r');
      tm_putc(*fmt);
      continue;
    }
    fmt++;
    int zero = 0, left = 0, width = 0, longs = 0;
    for (;; fmt++) {
      if (*fmt == '0') zero = 1;
      else if (*fmt == '-') left = 1;
      else break;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') {
      longs++;
      fmt++;
    }
    if (left) zero = 0;
    switch (*fmt) {
      case 'd': {
        int64_t v = longs >= 2 ? va_arg(ap, int64_t) : va_arg(ap, int32_t);
        int neg = v < 0;
        put_num(neg ? (uint64_t)-v : (uint64_t)v, 10, 0, width, zero, left, neg);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v = longs >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
        put_num(v, *fmt == 'u' ? 10 : 16, *fmt == 'X', width, zero, left, 0);
        break;
      }
      case 'p':
        tm_puts("0x");
        put_num((uint32_t)(uintptr_t)va_arg(ap, void *), 16, 0, 8, 1, 0, 0);
        break;
      case 'c': {
        char c = (char)va_arg(ap, int);
        emit(&c, 1, width, 0, left, 0);
        break;
      }
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        int n = (int)strlen(s);
        if (!left) pad(width - n, ' ');
        tm_puts(s);
        if (left) pad(width - n, ' ');
        break;
      }
      case '%':
        tm_putc('%');
        break;
      case '\0':
        return;
      default:
        tm_putc('%');
        tm_putc(*fmt);
        break;
    }
  }
}

void tm_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tm_vprintf(fmt, ap);
  va_end(ap);
}

/* ---- command line -------------------------------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ','; }

/* Calls fn for every argument: key [kbeg,kend), value [vbeg,vend). Stops when fn returns nonzero. */
static int each_arg(int (*fn)(const char *, size_t, const char *, size_t, void *), void *ctx) {
  const char *p = tm_boot.cmdline;
  for (;;) {
    while (is_space(*p)) p++;
    if (!*p) return 0;
    const char *k = p;
    while (*p && !is_space(*p) && *p != '=') p++;
    size_t klen = (size_t)(p - k);
    const char *v = p;
    size_t vlen = 0;
    if (*p == '=') {
      v = ++p;
      while (*p && !is_space(*p)) p++;
      vlen = (size_t)(p - v);
    }
    int r = fn(k, klen, v, vlen, ctx);
    if (r) return r;
  }
}

struct find_ctx {
  const char *key;
  char *buf;
  size_t size;
};

static int key_is(const char *k, size_t klen, const char *key) {
  return strlen(key) == klen && memcmp(k, key, klen) == 0;
}

static int find_fn(const char *k, size_t klen, const char *v, size_t vlen, void *p) {
  struct find_ctx *c = p;
  if (!key_is(k, klen, c->key)) return 0;
  if (c->size) {
    size_t n = vlen < c->size - 1 ? vlen : c->size - 1;
    memcpy(c->buf, v, n);
    c->buf[n] = 0;
  }
  return 1;
}

int tm_arg(const char *key, char *buf, size_t size) {
  struct find_ctx c = {key, buf, size};
  return each_arg(find_fn, &c);
}

int tm_parse_uint(const char *s, uint32_t *out) {
  uint64_t v = 0;
  int digits = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    for (;; s++) {
      unsigned d;
      if (*s >= '0' && *s <= '9') d = (unsigned)(*s - '0');
      else if (*s >= 'a' && *s <= 'f') d = (unsigned)(*s - 'a' + 10);
      else if (*s >= 'A' && *s <= 'F') d = (unsigned)(*s - 'A' + 10);
      else if (*s == '_') continue;
      else break;
      v = v * 16 + d;
      digits++;
      if (v > 0xffffffffu) return -1;
    }
  } else {
    for (; (*s >= '0' && *s <= '9') || *s == '_'; s++) {
      if (*s == '_') continue;
      v = v * 10 + (unsigned)(*s - '0');
      digits++;
      if (v > 0xffffffffu) return -1;
    }
  }
  if (!digits || *s) return -1;
  *out = (uint32_t)v;
  return 0;
}

int tm_parse_size(const char *s, uint32_t *out) {
  char num[24];
  size_t n = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    n = 2;
    while ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') || (s[n] >= 'A' && s[n] <= 'F') ||
           s[n] == '_')
      n++;
  } else {
    while ((s[n] >= '0' && s[n] <= '9') || s[n] == '_') n++;
  }
  if (n == 0 || n >= sizeof num) return -1;
  memcpy(num, s, n);
  num[n] = 0;
  uint32_t v;
  if (tm_parse_uint(num, &v)) return -1;
  const char *u = s + n;
  unsigned shift = 0;
  switch (*u) {
    case 'k': case 'K': shift = 10; u++; break;
    case 'm': case 'M': shift = 20; u++; break;
    case 'g': case 'G': shift = 30; u++; break;
    default: break;
  }
  if (shift && *u == 'i') u++;
  if (*u == 'B' || *u == 'b') u++;
  if (*u) return -1;
  uint64_t bytes = (uint64_t)v << shift;
  if (bytes > 0xffffffffu) return -1;
  *out = (uint32_t)bytes;
  return 0;
}

static __attribute__((noreturn)) void bad_arg(const char *key, const char *value, const char *what) {
  tm_printf("error: %s=%s is not %s\n", key, value, what);
  tm_exit(2);
}

uint32_t tm_arg_size(const char *key, uint32_t def) {
  char buf[40];
  uint32_t v;
  if (!tm_arg(key, buf, sizeof buf)) return def;
  if (tm_parse_size(buf, &v)) bad_arg(key, buf, "a size (like 512K, 16M or 1G)");
  return v;
}

uint32_t tm_arg_uint(const char *key, uint32_t def) {
  char buf[40];
  uint32_t v;
  if (!tm_arg(key, buf, sizeof buf)) return def;
  if (tm_parse_uint(buf, &v)) bad_arg(key, buf, "a number");
  return v;
}

struct unknown_ctx {
  const char *prog;
  const char *const *known;
};

static int unknown_fn(const char *k, size_t klen, const char *v, size_t vlen, void *p) {
  struct unknown_ctx *c = p;
  (void)v;
  (void)vlen;
  for (const char *const *kn = c->known; *kn; kn++)
    if (key_is(k, klen, *kn)) return 0;
  tm_printf("%s: ignoring unknown argument '", c->prog);
  for (size_t i = 0; i < klen; i++) tm_putc(k[i]);
  tm_puts("'\n");
  return 0;
}

void tm_warn_unknown_args(const char *prog, const char *const *known) {
  struct unknown_ctx c = {prog, known};
  each_arg(unknown_fn, &c);
}

/* ---- small libc pieces --------------------------------------------------------------------- */
/* Built with -fno-tree-loop-distribute-patterns so these loops do not become calls to themselves. */

void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  uint8_t b = (uint8_t)c;
  if (n >= 8 && !((uintptr_t)d & 3) && !(n & 3)) {
    uint32_t w = b * 0x01010101u;
    uint32_t *dw = dst;
    for (size_t i = 0; i < n / 4; i++) dw[i] = w;
    return dst;
  }
  while (n--) *d++ = b;
  return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (!(((uintptr_t)d | (uintptr_t)s | n) & 3)) {
    uint32_t *dw = dst;
    const uint32_t *sw = src;
    for (size_t i = 0; i < n / 4; i++) dw[i] = sw[i];
    return dst;
  }
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d <= s || d >= s + n) {
    while (n--) *d++ = *s++;
  } else {
    d += n;
    s += n;
    while (n--) *--d = *--s;
  }
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}
