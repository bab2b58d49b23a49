/**
 * @file job.h
 * @brief The job interface: what mpc-run runs.
 *
 * A job is a table of callbacks.  mpc-run calls them in this order:
 *
 *   every rank:  init(argc, argv, env, &state, err)     before workers start
 *   master:      next(state, input, key) ...            as ranks ask for work
 *   workers:     run(state, in, len, out)               one task, bytes in, bytes out
 *   master:      gather(state, result) ...              one per task outcome
 *   master:      finish(state, report)                  write outputs, print report
 *   every rank:  fini(state)
 *
 * Workers are forked after init() on every rank, so whatever init() stores in
 * its state is visible to run() in the workers.  run() executes in a separate
 * process: it may crash, hang or leak without harming the run; it must not
 * call MPI.
 *
 * Built-in jobs (jobs/<name>/) register with MPC_JOB_BUILTIN().  A user job is
 * a shared object built with `pkg-config --cflags --libs mpcrun` that exports
 * its table with MPC_JOB_EXPORT(); run it as `mpc-run ./myjob.so ARGS`.
 * See docs/jobs.md.
 */
#ifndef MPC_JOB_H
#define MPC_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/buf.h"
#include "mpc/error.h"
#include "mpc/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bumped whenever mpc_job_t or the structs below change incompatibly. */
#define MPC_JOB_ABI_VERSION 1

/** Job flags. */
enum {
  /** Running a task twice is harmless: mpc-run may run it speculatively on a
   *  second rank and keep the first result. */
  MPC_JOB_IDEMPOTENT = 1u << 0,
  /** gather() wants task order by default (as if --ordered were given). */
  MPC_JOB_ORDERED = 1u << 1,
  /** The journal keeps each successful task's output so that a --resume run
   *  hands it to gather() again (for jobs that aggregate small results). */
  MPC_JOB_JOURNAL_OUTPUT = 1u << 2,
  /** gather() and finish() never read a result's key.  mpc-run then makes
   *  the default key (a hash of the input) only when it needs it itself: for
   *  a journal, --resume, --trace, --timeline, or a failure's report;
   *  otherwise mpc_job_result_t.key is "".  Keys given by next() are kept. */
  MPC_JOB_KEYS_UNUSED = 1u << 3,
};

/** What every rank knows when init() runs. */
typedef struct mpc_job_env {
  int rank;          /**< this rank (0 = master) */
  int nranks;        /**< ranks in the run */
  int workers;       /**< local workers per rank (0 if not known yet) */
  int ordered;       /**< --ordered in effect */
  int resume;        /**< --resume in effect */
  int verbose;       /**< -v count */
  const char *journal; /**< --journal path or NULL */
} mpc_job_env_t;

/** Outcome of one task, handed to gather() on the master. */
typedef struct mpc_job_result {
  uint64_t seq;        /**< 0-based task number in generation order */
  const char *key;     /**< the task's key (NUL-terminated) */
  const void *input;   /**< the task's input bytes */
  size_t input_len;
  mpc_task_status_t status;
  int code;            /**< error code, signal or exit code */
  const void *output;  /**< output (OK) or error message (others) */
  size_t output_len;
  int attempts;        /**< attempts made */
  int resumed;         /**< 1: done in an earlier run (--resume); output is
                            the journaled one when MPC_JOB_JOURNAL_OUTPUT */
  int rank;            /**< rank of the last attempt (-1 if never ran) */
  int worker;          /**< worker slot on that rank */
  const char *host;    /**< host of the last attempt ("" if never ran) */
  int pid;             /**< worker pid of the last attempt */
  double seconds;      /**< run time of the last attempt */
} mpc_job_result_t;

/** Run summary handed to finish(). */
typedef struct mpc_job_report {
  uint64_t tasks;      /**< tasks generated */
  uint64_t ok;         /**< succeeded (resumed ones included) */
  uint64_t failed;     /**< failed after all attempts */
  uint64_t resumed;    /**< skipped as already done by an earlier run */
  uint64_t retried;    /**< tasks that needed more than one attempt */
  uint64_t canceled;   /**< never ran (interrupted, halted) */
  double wall;         /**< seconds */
  int interrupted;     /**< 1 when the run was stopped by a signal or --halt */
} mpc_job_report_t;

typedef struct mpc_job {
  uint32_t abi;        /**< MPC_JOB_ABI_VERSION */
  uint32_t flags;      /**< MPC_JOB_* */
  const char *name;    /**< "image", "stats", ... */
  const char *brief;   /**< one line for `mpc-run --list` */
  const char *usage;   /**< the job's argument synopsis and options */

  /**
   * @brief Parse the job's arguments (every rank, before workers start).
   * argv[0] is the job name; mpc-run's own options have been removed.
   * @param[out] state  the job's private state (may stay NULL).
   * @param[out] err    on failure, a message naming the problem.
   * @return 0, or MPC_EUSAGE (bad arguments: mpc-run prints err and the usage,
   *         exits 2) or another negative code (set-up failure, exit 2).
   */
  int (*init)(int argc, char **argv, const mpc_job_env_t *env, void **state,
              mpc_buf_t *err);

  /**
   * @brief Produce the next task (master only), pulled as ranks ask for work.
   * @param[out] input  empty on entry: the task's bytes.
   * @param[out] key    empty on entry: a stable key naming the task for the
   *                    journal and --resume (a file name, a command...);
   *                    left empty, mpc-run uses a hash of the input.
   * @return 1 produced, 0 no more tasks, negative to abort (message in key).
   */
  int (*next)(void *state, mpc_buf_t *input, mpc_buf_t *key);

  /** @brief Run one task in a worker: same contract as mpc_task_fn. */
  int (*run)(void *state, const void *in, size_t in_len, mpc_buf_t *out);

  /** @brief One outcome per task (master), in completion order, or in task
   *  order with --ordered.  Failed tasks come here too.  Non-zero return
   *  stops the run (as an error). */
  int (*gather)(void *state, const mpc_job_result_t *r);

  /** @brief Master, after the last outcome: write outputs, print the job's
   *  report on stdout.  @return 0 or a negative error (exit 1). */
  int (*finish)(void *state, const mpc_job_report_t *rep);

  /** @brief Every rank, last: release the state.  May be NULL. */
  void (*fini)(void *state);
} mpc_job_t;

/** @brief Entry symbol a user job exports (see MPC_JOB_EXPORT). */
typedef const mpc_job_t *(*mpc_job_entry_fn)(void);
#define MPC_JOB_ENTRY_SYMBOL "mpc_job_entry"

/** @brief In a user job's .so: export `job` (an mpc_job_t) to mpc-run. */
#define MPC_JOB_EXPORT(job)                                                    \
  __attribute__((visibility("default"))) const mpc_job_t *mpc_job_entry(void) { \
    return &(job);                                                             \
  }

/** @brief In a built-in job (jobs/<name>/): register `job` with mpc-run.  The
 *  pointer lands in the "mpc_jobs" ELF section that mpc-run walks. */
#define MPC_JOB_BUILTIN(job)                                                   \
  static const mpc_job_t *const mpc__job_ptr_##job                             \
      __attribute__((used, section("mpc_jobs"), aligned(sizeof(void *)))) =    \
          &(job)

/* ---- helpers available to run() ------------------------------------------- */

/** @brief In a worker: the rank it serves (0 in a singleton run). */
int mpc_job_rank(void);
/** @brief In a worker: the host name of its rank. */
const char *mpc_job_host(void);

#ifdef __cplusplus
}
#endif
#endif /* MPC_JOB_H */
