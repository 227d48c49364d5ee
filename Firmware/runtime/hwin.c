/*
 * hwin.c — host-window accesses that report faults instead of trapping out (hwin.h).
 *
 * Each helper arms a flag around its one access; if the access faults, the runtime's
 * trap handler sees the flag (smmusim_hwin_trap), marks the fault and skips the
 * instruction, so the helper returns -1. The volatile flag accesses keep their order
 * with the volatile window access.
 */
#include "hwin.h"

static volatile int armed;
static volatile int faulted;

int smmusim_hwin_trap(struct trap_frame *f);

int smmusim_hwin_trap(struct trap_frame *f)
{
    if (!armed || (f->mcause != MCAUSE_LOAD_ACCESS && f->mcause != MCAUSE_STORE_ACCESS))
        return 0;
    if (f->mtval < SMMUSIM_HWIN_BASE || f->mtval - SMMUSIM_HWIN_BASE >= SMMUSIM_HWIN_SIZE)
        return 0;
    faulted = 1;
    f->mepc += smmusim_insn_length(f->mepc);
    return 1;
}

static inline uintptr_t window(uint64_t offset)
{
    return (uintptr_t)SMMUSIM_HWIN_BASE + offset;
}

int hwin_load64(uint64_t offset, uint64_t *value)
{
    faulted = 0;
    armed = 1;
    uint64_t v = *(volatile uint64_t *)window(offset);
    armed = 0;
    if (faulted)
        return -1;
    *value = v;
    return 0;
}

int hwin_load32(uint64_t offset, uint32_t *value)
{
    faulted = 0;
    armed = 1;
    uint32_t v = *(volatile uint32_t *)window(offset);
    armed = 0;
    if (faulted)
        return -1;
    *value = v;
    return 0;
}

int hwin_store64(uint64_t offset, uint64_t value)
{
    faulted = 0;
    armed = 1;
    *(volatile uint64_t *)window(offset) = value;
    armed = 0;
    return faulted ? -1 : 0;
}

int hwin_store32(uint64_t offset, uint32_t value)
{
    faulted = 0;
    armed = 1;
    *(volatile uint32_t *)window(offset) = value;
    armed = 0;
    return faulted ? -1 : 0;
}

int hwin_read(uint64_t offset, void *dst, size_t bytes)
{
    uint64_t *d = dst;
    for (size_t i = 0; i < bytes / 8; i++) {
        if (hwin_load64(offset + 8 * i, &d[i]) != 0)
            return -1;
    }
    return 0;
}

int hwin_write(uint64_t offset, const void *src, size_t bytes)
{
    const uint64_t *s = src;
    for (size_t i = 0; i < bytes / 8; i++) {
        if (hwin_store64(offset + 8 * i, s[i]) != 0)
            return -1;
    }
    return 0;
}
