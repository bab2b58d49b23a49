/* mpc-run's option parsing and job registry. */
#include "test.h"

#include <string.h>

#include "cli/opts.h"

#define ARGV(...) ((char *[]){"mpc-run", __VA_ARGS__, NULL})

static int parse(mpc__opts_t *o, char **argv, int unused, mpc_buf_t *err) {
  int argc = 0;
  while (argv[argc])
    argc++;
  mpc_buf_clear(err);
  return mpc__opts_parse(o, argc, argv, err);
}

static void test_globals_anywhere(void) {
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  char **a = ARGV("-w", "3", "chaos", "--tasks", "9", "--timeout=2.5", "-k",
                  "--retries", "4", "--seed", "7", "-vv");
  CU_ASSERT_EQUAL_FATAL(parse(&o, a, 12, &err), 0);
  CU_ASSERT_EQUAL(o.workers, 3);
  CU_ASSERT_DOUBLE_EQUAL(o.timeout, 2.5, 1e-9);
  CU_ASSERT_EQUAL(o.ordered, 1);
  CU_ASSERT_EQUAL(o.retries, 4);
  CU_ASSERT_EQUAL(o.verbose, 2);
  CU_ASSERT_STRING_EQUAL(o.job, "chaos");
  CU_ASSERT_EQUAL_FATAL(o.job_argc, 5);
  CU_ASSERT_STRING_EQUAL(o.job_argv[0], "chaos");
  CU_ASSERT_STRING_EQUAL(o.job_argv[1], "--tasks");
  CU_ASSERT_STRING_EQUAL(o.job_argv[2], "9");
  CU_ASSERT_STRING_EQUAL(o.job_argv[3], "--seed");
  CU_ASSERT_STRING_EQUAL(o.job_argv[4], "7");
  CU_ASSERT_PTR_NULL(o.job_argv[5]);
  mpc__opts_free(&o);
  mpc_buf_free(&err);
}

static void test_double_dash(void) {
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  char **a = ARGV("cmd", "-w2", "--", "--timeout", "5", "-w", "x");
  CU_ASSERT_EQUAL_FATAL(parse(&o, a, 7, &err), 0);
  CU_ASSERT_EQUAL(o.workers, 2);
  CU_ASSERT_DOUBLE_EQUAL(o.timeout, 0, 1e-9);
  CU_ASSERT_EQUAL_FATAL(o.job_argc, 6);
  CU_ASSERT_STRING_EQUAL(o.job_argv[1], "--");
  CU_ASSERT_STRING_EQUAL(o.job_argv[2], "--timeout");
  CU_ASSERT_STRING_EQUAL(o.job_argv[4], "-w");
  mpc__opts_free(&o);
  mpc_buf_free(&err);
}

static void test_halt_schedule(void) {
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  char **a = ARGV("--halt", "now,fail=3", "--schedule", "static", "j");
  CU_ASSERT_EQUAL_FATAL(parse(&o, a, 5, &err), 0);
  CU_ASSERT_EQUAL(o.halt, MPC__HALT_NOW);
  CU_ASSERT_EQUAL(o.halt_fail, 3);
  CU_ASSERT_EQUAL(o.sched, MPC__SCHED_STATIC);
  mpc__opts_free(&o);
  char **b = ARGV("--halt=soon,fail=10%", "j");
  CU_ASSERT_EQUAL_FATAL(parse(&o, b, 2, &err), 0);
  CU_ASSERT_EQUAL(o.halt, MPC__HALT_SOON);
  CU_ASSERT_DOUBLE_EQUAL(o.halt_pct, 10, 1e-9);
  mpc__opts_free(&o);
  char **c = ARGV("j");
  CU_ASSERT_EQUAL_FATAL(parse(&o, c, 1, &err), 0);
  CU_ASSERT_EQUAL(o.halt, MPC__HALT_NEVER);
  CU_ASSERT_EQUAL(o.retries, 1);
  CU_ASSERT_EQUAL(o.sched, MPC__SCHED_GUIDED);
  CU_ASSERT_EQUAL(o.progress, -1);
  mpc__opts_free(&o);
  mpc_buf_free(&err);
}

static void expect_usage(char **argv, int argc, const char *needle) {
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(parse(&o, argv, argc, &err), MPC_EUSAGE);
  if (!strstr(mpc_buf_str(&err), needle)) {
    fprintf(stderr, "message '%s' lacks '%s'\n", mpc_buf_str(&err), needle);
    CU_FAIL("message does not name the problem");
  }
  mpc__opts_free(&o);
  mpc_buf_free(&err);
}

static void test_errors(void) {
  expect_usage(ARGV("--bogus", "j"), 2, "--bogus");
  expect_usage(ARGV("j", "--timeout"), 2, "--timeout: missing value");
  expect_usage(ARGV("j", "-w", "0"), 3, "--workers");
  expect_usage(ARGV("j", "--retries", "x"), 3, "--retries");
  expect_usage(ARGV("j", "--halt", "later"), 3, "--halt");
  expect_usage(ARGV("j", "--halt", "now,fail=0"), 3, "--halt");
  expect_usage(ARGV("j", "--schedule", "fast"), 3, "--schedule");
  expect_usage(ARGV("-v"), 1, "no JOB");
  expect_usage(ARGV("j", "--quiet=1"), 2, "takes no value");
  expect_usage(ARGV("j", "--mem-limit", "lots"), 3, "--mem-limit");
}

static void test_resume_alone(void) {
  /* --resume without --journal is for jobs with their own log (cmd --joblog). */
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(parse(&o, ARGV("j", "--resume"), 0, &err), 0);
  CU_ASSERT_EQUAL(o.resume, 1);
  CU_ASSERT_PTR_NULL(o.journal);
  mpc__opts_free(&o);
  mpc_buf_free(&err);
}

static void test_sizes(void) {
  size_t v;
  CU_ASSERT_EQUAL(mpc__parse_size("512M", &v), 0);
  CU_ASSERT_EQUAL(v, 512u << 20);
  CU_ASSERT_EQUAL(mpc__parse_size("2G", &v), 0);
  CU_ASSERT_EQUAL(v, (size_t)2 << 30);
  CU_ASSERT_EQUAL(mpc__parse_size("100", &v), 0);
  CU_ASSERT_EQUAL(v, 100);
  CU_ASSERT_EQUAL(mpc__parse_size("1.5k", &v), 0);
  CU_ASSERT_EQUAL(v, 1536);
  CU_ASSERT_EQUAL(mpc__parse_size("x", &v), MPC_EUSAGE);
  CU_ASSERT_EQUAL(mpc__parse_size("1Q", &v), MPC_EUSAGE);
}

static void test_durations(void) {
  double v;
  CU_ASSERT(mpc__parse_duration("90", &v) == 0 && v == 90);
  CU_ASSERT(mpc__parse_duration("2.5", &v) == 0 && v == 2.5);
  CU_ASSERT(mpc__parse_duration("1:30", &v) == 0 && v == 90);
  CU_ASSERT(mpc__parse_duration("01:00:05", &v) == 0 && v == 3605);
  CU_ASSERT(mpc__parse_duration("2-00:00:00", &v) == 0 && v == 172800);
  CU_ASSERT(mpc__parse_duration("1-12", &v) == 0 && v == 129600);
  CU_ASSERT(mpc__parse_duration("1-0:30", &v) == 0 && v == 88200);
  static const char *bad[] = {"", "x", "1:2:3:4", "-5", "1:", ":5", "1-", "a-1", "1:x", NULL};
  for (int i = 0; bad[i]; i++)
    CU_ASSERT_EQUAL(mpc__parse_duration(bad[i], &v), MPC_EUSAGE);
}

static void test_registry(void) {
  const mpc_job_t *const *l;
  size_t n = mpc__jobs_builtin(&l);
  CU_ASSERT(n >= 1);
  const mpc_job_t *c = mpc__job_find("chaos");
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_STRING_EQUAL(c->name, "chaos");
  CU_ASSERT_PTR_NULL(mpc__job_find("no-such-job"));
  mpc__loaded_job_t lj;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__job_load(&lj, "chaos", &err), 0);
  CU_ASSERT_PTR_EQUAL(lj.job, c);
  mpc__job_unload(&lj);
  CU_ASSERT_EQUAL(mpc__job_load(&lj, "nope", &err), MPC_ENOTFOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "unknown job 'nope'"));
  mpc_buf_clear(&err);
  CU_ASSERT_EQUAL(mpc__job_load(&lj, "./does-not-exist.so", &err), MPC_ENOTFOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "does-not-exist.so"));
  mpc_buf_clear(&err);
  /* A shared object without the entry symbol is refused. */
  CU_ASSERT_EQUAL(mpc__job_load(&lj, "/lib/x86_64-linux-gnu/libm.so.6", &err), MPC_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), MPC_JOB_ENTRY_SYMBOL));
  mpc_buf_free(&err);
}

MPC_TESTS(cli) = {
    {"durations: seconds, MM:SS, HH:MM:SS, D-HH:MM:SS", test_durations},
    {"global options before and after JOB", test_globals_anywhere},
    {"-- ends global options", test_double_dash},
    {"--halt and --schedule", test_halt_schedule},
    {"bad options name the problem", test_errors},
    {"--resume alone is passed to the job", test_resume_alone},
    {"sizes", test_sizes},
    {"job registry and loading", test_registry},
    CU_TEST_INFO_NULL,
};
