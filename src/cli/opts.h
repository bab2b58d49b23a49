/* Internal: mpc-run's global options and the job registry. */
#ifndef MPC_CLI_OPTS_H
#define MPC_CLI_OPTS_H

#include <stddef.h>

#include "mpc/buf.h"
#include "mpc/job.h"
#include "mpi/farm.h"


typedef struct mpc__opts {
  int workers;         /* -w/--workers; 0: automatic */
  double timeout;      /* --timeout seconds; 0: none */
  int retries;         /* --retries (default 1) */
  mpc__halt_t halt;    /* --halt never|soon|now[,fail=N|fail=P%] */
  long halt_fail;      /* failures that trigger it (count) */
  double halt_pct;     /* or a percentage (> 0) of finished tasks */
  const char *journal; /* --journal FILE */
  int resume;          /* --resume */
  int ordered;         /* --ordered, -k/--keep-order */
  mpc__sched_t sched;  /* --schedule */
  int progress;        /* -1 auto (terminal), 0 --no-progress, 1 --progress */
  const char *json;    /* --json FILE: summary as JSON */
  const char *timeline;/* --timeline FILE: text, or a PNG Gantt chart (*.png) */
  const char *trace;   /* --trace FILE: Chrome trace-event JSON of every attempt */
  int debug_protocol;  /* --debug-protocol: log protocol traffic on stderr */
  int no_speculate;    /* --no-speculate: no copies of stragglers */
  double grace;        /* --grace S: on SIGINT, let running tasks finish this long */
  double walltime;     /* --walltime T (seconds): the run must end by then */
  double heartbeat;    /* --heartbeat S: a rank silent this long is lost (default 60) */
  size_t mem_limit;    /* --mem-limit BYTES[KMG] a task may add to its worker */
  int verbose, quiet, help, list, version;
  const char *job;     /* JOB (name or path), NULL when absent */
  int job_argc;        /* job argv: JOB then its arguments, globals removed */
  char **job_argv;     /* malloc'd array (strings borrowed from argv), NULL-terminated */
} mpc__opts_t;

/* Parse argv.  On MPC_EUSAGE, err names the problem.  Free with mpc__opts_free. */
MPC_MUST_CHECK int mpc__opts_parse(mpc__opts_t *o, int argc, char **argv,
                                   mpc_buf_t *err);
void mpc__opts_free(mpc__opts_t *o);
/* Short usage text of mpc-run itself. */
const char *mpc__usage(void);
/* Parse "90", "1:30", "01:00:00", "2-00:00:00" (Slurm's forms; a plain
 * number is seconds); MPC_EUSAGE when malformed. */
MPC_MUST_CHECK int mpc__parse_duration(const char *s, double *out);
/* Parse "10", "1.5k", "2G" style sizes; MPC_EUSAGE when malformed. */
MPC_MUST_CHECK int mpc__parse_size(const char *s, size_t *out);

/* ---- job registry ---------------------------------------------------------- */
/* Built-in jobs (the "mpc_jobs" section), in link order. */
size_t mpc__jobs_builtin(const mpc_job_t *const **list);
const mpc_job_t *mpc__job_find(const char *name);

/* A loaded job: built-in or from a shared object. */
typedef struct mpc__loaded_job {
  const mpc_job_t *job;
  void *dl; /* dlopen handle or NULL */
} mpc__loaded_job_t;

/* Find `spec`: a built-in name, or a path to a shared object (contains '/'
 * or ends in ".so").  Checks the ABI.  On error, err says why:
 * MPC_ENOTFOUND (unknown job), MPC_EABI, MPC_EINVAL (bad table). */
MPC_MUST_CHECK int mpc__job_load(mpc__loaded_job_t *lj, const char *spec,
                                 mpc_buf_t *err);
void mpc__job_unload(mpc__loaded_job_t *lj);

#endif
