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
 *   0x1000_0000 .. 0x1000_0FFF   control page 0 (below)
 *   0x1000_1000 .. 0x1000_1FFF   control page 1: DMA channel registers ("DMA engine")
 *   0x1000_2000 .. 0x1000_2FFF   control page 2: hardware queues ("Hardware queues")
 *   0x4000_0000 .. 0x7FFF_FFFF   host window: host memory through the SMMU ("Host window")
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
 * Control page registers (pages 0, 1 and 2) are 64 bits wide at 8-byte aligned offsets.
 * Access them with naturally aligned loads and stores of 1, 2, 4 or 8 bytes (the mmio_*
 * helpers below use 32 and 64 bits). A narrower read returns the addressed bytes of the
 * register (a 32-bit read at +4 is the high half); a narrower write stores its
 * zero-extended value (a byte store to CONSOLE prints that byte). A misaligned access,
 * or any access outside the control pages, the host window and SRAM, is an access
 * fault. Each control access costs the core 4 extra cycles (the default).
 *
 *   offset  name        access  semantics
 *   0x00    CONSOLE     W       the low byte of the value goes to the device console.
 *                               Reads return 0.
 *   0x08    EXIT        W       stops the core; the value written is the exit code.
 *                               Reads return 0.
 *   0x10    CYCLE       R       the core's cycle count since reset (monotonic).
 *                               Writes are ignored.
 *   0x18    SRAM_SIZE   R       bytes of SRAM (a multiple of 4 KiB). Writes ignored.
 *   0x100   DMA_CHANNELS R      number of DMA channels (default 4, at most 16).
 *   0x200   QUEUE_COUNT R       number of hardware queue pairs (default 4, at most 16).
 *   0x300   IRQ_PENDING RW      pending interrupt sources, bit n = source n. Writing
 *                               clears the bits that are 1 in the value (W1C).
 *   0x308   IRQ_ENABLE  RW      enabled sources.
 *   0x310   IRQ_CLAIM   R       claims the lowest-numbered source that is pending,
 *                               enabled and not in service: returns its number, clears
 *                               its pending bit and puts it in service. Returns 64
 *                               (SMMUSIM_IRQ_NONE) when there is none.
 *   0x318   IRQ_COMPLETE W      ends the service of the source written; a source in
 *                               service does not assert the line again until then.
 *   0x320   IRQ_IN_SERVICE R    claimed sources not yet completed.
 *   0x400 .. 0x42F      host window registers (see "Host window").
 *   everything else     reserved: reads return 0, writes are ignored.
 *
 * Writes take effect only at a register's own offset (a byte store at +1 of a register
 * is ignored); reads of any naturally aligned part return those bytes.
 *
 * Interrupts (an edge-triggered controller in the manner of the RISC-V PLIC):
 *   A source's event sets its pending bit. The core's machine external interrupt line
 *   (mip.MEIP, bit 11) is high while some source is pending AND enabled AND not in
 *   service. Set mie.MEIE to let the line wake `wfi`; set mstatus.MIE as well to take
 *   it as a trap (mcause = MCAUSE_INTERRUPT_BIT | 11). The runtime's trap handler then
 *   claims every ready source, calls irq_handler(source) and completes it (irq.h).
 *   Sources:
 *     0 .. 15   SMMUSIM_IRQ_DMA(n)          DMA channel n finished a transfer started
 *                                           with SMMUSIM_DMA_FLAG_IRQ (done or error)
 *     16 .. 31  SMMUSIM_IRQ_DOORBELL(q)     the host wrote queue q's SQ_TAIL or CQ_HEAD
 *     32 .. 47  SMMUSIM_IRQ_QUEUE_STATE(q)  queue q's state changed (host start, stop,
 *                                           disable; or firmware stop)
 *     48        SMMUSIM_IRQ_DMA_ERROR       some channel finished with an error
 *
 * DMA engine (control page 1; channel n's 0x80-byte block at 0x1000_1000 + 0x80 * n):
 *   offset  name        access  semantics
 *   0x00    SRC         RW      source address: SRAM address, or host virtual address
 *                               (IOVA without a PASID) with FLAGS.SRC_HOST
 *   0x08    DST         RW      destination address, host with FLAGS.DST_HOST
 *   0x10    LEN         RW      bytes (non-zero)
 *   0x18    OP          RW      0 COPY (SRC to DST), 1 FILL (DST with the repeated
 *                               little-endian 64-bit PATTERN), 2 CRC32C (of SRC, into
 *                               RESULT; CRC-32C/Castagnoli, init and xorout ~0)
 *   0x20    PASID       RW      PASID of host accesses, bits 19:0
 *   0x28    FLAGS       RW      bit 0 SRC_HOST, bit 1 DST_HOST, bit 2 IRQ (raise source
 *                               n at the end), bit 3 PRIV (privileged host accesses),
 *                               bit 4 PASID (tag host accesses with PASID)
 *   0x30    PATTERN     RW      FILL's pattern
 *   0x38    QUEUE       RW      1 + the hardware queue served (0: none); when the host
 *                               stops that queue the transfer is aborted
 *   0x40    CONTROL     W       1 START the programmed transfer, 2 ABORT the running one
 *   0x48    STATUS      R       0 IDLE, 1 BUSY, 2 DONE, 3 ERROR. Any write acknowledges:
 *                               DONE and ERROR become IDLE.
 *   0x50    RESULT      R       CRC32C's result
 *   0x58    BYTES_DONE  R       bytes completed (all of LEN on DONE)
 *   0x60    ERR_ADDR    R       address of the first failing access
 *   0x68    ERR_INFO    R       bits 7:0 reason (SMMUSIM_DMA_ERR_*), bit 8 set for a write
 *   SRC..QUEUE are frozen while BUSY (writes ignored); a START while BUSY is ignored.
 *   A malformed transfer (LEN 0, an unknown OP, a range that wraps, an SRAM side outside
 *   SRAM) ends at once with ERROR. A transfer with a host side goes through the PCIe
 *   endpoint and the SMMU; one between two SRAM addresses is done by the device at
 *   8 bytes per core cycle after 16 cycles of set-up (the defaults). With no host
 *   attached (`smmusim boot` on its own) a host transfer ends with ERR_ABORTED.
 *   Completion: poll STATUS, or set FLAGS.IRQ and wait for the interrupt (dma.h).
 *
 * Host window (core addresses 0x4000_0000 .. 0x7FFF_FFFF):
 *   A load or store of 1, 2, 4 or 8 naturally aligned bytes at window offset o reaches
 *   host address HWIN_BASE + o, with HWIN_PASID when HWIN_FLAGS.PASID is set, through
 *   the endpoint's ATC and the SMMU. The core stalls for the access's latency (one
 *   translation and one PCIe round trip, hundreds of cycles). A fault raises a load or
 *   store access fault (mcause 5 or 7) with mtval the window address, and records the
 *   host address and reason in HWIN_FAULT_*. The latency of a faulting access is not
 *   charged to the core. Registers in control page 0:
 *   0x400   HWIN_BASE        RW  host address of window offset 0
 *   0x408   HWIN_PASID       RW  bits 19:0
 *   0x410   HWIN_FLAGS       RW  bit 0 PASID (tag accesses), bit 1 PRIV
 *   0x418   HWIN_FAULT_ADDR  R   host address of the last faulting access
 *   0x420   HWIN_FAULT_INFO  RW  bits 7:0 reason (SMMUSIM_DMA_ERR_*, 0 none), bit 8
 *                                store; any write clears it and HWIN_FAULT_ADDR
 *   0x428   HWIN_LATENCY     R   picoseconds taken by the last window access
 *
 * Hardware queues (uacce-style queue pairs; control page 2, queue q's 0x80-byte block
 * at 0x1000_2000 + 0x80 * q):
 *   The host configures each queue through the device's BAR (see "Queue BAR" below):
 *   a submission ring (SQ) of DEPTH 64-byte entries and a completion ring (CQ) of DEPTH
 *   32-byte entries, both at virtual addresses of the process that owns PASID.
 *   Indices run 0 .. DEPTH-1; a ring is empty when head == tail and full when
 *   (tail + 1) % DEPTH == head (one slot stays unused). The host produces SQ entries
 *   and writes SQ_TAIL; firmware consumes them, writes CQ entries and advances SQ_HEAD
 *   and CQ_TAIL; the host consumes CQ entries and writes CQ_HEAD.
 *   offset  name        access  semantics
 *   0x00    SQ_BASE     R       virtual address of the submission ring
 *   0x08    CQ_BASE     R       virtual address of the completion ring
 *   0x10    DEPTH       R       entries per ring, a power of two, 2 .. 4096
 *   0x18    PASID       R       PASID of the process the rings belong to
 *   0x20    STATE       RW      0 DISABLED, 1 RUNNING, 2 STOPPED. Writing 2 stops a
 *                               running queue (firmware gives up on it)
 *   0x28    SQ_TAIL     R       host's producer index
 *   0x30    SQ_HEAD     RW      firmware's consumer index (values >= DEPTH ignored)
 *   0x38    CQ_TAIL     RW      firmware's producer index (values >= DEPTH ignored)
 *   0x40    CQ_HEAD     R       host's consumer index
 *   0x48    EPOCH       R       incremented at every state change
 *   0x50    GENERATION  R       incremented at every DISABLE: a completion for an entry
 *                               read before the change belongs to rings that are gone
 *   Firmware must not start work for a queue that is not RUNNING. When the host stops
 *   a queue, the DMA transfers whose QUEUE register names it end with
 *   ERR_CANCELLED; firmware still writes their error completions (unless the queue
 *   was DISABLED, which also resets the indices to 0).
 *
 * Queue BAR (the host's view; documented here so that both sides read one map):
 *   0x0000  ID "SMMUQDEV" (R), 0x0008 QUEUE_COUNT (R), 0x0010 SQE size 64 (R),
 *   0x0018 CQE size 32 (R), 0x0020 maximum depth 4096 (R).
 *   0x0100 + 0x80 * q   queue q's control block: 0x00 SQ_BASE, 0x08 CQ_BASE, 0x10 DEPTH,
 *           0x18 PASID (RW while DISABLED); 0x20 CONTROL (W: 1 START, 2 STOP,
 *           3 DISABLE); 0x28 STATE, 0x30 SQ_TAIL, 0x38 SQ_HEAD, 0x40 CQ_TAIL,
 *           0x48 CQ_HEAD, 0x50 EPOCH (R); 0x58 ERROR (R: why START was refused,
 *           1 bad DEPTH, 2 SQ_BASE not 64-byte or CQ_BASE not 32-byte aligned).
 *   0x1000 * (q + 1)    queue q's doorbell page (what uacce maps as the queue's MMIO
 *           region): 0x00 SQ_TAIL (RW, a write rings the doorbell), 0x08 CQ_HEAD (RW,
 *           rings too), 0x10 SQ_HEAD, 0x18 CQ_TAIL, 0x20 STATE (R). Doorbell writes
 *           while the queue is not RUNNING, or of an index >= DEPTH, are ignored.
 *   The BAR is 128 KiB. Accesses are 32 or 64 bits, naturally aligned.
 *
 * Queue entries (little-endian, fixed size; struct smmusim_sqe / smmusim_cqe below):
 *   Submission entry, 64 bytes:
 *     0x00 u32 opcode   SMMUSIM_OP_COPY / FILL / CRC32C (as the DMA OP register)
 *     0x04 u32 flags    must be 0
 *     0x08 u64 src      virtual address (COPY, CRC32C)
 *     0x10 u64 dst      virtual address (COPY, FILL)
 *     0x18 u64 length   bytes, non-zero
 *     0x20 u64 pattern  FILL's pattern
 *     0x28 u64 tag      copied to the completion
 *     0x30 .. 0x3F      reserved, ignored
 *   Completion entry, 32 bytes:
 *     0x00 u64 tag        the submission's tag (0 if the submission could not be read)
 *     0x08 u32 status     0 OK, 1 .. 7 a SMMUSIM_DMA_ERR_* reason, 8 BAD_ENTRY
 *                         (unknown opcode or non-zero flags)
 *     0x0C u32 sq_index   index of the submission in the SQ
 *     0x10 u64 bytes_done
 *     0x18 u64 value      CRC32C's result on success; the faulting address on error
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
/* First reserved offset (up to SMMUSIM_REG_DMA_CHANNELS); reserved offsets read 0. */
#define SMMUSIM_REG_RESERVED     0x20
#define SMMUSIM_REG_DMA_CHANNELS 0x100
#define SMMUSIM_REG_QUEUE_COUNT  0x200
#define SMMUSIM_REG_IRQ_PENDING  0x300
#define SMMUSIM_REG_IRQ_ENABLE   0x308
#define SMMUSIM_REG_IRQ_CLAIM    0x310
#define SMMUSIM_REG_IRQ_COMPLETE 0x318
#define SMMUSIM_REG_IRQ_IN_SERVICE 0x320
#define SMMUSIM_REG_HWIN_BASE    0x400
#define SMMUSIM_REG_HWIN_PASID   0x408
#define SMMUSIM_REG_HWIN_FLAGS   0x410
#define SMMUSIM_REG_HWIN_FAULT_ADDR 0x418
#define SMMUSIM_REG_HWIN_FAULT_INFO 0x420
#define SMMUSIM_REG_HWIN_LATENCY 0x428

/* Interrupt sources. */
#define SMMUSIM_IRQ_DMA(n)          (n)
#define SMMUSIM_IRQ_DOORBELL(q)     (16 + (q))
#define SMMUSIM_IRQ_QUEUE_STATE(q)  (32 + (q))
#define SMMUSIM_IRQ_DMA_ERROR       48
#define SMMUSIM_IRQ_NONE            64
#define SMMUSIM_MAX_DMA_CHANNELS    16
#define SMMUSIM_MAX_QUEUES          16

/* DMA channel blocks (control page 1). */
#define SMMUSIM_DMA_BASE         (SMMUSIM_CTRL_BASE + 0x1000)
#define SMMUSIM_DMA_STRIDE       0x80
#define SMMUSIM_DMA_SRC          0x00
#define SMMUSIM_DMA_DST          0x08
#define SMMUSIM_DMA_LEN          0x10
#define SMMUSIM_DMA_OP           0x18
#define SMMUSIM_DMA_PASID        0x20
#define SMMUSIM_DMA_FLAGS        0x28
#define SMMUSIM_DMA_PATTERN      0x30
#define SMMUSIM_DMA_QUEUE        0x38
#define SMMUSIM_DMA_CONTROL      0x40
#define SMMUSIM_DMA_STATUS       0x48
#define SMMUSIM_DMA_RESULT       0x50
#define SMMUSIM_DMA_BYTES_DONE   0x58
#define SMMUSIM_DMA_ERR_ADDR     0x60
#define SMMUSIM_DMA_ERR_INFO     0x68

#define SMMUSIM_OP_COPY          0
#define SMMUSIM_OP_FILL          1
#define SMMUSIM_OP_CRC32C        2

#define SMMUSIM_DMA_FLAG_SRC_HOST  (1u << 0)
#define SMMUSIM_DMA_FLAG_DST_HOST  (1u << 1)
#define SMMUSIM_DMA_FLAG_IRQ       (1u << 2)
#define SMMUSIM_DMA_FLAG_PRIV      (1u << 3)
#define SMMUSIM_DMA_FLAG_PASID     (1u << 4)

#define SMMUSIM_DMA_CMD_START    1
#define SMMUSIM_DMA_CMD_ABORT    2

#define SMMUSIM_DMA_IDLE         0
#define SMMUSIM_DMA_BUSY         1
#define SMMUSIM_DMA_DONE         2
#define SMMUSIM_DMA_ERROR        3

/* Error reasons (ERR_INFO bits 7:0, HWIN_FAULT_INFO, completion status). */
#define SMMUSIM_DMA_ERR_NONE         0
#define SMMUSIM_DMA_ERR_TRANSLATION  1   /* the SMMU reported a translation fault */
#define SMMUSIM_DMA_ERR_PERMISSION   2   /* the translation lacks the permission */
#define SMMUSIM_DMA_ERR_ABORTED      3   /* SMMU or link abort; no host attached */
#define SMMUSIM_DMA_ERR_PRI_FAILED   4   /* a page request was answered with failure */
#define SMMUSIM_DMA_ERR_LOCAL_RANGE  5   /* an SRAM side outside SRAM */
#define SMMUSIM_DMA_ERR_CANCELLED    6   /* aborted, or its queue was stopped */
#define SMMUSIM_DMA_ERR_INVALID      7   /* zero length, unknown op, wrapping range */
#define SMMUSIM_DMA_ERR_WRITE        (1u << 8)

/* Host window. */
#define SMMUSIM_HWIN_BASE        0x40000000
#define SMMUSIM_HWIN_SIZE        0x40000000
#define SMMUSIM_HWIN_FLAG_PASID  (1u << 0)
#define SMMUSIM_HWIN_FLAG_PRIV   (1u << 1)

/* Hardware queues, firmware side (control page 2). */
#define SMMUSIM_QUEUE_BASE       (SMMUSIM_CTRL_BASE + 0x2000)
#define SMMUSIM_QUEUE_STRIDE     0x80
#define SMMUSIM_Q_SQ_BASE        0x00
#define SMMUSIM_Q_CQ_BASE        0x08
#define SMMUSIM_Q_DEPTH          0x10
#define SMMUSIM_Q_PASID          0x18
#define SMMUSIM_Q_STATE          0x20
#define SMMUSIM_Q_SQ_TAIL        0x28
#define SMMUSIM_Q_SQ_HEAD        0x30
#define SMMUSIM_Q_CQ_TAIL        0x38
#define SMMUSIM_Q_CQ_HEAD        0x40
#define SMMUSIM_Q_EPOCH          0x48
#define SMMUSIM_Q_GENERATION     0x50

#define SMMUSIM_Q_DISABLED       0
#define SMMUSIM_Q_RUNNING        1
#define SMMUSIM_Q_STOPPED        2

#define SMMUSIM_SQE_SIZE         64
#define SMMUSIM_CQE_SIZE         32
#define SMMUSIM_CQE_OK           0
#define SMMUSIM_CQE_BAD_ENTRY    8

/* mip/mie bit of the machine external interrupt, and mstatus.MIE. */
#define SMMUSIM_MIE_MEIE         (1u << 11)
#define SMMUSIM_MSTATUS_MIE      (1u << 3)
#define MCAUSE_MACHINE_EXTERNAL  11

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

/* ---- Queue entries (layout in the comment at the top) --------------------------------- */

struct smmusim_sqe {
    uint32_t opcode;
    uint32_t flags;
    uint64_t src;
    uint64_t dst;
    uint64_t length;
    uint64_t pattern;
    uint64_t tag;
    uint64_t reserved[2];
};

struct smmusim_cqe {
    uint64_t tag;
    uint32_t status;
    uint32_t sq_index;
    uint64_t bytes_done;
    uint64_t value;
};

_Static_assert(sizeof(struct smmusim_sqe) == SMMUSIM_SQE_SIZE, "submission entry layout");
_Static_assert(offsetof(struct smmusim_sqe, tag) == 0x28, "submission entry layout");
_Static_assert(sizeof(struct smmusim_cqe) == SMMUSIM_CQE_SIZE, "completion entry layout");
_Static_assert(offsetof(struct smmusim_cqe, value) == 0x18, "completion entry layout");

/* ---- Runtime hooks for traps (Firmware/runtime/trap.c) ------------------------------- */

/*
 * What the runtime's default trap_handler does before giving up, for images that
 * define their own trap_handler and want the same: a machine external interrupt is
 * dispatched (irq.h: claim, irq_handler, complete), and a host-window access fault
 * inside hwin_load/hwin_store (hwin.h) is recorded and skipped. Returns 1 if it
 * handled the trap, 0 if not.
 */
int smmusim_runtime_trap(struct trap_frame *frame);

/* ---- Symbols from the linker script (Firmware/runtime/link.ld) ----------------------- */

extern char __bss_start[], __bss_end[];   /* zeroed by start-up */
extern char __data_start[];               /* first writable byte of the image */
extern char _end[];                       /* end of the image; the stack is above */

#endif /* __ASSEMBLER__ */
#endif /* SMMUSIM_H */
