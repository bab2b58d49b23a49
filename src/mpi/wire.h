/* Internal: the master/worker wire protocol of mpc-run and its byte packing.
 *
 * Two tags on mpc-run's own communicator (a named duplicate of MPI_COMM_WORLD):
 *
 *   MPC__TAG_DOWN  master -> rank:  u32 kind, u32 flags, u32 n, then
 *       kind TASKS:    n x { u64 tid, u32 len, len bytes }, or with flags
 *                      bit 2 (RUN) u64 tid0 then n x { uvar len, len bytes }
 *                      for tids tid0, tid0 + 1, ...  (flags bit 0: the last
 *                      message answering the rank's request; bit 1: results
 *                      may come back short, see below)
 *       kind STOP:     n = 0; no more work: report what is left, say BYE
 *       kind STOP_NOW: n = 0; cancel running tasks, report them, say BYE
 *       kind DRAIN:    n = 0; cancel the tasks not started yet (report them
 *                      canceled), let running ones finish, ask for no more
 *       kind CANCEL:   n x { u64 tid }: cancel these tasks (a speculative
 *                      race was won elsewhere); each is still reported
 *   MPC__TAG_UP    rank -> master:  u32 kind, u32 want, u32 n, then n entries,
 *       each starting with a u8 type:
 *         0:       { u64 tid, u32 status, i32 code, i32 worker, i32 pid,
 *                    f64 start, f64 end, i64 maxrss_kb, u32 len, len bytes }
 *         1..255:  a success of worker type - 1 whose pid the master knows
 *                  from an earlier full entry of that worker:
 *                  { i8 tid - previous entry's tid (0 before the first),
 *                    u32 run time in ns, u16 len, len bytes }
 *                  Only when the master asked for them (no journal, trace,
 *                  timeline or --ordered needs the rest); what does not fit
 *                  these fields goes as a full entry.
 *       kind RESULTS:  want > 0 asks for up to about `want` more tasks (a
 *                      credit request; a rank has at most one outstanding).
 *                      Sent at least every --heartbeat/4 s, results or not.
 *       kind BYE:      the rank's last message
 *
 * Integers are little-endian; uvar: LEB128; start/end are seconds since the
 * rank's start. */
#ifndef MPC_MPI_WIRE_H
#define MPC_MPI_WIRE_H

#include <stdint.h>
#include <string.h>

#include "core/copy.h"
#include "mpc/buf.h"
#include "mpc/error.h"

enum { MPC__TAG_DOWN = 11, MPC__TAG_UP = 12 };
enum { MPC__DOWN_TASKS = 1, MPC__DOWN_STOP = 2, MPC__DOWN_STOP_NOW = 3, MPC__DOWN_DRAIN = 4,
       MPC__DOWN_CANCEL = 5 };
enum { MPC__UP_RESULTS = 1, MPC__UP_BYE = 2 };
#define MPC__HDR_BYTES 12u
#define MPC__DOWN_LAST 1u
#define MPC__DOWN_SHORT 2u /* results may come short (UP type 1..255) */
#define MPC__DOWN_RUN 4u   /* consecutive tids: tid0 once, then lengths */
#define MPC__SHORT_WORKERS 255 /* workers 0..254 can send short entries */

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

/* LEB128: 7 bits a byte, low first; o has room for 10 bytes. */
static inline unsigned char *mpc__put_uvar(unsigned char *o, uint64_t v) {
  while (v >= 0x80) {
    *o++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *o++ = (unsigned char)v;
  return o;
}
/* Bounds-checked: NULL on a truncated or over-long number. */
static inline const unsigned char *mpc__get_uvar(const unsigned char *p,
                                                 const unsigned char *end, uint64_t *v) {
  if (p < end && *p < 0x80) { /* most are one byte */
    *v = *p;
    return p + 1;
  }
  uint64_t x = 0;
  for (unsigned sh = 0; p < end && sh < 64; sh += 7) {
    unsigned char c = *p++;
    x |= (uint64_t)(c & 0x7f) << sh;
    if (c < 0x80) {
      *v = x;
      return p;
    }
  }
  return NULL;
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

/* A RUN message's task entry at o (10 + len bytes of room); returns the end. */
static inline unsigned char *mpc__wire_run_task_at(unsigned char *o, const void *p,
                                                   uint32_t len) {
  o = mpc__put_uvar(o, len);
  mpc__copy_small(o, p, len);
  return o + len;
}

static inline int mpc__wire_read_run_task(mpc__wrd_t *r, const void **p, uint32_t *len) {
  uint64_t l;
  const unsigned char *q = mpc__get_uvar(r->p, r->end, &l);
  if (!q || l > UINT32_MAX || (uint64_t)(r->end - q) < l)
    return MPC_EPROTO;
  *p = q;
  *len = (uint32_t)l;
  r->p = q + l;
  return 0;
}

/* The type byte, then the fixed fields. */
#define MPC__RES_FIXED (1 + 8 + 4 * 4 + 8 * 3 + 4)
/* A short entry without its output (fixed fields: cheap to read). */
#define MPC__RES_SHORT (1 + 1 + 4 + 2)

static inline int mpc__wire_result(mpc_buf_t *b, const mpc__wres_t *r) {
  int rc = mpc_buf_reserve(b, MPC__RES_FIXED + (size_t)r->len);
  if (rc)
    return rc;
  unsigned char *o = b->data + b->len;
  uint64_t s, e;
  memcpy(&s, &r->start, 8);
  memcpy(&e, &r->end, 8);
  *o++ = 0;
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
    memcpy(o + MPC__RES_FIXED - 1, r->data, r->len);
  b->len += MPC__RES_FIXED + (size_t)r->len;
  return 0;
}

/* Whether a success fits a short entry after an entry for task `prev`. */
static inline int mpc__wire_short_fits(uint64_t prev, uint64_t tid, int worker, double secs,
                                       size_t len) {
  return tid - prev + 128 < 256 && (unsigned)worker < MPC__SHORT_WORKERS &&
         secs < 4.29 && len <= UINT16_MAX;
}

/* A short entry at o (MPC__RES_SHORT + len bytes of room; mpc__wire_short_fits
 * said yes); secs < 0 counts as 0.  Returns the end. */
static inline unsigned char *mpc__wire_result_short_at(unsigned char *o, uint64_t prev,
                                                       uint64_t tid, int worker, double secs,
                                                       const void *data, uint32_t len) {
  o[0] = (unsigned char)(worker + 1);
  o[1] = (unsigned char)(int8_t)(int64_t)(tid - prev);
  mpc__put32(o + 2, secs > 0 ? (uint32_t)(secs * 1e9 + 0.5) : 0);
  o[6] = (unsigned char)len;
  o[7] = (unsigned char)(len >> 8);
  mpc__copy_small(o + MPC__RES_SHORT, data, len);
  return o + MPC__RES_SHORT + len;
}

static inline int mpc__wire_result_short(mpc_buf_t *b, uint64_t prev, uint64_t tid,
                                         int worker, double secs, const void *data,
                                         uint32_t len) {
  if (b->cap - b->len < MPC__RES_SHORT + (size_t)len) {
    int rc = mpc_buf_reserve(b, MPC__RES_SHORT + (size_t)len);
    if (rc)
      return rc;
  }
  b->len = (size_t)(mpc__wire_result_short_at(b->data + b->len, prev, tid, worker, secs,
                                              data, len) - b->data);
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

/* The next entry if it is a well-formed short one (after an entry for task
 * *prev, which moves to this one): 1 and its fields (run time in ns), else 0
 * and nothing read (mpc__wire_read_result() then reads or rejects it). */
static inline int mpc__wire_read_short(mpc__wrd_t *r, uint64_t *prev, uint64_t *tid,
                                       int *worker, uint32_t *ns, const void **data,
                                       uint32_t *len) {
  const unsigned char *o = r->p;
  if (r->end - o < MPC__RES_SHORT || !*o)
    return 0;
  uint32_t l = (uint32_t)o[6] | (uint32_t)o[7] << 8;
  if ((size_t)(r->end - o - MPC__RES_SHORT) < l)
    return 0;
  *tid = *prev += (uint64_t)(int64_t)(int8_t)o[1];
  *worker = o[0] - 1;
  *ns = mpc__get32(o + 2);
  *data = o + MPC__RES_SHORT;
  *len = l;
  r->p = o + MPC__RES_SHORT + l;
  return 1;
}

/* The next entry, after one for task *prev (0 at the start of a message),
 * which moves to this one.  A short entry gives status OK, code 0, start 0,
 * end = its run time, maxrss 0 and pid 0 (the caller knows the worker's
 * pid); returns 1 for those, 0 for a full entry. */
static inline int mpc__wire_read_result(mpc__wrd_t *r, mpc__wres_t *res, uint64_t *prev) {
  if (r->p >= r->end)
    return MPC_EPROTO;
  const unsigned char *o = r->p;
  if (*o) {
    uint64_t tid;
    int wk;
    uint32_t ns, len;
    const void *data;
    if (!mpc__wire_read_short(r, prev, &tid, &wk, &ns, &data, &len))
      return MPC_EPROTO;
    *res = (mpc__wres_t){.tid = tid, .worker = wk, .end = (double)ns * 1e-9,
                         .data = data, .len = len};
    return 1;
  }
  if (r->end - r->p < MPC__RES_FIXED)
    return MPC_EPROTO;
  o++;
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
  res->data = o + MPC__RES_FIXED - 1;
  *prev = res->tid;
  r->p += MPC__RES_FIXED + (size_t)res->len;
  return 0;
}

#endif
