/*
 * queue.c — submission and completion entries through the host window (queue.h).
 */
#include "hwin.h"
#include "queue.h"

int queue_read_sqe(unsigned q, uint64_t index, struct smmusim_sqe *sqe)
{
    hwin_select(queue_read(q, SMMUSIM_Q_SQ_BASE), (uint32_t)queue_read(q, SMMUSIM_Q_PASID), SMMUSIM_HWIN_FLAG_PASID);
    return hwin_read(index * SMMUSIM_SQE_SIZE, sqe, sizeof *sqe);
}

int queue_post_cqe(unsigned q, const struct smmusim_cqe *cqe)
{
    uint64_t depth = queue_read(q, SMMUSIM_Q_DEPTH);
    uint64_t tail = queue_read(q, SMMUSIM_Q_CQ_TAIL);
    if (queue_next(tail, depth) == queue_read(q, SMMUSIM_Q_CQ_HEAD))
        return -2;
    hwin_select(queue_read(q, SMMUSIM_Q_CQ_BASE), (uint32_t)queue_read(q, SMMUSIM_Q_PASID), SMMUSIM_HWIN_FLAG_PASID);
    if (hwin_write(tail * SMMUSIM_CQE_SIZE, cqe, sizeof *cqe) != 0)
        return -1;
    queue_write(q, SMMUSIM_Q_CQ_TAIL, queue_next(tail, depth));
    return 0;
}
