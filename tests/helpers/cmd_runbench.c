/* Throughput of the cmd job's own task path without mpc-run: the master's
 * next() builds every task, then P forked "workers" each call run() (the
 * job's worker callback: posix_spawn, capture, result record) on every P-th
 * task, and the parent hands the records to gather() in task order (the
 * output goes to stdout as mpc-run would print it).  This is the ceiling
 * mpc-run can reach for this job; scripts/bench/cmd uses it while mpc-run
 * does not exist yet.
 *
 *   cmd_runbench P JOB-ARGS...       e.g.  cmd_runbench 2 'echo {}' :::: args
 *
 * Prints "runfn tasks=N seconds=S tps=R" on stderr.  MPC_RUNBENCH_RESUME=1
 * sets env.resume (as mpc-run --resume would). */
#include "../../jobs/cmd/cmd.c"
#include "../../jobs/cmd/joblog.c"
#include "../../jobs/cmd/spawn.c"
#include "../../jobs/cmd/template.c"

#include "core/identity.h"

#include <sys/wait.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int read_full(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t r = read(fd, c, n);
    if (r <= 0)
      return -1;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cmd_runbench P JOB-ARGS...\n");
    return 2;
  }
  int P = atoi(argv[1]);
  argv[1] = "cmd";
  const char *res = getenv("MPC_RUNBENCH_RESUME");
  mpc_job_env_t env = {.rank = 0, .nranks = 1, .workers = P,
                       .resume = res && strcmp(res, "1") == 0};
  mpc_buf_t err = MPC_BUF_INIT, key = MPC_BUF_INIT;
  void *st = NULL;
  int rc = mpc_job_cmd.init(argc - 1, argv + 1, &env, &st, &err);
  if (rc) {
    fprintf(stderr, "cmd_runbench: %s\n", mpc_buf_str(&err));
    return 2;
  }
  size_t n = 0, cap = 1024;
  mpc_buf_t *in = calloc(cap, sizeof *in);
  for (;;) {
    if (n == cap) {
      in = realloc(in, 2 * cap * sizeof *in);
      memset(in + cap, 0, cap * sizeof *in);
      cap *= 2;
    }
    mpc_buf_clear(&key);
    rc = mpc_job_cmd.next(st, &in[n], &key);
    if (rc <= 0)
      break;
    n++;
  }
  double t0 = now_s();
  int pipes[64][2];
  pid_t pids[64];
  for (int w = 0; w < P && w < 64; w++) {
    if (pipe(pipes[w]) != 0)
      return 2;
    fflush(NULL);
    pids[w] = fork();
    if (pids[w] == 0) {
      close(pipes[w][0]);
      mpc__identity_set_worker(w);
      mpc_buf_t out = MPC_BUF_INIT;
      for (size_t i = (size_t)w; i < n; i += (size_t)P) {
        mpc_buf_clear(&out);
        int code = mpc_job_cmd.run(st, in[i].data, in[i].len, &out);
        uint64_t len = out.len;
        if (write(pipes[w][1], &code, sizeof code) != sizeof code ||
            write(pipes[w][1], &len, sizeof len) != sizeof len ||
            write_all(pipes[w][1], out.data, out.len) != 0)
          _exit(3);
      }
      _exit(0);
    }
    close(pipes[w][1]);
  }
  /* Gather in task order: task i came from worker i % P. */
  mpc_buf_t out = MPC_BUF_INIT;
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    int w = (int)(i % (size_t)P), code;
    uint64_t len;
    if (read_full(pipes[w][0], &code, sizeof code) || read_full(pipes[w][0], &len, sizeof len))
      return 3;
    mpc_buf_clear(&out);
    if (mpc_buf_reserve(&out, len) || read_full(pipes[w][0], out.data, len))
      return 3;
    out.len = len;
    mpc_job_result_t r = {.seq = i, .key = "", .input = in[i].data, .input_len = in[i].len,
                          .status = code ? MPC_TASK_ERROR : MPC_TASK_OK, .code = code,
                          .output = out.data, .output_len = out.len, .attempts = 1,
                          .worker = w, .host = "localhost"};
    failed += code != 0;
    if (mpc_job_cmd.gather(st, &r) != 0)
      return 3;
  }
  for (int w = 0; w < P; w++)
    waitpid(pids[w], NULL, 0);
  double s = now_s() - t0;
  mpc_job_report_t rep = {.tasks = n, .ok = n - failed, .failed = failed, .wall = s};
  mpc_job_cmd.finish(st, &rep);
  mpc_job_cmd.fini(st);
  fprintf(stderr, "runfn tasks=%zu seconds=%.3f tps=%.1f\n", n, s, n / s);
  return failed ? 1 : 0;
}
