/*
 * irq.h — the device's interrupt controller from firmware (smmusim.h "Interrupts").
 *
 * Two ways to use it:
 *   - Sleep without traps: irq_enable(source) and irq_line_enable() (mie.MEIE), keep
 *     mstatus.MIE clear, then irq_clear(mask); check your condition; irq_wait(). The
 *     clear-check-wait order never loses a wake-up, because a source that fires after
 *     the clear stays pending and `wfi` returns at once.
 *   - Traps: define irq_handler(source), irq_enable(source), irq_line_enable() and
 *     irq_global_enable() (mstatus.MIE). The runtime's trap handler claims each ready
 *     source, calls irq_handler and completes it. The default irq_handler prints
 *     "unhandled interrupt: source N" and exits with SMMUSIM_EXIT_UNHANDLED_TRAP.
 */
#ifndef SMMUSIM_IRQ_H
#define SMMUSIM_IRQ_H

#include "smmusim.h"

static inline void irq_enable_mask(uint64_t mask)
{
    uintptr_t r = smmusim_reg(SMMUSIM_REG_IRQ_ENABLE);
    mmio_write64(r, mmio_read64(r) | mask);
}

static inline void irq_disable_mask(uint64_t mask)
{
    uintptr_t r = smmusim_reg(SMMUSIM_REG_IRQ_ENABLE);
    mmio_write64(r, mmio_read64(r) & ~mask);
}

static inline void irq_enable(unsigned source) { irq_enable_mask(1ULL << source); }
static inline void irq_disable(unsigned source) { irq_disable_mask(1ULL << source); }

static inline uint64_t irq_pending(void) { return mmio_read64(smmusim_reg(SMMUSIM_REG_IRQ_PENDING)); }

/* Clears the pending bits in `mask` (write 1 to clear). */
static inline void irq_clear(uint64_t mask) { mmio_write64(smmusim_reg(SMMUSIM_REG_IRQ_PENDING), mask); }

/* Claims the lowest ready source (SMMUSIM_IRQ_NONE if none); complete it when done. */
static inline unsigned irq_claim(void) { return (unsigned)mmio_read64(smmusim_reg(SMMUSIM_REG_IRQ_CLAIM)); }
static inline void irq_complete(unsigned source) { mmio_write64(smmusim_reg(SMMUSIM_REG_IRQ_COMPLETE), source); }

/* mie.MEIE: the controller's line may wake wfi (and trap, with irq_global_enable). */
static inline void irq_line_enable(void)
{
    __asm__ volatile("csrs mie, %0" :: "r"((uint64_t)SMMUSIM_MIE_MEIE) : "memory");
}

static inline void irq_line_disable(void)
{
    __asm__ volatile("csrc mie, %0" :: "r"((uint64_t)SMMUSIM_MIE_MEIE) : "memory");
}

/* mstatus.MIE: take enabled interrupts as traps. */
static inline void irq_global_enable(void)
{
    __asm__ volatile("csrs mstatus, %0" :: "r"((uint64_t)SMMUSIM_MSTATUS_MIE) : "memory");
}

static inline void irq_global_disable(void)
{
    __asm__ volatile("csrc mstatus, %0" :: "r"((uint64_t)SMMUSIM_MSTATUS_MIE) : "memory");
}

/* Sleeps until an enabled interrupt is pending (returns at once if one already is). */
static inline void irq_wait(void)
{
    __asm__ volatile("wfi" ::: "memory");
}

/* Called by the runtime for each claimed source (weak default: report and exit). */
void irq_handler(unsigned source);

/* Claims, handles and completes every ready source; returns how many. */
unsigned irq_dispatch(void);

#endif /* SMMUSIM_IRQ_H */
