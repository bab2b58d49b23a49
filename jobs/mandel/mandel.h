/* The mandel job's table, exposed for the unit tests (test_mandel.c). */
#ifndef MPC_JOBS_MANDEL_H
#define MPC_JOBS_MANDEL_H
#include "mpc/job.h"
#include <stdint.h>
extern const mpc_job_t mpc_job_mandel;
#endif
