/*
 * dma.h — the DMA engine from firmware (smmusim.h "DMA engine").
 *
 *   struct dma_desc d = { .op = SMMUSIM_OP_COPY, .src = a, .dst = b, .len = n,
 *                         .flags = SMMUSIM_DMA_FLAG_SRC_HOST | SMMUSIM_DMA_FLAG_PASID,
 *                         .pasid = 1 };
 *   if (dma_start(0, &d) == 0 && dma_wait(0) == SMMUSIM_DMA_DONE) ...
 *
 * dma_wait() polls; dma_wait_irq() sleeps in wfi until the channel's interrupt (it
 * needs the transfer started with SMMUSIM_DMA_FLAG_IRQ, and mstatus.MIE clear, or the
 * interrupt is taken as a trap instead). Both return the final status (DONE or ERROR);
 * acknowledge it with dma_ack() before the channel's next use reads a stale status.
 */
#ifndef SMMUSIM_DMA_H
#define SMMUSIM_DMA_H

#include "smmusim.h"

struct dma_desc {
    uint64_t src;
    uint64_t dst;
    uint64_t len;
    uint64_t pattern;
    uint32_t op;       /* SMMUSIM_OP_* */
    uint32_t flags;    /* SMMUSIM_DMA_FLAG_* */
    uint32_t pasid;
    uint32_t queue;    /* 1 + the queue served, or 0 */
};

static inline uintptr_t dma_reg(unsigned channel, unsigned offset)
{
    return (uintptr_t)SMMUSIM_DMA_BASE + SMMUSIM_DMA_STRIDE * channel + offset;
}

static inline unsigned dma_channels(void)
{
    return (unsigned)mmio_read64(smmusim_reg(SMMUSIM_REG_DMA_CHANNELS));
}

static inline uint64_t dma_status(unsigned ch) { return mmio_read64(dma_reg(ch, SMMUSIM_DMA_STATUS)); }
static inline uint64_t dma_result(unsigned ch) { return mmio_read64(dma_reg(ch, SMMUSIM_DMA_RESULT)); }
static inline uint64_t dma_bytes_done(unsigned ch) { return mmio_read64(dma_reg(ch, SMMUSIM_DMA_BYTES_DONE)); }
static inline uint64_t dma_error_address(unsigned ch) { return mmio_read64(dma_reg(ch, SMMUSIM_DMA_ERR_ADDR)); }
/* SMMUSIM_DMA_ERR_* reason, SMMUSIM_DMA_ERR_WRITE set for a write. */
static inline uint64_t dma_error_info(unsigned ch) { return mmio_read64(dma_reg(ch, SMMUSIM_DMA_ERR_INFO)); }
static inline void dma_ack(unsigned ch) { mmio_write64(dma_reg(ch, SMMUSIM_DMA_STATUS), 0); }
static inline void dma_abort(unsigned ch) { mmio_write64(dma_reg(ch, SMMUSIM_DMA_CONTROL), SMMUSIM_DMA_CMD_ABORT); }

/* Programs channel `ch` and starts it. Returns 0, or -1 if the channel is busy. */
int dma_start(unsigned ch, const struct dma_desc *d);

/* Waits for channel `ch` to finish: by polling STATUS, or asleep in wfi. */
uint64_t dma_wait(unsigned ch);
uint64_t dma_wait_irq(unsigned ch);

/* Runs one transfer to its end (polling) and acknowledges it. Returns 0 or the error
 * reason (SMMUSIM_DMA_ERR_*); *result, if not NULL, receives RESULT. */
unsigned dma_run(unsigned ch, const struct dma_desc *d, uint64_t *result);

#endif /* SMMUSIM_DMA_H */
