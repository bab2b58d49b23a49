/* The local pool: results, ordering, sizes, initializer, worker replacement,
 * crash isolation, timeouts, retries, signals, bounded memory. */
#include "test.h"

#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpc/pool.h"
#include "pool/batch.h"

/* The 8-byte value at p (outputs need not be aligned). */
static uint64_t u64at(const void *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Result i as a pointer (a few recent ones stay valid), or NULL. */
static const mpc_result_t *rget(const mpc_results_t *r, size_t i) {
  static mpc_result_t slots[8];
  static unsigned k;
  mpc_result_t *x = &slots[k++ % 8];
  return mpc_results_get(r, i, x) == 0 ? x : NULL;
}

/* Task ops for the test function. */
enum { OP_ECHO = 0, OP_SEGV, OP_ABORT, OP_EXIT, OP_HANG, OP_SLEEP, OP_ERROR,
       OP_BIG, OP_PID, OP_FLAKY, OP_ID, OP_ALLOC, OP_ALLOC_UNCHECKED,
       OP_PID_SLEEP };

typedef struct op {
  uint32_t op, arg;
  uint64_t val;
} op_t;

/* Shared, created before pools so workers see it. */
typedef struct shared {
  volatile int inits;
  volatile int flaky_runs[64];
  int pid_pipe[2];
} shared_t;

static shared_t *g_sh;

static void setup_shared(void) {
  if (!g_sh) {
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(g_sh != MAP_FAILED);
  }
  memset((void *)g_sh, 0, sizeof *g_sh);
}

static int test_fn(void *ctx, const void *in, size_t len, mpc_buf_t *out) {
  (void)ctx;
  if (len != sizeof(op_t)) /* plain bytes: echo them */
    return mpc_buf_append(out, in, len) ? 99 : 0;
  op_t o;
  memcpy(&o, in, sizeof o);
  switch (o.op) {
  case OP_SEGV:
    raise(SIGSEGV);
    break;
  case OP_ABORT:
    abort();
  case OP_EXIT:
    exit((int)o.arg);
  case OP_HANG:
    for (;;)
      pause();
  case OP_SLEEP:
    usleep(o.arg * 1000u);
    break;
  case OP_ERROR:
    return mpc_task_fail(out, (int)o.arg, "task %llu refused",
                         (unsigned long long)o.val);
  case OP_BIG: {
    size_t n = (size_t)o.val;
    if (mpc_buf_reserve(out, n))
      return 98;
    memset(out->data, 0x5a, n);
    out->len = n;
    return 0;
  }
  case OP_PID: {
    pid_t me = getpid();
    if (write(g_sh->pid_pipe[1], &me, sizeof me) != sizeof me)
      return 97;
    for (;;)
      pause();
  }
  case OP_PID_SLEEP: { /* says it started, then sleeps arg ms */
    pid_t me = getpid();
    if (write(g_sh->pid_pipe[1], &me, sizeof me) != sizeof me)
      return 97;
    usleep(o.arg * 1000u);
    break;
  }
  case OP_ID: {
    uint64_t id = mpc_task_id();
    return mpc_buf_append(out, &id, sizeof id) ? 99 : 0;
  }
  case OP_ALLOC:           /* arg MiB, touched; checks malloc */
  case OP_ALLOC_UNCHECKED: /* ... or writes through NULL as careless code does */
    for (uint32_t i = 0; i < o.arg; i++) {
      char *m = malloc(1u << 20);
      if (!m && o.op == OP_ALLOC)
        return mpc_task_fail(out, MPC_ENOMEM, "no memory after %u MiB", i);
      if (!m) {
        volatile char *volatile nul = NULL;
        *nul = 1;
      }
      memset(m, 1, 1u << 20);
    }
    break;
  case OP_FLAKY: /* crashes on its first run, succeeds after */
    if (__sync_fetch_and_add(&g_sh->flaky_runs[o.arg % 64], 1) == 0)
      raise(SIGSEGV);
    break;
  default:
    break;
  }
  uint64_t v = o.val * 2;
  return mpc_buf_append(out, &v, sizeof v) ? 99 : 0;
}

static int count_init(void *ctx, int idx) {
  (void)ctx;
  (void)idx;
  __sync_fetch_and_add(&g_sh->inits, 1);
  return 0;
}

static mpc_pool_t *make_pool(int workers, double timeout, int retries) {
  if (!g_sh)
    setup_shared();
  mpc_pool_opts_t o = {.workers = workers, .fn = test_fn, .timeout = timeout,
                       .retries = retries, .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_new(&p, &o), 0);
  return p;
}

static void test_zero_and_one(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL(mpc_pool_map_array(p, NULL, 8, 0, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_count(r), 0);
  mpc_results_free(r);
  op_t one = {.op = OP_ECHO, .val = 21};
  CU_ASSERT_EQUAL(mpc_pool_map_array(p, &one, sizeof one, 1, &r), 0);
  CU_ASSERT_EQUAL_FATAL(mpc_results_count(r), 1);
  const mpc_result_t *x = rget(r, 0);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_OK);
  CU_ASSERT_EQUAL(x->len, 8);
  CU_ASSERT_EQUAL(u64at(x->data), 42);
  mpc_results_free(r);
  /* A 0-byte input is a task too: its output is empty. */
  mpc_slice_t empty = {.data = NULL, .len = 0};
  CU_ASSERT_EQUAL(mpc_pool_map(p, &empty, 1, &r), 0);
  CU_ASSERT_EQUAL(rget(r, 0)->status, MPC_TASK_OK);
  CU_ASSERT_EQUAL(rget(r, 0)->len, 0);
  mpc_results_free(r);
  mpc_pool_free(p);
}

#define MILLION 1000000u

static void test_million_ordered(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  uint64_t *in = malloc(MILLION * sizeof *in);
  CU_ASSERT_PTR_NOT_NULL_FATAL(in);
  for (uint64_t i = 0; i < MILLION; i++)
    in[i] = i * 7 + 1;
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, in, 8, MILLION, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_count(r), MILLION);
  CU_ASSERT_EQUAL(mpc_results_failed(r), 0);
  size_t bad = 0, badtime = 0;
  for (size_t i = 0; i < MILLION; i++) {
    const mpc_result_t *x = rget(r, i);
    if (x->id != i || x->len != 8 || u64at(x->data) != in[i])
      bad++;
    /* Tiny tasks are timed in samples; every task still has a start <= end
     * within the run, and a worker slot and pid. */
    if (!(x->start > 0 && x->start <= x->end) || x->worker < 0 || x->pid <= 0)
      badtime++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(badtime, 0);
  mpc_results_free(r);
  free(in);
  mpc_pool_free(p);
}

typedef struct seen {
  unsigned char *hit;
  size_t n, dup, wrong, count;
  const uint64_t *in;
} seen_t;

static int seen_cb(void *ctx, const mpc_result_t *r) {
  seen_t *s = ctx;
  s->count++;
  if (r->id >= s->n || r->status != MPC_TASK_OK || r->len != 8 ||
      u64at(r->data) != s->in[r->id]) {
    s->wrong++;
    return 0;
  }
  if (s->hit[r->id]++)
    s->dup++;
  return 0;
}

static void test_million_unordered(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  uint64_t *in = malloc(MILLION * sizeof *in);
  mpc_slice_t *sl = malloc(MILLION * sizeof *sl);
  CU_ASSERT_FATAL(in && sl);
  for (uint64_t i = 0; i < MILLION; i++) {
    in[i] = i ^ 0x5555;
    sl[i] = (mpc_slice_t){&in[i], 8};
  }
  seen_t s = {.hit = calloc(MILLION, 1), .n = MILLION, .in = in};
  CU_ASSERT_EQUAL(mpc_pool_imap_unordered(p, sl, MILLION, seen_cb, &s), 0);
  CU_ASSERT_EQUAL(s.count, MILLION);
  CU_ASSERT_EQUAL(s.dup, 0);
  CU_ASSERT_EQUAL(s.wrong, 0);
  size_t missing = 0;
  for (size_t i = 0; i < MILLION; i++)
    missing += s.hit[i] == 0;
  CU_ASSERT_EQUAL(missing, 0);
  /* 0 and 1 tasks through the same call. */
  s.count = 0;
  memset(s.hit, 0, MILLION);
  CU_ASSERT_EQUAL(mpc_pool_imap_unordered(p, sl, 0, seen_cb, &s), 0);
  CU_ASSERT_EQUAL(s.count, 0);
  CU_ASSERT_EQUAL(mpc_pool_imap_unordered(p, sl, 1, seen_cb, &s), 0);
  CU_ASSERT_EQUAL(s.count, 1);
  free(s.hit);
  free(sl);
  free(in);
  mpc_pool_free(p);
}

static void test_big_messages(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  size_t n = 64u << 20;
  unsigned char *big = malloc(n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  for (size_t i = 0; i < n; i++)
    big[i] = (unsigned char)(i * 131 + (i >> 20));
  mpc_slice_t in[3] = {{big, n}, {"small", 5}, {big + 1, n - 1}};
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map(p, in, 3, &r), 0);
  for (int i = 0; i < 3; i++) {
    const mpc_result_t *x = rget(r, (size_t)i);
    CU_ASSERT_EQUAL(x->status, MPC_TASK_OK);
    CU_ASSERT_EQUAL(x->len, in[i].len);
    CU_ASSERT(x->len == in[i].len && memcmp(x->data, in[i].data, x->len) == 0);
  }
  mpc_results_free(r);
  /* A 64 MiB output from a small input. */
  op_t o = {.op = OP_BIG, .val = n};
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, &o, sizeof o, 1, &r), 0);
  const mpc_result_t *x = rget(r, 0);
  CU_ASSERT_EQUAL(x->len, n);
  size_t bad = 0;
  for (size_t i = 0; i < x->len; i++)
    bad += ((const unsigned char *)x->data)[i] != 0x5a;
  CU_ASSERT_EQUAL(bad, 0);
  mpc_results_free(r);
  free(big);
  mpc_pool_free(p);
}

static void test_initializer_once(void) {
  setup_shared();
  mpc_pool_opts_t o = {.workers = 3, .fn = test_fn, .init = count_init,
                       .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_new(&p, &o), 0);
  op_t ops[300];
  for (int i = 0; i < 300; i++)
    ops[i] = (op_t){.op = OP_ECHO, .val = (uint64_t)i};
  mpc_results_t *r = NULL;
  for (int round = 0; round < 3; round++) {
    CU_ASSERT_EQUAL(mpc_pool_map_array(p, ops, sizeof *ops, 300, &r), 0);
    CU_ASSERT_EQUAL(mpc_results_failed(r), 0);
    mpc_results_free(r);
  }
  CU_ASSERT_EQUAL(g_sh->inits, 3);
  mpc_pool_free(p);
}

static void test_max_tasks_replaces(void) {
  setup_shared();
  mpc_pool_opts_t o = {.workers = 2, .fn = test_fn, .init = count_init,
                       .max_tasks_per_worker = 5,
                       .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_new(&p, &o), 0);
  op_t ops[50];
  for (int i = 0; i < 50; i++)
    ops[i] = (op_t){.op = OP_ECHO, .val = (uint64_t)i};
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, ops, sizeof *ops, 50, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_failed(r), 0);
  /* No worker process ran more than 5 tasks. */
  pid_t pids[50];
  int counts[50] = {0}, np = 0, over = 0;
  for (int i = 0; i < 50; i++) {
    pid_t pid = rget(r, (size_t)i)->pid;
    int k = 0;
    while (k < np && pids[k] != pid)
      k++;
    if (k == np)
      pids[np++] = pid;
    if (++counts[k] > 5)
      over++;
  }
  CU_ASSERT_EQUAL(over, 0);
  CU_ASSERT(np >= 10);
  CU_ASSERT(g_sh->inits >= 10);
  mpc_results_free(r);
  mpc_pool_free(p);
}

/* Failures: each reported with its reason, everything else completes. */
static void test_crash_isolation(void) {
  mpc_pool_t *p = make_pool(2, 0.5, 0);
  enum { N = 40 };
  op_t ops[N];
  for (int i = 0; i < N; i++)
    ops[i] = (op_t){.op = OP_ECHO, .val = (uint64_t)i};
  ops[3].op = OP_SEGV;
  ops[7].op = OP_ABORT;
  ops[11] = (op_t){.op = OP_EXIT, .arg = 3, .val = 11};
  ops[15].op = OP_HANG;
  ops[19] = (op_t){.op = OP_ERROR, .arg = 5, .val = 19};
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, ops, sizeof *ops, N, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_failed(r), 5);
  const mpc_result_t *x;
  x = rget(r, 3);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_CRASHED);
  CU_ASSERT_EQUAL(x->code, SIGSEGV);
  x = rget(r, 7);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_CRASHED);
  CU_ASSERT_EQUAL(x->code, SIGABRT);
  x = rget(r, 11);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_EXITED);
  CU_ASSERT_EQUAL(x->code, 3);
  x = rget(r, 15);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_TIMEOUT);
  x = rget(r, 19);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_ERROR);
  CU_ASSERT_EQUAL(x->code, 5);
  CU_ASSERT(x->len == strlen("task 19 refused") &&
            memcmp(x->data, "task 19 refused", x->len) == 0);
  int ok = 0;
  for (int i = 0; i < N; i++) {
    x = rget(r, (size_t)i);
    if (x->status == MPC_TASK_OK && x->len == 8 &&
        u64at(x->data) == (uint64_t)i * 2)
      ok++;
    CU_ASSERT_EQUAL(x->attempts, 1);
  }
  CU_ASSERT_EQUAL(ok, N - 5);
  mpc_results_free(r);
  /* The pool goes on after all that. */
  CU_ASSERT_EQUAL(mpc_pool_map_array(p, ops, sizeof *ops, 2, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_failed(r), 0);
  mpc_results_free(r);
  mpc_pool_free(p);
}

/* A crash in the middle of a large chunk of tiny tasks: results of the tasks
 * before it were batched, not yet published; they must still come out once. */
static void test_crash_in_chunk(void) {
  setup_shared();
  mpc_pool_opts_t o = {.workers = 2, .fn = test_fn, .chunk = 500,
                       .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_new(&p, &o), 0);
  enum { N = 10000 };
  op_t *ops = calloc(N, sizeof *ops);
  for (int i = 0; i < N; i++)
    ops[i] = (op_t){.op = OP_ECHO, .val = (uint64_t)i};
  ops[777].op = OP_SEGV;
  ops[5001].op = OP_ABORT;
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, ops, sizeof *ops, N, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_failed(r), 2);
  CU_ASSERT_EQUAL(rget(r, 777)->code, SIGSEGV);
  CU_ASSERT_EQUAL(rget(r, 5001)->code, SIGABRT);
  int ok = 0;
  for (int i = 0; i < N; i++) {
    const mpc_result_t *x = rget(r, (size_t)i);
    ok += x->status == MPC_TASK_OK && u64at(x->data) == 2u * i;
  }
  CU_ASSERT_EQUAL(ok, N - 2);
  mpc_results_free(r);
  free(ops);
  mpc_pool_free(p);
}

static void test_retries(void) {
  setup_shared();
  mpc_pool_t *p = make_pool(2, 0, 2);
  enum { N = 20 };
  op_t ops[N];
  for (int i = 0; i < N; i++)
    ops[i] = (op_t){.op = i % 4 == 0 ? OP_FLAKY : OP_ECHO, .arg = (uint32_t)i,
                    .val = (uint64_t)i};
  ops[5].op = OP_SEGV; /* fails every time: 1 + 2 retries */
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, ops, sizeof *ops, N, &r), 0);
  CU_ASSERT_EQUAL(mpc_results_failed(r), 1);
  for (int i = 0; i < N; i++) {
    const mpc_result_t *x = rget(r, (size_t)i);
    if (i == 5) {
      CU_ASSERT_EQUAL(x->status, MPC_TASK_CRASHED);
      CU_ASSERT_EQUAL(x->attempts, 3);
    } else if (i % 4 == 0) {
      CU_ASSERT_EQUAL(x->status, MPC_TASK_OK);
      CU_ASSERT_EQUAL(x->attempts, 2);
      CU_ASSERT_EQUAL(g_sh->flaky_runs[i], 2);
    } else {
      CU_ASSERT_EQUAL(x->status, MPC_TASK_OK);
      CU_ASSERT_EQUAL(x->attempts, 1);
    }
  }
  mpc_results_free(r);
  mpc_pool_free(p);
}

/* A worker SIGKILLed from outside while its task runs. */
static void test_killed_from_outside(void) {
  setup_shared();
  CU_ASSERT_EQUAL_FATAL(pipe(g_sh->pid_pipe), 0);
  mpc_pool_t *p = make_pool(2, 0, 0);
  op_t victim = {.op = OP_PID}, fine = {.op = OP_ECHO, .val = 5};
  mpc_future_t *f1 = NULL, *f2 = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_apply_async(p, &victim, sizeof victim, &f1), 0);
  CU_ASSERT_EQUAL_FATAL(mpc_pool_apply_async(p, &fine, sizeof fine, &f2), 0);
  pid_t pid = 0;
  CU_ASSERT_EQUAL_FATAL(read(g_sh->pid_pipe[0], &pid, sizeof pid),
                        (ssize_t)sizeof pid);
  CU_ASSERT_EQUAL(kill(pid, SIGKILL), 0);
  CU_ASSERT_EQUAL(mpc_future_wait(f1, 10), 0);
  CU_ASSERT_EQUAL(mpc_future_wait(f2, 10), 0);
  const mpc_result_t *x = mpc_future_result(f1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_EQUAL(x->status, MPC_TASK_CRASHED);
  CU_ASSERT_EQUAL(x->code, SIGKILL);
  CU_ASSERT_EQUAL(x->pid, pid);
  CU_ASSERT_EQUAL(mpc_future_result(f2)->status, MPC_TASK_OK);
  mpc_future_free(f1);
  mpc_future_free(f2);
  close(g_sh->pid_pipe[0]);
  close(g_sh->pid_pipe[1]);
  mpc_pool_free(p);
}

static void test_async_and_timeout_wait(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  enum { N = 2000 };
  mpc_future_t *f[N];
  for (int i = 0; i < N; i++) {
    op_t o = {.op = OP_ECHO, .val = (uint64_t)i};
    CU_ASSERT_EQUAL_FATAL(mpc_pool_apply_async(p, &o, sizeof o, &f[i]), 0);
  }
  int ok = 0;
  for (int i = N - 1; i >= 0; i--) {
    if (mpc_future_wait(f[i], -1) == 0) {
      const mpc_result_t *x = mpc_future_result(f[i]);
      ok += x && x->status == MPC_TASK_OK &&
            u64at(x->data) == (uint64_t)i * 2;
    }
    mpc_future_free(f[i]);
  }
  CU_ASSERT_EQUAL(ok, N);
  /* Waiting with a timeout on a slow task times out, then succeeds. */
  op_t slow = {.op = OP_SLEEP, .arg = 300, .val = 1};
  mpc_future_t *s = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_apply_async(p, &slow, sizeof slow, &s), 0);
  CU_ASSERT_EQUAL(mpc_future_wait(s, 0), MPC_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpc_future_wait(s, 0.05), MPC_ETIMEDOUT);
  CU_ASSERT_PTR_NULL(mpc_future_result(s));
  CU_ASSERT_EQUAL(mpc_future_wait(s, 10), 0);
  CU_ASSERT_EQUAL(mpc_future_result(s)->status, MPC_TASK_OK);
  mpc_future_free(s);
  /* A future freed before it finishes is cleaned up by the pool. */
  CU_ASSERT_EQUAL_FATAL(mpc_pool_apply_async(p, &slow, sizeof slow, &s), 0);
  mpc_future_free(s);
  mpc_pool_free(p);
}

typedef struct tally {
  int n, ok, canceled;
  uint64_t tagsum;
} tally_t;

static int tally_cb(void *ctx, const mpc_result_t *r) {
  tally_t *t = ctx;
  t->n++;
  t->ok += r->status == MPC_TASK_OK;
  t->canceled += r->status == MPC_TASK_CANCELED;
  t->tagsum += r->id;
  return 0;
}

static int id_cb(void *ctx, const mpc_result_t *r) {
  struct ids { uint64_t *seen; int bad; } *c = ctx;
  (*c->seen)++;
  if (r->status != MPC_TASK_OK || r->len != 8 || u64at(r->data) != r->id)
    c->bad++;
  return 0;
}

static void test_submit_poll_cancel(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  tally_t t = {0};
  for (uint64_t i = 1; i <= 100; i++) {
    op_t o = {.op = OP_ECHO, .val = i};
    CU_ASSERT_EQUAL(mpc_pool_submit(p, &o, sizeof o, i), 0);
  }
  op_t hang = {.op = OP_HANG};
  CU_ASSERT_EQUAL(mpc_pool_submit(p, &hang, sizeof hang, 1000), 0);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 101);
  double end = mpct_now() + 20;
  while (t.n < 100 && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll(p, 1.0, tally_cb, &t) >= 0);
  CU_ASSERT_EQUAL(t.ok, 100);
  CU_ASSERT_EQUAL(t.tagsum, 5050);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 1);
  CU_ASSERT_EQUAL(mpc_pool_cancel(p, 1000), 0);
  CU_ASSERT_EQUAL(mpc_pool_cancel(p, 4242), MPC_ENOTFOUND);
  while (mpc_pool_pending(p) && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll(p, 1.0, tally_cb, &t) >= 0);
  CU_ASSERT_EQUAL(t.canceled, 1);
  CU_ASSERT_EQUAL(t.n, 101);
  /* join finishes submitted work, then stops the workers */
  for (uint64_t i = 1; i <= 10; i++) {
    op_t o = {.op = OP_ECHO, .val = i};
    CU_ASSERT_EQUAL(mpc_pool_submit(p, &o, sizeof o, i), 0);
  }
  tally_t j = {0};
  CU_ASSERT_EQUAL(mpc_pool_join(p, tally_cb, &j), 0);
  CU_ASSERT_EQUAL(j.ok, 10);
  CU_ASSERT_EQUAL(mpc_pool_submit(p, &hang, sizeof hang, 1), MPC_ESTATE);
  mpc_pool_free(p);
}

/* A task canceled while queued behind another on its worker (sent, not yet
 * started) must not run on: here it would hang the worker forever. */
static void test_cancel_queued(void) {
  mpc_pool_t *p = make_pool(1, 0, 0);
  tally_t t = {0};
  op_t slow = {.op = OP_SLEEP, .arg = 300, .val = 1}, hang = {.op = OP_HANG};
  CU_ASSERT_EQUAL(mpc_pool_submit(p, &slow, sizeof slow, 1), 0);
  CU_ASSERT_EQUAL(mpc_pool_submit(p, &hang, sizeof hang, 2), 0);
  CU_ASSERT(mpc_pool_poll(p, 0.05, tally_cb, &t) >= 0); /* both go to the worker */
  CU_ASSERT_EQUAL(t.n, 0);
  CU_ASSERT_EQUAL(mpc_pool_cancel(p, 2), 0);
  double end = mpct_now() + 10;
  while (mpc_pool_pending(p) && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll(p, 0.5, tally_cb, &t) >= 0);
  CU_ASSERT_EQUAL_FATAL(mpc_pool_pending(p), 0); /* else join would wait forever */
  CU_ASSERT_EQUAL(t.ok, 1);
  CU_ASSERT_EQUAL(t.canceled, 1);
  /* the pool goes on: a new task runs */
  op_t o = {.op = OP_ECHO, .val = 7};
  CU_ASSERT_EQUAL(mpc_pool_submit(p, &o, sizeof o, 3), 0);
  tally_t j = {0};
  CU_ASSERT_EQUAL(mpc_pool_join(p, tally_cb, &j), 0);
  CU_ASSERT_EQUAL(j.ok, 1);
  mpc_pool_free(p);
}

typedef struct many {
  int n, ok, canceled, crashed, bad;
  unsigned char seen[1000];
} many_t;

static int many_cb(void *ctx, const mpc_result_t *r) {
  many_t *m = ctx;
  m->n++;
  if (r->id >= 1000 || m->seen[r->id]++) {
    m->bad++;
    return 0;
  }
  m->ok += r->status == MPC_TASK_OK;
  m->canceled += r->status == MPC_TASK_CANCELED;
  m->crashed += r->status == MPC_TASK_CRASHED;
  if (r->status == MPC_TASK_OK &&
      (r->len != 8 || u64at(r->data) != 2 * (r->id + 1)))
    m->bad++;
  return 0;
}

static void poll_until(mpc_pool_t *p, many_t *m, int n) {
  double end = mpct_now() + 30;
  while (m->n < n && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll(p, 1.0, many_cb, m) >= 0);
}

static void test_submit_many(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  static op_t o[1000];
  static mpc_slice_t in[1000];
  static uint64_t tag[1000];
  for (int i = 0; i < 1000; i++) {
    o[i] = (op_t){.op = i == 500 ? OP_SEGV : OP_ECHO, .val = (uint64_t)i + 1};
    in[i] = (mpc_slice_t){&o[i], sizeof o[i]};
    tag[i] = (uint64_t)i;
  }
  /* One batch with a crash in the middle: every task answered once. */
  many_t m = {0};
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, tag, 1000), 0);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 1000);
  poll_until(p, &m, 1000);
  CU_ASSERT_EQUAL(m.n, 1000);
  CU_ASSERT_EQUAL(m.ok, 999);
  CU_ASSERT_EQUAL(m.crashed, 1);
  CU_ASSERT_EQUAL(m.bad, 0);
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, NULL, 3), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, tag, 0), 0);
  mpc_pool_free(p);

  /* Cancel one task of a batch that waits behind a running task. */
  CU_ASSERT_EQUAL_FATAL(pipe(g_sh->pid_pipe), 0);
  p = make_pool(1, 0, 0);
  o[0] = (op_t){.op = OP_PID_SLEEP, .arg = 200, .val = 1};
  for (int i = 1; i < 100; i++)
    o[i] = (op_t){.op = OP_ECHO, .val = (uint64_t)i + 1};
  memset(&m, 0, sizeof m);
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, tag, 100), 0);
  pid_t pid;
  while (mpc_pool_poll(p, 0.01, many_cb, &m) >= 0) {
    struct pollfd pf = {.fd = g_sh->pid_pipe[0], .events = POLLIN};
    if (poll(&pf, 1, 0) == 1)
      break;
  }
  CU_ASSERT_EQUAL(read(g_sh->pid_pipe[0], &pid, sizeof pid), (ssize_t)sizeof pid);
  CU_ASSERT_EQUAL(mpc_pool_cancel(p, 42), 0);
  CU_ASSERT_EQUAL(mpc_pool_cancel(p, 4242), MPC_ENOTFOUND);
  poll_until(p, &m, 100);
  CU_ASSERT_EQUAL(m.n, 100);
  CU_ASSERT_EQUAL(m.canceled, 1);
  CU_ASSERT_EQUAL(m.ok, 99);
  CU_ASSERT_EQUAL(m.bad, 0);

  /* Drain: the running task finishes, nothing else counts. */
  memset(&m, 0, sizeof m);
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, tag, 100), 0);
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in + 100, tag + 100, 50), 0);
  while (mpc_pool_poll(p, 0.01, many_cb, &m) >= 0) {
    struct pollfd pf = {.fd = g_sh->pid_pipe[0], .events = POLLIN};
    if (poll(&pf, 1, 0) == 1)
      break;
  }
  CU_ASSERT_EQUAL(read(g_sh->pid_pipe[0], &pid, sizeof pid), (ssize_t)sizeof pid);
  CU_ASSERT_EQUAL(mpc_pool_drain(p), 0);
  poll_until(p, &m, 150);
  CU_ASSERT_EQUAL(m.n, 150);
  CU_ASSERT_EQUAL(m.ok, 1);
  CU_ASSERT_EQUAL(m.canceled, 149);
  CU_ASSERT_EQUAL(m.bad, 0);
  CU_ASSERT(m.seen[0] == 1);
  mpc_pool_free(p);
  close(g_sh->pid_pipe[0]);
  close(g_sh->pid_pipe[1]);
}

/* mpc_pool_poll_many(): tiny tasks of every input length from 0 to 23
 * bytes (echoed back), a crash and an error among them.  Each result comes
 * exactly once with its own bytes; successes of a batch come in arrays of
 * one worker's results in finishing order. */
#define PM_N 20000
typedef struct pm {
  int calls, multi, n, ok, crashed, failed, bad, stop_first;
  unsigned char seen[PM_N];
} pm_t;

static unsigned char pm_byte(int i, size_t k) { return (unsigned char)(i * 31 + (int)k); }

static int pm_cb(void *ctx, const mpc_result_t *r, size_t n) {
  pm_t *m = ctx;
  m->calls++;
  if (n == 0 || n > 256)
    m->bad++;
  if (n > 1)
    m->multi++;
  for (size_t k = 0; k < n; k++) {
    const mpc_result_t *x = &r[k];
    m->n++;
    if (x->id >= PM_N || m->seen[x->id]++) {
      m->bad++;
      continue;
    }
    if (n > 1 && (x->status != MPC_TASK_OK || x->worker != r[0].worker ||
                  x->pid != r[0].pid || (k && x->start < r[k - 1].start) ||
                  x->end < x->start))
      m->bad++;
    int i = (int)x->id;
    if (x->status == MPC_TASK_CRASHED) {
      m->crashed++;
      m->bad += i != 777;
    } else if (x->status == MPC_TASK_ERROR) {
      m->failed++;
      m->bad += i != 1234 || x->code != 5;
    } else if (x->status == MPC_TASK_OK) {
      m->ok++;
      if (i % 24 == 16) { /* an op_t: OP_ECHO doubles val */
        m->bad += x->len != 8 || u64at(x->data) != 2 * (uint64_t)(i + 1);
      } else {
        size_t len = (size_t)(i % 24);
        m->bad += x->len != len || x->pid <= 0 || x->worker < 0;
        for (size_t b = 0; b < len && b < x->len; b++)
          m->bad += ((const unsigned char *)x->data)[b] != pm_byte(i, b);
      }
    } else {
      m->bad++;
    }
  }
  if (m->stop_first) { /* the poll returns once what it collected is delivered */
    m->stop_first = 0;
    return 1;
  }
  return 0;
}

static void test_poll_many(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  static unsigned char bytes[PM_N][24];
  static op_t o[PM_N];
  static mpc_slice_t in[PM_N];
  static uint64_t tag[PM_N];
  for (int i = 0; i < PM_N; i++) {
    tag[i] = (uint64_t)i;
    if (i % 24 == 16 || i == 777 || i == 1234) {
      o[i] = (op_t){.op = i == 777 ? OP_SEGV : i == 1234 ? OP_ERROR : OP_ECHO,
                    .arg = 5, .val = (uint64_t)i + 1};
      in[i] = (mpc_slice_t){&o[i], sizeof o[i]};
    } else {
      for (size_t b = 0; b < 24; b++)
        bytes[i][b] = pm_byte(i, b);
      in[i] = (mpc_slice_t){bytes[i], (size_t)(i % 24)};
    }
  }
  static pm_t m;
  memset(&m, 0, sizeof m);
  for (int i = 0; i < PM_N; i += 2000)
    CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in + i, tag + i, 2000), 0);
  m.stop_first = 1;
  int got = mpc_pool_poll_many(p, 30, pm_cb, &m);
  CU_ASSERT(got >= 1 && got == m.n); /* what was collected is delivered */
  double end = mpct_now() + 60;
  while (m.n < PM_N && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll_many(p, 1.0, pm_cb, &m) >= 0);
  CU_ASSERT_EQUAL(m.n, PM_N);
  CU_ASSERT_EQUAL(m.ok, PM_N - 2);
  CU_ASSERT_EQUAL(m.crashed, 1);
  CU_ASSERT_EQUAL(m.failed, 1);
  CU_ASSERT_EQUAL(m.bad, 0);
  CU_ASSERT(m.multi > 0);          /* successes came in arrays */
  CU_ASSERT(m.calls < PM_N / 4);   /* ... not one call per result */
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 0);
  /* A plain poll after poll_many still gets one result per call. */
  many_t mm = {0};
  o[0] = (op_t){.op = OP_ECHO, .val = 1};
  CU_ASSERT_EQUAL(mpc_pool_submit(p, &o[0], sizeof o[0], 0), 0);
  poll_until(p, &mm, 1);
  CU_ASSERT_EQUAL(mm.ok, 1);
  CU_ASSERT_EQUAL(mm.bad, 0);
  CU_ASSERT_EQUAL(mpc_pool_poll_many(p, 0, NULL, NULL), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_pool_poll_many(NULL, 0, pm_cb, &m), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_pool_join(p, NULL, NULL), 0);
  mpc_pool_free(p);
}

/* A batch whose inputs are all of one size is cut into chunks and slices
 * by arithmetic, not by a walk over its entries: with a crash and a failure
 * inside and a retry each, every task still runs on its own input (the echo
 * checks it against the tag) and is answered once. */
static void test_submit_many_uniform_retry(void) {
  mpc_pool_t *p = make_pool(2, 0, 1);
  static op_t o[1000];
  static mpc_slice_t in[1000];
  static uint64_t tag[1000];
  for (int i = 0; i < 1000; i++) {
    o[i] = (op_t){.op = i == 500 ? OP_SEGV : i == 700 ? OP_ERROR : OP_ECHO,
                  .arg = 5, .val = (uint64_t)i + 1};
    in[i] = (mpc_slice_t){&o[i], sizeof o[i]};
    tag[i] = (uint64_t)i;
  }
  many_t m = {0};
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, tag, 1000), 0);
  poll_until(p, &m, 1000);
  CU_ASSERT_EQUAL(m.n, 1000);
  CU_ASSERT_EQUAL(m.ok, 998);
  CU_ASSERT_EQUAL(m.crashed, 1);
  CU_ASSERT_EQUAL(m.bad, 0);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 0);
  mpc_pool_free(p);
}

/* A batch written in place (mpc__pool_batch_*, what mpc-run's ranks use):
 * every task runs once under its tag with its own input, whatever its
 * length; the bounds given to begin() are enforced; an aborted batch and an
 * empty one queue nothing. */
#define PB_N 3000
typedef struct pb {
  int n, ok, failed, bad;
  unsigned char seen[PB_N];
} pb_t;

/* Task i's input length: 0..23 but sizeof(op_t) (test_fn runs those). */
static size_t pb_len(int i) {
  size_t l = (size_t)(i % 24);
  return l == sizeof(op_t) ? l - 1 : l;
}

static int pb_cb(void *ctx, const mpc_result_t *r, size_t n) {
  pb_t *m = ctx;
  for (size_t k = 0; k < n; k++) {
    const mpc_result_t *x = &r[k];
    m->n++;
    if (x->id < 50000 || x->id >= 50000 + PB_N || m->seen[x->id - 50000]++) {
      m->bad++;
      continue;
    }
    int i = (int)(x->id - 50000);
    if (i == 1500) {
      m->failed += x->status == MPC_TASK_ERROR && x->code == 7;
      continue;
    }
    size_t len = pb_len(i);
    if (x->status != MPC_TASK_OK || x->len != len) {
      m->bad++;
      continue;
    }
    m->ok++;
    for (size_t b = 0; b < len; b++)
      m->bad += ((const unsigned char *)x->data)[b] != pm_byte(i, b);
  }
  return 0;
}

static void test_batch_builder(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  static unsigned char bytes[PB_N][24];
  static pb_t m;
  memset(&m, 0, sizeof m);
  op_t fail = {.op = OP_ERROR, .arg = 7, .val = 1};
  size_t total = 0;
  for (int i = 0; i < PB_N; i++) {
    for (size_t b = 0; b < 24; b++)
      bytes[i][b] = pm_byte(i, b);
    total += i == 1500 ? sizeof fail : pb_len(i);
  }
  mpc__pool_batch_t b;
  CU_ASSERT_EQUAL(mpc__pool_batch_begin(NULL, &b, 1, 8), MPC_EINVAL);
  /* Aborted, and empty: nothing queued. */
  CU_ASSERT_EQUAL(mpc__pool_batch_begin(p, &b, 4, 64), 0);
  CU_ASSERT_EQUAL(mpc__pool_batch_add(&b, 1, bytes[0], 8), 0);
  mpc__pool_batch_abort(&b);
  CU_ASSERT_EQUAL(mpc__pool_batch_begin(p, &b, 4, 64), 0);
  CU_ASSERT_EQUAL(mpc__pool_batch_end(p, &b), 0);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 0);
  /* The real batch, in two parts: the bound on inputs is exact. */
  CU_ASSERT_EQUAL(mpc__pool_batch_begin(p, &b, PB_N, total), 0);
  for (int i = 0; i < PB_N; i++) {
    int rc = i == 1500 ? mpc__pool_batch_add(&b, 50000 + (uint64_t)i, &fail, sizeof fail)
                       : mpc__pool_batch_add(&b, 50000 + (uint64_t)i,
                                             pb_len(i) ? bytes[i] : NULL, pb_len(i));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
  }
  /* One more than begin() allowed is refused, and adds nothing. */
  CU_ASSERT_EQUAL(mpc__pool_batch_add(&b, 1, NULL, 0), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc__pool_batch_end(p, &b), 0);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), PB_N);
  /* Inputs past the byte bound are refused too (room: 100 entries of up to
   * 7 bytes, 2308 bytes in all). */
  CU_ASSERT_EQUAL(mpc__pool_batch_begin(p, &b, 100, 0), 0);
  CU_ASSERT_EQUAL(mpc__pool_batch_add(&b, 1, bytes[0], 4096), MPC_EINVAL);
  mpc__pool_batch_abort(&b);
  double end = mpct_now() + 60;
  while (m.n < PB_N && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll_many(p, 1.0, pb_cb, &m) >= 0);
  CU_ASSERT_EQUAL(m.n, PB_N);
  CU_ASSERT_EQUAL(m.ok, PB_N - 1);
  CU_ASSERT_EQUAL(m.failed, 1);
  CU_ASSERT_EQUAL(m.bad, 0);
  CU_ASSERT_EQUAL(mpc_pool_pending(p), 0);
  CU_ASSERT_EQUAL(mpc_pool_join(p, NULL, NULL), 0);
  mpc_pool_free(p);
}

/* Cancels from inside a poll_many callback, of tasks of the batch being
 * delivered: a cancel that succeeded gets MPC_TASK_CANCELED, one that found
 * the task finished (MPC_ENOTFOUND) gets its real outcome. */
#define PC_N 5000
typedef struct pc {
  mpc_pool_t *p;
  int n, bad, done_cancels;
  int cancel_rc[PC_N];
  int status[PC_N];
} pc_t;

static int pc_cb(void *ctx, const mpc_result_t *r, size_t n) {
  pc_t *m = ctx;
  for (size_t k = 0; k < n; k++) {
    if (r[k].id >= PC_N || m->status[r[k].id] >= 0) {
      m->bad++;
      continue;
    }
    m->status[r[k].id] = (int)r[k].status;
    m->n++;
  }
  if (!m->done_cancels) { /* the second half, from the first delivery */
    m->done_cancels = 1;
    for (int i = PC_N / 2; i < PC_N; i++)
      m->cancel_rc[i] = mpc_pool_cancel(m->p, (uint64_t)i);
  }
  return 0;
}

static void test_poll_many_cancel(void) {
  mpc_pool_t *p = make_pool(1, 0, 0);
  static uint64_t val[PC_N], tag[PC_N];
  static mpc_slice_t in[PC_N];
  static pc_t m;
  memset(&m, 0, sizeof m);
  m.p = p;
  for (int i = 0; i < PC_N; i++) {
    val[i] = (uint64_t)i;
    tag[i] = (uint64_t)i;
    in[i] = (mpc_slice_t){&val[i], sizeof val[i]};
    m.status[i] = -1;
    m.cancel_rc[i] = 1; /* not asked */
  }
  CU_ASSERT_EQUAL(mpc_pool_submit_many(p, in, tag, PC_N), 0);
  double end = mpct_now() + 60;
  while (m.n < PC_N && mpct_now() < end)
    CU_ASSERT(mpc_pool_poll_many(p, 1.0, pc_cb, &m) >= 0);
  CU_ASSERT_EQUAL(m.n, PC_N);
  CU_ASSERT_EQUAL(m.bad, 0);
  int canceled = 0, late = 0, odd = 0;
  for (int i = 0; i < PC_N; i++) {
    if (m.cancel_rc[i] == 0) {
      canceled++;
      odd += m.status[i] != MPC_TASK_CANCELED;
    } else if (m.cancel_rc[i] == MPC_ENOTFOUND) {
      late++;
      odd += m.status[i] != MPC_TASK_OK;
    } else {
      odd += m.cancel_rc[i] != 1 || m.status[i] != MPC_TASK_OK;
    }
  }
  CU_ASSERT_EQUAL(odd, 0);
  CU_ASSERT_EQUAL(canceled + late, PC_N - PC_N / 2);
  mpc_pool_free(p);
}

/* Children of this process, from the process table. */
static int count_children(void) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(),
           (int)getpid());
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  int c = 0;
  for (char *s = strtok(buf, " \n"); s; s = strtok(NULL, " \n"))
    c++;
  return c;
}

static int sigint_child(void *arg) {
  (void)arg;
  mpc_pool_opts_t o = {.workers = 2, .fn = test_fn,
                       .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  if (mpc_pool_new(&p, &o))
    return 10;
  enum { N = 400 };
  op_t ops[N];
  for (int i = 0; i < N; i++)
    ops[i] = (op_t){.op = OP_SLEEP, .arg = 10, .val = (uint64_t)i};
  /* Ask for SIGINT in 0.3 s, in the middle of the ~2 s run. */
  pid_t me = getpid();
  pid_t killer = fork();
  if (killer == 0) {
    usleep(300000);
    kill(me, SIGINT);
    _exit(0);
  }
  mpc_results_t *r = NULL;
  int rc = mpc_pool_map_array(p, ops, sizeof *ops, N, &r);
  waitpid(killer, NULL, 0);
  if (rc != MPC_EINTR || !r)
    return 11;
  size_t ok = 0, canceled = 0, other = 0;
  pid_t wp[N];
  int nwp = 0;
  for (size_t i = 0; i < N; i++) {
    const mpc_result_t *x = rget(r, i);
    if (x->status == MPC_TASK_OK)
      ok++;
    else if (x->status == MPC_TASK_CANCELED)
      canceled++;
    else
      other++;
    if (x->pid > 0 && nwp < N)
      wp[nwp++] = x->pid;
  }
  mpc_results_free(r);
  if (ok == 0 || canceled == 0 || other != 0 || ok + canceled != N)
    return 12;
  mpc_pool_free(p);
  if (count_children() != 0)
    return 13; /* zygote or workers left behind */
  for (int i = 0; i < nwp; i++)
    if (mpct_pid_alive(wp[i]))
      return 14;
  return 0;
}

static void test_sigint_parent(void) {
  setup_shared();
  int fds_before = mpct_count_fds();
  CU_ASSERT_EQUAL(mpct_run_child(sigint_child, NULL, 30), 0);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds_before);
}

typedef struct genctx {
  uint64_t n;
} genctx_t;

static int gen64(void *ctx, uint64_t i, mpc_buf_t *in) {
  genctx_t *g = ctx;
  if (i >= g->n)
    return 0;
  unsigned char b[64];
  memset(b, (int)(i & 0xff), sizeof b);
  memcpy(b, &i, 8);
  return mpc_buf_append(in, b, sizeof b) ? -1 : 1;
}

typedef struct genout {
  uint64_t next, bad, count;
} genout_t;

static int gen_check(void *ctx, const mpc_result_t *r) {
  genout_t *o = ctx;
  uint64_t v;
  if (r->status != MPC_TASK_OK || r->len != 64 || r->id != o->next)
    o->bad++;
  else if (memcpy(&v, r->data, 8), v != r->id)
    o->bad++;
  o->next++;
  o->count++;
  return 0;
}

static long vm_status_kb(const char *fmt) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, fmt, &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

/* 1,000,000 generated tasks of 64 bytes each: holding them all would take
 * at least 64 MB of inputs plus 64 MB of outputs.  The streaming map must
 * raise this process's peak resident memory by less than 48 MiB (measured
 * from the resident size at the start, since a forked child starts with its
 * parent's pages). */
#if defined(__SANITIZE_ADDRESS__)
#define GEN_RSS_LIMIT_KB (96 * 1024) /* ASan's redzones and quarantine */
#else
#define GEN_RSS_LIMIT_KB (48 * 1024)
#endif

static int gen_child(void *arg) {
  (void)arg;
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f)
    return 20;
  fputs("5", f); /* reset the peak RSS counter */
  fclose(f);
  long base = vm_status_kb("VmRSS: %ld kB");
  mpc_pool_opts_t o = {.workers = 2, .fn = test_fn,
                       .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  if (mpc_pool_new(&p, &o))
    return 21;
  genctx_t g = {.n = MILLION};
  genout_t out = {0};
  int rc = mpc_pool_map_gen(p, gen64, &g, 1, gen_check, &out);
  mpc_pool_free(p);
  if (rc != 0)
    return 22;
  if (out.count != MILLION || out.bad)
    return 23;
  long hwm = vm_status_kb("VmHWM: %ld kB");
  fprintf(stderr, "    [1M-task generator: peak RSS grew %ld KiB, limit %d KiB]\n",
          hwm - base, GEN_RSS_LIMIT_KB);
  return base > 0 && hwm > 0 && hwm - base < GEN_RSS_LIMIT_KB ? 0 : 24;
}

static void test_generator_bounded_memory(void) {
  CU_ASSERT_EQUAL(mpct_run_child(gen_child, NULL, 120), 0);
}

static int stop_after(void *ctx, const mpc_result_t *r) {
  (void)r;
  return ++*(int *)ctx >= 10;
}

static void test_gen_unordered_and_stop(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  genctx_t g = {.n = 5000};
  int n = 0;
  CU_ASSERT_EQUAL(mpc_pool_map_gen(p, gen64, &g, 0, stop_after, &n),
                  MPC_ECANCELED);
  CU_ASSERT_EQUAL(n, 10);
  mpc_pool_free(p);
}

/* Run 40 tasks of 25 ms (about 0.5 s on 2 workers, one of them failing) with
 * the progress bar in `mode`, stderr into a pipe; returns what was drawn. */
typedef struct barrun {
  mpc_progress_t mode;
  double secs;
  char text[65536];
  size_t len;
} barrun_t;

static int bar_child(void *arg) {
  barrun_t *b = arg;
  mpc_pool_opts_t o = {.workers = 2, .fn = test_fn, .progress = b->mode};
  mpc_pool_t *p = NULL;
  if (mpc_pool_new(&p, &o))
    return 30;
  op_t ops[40];
  for (int i = 0; i < 40; i++)
    ops[i] = (op_t){.op = OP_SLEEP, .arg = 25, .val = (uint64_t)i};
  ops[7] = (op_t){.op = OP_ERROR, .arg = 2};
  mpc_results_t *r = NULL;
  int rc = mpc_pool_map_array(p, ops, sizeof *ops, 40, &r);
  mpc_results_free(r);
  mpc_pool_free(p);
  return rc ? 31 : 0;
}

static void run_bar(barrun_t *b) {
  int fd[2];
  CU_ASSERT_FATAL(pipe(fd) == 0);
  int saved = dup(2);
  dup2(fd[1], 2);
  close(fd[1]);
  double t0 = mpct_now();
  int rc = mpct_run_child(bar_child, b, 30);
  b->secs = mpct_now() - t0;
  dup2(saved, 2);
  close(saved);
  CU_ASSERT_EQUAL(rc, 0);
  ssize_t n;
  b->len = 0;
  while ((n = read(fd[0], b->text + b->len, sizeof b->text - 1 - b->len)) > 0)
    b->len += (size_t)n;
  b->text[b->len] = 0;
  close(fd[0]);
}

static void test_progress_bar(void) {
  setup_shared();
  barrun_t *b = calloc(1, sizeof *b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  /* AUTO: stderr is a pipe, so nothing is drawn. */
  b->mode = MPC_PROGRESS_AUTO;
  run_bar(b);
  CU_ASSERT_EQUAL(b->len, 0);
  /* FORCE: drawn into the pipe, ending at 100% with the failure counted. */
  b->mode = MPC_PROGRESS_FORCE;
  run_bar(b);
  CU_ASSERT(b->len > 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(b->text, "100% [####################] 40/40"));
  CU_ASSERT_PTR_NOT_NULL(strstr(b->text, "failed 1"));
  CU_ASSERT_PTR_NOT_NULL(strstr(b->text, "/s]"));
  /* At most 10 redraws a second, plus the final one. */
  int redraws = 0;
  for (size_t i = 0; i < b->len; i++)
    redraws += b->text[i] == '\r';
  CU_ASSERT(redraws >= 2);
  CU_ASSERT(redraws <= (int)(b->secs * 10) + 2);
  /* OFF: nothing. */
  b->mode = MPC_PROGRESS_OFF;
  run_bar(b);
  CU_ASSERT_EQUAL(b->len, 0);
  free(b);
}

static void test_cpu_count(void) {
  char *old = getenv("SLURM_CPUS_PER_TASK");
  char *save = old ? strdup(old) : NULL;
  setenv("SLURM_CPUS_PER_TASK", "7", 1);
  CU_ASSERT_EQUAL(mpc_cpu_count(), 7);
  unsetenv("SLURM_CPUS_PER_TASK");
  cpu_set_t set;
  CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof set, &set), 0);
  CU_ASSERT_EQUAL(mpc_cpu_count(), CPU_COUNT(&set));
  if (save) {
    setenv("SLURM_CPUS_PER_TASK", save, 1);
    free(save);
  }
}

static void test_no_leaks(void) {
  int fds = mpct_count_fds();
  for (int k = 0; k < 3; k++) {
    mpc_pool_t *p = make_pool(2, 0, 0);
    op_t o[4] = {{.op = OP_ECHO}, {.op = OP_SEGV}, {.op = OP_ECHO}, {.op = OP_ECHO}};
    mpc_results_t *r = NULL;
    CU_ASSERT_EQUAL(mpc_pool_map_array(p, o, sizeof *o, 4, &r), 0);
    CU_ASSERT_EQUAL(mpc_results_failed(r), 1);
    mpc_results_free(r);
    mpc_pool_free(p);
  }
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
  CU_ASSERT_EQUAL(count_children(), 0);
  CU_ASSERT_EQUAL(mpct_count_shm("mpc"), 0);
}

static void test_task_id(void) {
  mpc_pool_t *p = make_pool(2, 0, 0);
  uint64_t seen = 0;
  for (uint64_t i = 0; i < 20; i++) {
    op_t o = {.op = OP_ID};
    CU_ASSERT_EQUAL(mpc_pool_submit(p, &o, sizeof o, 7000 + i), 0);
  }
  double end = mpct_now() + 20;
  struct ids { uint64_t *seen; int bad; } ctx = {&seen, 0};
  while (mpc_pool_pending(p) && mpct_now() < end) {
    int rc = mpc_pool_poll(p, 1.0, id_cb, &ctx);
    CU_ASSERT(rc >= 0);
  }
  CU_ASSERT_EQUAL(ctx.bad, 0);
  CU_ASSERT_EQUAL(seen, 20);
  /* map calls: the index */
  op_t ops[50];
  for (int i = 0; i < 50; i++)
    ops[i] = (op_t){.op = OP_ID};
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, ops, sizeof *ops, 50, &r), 0);
  for (size_t i = 0; i < 50; i++) {
    const mpc_result_t *x = rget(r, i);
    CU_ASSERT(x && x->status == MPC_TASK_OK && x->len == 8 && u64at(x->data) == i);
  }
  mpc_results_free(r);
  CU_ASSERT_EQUAL(mpc_task_id(), UINT64_MAX); /* not in a worker */
  mpc_pool_free(p);
}

static void test_mem_limit(void) {
#ifdef __SANITIZE_ADDRESS__
  /* ASan's allocator reserves and reports on its own: not what a limit on
   * plain malloc looks like.  Covered by the non-ASan run. */
  return;
#endif
  if (!g_sh)
    setup_shared();
  mpc_pool_opts_t po = {.workers = 1, .fn = test_fn, .mem_limit = 64u << 20,
                        .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_new(&p, &po), 0);
  op_t ops[5] = {
      {.op = OP_ALLOC, .arg = 16},            /* within the limit */
      {.op = OP_ALLOC, .arg = 512},           /* checked malloc fails */
      {.op = OP_ALLOC_UNCHECKED, .arg = 512}, /* crash after malloc failed */
      {.op = OP_ECHO, .val = 21},             /* a fresh worker goes on */
      {.op = OP_ALLOC, .arg = 16},
  };
  mpc_results_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_pool_map_array(p, ops, sizeof *ops, 5, &r), 0);
  const mpc_result_t *x;
  CU_ASSERT((x = rget(r, 0)) && x->status == MPC_TASK_OK);
  CU_ASSERT((x = rget(r, 1)) && x->status == MPC_TASK_OOM && x->code == MPC_ENOMEM);
  x = rget(r, 2);
  CU_ASSERT(x && x->status == MPC_TASK_OOM);
  pid_t crashed = x ? x->pid : 0;
  CU_ASSERT((x = rget(r, 3)) && x->status == MPC_TASK_OK && u64at(x->data) == 42 &&
            x->pid != crashed);
  CU_ASSERT((x = rget(r, 4)) && x->status == MPC_TASK_OK);
  mpc_results_free(r);
  mpc_pool_free(p);
}

MPC_TESTS(pool) = {
    {"0, 1 and empty-input tasks", test_zero_and_one},
    {"1,000,000 tasks in order", test_million_ordered},
    {"1,000,000 tasks unordered, each exactly once", test_million_unordered},
    {"64 MiB inputs and outputs", test_big_messages},
    {"initializer runs once per worker", test_initializer_once},
    {"max tasks per worker replaces workers", test_max_tasks_replaces},
    {"segv, abort, exit(3), hang, error: each reported", test_crash_isolation},
    {"crash inside a chunk of 500 tiny tasks", test_crash_in_chunk},
    {"retries on a fresh worker", test_retries},
    {"worker SIGKILLed from outside", test_killed_from_outside},
    {"async apply, wait with timeout", test_async_and_timeout_wait},
    {"submit, poll, cancel, join", test_submit_poll_cancel},
    {"cancel of a task queued on a worker, not started", test_cancel_queued},
    {"submit a batch: crash inside, cancel one, drain", test_submit_many},
    {"poll_many: arrays of a batch's successes, every input length", test_poll_many},
    {"batch written in place: tags, inputs, bounds, abort", test_batch_builder},
    {"batch of one input size: crash and failure inside, retried", test_submit_many_uniform_retry},
    {"poll_many: cancels from the callback get canceled or real outcomes", test_poll_many_cancel},
    {"SIGINT mid-run: clean return, no child left", test_sigint_parent},
    {"1M-task generator keeps memory bounded", test_generator_bounded_memory},
    {"unordered generator, callback stops early", test_gen_unordered_and_stop},
    {"progress bar: off in pipes, forced, at most 10/s", test_progress_bar},
    {"cpu count honours SLURM and affinity", test_cpu_count},
    {"mpc_task_id names the running task", test_task_id},
    {"mem_limit: allocation failures end as OOM, worker replaced", test_mem_limit},
    {"no fd, process or shm leaks", test_no_leaks},
    CU_TEST_INFO_NULL,
};
