/* Internal: set the identity that mpc_job_rank()/mpc_job_host() report. */
#ifndef MPC_CORE_IDENTITY_H
#define MPC_CORE_IDENTITY_H
void mpc__identity_set(int rank, const char *host);
/* Called in a new worker process with its slot. */
void mpc__identity_set_worker(int index);
#endif
