/* mpc_value_* and mpc_array_*: typed shared memory with robust locks. */
#include "test.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mpc/process.h"
#include "mpc/shm.h"


static mpc_value_t *g_v;

/* Non-atomic read-modify-write, made racy on purpose: only the lock
 * makes the total come out right. */
static int locked_inc(void *arg) {
  (void)arg;
  int rc = mpc_value_lock(g_v, 10);
  if (rc != 0 && rc != MPC_EOWNERDEAD)
    return 10;
  volatile int64_t *p = mpc_value_ptr(g_v);
  int64_t x = *p;
  usleep(2000);
  *p = x + 1;
  if (mpc_value_unlock(g_v))
    return 11;
  mpc_value_free(g_v);
  return 0;
}

static void run_n(int n, int (*fn)(void *)) {
  mpc_process_t *p[100];
  for (int i = 0; i < n; i++)
    CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p[i], fn, NULL), 0);
  int bad = 0;
  for (int i = 0; i < n; i++) {
    mpc_exit_status_t st;
    if (mpc_process_join(p[i], 60, &st) || !st.exited || st.code)
      bad++;
    mpc_process_free(p[i]);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_ten_locked(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_value_new(&g_v, MPC_SHM_INT64, 0), 0);
  run_n(10, locked_inc);
  int64_t x = -1;
  CU_ASSERT_EQUAL(mpc_value_get_i64(g_v, &x), 0);
  CU_ASSERT_EQUAL(x, 10);
  mpc_value_free(g_v);
}

static int atomic_adds(void *arg) {
  (void)arg;
  for (int i = 0; i < 10000; i++)
    if (mpc_value_add_i64(g_v, 1, NULL))
      return 10;
  return 0;
}

static void test_million(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_value_new(&g_v, MPC_SHM_INT64, 0), 0);
  run_n(100, atomic_adds);
  int64_t x = -1;
  CU_ASSERT_EQUAL(mpc_value_get_i64(g_v, &x), 0);
  CU_ASSERT_EQUAL(x, 1000000);
  int64_t r = 0;
  CU_ASSERT_EQUAL(mpc_value_add_i64(g_v, -5, &r), 0);
  CU_ASSERT_EQUAL(r, 999995);
  mpc_value_free(g_v);
}

static int die_holding_lock(void *arg) {
  (void)arg;
  if (mpc_value_lock(g_v, 5))
    return 10;
  if (mpc_value_set_i64(g_v, 99))
    return 11;
  raise(SIGKILL);
  return 0;
}

static void test_owner_dead(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_value_new(&g_v, MPC_SHM_INT64, 0), 0);
  CU_ASSERT_EQUAL(mpct_run_child(die_holding_lock, NULL, 10), 128 + SIGKILL);
  double t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_value_lock(g_v, 2), MPC_EOWNERDEAD);
  CU_ASSERT(mpct_now() - t0 < 1);
  int64_t x = 0;
  CU_ASSERT_EQUAL(mpc_value_get_i64(g_v, &x), 0);
  CU_ASSERT_EQUAL(x, 99);
  CU_ASSERT_EQUAL(mpc_value_unlock(g_v), 0);
  CU_ASSERT_EQUAL(mpc_value_lock(g_v, 2), 0); /* recovered for good */
  CU_ASSERT_EQUAL(mpc_value_unlock(g_v), 0);
  /* Others keep going: the 10-process count still works. */
  CU_ASSERT_EQUAL(mpc_value_set_i64(g_v, 0), 0);
  run_n(10, locked_inc);
  CU_ASSERT_EQUAL(mpc_value_get_i64(g_v, &x), 0);
  CU_ASSERT_EQUAL(x, 10);
  mpc_value_free(g_v);
}

static int hold_lock(void *arg) {
  (void)arg;
  if (mpc_value_lock(g_v, 5))
    return 10;
  usleep(300000);
  return mpc_value_unlock(g_v) ? 11 : 0;
}

static void test_lock_timeout_and_eintr(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_value_new(&g_v, MPC_SHM_INT64, 0), 0);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, hold_lock, NULL), 0);
  usleep(100000);
  double t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_value_lock(g_v, 0.05), MPC_ETIMEDOUT);
  double dt = mpct_now() - t0;
  CU_ASSERT(dt >= 0.045 && dt < 0.2);
  mpct_storm_start();
  int rc = mpc_value_lock(g_v, -1);
  int alarms = mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(alarms > 20);
  CU_ASSERT_EQUAL(mpc_value_unlock(g_v), 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  mpc_value_free(g_v);
}

static void test_types(void) {
  mpc_value_t *v;
  CU_ASSERT_EQUAL_FATAL(mpc_value_new(&v, MPC_SHM_DOUBLE, 0), 0);
  double d = 1;
  CU_ASSERT_EQUAL(mpc_value_get_f64(v, &d), 0);
  CU_ASSERT_DOUBLE_EQUAL(d, 0.0, 0);
  CU_ASSERT_EQUAL(mpc_value_set_f64(v, 2.5), 0);
  CU_ASSERT_EQUAL(mpc_value_get_f64(v, &d), 0);
  CU_ASSERT_DOUBLE_EQUAL(d, 2.5, 0);
  int64_t x;
  CU_ASSERT_EQUAL(mpc_value_get_i64(v, &x), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_value_add_i64(v, 1, NULL), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_value_size(v), 8);
  mpc_value_free(v);
  CU_ASSERT_EQUAL_FATAL(mpc_value_new(&v, MPC_SHM_BYTES, 24), 0);
  CU_ASSERT_EQUAL(mpc_value_size(v), 24);
  memcpy(mpc_value_ptr(v), "twenty-four bytes here!", 24);
  mpc_value_free(v);
  CU_ASSERT_EQUAL(mpc_value_new(&v, MPC_SHM_BYTES, 0), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_value_new(&v, (mpc_shm_type_t)42, 8), MPC_EINVAL);

  mpc_array_t *a;
  CU_ASSERT_EQUAL_FATAL(mpc_array_new(&a, MPC_SHM_INT64, 0, 1000), 0);
  CU_ASSERT_EQUAL(mpc_array_len(a), 1000);
  for (size_t i = 0; i < 1000; i++)
    CU_ASSERT_EQUAL(mpc_array_set_i64(a, i, (int64_t)i * 3), 0);
  int64_t r;
  CU_ASSERT_EQUAL(mpc_array_add_i64(a, 999, 3, &r), 0);
  CU_ASSERT_EQUAL(r, 3000);
  CU_ASSERT_EQUAL(mpc_array_get_i64(a, 500, &r), 0);
  CU_ASSERT_EQUAL(r, 1500);
  CU_ASSERT_EQUAL(mpc_array_get_i64(a, 1000, &r), MPC_EINVAL);
  CU_ASSERT_EQUAL(((int64_t *)mpc_array_data(a))[7], 21);
  mpc_array_free(a);
  CU_ASSERT_EQUAL_FATAL(mpc_array_new(&a, MPC_SHM_BYTES, 3, 4), 0);
  CU_ASSERT_EQUAL(mpc_array_set(a, 2, "xyz"), 0);
  char out[3];
  CU_ASSERT_EQUAL(mpc_array_get(a, 2, out), 0);
  CU_ASSERT(memcmp(out, "xyz", 3) == 0);
  CU_ASSERT_EQUAL(mpc_array_get(a, 4, out), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_array_elem_size(a), 3);
  mpc_array_free(a);
  CU_ASSERT_EQUAL(mpc_array_new(&a, MPC_SHM_INT64, 0, 0), MPC_EINVAL);
}

static char g_name[64];
static int open_array_add(void *arg) {
  mpc_array_t *a;
  if (mpc_array_open(&a, g_name))
    return 10;
  for (size_t i = 0; i < mpc_array_len(a); i++)
    if (mpc_array_set_f64(a, i, (double)i + 0.5))
      return 11;
  if (arg)
    raise(SIGKILL);
  mpc_array_free(a);
  return 0;
}

static void test_named(void) {
  int shm0 = mpct_count_shm("mpc"), fds = mpct_count_fds();
  snprintf(g_name, sizeof g_name, "/mpc-test-arr-%d", (int)getpid());
  mpc_array_t *a;
  CU_ASSERT_EQUAL_FATAL(mpc_array_create(&a, g_name, MPC_SHM_DOUBLE, 0, 16, 1), 0);
  char path[128];
  snprintf(path, sizeof path, "/dev/shm%s", g_name);
  struct stat sb;
  CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
  CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
  CU_ASSERT_EQUAL(mpct_run_child(open_array_add, (void *)1L, 10), 128 + SIGKILL);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0);
  double d = 0;
  CU_ASSERT_EQUAL(mpc_array_get_f64(a, 15, &d), 0);
  CU_ASSERT_DOUBLE_EQUAL(d, 15.5, 0);
  mpc_array_free(a);

  mpc_value_t *v, *v2;
  CU_ASSERT_EQUAL_FATAL(mpc_value_create(&v, g_name, MPC_SHM_INT64, 0, 0), 0);
  CU_ASSERT_EQUAL(mpc_array_open(&a, g_name), MPC_EINVAL); /* wrong kind */
  CU_ASSERT_EQUAL(mpc_value_open(&v2, g_name), 0);
  CU_ASSERT_EQUAL(mpc_value_add_i64(v2, 5, NULL), 0);
  int64_t x = 0;
  CU_ASSERT_EQUAL(mpc_value_get_i64(v, &x), 0);
  CU_ASSERT_EQUAL(x, 5);
  mpc_value_free(v);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0 + 1);
  mpc_value_free(v2);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0);
  CU_ASSERT_EQUAL(mpc_value_open(&v, g_name), -ENOENT);
  /* Manual cleanup helper. */
  CU_ASSERT_EQUAL_FATAL(mpc_value_create(&v, g_name, MPC_SHM_INT64, 0, 0), 0);
  CU_ASSERT_EQUAL(mpc_shm_unlink(g_name), 0);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0);
  mpc_value_free(v);
  CU_ASSERT_EQUAL(mpc_shm_unlink("/etc"), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

MPC_TESTS(shm) = {
    {"10 processes add 1 under the lock", test_ten_locked},
    {"100 processes x 10000 atomic adds", test_million},
    {"holder SIGKILLed: MPC_EOWNERDEAD, then usable", test_owner_dead},
    {"lock timeout; lock under a SIGALRM storm", test_lock_timeout_and_eintr},
    {"double, bytes, arrays, type checks", test_types},
    {"named value/array: 0600, lifetime", test_named},
    CU_TEST_INFO_NULL,
};
