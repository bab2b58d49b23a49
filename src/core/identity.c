/* Who a worker serves: rank and host, set by mpc-run before workers fork. */
#include <string.h>
#include <unistd.h>

#include "mpc/job.h"
#include "mpc/pool.h"
#include "core/identity.h"

static int g_rank = 0;
static int g_worker = -1;
static char g_host[256];

void mpc__identity_set(int rank, const char *host) {
  g_rank = rank;
  if (host) {
    strncpy(g_host, host, sizeof g_host - 1);
    g_host[sizeof g_host - 1] = 0;
  }
}

int mpc_job_rank(void) { return g_rank; }

void mpc__identity_set_worker(int index) { g_worker = index; }

int mpc_worker_index(void) { return g_worker; }

const char *mpc_job_host(void) {
  if (!g_host[0] && gethostname(g_host, sizeof g_host - 1) != 0)
    strcpy(g_host, "localhost");
  return g_host;
}
