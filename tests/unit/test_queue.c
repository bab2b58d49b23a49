/* mpc_queue_*: bounded MPMC queue in shared memory. */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/internal.h"
#include "mpc/process.h"
#include "mpc/queue.h"


static mpc_queue_t *g_q;

/* Item i of producer p: [u32 p][u32 i][u32 n][n bytes][u32 checksum]. */
static size_t make_item(unsigned char *buf, uint32_t p, uint32_t i) {
  uint32_t n = (i * 37u + p * 11u) % 300u;
  memcpy(buf, &p, 4);
  memcpy(buf + 4, &i, 4);
  memcpy(buf + 8, &n, 4);
  uint32_t sum = p * 7u + i;
  for (uint32_t k = 0; k < n; k++) {
    buf[12 + k] = (unsigned char)(k ^ i ^ p);
    sum = sum * 31u + buf[12 + k];
  }
  memcpy(buf + 12 + n, &sum, 4);
  return 16 + n;
}

/* Returns 1 if buf is a whole, valid item; sets *p and *i. */
static int check_item(const mpc_buf_t *b, uint32_t *p, uint32_t *i) {
  unsigned char want[512];
  if (b->len < 16)
    return 0;
  memcpy(p, b->data, 4);
  memcpy(i, b->data + 4, 4);
  size_t n = make_item(want, *p, *i);
  return n == b->len && memcmp(want, b->data, n) == 0;
}

static int produce(void *arg) {
  uint32_t p = (uint32_t)(long)arg;
  unsigned char buf[512];
  for (uint32_t i = 0; i < 1000; i++) {
    size_t n = make_item(buf, p, i);
    if (mpc_queue_put(g_q, buf, n, 10))
      return 10;
  }
  mpc_queue_free(g_q); /* inherited handle: only unmaps */
  return 0;
}

static void test_producer_consumer(void) {
  int fds = mpct_count_fds();
  CU_ASSERT_EQUAL_FATAL(mpc_queue_new(&g_q, 16, 4096), 0);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, produce, (void *)1L), 0);
  mpc_buf_t b = MPC_BUF_INIT;
  uint32_t next = 0, bad = 0;
  int rc;
  while ((rc = mpc_queue_get(g_q, &b, 0.5)) == 0) {
    uint32_t pp, ii;
    if (!check_item(&b, &pp, &ii) || pp != 1 || ii != next)
      bad++;
    next++;
  }
  CU_ASSERT_EQUAL(rc, MPC_ETIMEDOUT); /* consumer stops on a get timeout */
  CU_ASSERT_EQUAL(next, 1000);
  CU_ASSERT_EQUAL(bad, 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  mpc_queue_free(g_q);
  mpc_buf_free(&b);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

static void test_mpmc(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_queue_new(&g_q, 8, 1024), 0);
  mpc_process_t *p[3];
  for (long k = 0; k < 3; k++)
    CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p[k], produce, (void *)k), 0);
  uint32_t next[3] = {0, 0, 0}, bad = 0, total = 0;
  mpc_buf_t b = MPC_BUF_INIT;
  while (mpc_queue_get(g_q, &b, 1.0) == 0) {
    uint32_t pp, ii;
    if (!check_item(&b, &pp, &ii) || pp > 2 || ii != next[pp])
      bad++;
    else
      next[pp]++;
    total++;
  }
  CU_ASSERT_EQUAL(total, 3000);
  CU_ASSERT_EQUAL(bad, 0);
  for (int k = 0; k < 3; k++) {
    mpc_exit_status_t st;
    CU_ASSERT_EQUAL(mpc_process_join(p[k], 10, &st), 0);
    CU_ASSERT_EQUAL(st.code, 0);
    mpc_process_free(p[k]);
  }
  mpc_queue_free(g_q);
  mpc_buf_free(&b);
}

static void test_full_empty(void) {
  mpc_queue_t *q;
  CU_ASSERT_EQUAL_FATAL(mpc_queue_new(&q, 2, 100), 0);
  mpc_buf_t b = MPC_BUF_INIT;
  double t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0.1), MPC_ETIMEDOUT);
  double dt = mpct_now() - t0;
  CU_ASSERT(dt >= 0.09 && dt < 2);
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), MPC_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpc_queue_put(q, "x", 101, 0), MPC_ETOOBIG);
  CU_ASSERT_EQUAL(mpc_queue_put(q, NULL, 0, 0), 0); /* empty item */
  CU_ASSERT_EQUAL(mpc_queue_put(q, "abc", 3, 0), 0);
  t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_queue_put(q, "d", 1, 0.1), MPC_ETIMEDOUT); /* items */
  dt = mpct_now() - t0;
  CU_ASSERT(dt >= 0.09 && dt < 2);
  size_t items = 0, bytes = 0;
  CU_ASSERT_EQUAL(mpc_queue_count(q, &items, &bytes), 0);
  CU_ASSERT(items == 2 && bytes == 3);
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), 0);
  CU_ASSERT_EQUAL(b.len, 0);
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), 0);
  CU_ASSERT(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
  /* Byte capacity: 60 + 50 > 100. */
  unsigned char big[100];
  memset(big, 7, sizeof big);
  CU_ASSERT_EQUAL(mpc_queue_put(q, big, 60, 0), 0);
  CU_ASSERT_EQUAL(mpc_queue_put(q, big, 50, 0.05), MPC_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpc_queue_put(q, big, 40, 0), 0);
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), 0);
  CU_ASSERT_EQUAL(b.len, 60);
  CU_ASSERT_EQUAL(mpc_queue_put(q, big, 60, 0), 0); /* wraps around */
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), 0);
  CU_ASSERT_EQUAL(b.len, 40);
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), 0);
  CU_ASSERT(b.len == 60 && memcmp(b.data, big, 60) == 0);
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 0), MPC_ETIMEDOUT);
  mpc_queue_free(q);
  mpc_buf_free(&b);
  CU_ASSERT_EQUAL(mpc_queue_new(&q, 0, 10), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_queue_new(&q, 10, 0), MPC_EINVAL);
}

static int crash_put(void *arg) {
  mpc__queue_debug_crash(g_q, (int)(long)arg);
  unsigned char buf[512];
  size_t n = make_item(buf, 9, 299); /* 299 % 300 pattern: large item */
  int rc = mpc_queue_put(g_q, buf, n, 5);
  return rc ? 4 : 3; /* not reached: the hook kills us */
}

static void crash_case(int point, int expect_item) {
  CU_ASSERT_EQUAL_FATAL(mpc_queue_new(&g_q, 8, 4096), 0);
  unsigned char buf[512];
  size_t n = make_item(buf, 1, 1);
  CU_ASSERT_EQUAL(mpc_queue_put(g_q, buf, n, 0), 0);
  int rc = mpct_run_child(crash_put, (void *)(long)point, 10);
  CU_ASSERT_EQUAL(rc, 128 + SIGKILL); /* died holding the lock */
  mpc_buf_t b = MPC_BUF_INIT;
  uint32_t p, i;
  double t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_queue_get(g_q, &b, 2), 0); /* no deadlock */
  CU_ASSERT(mpct_now() - t0 < 1.5);
  CU_ASSERT(check_item(&b, &p, &i) && p == 1 && i == 1);
  if (expect_item) {
    CU_ASSERT_EQUAL(mpc_queue_get(g_q, &b, 0), 0);
    CU_ASSERT(check_item(&b, &p, &i) && p == 9 && i == 299);
  }
  CU_ASSERT_EQUAL(mpc_queue_get(g_q, &b, 0), MPC_ETIMEDOUT);
  size_t items = 9, bytes = 9;
  CU_ASSERT_EQUAL(mpc_queue_count(g_q, &items, &bytes), 0);
  CU_ASSERT(items == 0 && bytes == 0);
  /* Still fully usable. */
  for (uint32_t k = 0; k < 50; k++) {
    n = make_item(buf, 2, k);
    CU_ASSERT_EQUAL(mpc_queue_put(g_q, buf, n, 1), 0);
    CU_ASSERT_EQUAL(mpc_queue_get(g_q, &b, 1), 0);
    CU_ASSERT(check_item(&b, &p, &i) && p == 2 && i == k);
  }
  mpc_queue_free(g_q);
  mpc_buf_free(&b);
}

static void test_crash_before_commit(void) { crash_case(MPC__CRASH_BEFORE_COMMIT, 0); }
static void test_crash_in_commit(void) { crash_case(MPC__CRASH_IN_COMMIT, 1); }

static int put_forever(void *arg) {
  unsigned char buf[512];
  for (uint32_t i = 0;; i++) {
    size_t n = make_item(buf, (uint32_t)(long)arg, i);
    if (mpc_queue_put(g_q, buf, n, 10))
      return 10;
  }
}

static void test_killed_producers_stress(void) {
  /* Producers are SIGKILLed at random moments, many times over, while the
   * parent consumes: every item must be whole, per-producer order kept. */
  CU_ASSERT_EQUAL_FATAL(mpc_queue_new(&g_q, 64, 8192), 0);
  mpc_buf_t b = MPC_BUF_INIT;
  uint32_t bad = 0, got = 0;
  srand(1234);
  for (int round = 0; round < 20; round++) {
    mpc_process_t *p[2];
    long id0 = round * 2, id1 = round * 2 + 1;
    CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p[0], put_forever, (void *)id0), 0);
    CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p[1], put_forever, (void *)id1), 0);
    uint32_t next[2] = {0, 0};
    double stop = mpct_now() + 0.01 + (rand() % 20) * 0.001;
    while (mpct_now() < stop) {
      if (mpc_queue_get(g_q, &b, 0.01) == 0) {
        uint32_t pp, ii;
        if (!check_item(&b, &pp, &ii) || (pp != id0 && pp != id1) ||
            ii != next[pp - id0])
          bad++;
        else
          next[pp - id0]++;
        got++;
      }
    }
    for (int k = 0; k < 2; k++) {
      CU_ASSERT_EQUAL(mpc_process_signal(p[k], SIGKILL), 0);
      mpc_exit_status_t st;
      CU_ASSERT_EQUAL(mpc_process_join(p[k], 10, &st), 0);
      CU_ASSERT_EQUAL(st.signo, SIGKILL);
      mpc_process_free(p[k]);
    }
    while (mpc_queue_get(g_q, &b, 0) == 0) {
      uint32_t pp, ii;
      if (!check_item(&b, &pp, &ii) || (pp != id0 && pp != id1) ||
          ii != next[pp - id0])
        bad++;
      else
        next[pp - id0]++;
      got++;
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(got > 100);
  size_t items = 9;
  CU_ASSERT_EQUAL(mpc_queue_count(g_q, &items, NULL), 0);
  CU_ASSERT_EQUAL(items, 0);
  mpc_queue_free(g_q);
  mpc_buf_free(&b);
}

static int late_put(void *arg) {
  (void)arg;
  usleep(200000);
  return mpc_queue_put(g_q, "late", 4, 5) ? 10 : 0;
}

static int late_get(void *arg) {
  (void)arg;
  usleep(200000);
  mpc_buf_t b = MPC_BUF_INIT;
  int rc = mpc_queue_get(g_q, &b, 5);
  int ok = rc == 0 && b.len == 1 && b.data[0] == 'a';
  mpc_buf_free(&b);
  return ok ? 0 : 10;
}

static void test_eintr(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_queue_new(&g_q, 1, 64), 0);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, late_put, NULL), 0);
  mpc_buf_t b = MPC_BUF_INIT;
  mpct_storm_start();
  int rc = mpc_queue_get(g_q, &b, -1);
  int alarms = mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(b.len == 4 && memcmp(b.data, "late", 4) == 0);
  CU_ASSERT(alarms > 20);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  /* Blocking put on a full queue. */
  CU_ASSERT_EQUAL(mpc_queue_put(g_q, "a", 1, 0), 0);
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, late_get, NULL), 0);
  mpct_storm_start();
  rc = mpc_queue_put(g_q, "b", 1, -1);
  alarms = mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(alarms > 20);
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  /* Timed get under the storm expires on time. */
  CU_ASSERT_EQUAL(mpc_queue_get(g_q, &b, 0), 0);
  mpct_storm_start();
  double t0 = mpct_now();
  rc = mpc_queue_get(g_q, &b, 0.2);
  double dt = mpct_now() - t0;
  mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, MPC_ETIMEDOUT);
  CU_ASSERT(dt >= 0.19 && dt < 1.5);
  mpc_queue_free(g_q);
  mpc_buf_free(&b);
}

static char g_name[64];

static int open_and_put(void *arg) {
  mpc_queue_t *q;
  if (mpc_queue_open(&q, g_name))
    return 10;
  if (mpc_queue_put(q, "named", 5, 5))
    return 11;
  if (arg)
    raise(SIGKILL); /* die without closing */
  mpc_queue_free(q);
  return 0;
}

static void test_named(void) {
  int shm0 = mpct_count_shm("mpc"), fds = mpct_count_fds();
  snprintf(g_name, sizeof g_name, "/mpc-test-q-%d", (int)getpid());
  mpc_queue_t *q;
  /* expected_opens = 1: the name goes away once the opener attached. */
  CU_ASSERT_EQUAL_FATAL(mpc_queue_create(&q, g_name, 4, 256, 1), 0);
  char path[128];
  snprintf(path, sizeof path, "/dev/shm%s", g_name);
  struct stat sb;
  CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
  CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0 + 1);
  mpc_queue_t *q2;
  CU_ASSERT_EQUAL(mpc_queue_create(&q2, g_name, 4, 256, 1), -EEXIST);
  CU_ASSERT_EQUAL(mpct_run_child(open_and_put, (void *)1L, 10), 128 + SIGKILL);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0); /* killed opener: no leftover */
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_queue_get(q, &b, 1), 0);
  CU_ASSERT(b.len == 5 && memcmp(b.data, "named", 5) == 0);
  mpc_queue_free(q);
  CU_ASSERT_EQUAL(mpc_queue_open(&q, g_name), -ENOENT);

  /* expected_opens = 0: the name lives until the last handle is freed. */
  CU_ASSERT_EQUAL_FATAL(mpc_queue_create(&q, g_name, 4, 256, 0), 0);
  CU_ASSERT_EQUAL(mpct_run_child(open_and_put, NULL, 10), 0);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0 + 1);
  CU_ASSERT_EQUAL(mpc_queue_open(&q2, g_name), 0);
  mpc_queue_free(q);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0 + 1); /* q2 still holds it */
  CU_ASSERT_EQUAL(mpc_queue_get(q2, &b, 1), 0);
  CU_ASSERT(b.len == 5 && memcmp(b.data, "named", 5) == 0);
  mpc_queue_free(q2);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), shm0);
  CU_ASSERT_EQUAL(mpc_queue_create(&q, "/bad/name", 4, 256, 0), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_queue_create(&q, "/notmpc", 4, 256, 0), MPC_EINVAL);
  mpc_buf_free(&b);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

MPC_TESTS(queue) = {
    {"producer/consumer, consumer stops on get timeout", test_producer_consumer},
    {"3 producers, FIFO per producer", test_mpmc},
    {"full and empty timeouts, capacity, wrap", test_full_empty},
    {"writer SIGKILLed mid-item: item dropped", test_crash_before_commit},
    {"writer SIGKILLed mid-commit: item completed", test_crash_in_commit},
    {"producers SIGKILLed at random: no torn items", test_killed_producers_stress},
    {"get/put under a SIGALRM storm", test_eintr},
    {"named queue: 0600, lifetime, no leftovers", test_named},
    CU_TEST_INFO_NULL,
};
