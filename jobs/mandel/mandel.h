/* The mandel job's table and its pixel kernel, exposed for the unit tests. */
#ifndef MPC_JOBS_MANDEL_H
#define MPC_JOBS_MANDEL_H
#include <stdint.h>
#include "mpc/job.h"
extern const mpc_job_t mpc_job_mandel;
#endif
