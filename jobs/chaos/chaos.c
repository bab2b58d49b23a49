/* chaos: a job for tests and demos.  Task i sleeps, burns CPU, then does what
 * its fate says: succeed (output: --size deterministic bytes), fail, segfault,
 * exit(3) or hang.  Fates are a pure function of --seed and i, so runs are
 * comparable and tests can predict exactly which tasks fail.  finish() prints
 * the counts and a checksum of all outputs in task order. */
#include "chaos.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpc/pool.h"

typedef struct chaos {
  chaos_params_t p;
  uint64_t tasks, next;
  double sleep_ms, cpu_ms;
  size_t size;
  char *mark; /* --mark DIR for --flaky */
  int list;   /* --list-fates: print each task's fate and stop */
  /* master: which tasks were gathered (a bit each), and the checksum: a sum
   * over tasks of a hash of (index, outcome), so it does not depend on the
   * order results come in and needs no per-task memory but the bit */
  uint64_t *seen;
  uint64_t sum;
  uint64_t n_ok, n_bad, n_dup, n_resumed, by_status[8];
  int ordered;          /* --ordered: check that results come in task order */
  uint64_t next_seq, n_disorder;
  uint64_t h_ok;   /* hash of status OK, where every OK task's hash starts */
  uint64_t seed_p; /* seed * FNV prime: the part of out_word() common to all tasks */
} chaos_t;

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static double unit(uint64_t seed, uint64_t i, uint64_t salt) {
  uint64_t h = splitmix(splitmix(seed ^ salt) ^ splitmix(i));
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

chaos_fate_t chaos_fate(const chaos_params_t *p, uint64_t i) {
  if (p->p_fail <= 0 && p->p_segv <= 0 && p->p_exit <= 0 && p->p_hang <= 0)
    return CHAOS_OK; /* the usual case: no hash to compute */
  double u = unit(p->seed, i, 0x6661746500000000ULL);
  double c = p->p_fail;
  if (u < c) return CHAOS_FAIL;
  if (u < (c += p->p_segv)) return CHAOS_SEGV;
  if (u < (c += p->p_exit)) return CHAOS_EXIT;
  if (u < (c += p->p_hang)) return CHAOS_HANG;
  return CHAOS_OK;
}

int chaos_flaky(const chaos_params_t *p, uint64_t i) {
  return unit(p->seed, i, 0x666c616b79000000ULL) < p->p_flaky;
}

/* Word k of task i's output: SplitMix64's k-th output from a state made of
 * the seed and i (each word on its own: one mix, no chain).  seed_p is
 * seed * 0x100000001b3 (chaos_t keeps it). */
static inline uint64_t out_word_p(uint64_t seed_p, uint64_t i, size_t k) {
  return splitmix((seed_p ^ i) + (uint64_t)k * 0x9e3779b97f4a7c15ULL);
}
static uint64_t out_word(uint64_t seed, uint64_t i, size_t k) {
  return out_word_p(seed * 0x100000001b3ULL, i, k);
}

void chaos_output(uint64_t seed, uint64_t i, unsigned char *out, size_t size) {
  size_t k = 0;
  for (; k + 8 <= size; k += 8) { /* little-endian words, a store each */
    uint64_t w = out_word(seed, i, k / 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    memcpy(out + k, &w, 8);
  }
  uint64_t s = k < size ? out_word(seed, i, k / 8) : 0;
  for (; k < size; k++)
    out[k] = (unsigned char)(s >> (8 * (k % 8)));
}

static const char usage[] =
    "chaos [--tasks N] [--seed S] [--sleep MS] [--cpu MS] [--size BYTES]\n"
    "            [--fail P] [--segv P] [--exit P] [--hang P] [--flaky P --mark DIR]\n"
    "            [--list-fates]\n"
    "  --tasks N     number of tasks (default 100)\n"
    "  --seed S      seed of every random choice (default 1)\n"
    "  --sleep MS    each task sleeps MS milliseconds (default 0)\n"
    "  --cpu MS      each task burns MS milliseconds of CPU (default 0)\n"
    "  --size BYTES  output bytes per task (default 16)\n"
    "  --fail/--segv/--exit/--hang P   probability that a task returns an error,\n"
    "                segfaults, calls exit(3) or hangs (use --timeout)\n"
    "  --flaky P     probability that a task crashes on its first attempt only\n"
    "                (remembered with a marker file in --mark DIR)\n"
    "  --list-fates  print 'index fate' for every task and exit\n"
    "finish() prints: tasks, counts per status, and a checksum of the outputs\n"
    "in task order (equal across rank and worker counts for the same seed).";

/* An error message into err (dropped if memory runs out). */
static void say(mpc_buf_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(mpc_buf_t *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (mpc_buf_vprintf(err, fmt, ap)) {
    /* nothing better to do */
  }
  va_end(ap);
}

static int num(const char *opt, const char *v, double lo, double hi, double *out,
               mpc_buf_t *err) {
  char *end;
  errno = 0;
  double x = v ? strtod(v, &end) : 0;
  if (!v || errno || end == v || *end || !(x >= lo && x <= hi)) {
    say(err, "chaos: %s: expected a number in [%g, %g], got '%s'",
                         opt, lo, hi, v ? v : "(nothing)");
    return MPC_EUSAGE;
  }
  *out = x;
  return 0;
}

/* Digest hash: a word at a time (FNV-1a's constants, then a fold), so that
 * checking millions of tiny results costs the master little. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (; n >= 8; s += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; n; s++, n--) {
    h ^= *s;
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* The hash every task's digest starts with: its status's.  (Out of line, as
 * the other rare paths of chaos_gather(): its usual path then needs no
 * registers saved.) */
static __attribute__((noinline)) uint64_t status_hash(mpc_task_status_t st) {
  return fnv(0xcbf29ce484222325ULL, &st, sizeof st);
}

static const char *fate_name(chaos_fate_t f) {
  static const char *n[] = {"ok", "fail", "segv", "exit", "hang"};
  return n[f];
}

static void chaos_fini(void *state) {
  chaos_t *c = state;
  if (!c)
    return;
  free(c->mark);
  free(c->seen);
  free(c);
}

static int chaos_init(int argc, char **argv, const mpc_job_env_t *env,
                      void **state, mpc_buf_t *err) {
  chaos_t *c = calloc(1, sizeof *c);
  if (!c)
    return MPC_ENOMEM;
  c->tasks = 100;
  c->p.seed = 1;
  c->ordered = env->ordered;
  c->size = 16;
  int rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    double x;
    if (!strcmp(a, "--")) {
      continue;
    } else if (!strcmp(a, "--list-fates")) {
      c->list = 1;
      continue;
    } else if (!strcmp(a, "--mark")) {
      if (!v) {
        say(err, "chaos: --mark: missing directory");
        rc = MPC_EUSAGE;
        break;
      }
      c->mark = strdup(v);
    } else if (!strcmp(a, "--tasks")) {
      if (!(rc = num(a, v, 0, 1e12, &x, err)))
        c->tasks = (uint64_t)x;
    } else if (!strcmp(a, "--seed")) {
      if (!(rc = num(a, v, 0, 1.8e19, &x, err)))
        c->p.seed = (uint64_t)x;
    } else if (!strcmp(a, "--sleep")) {
      rc = num(a, v, 0, 1e9, &c->sleep_ms, err);
    } else if (!strcmp(a, "--cpu")) {
      rc = num(a, v, 0, 1e9, &c->cpu_ms, err);
    } else if (!strcmp(a, "--size")) {
      if (!(rc = num(a, v, 0, 1 << 26, &x, err)))
        c->size = (size_t)x;
    } else if (!strcmp(a, "--fail")) {
      rc = num(a, v, 0, 1, &c->p.p_fail, err);
    } else if (!strcmp(a, "--segv")) {
      rc = num(a, v, 0, 1, &c->p.p_segv, err);
    } else if (!strcmp(a, "--exit")) {
      rc = num(a, v, 0, 1, &c->p.p_exit, err);
    } else if (!strcmp(a, "--hang")) {
      rc = num(a, v, 0, 1, &c->p.p_hang, err);
    } else if (!strcmp(a, "--flaky")) {
      rc = num(a, v, 0, 1, &c->p.p_flaky, err);
    } else {
      say(err, "chaos: unknown argument '%s'", a);
      rc = MPC_EUSAGE;
      break;
    }
    i++;
  }
  if (!rc && c->p.p_fail + c->p.p_segv + c->p.p_exit + c->p.p_hang > 1.0 + 1e-9) {
    say(err, "chaos: --fail + --segv + --exit + --hang exceed 1");
    rc = MPC_EUSAGE;
  }
  if (!rc && c->p.p_flaky > 0 && !c->mark) {
    say(err, "chaos: --flaky needs --mark DIR");
    rc = MPC_EUSAGE;
  }
  if (!rc && c->list) {
    if (env->rank == 0)
      for (uint64_t i = 0; i < c->tasks; i++)
        printf("%llu %s%s\n", (unsigned long long)i, fate_name(chaos_fate(&c->p, i)),
               chaos_flaky(&c->p, i) ? " flaky" : "");
    fflush(stdout);
    c->tasks = 0; /* nothing to run */
  }
  c->seed_p = c->p.seed * 0x100000001b3ULL;
  c->h_ok = status_hash(MPC_TASK_OK);
  if (!rc && env->rank == 0 && c->tasks) {
    c->seen = calloc((c->tasks + 63) / 64, sizeof *c->seen);
    if (!c->seen)
      rc = MPC_ENOMEM;
  }
  if (rc) {
    chaos_fini(c);
    return rc;
  }
  *state = c;
  return 0;
}

static int chaos_next(void *state, mpc_buf_t *input, mpc_buf_t *key) {
  chaos_t *c = state;
  (void)key; /* the default key (a hash of the input) is what we want */
  if (c->next >= c->tasks)
    return 0;
  if (input->cap - input->len < 8) {
    int rc = mpc_buf_reserve(input, 8);
    if (rc)
      return rc;
  }
  uint64_t le = c->next; /* the task's index, little-endian */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  le = __builtin_bswap64(le);
#endif
  memcpy(input->data + input->len, &le, 8);
  input->len += 8;
  c->next++;
  return 1;
}

static uint64_t task_index(const void *in, size_t len) {
  const unsigned char *p = in;
  uint64_t i = 0;
  if (len == 8) { /* always, but for bad input: one load */
    memcpy(&i, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    i = __builtin_bswap64(i);
#endif
    return i;
  }
  for (size_t k = 0; k < 8 && k < len; k++)
    i |= (uint64_t)p[k] << (8 * k);
  return i;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Die of SIGSEGV, whatever handler a sanitizer or runtime installed. */
static void die_segv(void) {
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
}

static int chaos_run(void *state, const void *in, size_t len, mpc_buf_t *out) {
  const chaos_t *c = state;
  if (len != 8)
    return mpc_task_fail(out, 1, "chaos: input of %zu bytes, expected 8", len);
  uint64_t i = task_index(in, len);
  if (c->sleep_ms > 0) {
    struct timespec ts = {(time_t)(c->sleep_ms / 1000),
                          (long)((c->sleep_ms - 1000.0 * (time_t)(c->sleep_ms / 1000)) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
  }
  if (c->cpu_ms > 0) {
    double end = cpu_now() + c->cpu_ms / 1000.0;
    volatile uint64_t x = i;
    while (cpu_now() < end)
      for (int k = 0; k < 10000; k++)
        x = splitmix(x);
  }
  if (c->p.p_flaky > 0 && chaos_flaky(&c->p, i)) {
    char path[4096];
    snprintf(path, sizeof path, "%s/chaos-%llu", c->mark, (unsigned long long)i);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
      close(fd);
      die_segv(); /* the first attempt crashes */
    }
  }
  switch (chaos_fate(&c->p, i)) {
  case CHAOS_FAIL:
    return mpc_task_fail(out, 2, "chaos: task %llu fails by design",
                         (unsigned long long)i);
  case CHAOS_SEGV:
    die_segv();
    break;
  case CHAOS_EXIT:
    exit(3);
  case CHAOS_HANG:
    for (;;)
      pause();
  case CHAOS_OK:
    break;
  }
  if (out->cap - out->len < c->size) { /* (the pool's buffer has room: no call) */
    int rc = mpc_buf_reserve(out, c->size);
    if (rc)
      return rc;
  }
  chaos_output(c->p.seed, i, out->data, c->size);
  out->len = c->size;
  return 0;
}

/* Whether out[0..n) is what chaos_output(seed, i, ., n) makes: word by word,
 * without building the expected bytes (seed_p: see out_word_p). */
static int output_ok(uint64_t seed_p, uint64_t i, const unsigned char *out, size_t n) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t w;
    memcpy(&w, out + k, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    if (w != out_word_p(seed_p, i, k / 8))
      return 0;
  }
  if (k < n) {
    uint64_t s = out_word_p(seed_p, i, k / 8);
    for (; k < n; k++, s >>= 8)
      if (out[k] != (unsigned char)s)
        return 0;
  }
  return 1;
}

/* An OK task whose output is wrong: counted, and its bytes go into its hash. */
static __attribute__((noinline)) uint64_t bad_output(chaos_t *c, uint64_t h,
                                                     const mpc_job_result_t *r) {
  c->n_bad++;
  return fnv(h, r->output, r->output_len);
}

/* Any outcome. */
static __attribute__((noinline)) int gather_any(chaos_t *c, const mpc_job_result_t *r) {
  uint64_t i = task_index(r->input, r->input_len);
  if (i >= c->tasks)
    return MPC_EPROTO;
  if (c->ordered && r->seq != c->next_seq++)
    c->n_disorder++;
  uint64_t bit = 1ull << (i & 63), *seen = &c->seen[i >> 6];
  if (*seen & bit) {
    c->n_dup++;
    return 0;
  }
  *seen |= bit;
  if (r->resumed)
    c->n_resumed++;
  /* The task's hash starts with a hash of its status; OK's is made once. */
  uint64_t h;
  if (r->status == MPC_TASK_OK) {
    c->n_ok++;
    h = c->h_ok;
    /* Check the bytes against what task i must produce.  Bytes that are
     * right are known by i, so only wrong ones go into the hash. */
    if (r->output_len != c->size || !output_ok(c->seed_p, i, r->output, c->size))
      h = bad_output(c, h, r);
  } else {
    if (r->status <= MPC_TASK_CANCELED)
      c->by_status[r->status]++;
    h = status_hash(r->status);
  }
  c->sum += splitmix(h + i * 0x9e3779b97f4a7c15ULL);
  return 0;
}

/* Runs once per task on the master.  The usual case, a fresh success of 8
 * bytes that are right, is done here; anything else (or anything to count
 * apart) by gather_any() from the start. */
static int chaos_gather(void *state, const mpc_job_result_t *r) {
  chaos_t *c = state;
  if (!(r->status == MPC_TASK_OK && r->input_len == 8 && r->output_len == 8 &&
        c->size == 8 && !r->resumed && !c->ordered))
    return gather_any(c, r);
  uint64_t i = task_index(r->input, 8), w;
  memcpy(&w, r->output, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  uint64_t bit = 1ull << (i & 63);
  if (i >= c->tasks || (c->seen[i >> 6] & bit) || w != out_word_p(c->seed_p, i, 0))
    return gather_any(c, r); /* bad input, a duplicate or a wrong output */
  c->seen[i >> 6] |= bit;
  c->n_ok++;
  c->sum += splitmix(c->h_ok + i * 0x9e3779b97f4a7c15ULL);
  return 0;
}

static int chaos_finish(void *state, const mpc_job_report_t *rep) {
  chaos_t *c = state;
  if (c->list)
    return 0;
  uint64_t gathered = 0;
  for (uint64_t w = 0; w < (c->tasks + 63) / 64; w++)
    gathered += (uint64_t)__builtin_popcountll(c->seen[w]);
  uint64_t missing = c->tasks - gathered, h = splitmix(c->sum ^ c->tasks);
  printf("chaos: tasks=%llu gathered=%llu ok=%llu error=%llu crashed=%llu "
         "exited=%llu timeout=%llu canceled=%llu resumed=%llu missing=%llu "
         "duplicates=%llu bad_output=%llu%s\n",
         (unsigned long long)c->tasks,
         (unsigned long long)(c->tasks - missing), (unsigned long long)c->n_ok,
         (unsigned long long)c->by_status[MPC_TASK_ERROR],
         (unsigned long long)c->by_status[MPC_TASK_CRASHED],
         (unsigned long long)c->by_status[MPC_TASK_EXITED],
         (unsigned long long)c->by_status[MPC_TASK_TIMEOUT],
         (unsigned long long)c->by_status[MPC_TASK_CANCELED],
         (unsigned long long)c->n_resumed, (unsigned long long)missing,
         (unsigned long long)c->n_dup, (unsigned long long)c->n_bad,
         c->ordered ? (c->n_disorder ? " out_of_order=yes" : " in_order=yes") : "");
  printf("chaos: checksum=%016llx\n", (unsigned long long)h);
  (void)rep;
  return c->n_bad || c->n_dup ? MPC_EIO : 0;
}

const mpc_job_t mpc_job_chaos = {
    .abi = MPC_JOB_ABI_VERSION,
    .flags = MPC_JOB_IDEMPOTENT | MPC_JOB_JOURNAL_OUTPUT | MPC_JOB_KEYS_UNUSED,
    .name = "chaos",
    .brief = "test/demo tasks that sleep, burn CPU, fail, crash, exit or hang (from a seed)",
    .usage = usage,
    .init = chaos_init,
    .next = chaos_next,
    .run = chaos_run,
    .gather = chaos_gather,
    .finish = chaos_finish,
    .fini = chaos_fini,
};
MPC_JOB_BUILTIN(mpc_job_chaos);
