/*
 * hwin.h — the host window from firmware (smmusim.h "Host window"): loads and stores to
 * host virtual memory of one PASID, each paying a translation and a PCIe round trip.
 *
 * hwin_select() points the window at a host address; hwin_load64/hwin_store64 and
 * friends access window offsets and report a fault as -1 instead of trapping to the
 * unhandled-trap exit: the runtime's trap handler (smmusim_runtime_trap) recognises an
 * access fault raised inside them, records it and skips the instruction. After a fault,
 * hwin_fault_reason() and hwin_fault_address() say what happened.
 */
#ifndef SMMUSIM_HWIN_H
#define SMMUSIM_HWIN_H

#include "smmusim.h"

/* Window offset 0 := host address `base`; accesses tagged with `pasid` if `flags` has
 * SMMUSIM_HWIN_FLAG_PASID; SMMUSIM_HWIN_FLAG_PRIV makes them privileged. */
static inline void hwin_select(uint64_t base, uint32_t pasid, uint32_t flags)
{
    mmio_write64(smmusim_reg(SMMUSIM_REG_HWIN_BASE), base);
    mmio_write64(smmusim_reg(SMMUSIM_REG_HWIN_PASID), pasid);
    mmio_write64(smmusim_reg(SMMUSIM_REG_HWIN_FLAGS), flags);
}

/* Reason (SMMUSIM_DMA_ERR_*) and host address of the last window fault. */
static inline unsigned hwin_fault_reason(void)
{
    return (unsigned)(mmio_read64(smmusim_reg(SMMUSIM_REG_HWIN_FAULT_INFO)) & 0xff);
}

static inline uint64_t hwin_fault_address(void)
{
    return mmio_read64(smmusim_reg(SMMUSIM_REG_HWIN_FAULT_ADDR));
}

/* Picoseconds the last window access took. */
static inline uint64_t hwin_last_latency_ps(void)
{
    return mmio_read64(smmusim_reg(SMMUSIM_REG_HWIN_LATENCY));
}

/* One naturally aligned access at window offset `offset`. Return 0, or -1 on a fault. */
int hwin_load64(uint64_t offset, uint64_t *value);
int hwin_load32(uint64_t offset, uint32_t *value);
int hwin_store64(uint64_t offset, uint64_t value);
int hwin_store32(uint64_t offset, uint32_t value);

/* Copies `bytes` (a multiple of 8, 8-aligned offset) between the window and SRAM with
 * 64-bit accesses; stops at the first fault. Return 0, or -1 on a fault. */
int hwin_read(uint64_t offset, void *dst, size_t bytes);
int hwin_write(uint64_t offset, const void *src, size_t bytes);

#endif /* SMMUSIM_HWIN_H */
