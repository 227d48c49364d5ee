/*
 * queue-service.c — services the device's hardware queues (smmusim.h "Hardware queues",
 * issue 4 item 7).
 *
 * For every RUNNING queue q it reads the next submission entry with the queue's PASID
 * through the host window (queue.h), performs it with DMA channel q % DMA_CHANNELS
 * (host addresses, the queue's PASID, QUEUE = q + 1 so that stopping the queue aborts
 * the transfer), writes the completion entry, advances CQ_TAIL and then SQ_HEAD. Queues
 * are served in parallel, one entry in flight per queue (queues that share a channel
 * take turns). It never hangs on an error:
 *   - a translation or other fault of the transfer: an error completion with the
 *     reason and the faulting address;
 *   - the host stopped the queue: the transfer ends CANCELLED and its completion says
 *     so; no further entries are started until the host starts the queue again;
 *   - the host disabled the queue: the transfer ends CANCELLED and its completion is
 *     dropped (the rings are gone, even if the queue was set up and started again);
 *   - a submission entry that cannot be read: an error completion with tag 0;
 *   - an unknown opcode or non-zero flags: a BAD_ENTRY completion;
 *   - a completion ring that cannot be written: the queue is stopped (STATE := 2);
 *   - a full completion ring: the completion waits for the host's CQ_HEAD doorbell.
 * When nothing is left to do it sleeps in wfi until a doorbell, a queue state change
 * or a DMA completion (interrupt sources enabled, mstatus.MIE clear: no traps).
 * It prints one line at start-up and runs until the device is stopped.
 */
#include "console.h"
#include "dma.h"
#include "hwin.h"
#include "irq.h"
#include "queue.h"
#include "smmusim.h"

struct queue_ctx {
    int busy;                 /* a transfer is in flight on `ch` */
    int has_cqe;              /* `cqe` waits to be posted */
    unsigned ch;
    uint32_t op;              /* operation in flight */
    uint64_t generation;      /* queue GENERATION when the entry was read */
    struct smmusim_cqe cqe;
};

static struct queue_ctx ctx[SMMUSIM_MAX_QUEUES];
static unsigned channel_owner[SMMUSIM_MAX_DMA_CHANNELS];   /* 1 + queue, 0: free */
static unsigned nqueues, nchannels;

static void set_cqe(struct queue_ctx *c, uint64_t tag, uint32_t status, uint64_t index, uint64_t bytes, uint64_t value)
{
    c->cqe.tag = tag;
    c->cqe.status = status;
    c->cqe.sq_index = (uint32_t)index;
    c->cqe.bytes_done = bytes;
    c->cqe.value = value;
    c->has_cqe = 1;
}

/* The channel finished: turn its status into the completion entry. */
static void finish_transfer(struct queue_ctx *c, uint64_t status)
{
    if (status == SMMUSIM_DMA_DONE) {
        c->cqe.status = SMMUSIM_CQE_OK;
        c->cqe.value = c->op == SMMUSIM_OP_CRC32C ? dma_result(c->ch) : 0;
    } else {
        c->cqe.status = (uint32_t)(dma_error_info(c->ch) & 0xff);
        c->cqe.value = dma_error_address(c->ch);
    }
    c->cqe.bytes_done = dma_bytes_done(c->ch);
    c->has_cqe = 1;
    dma_ack(c->ch);
    channel_owner[c->ch] = 0;
    c->busy = 0;
}

/* One step for queue q; returns nonzero if it made progress. */
static int service(unsigned q)
{
    struct queue_ctx *c = &ctx[q];
    int progress = 0;

    if (c->busy) {
        uint64_t status = dma_status(c->ch);
        if (status == SMMUSIM_DMA_BUSY)
            return 0;
        finish_transfer(c, status);
        progress = 1;
    }

    uint64_t state = queue_state(q);
    uint64_t depth = queue_read(q, SMMUSIM_Q_DEPTH);
    uint64_t generation = queue_read(q, SMMUSIM_Q_GENERATION);

    if (c->has_cqe) {
        if (state == SMMUSIM_Q_DISABLED || generation != c->generation) {
            /* Torn down (and maybe set up again): the entry's rings are gone. */
            c->has_cqe = 0;
            return 1;
        }
        int r = queue_post_cqe(q, &c->cqe);
        if (r == -2)
            return progress;                       /* ring full: wait for CQ_HEAD */
        c->has_cqe = 0;
        if (r == -1) {
            printf("queue-service: queue %u: completion ring unwritable (reason %u at 0x%llx), stopping it\n",
                   q, hwin_fault_reason(), (unsigned long long)hwin_fault_address());
            queue_write(q, SMMUSIM_Q_STATE, SMMUSIM_Q_STOPPED);
            return 1;
        }
        queue_write(q, SMMUSIM_Q_SQ_HEAD, queue_next(c->cqe.sq_index, depth));
        progress = 1;
        state = queue_state(q);
    }

    if (state != SMMUSIM_Q_RUNNING)
        return progress;
    uint64_t head = queue_read(q, SMMUSIM_Q_SQ_HEAD);
    if (head == queue_read(q, SMMUSIM_Q_SQ_TAIL))
        return progress;
    unsigned ch = q % nchannels;
    if (channel_owner[ch] != 0)
        return progress;

    struct smmusim_sqe sqe;
    c->generation = generation;
    if (queue_read_sqe(q, head, &sqe) != 0) {
        set_cqe(c, 0, hwin_fault_reason(), head, 0, hwin_fault_address());
        return 1;
    }
    if (sqe.opcode > SMMUSIM_OP_CRC32C || sqe.flags != 0) {
        set_cqe(c, sqe.tag, SMMUSIM_CQE_BAD_ENTRY, head, 0, 0);
        return 1;
    }
    struct dma_desc d = {
        .src = sqe.src, .dst = sqe.dst, .len = sqe.length, .pattern = sqe.pattern, .op = sqe.opcode,
        .flags = SMMUSIM_DMA_FLAG_SRC_HOST | SMMUSIM_DMA_FLAG_DST_HOST | SMMUSIM_DMA_FLAG_PASID | SMMUSIM_DMA_FLAG_IRQ,
        .pasid = (uint32_t)queue_read(q, SMMUSIM_Q_PASID), .queue = q + 1,
    };
    dma_start(ch, &d);
    /* A stop or disable that landed between the state check and the start did not see
     * this transfer: abort it ourselves, so a queue that is not running gets no new work. */
    if (queue_state(q) != SMMUSIM_Q_RUNNING || queue_read(q, SMMUSIM_Q_GENERATION) != generation)
        dma_abort(ch);
    c->busy = 1;
    c->ch = ch;
    c->cqe.tag = sqe.tag;
    c->cqe.sq_index = (uint32_t)head;
    c->op = sqe.opcode;
    channel_owner[ch] = q + 1;
    return 1;
}

int main(void)
{
    nqueues = queue_count();
    nchannels = dma_channels();
    if (nqueues > SMMUSIM_MAX_QUEUES)
        nqueues = SMMUSIM_MAX_QUEUES;
    uint64_t mask = 0;
    for (unsigned q = 0; q < nqueues; q++)
        mask |= 1ULL << SMMUSIM_IRQ_DOORBELL(q) | 1ULL << SMMUSIM_IRQ_QUEUE_STATE(q);
    for (unsigned ch = 0; ch < nchannels && ch < nqueues; ch++)
        mask |= 1ULL << SMMUSIM_IRQ_DMA(ch);
    irq_enable_mask(mask);
    irq_line_enable();
    printf("queue-service: %u queues, %u DMA channels\n", nqueues, nchannels);

    for (;;) {
        /* Clear, scan, sleep: an event after the clear keeps wfi from sleeping. */
        irq_clear(mask);
        int progress = 0;
        for (unsigned q = 0; q < nqueues; q++)
            progress |= service(q);
        if (!progress)
            irq_wait();
    }
}
