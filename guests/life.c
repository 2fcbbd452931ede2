/* life: Conway's Game of Life on the tabmig display.
 *
 * 160 x 120 cells on a torus (the edges wrap), each drawn as a 2 x 2 block of a 320 x 240
 * framebuffer that lives in the program's .bss, i.e. in guest RAM, so the picture migrates
 * with the machine. Living cells are coloured by age (white newborns, through yellow, orange,
 * red and magenta, to blue for old, stable ones); cells that just died leave a short fading
 * trail. Only cells whose colour changes are redrawn.
 *
 * Generations are paced with the CLINT timer (speed=N generations per second). When the board
 * settles into still lifes and blinkers, or dies out, it reseeds itself after a short pause.
 * Keys on the serial console: r reseed, g glider gun, space pause/resume, s single step,
 * + / - speed, h host device on/off (the tabmig-hostdev device: while it is on, the VM cannot
 * migrate).
 *
 * Arguments: speed=N (generations per second, 1..60, default 20), seed=N (random seed; 0 or
 * absent: from the clock).
 */

#include "lib/tabmig.h"

#define W 160
#define H 120
#define SCALE 2
#define FB_W (W * SCALE)
#define FB_H (H * SCALE)
#define PW (W + 2) /* padded rows/columns: copies of the opposite edge, for the torus */
#define PH (H + 2)

#define TRAIL 6           /* generations a dead cell keeps glowing */
#define AGE_COLOURS 8
#define HISTORY 64        /* board hashes remembered to notice repeating patterns */
#define QUIET_ACTIVITY 16 /* births + deaths per generation below which the board is "quiet" */
#define QUIET_LIMIT 900   /* reseed after this many quiet generations (a lone glider, say) */
#define SETTLE_PAUSE 40   /* generations to show a settled board before reseeding */
#define REPORT_EVERY 100

static uint32_t fb[FB_H][FB_W] __attribute__((aligned(4096)));
static uint8_t live[2][PH][PW]; /* 0/1, padded */
/* Per cell: ALIVE | age (1..127, saturating) for a living cell; TRAIL..1 for one that died
 * recently; 0 for one long dead. */
static uint8_t state[H][W];
static uint8_t colour_of[256]; /* state -> palette index */

#define ALIVE 0x80u

static int cur;
static uint32_t generation, population, activity, rng, frame;
static uint32_t hashes[HISTORY];

/* Palette: 0 background, 1..TRAIL fading trail, then AGE_COLOURS for the living by age. */
static const uint32_t palette[1 + TRAIL + AGE_COLOURS] = {
    0x0a0b16,                                                  /* background */
    0x10142a, 0x161c38, 0x1c2546, 0x232f56, 0x2b3a68, 0x35487c, /* trail, faint .. bright */
    0xfffbe0, 0xfff06a, 0xffc23a, 0xff8a2a,                    /* newborn .. young */
    0xff4d4d, 0xe8439a, 0xa05cff, 0x4d8dff,                    /* older .. settled */
};
#define COLOUR_ALIVE (1 + TRAIL)

static const char *const gosper_gun[] = {
    "........................O...........",
    "......................O.O...........",
    "............OO......OO............OO",
    "...........O...O....OO............OO",
    "OO........O.....O...OO..............",
    "OO........O...O.OO....O.O...........",
    "..........O.....O.......O...........",
    "...........O...O....................",
    "............OO......................",
};

static void init_tables(void) {
  for (int s = 0; s < 256; s++) {
    if (!(s & ALIVE)) {
      colour_of[s] = (uint8_t)(s <= TRAIL ? s : 0);
      continue;
    }
    int age = s & ~ALIVE, bucket = 0;
    while (bucket < AGE_COLOURS - 1 && age > (1 << bucket)) bucket++; /* 1, 2, 3-4, 5-8, ... 65+ */
    colour_of[s] = (uint8_t)(COLOUR_ALIVE + bucket);
  }
}

/* Kills every cell; the dying ones leave their trail, so the old board fades out under the new. */
static void clear_board(void) {
  memset(live[cur], 0, sizeof live[cur]);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      if (state[y][x] & ALIVE) state[y][x] = TRAIL;
  memset(hashes, 0, sizeof hashes);
  generation = 0;
}

static void set_cell(int x, int y) {
  x = (x % W + W) % W;
  y = (y % H + H) % H;
  live[cur][y + 1][x + 1] = 1;
  state[y][x] = ALIVE | 1;
}

static void seed_random(void) {
  clear_board();
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      if (tm_xorshift32(&rng) < 0x50000000u) set_cell(x, y); /* about 31% alive */
}

static void seed_gun(void) {
  clear_board();
  int ox = 8, oy = 8;
  for (int r = 0; r < (int)(sizeof gosper_gun / sizeof gosper_gun[0]); r++)
    for (int c = 0; gosper_gun[r][c]; c++)
      if (gosper_gun[r][c] == 'O') set_cell(ox + c, oy + r);
}

/* Copies the edges into the padding so neighbour counts wrap around. */
static void wrap(uint8_t (*g)[PW]) {
  memcpy(g[0] + 1, g[H] + 1, W);
  memcpy(g[H + 1] + 1, g[1] + 1, W);
  for (int y = 0; y < PH; y++) {
    g[y][0] = g[y][W];
    g[y][W + 1] = g[y][1];
  }
}

static inline void draw_cell(int x, int y, uint32_t colour) {
  uint32_t c = palette[colour];
  uint32_t *p = &fb[y * SCALE][x * SCALE];
  p[0] = c;
  p[1] = c;
  p[FB_W] = c;
  p[FB_W + 1] = c;
}

/* Redraws every cell (the first frame, and after a reseed). */
static void draw_all(void) {
  population = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      uint8_t s = state[y][x];
      population += (s & ALIVE) != 0;
      draw_cell(x, y, colour_of[s]);
    }
}

/* Advances one generation and draws the cells whose colour changed; returns a hash of the board. */
static __attribute__((noinline)) uint32_t step(void) {
  uint8_t (*g)[PW] = live[cur];
  uint8_t (*n)[PW] = live[cur ^ 1];
  uint32_t pop = 0, changes = 0, hash = 0;
  wrap(g);
  for (int y = 0; y < H; y++) {
    const uint8_t *up = g[y], *mid = g[y + 1], *down = g[y + 2];
    uint8_t *out = n[y + 1], *st = state[y];
    /* Running column sums: left, centre and right are the live counts of columns x-1, x, x+1. */
    uint32_t left = up[0] + mid[0] + down[0];
    uint32_t centre = up[1] + mid[1] + down[1];
    for (int x = 0; x < W; x++) {
      uint32_t right = up[x + 2] + mid[x + 2] + down[x + 2];
      uint32_t was = mid[x + 1];
      uint32_t sum = left + centre + right - was;
      left = centre;
      centre = right;
      uint32_t old = st[x], s;
      if (sum == 3 || (sum == 2 && was)) {
        out[x + 1] = 1;
        s = was ? (old == 0xff ? old : old + 1) : (ALIVE | 1);
        pop++;
        hash += ((uint32_t)(y * W + x) + 1) * 0x9e3779b1u;
        hash ^= hash >> 15;
      } else {
        out[x + 1] = 0;
        if (old == 0) continue; /* long dead and staying dead: most of the board */
        s = was ? TRAIL : old - 1;
      }
      changes += (s ^ old) & ALIVE ? 1 : 0;
      st[x] = (uint8_t)s;
      if (colour_of[s] != colour_of[old]) draw_cell(x, y, colour_of[s]);
    }
  }
  cur ^= 1;
  generation++;
  population = pop;
  activity = changes;
  return hash ^ pop;
}

static void show_frame(void) {
  tm_write32(TM_DISPLAY_BASE + TM_DISPLAY_FRAME, ++frame);
}

int main(const char *cmdline) {
  (void)cmdline;
  static const char *const known[] = {"speed", "seed", 0};
  tm_warn_unknown_args("life", known);
  uint32_t speed = tm_arg_uint("speed", 20);
  if (speed < 1) speed = 1;
  if (speed > 60) speed = 60;
  uint64_t t0 = tm_mtime();
  rng = tm_arg_uint("seed", 0);
  if (rng == 0) rng = (uint32_t)t0 ^ (uint32_t)(t0 >> 32) ^ 0x2545f491u;
  if (rng == 0) rng = 1;

  tm_write32(TM_DISPLAY_BASE + TM_DISPLAY_FB_ADDR, (uint32_t)(uintptr_t)fb);
  tm_write32(TM_DISPLAY_BASE + TM_DISPLAY_WIDTH, FB_W);
  tm_write32(TM_DISPLAY_BASE + TM_DISPLAY_HEIGHT, FB_H);
  tm_write32(TM_DISPLAY_BASE + TM_DISPLAY_STRIDE, FB_W * 4);

  init_tables();
  seed_random();
  draw_all();
  tm_write32(TM_DISPLAY_BASE + TM_DISPLAY_ENABLE, 1);
  show_frame();

  tm_printf("life: Game of Life, %ux%u cells, %lu generations/s. Keys: r reseed, g glider gun, "
            "space pause, s step, +/- speed, h host device\n",
            W, H, speed);

  uint64_t period = TM_TIMEBASE_HZ / speed;
  uint64_t next = tm_mtime() + period;
  int paused = 0, single = 0;
  uint32_t quiet = 0, settle = 0, reseeds = 0;

  for (;;) {
    int key = tm_getc();
    if (key >= 0) {
      switch (key) {
        case 'r':
        case 'R':
          seed_random();
          draw_all();
          show_frame();
          tm_printf("life: reseeded\n");
          quiet = settle = 0;
          break;
        case 'g':
        case 'G':
          seed_gun();
          draw_all();
          show_frame();
          tm_printf("life: glider gun\n");
          quiet = settle = 0;
          break;
        case ' ':
          paused = !paused;
          tm_printf(paused ? "life: paused at generation %lu\n" : "life: running from generation %lu\n",
                    generation);
          next = tm_mtime() + period;
          break;
        case 's':
        case 'S':
          paused = 1;
          single = 1;
          break;
        case '+':
        case '=':
        case '-':
        case '_':
          speed = (key == '+' || key == '=') ? speed + (speed >= 10 ? 5 : 1) : speed - (speed > 10 ? 5 : 1);
          if (speed < 1) speed = 1;
          if (speed > 60) speed = 60;
          period = TM_TIMEBASE_HZ / speed;
          tm_printf("life: %lu generations/s\n", speed);
          break;
        case 'h':
        case 'H': {
          int was = (int)(tm_read32(TM_HOSTDEV_BASE + TM_HOSTDEV_ENABLE) & 1u);
          int on = tm_hostdev_set(!was);
          if (was) tm_printf("life: host device disabled\n");
          else if (on) tm_printf("life: host device enabled; migration is blocked until it is disabled\n");
          else tm_printf("life: host device refused\n");
          break;
        }
        default:
          break;
      }
    }

    uint64_t now = tm_mtime();
    if (!(single || (!paused && now >= next))) {
      /* Nothing to draw yet: sleep (WFI) until the next generation, but look at the keyboard
       * at least every 20 ms. */
      uint64_t wake = now + TM_TIMEBASE_HZ / 50;
      if (!paused && next < wake) wake = next;
      tm_wait_until(wake);
      continue;
    }
    single = 0;
    next += period;
    if (next < now) next = now; /* fell behind (slow host, migration downtime): do not race */

    uint32_t hash = step();
    show_frame();

    if (generation % REPORT_EVERY == 0)
      tm_printf("life: generation %lu, %lu alive\n", generation, population);

    /* Settled? A board hash seen recently means still lifes and oscillators only. */
    int repeating = population == 0;
    for (int i = 0; i < HISTORY && !repeating; i++) repeating = hashes[i] == hash;
    hashes[generation % HISTORY] = hash;
    quiet = activity < QUIET_ACTIVITY ? quiet + 1 : 0;
    if ((repeating || quiet >= QUIET_LIMIT) && !paused) settle++;
    else settle = 0;
    if (settle >= SETTLE_PAUSE) {
      reseeds++;
      tm_printf("life: settled at generation %lu with %lu alive; reseeding (#%lu)\n", generation, population,
                reseeds);
      seed_random();
      draw_all();
      show_frame();
      quiet = settle = 0;
    }
  }
}
