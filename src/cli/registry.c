/* Job registry: built-in jobs placed in the "mpc_jobs" section by
 * MPC_JOB_BUILTIN(), and user jobs loaded from shared objects. */
#include "cli/opts.h"

#include <dlfcn.h>
#include <string.h>

/* Defined by the linker when at least one built-in job is linked in. */
extern const mpc_job_t *const __start_mpc_jobs[] __attribute__((weak));
extern const mpc_job_t *const __stop_mpc_jobs[] __attribute__((weak));

size_t mpc__jobs_builtin(const mpc_job_t *const **list) {
  if (!__start_mpc_jobs || !__stop_mpc_jobs) {
    *list = NULL;
    return 0;
  }
  *list = __start_mpc_jobs;
  return (size_t)(__stop_mpc_jobs - __start_mpc_jobs);
}

const mpc_job_t *mpc__job_find(const char *name) {
  const mpc_job_t *const *l;
  size_t n = mpc__jobs_builtin(&l);
  for (size_t i = 0; i < n; i++)
    if (l[i] && l[i]->name && !strcmp(l[i]->name, name))
      return l[i];
  return NULL;
}

static int check_table(const mpc_job_t *j, const char *spec, mpc_buf_t *err) {
  if (j->abi != MPC_JOB_ABI_VERSION) {
    mpc__msg(err,
                         "%s: job ABI version %u, this mpc-run needs %d "
                         "(rebuild the job against these headers)",
                         spec, (unsigned)j->abi, MPC_JOB_ABI_VERSION);
    return MPC_EABI;
  }
  if (!j->name || !j->init || !j->next || !j->run || !j->gather) {
    mpc__msg(err,
                         "%s: job table lacks a name or one of init, next, "
                         "run, gather",
                         spec);
    return MPC_EINVAL;
  }
  return 0;
}

int mpc__job_load(mpc__loaded_job_t *lj, const char *spec, mpc_buf_t *err) {
  lj->job = NULL;
  lj->dl = NULL;
  size_t n = strlen(spec);
  int is_path = strchr(spec, '/') != NULL || (n > 3 && !strcmp(spec + n - 3, ".so"));
  if (!is_path) {
    const mpc_job_t *j = mpc__job_find(spec);
    if (!j) {
      mpc__msg(err, "unknown job '%s' (mpc-run --list shows the "
                                "built-in jobs; a user job is given by path, "
                                "e.g. ./job.so)", spec);
      return MPC_ENOTFOUND;
    }
    int rc = check_table(j, spec, err);
    if (rc)
      return rc;
    lj->job = j;
    return 0;
  }
  void *h = dlopen(spec, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    mpc__msg(err, "cannot load job '%s': %s", spec, e ? e : "?");
    return MPC_ENOTFOUND;
  }
  mpc_job_entry_fn entry;
  *(void **)&entry = dlsym(h, MPC_JOB_ENTRY_SYMBOL);
  if (!entry) {
    mpc__msg(err, "%s: no '%s' symbol (export the job with "
                              "MPC_JOB_EXPORT)", spec, MPC_JOB_ENTRY_SYMBOL);
    dlclose(h);
    return MPC_EINVAL;
  }
  const mpc_job_t *j = entry();
  int rc = j ? check_table(j, spec, err) : MPC_EINVAL;
  if (!j)
    mpc__msg(err, "%s: %s() returned NULL", spec, MPC_JOB_ENTRY_SYMBOL);
  if (rc) {
    dlclose(h);
    return rc;
  }
  lj->job = j;
  lj->dl = h;
  return 0;
}

void mpc__job_unload(mpc__loaded_job_t *lj) {
  if (lj->dl)
    dlclose(lj->dl);
  lj->dl = NULL;
  lj->job = NULL;
}
