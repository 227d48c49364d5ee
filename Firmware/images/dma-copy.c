/*
 * dma-copy.c — self-checking image for the DMA engine's data path (smmusim.h "DMA
 * engine", dma.h): copy, fill and CRC-32C between SRAM buffers, completion by polling,
 * by sleeping in wfi and by an interrupt trap; then, if a host is attached, the same
 * operations to and from host memory under PASID DMATEST_PASID (dmatest.h), checked
 * through DMA and through the host window.
 *
 * Prints "ok <name>" / "FAIL <name>: ..." per check and "dma-copy: N passed, M failed";
 * exits with M.
 */
#include "check.h"
#include "console.h"
#include "dma.h"
#include "dmatest.h"
#include "hwin.h"
#include "irq.h"
#include "smmusim.h"
#include "string.h"

#define BUF 4096

static uint8_t src[BUF] __attribute__((aligned(64)));
static uint8_t dst[BUF] __attribute__((aligned(64)));
static uint8_t back[BUF] __attribute__((aligned(64)));
static volatile unsigned irq_count, irq_last;

void irq_handler(unsigned source)
{
    irq_count++;
    irq_last = source;
    dma_ack(source);   /* sources 0..15 are channels; this image enables no others */
}

static void pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static uint64_t local(uint64_t op, const void *s, void *d, uint64_t len, uint64_t pat, uint64_t *result)
{
    struct dma_desc desc = {.src = (uintptr_t)s, .dst = (uintptr_t)d, .len = len, .pattern = pat, .op = (uint32_t)op};
    return dma_run(0, &desc, result);
}

static void local_checks(void)
{
    uint64_t crc = 0;
    pattern(src, BUF, 1);
    memset(dst, 0, BUF);
    check_eq("local copy completes", local(SMMUSIM_OP_COPY, src, dst, BUF, 0, 0), 0);
    check_eq("local copy moves the bytes", memcmp(src, dst, BUF), 0);

    check_eq("local fill completes", local(SMMUSIM_OP_FILL, 0, dst + 3, 21, 0x8877665544332211ULL, 0), 0);
    check_eq("local fill pattern (first byte)", dst[3], 0x11);
    check_eq("local fill pattern repeats", dst[3 + 8], 0x11);
    check_eq("local fill stops at LEN", dst[3 + 21], src[3 + 21]);

    memcpy(dst, "123456789", 9);
    check_eq("local crc32c completes", local(SMMUSIM_OP_CRC32C, dst, 0, 9, 0, &crc), 0);
    check_eq("crc32c check value", crc, 0xE3069283);

    memcpy(dst, src, 64);
    local(SMMUSIM_OP_COPY, dst, dst + 8, 56, 0, 0);
    check_eq("overlapping copy is a memmove", memcmp(dst + 8, src, 56), 0);

    /* Completion by sleeping: the core waits in wfi for the channel's interrupt. */
    struct dma_desc d = {.src = (uintptr_t)src, .dst = (uintptr_t)back, .len = BUF,
                         .op = SMMUSIM_OP_COPY, .flags = SMMUSIM_DMA_FLAG_IRQ};
    uint64_t before = smmusim_cycles();
    dma_start(1, &d);
    uint64_t status = dma_wait_irq(1);
    uint64_t slept = smmusim_cycles() - before;
    check_eq("wfi wait ends done", status, SMMUSIM_DMA_DONE);
    dma_ack(1);
    check_eq("wfi wait: data arrived", memcmp(src, back, BUF), 0);
    /* mcycle stops in wfi, so a sleeping wait costs far fewer cycles than the transfer's
     * 16 + 512 cycles. */
    check("wfi wait sleeps instead of spinning", slept < 200);
    irq_disable(SMMUSIM_IRQ_DMA(1));

    /* Completion by an interrupt trap: irq_handler runs from the runtime's handler. */
    irq_count = 0;
    irq_enable(SMMUSIM_IRQ_DMA(2));
    irq_line_enable();
    irq_global_enable();
    d.dst = (uintptr_t)dst;
    dma_start(2, &d);
    while (irq_count == 0)
        irq_wait();
    irq_global_disable();
    check_eq("interrupt trap taken once", irq_count, 1);
    check_eq("interrupt names the channel", irq_last, SMMUSIM_IRQ_DMA(2));
    check_eq("handler acknowledged the channel", dma_status(2), SMMUSIM_DMA_IDLE);
    irq_disable(SMMUSIM_IRQ_DMA(2));
}

static uint64_t host(uint64_t op, uint64_t s, uint64_t d, uint64_t len, uint32_t flags, uint64_t pat, uint64_t *result)
{
    struct dma_desc desc = {.src = s, .dst = d, .len = len, .pattern = pat, .op = (uint32_t)op,
                            .flags = flags | SMMUSIM_DMA_FLAG_PASID, .pasid = DMATEST_PASID};
    return dma_run(3 % dma_channels(), &desc, result);
}

static void host_checks(void)
{
    const uint32_t to_host = SMMUSIM_DMA_FLAG_DST_HOST, from_host = SMMUSIM_DMA_FLAG_SRC_HOST;
    uint64_t crc = 0, local_crc = 0, word = 0;

    uint64_t first = host(SMMUSIM_OP_COPY, (uintptr_t)src, DMATEST_BUF + 0x100, BUF, to_host, 0, 0);
    if (first == SMMUSIM_DMA_ERR_ABORTED) {
        puts("host: not attached, host checks skipped\n");
        return;
    }
    check_eq("SRAM to host copy", first, 0);
    memset(back, 0, BUF);
    check_eq("host to SRAM copy", host(SMMUSIM_OP_COPY, DMATEST_BUF + 0x100, (uintptr_t)back, BUF, from_host, 0, 0), 0);
    check_eq("host round trip keeps the bytes", memcmp(src, back, BUF), 0);

    check_eq("host to host copy", host(SMMUSIM_OP_COPY, DMATEST_BUF + 0x100, DMATEST_BUF + 0x8000, BUF,
                                       to_host | from_host, 0, 0), 0);
    check_eq("host crc32c", host(SMMUSIM_OP_CRC32C, DMATEST_BUF + 0x8000, 0, BUF, from_host, 0, &crc), 0);
    local(SMMUSIM_OP_CRC32C, src, 0, BUF, 0, &local_crc);
    check_eq("host crc32c equals the local one", crc, local_crc);

    check_eq("host fill", host(SMMUSIM_OP_FILL, 0, DMATEST_BUF + 0x3000, 0x2000, to_host, 0x0123456789abcdefULL, 0), 0);
    hwin_select(DMATEST_BUF, DMATEST_PASID, SMMUSIM_HWIN_FLAG_PASID);
    check_eq("window reads the fill", hwin_load64(0x3000, &word), 0);
    check_eq("window value", word, 0x0123456789abcdefULL);
    check_eq("window reads the last word", hwin_load64(0x4ff8, &word) == 0 && word == 0x0123456789abcdefULL, 1);
    check("window access costs host latency", hwin_last_latency_ps() > 0);
    check_eq("window store", hwin_store64(0x10, 0xfeedface), 0);
    check_eq("DMA sees the window store", host(SMMUSIM_OP_COPY, DMATEST_BUF + 0x10, (uintptr_t)back, 8, from_host, 0, 0), 0);
    check_eq("stored value", *(volatile uint64_t *)back, 0xfeedface);
}

int main(void)
{
    local_checks();
    host_checks();
    return (int)check_summary("dma-copy");
}
