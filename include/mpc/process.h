/**
 * @file process.h
 * @brief Run a function in a forked child process; join it with a timeout,
 * decode how it ended, terminate it politely then firmly.
 *
 * The child runs `fn(arg)` and leaves with `_exit(fn(arg) & 0xff)`: it never
 * returns into the caller's code and never runs the parent's atexit handlers
 * or flushes the parent's stdio buffers (stdio is flushed with fflush(NULL)
 * before fork(), so buffered output is not duplicated).
 *
 * Ownership: mpc_process_spawn() allocates the handle; mpc_process_free()
 * releases it.  A child that was never joined is SIGKILLed and reaped by
 * mpc_process_free() in the spawning process, so no zombie is left.
 */
#ifndef MPC_PROCESS_H
#define MPC_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpc_process mpc_process_t;

/** How a child ended, decoded from its wait status. */
typedef struct mpc_exit_status {
  int exited;      /**< 1 if it called _exit()/returned: see `code` */
  int code;        /**< exit code 0..255 when `exited` */
  int signaled;    /**< 1 if a signal killed it: see `signo` */
  int signo;       /**< the signal number when `signaled` */
  int core_dumped; /**< 1 if it was killed and dumped core */
} mpc_exit_status_t;

/**
 * @brief Fork a child that runs fn(arg) and _exit()s with its return value.
 * @param[out] out the new handle (NULL on error)
 * @param[in]  fn  function to run in the child (must not be NULL)
 * @param[in]  arg passed to fn; the child sees its own copy of memory
 * @return 0, MPC_EINVAL, MPC_ENOMEM, or -errno from fork() (e.g. -EAGAIN).
 * Ownership: free the handle with mpc_process_free().
 */
MPC_MUST_CHECK int mpc_process_spawn(mpc_process_t **out, int (*fn)(void *),
                                     void *arg);

/** @brief The child's pid (still valid after join, but then may be reused). */
pid_t mpc_process_pid(const mpc_process_t *p);

/**
 * @brief Wait for the child to end and reap it.
 * @param[in]  timeout seconds; negative waits forever; 0 polls
 * @param[out] st      decoded status (may be NULL)
 * @return 0 (also on later calls, with the same status); MPC_ETIMEDOUT if
 *         still running; MPC_ESTATE if called from another process than the
 *         one that spawned it; -errno.  Signals (EINTR) are handled inside.
 */
MPC_MUST_CHECK int mpc_process_join(mpc_process_t *p, double timeout,
                                    mpc_exit_status_t *st);

/**
 * @brief Send signal `sig` to a child that has not been joined yet.
 * @return 0, MPC_ESTATE (already joined), -errno from kill().
 */
MPC_MUST_CHECK int mpc_process_signal(mpc_process_t *p, int sig);

/**
 * @brief Stop the child: SIGTERM, wait up to `grace` seconds, then SIGKILL,
 * then reap.  On an already joined child just returns its status.
 * @param[in]  grace seconds to wait after SIGTERM (negative: 0)
 * @param[out] st    decoded status (may be NULL)
 * @return 0, MPC_ESTATE (foreign process) or -errno.
 */
MPC_MUST_CHECK int mpc_process_terminate(mpc_process_t *p, double grace,
                                         mpc_exit_status_t *st);

/** @brief Release the handle (NULL is fine).  See the file comment. */
void mpc_process_free(mpc_process_t *p);

/**
 * @brief Format a status as text: "exited with code 3", "killed by signal
 * 11 (Segmentation fault), core dumped".
 * @param[out] buf   destination, always NUL-terminated when len > 0
 * @return 0, MPC_EINVAL, or MPC_ETOOBIG if the text was truncated.
 */
MPC_MUST_CHECK int mpc_exit_status_format(const mpc_exit_status_t *st,
                                          char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MPC_PROCESS_H */
