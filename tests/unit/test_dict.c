/* mpc_dict_*: shared string -> bytes dictionary. */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "mpc/dict.h"
#include "mpc/process.h"

static mpc_dict_t *g_d;

static int write_one(void *arg) {
  int i = (int)(long)arg;
  char k[32], v[32];
  snprintf(k, sizeof k, "key%d", i);
  snprintf(v, sizeof v, "value%d", i);
  if (mpc_dict_set(g_d, k, v, strlen(v)))
    return 10;
  mpc_dict_free(g_d);
  return 0;
}

static void test_five_writers(void) {
  int fds = mpct_count_fds();
  CU_ASSERT_EQUAL_FATAL(mpc_dict_new(&g_d, 16, 1024), 0);
  mpc_process_t *p[5];
  for (long i = 0; i < 5; i++)
    CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p[i], write_one, (void *)i), 0);
  for (int i = 0; i < 5; i++) {
    mpc_exit_status_t st;
    CU_ASSERT_EQUAL(mpc_process_join(p[i], 10, &st), 0);
    CU_ASSERT_EQUAL(st.code, 0);
    mpc_process_free(p[i]);
  }
  size_t n = 0;
  CU_ASSERT_EQUAL(mpc_dict_len(g_d, &n), 0);
  CU_ASSERT_EQUAL(n, 5);
  mpc_buf_t v = MPC_BUF_INIT, k = MPC_BUF_INIT;
  for (int i = 0; i < 5; i++) {
    char key[32], want[32];
    snprintf(key, sizeof key, "key%d", i);
    snprintf(want, sizeof want, "value%d", i);
    CU_ASSERT_EQUAL(mpc_dict_get(g_d, key, &v), 0);
    CU_ASSERT_STRING_EQUAL(mpc_buf_str(&v), want);
  }
  /* Iteration sees each key exactly once. */
  int seen[5] = {0};
  size_t cur = 0, count = 0;
  while (mpc_dict_next(g_d, &cur, &k, &v) == 0) {
    int i = -1;
    CU_ASSERT_EQUAL(sscanf(mpc_buf_str(&k), "key%d", &i), 1);
    if (i >= 0 && i < 5) {
      seen[i]++;
      char want[32];
      snprintf(want, sizeof want, "value%d", i);
      CU_ASSERT_STRING_EQUAL(mpc_buf_str(&v), want);
    }
    count++;
  }
  CU_ASSERT_EQUAL(count, 5);
  for (int i = 0; i < 5; i++)
    CU_ASSERT_EQUAL(seen[i], 1);
  mpc_dict_free(g_d);
  mpc_buf_free(&k);
  mpc_buf_free(&v);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

static void test_basic(void) {
  mpc_dict_t *d;
  CU_ASSERT_EQUAL_FATAL(mpc_dict_new(&d, 8, 256), 0);
  mpc_buf_t v = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_dict_get(d, "a", &v), MPC_ENOTFOUND);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "a", "1", 1), 0);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "empty", NULL, 0), 0);
  CU_ASSERT_EQUAL(mpc_dict_get(d, "empty", &v), 0);
  CU_ASSERT_EQUAL(v.len, 0);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "a", "second", 6), 0);
  CU_ASSERT_EQUAL(mpc_dict_get(d, "a", &v), 0);
  CU_ASSERT(v.len == 6 && memcmp(v.data, "second", 6) == 0);
  size_t n = 0;
  CU_ASSERT_EQUAL(mpc_dict_len(d, &n), 0);
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_EQUAL(mpc_dict_delete(d, "a"), 0);
  CU_ASSERT_EQUAL(mpc_dict_delete(d, "a"), MPC_ENOTFOUND);
  CU_ASSERT_EQUAL(mpc_dict_get(d, "a", &v), MPC_ENOTFOUND);
  CU_ASSERT_EQUAL(mpc_dict_len(d, &n), 0);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "", "x", 1), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_dict_set(d, NULL, "x", 1), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "k", NULL, 1), MPC_EINVAL);
  mpc_dict_free(d);
  mpc_buf_free(&v);
}

/* Check that d holds exactly the model's entries. */
#define NKEYS 40
static int matches(mpc_dict_t *d, char model[NKEYS][64], int present[NKEYS]) {
  mpc_buf_t v = MPC_BUF_INIT;
  int ok = 1;
  size_t want = 0, n = 0;
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    int rc = mpc_dict_get(d, key, &v);
    if (present[i]) {
      want++;
      ok &= rc == 0 && strcmp(mpc_buf_str(&v), model[i]) == 0;
    } else {
      ok &= rc == MPC_ENOTFOUND;
    }
  }
  ok &= mpc_dict_len(d, &n) == 0 && n == want;
  mpc_buf_free(&v);
  return ok;
}

static void test_full(void) {
  mpc_dict_t *d;
  CU_ASSERT_EQUAL_FATAL(mpc_dict_new(&d, 4, 64), 0);
  char model[NKEYS][64] = {{0}};
  int present[NKEYS] = {0};
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    snprintf(model[i], 64, "v%d", i);
    CU_ASSERT_EQUAL(mpc_dict_set(d, key, model[i], strlen(model[i])), 0);
    present[i] = 1;
  }
  CU_ASSERT_EQUAL(mpc_dict_set(d, "k4", "v4", 2), MPC_ENOSPC); /* entries */
  CU_ASSERT(matches(d, model, present));
  /* Bytes: 4 * 4 used of 64; replacing k0 by 2 + 51 bytes needs 65. */
  char big[70];
  memset(big, 'b', sizeof big);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "k0", big, 51), MPC_ENOSPC);
  CU_ASSERT_EQUAL(mpc_dict_set(d, "k0", big, 70), MPC_ETOOBIG);
  CU_ASSERT(matches(d, model, present));
  /* Replacing in place may use the space the old value frees. */
  CU_ASSERT_EQUAL(mpc_dict_set(d, "k0", big, 46), 0);
  memcpy(model[0], big, 46);
  model[0][46] = 0;
  CU_ASSERT(matches(d, model, present));
  CU_ASSERT_EQUAL(mpc_dict_delete(d, "k1"), 0);
  present[1] = 0;
  CU_ASSERT_EQUAL(mpc_dict_set(d, "k4", "v4", 2), 0);
  snprintf(model[4], 64, "v4");
  present[4] = 1;
  CU_ASSERT(matches(d, model, present));
  mpc_dict_free(d);
}

static void test_churn(void) {
  /* Random sets/deletes against a local model: exercises tombstones,
   * overwrite and compaction, plus ENOSPC never corrupting anything. */
  mpc_dict_t *d;
  CU_ASSERT_EQUAL_FATAL(mpc_dict_new(&d, 30, 600), 0);
  char model[NKEYS][64] = {{0}};
  int present[NKEYS] = {0}, bad = 0, nospc = 0;
  srand(42);
  for (int op = 0; op < 20000; op++) {
    int i = rand() % NKEYS;
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    if (rand() % 4 == 0) {
      int rc = mpc_dict_delete(d, key);
      bad += rc != (present[i] ? 0 : MPC_ENOTFOUND);
      present[i] = 0;
    } else {
      char val[64];
      int len = rand() % 60;
      for (int c = 0; c < len; c++)
        val[c] = (char)('a' + (op + c) % 26);
      val[len] = 0;
      int rc = mpc_dict_set(d, key, val, (size_t)len);
      if (rc == 0) {
        memcpy(model[i], val, (size_t)len + 1);
        present[i] = 1;
      } else if (rc == MPC_ENOSPC) {
        nospc++;
      } else {
        bad++;
      }
    }
    if (op % 500 == 0 && !matches(d, model, present))
      bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(nospc > 0); /* the test did hit the limits */
  CU_ASSERT(matches(d, model, present));
  mpc_dict_free(d);
}

static int crash_set(void *arg) {
  mpc__dict_debug_crash(g_d, (int)(long)arg);
  int rc = mpc_dict_set(g_d, "victim", "NEW-VALUE-NEW-VALUE", 19);
  return rc ? 4 : 3; /* not reached */
}

static void crash_case(int point, int compact, const char *expect) {
  CU_ASSERT_EQUAL_FATAL(mpc_dict_new(&g_d, 8, compact ? 64 : 4096), 0);
  CU_ASSERT_EQUAL(mpc_dict_set(g_d, "other", "o", 1), 0);
  CU_ASSERT_EQUAL(mpc_dict_set(g_d, "victim", "OLD", 3), 0);
  if (compact) /* fill the bump area so that the next set compacts */
    for (int i = 0; i < 4; i++)
      CU_ASSERT_EQUAL(mpc_dict_set(g_d, "other", "0123456789", 10), 0);
  int rc = mpct_run_child(crash_set, (void *)(long)point, 10);
  CU_ASSERT_EQUAL(rc, 128 + SIGKILL);
  mpc_buf_t v = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_dict_get(g_d, "victim", &v), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&v), expect);
  CU_ASSERT_EQUAL(mpc_dict_get(g_d, "other", &v), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&v), compact ? "0123456789" : "o");
  size_t n = 0;
  CU_ASSERT_EQUAL(mpc_dict_len(g_d, &n), 0);
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_EQUAL(mpc_dict_set(g_d, "after", "ok", 2), 0);
  CU_ASSERT_EQUAL(mpc_dict_get(g_d, "after", &v), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&v), "ok");
  mpc_dict_free(g_d);
  mpc_buf_free(&v);
}

static void test_crash(void) {
  crash_case(MPC__CRASH_BEFORE_COMMIT, 0, "OLD");
  crash_case(MPC__CRASH_IN_COMMIT, 0, "NEW-VALUE-NEW-VALUE");
  crash_case(MPC__CRASH_BEFORE_COMMIT, 1, "OLD");
}

static char g_name[64];
static int open_set(void *arg) {
  mpc_dict_t *d;
  if (mpc_dict_open(&d, g_name))
    return 10;
  if (mpc_dict_set(d, "from-child", "yes", 3))
    return 11;
  if (arg)
    raise(SIGKILL);
  mpc_dict_free(d);
  return 0;
}

static void test_named(void) {
  int shm0 = mpct_count_shm("mpc"), fds = mpct_count_fds();
  snprintf(g_name, sizeof g_name, "/mpc-test-dict-%d", (int)getpid());
  mpc_dict_t *d;
  CU_ASSERT_EQUAL_FATAL(mpc_dict_create(&d, g_name, 8, 256, 1), 0);
  char path[128];
  snprintf(path, sizeof path, "/dev/shm%s", g_name);
  struct stat sb;
  CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
  CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
  CU_ASSERT_EQUAL(mpct_run_child(open_set, (void *)1L, 10), 128 + SIGKILL);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0);
  mpc_buf_t v = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_dict_get(d, "from-child", &v), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&v), "yes");
  mpc_dict_free(d);
  CU_ASSERT_EQUAL(mpc_dict_open(&d, g_name), -ENOENT);
  CU_ASSERT_EQUAL_FATAL(mpc_dict_create(&d, g_name, 8, 256, 0), 0);
  CU_ASSERT_EQUAL(mpct_run_child(open_set, NULL, 10), 0);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0 + 1);
  mpc_dict_free(d);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0);
  mpc_buf_free(&v);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

MPC_TESTS(dict) = {
    {"5 processes write key{i}; parent sees all", test_five_writers},
    {"set/get/overwrite/delete", test_basic},
    {"full: MPC_ENOSPC, dict unchanged", test_full},
    {"random churn against a model", test_churn},
    {"writer SIGKILLed mid-set: old or new, never torn", test_crash},
    {"named dict: 0600, lifetime", test_named},
    CU_TEST_INFO_NULL,
};
