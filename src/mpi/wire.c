/* Byte packing for the master/worker protocol (see wire.h). */
#include "mpi/wire.h"

#include <string.h>

int mpc__wire_hdr(mpc_buf_t *b, uint32_t kind, uint32_t x) {
  unsigned char h[MPC__HDR_BYTES];
  mpc__put32(h, kind);
  mpc__put32(h + 4, x);
  mpc__put32(h + 8, 0);
  return mpc_buf_append(b, h, sizeof h);
}

void mpc__wire_set_n(mpc_buf_t *b, uint32_t n) { mpc__put32(b->data + 8, n); }
void mpc__wire_set_kind(mpc_buf_t *b, uint32_t kind) { mpc__put32(b->data, kind); }
void mpc__wire_set_x(mpc_buf_t *b, uint32_t x) { mpc__put32(b->data + 4, x); }
uint32_t mpc__wire_get_n(const mpc_buf_t *b) { return mpc__get32(b->data + 8); }

int mpc__wire_read_hdr(mpc__wrd_t *r, uint32_t *kind, uint32_t *x,
                       uint32_t *n) {
  if (r->end - r->p < (long)MPC__HDR_BYTES)
    return MPC_EPROTO;
  *kind = mpc__get32(r->p);
  *x = mpc__get32(r->p + 4);
  *n = mpc__get32(r->p + 8);
  r->p += MPC__HDR_BYTES;
  return 0;
}

