/*
 * smmusim.h — the SMMUSim device platform, as firmware sees it.
 *
 * This header is the reference for firmware authors: the memory map, the control
 * registers (offset, access width, semantics), the exit-code conventions, the trap
 * frame the runtime hands to trap_handler(), and small inline accessors. The emulator
 * side of the same map is Sources/DevicePlatform (ControlRegister, DeviceConfig).
 *
 * The core (DESIGN.md, "The device platform"):
 *   RV64IMAC + Zicsr + Zifencei, one hart (mhartid 0), machine mode only, no FPU,
 *   no virtual memory, no PMP. Do not rely on misaligned loads and stores.
 *   Trap causes follow the RISC-V privileged spec (v1.12, §3.1.15 mcause). mtval
 *   holds the faulting address for access faults, and the instruction bits for an
 *   illegal instruction (the option §3.1.16 allows; selftest.elf checks it).
 *
 * Memory map:
 *
 *   0x1000_0000 .. 0x1000_0FFF   control page (below)
 *   0x8000_0000 .. +SRAM_SIZE    device SRAM: code, data, stack. The size is set by
 *                                whoever configures the device (default 16 MiB, at
 *                                most 2 GiB); read it from SMMUSIM_REG_SRAM_SIZE.
 *   anything else                unmapped: a load faults with mcause 5 (load access
 *                                fault), a store or AMO with mcause 7, an instruction
 *                                fetch with mcause 1; mtval holds the address.
 *
 * Images are linked at 0x8000_0000 (Firmware/runtime/link.ld). The start-up code puts
 * the stack at the top of SRAM, so the same image runs in any SRAM size that holds it.
 *
 * Control page registers are 64 bits wide at 8-byte aligned offsets. Access them with
 * naturally aligned loads and stores of 1, 2, 4 or 8 bytes (the mmio_* helpers below
 * use 32 and 64 bits). A narrower read returns the addressed bytes of the register
 * (a 32-bit read at +4 is the high half); a narrower write stores its zero-extended
 * value (a byte store to CONSOLE prints that byte). A misaligned access, or any
 * access outside the page's registers and SRAM, is an access fault.
 *
 *   offset  name        access  semantics
 *   0x00    CONSOLE     W       the low byte of the value goes to the device console.
 *                               Reads return 0.
 *   0x08    EXIT        W       stops the core; the value written is the exit code.
 *                               Reads return 0.
 *   0x10    CYCLE       R       the core's cycle count since reset (monotonic).
 *                               Writes are ignored.
 *   0x18    SRAM_SIZE   R       bytes of SRAM (a multiple of 4 KiB). Writes ignored.
 *   0x20 .. 0xFF8       reserved: reads return 0, writes are ignored.
 *
 * Reserved space is kept for later issues, which will define, in this page and in
 * this header, in this order of offsets:
 *   0x100 .. 0x1FF  DMA engine (source, destination, length, PASID, doorbell, status)
 *   0x200 .. 0x2FF  hardware queue doorbells
 *   0x300 .. 0x3FF  interrupt controller (pending, enable, claim)
 *   and, outside this page, a host window: loads and stores through the SMMU with a
 *   PASID. Until then those offsets read 0 and ignore writes like any reserved one.
 *
 * Exit codes:
 *   - The value written to EXIT is the exit code, all 64 bits of it. The runtime
 *     writes main()'s return value there; an int is sign-extended to 64 bits by the
 *     RISC-V calling convention, so `return -1` exits with 0xFFFF_FFFF_FFFF_FFFF.
 *     `smmusim boot` exits with the code modulo 256, like a POSIX process.
 *   - 0 means success. Self-checking images return the number of failed checks.
 *   - 255 (SMMUSIM_EXIT_UNHANDLED_TRAP): the runtime's default trap_handler() saw a
 *     trap no image handler claimed.
 *   - 254 (SMMUSIM_EXIT_NO_STACK): start-up found SRAM_SIZE too small to hold the
 *     image and a minimal stack (SMMUSIM_MIN_STACK bytes above _end).
 *   - tohost (RISC-V test convention): the runtime defines an 8-byte, 8-aligned symbol
 *     `tohost` in its own section .tohost. Writing v with (v & 1) == 1 stops the core
 *     with exit code v >> 1; other values are reserved (ignored for now). `fromhost`
 *     sits next to it and is not used by the platform yet (it stays 0); it exists so
 *     that images written for the riscv-tests convention link unchanged.
 */
#ifndef SMMUSIM_H
#define SMMUSIM_H

/* ---- Addresses and offsets (usable from assembly) --------------------------------- */

#define SMMUSIM_SRAM_BASE        0x80000000
#define SMMUSIM_CTRL_BASE        0x10000000
#define SMMUSIM_CTRL_SIZE        0x1000

#define SMMUSIM_REG_CONSOLE      0x00
#define SMMUSIM_REG_EXIT         0x08
#define SMMUSIM_REG_CYCLE        0x10
#define SMMUSIM_REG_SRAM_SIZE    0x18
/* First reserved offset; everything from here to the end of the page reads 0. */
#define SMMUSIM_REG_RESERVED     0x20

#define SMMUSIM_EXIT_SUCCESS         0
#define SMMUSIM_EXIT_NO_STACK        254
#define SMMUSIM_EXIT_UNHANDLED_TRAP  255

/* Start-up refuses to run with less stack than this above the image's _end. */
#define SMMUSIM_MIN_STACK        4096

/*
 * struct trap_frame layout, in bytes (start.S builds it on the interrupted stack).
 * regs[n] holds register xn at the time of the trap (regs[0] is always 0); writes to
 * regs[] and mepc are restored on return, so a handler may change registers or
 * advance mepc past the trapping instruction. mcause, mtval and mstatus are copies,
 * for reading only.
 */
#define TRAP_FRAME_REGS          0
#define TRAP_FRAME_MEPC          (32 * 8)
#define TRAP_FRAME_MCAUSE        (33 * 8)
#define TRAP_FRAME_MTVAL         (34 * 8)
#define TRAP_FRAME_MSTATUS       (35 * 8)
#define TRAP_FRAME_SIZE          (36 * 8)   /* a multiple of 16: sp stays aligned */

/* mcause values for exceptions (privileged spec §3.1.15, table 3.6). */
#define MCAUSE_INSN_MISALIGNED   0
#define MCAUSE_INSN_ACCESS       1
#define MCAUSE_ILLEGAL_INSN      2
#define MCAUSE_BREAKPOINT        3
#define MCAUSE_LOAD_MISALIGNED   4
#define MCAUSE_LOAD_ACCESS       5
#define MCAUSE_STORE_MISALIGNED  6
#define MCAUSE_STORE_ACCESS      7
#define MCAUSE_ECALL_M           11
/* Set in mcause when the trap is an interrupt. */
#define MCAUSE_INTERRUPT_BIT     (1ULL << 63)

#ifndef __ASSEMBLER__

#include <stdint.h>
#include <stddef.h>

/* ---- Control page access ------------------------------------------------------------ */

static inline uint64_t mmio_read64(uintptr_t addr)
{
    return *(volatile uint64_t *)addr;
}

static inline void mmio_write64(uintptr_t addr, uint64_t value)
{
    *(volatile uint64_t *)addr = value;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
    return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uintptr_t addr, uint32_t value)
{
    *(volatile uint32_t *)addr = value;
}

static inline uintptr_t smmusim_reg(unsigned offset)
{
    return (uintptr_t)SMMUSIM_CTRL_BASE + offset;
}

/* Sends one byte to the device console. */
static inline void smmusim_console_write(uint8_t byte)
{
    mmio_write64(smmusim_reg(SMMUSIM_REG_CONSOLE), byte);
}

/* The core's cycle count. */
static inline uint64_t smmusim_cycles(void)
{
    return mmio_read64(smmusim_reg(SMMUSIM_REG_CYCLE));
}

/* Bytes of SRAM the device was configured with. */
static inline uint64_t smmusim_sram_size(void)
{
    return mmio_read64(smmusim_reg(SMMUSIM_REG_SRAM_SIZE));
}

/* Stops the core with `code`. Never returns (if the platform ignored the write, the
 * core idles in wfi, which the emulator reports as an idle stop). */
static inline __attribute__((noreturn)) void smmusim_exit(uint64_t code)
{
    mmio_write64(smmusim_reg(SMMUSIM_REG_EXIT), code);
    for (;;)
        __asm__ volatile("wfi");
}

/* ---- tohost / fromhost (defined in start.S) ---------------------------------------- */

extern volatile uint64_t tohost;
extern volatile uint64_t fromhost;

/* Stops the core through tohost, the riscv-tests way: exit code `code`. */
static inline __attribute__((noreturn)) void smmusim_tohost_exit(uint64_t code)
{
    tohost = (code << 1) | 1;
    for (;;)
        __asm__ volatile("wfi");
}

/* ---- CSRs and fences ---------------------------------------------------------------- */

#define SMMUSIM_STR_(x) #x
#define SMMUSIM_STR(x) SMMUSIM_STR_(x)

/* read_csr(mhartid), write_csr(mscratch, v): the CSR name is pasted into the asm. */
#define read_csr(csr) ({                                                  \
        uint64_t v_;                                                      \
        __asm__ volatile("csrr %0, " SMMUSIM_STR(csr) : "=r"(v_));         \
        v_; })
#define write_csr(csr, val) ({                                            \
        uint64_t w_ = (uint64_t)(val);                                    \
        __asm__ volatile("csrw " SMMUSIM_STR(csr) ", %0" :: "r"(w_) : "memory"); })

/* Makes stores to instruction memory visible to later instruction fetches (Zifencei). */
static inline void fence_i(void)
{
    __asm__ volatile("fence.i" ::: "memory");
}

/* ---- Traps --------------------------------------------------------------------------- */

struct trap_frame {
    uint64_t regs[32];   /* x0..x31; regs[0] is 0; restored on return */
    uint64_t mepc;       /* restored on return: advance it to skip the instruction */
    uint64_t mcause;     /* read only */
    uint64_t mtval;      /* read only */
    uint64_t mstatus;    /* read only */
};

_Static_assert(offsetof(struct trap_frame, mepc) == TRAP_FRAME_MEPC, "trap_frame layout");
_Static_assert(offsetof(struct trap_frame, mcause) == TRAP_FRAME_MCAUSE, "trap_frame layout");
_Static_assert(offsetof(struct trap_frame, mtval) == TRAP_FRAME_MTVAL, "trap_frame layout");
_Static_assert(offsetof(struct trap_frame, mstatus) == TRAP_FRAME_MSTATUS, "trap_frame layout");
_Static_assert(sizeof(struct trap_frame) == TRAP_FRAME_SIZE, "trap_frame layout");

/*
 * Called by the runtime's trap entry for every trap (exception or interrupt), on the
 * stack of the interrupted code. When it returns, the entry restores regs[] and mepc
 * from the frame and executes mret.
 *
 * The runtime's definition is weak: it prints
 *     "unhandled trap: mcause=0x<hex> mepc=0x<hex> mtval=0x<hex>\n"
 * (lower-case hex, no leading zeros) on the console and exits with code 255
 * (SMMUSIM_EXIT_UNHANDLED_TRAP). An image overrides it by defining its own
 * trap_handler; to resume after an exception it must advance frame->mepc past the
 * trapping instruction (smmusim_insn_length() tells its size), or the trap repeats.
 */
void trap_handler(struct trap_frame *frame);

/* Size in bytes of the instruction at `pc`: 2 if compressed, else 4. Reads it with
 * 16-bit loads, since a 4-byte instruction may be only 2-byte aligned under RVC. */
static inline unsigned smmusim_insn_length(uint64_t pc)
{
    uint16_t low = *(volatile const uint16_t *)(uintptr_t)pc;
    return (low & 3) == 3 ? 4 : 2;
}

/* ---- Symbols from the linker script (Firmware/runtime/link.ld) ----------------------- */

extern char __bss_start[], __bss_end[];   /* zeroed by start-up */
extern char __data_start[];               /* first writable byte of the image */
extern char _end[];                       /* end of the image; the stack is above */

#endif /* __ASSEMBLER__ */
#endif /* SMMUSIM_H */
