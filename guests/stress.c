/* stress: a dirty-rate knob. Rewrites a working set of guest RAM at a chosen rate, so one can
 * watch how the working set and the dirty rate decide whether (and how fast) a live migration
 * converges.
 *
 * Arguments:
 *   wss=SIZE   working set (default 16M; K/M/G suffixes), clamped to the RAM between the end of
 *              the program and the stack
 *   rate=SIZE  bytes written per second (default 4M); rate=0 writes as fast as the vCPU can
 *   mode=pattern|random
 *              pattern (default): repeating counter bytes, which compress well;
 *              random: xorshift bytes, which do not. Random mode first fills the whole working
 *              set once, so that every page holds incompressible data.
 *   hostdev=on  enable the tabmig-hostdev host device at start, which blocks migration; prints
 *              "stress: host device enabled", or "stress: host device refused" when the VM
 *              runs with only-migratable (default off)
 *
 * Writes go round the working set in order, one 32-bit word at a time, in 10 ms steps timed
 * with the CLINT. Serial output: a summary line, "stress: ready" once any initial fill is done
 * (tests wait for it), then once a second
 *   stress: t=SECONDS written=BYTES passes=FULL_PASSES rate=BYTES_IN_THE_LAST_SECOND/s
 */

#include "lib/tabmig.h"

#define STACK_RESERVE (64u << 10)
#define STEP_TICKS (TM_TIMEBASE_HZ / 100) /* 10 ms */
#define STEPS_PER_SECOND 100u
#define MAX_BEHIND 10                      /* steps we may catch up after falling behind */
#define FAST_CHUNK_WORDS 4096              /* rate=0: words between clock reads */

static uint32_t *ws;    /* working set */
static uint32_t nwords; /* its size in words */
static uint32_t cursor; /* next word to write */
static uint32_t passes; /* completed passes over the working set */
static uint64_t written;
static int random_mode;
static uint32_t rng = 0x9e3779b9u;
static uint32_t pattern[64]; /* one 256-byte period of counter bytes for the current pass */

static void make_pattern(void) {
  uint8_t *b = (uint8_t *)pattern;
  for (uint32_t i = 0; i < sizeof pattern; i++) b[i] = (uint8_t)(i + passes);
}

/* Pattern mode: word k of the working set holds pattern[k % 64]. Writes run words from word
 * `from` on. Whole periods are copied eight words a step, about 2.3 instructions a word instead of
 * 8 a word for the plain loop, so that rate=0 dirties pages as fast as the vCPU can (faster than
 * the wire between two tabs, which is the point of rate=0). */
static void write_pattern(volatile uint32_t *p, uint32_t from, uint32_t run) {
  uint32_t i = 0;
  for (; i < run && ((from + i) & 63) != 0; i++) p[i] = pattern[(from + i) & 63];
  for (; run - i >= 64; i += 64) {
    volatile uint32_t *q = p + i;
    for (uint32_t j = 0; j < 64; j += 8) {
      q[j] = pattern[j];
      q[j + 1] = pattern[j + 1];
      q[j + 2] = pattern[j + 2];
      q[j + 3] = pattern[j + 3];
      q[j + 4] = pattern[j + 4];
      q[j + 5] = pattern[j + 5];
      q[j + 6] = pattern[j + 6];
      q[j + 7] = pattern[j + 7];
    }
  }
  for (; i < run; i++) p[i] = pattern[(from + i) & 63];
}

/* Writes n words at the cursor, wrapping around the working set. */
static void write_words(uint32_t n) {
  while (n) {
    uint32_t run = nwords - cursor;
    if (run > n) run = n;
    volatile uint32_t *p = ws + cursor;
    if (random_mode) {
      uint32_t x = rng;
      for (uint32_t i = 0; i < run; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = x;
      }
      rng = x;
    } else {
      write_pattern(p, cursor, run);
    }
    cursor += run;
    n -= run;
    written += (uint64_t)run * 4;
    if (cursor == nwords) {
      cursor = 0;
      passes++;
      if (!random_mode) make_pattern();
    }
  }
}

/* Gaps in the guest's own clock longer than this are reported on the serial port: 10 ms, finer
 * than the smallest downtime-limit worth testing (a switchover can take under 20 ms). */
#define GAP_REPORT_TICKS (TM_TIMEBASE_HZ / 100)

int main(const char *cmdline) {
  (void)cmdline;
  static const char *const known[] = {"wss", "rate", "mode", "hostdev", 0};
  tm_warn_unknown_args("stress", known);

  uint32_t wss = tm_arg_size("wss", 16u << 20);
  uint32_t rate = tm_arg_size("rate", 4u << 20);
  char mode[16] = "pattern";
  tm_arg("mode", mode, sizeof mode);
  if (strcmp(mode, "random") == 0) random_mode = 1;
  else if (strcmp(mode, "pattern") != 0) {
    tm_printf("error: mode=%s is not pattern or random\n", mode);
    tm_exit(2);
  }
  char hostdev[8] = "off";
  int want_hostdev = tm_arg("hostdev", hostdev, sizeof hostdev) && (hostdev[0] == 0 || strcmp(hostdev, "on") == 0);
  if (!want_hostdev && strcmp(hostdev, "off") != 0) {
    tm_printf("error: hostdev=%s is not on or off\n", hostdev);
    tm_exit(2);
  }
  if (rate > (1u << 30)) rate = 1u << 30;

  uint32_t lo = ((uint32_t)(uintptr_t)_end + TM_PAGE_SIZE - 1) & ~(TM_PAGE_SIZE - 1);
  uint32_t hi = (tm_boot.stack_top - STACK_RESERVE) & ~(TM_PAGE_SIZE - 1);
  uint32_t room = hi > lo ? hi - lo : 0;
  uint32_t asked = wss;
  wss &= ~(TM_PAGE_SIZE - 1);
  if (wss < TM_PAGE_SIZE) wss = TM_PAGE_SIZE;
  if (wss > room) wss = room;
  if (wss != asked) tm_printf("stress: working set %lu bytes does not fit; using %lu\n", asked, wss);
  if (wss == 0) {
    tm_printf("error: no room for a working set\n");
    tm_exit(3);
  }
  ws = (uint32_t *)(uintptr_t)lo;
  nwords = wss / 4;

  tm_printf("stress: wss=%lu at 0x%08lx..0x%08lx rate=%lu%s mode=%s\n", wss, lo, lo + wss, rate,
            rate ? "/s" : " (unlimited)", mode);

  if (want_hostdev) {
    int on = tm_hostdev_set(1);
    tm_printf(on && !tm_hostdev_refused() ? "stress: host device enabled\n" : "stress: host device refused\n");
  }

  uint64_t seed = tm_mtime();
  rng ^= (uint32_t)seed ^ (uint32_t)(seed >> 32);
  if (rng == 0) rng = 1;
  make_pattern();
  if (random_mode) {
    write_words(nwords); /* every page incompressible before we start */
    passes = 0;
    written = 0;
  }
  tm_printf("stress: ready\n");

  uint64_t start = tm_mtime();
  uint64_t next_step = start + STEP_TICKS;
  uint64_t next_report = start + TM_TIMEBASE_HZ;
  uint64_t written_at_report = 0;
  uint32_t seconds = 0, acc = 0, spare_bytes = 0;

  /* When the loop expected to look at the clock next: now, or the end of a sleep it chose. */
  uint64_t due = tm_mtime();
  for (;;) {
    uint64_t now = tm_mtime();
    /* mtime follows real time even while the machine is stopped, so a stop (a migration's
     * downtime, say) shows up here as lateness: report it as the guest saw it. */
    if (now - due >= GAP_REPORT_TICKS) {
      /* 32-bit division: a gap of more than 7 minutes would wrap, which nobody waits for. */
      tm_printf("stress: clock jumped %lu ms\n", (unsigned long)(uint32_t)(now - due) / (TM_TIMEBASE_HZ / 1000));
    }
    due = now;
    if (rate != 0 && now < next_step && now + STEP_TICKS >= next_step) {
      /* Ahead of the schedule: sleep in WFI until the next step instead of spinning. */
      tm_wait_until(next_step);
      due = next_step;
      continue;
    }
    if (rate == 0) {
      write_words(FAST_CHUNK_WORDS);
    } else if (now >= next_step) {
      /* rate/100 bytes per step, carrying remainders so any rate comes out exact. */
      acc += rate;
      uint32_t bytes = acc / STEPS_PER_SECOND;
      acc -= bytes * STEPS_PER_SECOND;
      bytes += spare_bytes;
      spare_bytes = bytes & 3;
      write_words(bytes / 4);
      next_step += STEP_TICKS;
      if (now > next_step + MAX_BEHIND * STEP_TICKS) next_step = now + STEP_TICKS;
    }
    if (now >= next_report) {
      seconds++;
      uint64_t last = written - written_at_report;
      written_at_report = written;
      tm_printf("stress: t=%lus written=%llu passes=%lu rate=%llu/s\n", seconds, (unsigned long long)written,
                passes, (unsigned long long)last);
      next_report += TM_TIMEBASE_HZ;
      if (next_report <= now) next_report = now + TM_TIMEBASE_HZ;
    }
  }
}
