/* mpc-run: run a job over a pool of forked workers on every MPI rank.
 *
 * Everything that can be decided from argv (options, the job, the job's own
 * arguments) is decided before MPI_Init, identically on every rank, so a usage
 * error makes every rank exit 2 without any of them waiting in MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/opts.h"
#include "mpc/log.h"
#include "mpi/farm.h"

#ifndef MPC_VERSION
#define MPC_VERSION "0.1.0"
#endif

static void print_list(void) {
  const mpc_job_t *const *l;
  size_t n = mpc__jobs_builtin(&l);
  printf("Built-in jobs:\n");
  for (size_t i = 0; i < n; i++)
    if (l[i])
      printf("  %-10s %s\n", l[i]->name, l[i]->brief ? l[i]->brief : "");
  printf("A user job is a shared object given by path: mpc-run ./job.so ARGS\n");
}

int main(int argc, char **argv) {
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  mpc__loaded_job_t lj = {0};
  mpc__farm_t *farm = NULL;
  int code = 2;
  /* Only one rank talks about usage errors (all ranks find the same ones). */
  int talk = mpc__env_rank() == 0;
  int rc = mpc__opts_parse(&o, argc, argv, &err);
  if (rc) {
    if (talk)
      fprintf(stderr, "mpc-run: %s\n%s", mpc_buf_str(&err), mpc__usage());
    goto out;
  }
  if (o.debug_protocol && mpc_log_level() < MPC_LOG_INFO)
    mpc_log_set_level(MPC_LOG_INFO);
  if (o.version && !o.job) {
    if (talk)
      printf("mpc-run %s (job ABI %d)\n", MPC_VERSION, MPC_JOB_ABI_VERSION);
    code = 0;
    goto out;
  }
  if (o.list) {
    if (talk)
      print_list();
    code = 0;
    goto out;
  }
  if (!o.job) {
    if (talk)
      fputs(mpc__usage(), stdout);
    code = 0;
    goto out;
  }
  if ((rc = mpc__job_load(&lj, o.job, &err))) {
    if (talk)
      fprintf(stderr, "mpc-run: %s\n%s", mpc_buf_str(&err),
              rc == MPC_ENOTFOUND && !strchr(o.job, '/') ? mpc__usage() : "");
    goto out;
  }
  if (o.help) {
    if (talk)
      printf("%s: %s\nusage: mpc-run [mpc-run options] %s\n",
             lj.job->name, lj.job->brief ? lj.job->brief : "",
             lj.job->usage ? lj.job->usage : lj.job->name);
    code = 0;
    goto out;
  }
  mpc__farm_cfg_t cfg = {
      .job = lj.job,
      .job_name = o.job,
      .workers = o.workers,
      .timeout = o.timeout,
      .retries = o.retries,
      .halt = o.halt,
      .halt_fail = o.halt_fail,
      .halt_pct = o.halt_pct,
      .journal = o.journal,
      .resume = o.resume,
      .ordered = o.ordered,
      .sched = o.sched,
      .progress = o.progress,
      .json = o.json,
      .timeline = o.timeline,
      .trace = o.trace,
      .debug_protocol = o.debug_protocol,
      .no_speculate = o.no_speculate,
      .grace = o.grace,
      .walltime = o.walltime,
      .heartbeat = o.heartbeat,
      .mem_limit = o.mem_limit,
      .verbose = o.verbose,
      .quiet = o.quiet,
  };
  if ((rc = mpc__farm_new(&farm, &cfg, o.job_argc, o.job_argv, &err))) {
    if (talk) {
      fprintf(stderr, "mpc-run: %s\n", mpc_buf_str(&err));
      if (rc == MPC_EUSAGE)
        fprintf(stderr, "usage: mpc-run [mpc-run options] %s\n",
                lj.job->usage ? lj.job->usage : lj.job->name);
    }
    goto out;
  }
  code = mpc__farm_run(farm);
out:
  mpc__farm_free(farm);
  mpc__job_unload(&lj);
  mpc__opts_free(&o);
  mpc_buf_free(&err);
  fflush(stdout);
  return code;
}
