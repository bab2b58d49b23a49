/**
 * @file queue.h
 * @brief Bounded multi-producer multi-consumer queue of variable-size items
 * between processes, in shared memory.
 *
 * Capacity is fixed at creation in items and in payload bytes.  Items are
 * copied in by mpc_queue_put() and copied out by mpc_queue_get(); FIFO order.
 *
 * Robustness: the queue is guarded by a robust process-shared mutex.  If a
 * process dies while holding it, the next locker repairs the queue: an item
 * whose bytes were being written is dropped (it was never published); an
 * item whose publication had started is completed (publication is a journaled
 * commit); an item being read stays in the queue.  No item is ever returned
 * half-written.  Waiting uses futexes on 32-bit sequence counters (no
 * condition variables, no spinning), so waiters never hang on a dead
 * process.
 *
 * Sharing: mpc_queue_new() is anonymous (inherited by children forked
 * later); mpc_queue_create()/mpc_queue_open() use a "/mpc-..." POSIX shared
 * memory name (mode 0600) with the lifetime policy of shm.h: the name is
 * unlinked when the last handle is freed or after `expected_opens` opens.
 *
 * Ownership: handles are allocated by the library and released with
 * mpc_queue_free() (a forked child that inherited one may free it: it only
 * unmaps).
 */
#ifndef MPC_QUEUE_H
#define MPC_QUEUE_H

#include <stddef.h>

#include "mpc/buf.h"
#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpc_queue mpc_queue_t;

/**
 * @brief Create an anonymous queue.
 * @param[in] max_items  most items held at once (>= 1)
 * @param[in] max_bytes  most payload bytes held at once (>= 1); also the
 *                       largest single item
 * @return 0, MPC_EINVAL, MPC_ENOMEM or -errno.
 * Ownership: free with mpc_queue_free().
 */
MPC_MUST_CHECK int mpc_queue_new(mpc_queue_t **out, size_t max_items,
                                 size_t max_bytes);

/**
 * @brief Create a named queue ("/mpc-...", mode 0600).
 * @param[in] expected_opens unlink the name after this many opens (0: only
 *                           when the last handle is freed)
 * @return 0, MPC_EINVAL, MPC_ENOMEM, -EEXIST, -errno.
 */
MPC_MUST_CHECK int mpc_queue_create(mpc_queue_t **out, const char *name,
                                    size_t max_items, size_t max_bytes,
                                    unsigned expected_opens);

/** @brief Open a named queue. @return 0, -ENOENT, MPC_EINVAL, -errno. */
MPC_MUST_CHECK int mpc_queue_open(mpc_queue_t **out, const char *name);

/** @brief Unmap and release the handle (NULL is fine). */
void mpc_queue_free(mpc_queue_t *q);

/**
 * @brief Append one item, waiting at most `timeout` seconds for room.
 * @param[in] data item bytes (NULL allowed when len == 0); copied
 * @return 0, MPC_ETIMEDOUT (still full), MPC_ETOOBIG (len > max_bytes),
 *         MPC_EINVAL, -errno.
 */
MPC_MUST_CHECK int mpc_queue_put(mpc_queue_t *q, const void *data, size_t len,
                                 double timeout);

/**
 * @brief Remove the oldest item into `out` (contents replaced), waiting at
 * most `timeout` seconds for one.
 * @return 0, MPC_ETIMEDOUT (still empty), MPC_ENOMEM (item stays queued),
 *         MPC_EINVAL, -errno.
 */
MPC_MUST_CHECK int mpc_queue_get(mpc_queue_t *q, mpc_buf_t *out,
                                 double timeout);

/**
 * @brief Current number of items and payload bytes (a snapshot).
 * @param[out] items, bytes may be NULL
 * @return 0, MPC_EINVAL, -errno.
 */
MPC_MUST_CHECK int mpc_queue_count(mpc_queue_t *q, size_t *items,
                                   size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif /* MPC_QUEUE_H */
