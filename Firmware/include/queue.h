/*
 * queue.h — the hardware queues from firmware (smmusim.h "Hardware queues"): the
 * registers of queue q, ring arithmetic, and reading submissions / writing completions
 * in process memory through the host window (hwin.h).
 */
#ifndef SMMUSIM_QUEUE_H
#define SMMUSIM_QUEUE_H

#include "smmusim.h"

static inline uintptr_t queue_reg(unsigned q, unsigned offset)
{
    return (uintptr_t)SMMUSIM_QUEUE_BASE + SMMUSIM_QUEUE_STRIDE * q + offset;
}

static inline unsigned queue_count(void)
{
    return (unsigned)mmio_read64(smmusim_reg(SMMUSIM_REG_QUEUE_COUNT));
}

static inline uint64_t queue_read(unsigned q, unsigned offset) { return mmio_read64(queue_reg(q, offset)); }
static inline void queue_write(unsigned q, unsigned offset, uint64_t v) { mmio_write64(queue_reg(q, offset), v); }

static inline uint64_t queue_state(unsigned q) { return queue_read(q, SMMUSIM_Q_STATE); }

/* Next index of a ring of `depth` entries (a power of two). */
static inline uint64_t queue_next(uint64_t index, uint64_t depth) { return (index + 1) & (depth - 1); }

/* Reads submission `index` of queue q into *sqe through the host window (which it
 * re-points at the queue's SQ with the queue's PASID). Returns 0, or -1 on a window
 * fault (hwin_fault_reason/hwin_fault_address say why). */
int queue_read_sqe(unsigned q, uint64_t index, struct smmusim_sqe *sqe);

/* Writes *cqe at the queue's CQ_TAIL and advances CQ_TAIL. Returns 0; -1 on a window
 * fault; -2 if the completion ring is full (wait for the host's CQ_HEAD doorbell). */
int queue_post_cqe(unsigned q, const struct smmusim_cqe *cqe);

#endif /* SMMUSIM_QUEUE_H */
