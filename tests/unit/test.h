/* Shared helpers for the CUnit suites.
 *
 * Each tests/unit/test_<name>.c defines one suite:
 *
 *   static void test_something(void) { CU_ASSERT_EQUAL(1, 1); }
 *   MPC_TESTS(name) = { {"does something", test_something}, CU_TEST_INFO_NULL };
 *
 * The runner (runner.c) finds the suites from a generated table, and
 * scripts/run-tests.sh runs each suite in its own process under a timeout, so a
 * test that hangs or crashes cannot take the other suites down. */
#ifndef MPC_TEST_H
#define MPC_TEST_H

#include <CUnit/CUnit.h>
#include <stddef.h>
#include <sys/types.h>

#define MPC_TESTS(name) CU_TestInfo mpc_tests_##name[]

/* Number of open file descriptors of this process. */
int mpct_count_fds(void);

/* Number of entries in /dev/shm whose name starts with `prefix` (NULL: all). */
int mpct_count_shm(const char *prefix);

/* Run fn(arg) in a forked child; wait at most timeout_s seconds, then SIGKILL it.
 * Returns the child's exit code (0..255), 128+signal when killed by a signal,
 * or -1 on timeout.  The child leaves with _exit(fn(arg)). */
int mpct_run_child(int (*fn)(void *), void *arg, double timeout_s);

/* Is `pid` still a live (non-zombie) process? */
int mpct_pid_alive(pid_t pid);

/* EINTR storm: a SIGALRM every millisecond, handled without SA_RESTART, so
 * blocking calls keep failing with EINTR until mpct_storm_stop(), which
 * restores the old handler and returns how many alarms arrived. */
void mpct_storm_start(void);
int mpct_storm_stop(void);

/* Monotonic seconds. */
double mpct_now(void);

#endif

/* Run a job serially in this process, the way mpc-run would on one rank but
 * without workers: init, then next -> run -> gather for every task, then
 * finish and fini.  argv[0] must be the job name.  For job unit tests.
 * Returns 0, the first negative code from init/next/gather/finish, or
 * MPC_EUSAGE from init (message copied into err when err != NULL). */
#include "mpc/job.h"
int mpct_job_run(const mpc_job_t *job, int argc, char **argv,
                 mpc_job_report_t *report, mpc_buf_t *err);
