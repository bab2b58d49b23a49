/**
 * @file pool.h
 * @brief Local process pool: map, unordered map, async apply over forked workers.
 *
 * Workers are forked from a small fork server ("zygote") that the pool starts
 * in mpc_pool_new(), so every worker, including replacements, starts from the
 * process state as it was at that moment: the task function, its context and
 * everything they point to must exist before mpc_pool_new().  Workers never
 * return into the caller's code and never call MPI.
 *
 * Tasks move through shared-memory rings (one pair per worker) and the parent
 * drives the pool only inside pool calls: there is no thread.  Every task gets
 * exactly one outcome (mpc_result_t), whatever happens to its worker.
 *
 * Not thread-safe: use a pool from one thread.
 */
#ifndef MPC_POOL_H
#define MPC_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mpc/buf.h"
#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpc_pool mpc_pool_t;
typedef struct mpc_results mpc_results_t;
typedef struct mpc_future mpc_future_t;

/**
 * @brief A task: runs in a worker process.
 * @param[in] ctx    the opts.ctx given at pool creation (as inherited by fork).
 * @param[in] in     input bytes (read-only, valid during the call only).
 * @param[in] in_len input size, may be 0.
 * @param[out] out   empty buffer for the output; on failure, the error message.
 * @return 0 on success; any other value marks the task failed (MPC_TASK_ERROR)
 *         with that code and the text in `out` as its message.
 */
typedef int (*mpc_task_fn)(void *ctx, const void *in, size_t in_len,
                           mpc_buf_t *out);

/** @brief Runs once in each new worker before its first task; non-zero stops
 *  the worker (reported as a pool error if every start fails). */
typedef int (*mpc_worker_init_fn)(void *ctx, int worker_index);

typedef enum {
  MPC_TASK_OK = 0,       /**< finished; data/len is the output */
  MPC_TASK_ERROR = 1,    /**< the function returned `code` != 0; data is its message */
  MPC_TASK_CRASHED = 2,  /**< its worker died of signal `code` */
  MPC_TASK_EXITED = 3,   /**< its worker called exit(`code`) */
  MPC_TASK_TIMEOUT = 4,  /**< ran past opts.timeout; its worker was killed */
  MPC_TASK_OOM = 5,      /**< exceeded opts.mem_limit */
  MPC_TASK_CANCELED = 6, /**< never ran: the pool was stopped or the task canceled */
} mpc_task_status_t;

/** @brief Short name of a status ("ok", "crashed", ...). */
const char *mpc_task_status_name(mpc_task_status_t st);

/**
 * @brief One task's outcome.  Pointers are owned by the pool (or the results
 * container) and valid only as documented where the result is handed out.
 */
typedef struct mpc_result {
  uint64_t id;          /**< map: input index; submit/apply: the caller's tag */
  mpc_task_status_t status;
  int code;             /**< error code, signal number or exit code */
  const void *data;     /**< output (OK) or error message (others, may be empty) */
  size_t len;
  int attempts;         /**< runs started for this task (1 without retries) */
  int worker;           /**< worker slot of the last attempt, -1 if never ran */
  pid_t pid;            /**< worker pid of the last attempt, 0 if never ran */
  double start, end;    /**< last attempt, CLOCK_MONOTONIC seconds (0 if never ran) */
  long maxrss_kb;       /**< worker's peak resident set after the attempt, KiB (0: unknown) */
} mpc_result_t;

/** @brief Delivery callback.  `r` and its data are valid during the call only.
 *  Return 0 to go on, non-zero to stop the call early (it returns MPC_ECANCELED). */
typedef int (*mpc_result_cb)(void *cb_ctx, const mpc_result_t *r);

/** @brief Input generator: write task `index`'s input into `in` (empty on entry).
 *  @return 1 when a task was produced, 0 at the end, negative error to abort. */
typedef int (*mpc_gen_fn)(void *gen_ctx, uint64_t index, mpc_buf_t *in);

typedef enum {
  MPC_PROGRESS_AUTO = 0, /**< draw when stderr is a terminal */
  MPC_PROGRESS_OFF = 1,
  MPC_PROGRESS_FORCE = 2, /**< draw even into a pipe or file */
} mpc_progress_t;

typedef struct mpc_pool_opts {
  int workers;              /**< 0: mpc_cpu_count() */
  mpc_task_fn fn;           /**< required */
  void *ctx;                /**< handed to fn and init in the workers */
  mpc_worker_init_fn init;  /**< optional, once per worker */
  long max_tasks_per_worker;/**< 0: unlimited; else the worker is replaced after that many */
  double timeout;           /**< per-task seconds; <= 0: none */
  int retries;              /**< extra attempts, on a fresh worker, for crash/timeout/OOM */
  int retry_errors;         /**< also retry tasks whose function returned an error */
  size_t chunk;             /**< tasks per dispatch; 0: automatic */
  size_t mem_limit;         /**< bytes of address space a task may add to its
                                 worker's starting size (RLIMIT_AS, inherited
                                 by commands it runs); 0: none.  A task that
                                 dies near it, dies after an allocation failed,
                                 or returns MPC_ENOMEM ends MPC_TASK_OOM. */
  mpc_progress_t progress;  /**< progress bar on stderr during map calls */
  int no_signals;           /**< do not catch SIGINT/SIGTERM during map calls */
  int defer_start;          /**< only start the fork server; workers come with mpc_pool_start() */
} mpc_pool_opts_t;

/** @brief Usable CPUs: SLURM_CPUS_PER_TASK if set, else the affinity mask count. */
int mpc_cpu_count(void);

/**
 * @brief Create a pool and start its workers.
 * @param[out] out  the new pool; the caller frees it with mpc_pool_free().
 * @param[in] opts  copied; opts->fn is required.
 * @return 0, MPC_EINVAL, MPC_ENOMEM, MPC_ECHILD (workers could not start), -errno.
 */
MPC_MUST_CHECK int mpc_pool_new(mpc_pool_t **out, const mpc_pool_opts_t *opts);

/**
 * @brief With opts.defer_start: start the workers now.  They are forked by the
 * fork server that mpc_pool_new() started, so this is safe after MPI_Init (the
 * MPI layer creates its pool before MPI_Init and learns how many workers it
 * wants after it).
 * @param[in] workers  0: opts.workers, or mpc_cpu_count() if that is 0.
 * @return 0, MPC_ESTATE (already started), MPC_ECHILD, -errno.
 */
MPC_MUST_CHECK int mpc_pool_start(mpc_pool_t *p, int workers);

/** @brief Number of worker slots. */
int mpc_pool_workers(const mpc_pool_t *p);

/* ---- blocking, whole-collection calls ------------------------------------ */

/** @brief Input slice for map calls (borrowed: must stay valid during the call). */
typedef struct mpc_slice {
  const void *data;
  size_t len;
} mpc_slice_t;

/**
 * @brief Run fn over n inputs; results in input order.
 * @param[out] out  results container (freed with mpc_results_free()), set even
 *                  when the call is interrupted: unfinished tasks are then
 *                  MPC_TASK_CANCELED.
 * @return 0 when every task has an outcome (failed tasks included: check each
 *         status or mpc_results_failed()); MPC_EINTR when SIGINT/SIGTERM
 *         stopped the call; other negative codes on pool failure.
 */
MPC_MUST_CHECK int mpc_pool_map(mpc_pool_t *p, const mpc_slice_t *in, size_t n,
                                mpc_results_t **out);

/** @brief mpc_pool_map() over n fixed-size items at base + i * item_size. */
MPC_MUST_CHECK int mpc_pool_map_array(mpc_pool_t *p, const void *base,
                                      size_t item_size, size_t n,
                                      mpc_results_t **out);

/**
 * @brief Streaming map: inputs from a generator, each result to cb as soon as
 * it is done (ordered = 0) or in input order (ordered = 1).  Memory stays
 * bounded by the in-flight window whatever the number of tasks.
 * @return 0, MPC_ECANCELED (cb asked to stop), MPC_EINTR (signal; cb has been
 *         called with MPC_TASK_CANCELED for every generated task that did not
 *         finish), the generator's negative code, or a pool error.
 */
MPC_MUST_CHECK int mpc_pool_map_gen(mpc_pool_t *p, mpc_gen_fn gen,
                                    void *gen_ctx, int ordered,
                                    mpc_result_cb cb, void *cb_ctx);

/** @brief Unordered map over an array of inputs, results to cb as they finish. */
MPC_MUST_CHECK int mpc_pool_imap_unordered(mpc_pool_t *p, const mpc_slice_t *in,
                                           size_t n, mpc_result_cb cb,
                                           void *cb_ctx);

/** @brief Results of a map call. */
size_t mpc_results_count(const mpc_results_t *r);
/**
 * @brief Result i (input order), copied into *out.  out->data points into the
 * container and stays valid until mpc_results_free().
 * @return 0, or MPC_EINVAL when i is out of range.
 */
MPC_MUST_CHECK int mpc_results_get(const mpc_results_t *r, size_t i,
                                   mpc_result_t *out);
/** @brief Number of results whose status is not MPC_TASK_OK. */
size_t mpc_results_failed(const mpc_results_t *r);
void mpc_results_free(mpc_results_t *r);

/* ---- async apply ---------------------------------------------------------- */

/**
 * @brief Submit one task; its input is copied.  Never waits for the task, but
 * may drive the pool while the in-flight window is full.
 * @param[out] out  future, freed with mpc_future_free() (waited or not).
 */
MPC_MUST_CHECK int mpc_pool_apply_async(mpc_pool_t *p, const void *in,
                                        size_t len, mpc_future_t **out);
/** @brief Wait for the task (driving the pool). @return 0 or MPC_ETIMEDOUT. */
MPC_MUST_CHECK int mpc_future_wait(mpc_future_t *f, double timeout);
/** @brief The outcome once done, else NULL; valid until mpc_future_free(). */
const mpc_result_t *mpc_future_result(const mpc_future_t *f);
/** @brief Release a future; a task still running finishes unobserved. */
void mpc_future_free(mpc_future_t *f);

/* ---- non-blocking engine (what mpc-run's ranks drive) --------------------- */

/** @brief Queue a task (input copied) under the caller's tag; never blocks. */
MPC_MUST_CHECK int mpc_pool_submit(mpc_pool_t *p, const void *in, size_t len,
                                   uint64_t tag);
/**
 * @brief Queue n tasks at once: task i has input in[i] (copied) and tag
 * tags[i].  Cheaper per task than n mpc_pool_submit() calls: the batch is one
 * unit that workers take in chunks, as a map does, and small results come
 * back batched.  Results arrive one per task through mpc_pool_poll().
 * @return 0, MPC_EINVAL, MPC_ENOMEM, or the pool's error.  Never blocks.
 */
MPC_MUST_CHECK int mpc_pool_submit_many(mpc_pool_t *p, const mpc_slice_t *in,
                                        const uint64_t *tags, size_t n);
/**
 * @brief Dispatch queued tasks, collect results and hand each finished task to
 * cb.  Returns as soon as at least one result was delivered, or after timeout
 * seconds (0: just poll).
 * @return number of results delivered (>= 0) or a negative error.
 */
MPC_MUST_CHECK int mpc_pool_poll(mpc_pool_t *p, double timeout,
                                 mpc_result_cb cb, void *cb_ctx);
/** @brief Delivery of several results in one call.  `r[0..n)` and their data
 *  are valid during the call only (the array is the pool's: do not drive the
 *  pool from the callback).  Return 0 to go on, non-zero to make the poll
 *  return as soon as the results it has collected are delivered. */
typedef int (*mpc_results_cb)(void *cb_ctx, const mpc_result_t *r, size_t n);

/**
 * @brief mpc_pool_poll() with results handed over in arrays: the successes
 * that a worker sends back together (small results of an
 * mpc_pool_submit_many() batch) come in one call, up to 256 at a time, in
 * the order they finished; every other result comes alone (n = 1).  Cheaper
 * per result than mpc_pool_poll() when tasks are tiny.
 * @return number of results delivered (>= 0) or a negative error.
 */
MPC_MUST_CHECK int mpc_pool_poll_many(mpc_pool_t *p, double timeout,
                                      mpc_results_cb cb, void *cb_ctx);
/** @brief Tasks submitted and not yet delivered. */
size_t mpc_pool_pending(const mpc_pool_t *p);
/** @brief Cancel a submitted task by tag: dropped if not started, its worker
 *  killed if running.  Its result (MPC_TASK_CANCELED) is still delivered.
 *  A task of an mpc_pool_submit_many() batch that is not running may still
 *  run with its batch-mates; its result is MPC_TASK_CANCELED all the same.
 *  @return 0, MPC_ENOTFOUND (no unfinished task has that tag), MPC_ENOMEM. */
MPC_MUST_CHECK int mpc_pool_cancel(mpc_pool_t *p, uint64_t tag);
/** @brief Cancel every submitted task that has not started; running tasks
 *  finish.  Tasks still queued in the pool are answered MPC_TASK_CANCELED
 *  without running; those already handed to a worker behind the task it runs
 *  may still run (a few ms of work at most), and are answered
 *  MPC_TASK_CANCELED too.  @return 0, MPC_EINVAL, MPC_ENOMEM. */
MPC_MUST_CHECK int mpc_pool_drain(mpc_pool_t *p);

/* ---- shutdown --------------------------------------------------------------- */

/** @brief Finish everything submitted (results of mpc_pool_submit tasks go to
 *  cb, may be NULL), then stop the workers. */
MPC_MUST_CHECK int mpc_pool_join(mpc_pool_t *p, mpc_result_cb cb, void *cb_ctx);
/** @brief Stop now: kill workers; unfinished submitted tasks are delivered to
 *  cb as MPC_TASK_CANCELED (cb may be NULL). */
void mpc_pool_terminate(mpc_pool_t *p, mpc_result_cb cb, void *cb_ctx);
/** @brief Terminate if needed, reap every process, free everything. NULL is fine. */
void mpc_pool_free(mpc_pool_t *p);

/* ---- inside a worker --------------------------------------------------------- */

/** @brief Fail the current task: replace `out` with a formatted message and
 *  return `code` (so a task can `return mpc_task_fail(out, 2, "bad %s", x);`). */
int mpc_task_fail(mpc_buf_t *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief In a worker: the current task started process group `pgid` (e.g.
 *  a shell command).  If the worker is killed (timeout, cancel, stop) or dies
 *  while the task runs, the pool kills that whole group too.  Cleared when
 *  the task returns. */
void mpc_task_set_pgid(pid_t pgid);

/** @brief In a worker: its slot (0..workers-1); -1 outside a worker. */
int mpc_worker_index(void);

/** @brief In a worker: the id (tag, or index for map calls) of the task now
 *  running; UINT64_MAX outside a task. */
uint64_t mpc_task_id(void);

#ifdef __cplusplus
}
#endif
#endif /* MPC_POOL_H */
