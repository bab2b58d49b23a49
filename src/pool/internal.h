/* Internal to the pool: the layout shared between the parent and one worker,
 * wire formats, and the fork server. */
#ifndef MPC_POOL_INTERNAL_H
#define MPC_POOL_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "core/copy.h"
#include "mpc/pool.h"
#include "pool/ring.h"

/* Task ring record types (parent -> worker). */
enum { T_UNIT = 1, T_RETIRE = 2 };
/* Result ring record types (worker -> parent). */
enum { R_RESULT = 1, R_BATCH = 2 };

/* R_BATCH payload: results of consecutive entries of one unit, for units of
 * many small tasks: this header, then per entry a batch_ent_t and its output
 * padded to 8.  Entry k's start is entry k-1's end (the first: start_ns). */
typedef struct batch_hdr {
  uint32_t n;        /* entries in this record */
  uint32_t first;    /* index of the first within the unit */
  uint64_t start_ns;
} batch_hdr_t;
typedef struct batch_ent {
  int32_t code;
  uint32_t len;
  uint64_t end_ns;
} batch_ent_t;
#define BATCH_MAX_OUT 4096u   /* larger outputs go in their own R_RESULT */
#define BATCH_MAX_BYTES 65536u
#define BATCH_MAX_NS 50000u  /* flush at least every 50 us */

/* T_UNIT payload: u32 count, u32 pad, then `count` entries of
 *   [u64 id][u64 len][len bytes, padded to 8]. */
#define UNIT_HDR 8u
#define ENTRY_HDR 16u
#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

/* Copy n bytes to d and zero d up to PAD8(n): inline for the few bytes of a
 * tiny task's input or output (this runs once per task on both sides). */
static inline void mpc__copy_pad8(unsigned char *d, const void *src, size_t n) {
  if (n > 16) {
    memcpy(d, src, n);
    memset(d + n, 0, PAD8(n) - n);
    return;
  }
  if (!n)
    return;
  uint64_t z = 0;
  memcpy(d + PAD8(n) - 8, &z, 8); /* the last word's padding */
  mpc__copy_small(d, src, n);
}

/* R_RESULT payload: this header, then the output or error text. */
typedef struct res_hdr {
  uint64_t id;       /* caller id of the entry */
  uint32_t idx;      /* index within the unit */
  int32_t code;      /* fn's return value */
  uint64_t start_ns; /* CLOCK_MONOTONIC */
  uint64_t end_ns;
} res_hdr_t;

/* Shared control block at the start of each worker's mapping. */
typedef struct wshm {
  _Alignas(64) _Atomic uint32_t worker_sleeping;
  _Alignas(64) _Atomic uint32_t parent_sleeping;
  _Alignas(64) _Atomic uint64_t cur;      /* (did << 24 | idx) + 1 of the running entry; 0 none */
  _Atomic uint64_t cur_start_ns;
  _Atomic uint32_t ready;                 /* the initializer has run */
  _Atomic int32_t child_pgid;             /* process group a task started (mpc_task_set_pgid) */
  _Atomic int64_t maxrss_kb;
  _Atomic int32_t pid;                    /* the worker's, set when it starts */
  _Atomic uint32_t oom_hint;              /* died of a fault after an allocation failed */
  uint64_t task_off, res_off;             /* ring offsets in the mapping */
} wshm_t;

#define CUR_PACK(did, idx) ((((did) << 24) | (uint64_t)(idx)) + 1)

static inline uint64_t mpc__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* What a worker needs, inherited through the fork server. */
typedef struct worker_cfg {
  mpc_task_fn fn;
  void *ctx;
  mpc_worker_init_fn init;
  size_t mem_limit;
} worker_cfg_t;

/* Exit code of a worker whose initializer failed. */
#define WORKER_EXIT_INIT 120

/* Run a worker; never returns. */
__attribute__((noreturn)) void mpc__worker_main(const worker_cfg_t *cfg,
                                                int slot, int memfd, int sock);

/* Fork server. */
enum { Z_SPAWN = 1, Z_SPAWNED = 2, Z_SPAWN_FAILED = 3, Z_EXITED = 4 };
typedef struct zmsg {
  int32_t type;
  int32_t slot;
  int32_t pid;
  int32_t status; /* wait status (Z_EXITED) or -errno (Z_SPAWN_FAILED) */
  int64_t maxrss_kb;
  uint64_t gen;   /* spawn generation, echoed back */
} zmsg_t;

/* Start the fork server; *ctl_out is the parent's end of its control socket. */
int mpc__zygote_start(const worker_cfg_t *cfg, pid_t *pid_out, int *ctl_out);
/* Ask for a worker in `slot` using memfd + sock (the worker's end). */
int mpc__zygote_spawn(int ctl, int slot, uint64_t gen, int memfd, int sock);
/* Receive one message (non-blocking); 1 got one, 0 none, negative error/closed. */
int mpc__zygote_recv(int ctl, zmsg_t *m);

#endif
