/*
 * start.S — reset entry and trap entry of the SMMUSim device runtime.
 *
 * Implements the start-up contract documented in Firmware/include/smmusim.h:
 * machine mode only (RISC-V privileged spec v1.12, §3.1.7 mtvec, §3.3.2 mret),
 * psABI register conventions (RISC-V ELF psABI, "Integer Register Convention").
 */
#include "smmusim.h"

    .section .text.init, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    /* gp must be set without relaxation, or the assembler would compute it from gp. */
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop

    /* The stack goes at the top of SRAM, whatever size the device was given. */
    li      t0, SMMUSIM_CTRL_BASE
    ld      t1, SMMUSIM_REG_SRAM_SIZE(t0)
    li      t2, SMMUSIM_SRAM_BASE
    add     sp, t2, t1
    andi    sp, sp, -16

    /* Refuse to run if that leaves less than SMMUSIM_MIN_STACK above the image
     * (also catches a platform whose SRAM_SIZE reads 0). */
    la      t3, _end
    li      t4, SMMUSIM_MIN_STACK
    add     t3, t3, t4
    bltu    sp, t3, .Lno_stack

    /* Zero .bss/.sbss; the linker script aligns both ends to 8 bytes. */
    la      t3, __bss_start
    la      t4, __bss_end
    j       2f
1:  sd      zero, 0(t3)
    addi    t3, t3, 8
2:  bltu    t3, t4, 1b

    la      t3, trap_entry
    csrw    mtvec, t3          /* direct mode: trap_entry is 4-byte aligned */

    call    main
    /* main's int return, sign-extended in a0, is the exit code. */
    li      t0, SMMUSIM_CTRL_BASE
    sd      a0, SMMUSIM_REG_EXIT(t0)
3:  wfi
    j       3b

.Lno_stack:
    li      t1, SMMUSIM_EXIT_NO_STACK
    sd      t1, SMMUSIM_REG_EXIT(t0)
4:  wfi
    j       4b
    .size _start, . - _start

/*
 * Trap entry: saves every integer register and mepc/mcause/mtval/mstatus in a
 * struct trap_frame on the interrupted stack, calls trap_handler(frame), then restores
 * regs[] and mepc from the frame (the handler may have changed them) and returns.
 * All registers are saved, not just the caller-saved ones, so a handler can read and
 * modify any of them through the frame.
 */
    .text
    .balign 4
    .globl trap_entry
    .type trap_entry, @function
trap_entry:
    addi    sp, sp, -TRAP_FRAME_SIZE
    sd      x1,   1*8(sp)
    sd      x3,   3*8(sp)
    sd      x4,   4*8(sp)
    sd      x5,   5*8(sp)
    sd      x6,   6*8(sp)
    sd      x7,   7*8(sp)
    sd      x8,   8*8(sp)
    sd      x9,   9*8(sp)
    sd      x10, 10*8(sp)
    sd      x11, 11*8(sp)
    sd      x12, 12*8(sp)
    sd      x13, 13*8(sp)
    sd      x14, 14*8(sp)
    sd      x15, 15*8(sp)
    sd      x16, 16*8(sp)
    sd      x17, 17*8(sp)
    sd      x18, 18*8(sp)
    sd      x19, 19*8(sp)
    sd      x20, 20*8(sp)
    sd      x21, 21*8(sp)
    sd      x22, 22*8(sp)
    sd      x23, 23*8(sp)
    sd      x24, 24*8(sp)
    sd      x25, 25*8(sp)
    sd      x26, 26*8(sp)
    sd      x27, 27*8(sp)
    sd      x28, 28*8(sp)
    sd      x29, 29*8(sp)
    sd      x30, 30*8(sp)
    sd      x31, 31*8(sp)
    sd      zero, 0(sp)
    /* regs[2] is the interrupted sp, i.e. before this frame was pushed. */
    addi    t0, sp, TRAP_FRAME_SIZE
    sd      t0, 2*8(sp)
    csrr    t0, mepc
    sd      t0, TRAP_FRAME_MEPC(sp)
    csrr    t0, mcause
    sd      t0, TRAP_FRAME_MCAUSE(sp)
    csrr    t0, mtval
    sd      t0, TRAP_FRAME_MTVAL(sp)
    csrr    t0, mstatus
    sd      t0, TRAP_FRAME_MSTATUS(sp)

    /* The handler runs C code: gp must be the image's (the trap may come from code
     * that used gp for something else). */
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      a0, sp
    call    trap_handler

    ld      t0, TRAP_FRAME_MEPC(sp)
    csrw    mepc, t0
    ld      x1,   1*8(sp)
    ld      x3,   3*8(sp)
    ld      x4,   4*8(sp)
    ld      x5,   5*8(sp)
    ld      x6,   6*8(sp)
    ld      x7,   7*8(sp)
    ld      x8,   8*8(sp)
    ld      x9,   9*8(sp)
    ld      x10, 10*8(sp)
    ld      x11, 11*8(sp)
    ld      x12, 12*8(sp)
    ld      x13, 13*8(sp)
    ld      x14, 14*8(sp)
    ld      x15, 15*8(sp)
    ld      x16, 16*8(sp)
    ld      x17, 17*8(sp)
    ld      x18, 18*8(sp)
    ld      x19, 19*8(sp)
    ld      x20, 20*8(sp)
    ld      x21, 21*8(sp)
    ld      x22, 22*8(sp)
    ld      x23, 23*8(sp)
    ld      x24, 24*8(sp)
    ld      x25, 25*8(sp)
    ld      x26, 26*8(sp)
    ld      x27, 27*8(sp)
    ld      x28, 28*8(sp)
    ld      x29, 29*8(sp)
    ld      x30, 30*8(sp)
    ld      x31, 31*8(sp)
    /* sp last: regs[2] may have been changed by the handler, and sp is the frame base. */
    ld      sp,   2*8(sp)
    mret
    .size trap_entry, . - trap_entry

/*
 * tohost/fromhost: the riscv-tests host interface. Writing v with (v & 1) == 1 to
 * tohost stops the core with exit code v >> 1 (see smmusim.h). fromhost is not used
 * by the platform yet. The linker script gives .tohost its own 4 KiB page, so ordinary
 * data stores never land on the page the emulator watches.
 */
    .section .tohost, "aw", @progbits
    .balign 8
    .globl tohost
    .type tohost, @object
tohost:
    .dword 0
    .size tohost, 8
    .globl fromhost
    .type fromhost, @object
fromhost:
    .dword 0
    .size fromhost, 8
