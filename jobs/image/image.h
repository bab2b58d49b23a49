/* The image job's table, exposed for the unit tests (test_image*.c). */
#ifndef MPC_JOBS_IMAGE_H
#define MPC_JOBS_IMAGE_H
#include "mpc/job.h"
extern const mpc_job_t mpc_job_image;
#endif
