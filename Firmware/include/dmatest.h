/*
 * dmatest.h — the host memory the DMA test images (dma-copy, dma-fault) expect.
 *
 * A test that boots them with a host attached maps, for PASID DMATEST_PASID:
 *   DMATEST_BUF       .. + DMATEST_BUF_SIZE   read/write
 *   DMATEST_UNMAPPED  .. + 4 KiB              not mapped (translation faults)
 *   DMATEST_READONLY  .. + 4 KiB              read-only (permission faults on writes)
 * Tests/DevicePlatformTests/FirmwareDMATests.swift does this with its fake host. With
 * no host attached (`smmusim boot` alone) the images notice that a first host transfer
 * ends with SMMUSIM_DMA_ERR_ABORTED and skip their host checks.
 */
#ifndef SMMUSIM_DMATEST_H
#define SMMUSIM_DMATEST_H

#define DMATEST_PASID       1u
#define DMATEST_BUF         0x1000000000ULL
#define DMATEST_BUF_SIZE    0x10000ULL
#define DMATEST_UNMAPPED    (DMATEST_BUF + DMATEST_BUF_SIZE)
#define DMATEST_READONLY    (DMATEST_UNMAPPED + 0x1000)

#endif /* SMMUSIM_DMATEST_H */
