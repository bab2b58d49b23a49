/* Internal: fault injection for mpc-run (the MPC_FAULT environment variable).
 *
 *   MPC_FAULT=segv:task=17,hang:task=30,kill:rank=1@2s
 *
 * A comma-separated list of faults, each KIND, then `:SEL=N` selectors (all
 * must match), then for some kinds `@SECONDS`:
 *
 *   in the worker running a matching task, before the job's run():
 *     segv    the worker dies of SIGSEGV (a write through a null pointer)
 *     abort   abort(): SIGABRT
 *     exit    exit(code), code=N (default 3)
 *     fail    the task returns an error (code=N, default 1) with a message
 *     hang    the task never returns (use --timeout)
 *     oom     the task allocates and touches memory until an allocation
 *             fails, then crashes on it (use --mem-limit; without one it
 *             stops at 4 GiB and crashes anyway)
 *     delay   the task sleeps @SECONDS first (a slow worker, a slow rank)
 *   in a rank's own process, @SECONDS after the run started:
 *     kill    SIGKILL: the rank dies (Open MPI then ends the job)
 *     stop    SIGSTOP: the rank freezes (what --heartbeat detects)
 *
 * Selectors: task=N (the task's sequence number, 0-based, as in --timeline and
 * gather()), rank=R, worker=W (worker slot on its rank).  Task faults fire on
 * every attempt of a matching task, so `segv:task=3:rank=0` crashes task 3
 * only on rank 0 and its retry elsewhere succeeds. */
#ifndef MPC_MPI_FAULT_H
#define MPC_MPI_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/buf.h"

typedef enum {
  MPC__F_SEGV, MPC__F_ABORT, MPC__F_EXIT, MPC__F_FAIL, MPC__F_HANG,
  MPC__F_OOM, MPC__F_DELAY, MPC__F_KILL, MPC__F_STOP
} mpc__fault_kind_t;

typedef struct mpc__fault {
  mpc__fault_kind_t kind;
  int64_t task;   /* -1: any */
  int rank, worker; /* -1: any */
  int code;
  double at;      /* seconds: delay, or when a rank fault fires */
  int fired;      /* rank faults fire once */
} mpc__fault_t;

typedef struct mpc__faults {
  mpc__fault_t *v;
  size_t n, nrank; /* nrank: how many are rank faults */
} mpc__faults_t;

/* Parse spec (NULL or empty: no faults).  MPC_EUSAGE with a message naming
 * the bad item in err. */
MPC_MUST_CHECK int mpc__fault_parse(const char *spec, mpc__faults_t *out,
                                    mpc_buf_t *err);
void mpc__fault_free(mpc__faults_t *fs);
/* In a worker, before the task runs.  May not return (segv, abort, exit,
 * hang, oom); returns the task's error code for fail (message in out), else 0
 * (after sleeping for delay). */
int mpc__fault_task(const mpc__faults_t *fs, int rank, int worker,
                    uint64_t task, mpc_buf_t *out);
/* In a rank's loop: fire the rank faults due at `elapsed` seconds. */
void mpc__fault_rank(mpc__faults_t *fs, int rank, double elapsed);

#endif
