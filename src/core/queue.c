/* Bounded MPMC queue of variable-size items in shared memory.
 *
 * Layout: a header, then a byte ring of max_bytes + 8 * max_items bytes
 * holding records [u64 length][payload], wrapping byte-wise.  The committed
 * state (head, tail, count, bytes) changes only through a journaled commit,
 * after the record's bytes are in place, so a writer that dies mid-copy
 * leaves no trace and one that dies mid-commit is completed by the repair.
 * Waiters sleep on futexes: getters on put_seq, putters on get_seq. */
#include "mpc/queue.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define KIND_QUEUE 0x51554555u /* "QUEU" */

typedef struct qhdr {
  mpc__seg_hdr_t seg;
  pthread_mutex_t lock;
  uint64_t max_items, max_bytes, ring;
  uint64_t head, tail, count, bytes; /* committed state */
  mpc__journal_t j;
  uint32_t put_seq, get_seq; /* futex words, bumped on every put / get */
  uint32_t put_waiters, get_waiters;
  uint64_t repairs; /* times the queue was recovered after a death */
} qhdr_t;

#define Q_DATA_OFF ((sizeof(qhdr_t) + 63) / 64 * 64)

struct mpc_queue {
  mpc__seg_t seg;
  qhdr_t *h;
  unsigned char *ring;
  int crash; /* test hook */
};

void mpc__queue_debug_crash(struct mpc_queue *q, int point) {
  q->crash = point;
}

static void ring_write(mpc_queue_t *q, uint64_t off, const void *src,
                       size_t n) {
  uint64_t r = q->h->ring;
  size_t first = (size_t)(r - off) < n ? (size_t)(r - off) : n;
  memcpy(q->ring + off, src, first);
  if (n > first)
    memcpy(q->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(mpc_queue_t *q, uint64_t off, void *dst, size_t n) {
  uint64_t r = q->h->ring;
  size_t first = (size_t)(r - off) < n ? (size_t)(r - off) : n;
  memcpy(dst, q->ring + off, first);
  if (n > first)
    memcpy((unsigned char *)dst + first, q->ring, n - first);
}

/* Is the committed state self-consistent?  Walks every record. */
static int q_consistent(mpc_queue_t *q) {
  qhdr_t *h = q->h;
  if (h->head >= h->ring || h->tail >= h->ring || h->count > h->max_items ||
      h->bytes > h->max_bytes)
    return 0;
  uint64_t off = h->head, sum = 0;
  for (uint64_t i = 0; i < h->count; i++) {
    uint64_t len;
    ring_read(q, off, &len, sizeof len);
    if (len > h->max_bytes || sum + len > h->bytes)
      return 0;
    sum += len;
    off = (off + 8 + len) % h->ring;
  }
  return sum == h->bytes && off == h->tail;
}

/* Runs with the lock held after its previous owner died. */
static void q_repair(void *ctx) {
  mpc_queue_t *q = ctx;
  qhdr_t *h = q->h;
  mpc__journal_recover(&h->j, q->seg.base);
  if (!q_consistent(q)) {
    /* Cannot happen with the journal; never hand out garbage if it does. */
    h->head = h->tail = h->count = h->bytes = 0;
  }
  h->repairs++;
  /* Wake everyone: they re-check the state. */
  __atomic_add_fetch(&h->put_seq, 1, __ATOMIC_ACQ_REL);
  __atomic_add_fetch(&h->get_seq, 1, __ATOMIC_ACQ_REL);
  mpc__futex_wake(&h->put_seq);
  mpc__futex_wake(&h->get_seq);
}

static int q_init(mpc_queue_t *q, const char *name, size_t max_items,
                  size_t max_bytes, unsigned expected) {
  if (max_items == 0 || max_bytes == 0 || max_items > ((size_t)1 << 32) ||
      max_bytes > ((size_t)1 << 40))
    return MPC_EINVAL;
  uint64_t ring = (uint64_t)max_bytes + 8 * (uint64_t)max_items;
  int rc = mpc__seg_create(&q->seg, name, Q_DATA_OFF + (size_t)ring,
                           KIND_QUEUE, expected);
  if (rc)
    return rc;
  qhdr_t *h = q->seg.base;
  rc = mpc__mutex_init(&h->lock);
  if (rc) {
    mpc__seg_close(&q->seg);
    return rc;
  }
  h->max_items = max_items;
  h->max_bytes = max_bytes;
  h->ring = ring;
  mpc__seg_publish(&q->seg);
  q->h = h;
  q->ring = (unsigned char *)q->seg.base + Q_DATA_OFF;
  return 0;
}

static int q_new(mpc_queue_t **out, const char *name, size_t max_items,
                 size_t max_bytes, unsigned expected) {
  if (!out)
    return MPC_EINVAL;
  *out = NULL;
  mpc_queue_t *q = calloc(1, sizeof *q);
  if (!q)
    return MPC_ENOMEM;
  int rc = q_init(q, name, max_items, max_bytes, expected);
  if (rc) {
    free(q);
    return rc;
  }
  *out = q;
  return 0;
}

int mpc_queue_new(mpc_queue_t **out, size_t max_items, size_t max_bytes) {
  return q_new(out, NULL, max_items, max_bytes, 0);
}

int mpc_queue_create(mpc_queue_t **out, const char *name, size_t max_items,
                     size_t max_bytes, unsigned expected_opens) {
  if (!name)
    return MPC_EINVAL;
  return q_new(out, name, max_items, max_bytes, expected_opens);
}

int mpc_queue_open(mpc_queue_t **out, const char *name) {
  if (!out)
    return MPC_EINVAL;
  *out = NULL;
  mpc_queue_t *q = calloc(1, sizeof *q);
  if (!q)
    return MPC_ENOMEM;
  int rc = mpc__seg_open(&q->seg, name, KIND_QUEUE);
  if (rc) {
    free(q);
    return rc;
  }
  qhdr_t *h = q->seg.base;
  if (h->ring != h->max_bytes + 8 * h->max_items ||
      Q_DATA_OFF + h->ring > q->seg.size) {
    mpc__seg_close(&q->seg);
    free(q);
    return MPC_EINVAL;
  }
  q->h = h;
  q->ring = (unsigned char *)q->seg.base + Q_DATA_OFF;
  *out = q;
  return 0;
}

void mpc_queue_free(mpc_queue_t *q) {
  if (!q)
    return;
  mpc__seg_close(&q->seg);
  free(q);
}

static int q_lock(mpc_queue_t *q, double deadline) {
  int rc = mpc__mutex_lock(&q->h->lock, deadline, q_repair, q);
  return rc == MPC_EOWNERDEAD ? 0 : rc; /* repaired: carry on */
}

/* Called with the lock held: sleep on *seq (value `seen`) after unlocking. */
static int q_wait(mpc_queue_t *q, uint32_t *seq, uint32_t *waiters,
                  double deadline) {
  uint32_t seen = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
  __atomic_add_fetch(waiters, 1, __ATOMIC_ACQ_REL);
  mpc__mutex_unlock(&q->h->lock);
  int rc = mpc__futex_wait(seq, seen, deadline);
  __atomic_sub_fetch(waiters, 1, __ATOMIC_ACQ_REL);
  return rc;
}

static void q_signal(uint32_t *seq, uint32_t *waiters) {
  __atomic_add_fetch(seq, 1, __ATOMIC_ACQ_REL);
  if (__atomic_load_n(waiters, __ATOMIC_ACQUIRE))
    mpc__futex_wake(seq);
}

int mpc_queue_put(mpc_queue_t *q, const void *data, size_t len,
                  double timeout) {
  if (!q || (!data && len))
    return MPC_EINVAL;
  qhdr_t *h = q->h;
  if (len > h->max_bytes)
    return MPC_ETOOBIG;
  double deadline = mpc__deadline(timeout);
  for (;;) {
    int rc = q_lock(q, deadline);
    if (rc)
      return rc;
    if (h->count < h->max_items && h->bytes + len <= h->max_bytes)
      break;
    rc = q_wait(q, &h->get_seq, &h->put_waiters, deadline);
    if (rc == MPC_ETIMEDOUT)
      return rc;
  }
  /* Write the record into free space: invisible until the commit. */
  uint64_t len64 = len;
  ring_write(q, h->tail, &len64, sizeof len64);
  uint64_t off = (h->tail + 8) % h->ring;
  if (q->crash == MPC__CRASH_BEFORE_COMMIT) {
    ring_write(q, off, data, len / 2);
    raise(SIGKILL);
  }
  if (len)
    ring_write(q, off, data, len);
  mpc__journal_begin(&h->j);
  mpc__journal_add(&h->j, q->seg.base, &h->tail, (off + len) % h->ring);
  mpc__journal_add(&h->j, q->seg.base, &h->count, h->count + 1);
  mpc__journal_add(&h->j, q->seg.base, &h->bytes, h->bytes + len);
  mpc__journal_commit(&h->j, q->seg.base, q->crash == MPC__CRASH_IN_COMMIT);
  q_signal(&h->put_seq, &h->get_waiters);
  mpc__mutex_unlock(&h->lock);
  return 0;
}

int mpc_queue_get(mpc_queue_t *q, mpc_buf_t *out, double timeout) {
  if (!q || !out)
    return MPC_EINVAL;
  qhdr_t *h = q->h;
  double deadline = mpc__deadline(timeout);
  for (;;) {
    int rc = q_lock(q, deadline);
    if (rc)
      return rc;
    if (h->count > 0)
      break;
    rc = q_wait(q, &h->put_seq, &h->get_waiters, deadline);
    if (rc == MPC_ETIMEDOUT)
      return rc;
  }
  uint64_t len;
  ring_read(q, h->head, &len, sizeof len);
  out->len = 0;
  int rc = mpc_buf_reserve(out, (size_t)len);
  if (rc) {
    mpc__mutex_unlock(&h->lock);
    return rc;
  }
  uint64_t off = (h->head + 8) % h->ring;
  if (len)
    ring_read(q, off, out->data, (size_t)len);
  out->len = (size_t)len;
  mpc__journal_begin(&h->j);
  mpc__journal_add(&h->j, q->seg.base, &h->head, (off + len) % h->ring);
  mpc__journal_add(&h->j, q->seg.base, &h->count, h->count - 1);
  mpc__journal_add(&h->j, q->seg.base, &h->bytes, h->bytes - len);
  mpc__journal_commit(&h->j, q->seg.base, 0);
  q_signal(&h->get_seq, &h->put_waiters);
  mpc__mutex_unlock(&h->lock);
  return 0;
}

int mpc_queue_count(mpc_queue_t *q, size_t *items, size_t *bytes) {
  if (!q)
    return MPC_EINVAL;
  int rc = q_lock(q, -1);
  if (rc)
    return rc;
  if (items)
    *items = (size_t)q->h->count;
  if (bytes)
    *bytes = (size_t)q->h->bytes;
  mpc__mutex_unlock(&q->h->lock);
  return 0;
}
