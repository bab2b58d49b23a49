/* Benchmark driver for scripts/bench/pool-tiny: trivial tasks (an 8-byte
 * integer in, the same out) through the pool, and a CPU-bound task for
 * scaling.  Prints "key=value" lines; every result is checked.
 *
 *   pool_bench tiny N        chunk=1 unordered, async apply, auto-chunk map
 *   pool_bench cpu N WORK    CPU-bound tasks at 1 and 2 workers */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpc/pool.h"

/* Result i as a pointer (a few recent ones stay valid), or NULL. */
static const mpc_result_t *rget(const mpc_results_t *r, size_t i) {
  static mpc_result_t slots[8];
  static unsigned k;
  mpc_result_t *x = &slots[k++ % 8];
  return mpc_results_get(r, i, x) == 0 ? x : NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int echo(void *ctx, const void *in, size_t len, mpc_buf_t *out) {
  (void)ctx;
  if (out->cap >= len) { /* the common case: no call */
    memcpy(out->data, in, len);
    out->len = len;
    return 0;
  }
  return mpc_buf_append(out, in, len) ? 1 : 0;
}

/* A deterministic CPU burner: `work` rounds of an LCG per task. */
static int burn(void *ctx, const void *in, size_t len, mpc_buf_t *out) {
  uint64_t work = *(const uint64_t *)ctx, x;
  memcpy(&x, in, sizeof x);
  (void)len;
  for (uint64_t i = 0; i < work; i++)
    x = x * 6364136223846793005ull + 1442695040888963407ull;
  return mpc_buf_append(out, &x, sizeof x) ? 1 : 0;
}

typedef struct check {
  size_t n, bad, count;
} check_t;

static int check_cb(void *ctx, const mpc_result_t *r) {
  check_t *c = ctx;
  uint64_t v;
  c->count++;
  if (r->status != MPC_TASK_OK || r->len != 8)
    c->bad++;
  else if (memcpy(&v, r->data, 8), v != r->id * 3 + 1)
    c->bad++;
  return 0;
}

static mpc_pool_t *pool(int workers, mpc_task_fn fn, void *ctx, size_t chunk) {
  mpc_pool_opts_t o = {.workers = workers, .fn = fn, .ctx = ctx,
                       .chunk = chunk, .progress = MPC_PROGRESS_OFF};
  mpc_pool_t *p = NULL;
  int rc = mpc_pool_new(&p, &o);
  if (rc) {
    fprintf(stderr, "pool: %s\n", mpc_strerror(rc));
    exit(1);
  }
  return p;
}

static int tiny(size_t n) {
  uint64_t *in = malloc(n * sizeof *in);
  mpc_slice_t *sl = malloc(n * sizeof *sl);
  if (!in || !sl)
    return 1;
  for (size_t i = 0; i < n; i++) {
    in[i] = i * 3 + 1;
    sl[i] = (mpc_slice_t){&in[i], 8};
  }
  int fails = 0;

  /* 1. chunk size 1, unordered. */
  mpc_pool_t *p = pool(2, echo, NULL, 1);
  check_t c = {0};
  double t = now();
  if (mpc_pool_imap_unordered(p, sl, n, check_cb, &c) || c.count != n || c.bad)
    fails++;
  double dt = now() - t;
  printf("chunk1_tps=%.0f\n", n / dt);
  mpc_pool_free(p);

  /* 2. async apply, one future per task. */
  p = pool(2, echo, NULL, 1);
  size_t na = n < 400000 ? n : 400000;
  mpc_future_t **f = malloc(na * sizeof *f);
  t = now();
  for (size_t i = 0; i < na; i++)
    if (mpc_pool_apply_async(p, &in[i], 8, &f[i]))
      fails++;
  size_t bad = 0;
  for (size_t i = 0; i < na; i++) {
    const mpc_result_t *r;
    if (mpc_future_wait(f[i], -1) || !(r = mpc_future_result(f[i])) ||
        r->len != 8 || memcmp(r->data, &in[i], 8))
      bad++;
    mpc_future_free(f[i]);
  }
  dt = now() - t;
  fails += bad != 0;
  printf("async_tps=%.0f\n", na / dt);
  free(f);
  mpc_pool_free(p);

  /* 3. automatic chunking, ordered map over an array. */
  p = pool(2, echo, NULL, 0);
  mpc_results_t *res = NULL;
  t = now();
  if (mpc_pool_map_array(p, in, 8, n, &res))
    fails++;
  dt = now() - t;
  bad = 0;
  for (size_t i = 0; res && i < n; i++) {
    const mpc_result_t *r = rget(res, i);
    if (r->len != 8 || memcmp(r->data, &in[i], 8))
      bad++;
  }
  fails += bad != 0;
  printf("auto_tps=%.0f\n", n / dt);
  mpc_results_free(res);
  mpc_pool_free(p);
  free(in);
  free(sl);
  printf("checked=%s\n", fails ? "FAILED" : "ok");
  return fails ? 1 : 0;
}

static int cpu(size_t n, uint64_t work) {
  uint64_t *in = malloc(n * sizeof *in);
  for (size_t i = 0; i < n; i++)
    in[i] = i;
  double secs[3] = {0};
  uint64_t sums[3] = {0};
  for (int w = 1; w <= 2; w++) {
    mpc_pool_t *p = pool(w, burn, &work, 0);
    mpc_results_t *res = NULL;
    double t = now();
    if (mpc_pool_map_array(p, in, 8, n, &res) || mpc_results_failed(res))
      return 1;
    secs[w] = now() - t;
    for (size_t i = 0; i < n; i++)
      {
        uint64_t v;
        memcpy(&v, rget(res, i)->data, 8);
        sums[w] += v;
      }
    mpc_results_free(res);
    mpc_pool_free(p);
  }
  printf("cpu_1w_s=%.3f\ncpu_2w_s=%.3f\nscaling=%.3f\nchecked=%s\n", secs[1],
         secs[2], secs[1] / secs[2], sums[1] == sums[2] ? "ok" : "FAILED");
  free(in);
  return sums[1] == sums[2] ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "tiny") == 0)
    return tiny((size_t)atol(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "cpu") == 0)
    return cpu((size_t)atol(argv[2]), (uint64_t)atoll(argv[3]));
  fprintf(stderr, "usage: pool_bench tiny N | cpu N WORK\n");
  return 2;
}
