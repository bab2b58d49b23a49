/* The chaos job: tasks that sleep, burn CPU, fail, crash, exit or hang. */
#ifndef MPC_JOBS_CHAOS_H
#define MPC_JOBS_CHAOS_H
#include <stdint.h>

#include "mpc/job.h"

extern const mpc_job_t mpc_job_chaos;

/* What task i does, a pure function of (seed, i) and the probabilities. */
typedef enum {
  CHAOS_OK = 0,
  CHAOS_FAIL,  /* returns an error */
  CHAOS_SEGV,  /* dereferences NULL */
  CHAOS_EXIT,  /* exit(3) */
  CHAOS_HANG,  /* sleeps forever (needs --timeout) */
} chaos_fate_t;

typedef struct chaos_params {
  uint64_t seed;
  double p_fail, p_segv, p_exit, p_hang, p_flaky;
} chaos_params_t;

chaos_fate_t chaos_fate(const chaos_params_t *p, uint64_t i);
/* Does task i fail on its first attempt only (--flaky)? */
int chaos_flaky(const chaos_params_t *p, uint64_t i);
/* Task i's output: `size` deterministic bytes (a function of seed and i). */
void chaos_output(uint64_t seed, uint64_t i, unsigned char *out, size_t size);
#endif
