/* Byte packing for the master/worker protocol (see wire.h). */
#include "mpi/wire.h"

#include <string.h>

/* Little-endian on the wire: a plain copy on little-endian hosts (one load or
 * store instead of a byte loop: this runs several times per task). */
static inline uint32_t le32(uint32_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return __builtin_bswap32(v);
#else
  return v;
#endif
}
static inline uint64_t le64(uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return __builtin_bswap64(v);
#else
  return v;
#endif
}
static inline void put32(unsigned char *p, uint32_t v) {
  v = le32(v);
  memcpy(p, &v, 4);
}
static inline void put64(unsigned char *p, uint64_t v) {
  v = le64(v);
  memcpy(p, &v, 8);
}
static inline uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return le32(v);
}
static inline uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return le64(v);
}

int mpc__wire_hdr(mpc_buf_t *b, uint32_t kind, uint32_t x) {
  unsigned char h[MPC__HDR_BYTES];
  put32(h, kind);
  put32(h + 4, x);
  put32(h + 8, 0);
  return mpc_buf_append(b, h, sizeof h);
}

void mpc__wire_set_n(mpc_buf_t *b, uint32_t n) { put32(b->data + 8, n); }
void mpc__wire_set_kind(mpc_buf_t *b, uint32_t kind) { put32(b->data, kind); }
void mpc__wire_set_x(mpc_buf_t *b, uint32_t x) { put32(b->data + 4, x); }
uint32_t mpc__wire_get_n(const mpc_buf_t *b) { return get32(b->data + 8); }

int mpc__wire_task(mpc_buf_t *b, uint64_t tid, const void *p, uint32_t len) {
  int rc = mpc_buf_reserve(b, 12 + (size_t)len);
  if (rc)
    return rc;
  unsigned char *o = b->data + b->len;
  put64(o, tid);
  put32(o + 8, len);
  if (len)
    memcpy(o + 12, p, len);
  b->len += 12 + (size_t)len;
  return 0;
}

#define RES_FIXED (8 + 4 * 4 + 8 * 3 + 4)

int mpc__wire_result(mpc_buf_t *b, const mpc__wres_t *r) {
  int rc = mpc_buf_reserve(b, RES_FIXED + (size_t)r->len);
  if (rc)
    return rc;
  unsigned char *o = b->data + b->len;
  uint64_t s, e;
  memcpy(&s, &r->start, 8);
  memcpy(&e, &r->end, 8);
  put64(o, r->tid);
  put32(o + 8, r->status);
  put32(o + 12, (uint32_t)r->code);
  put32(o + 16, (uint32_t)r->worker);
  put32(o + 20, (uint32_t)r->pid);
  put64(o + 24, s);
  put64(o + 32, e);
  put64(o + 40, (uint64_t)r->maxrss_kb);
  put32(o + 48, r->len);
  if (r->len)
    memcpy(o + RES_FIXED, r->data, r->len);
  b->len += RES_FIXED + (size_t)r->len;
  return 0;
}

int mpc__wire_read_hdr(mpc__wrd_t *r, uint32_t *kind, uint32_t *x,
                       uint32_t *n) {
  if (r->end - r->p < (long)MPC__HDR_BYTES)
    return MPC_EPROTO;
  *kind = get32(r->p);
  *x = get32(r->p + 4);
  *n = get32(r->p + 8);
  r->p += MPC__HDR_BYTES;
  return 0;
}

int mpc__wire_read_task(mpc__wrd_t *r, uint64_t *tid, const void **p,
                        uint32_t *len) {
  if (r->end - r->p < 12)
    return MPC_EPROTO;
  *tid = get64(r->p);
  *len = get32(r->p + 8);
  if ((uint64_t)(r->end - r->p - 12) < *len)
    return MPC_EPROTO;
  *p = r->p + 12;
  r->p += 12 + (size_t)*len;
  return 0;
}

int mpc__wire_read_result(mpc__wrd_t *r, mpc__wres_t *res) {
  if (r->end - r->p < RES_FIXED)
    return MPC_EPROTO;
  const unsigned char *o = r->p;
  uint64_t s = get64(o + 24), e = get64(o + 32);
  res->tid = get64(o);
  res->status = get32(o + 8);
  res->code = (int32_t)get32(o + 12);
  res->worker = (int32_t)get32(o + 16);
  res->pid = (int32_t)get32(o + 20);
  memcpy(&res->start, &s, 8);
  memcpy(&res->end, &e, 8);
  res->maxrss_kb = (int64_t)get64(o + 40);
  res->len = get32(o + 48);
  if ((uint64_t)(r->end - r->p - RES_FIXED) < res->len)
    return MPC_EPROTO;
  res->data = o + RES_FIXED;
  r->p += RES_FIXED + (size_t)res->len;
  return 0;
}
