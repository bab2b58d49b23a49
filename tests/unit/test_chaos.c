/* The chaos job: deterministic fates and outputs; a serial run. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../jobs/chaos/chaos.h"

static void test_fates(void) {
  chaos_params_t p = {.seed = 42, .p_fail = 0.2, .p_segv = 0.1, .p_exit = 0.05, .p_hang = 0.05};
  int counts[5] = {0};
  for (uint64_t i = 0; i < 10000; i++) {
    chaos_fate_t f = chaos_fate(&p, i);
    CU_ASSERT_EQUAL(f, chaos_fate(&p, i)); /* pure */
    counts[f]++;
  }
  CU_ASSERT(counts[CHAOS_OK] > 5500 && counts[CHAOS_OK] < 6500);
  CU_ASSERT(counts[CHAOS_FAIL] > 1700 && counts[CHAOS_FAIL] < 2300);
  CU_ASSERT(counts[CHAOS_SEGV] > 800 && counts[CHAOS_SEGV] < 1200);
  CU_ASSERT(counts[CHAOS_HANG] > 350 && counts[CHAOS_HANG] < 650);
  chaos_params_t q = p;
  q.seed = 43;
  int diff = 0;
  for (uint64_t i = 0; i < 100; i++)
    diff += chaos_fate(&p, i) != chaos_fate(&q, i);
  CU_ASSERT(diff > 10);
  chaos_params_t none = {.seed = 42};
  for (uint64_t i = 0; i < 1000; i++)
    CU_ASSERT_EQUAL(chaos_fate(&none, i), CHAOS_OK);
  unsigned char a[33], b[33];
  chaos_output(7, 5, a, sizeof a);
  chaos_output(7, 5, b, sizeof b);
  CU_ASSERT(memcmp(a, b, sizeof a) == 0);
  chaos_output(7, 6, b, sizeof b);
  CU_ASSERT(memcmp(a, b, sizeof a) != 0);
}

static void test_serial_run(void) {
  char *argv[] = {"chaos", "--tasks", "50", "--seed", "3", "--fail", "0.2", NULL};
  mpc_job_report_t rep;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpct_job_run(&mpc_job_chaos, 7, argv, &rep, &err), 0);
  chaos_params_t p = {.seed = 3, .p_fail = 0.2};
  uint64_t expect_fail = 0;
  for (uint64_t i = 0; i < 50; i++)
    expect_fail += chaos_fate(&p, i) == CHAOS_FAIL;
  CU_ASSERT_EQUAL(rep.tasks, 50);
  CU_ASSERT_EQUAL(rep.failed, expect_fail);
  CU_ASSERT_EQUAL(rep.ok, 50 - expect_fail);
  CU_ASSERT(expect_fail > 0);
  mpc_buf_free(&err);
}

/* gather() checks every byte of an OK output: a flip in a whole 8-byte word
 * or in the tail makes finish() fail. */
static int gather_with_flip(size_t size, long flip) {
  char sz[32];
  snprintf(sz, sizeof sz, "%zu", size);
  char *argv[] = {"chaos", "--tasks", "3", "--size", sz, NULL};
  mpc_job_env_t env = {.rank = 0, .nranks = 1};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc_job_chaos.init(5, argv, &env, &st, &err), 0);
  int rc = 0;
  for (uint64_t i = 0; i < 3; i++) {
    unsigned char in[8], out[64];
    for (int k = 0; k < 8; k++)
      in[k] = (unsigned char)(i >> (8 * k));
    chaos_output(1, i, out, size); /* the default seed */
    if (i == 1 && flip >= 0)
      out[flip] ^= 0x10;
    mpc_job_result_t r = {.seq = i, .key = "k", .input = in, .input_len = 8,
                          .status = MPC_TASK_OK, .output = out, .output_len = size};
    CU_ASSERT_EQUAL(mpc_job_chaos.gather(st, &r), 0);
  }
  mpc_job_report_t rep = {.tasks = 3, .ok = 3};
  rc = mpc_job_chaos.finish(st, &rep);
  mpc_job_chaos.fini(st);
  mpc_buf_free(&err);
  return rc;
}

static void test_output_check(void) {
  CU_ASSERT_EQUAL(gather_with_flip(13, -1), 0);
  CU_ASSERT_EQUAL(gather_with_flip(13, 3), MPC_EIO);  /* in the first word */
  CU_ASSERT_EQUAL(gather_with_flip(13, 12), MPC_EIO); /* in the tail */
  CU_ASSERT_EQUAL(gather_with_flip(40, 39), MPC_EIO);
  CU_ASSERT_EQUAL(gather_with_flip(8, 7), MPC_EIO);
}

/* gather()'s short path (a fresh 8-byte success) counts what the general
 * one counts: a task gathered twice is a duplicate (finish fails), an index
 * past --tasks a protocol error, and the checksum is the same whichever
 * path a task took (a resumed success takes the general one). */
static uint64_t checksum_of(const char *out) {
  const char *c = strstr(out, "checksum=");
  return c ? strtoull(c + 9, NULL, 16) : 0;
}

static int gather_run(int dup, int resumed, uint64_t *sum) {
  char *argv[] = {"chaos", "--tasks", "3", "--size", "8", NULL};
  mpc_job_env_t env = {.rank = 0, .nranks = 1};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc_job_chaos.init(5, argv, &env, &st, &err), 0);
  for (uint64_t i = 0; i < 3 + (uint64_t)dup; i++) {
    uint64_t t = i < 3 ? i : 1;
    unsigned char in[8], out[8];
    for (int k = 0; k < 8; k++)
      in[k] = (unsigned char)(t >> (8 * k));
    chaos_output(1, t, out, 8);
    mpc_job_result_t r = {.seq = t, .key = "k", .input = in, .input_len = 8,
                          .status = MPC_TASK_OK, .output = out, .output_len = 8,
                          .resumed = resumed && t == 2};
    CU_ASSERT_EQUAL(mpc_job_chaos.gather(st, &r), 0);
  }
  unsigned char in[8] = {3}; /* task 3 of 3 */
  unsigned char out[8] = {0};
  mpc_job_result_t bad = {.seq = 3, .key = "k", .input = in, .input_len = 8,
                          .status = MPC_TASK_OK, .output = out, .output_len = 8};
  CU_ASSERT_EQUAL(mpc_job_chaos.gather(st, &bad), MPC_EPROTO);
  mpc_job_report_t rep = {.tasks = 3, .ok = 3};
  char buf[1024] = "";
  fflush(stdout);
  FILE *saved = stdout, *mem = fmemopen(buf, sizeof buf - 1, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
  stdout = mem;
  int rc = mpc_job_chaos.finish(st, &rep);
  fflush(mem);
  stdout = saved;
  fclose(mem);
  *sum = checksum_of(buf);
  if (resumed)
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "resumed=1 "));
  if (dup)
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "duplicates=1 "));
  mpc_job_chaos.fini(st);
  mpc_buf_free(&err);
  return rc;
}

static void test_gather_paths(void) {
  uint64_t plain = 0, resumed = 0, dup = 0;
  CU_ASSERT_EQUAL(gather_run(0, 0, &plain), 0);
  CU_ASSERT_EQUAL(gather_run(0, 1, &resumed), 0);
  CU_ASSERT_EQUAL(gather_run(1, 0, &dup), MPC_EIO);
  CU_ASSERT(plain != 0);
  CU_ASSERT_EQUAL(resumed, plain);
  CU_ASSERT_EQUAL(dup, plain);
}

static void test_bad_args(void) {
  char *a1[] = {"chaos", "--tasks", "x", NULL};
  char *a2[] = {"chaos", "--fail", "0.7", "--segv", "0.7", NULL};
  char *a3[] = {"chaos", "--what", NULL};
  char *a4[] = {"chaos", "--flaky", "0.5", NULL};
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpct_job_run(&mpc_job_chaos, 3, a1, NULL, &err), MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "--tasks"));
  CU_ASSERT_EQUAL(mpct_job_run(&mpc_job_chaos, 5, a2, NULL, &err), MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "exceed 1"));
  CU_ASSERT_EQUAL(mpct_job_run(&mpc_job_chaos, 2, a3, NULL, &err), MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "--what"));
  CU_ASSERT_EQUAL(mpct_job_run(&mpc_job_chaos, 3, a4, NULL, &err), MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "--mark"));
  mpc_buf_free(&err);
}

MPC_TESTS(chaos) = {
    {"fates are a pure function of seed and index", test_fates},
    {"serial run fails exactly the predicted tasks", test_serial_run},
    {"bad arguments", test_bad_args},
    {"gather checks every output byte", test_output_check},
    {"gather's short path counts as the general one", test_gather_paths},
    CU_TEST_INFO_NULL,
};
