/* Entry code for tabmig guest programs.
 *
 * The loader starts the hart at 0x8000_0000 in machine mode with
 *   a0 = hart id (0)
 *   a1 = address of the boot-info page (the last page of RAM)
 *   sp = just below the boot-info page
 * We set sp again from a1 (so a program started some other way still gets a sane stack),
 * install a trap handler that reports and stops, zero .bss, and call
 *   int main(const char *cmdline)
 * A return from main ends the run through the SiFive test finisher: 0 passes, anything else
 * fails with that code.
 */

  .file "crt0.S"

#define BOOTINFO_MAGIC 0x544d4249

  .section .text.init, "ax"
  .globl _start
_start:
  .option push
  .option norelax
  la    gp, __global_pointer$
  .option pop

  /* Trust a1 only if it is a page-aligned RAM address holding the boot-info magic. */
  li    t0, 0x80000000
  bltu  a1, t0, 1f
  li    t0, 0xfff
  and   t0, a1, t0
  bnez  t0, 1f
  lw    t1, 0(a1)
  li    t0, BOOTINFO_MAGIC
  bne   t1, t0, 1f
  addi  sp, a1, -16
  mv    s0, a1
  j     2f
1:
  /* No boot info: keep the loader's sp if it has one, else use the small fallback stack. */
  li    s0, 0
  bnez  sp, 2f
  la    sp, __fallback_stack_top
2:
  andi  sp, sp, -16

  la    t0, __tm_trap_entry
  csrw  mtvec, t0

  /* Zero .bss (the loader zeroes it on a fresh load, but not necessarily on a reset). */
  la    t0, __bss_start
  la    t1, __bss_end
3:
  bgeu  t0, t1, 4f
  sw    zero, 0(t0)
  addi  t0, t0, 4
  j     3b
4:
  mv    a0, s0
  call  tm_init
  call  main
  call  tm_exit
5:
  j     5b

/* Exceptions (interrupts are never enabled): hand mcause, mepc, mtval to C, which reports and
 * stops the machine. Uses whatever stack the program had. */
  .align 4
__tm_trap_entry:
  andi  sp, sp, -16
  csrr  a0, mcause
  csrr  a1, mepc
  csrr  a2, mtval
  call  tm_trap
6:
  j     6b

  .section .bss.fallback_stack, "aw", @nobits
  .align 4
__fallback_stack:
  .space 4096
__fallback_stack_top:
