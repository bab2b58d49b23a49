/* Serial, in-process job driver for job unit tests (see test.h). */
#include "test.h"

#include <stdio.h>
#include <string.h>

int mpct_job_run(const mpc_job_t *job, int argc, char **argv,
                 mpc_job_report_t *report, mpc_buf_t *err) {
  mpc_job_env_t env = {.rank = 0, .nranks = 1, .workers = 1};
  mpc_job_report_t rep = {0};
  mpc_buf_t ebuf = MPC_BUF_INIT, in = MPC_BUF_INIT, key = MPC_BUF_INIT,
            out = MPC_BUF_INIT;
  void *state = NULL;
  double t0 = mpct_now();
  int rc = job->init(argc, argv, &env, &state, &ebuf);
  if (rc < 0)
    goto done_noinit;
  for (uint64_t seq = 0;; seq++) {
    mpc_buf_clear(&in);
    mpc_buf_clear(&key);
    rc = job->next(state, &in, &key);
    if (rc < 0) {
      if (mpc_buf_set(&ebuf, key.data, key.len) != 0)
        mpc_buf_clear(&ebuf);
      goto done;
    }
    if (rc == 0)
      break;
    mpc_buf_clear(&out);
    double s = mpct_now();
    int code = job->run(state, in.data, in.len, &out);
    mpc_job_result_t r = {
        .seq = seq,
        .key = mpc_buf_str(&key),
        .input = in.data,
        .input_len = in.len,
        .status = code ? MPC_TASK_ERROR : MPC_TASK_OK,
        .code = code,
        .output = out.data,
        .output_len = out.len,
        .attempts = 1,
        .rank = 0,
        .worker = 0,
        .host = "localhost",
        .pid = 0,
        .seconds = mpct_now() - s,
    };
    rep.tasks++;
    if (code)
      rep.failed++;
    else
      rep.ok++;
    rc = job->gather(state, &r);
    if (rc < 0)
      goto done;
  }
  rep.wall = mpct_now() - t0;
  rc = job->finish(state, &rep);
done:
  if (job->fini)
    job->fini(state);
done_noinit:
  if (report)
    *report = rep;
  if (err && mpc_buf_set(err, ebuf.data, ebuf.len) != 0)
    mpc_buf_clear(err);
  mpc_buf_free(&ebuf);
  mpc_buf_free(&in);
  mpc_buf_free(&key);
  mpc_buf_free(&out);
  return rc < 0 ? rc : 0;
}
