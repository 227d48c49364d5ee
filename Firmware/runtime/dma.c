/*
 * dma.c — DMA channel helpers (dma.h; registers in smmusim.h "DMA engine").
 */
#include "dma.h"
#include "irq.h"

int dma_start(unsigned ch, const struct dma_desc *d)
{
    if (dma_status(ch) == SMMUSIM_DMA_BUSY)
        return -1;
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_SRC), d->src);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_DST), d->dst);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_LEN), d->len);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_OP), d->op);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_PASID), d->pasid);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_FLAGS), d->flags);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_PATTERN), d->pattern);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_QUEUE), d->queue);
    mmio_write64(dma_reg(ch, SMMUSIM_DMA_CONTROL), SMMUSIM_DMA_CMD_START);
    return 0;
}

uint64_t dma_wait(unsigned ch)
{
    uint64_t status;
    while ((status = dma_status(ch)) == SMMUSIM_DMA_BUSY)
        ;
    return status;
}

uint64_t dma_wait_irq(unsigned ch)
{
    uint64_t mask = 1ULL << SMMUSIM_IRQ_DMA(ch);
    irq_enable_mask(mask);
    irq_line_enable();
    for (;;) {
        /* Clear, check, sleep: a completion after the clear keeps wfi from sleeping. */
        irq_clear(mask);
        uint64_t status = dma_status(ch);
        if (status != SMMUSIM_DMA_BUSY)
            return status;
        irq_wait();
    }
}

unsigned dma_run(unsigned ch, const struct dma_desc *d, uint64_t *result)
{
    if (dma_start(ch, d) != 0)
        return SMMUSIM_DMA_ERR_CANCELLED;
    uint64_t status = dma_wait(ch);
    unsigned reason = status == SMMUSIM_DMA_DONE ? 0 : (unsigned)(dma_error_info(ch) & 0xff);
    if (result)
        *result = dma_result(ch);
    dma_ack(ch);
    return reason;
}
