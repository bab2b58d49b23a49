/* squares.c: a complete mpc-run user job, the sum of the squares of 1..N (docs/jobs.md). */
#include <mpc/job.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static long long n, sent, sum; /* every process has its own; the master's count */
static long long val(const void *p) { long long v; memcpy(&v, p, sizeof v); return v; }
static int init(int argc, char **argv, const mpc_job_env_t *env, void **state, mpc_buf_t *err) {
  if (argc == 2 && (n = atoll(argv[1])) > 0) return 0; /* on every rank, before workers fork */
  return mpc_buf_printf(err, "squares: N must be a positive integer") ? MPC_ENOMEM : MPC_EUSAGE;
}
static int next(void *state, mpc_buf_t *in, mpc_buf_t *key) { /* master: 1 a task, 0 no more */
  if (++sent > n) return 0;
  return mpc_buf_append(in, &sent, sizeof sent) ? MPC_ENOMEM : 1; /* key left empty: a hash */
}
static int run(void *state, const void *in, size_t len, mpc_buf_t *out) { /* in a worker */
  if (len != sizeof(long long)) return mpc_task_fail(out, MPC_EINVAL, "input of %zu bytes", len);
  long long x = val(in) * val(in);
  return mpc_buf_append(out, &x, sizeof x);
}
static int gather(void *state, const mpc_job_result_t *r) { /* master, once per task */
  if (r->status == MPC_TASK_OK && r->output_len == sizeof(long long)) sum += val(r->output);
  return 0; /* a failed task adds nothing; the summary and the exit code report it */
}
static int finish(void *state, const mpc_job_report_t *rep) {
  return printf("squares: n=%lld sum=%lld\n", n, sum) < 0 ? MPC_EIO : 0;
}
static const mpc_job_t squares = {.abi = MPC_JOB_ABI_VERSION, .name = "squares", .usage = "squares N",
    .init = init, .next = next, .run = run, .gather = gather, .finish = finish};
MPC_JOB_EXPORT(squares)
