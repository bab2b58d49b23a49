/* A complete mpc-run user job: the sum of the squares of 1..N, one task each.
 *   cc -shared -fPIC squares.c -o squares.so $(pkg-config --cflags --libs mpcrun)
 *   mpirun -n 2 mpc-run ./squares.so 1000 */
#include <mpc/job.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { long long n, next, sum, done; } st_t;

static int init(int argc, char **argv, const mpc_job_env_t *env, void **state, mpc_buf_t *err) {
  st_t *s = *state = calloc(1, sizeof *s);           /* every rank, before the workers fork */
  if (!s) return MPC_ENOMEM;
  if ((s->n = argc > 1 ? atoll(argv[1]) : 100) > 0) return 0;
  return mpc_buf_printf(err, "squares: N must be a positive integer") ? MPC_ENOMEM : MPC_EUSAGE;
}
static int next(void *state, mpc_buf_t *in, mpc_buf_t *key) {   /* master; key empty: hash of input */
  st_t *s = state;
  if (s->next++ >= s->n) return 0;
  return mpc_buf_append(in, &s->next, sizeof s->next) ? MPC_ENOMEM : 1;
}
static int run(void *state, const void *in, size_t len, mpc_buf_t *out) {   /* in a worker */
  long long x;
  if (len != sizeof x) return mpc_task_fail(out, 1, "bad input of %zu bytes", len);
  memcpy(&x, in, sizeof x);
  x *= x;
  return mpc_buf_append(out, &x, sizeof x);
}
static int gather(void *state, const mpc_job_result_t *r) {   /* master, one per task */
  st_t *s = state;
  long long y;
  if (r->status != MPC_TASK_OK || r->output_len != sizeof y) return 0;
  memcpy(&y, r->output, sizeof y);
  s->sum += y, s->done++;
  return 0;
}
static int finish(void *state, const mpc_job_report_t *rep) {
  st_t *s = state;
  printf("squares: n=%lld done=%lld sum=%lld\n", s->n, s->done, s->sum);
  return 0;
}
static const mpc_job_t squares = {.abi = MPC_JOB_ABI_VERSION, .name = "squares", .usage = "squares N",
    .init = init, .next = next, .run = run, .gather = gather, .finish = finish, .fini = free};
MPC_JOB_EXPORT(squares)
