/* Internal: mpc-run's runtime.  Every rank drives a local pool; rank 0 is also
 * the master that pulls tasks from the job, hands them out (wire.h), gathers
 * results, keeps the journal and prints the summary. */
#ifndef MPC_MPI_FARM_H
#define MPC_MPI_FARM_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/buf.h"
#include "mpc/job.h"

typedef enum { MPC__SCHED_GUIDED = 0, MPC__SCHED_DYNAMIC, MPC__SCHED_STATIC } mpc__sched_t;
typedef enum { MPC__HALT_NEVER = 0, MPC__HALT_SOON, MPC__HALT_NOW } mpc__halt_t;

typedef struct mpc__farm_cfg {
  const mpc_job_t *job;
  const char *job_name; /* as given (name or path), for messages */
  int workers;          /* 0: automatic */
  double timeout;
  int retries;
  mpc__halt_t halt;
  long halt_fail;
  double halt_pct;
  const char *journal;
  int resume;
  int ordered;
  mpc__sched_t sched;
  int progress; /* -1 auto, 0 off, 1 on */
  const char *json, *timeline, *trace; /* trace: Chrome trace JSON file */
  int debug_protocol;                   /* log protocol messages */
  int no_speculate;                     /* never copy stragglers */
  double grace, walltime, heartbeat;
  size_t mem_limit;
  int verbose, quiet;
} mpc__farm_cfg_t;

typedef struct mpc__farm mpc__farm_t;

/* Before MPI_Init: guess rank/size from the launcher's environment, run the
 * job's init() and create the local pool (its fork server only).  On a usage
 * error (MPC_EUSAGE) or set-up error, err has the message. */
MPC_MUST_CHECK int mpc__farm_new(mpc__farm_t **out, const mpc__farm_cfg_t *cfg,
                                 int job_argc, char **job_argv, mpc_buf_t *err);
/* MPI_Init (unless already initialised), start the workers, run, finalise
 * MPI if we initialised it.  Returns mpc-run's exit code (0..3). */
int mpc__farm_run(mpc__farm_t *f);
/* The job's fini(), the pool, everything. */
void mpc__farm_free(mpc__farm_t *f);
/* Rank the launcher says we are (before MPI_Init), 0 when unknown. */
int mpc__env_rank(void);
int mpc__env_size(void);

/* Turn Nagle's algorithm off on every TCP socket the process has open (after
 * MPI_Init: Open MPI's PMIx client socket to the local daemon has it on, and
 * MPI_Finalize's fence then waits out the daemon's 40 ms delayed ACK).
 * Returns how many sockets it set. */
int mpc__tcp_nodelay_all(void);

/* Append a formatted message to b; on allocation failure the message is
 * dropped (used for error texts, where nothing better can be done). */
void mpc__msg(mpc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- pure pieces, unit-tested ------------------------------------------- */

/* Tasks to hand a rank that asks for `want` (credits), with `remaining`
 * tasks known to be left (UINT64_MAX: unknown, the generator is not done),
 * the rank's and the run's worker counts.  guided: ceil(R*w/(2W)) clamped to
 * [1, max_batch], at least min(want, R); dynamic and static: want. */
size_t mpc__sched_batch(mpc__sched_t s, uint64_t remaining, size_t want,
                        int rank_workers, int total_workers, size_t max_batch);

/* Run summary as printed on stderr. */
typedef struct mpc__rank_stat {
  int workers;
  const char *host;
  uint64_t tasks, ok, failed; /* attempts run there, and their outcomes */
  double busy;                /* task-seconds */
  uint64_t *wtasks;           /* per worker slot (workers entries), may be NULL */
  double *wbusy;
  int lost;                   /* declared lost after `silent` seconds */
  double silent;
} mpc__rank_stat_t;

typedef struct mpc__fail_item {
  char *key;
  int status, code, rank, pid;
  char *host;
  char *msg; /* first line of the message, may be NULL */
} mpc__fail_item_t;

typedef struct mpc__summary {
  const char *job;
  mpc_job_report_t rep;
  int nranks;
  const mpc__rank_stat_t *ranks;
  const mpc__fail_item_t *fails; /* the first nfails_kept failures */
  size_t nfails_kept;
  const char *why; /* why it stopped early (NULL: it did not) */
  uint64_t spec_launched, spec_won; /* speculative copies, and those that won */
  const uint64_t *by_status; /* final outcomes by mpc_task_status_t (8), may be NULL */
} mpc__summary_t;

MPC_MUST_CHECK int mpc__summary_format(mpc_buf_t *b, const mpc__summary_t *s);
MPC_MUST_CHECK int mpc__summary_json(mpc_buf_t *b, const mpc__summary_t *s);
/* "crashed (signal 11)", "exited (code 3)", "error 2", "timeout"... */
MPC_MUST_CHECK int mpc__reason_format(mpc_buf_t *b, int status, int code);

#endif
