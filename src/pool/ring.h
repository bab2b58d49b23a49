/* Internal: single-producer single-consumer byte ring in shared memory.
 *
 * The pool gives every worker two rings (tasks parent->worker, results
 * worker->parent) in one memfd mapping.  Records are 16-byte aligned:
 *
 *   [u32 type | u32 len][u64 id][payload, padded to 16]
 *
 * A record never wraps: when it does not fit before the end, the producer
 * writes a WRAP record (or nothing, when the tail is exactly at the end) and
 * starts again at offset 0.  Payloads larger than RING_MAXREC are split into
 * records carrying RING_MORE; the consumer reassembles them.
 *
 * head and tail are free-running byte counters; tail is published with a
 * release store after the bytes are written, so a producer that dies mid-write
 * leaves nothing visible. */
#ifndef MPC_POOL_RING_H
#define MPC_POOL_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RING_WRAP 0xffffu
#define RING_MORE 0x10000u /* flag in type: payload continues in the next record */
#define RING_TYPE(t) ((t) & 0xffffu)

typedef struct ring_rec {
  uint32_t type;
  uint32_t len;
  uint64_t id;
} ring_rec_t;

typedef struct ring {
  _Alignas(64) _Atomic uint64_t head; /* consumer position */
  _Alignas(64) _Atomic uint64_t tail; /* producer position */
  _Alignas(64) uint64_t cap;          /* bytes, power of two */
  unsigned char data[] __attribute__((aligned(64)));
} ring_t;

#define RING_ALIGN(n) (((n) + 15u) & ~(size_t)15u)

static inline size_t ring_maxrec(const ring_t *r) { return r->cap / 4 - 16; }

static inline size_t ring_used(ring_t *r) {
  return (size_t)(atomic_load_explicit(&r->tail, memory_order_relaxed) -
                  atomic_load_explicit(&r->head, memory_order_acquire));
}

/* Producer: reserve a record with `len` payload bytes.  Returns a pointer to
 * the record header or NULL when there is no room now.  Fill it, then call
 * ring_commit(). */
static inline ring_rec_t *ring_reserve(ring_t *r, size_t len, uint64_t *pos_out) {
  size_t need = 16 + RING_ALIGN(len);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  size_t off = (size_t)(tail & (r->cap - 1));
  size_t to_end = r->cap - off;
  size_t free_b = r->cap - (size_t)(tail - head);
  if (to_end < need) {
    /* Skip the end of the buffer: needs to_end + need free bytes. */
    if (free_b < to_end + need)
      return NULL;
    ring_rec_t *w = (ring_rec_t *)(r->data + off);
    w->type = RING_WRAP;
    w->len = 0;
    tail += to_end;
    off = 0;
  } else if (free_b < need) {
    return NULL;
  }
  *pos_out = tail;
  return (ring_rec_t *)(r->data + off);
}

static inline void ring_commit(ring_t *r, uint64_t pos, size_t len) {
  atomic_store_explicit(&r->tail, pos + 16 + RING_ALIGN(len),
                        memory_order_seq_cst);
}

/* Consumer: the next record or NULL when empty.  *pos_out is its position, to
 * pass to ring_release() once its payload is no longer needed. */
static inline ring_rec_t *ring_peek(ring_t *r, uint64_t *pos_out) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  while (head != tail) {
    size_t off = (size_t)(head & (r->cap - 1));
    ring_rec_t *rec = (ring_rec_t *)(r->data + off);
    /* A WRAP record, or a tail-of-buffer gap too small for a header. */
    if (r->cap - off < 16 || rec->type == RING_WRAP) {
      head += r->cap - off;
      atomic_store_explicit(&r->head, head, memory_order_release);
      continue;
    }
    *pos_out = head;
    return rec;
  }
  return NULL;
}

static inline void ring_release(ring_t *r, uint64_t pos, const ring_rec_t *rec) {
  atomic_store_explicit(&r->head, pos + 16 + RING_ALIGN(rec->len),
                        memory_order_seq_cst);
}

static inline void ring_init(ring_t *r, size_t cap) {
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  r->cap = cap;
}

#endif
