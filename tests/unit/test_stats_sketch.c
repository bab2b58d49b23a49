/* stats job: moments merge, the quantile sketch's rank-error bound, sorting
 * and exact selection. */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../jobs/stats/stats.h"

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static double nrand(void) {
  double u = urand() + 1e-300, v = urand();
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_moments_merge(void) {
  size_t n = 100000;
  double *v = malloc(n * sizeof *v);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  for (size_t i = 0; i < n; i++)
    v[i] = 1e6 + 1000 * nrand();
  /* reference: two-pass in long double */
  long double s = 0, ss = 0;
  for (size_t i = 0; i < n; i++)
    s += v[i];
  long double mean = s / n;
  for (size_t i = 0; i < n; i++)
    ss += (v[i] - mean) * (v[i] - mean);
  double ref_mean = (double)mean, ref_std = (double)sqrtl(ss / (n - 1));
  /* split into 1..200 random pieces of random blocks, merge in order */
  for (int pieces = 1; pieces <= 200; pieces += 37) {
    stats_moments_t tot;
    stats_moments_init(&tot);
    size_t pos = 0;
    for (int p = 0; p < pieces; p++) {
      size_t end = p == pieces - 1 ? n : pos + rnd() % (2 * n / pieces + 1);
      if (end > n)
        end = n;
      stats_moments_t m;
      stats_moments_init(&m);
      while (pos < end) {
        size_t b = 1 + rnd() % 300;
        if (b > end - pos)
          b = end - pos;
        stats_moments_add_block(&m, v + pos, b);
        pos += b;
      }
      stats_moments_merge(&tot, &m);
    }
    CU_ASSERT_EQUAL(stats_moments_count(&tot), n);
    CU_ASSERT(fabs(stats_moments_mean(&tot) - ref_mean) <= 1e-13 * fabs(ref_mean));
    CU_ASSERT(fabs(stats_moments_std(&tot) - ref_std) <= 1e-12 * ref_std);
  }
  free(v);
}

/* A block's sum, min, max and squared deviations keep one summation order
 * whatever the code variant (SSE2 or AVX2): four partial sums by index mod 4,
 * combined (0+2) + (1+3), then the tail in order.  Same bits as that. */
static void test_moments_block_order(void) {
  enum { N = 1003 };
  double v[N];
  srand(77);
  for (int i = 0; i < N; i++) /* lanes 0 and 2 cancel, 1 and 3 are small: */
    v[i] = (i % 4 == 0 ? 1e15 : i % 4 == 2 ? -1e15 : 0) + (double)rand() / RAND_MAX;
  double s4[4] = {0, 0, 0, 0}, mn = INFINITY, mx = -INFINITY;
  size_t i = 0;
  for (; i + 4 <= N; i += 4)
    for (int k = 0; k < 4; k++)
      s4[k] += v[i + k];
  double sum = (s4[0] + s4[2]) + (s4[1] + s4[3]); /* any other order loses bits */
  for (; i < N; i++)
    sum += v[i];
  for (i = 0; i < N; i++) {
    mn = v[i] < mn ? v[i] : mn;
    mx = v[i] > mx ? v[i] : mx;
  }
  double mean = sum / N, q4[4] = {0, 0, 0, 0};
  for (i = 0; i + 4 <= N; i += 4)
    for (int k = 0; k < 4; k++) {
      double d = v[i + k] - mean;
      q4[k] += d * d;
    }
  double q = (q4[0] + q4[2]) + (q4[1] + q4[3]);
  for (; i < N; i++) {
    double d = v[i] - mean;
    q += d * d;
  }
  int prev = stats_sketch_isa(-1);
  for (int isa = prev; isa >= 0; isa--) { /* every variant the CPU has */
    stats_sketch_isa(isa);
    stats_moments_t m;
    stats_moments_init(&m);
    stats_moments_add_block(&m, v, N);
    CU_ASSERT_EQUAL(m.n, N);
    CU_ASSERT(m.mean == mean);
    CU_ASSERT(m.m2 == q);
    CU_ASSERT(m.min == mn && m.max == mx);
  }
  stats_sketch_isa(prev);
}

static void test_moments_special(void) {
  stats_moments_t m;
  stats_moments_init(&m);
  CU_ASSERT(isnan(stats_moments_mean(&m)));
  CU_ASSERT(isnan(stats_moments_std(&m)));
  double one = 5;
  stats_moments_add_block(&m, &one, 1);
  CU_ASSERT_EQUAL(stats_moments_mean(&m), 5);
  CU_ASSERT(isnan(stats_moments_std(&m))); /* ddof=1 with one value */
  double v[3] = {1, INFINITY, 3};
  stats_moments_add_block(&m, v, 3);
  CU_ASSERT_EQUAL(stats_moments_count(&m), 4);
  CU_ASSERT(isinf(stats_moments_mean(&m)) && stats_moments_mean(&m) > 0);
  CU_ASSERT(isnan(stats_moments_std(&m)));
  CU_ASSERT_EQUAL(m.min, 1);
  CU_ASSERT(isinf(m.max));
  double w = -INFINITY;
  stats_moments_add_block(&m, &w, 1);
  CU_ASSERT(isnan(stats_moments_mean(&m)));
}

static void test_sort(void) {
  size_t n = 5000;
  double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *t = malloc(n * sizeof *t);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a && b && t);
  for (int kind = 0; kind < 5; kind++) {
    for (size_t i = 0; i < n; i++) {
      double x = kind == 0   ? nrand()
                 : kind == 1 ? (double)(rnd() % 10)
                 : kind == 2 ? 1e9 + (double)(rnd() % 1000) * 1e-6
                 : kind == 3 ? (rnd() % 2 ? -1.0 : 1.0) * exp(40 * nrand())
                             : (double)i;
      if (kind == 3 && i % 97 == 0)
        x = i % 2 ? INFINITY : -INFINITY;
      a[i] = b[i] = x;
    }
    for (size_t len = 0; len <= n; len = len ? len * 3 : 1) {
      memcpy(a, b, len * sizeof *a);
      stats_sort_doubles(a, len, t);
      double *c = malloc((len + 1) * sizeof *c);
      memcpy(c, b, len * sizeof *c);
      qsort(c, len, sizeof *c, dcmp);
      CU_ASSERT(memcmp(a, c, len * sizeof *c) == 0);
      free(c);
    }
  }
  free(a);
  free(b);
  free(t);
}

/* Fraction of values <= x and < x in a sorted array. */
static void ranks(const double *s, size_t n, double x, size_t *lt, size_t *le) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (s[m] < x)
      lo = m + 1;
    else
      hi = m;
  }
  *lt = lo;
  hi = n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (s[m] <= x)
      lo = m + 1;
    else
      hi = m;
  }
  *le = lo;
}

/* How far, in ranks, answer x for quantile q lies from the target rank
 * q*(n-1) of sorted s: 0 when an item equal to x has that rank. */
static double rank_distance(const double *s, size_t n, double q, double x) {
  double target = q * (double)(n - 1);
  size_t lt, le;
  ranks(s, n, x, &lt, &le);
  if (target < (double)lt)
    return (double)lt - target - 1;
  if (target > (double)le)
    return target - (double)le;
  return 0;
}

static void check_sketch(const double *v, size_t n, size_t pieces) {
  uint32_t k = stats_sketch_pick_k(n, 0.005);
  stats_sketch_t tot;
  stats_sketch_init(&tot, k);
  size_t per = n / pieces;
  for (size_t p = 0; p < pieces; p++) {
    stats_sketch_t s;
    stats_sketch_init(&s, k);
    size_t a = p * per, b = p == pieces - 1 ? n : a + per;
    CU_ASSERT_EQUAL_FATAL(stats_sketch_add(&s, v + a, b - a), 0);
    /* through the wire format, as tasks do */
    mpc_buf_t buf = MPC_BUF_INIT;
    CU_ASSERT_EQUAL_FATAL(stats_sketch_write(&s, &buf), 0);
    stats_sketch_t r;
    CU_ASSERT_EQUAL_FATAL(stats_sketch_read(&r, buf.data, buf.len), buf.len);
    /* skipping sees the same size, and a cut-short sketch is malformed */
    CU_ASSERT_EQUAL(stats_sketch_skip(buf.data, buf.len), buf.len);
    CU_ASSERT_EQUAL(stats_sketch_skip(buf.data, buf.len - 1), 0);
    CU_ASSERT_EQUAL(stats_sketch_skip(buf.data, 20), 0);
    CU_ASSERT_EQUAL_FATAL(stats_sketch_merge(&tot, &r), 0);
    stats_sketch_free(&r);
    stats_sketch_free(&s);
    mpc_buf_free(&buf);
  }
  CU_ASSERT_EQUAL(tot.n, n);
  /* the proven bound is within 0.5% of n */
  CU_ASSERT(tot.err <= n / 200);
  double *s = malloc(n * sizeof *s);
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, dcmp);
  double qs[9] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1};
  double out[9];
  CU_ASSERT_EQUAL_FATAL(stats_sketch_quantiles(&tot, qs, 9, out), 0);
  for (int i = 0; i < 9; i++) {
    /* the answer lies between two items whose true ranks are within err of
     * the target rank q*(n-1) */
    double dist = rank_distance(s, n, qs[i], out[i]);
    if (dist > (double)tot.err + 1)
      fprintf(stderr, "q=%g: rank distance %g > bound %llu\n", qs[i], dist,
              (unsigned long long)tot.err);
    CU_ASSERT(dist <= (double)tot.err + 1);
  }
  free(s);
  stats_sketch_free(&tot);
}

static void test_sketch_bound(void) {
  size_t n = 400000;
  double *v = malloc(n * sizeof *v);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  for (int kind = 0; kind < 3; kind++) {
    for (size_t i = 0; i < n; i++)
      v[i] = kind == 0 ? nrand() : kind == 1 ? (double)(n - i) : (double)(rnd() % 50);
    check_sketch(v, n, 1);
    check_sketch(v, n, 7);
    check_sketch(v, n, 100);
  }
  free(v);
}

/* Batch summaries (stats_sketch_add_batch, what tasks use) on data that
 * defeats simple bucketing: log-normal, few distinct values, rounded ties,
 * outliers, infinities, signed, constant, sorted and reversed. */
static void test_sketch_batch_kinds(void) {
  size_t n = 300000;
  double *v = malloc(n * sizeof *v), *c = malloc(n * sizeof *c), *t = malloc(n * sizeof *t);
  double *s = malloc(n * sizeof *s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v && c && t && s);
  for (int kind = 0; kind < 9; kind++) {
    for (size_t i = 0; i < n; i++) {
      double x;
      switch (kind) {
      case 0: x = exp(2 * nrand()); break;
      case 1: x = (double)(rnd() % 10); break;
      case 2: x = round(-100 * log(urand() + 1e-300) * 10) / 10; break;
      case 3: x = i % 1000 == 0 ? 1e300 * (rnd() % 2 ? 1 : -1) : nrand(); break;
      case 4: x = i % 501 == 0 ? (i % 2 ? INFINITY : -INFINITY) : 1e6 * nrand(); break;
      case 5: x = (rnd() % 2 ? -1.0 : 1.0) * exp(30 * nrand()); break;
      case 6: x = 42; break;
      case 7: x = (double)i; break;
      default: x = -(double)i * 1e-300; break;
      }
      v[i] = x;
    }
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, dcmp);
    for (size_t batch = 5000; batch <= n; batch *= 6) {
      uint32_t k = stats_sketch_pick_k(n, 0.005);
      stats_sketch_t sk;
      stats_sketch_init(&sk, k);
      for (size_t a = 0; a < n; a += batch) {
        size_t m = n - a < batch ? n - a : batch;
        memcpy(c, v + a, m * sizeof *c);
        CU_ASSERT_EQUAL_FATAL(stats_sketch_add_batch(&sk, c, m, t), 0);
      }
      CU_ASSERT_EQUAL(sk.n, n);
      CU_ASSERT(sk.err <= n / 200);
      uint64_t tot = 0;
      for (uint32_t h = 0; h < sk.nlev; h++)
        tot += (uint64_t)sk.lev[h].len << h;
      CU_ASSERT_EQUAL(tot, n);
      double qs[11] = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1};
      double out[11];
      CU_ASSERT_EQUAL_FATAL(stats_sketch_quantiles(&sk, qs, 11, out), 0);
      for (int i = 0; i < 11; i++) {
        if (kind == 4 && isnan(out[i]))
          continue; /* interpolating from an infinity is NaN, as in numpy */
        double dist = rank_distance(s, n, qs[i], out[i]);
        if (dist > (double)sk.err + 1)
          fprintf(stderr, "kind %d batch %zu q=%g: rank distance %g > bound %llu\n", kind,
                  batch, qs[i], dist, (unsigned long long)sk.err);
        CU_ASSERT(dist <= (double)sk.err + 1);
        /* every answer is one of the values (or between two for q*(n-1)
         * that falls between items) */
        if (!(out[i] >= s[0] && out[i] <= s[n - 1]))
          fprintf(stderr, "kind %d batch %zu q=%g: %g outside [%g, %g]\n", kind, batch, qs[i],
                  out[i], s[0], s[n - 1]);
        CU_ASSERT(out[i] >= s[0] && out[i] <= s[n - 1]);
      }
      stats_sketch_free(&sk);
    }
  }
  free(v);
  free(c);
  free(t);
  free(s);
}

/* The batch summaries' code variants give the same sketch, item for item:
 * value-linear and key-linear buckets (log-like data of both signs, an
 * outlier), batch sizes that are no multiple of the vector width. */
static void test_sketch_variants_same(void) {
  size_t n = 200003;
  double *v = malloc(n * sizeof *v), *c = malloc(n * sizeof *c), *t = malloc(n * sizeof *t);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v && c && t);
  int prev = stats_sketch_isa(-1);
  for (int kind = 0; kind < 7; kind++) {
    for (size_t i = 0; i < n; i++) {
      double x;
      switch (kind) {
      case 0: x = urand() * 1e3 - 500; break;
      case 1: x = nrand() * 20 + 50; break;
      case 2: x = round(urand() * 2e5) / 100; break;
      case 3: x = i % 997 == 0 ? 1e9 : urand(); break;
      case 4: x = exp(2 * nrand()); break;
      case 5: x = (rnd() % 2 ? -1.0 : 1.0) * exp(10 * nrand()); break; /* log-like, signed */
      default: x = (double)(rnd() % 10); break;
      }
      v[i] = x;
    }
    stats_sketch_t sk[2];
    for (int isa = 0; isa < 2; isa++) {
      stats_sketch_isa(isa);
      stats_sketch_init(&sk[isa], 8192);
      for (size_t a = 0; a < n; a += 65541) {
        size_t m = n - a < 65541 ? n - a : 65541;
        memcpy(c, v + a, m * sizeof *c);
        CU_ASSERT_EQUAL_FATAL(stats_sketch_add_batch(&sk[isa], c, m, t), 0);
      }
    }
    CU_ASSERT_EQUAL(sk[0].err, sk[1].err);
    CU_ASSERT_EQUAL_FATAL(sk[0].nlev, sk[1].nlev);
    for (uint32_t h = 0; h < sk[0].nlev; h++) {
      CU_ASSERT_EQUAL_FATAL(sk[0].lev[h].len, sk[1].lev[h].len);
      if (sk[0].lev[h].len)
        CU_ASSERT_EQUAL(
            memcmp(sk[0].lev[h].v, sk[1].lev[h].v, sk[0].lev[h].len * sizeof(double)), 0);
    }
    stats_sketch_free(&sk[0]);
    stats_sketch_free(&sk[1]);
  }
  stats_sketch_isa(prev);
  free(v);
  free(c);
  free(t);
}

static void test_sketch_exact_small(void) {
  /* below k values nothing is compacted: quantiles are numpy's exactly */
  double v[10] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
  stats_sketch_t s;
  stats_sketch_init(&s, 4096);
  CU_ASSERT_EQUAL(stats_sketch_add(&s, v, 10), 0);
  double qs[3] = {0.25, 0.5, 0.75}, out[3];
  CU_ASSERT_EQUAL(stats_sketch_quantiles(&s, qs, 3, out), 0);
  CU_ASSERT_EQUAL(out[0], 3.25);
  CU_ASSERT_EQUAL(out[1], 5.5);
  CU_ASSERT_EQUAL(out[2], 7.75);
  CU_ASSERT_EQUAL(s.err, 0);
  stats_sketch_free(&s);
  /* the bound used to pick k */
  CU_ASSERT_EQUAL(stats_sketch_pick_k(1000, 0.005), 4096);
  CU_ASSERT(stats_sketch_pick_k(300000000ULL, 0.005) >= 4096);
}

static void test_select_runs(void) {
  double r1[] = {1, 4, 4, 9}, r2[] = {-3, 0, 4}, r3[] = {2};
  const double *runs[] = {r1, r2, r3};
  uint64_t lens[] = {4, 3, 1};
  double all[] = {-3, 0, 1, 2, 4, 4, 4, 9};
  for (uint64_t k = 0; k < 8; k++)
    CU_ASSERT_EQUAL(stats_select_runs(runs, lens, 3, k), all[k]);
  CU_ASSERT_EQUAL(stats_lerp(1, 3, 0.25), 1.5);
  CU_ASSERT_EQUAL(stats_lerp(1, 3, 0.75), 2.5);
}

MPC_TESTS(stats_sketch) = {
    {"moments merged over any split match two-pass", test_moments_merge},
    {"moments: empty, one value, infinities", test_moments_special},
    {"block moments: one summation order, same bits in every variant", test_moments_block_order},
    {"radix sort equals qsort", test_sort},
    {"sketch rank error within the proven bound <= 0.5%", test_sketch_bound},
    {"sketch batch summaries within the bound on awkward data", test_sketch_batch_kinds},
    {"sketch exact below k; numpy interpolation", test_sketch_exact_small},
    {"sketch batch summaries: same items in every code variant", test_sketch_variants_same},
    {"exact selection over sorted runs", test_select_runs},
    CU_TEST_INFO_NULL,
};
