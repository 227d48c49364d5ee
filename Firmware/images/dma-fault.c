/*
 * dma-fault.c — self-checking image for the DMA engine's and host window's error paths
 * (smmusim.h "DMA engine", "Host window"): malformed transfers, SRAM range errors, abort,
 * the DMA error interrupt source, and, if a host is attached (dmatest.h), translation
 * and permission faults of DMA and of host-window loads and stores. Without a host it
 * checks that host transfers and window accesses end with SMMUSIM_DMA_ERR_ABORTED.
 *
 * Prints "ok <name>" / "FAIL <name>: ..." per check and "dma-fault: N passed, M failed";
 * exits with M.
 */
#include "check.h"
#include "console.h"
#include "dma.h"
#include "dmatest.h"
#include "hwin.h"
#include "irq.h"
#include "smmusim.h"

static uint8_t buf[65536] __attribute__((aligned(64)));

/* Starts `d` on channel 0, waits, and returns ERR_INFO (reason | write bit). */
static uint64_t fail(const struct dma_desc *d)
{
    dma_start(0, d);
    uint64_t status = dma_wait(0);
    uint64_t info = status == SMMUSIM_DMA_ERROR ? dma_error_info(0) : 0;
    return info;
}

static void local_checks(void)
{
    uint64_t sram_end = SMMUSIM_SRAM_BASE + smmusim_sram_size();
    struct dma_desc d = {.src = (uintptr_t)buf, .dst = (uintptr_t)buf + 64, .len = 0, .op = SMMUSIM_OP_COPY};

    irq_clear(~0ULL);
    check_eq("zero length is invalid", fail(&d), SMMUSIM_DMA_ERR_INVALID);
    check_eq("zero length: address", dma_error_address(0), (uintptr_t)buf);
    dma_ack(0);

    d.len = 8;
    d.op = 9;
    check_eq("unknown operation is invalid", fail(&d), SMMUSIM_DMA_ERR_INVALID);
    dma_ack(0);

    d.op = SMMUSIM_OP_COPY;
    d.dst = sram_end - 8;
    d.len = 16;
    check_eq("write past SRAM", fail(&d), SMMUSIM_DMA_ERR_LOCAL_RANGE | SMMUSIM_DMA_ERR_WRITE);
    check_eq("write past SRAM: first bad address", dma_error_address(0), sram_end);
    check_eq("write past SRAM: nothing done", dma_bytes_done(0), 0);
    dma_ack(0);

    d.src = 0x1000;
    d.dst = (uintptr_t)buf;
    check_eq("read below SRAM", fail(&d), SMMUSIM_DMA_ERR_LOCAL_RANGE);
    check_eq("read below SRAM: address", dma_error_address(0), 0x1000);
    dma_ack(0);

    check("error interrupt source pending", (irq_pending() >> SMMUSIM_IRQ_DMA_ERROR) & 1);
    check_eq("channel source not raised without FLAGS.IRQ", irq_pending() & 1, 0);

    struct dma_desc fill = {.dst = (uintptr_t)buf, .len = sizeof buf, .op = SMMUSIM_OP_FILL, .pattern = ~0ULL};
    dma_start(1, &fill);
    dma_abort(1);
    check_eq("abort ends a local transfer", dma_wait(1), SMMUSIM_DMA_ERROR);
    check_eq("abort reason", dma_error_info(1) & 0xff, SMMUSIM_DMA_ERR_CANCELLED);
    check_eq("aborted fill wrote nothing", buf[0], 0);
    dma_ack(1);
}

static void host_checks(void)
{
    uint64_t word = 0;
    const uint32_t tagged = SMMUSIM_DMA_FLAG_PASID;
    struct dma_desc d = {.src = DMATEST_UNMAPPED - 0x100, .dst = (uintptr_t)buf, .len = 0x200,
                         .op = SMMUSIM_OP_COPY, .flags = SMMUSIM_DMA_FLAG_SRC_HOST | tagged, .pasid = DMATEST_PASID};
    uint64_t info = fail(&d);
    if (info == SMMUSIM_DMA_ERR_ABORTED) {
        check_eq("no host: DMA aborts at the first host address", dma_error_address(0), DMATEST_UNMAPPED - 0x100);
        dma_ack(0);
        hwin_select(DMATEST_BUF, DMATEST_PASID, SMMUSIM_HWIN_FLAG_PASID);
        check_eq("no host: window load fails", hwin_load64(0, &word), (uint64_t)-1);
        check_eq("no host: window reason", hwin_fault_reason(), SMMUSIM_DMA_ERR_ABORTED);
        puts("host: not attached, fault checks skipped\n");
        return;
    }
    check_eq("read across into an unmapped page", info, SMMUSIM_DMA_ERR_TRANSLATION);
    check_eq("fault address is the unmapped page", dma_error_address(0), DMATEST_UNMAPPED);
    check("bytes before the fault at most", dma_bytes_done(0) <= 0x100);
    dma_ack(0);

    struct dma_desc w = {.dst = DMATEST_READONLY + 0x40, .len = 64, .op = SMMUSIM_OP_FILL,
                         .flags = SMMUSIM_DMA_FLAG_DST_HOST | tagged, .pasid = DMATEST_PASID};
    check_eq("write to a read-only page", fail(&w), SMMUSIM_DMA_ERR_PERMISSION | SMMUSIM_DMA_ERR_WRITE);
    check_eq("permission fault address", dma_error_address(0), DMATEST_READONLY + 0x40);
    dma_ack(0);

    /* Wrong PASID: the same address is not mapped in PASID 2's address space. */
    w.dst = DMATEST_BUF;
    w.pasid = DMATEST_PASID + 1;
    check_eq("another PASID's address space", fail(&w), SMMUSIM_DMA_ERR_TRANSLATION | SMMUSIM_DMA_ERR_WRITE);
    dma_ack(0);

    hwin_select(DMATEST_BUF, DMATEST_PASID, SMMUSIM_HWIN_FLAG_PASID);
    check_eq("window load from an unmapped page fails", hwin_load64(DMATEST_BUF_SIZE + 8, &word), (uint64_t)-1);
    check_eq("window fault reason", hwin_fault_reason(), SMMUSIM_DMA_ERR_TRANSLATION);
    check_eq("window fault address", hwin_fault_address(), DMATEST_UNMAPPED + 8);
    check_eq("window store to a read-only page fails", hwin_store64(DMATEST_READONLY - DMATEST_BUF, 1), (uint64_t)-1);
    check_eq("window store fault reason and direction",
             mmio_read64(smmusim_reg(SMMUSIM_REG_HWIN_FAULT_INFO)), SMMUSIM_DMA_ERR_PERMISSION | SMMUSIM_DMA_ERR_WRITE);
    check_eq("window load from a mapped page still works", hwin_load64(0, &word), 0);

    struct dma_desc fill = {.dst = DMATEST_BUF, .len = DMATEST_BUF_SIZE, .op = SMMUSIM_OP_FILL,
                            .flags = SMMUSIM_DMA_FLAG_DST_HOST | tagged, .pasid = DMATEST_PASID};
    dma_start(2, &fill);
    dma_abort(2);
    check_eq("abort ends a host transfer", dma_wait(2), SMMUSIM_DMA_ERROR);
    check_eq("host abort reason", dma_error_info(2) & 0xff, SMMUSIM_DMA_ERR_CANCELLED);
    dma_ack(2);
}

int main(void)
{
    local_checks();
    host_checks();
    return (int)check_summary("dma-fault");
}
