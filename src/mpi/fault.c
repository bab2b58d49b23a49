/* MPC_FAULT: failures on demand, inside the real code paths (see fault.h). */
#include "mpi/fault.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpc/pool.h"
#include "mpi/farm.h"

#define OOM_CAP ((size_t)1 << 32) /* oom without a limit stops here */

static const struct {
  const char *name;
  mpc__fault_kind_t kind;
} kinds[] = {
    {"segv", MPC__F_SEGV}, {"abort", MPC__F_ABORT}, {"exit", MPC__F_EXIT},
    {"fail", MPC__F_FAIL}, {"hang", MPC__F_HANG},   {"oom", MPC__F_OOM},
    {"delay", MPC__F_DELAY}, {"kill", MPC__F_KILL}, {"stop", MPC__F_STOP},
};

static int is_rank_kind(mpc__fault_kind_t k) {
  return k == MPC__F_KILL || k == MPC__F_STOP;
}

/* s[0..n) as a C string in tmp (32 bytes); -1 when empty or too long. */
static int cstr(const char *s, size_t n, char tmp[32]) {
  if (n == 0 || n >= 32)
    return -1;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  return 0;
}

static int parse_long(const char *s, size_t n, long lo, long hi, long *out) {
  char tmp[32];
  if (cstr(s, n, tmp))
    return -1;
  char *end;
  errno = 0;
  long v = strtol(tmp, &end, 10);
  if (errno || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

/* "2", "2s", "1.5", "250ms" */
static int parse_secs(const char *s, size_t n, double *out) {
  char tmp[32];
  if (cstr(s, n, tmp))
    return -1;
  char *end;
  errno = 0;
  double v = strtod(tmp, &end);
  if (errno || end == tmp || v < 0 || v > 1e7)
    return -1;
  if (!strcmp(end, "ms"))
    v /= 1000;
  else if (*end && strcmp(end, "s"))
    return -1;
  *out = v;
  return 0;
}

static int parse_item(const char *s, size_t n, mpc__fault_t *f, mpc_buf_t *err) {
  memset(f, 0, sizeof *f);
  f->task = -1;
  f->rank = f->worker = -1;
  f->at = -1;
  const char *end = s + n, *at = memchr(s, '@', n);
  const char *head_end = at ? at : end;
  const char *colon = memchr(s, ':', (size_t)(head_end - s));
  size_t klen = (size_t)((colon ? colon : head_end) - s);
  size_t k;
  for (k = 0; k < sizeof kinds / sizeof *kinds; k++)
    if (strlen(kinds[k].name) == klen && !memcmp(kinds[k].name, s, klen))
      break;
  if (k == sizeof kinds / sizeof *kinds) {
    mpc__msg(err, "unknown kind '%.*s' (segv, abort, exit, fail, hang, "
                        "oom, delay, kill, stop)", (int)klen, s);
    return MPC_EUSAGE;
  }
  f->kind = kinds[k].kind;
  f->code = f->kind == MPC__F_EXIT ? 3 : 1;
  /* Selectors. */
  for (const char *p = colon; p && p < head_end;) {
    const char *q = p + 1;
    const char *next = memchr(q, ':', (size_t)(head_end - q));
    const char *se = next ? next : head_end;
    const char *eq = memchr(q, '=', (size_t)(se - q));
    long v;
    if (!eq) {
      mpc__msg(err, "'%.*s' is not SELECTOR=N", (int)(se - q), q);
      return MPC_EUSAGE;
    }
    size_t nl = (size_t)(eq - q), vl = (size_t)(se - eq - 1);
    if (nl == 4 && !memcmp(q, "task", 4) &&
        !parse_long(eq + 1, vl, 0, 0x7fffffffffffffffL, &v))
      f->task = v;
    else if (nl == 4 && !memcmp(q, "rank", 4) && !parse_long(eq + 1, vl, 0, 1 << 24, &v))
      f->rank = (int)v;
    else if (nl == 6 && !memcmp(q, "worker", 6) &&
             !parse_long(eq + 1, vl, 0, 1 << 24, &v))
      f->worker = (int)v;
    else if (nl == 4 && !memcmp(q, "code", 4) && !parse_long(eq + 1, vl, 1, 255, &v))
      f->code = (int)v;
    else {
      mpc__msg(err, "bad selector '%.*s' (task=N, rank=R, worker=W, code=C)",
                     (int)(se - q), q);
      return MPC_EUSAGE;
    }
    p = next;
  }
  if (at && parse_secs(at + 1, (size_t)(end - at - 1), &f->at)) {
    mpc__msg(err, "bad time '%.*s' (seconds, e.g. 2s or 250ms)",
                   (int)(end - at - 1), at + 1);
    return MPC_EUSAGE;
  }
  if (is_rank_kind(f->kind)) {
    if (f->rank < 0 || f->at < 0 || f->task >= 0 || f->worker >= 0) {
      mpc__msg(err, "%s needs rank=R@SECONDS and nothing else", kinds[k].name);
      return MPC_EUSAGE;
    }
  } else if (f->kind == MPC__F_DELAY) {
    if (f->at < 0) {
      mpc__msg(err, "delay needs @SECONDS");
      return MPC_EUSAGE;
    }
  } else if (f->at >= 0) {
    mpc__msg(err, "%s takes no @time", kinds[k].name);
    return MPC_EUSAGE;
  }
  return 0;
}

int mpc__fault_parse(const char *spec, mpc__faults_t *out, mpc_buf_t *err) {
  memset(out, 0, sizeof *out);
  if (!spec || !*spec)
    return 0;
  size_t cap = 1;
  for (const char *p = spec; *p; p++)
    cap += *p == ',';
  out->v = calloc(cap, sizeof *out->v);
  if (!out->v)
    return MPC_ENOMEM;
  for (const char *p = spec; *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n) {
      int rc = parse_item(p, n, &out->v[out->n], err);
      if (rc) {
        mpc_buf_t m = MPC_BUF_INIT;
        mpc__msg(&m, "MPC_FAULT item '%.*s': %s", (int)n, p, mpc_buf_str(err));
        mpc_buf_clear(err);
        mpc__msg(err, "%s", mpc_buf_str(&m));
        mpc_buf_free(&m);
        mpc__fault_free(out);
        return rc;
      }
      out->nrank += is_rank_kind(out->v[out->n].kind);
      out->n++;
    }
    p += n + (c != NULL);
  }
  return 0;
}

void mpc__fault_free(mpc__faults_t *fs) {
  free(fs->v);
  memset(fs, 0, sizeof *fs);
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

__attribute__((noreturn)) static void eat_memory(void) {
  size_t step = (size_t)1 << 20, total = 0;
  char **p = NULL;
  for (;;) {
    char **q = total < OOM_CAP ? malloc(step) : NULL;
    if (!q)
      break;
    memset(q, 0xa5, step); /* touch it: make it resident */
    *q = (char *)p;
    p = q;
    total += step;
  }
  /* What an unchecked malloc() does next: write through NULL (errno is still
   * ENOMEM, which tells the pool why). */
  if (total < OOM_CAP)
    errno = ENOMEM;
  volatile char *volatile nul = NULL;
  *nul = 1;
  abort();
}

int mpc__fault_task(const mpc__faults_t *fs, int rank, int worker,
                    uint64_t task, mpc_buf_t *out) {
  for (size_t i = 0; i < fs->n; i++) {
    const mpc__fault_t *f = &fs->v[i];
    if (is_rank_kind(f->kind) || (f->task >= 0 && (uint64_t)f->task != task) ||
        (f->rank >= 0 && f->rank != rank) || (f->worker >= 0 && f->worker != worker))
      continue;
    switch (f->kind) {
    case MPC__F_SEGV: {
      volatile int *volatile nul = NULL;
      *nul = 1;
      raise(SIGSEGV);
      break;
    }
    case MPC__F_ABORT:
      abort();
    case MPC__F_EXIT:
      _exit(f->code);
    case MPC__F_FAIL:
      return mpc_task_fail(out, f->code, "MPC_FAULT: task %llu fails on purpose",
                           (unsigned long long)task);
    case MPC__F_HANG:
      for (;;)
        pause();
    case MPC__F_OOM:
      eat_memory();
    case MPC__F_DELAY:
      sleep_s(f->at);
      break;
    default:
      break;
    }
  }
  return 0;
}

void mpc__fault_rank(mpc__faults_t *fs, int rank, double elapsed) {
  for (size_t i = 0; i < fs->n; i++) {
    mpc__fault_t *f = &fs->v[i];
    if (!is_rank_kind(f->kind) || f->fired || f->rank != rank || elapsed < f->at)
      continue;
    f->fired = 1;
    raise(f->kind == MPC__F_KILL ? SIGKILL : SIGSTOP);
  }
}
