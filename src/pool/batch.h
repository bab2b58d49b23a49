/* Internal to libmpcrun and mpc-run: a batch of tasks for the non-blocking
 * engine written straight into the pool's own unit, one pass per task.
 * mpc_pool_submit_many() takes arrays of inputs and tags, so a caller that
 * decodes tasks from a message first writes those arrays and the pool then
 * reads them twice (to size the unit, then to copy); a rank forwarding its
 * master's batches does that for every task.  Here the caller gives an upper
 * bound of the input bytes (e.g. the rest of the message) and adds tasks as
 * it decodes them.
 *
 *   mpc__pool_batch_t b;
 *   rc = mpc__pool_batch_begin(p, &b, n, bound);
 *   for each task: rc = mpc__pool_batch_add(&b, tag, in, len);
 *   rc = mpc__pool_batch_end(p, &b);    (or mpc__pool_batch_abort(&b))
 *
 * Ownership: the batch's memory is the pool's from batch_end() on; until then
 * batch_abort() frees it.  The inputs are copied by batch_add(). */
#ifndef MPC_POOL_BATCH_H
#define MPC_POOL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/error.h"
#include "mpc/pool.h"
#include "pool/internal.h"

typedef struct mpc__pool_batch {
  struct unit *unit;
  unsigned char *o, *end; /* where the next entry goes; the room's end */
  uint32_t n, max;        /* entries added; the most begin() allowed */
  size_t esize;           /* the size of every entry so far (SIZE_MAX: mixed) */
} mpc__pool_batch_t;

/**
 * @brief Start a batch of at most n tasks whose inputs add up to at most
 * in_bytes.
 * @return 0, MPC_EINVAL (n too large), MPC_ENOMEM, or the pool's error
 *         (as mpc_pool_submit_many()).  On error there is nothing to abort.
 */
MPC_MUST_CHECK int mpc__pool_batch_begin(mpc_pool_t *p, mpc__pool_batch_t *b,
                                         size_t n, size_t in_bytes);

/** @brief Add a task (its len input bytes at in copied; in may be NULL only
 *  when len is 0): MPC_EINVAL when it would go past what begin() was told
 *  (nothing added then). */
static inline MPC_MUST_CHECK int mpc__pool_batch_add(mpc__pool_batch_t *b, uint64_t tag,
                                                     const void *in, size_t len) {
  /* Everything in locals, stored once: the copy writes through a byte
   * pointer, which would make the compiler reload b's fields after it. */
  unsigned char *o = b->o;
  uint32_t n = b->n;
  size_t need = ENTRY_HDR + PAD8(len);
  if (n == b->max || (size_t)(b->end - o) < need)
    return MPC_EINVAL;
  b->o = o + need;
  b->n = n + 1;
  if (__builtin_expect(need != b->esize, 0))
    b->esize = n ? SIZE_MAX : need;
  uint64_t eh[2] = {tag, len};
  memcpy(o, eh, ENTRY_HDR);
  mpc__copy_pad8(o + ENTRY_HDR, in, len);
  return 0;
}

/** @brief Queue the tasks added (none: nothing is queued); b is done with.
 *  @return 0 or the pool's error (the batch is dropped then). */
MPC_MUST_CHECK int mpc__pool_batch_end(mpc_pool_t *p, mpc__pool_batch_t *b);

/** @brief Drop a batch begun and not ended. */
void mpc__pool_batch_abort(mpc__pool_batch_t *b);

#endif
