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

#include "mpc/buf.h"

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
MPC_MUST_CHECK int mpc__wire_task(mpc_buf_t *b, uint64_t tid, const void *p,
                                  uint32_t len);
MPC_MUST_CHECK int mpc__wire_result(mpc_buf_t *b, const mpc__wres_t *r);

/* Reader with bounds checks: any overrun gives MPC_EPROTO. */
typedef struct mpc__wrd {
  const unsigned char *p, *end;
} mpc__wrd_t;

MPC_MUST_CHECK int mpc__wire_read_hdr(mpc__wrd_t *r, uint32_t *kind,
                                      uint32_t *x, uint32_t *n);
MPC_MUST_CHECK int mpc__wire_read_task(mpc__wrd_t *r, uint64_t *tid,
                                       const void **p, uint32_t *len);
MPC_MUST_CHECK int mpc__wire_read_result(mpc__wrd_t *r, mpc__wres_t *res);

#endif
