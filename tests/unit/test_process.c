/* mpc_process_*: spawn, join, status decoding, terminate, EINTR. */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpc/process.h"

/* ---- EINTR storm: SIGALRM every 1 ms, handler without SA_RESTART ---- */

static int ret_arg(void *arg) { return (int)(long)arg; }

static int sleeper(void *arg) {
  usleep((useconds_t)(long)arg);
  return 7;
}

static int segv(void *arg) {
  (void)arg;
  signal(SIGSEGV, SIG_DFL); /* no sanitizer handler in the way */
  /* A real invalid access (a PROT_NONE page: no UBSan null check fires). */
  volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
  if ((void *)p == MAP_FAILED)
    return 10;
  *p = 1;
  return 0;
}

static int ignore_term(void *arg) {
  (void)arg;
  signal(SIGTERM, SIG_IGN);
  for (;;)
    pause();
  return 0;
}

static int flush_and_exit(void *arg) {
  (void)arg;
  /* Flush this process's copies of the stdio buffers, as exit() would
   * (without running atexit handlers such as leak checkers). */
  fflush(NULL);
  _exit(0);
}

static void test_three(void) {
  int fds = mpct_count_fds();
  mpc_process_t *p[3];
  for (long i = 0; i < 3; i++)
    CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p[i], ret_arg, (void *)(i + 1)), 0);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT(mpc_process_pid(p[i]) > 0);
    CU_ASSERT_NOT_EQUAL(mpc_process_pid(p[i]), getpid());
  }
  for (int i = 0; i < 3; i++) {
    mpc_exit_status_t st;
    CU_ASSERT_EQUAL(mpc_process_join(p[i], 10, &st), 0);
    CU_ASSERT_EQUAL(st.exited, 1);
    CU_ASSERT_EQUAL(st.signaled, 0);
    CU_ASSERT_EQUAL(st.code, i + 1);
    /* A second join returns the same status. */
    mpc_exit_status_t st2;
    CU_ASSERT_EQUAL(mpc_process_join(p[i], 0, &st2), 0);
    CU_ASSERT_EQUAL(st2.code, i + 1);
    mpc_process_free(p[i]);
  }
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

static void test_segv(void) {
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, segv, NULL), 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.exited, 0);
  CU_ASSERT_EQUAL(st.signaled, 1);
  CU_ASSERT_EQUAL(st.signo, SIGSEGV);
  char buf[128];
  CU_ASSERT_EQUAL(mpc_exit_status_format(&st, buf, sizeof buf), 0);
  CU_ASSERT(strncmp(buf, "killed by signal 11 (Segmentation fault)", 40) == 0);
  mpc_process_free(p);
}

static void test_format(void) {
  char buf[128];
  mpc_exit_status_t st = {0};
  st.exited = 1;
  st.code = 3;
  CU_ASSERT_EQUAL(mpc_exit_status_format(&st, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf, "exited with code 3");
  memset(&st, 0, sizeof st);
  st.signaled = 1;
  st.signo = 11;
  st.core_dumped = 1;
  CU_ASSERT_EQUAL(mpc_exit_status_format(&st, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf,
                         "killed by signal 11 (Segmentation fault), core dumped");
  CU_ASSERT_EQUAL(mpc_exit_status_format(&st, buf, 10), MPC_ETOOBIG);
  CU_ASSERT_EQUAL(strlen(buf), 9);
  CU_ASSERT_EQUAL(mpc_exit_status_format(&st, NULL, 10), MPC_EINVAL);
}

static void test_join_timeout(void) {
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, sleeper, (void *)5000000L), 0);
  double t0 = mpct_now();
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 0.2, &st), MPC_ETIMEDOUT);
  double dt = mpct_now() - t0;
  CU_ASSERT(dt >= 0.19 && dt < 2.0);
  CU_ASSERT_EQUAL(mpc_process_join(p, 0, &st), MPC_ETIMEDOUT);
  CU_ASSERT(mpct_pid_alive(mpc_process_pid(p)));
  CU_ASSERT_EQUAL(mpc_process_terminate(p, 2.0, &st), 0);
  CU_ASSERT_EQUAL(st.signaled, 1);
  CU_ASSERT_EQUAL(st.signo, SIGTERM);
  CU_ASSERT(mpct_now() - t0 < 3.0);
  mpc_process_free(p);
}

static void test_terminate_escalates(void) {
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, ignore_term, NULL), 0);
  usleep(100000); /* let it install SIG_IGN */
  double t0 = mpct_now();
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_terminate(p, 0.3, &st), 0);
  double dt = mpct_now() - t0;
  CU_ASSERT_EQUAL(st.signaled, 1);
  CU_ASSERT_EQUAL(st.signo, SIGKILL);
  CU_ASSERT(dt >= 0.29 && dt < 3.0);
  CU_ASSERT_FALSE(mpct_pid_alive(mpc_process_pid(p)));
  CU_ASSERT_EQUAL(mpc_process_signal(p, SIGTERM), MPC_ESTATE);
  mpc_process_free(p);
}

static void test_join_eintr(void) {
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, sleeper, (void *)300000L), 0);
  mpc_exit_status_t st;
  mpct_storm_start();
  int rc = mpc_process_join(p, -1, &st);
  int alarms = mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(st.exited, 1);
  CU_ASSERT_EQUAL(st.code, 7);
  CU_ASSERT(alarms > 20);
  mpc_process_free(p);
  /* A timed join under the storm times out at the right time. */
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, sleeper, (void *)2000000L) , 0);
  mpct_storm_start();
  double t0 = mpct_now();
  rc = mpc_process_join(p, 0.2, &st);
  double dt = mpct_now() - t0;
  mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, MPC_ETIMEDOUT);
  CU_ASSERT(dt >= 0.19 && dt < 1.5);
  mpc_process_free(p);
}

static void test_stdio_flushed(void) {
  FILE *f = tmpfile();
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("hello", f); /* sits in f's buffer */
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, flush_and_exit, NULL), 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  fflush(f);
  rewind(f);
  char buf[32] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  CU_ASSERT_EQUAL(n, 5);
  CU_ASSERT_STRING_EQUAL(buf, "hello");
  fclose(f);
}

static void test_free_reaps(void) {
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, sleeper, (void *)5000000L), 0);
  pid_t pid = mpc_process_pid(p);
  CU_ASSERT(mpct_pid_alive(pid));
  mpc_process_free(p);
  CU_ASSERT_FALSE(mpct_pid_alive(pid));
  CU_ASSERT_EQUAL(waitpid(pid, NULL, WNOHANG), -1); /* already reaped */
}

static void test_invalid(void) {
  mpc_process_t *p = (mpc_process_t *)1;
  CU_ASSERT_EQUAL(mpc_process_spawn(&p, NULL, NULL), MPC_EINVAL);
  CU_ASSERT_PTR_NULL(p);
  CU_ASSERT_EQUAL(mpc_process_spawn(NULL, ret_arg, NULL), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_process_join(NULL, 0, NULL), MPC_EINVAL);
  mpc_process_free(NULL);
}

MPC_TESTS(process) = {
    {"3 processes started and joined", test_three},
    {"child that segfaults: signal 11", test_segv},
    {"status formatting", test_format},
    {"join timeout, then terminate with SIGTERM", test_join_timeout},
    {"terminate escalates to SIGKILL", test_terminate_escalates},
    {"join under a SIGALRM storm", test_join_eintr},
    {"spawn flushes stdio first", test_stdio_flushed},
    {"free kills and reaps an unjoined child", test_free_reaps},
    {"invalid arguments", test_invalid},
    CU_TEST_INFO_NULL,
};
