/* Internal: the master/worker wire protocol of mpc-run and its byte packing.
 *
 * Two tags on mpc-run's own communicator (a named duplicate of MPI_COMM_WORLD):
 *
 *   MPC__TAG_DOWN  master -> rank:  u32 kind, u32 flags, u32 n, then
 *       kind TASKS:    n x { u64 tid, u32 len, len bytes }   (flags bit 0: the
 *                      last message answering the rank's request)
 *       kind STOP:     n = 0; no more work: report what is left, say BYE
 *       kind STOP_NOW: n = 0; cancel running tasks, report them, say BYE
 *       kind DRAIN:    n = 0; cancel the tasks not started yet (report them
 *                      canceled), let running ones finish, ask for no more
 *       kind CANCEL:   n x { u64 tid }: cancel these tasks (a speculative
 *                      race was won elsewhere); each is still reported
 *   MPC__TAG_UP    rank -> master:  u32 kind, u32 want, u32 n, then
 *       n x { u64 tid, u32 status, i32 code, i32 worker, i32 pid,
 *             f64 start, f64 end, i64 maxrss_kb, u32 len, len bytes }
 *       kind RESULTS:  want > 0 asks for up to about `want` more tasks (a
 *                      credit request; a rank has at most one outstanding).
 *                      Sent at least every --heartbeat/4 s, results or not.
 *       kind BYE:      the rank's last message
 *
 * Integers are little-endian; start/end are seconds since the rank's start. */
#ifndef MPC_MPI_WIRE_H
#define MPC_MPI_WIRE_H

#include <stdint.h>
#include <string.h>

#include "mpc/buf.h"
#include "mpc/error.h"

enum { MPC__TAG_DOWN = 11, MPC__TAG_UP = 12 };
enum { MPC__DOWN_TASKS = 1, MPC__DOWN_STOP = 2, MPC__DOWN_STOP_NOW = 3, MPC__DOWN_DRAIN = 4,
       MPC__DOWN_CANCEL = 5 };
enum { MPC__UP_RESULTS = 1, MPC__UP_BYE = 2 };
#define MPC__HDR_BYTES 12u
#define MPC__DOWN_LAST 1u

typedef struct mpc__wres {
  uint64_t tid;
  uint32_t status;
  int32_t code, worker, pid;
  double start, end;
  int64_t maxrss_kb;
  const void *data; /* borrowed */
  uint32_t len;
} mpc__wres_t;

/* Header: 3 u32.  Writers start a message with mpc__wire_hdr then append
 * items; mpc__wire_set_n patches the count. */
MPC_MUST_CHECK int mpc__wire_hdr(mpc_buf_t *b, uint32_t kind, uint32_t x);
void mpc__wire_set_n(mpc_buf_t *b, uint32_t n);
void mpc__wire_set_kind(mpc_buf_t *b, uint32_t kind);
void mpc__wire_set_x(mpc_buf_t *b, uint32_t x);
uint32_t mpc__wire_get_n(const mpc_buf_t *b);

/* Reader with bounds checks: any overrun gives MPC_EPROTO. */
typedef struct mpc__wrd {
  const unsigned char *p, *end;
} mpc__wrd_t;

MPC_MUST_CHECK int mpc__wire_read_hdr(mpc__wrd_t *r, uint32_t *kind,
                                      uint32_t *x, uint32_t *n);
/* Per task: inline, these run several times per task on the master. */
/* Little-endian on the wire: a plain copy on little-endian hosts (one load or
 * store instead of a byte loop: this runs several times per task). */
static inline uint32_t mpc__le32(uint32_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return __builtin_bswap32(v);
#else
  return v;
#endif
}
static inline uint64_t mpc__le64(uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return __builtin_bswap64(v);
#else
  return v;
#endif
}
static inline void mpc__put32(unsigned char *p, uint32_t v) {
  v = mpc__le32(v);
  memcpy(p, &v, 4);
}
static inline void mpc__put64(unsigned char *p, uint64_t v) {
  v = mpc__le64(v);
  memcpy(p, &v, 8);
}
static inline uint32_t mpc__get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return mpc__le32(v);
}
static inline uint64_t mpc__get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return mpc__le64(v);
}

/* memcpy for the few bytes of a typical key or input, without a call. */
static inline void mpc__copy_small(unsigned char *d, const unsigned char *s, size_t n) {
  if (n > 16) {
    memcpy(d, s, n);
  } else if (n >= 8) { /* two overlapping words */
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(d, &a, 8);
    memcpy(d + n - 8, &b, 8);
  } else {
    for (size_t i = 0; i < n; i++)
      d[i] = s[i];
  }
}

/* A task entry at o (12 + len bytes of room); returns the end. */
static inline unsigned char *mpc__wire_task_at(unsigned char *o, uint64_t tid, const void *p,
                                               uint32_t len) {
  mpc__put64(o, tid);
  mpc__put32(o + 8, len);
  mpc__copy_small(o + 12, p, len);
  return o + 12 + (size_t)len;
}

static inline int mpc__wire_task(mpc_buf_t *b, uint64_t tid, const void *p, uint32_t len) {
  int rc = mpc_buf_reserve(b, 12 + (size_t)len);
  if (rc)
    return rc;
  b->len = (size_t)(mpc__wire_task_at(b->data + b->len, tid, p, len) - b->data);
  return 0;
}

#define MPC__RES_FIXED (8 + 4 * 4 + 8 * 3 + 4)

static inline int mpc__wire_result(mpc_buf_t *b, const mpc__wres_t *r) {
  int rc = mpc_buf_reserve(b, MPC__RES_FIXED + (size_t)r->len);
  if (rc)
    return rc;
  unsigned char *o = b->data + b->len;
  uint64_t s, e;
  memcpy(&s, &r->start, 8);
  memcpy(&e, &r->end, 8);
  mpc__put64(o, r->tid);
  mpc__put32(o + 8, r->status);
  mpc__put32(o + 12, (uint32_t)r->code);
  mpc__put32(o + 16, (uint32_t)r->worker);
  mpc__put32(o + 20, (uint32_t)r->pid);
  mpc__put64(o + 24, s);
  mpc__put64(o + 32, e);
  mpc__put64(o + 40, (uint64_t)r->maxrss_kb);
  mpc__put32(o + 48, r->len);
  if (r->len)
    memcpy(o + MPC__RES_FIXED, r->data, r->len);
  b->len += MPC__RES_FIXED + (size_t)r->len;
  return 0;
}

static inline int mpc__wire_read_task(mpc__wrd_t *r, uint64_t *tid, const void **p,
                        uint32_t *len) {
  if (r->end - r->p < 12)
    return MPC_EPROTO;
  *tid = mpc__get64(r->p);
  *len = mpc__get32(r->p + 8);
  if ((uint64_t)(r->end - r->p - 12) < *len)
    return MPC_EPROTO;
  *p = r->p + 12;
  r->p += 12 + (size_t)*len;
  return 0;
}

static inline int mpc__wire_read_result(mpc__wrd_t *r, mpc__wres_t *res) {
  if (r->end - r->p < MPC__RES_FIXED)
    return MPC_EPROTO;
  const unsigned char *o = r->p;
  uint64_t s = mpc__get64(o + 24), e = mpc__get64(o + 32);
  res->tid = mpc__get64(o);
  res->status = mpc__get32(o + 8);
  res->code = (int32_t)mpc__get32(o + 12);
  res->worker = (int32_t)mpc__get32(o + 16);
  res->pid = (int32_t)mpc__get32(o + 20);
  memcpy(&res->start, &s, 8);
  memcpy(&res->end, &e, 8);
  res->maxrss_kb = (int64_t)mpc__get64(o + 40);
  res->len = mpc__get32(o + 48);
  if ((uint64_t)(r->end - r->p - MPC__RES_FIXED) < res->len)
    return MPC_EPROTO;
  res->data = o + MPC__RES_FIXED;
  r->p += MPC__RES_FIXED + (size_t)res->len;
  return 0;
}

#endif
