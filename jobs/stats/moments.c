/* Per-column moments.  Values arrive in blocks; a block's mean and M2 are
 * computed two-pass (accurate), then folded into the running totals with
 * Chan, Golub and LeVeque's pairwise update:
 *   n = na + nb, d = mean_b - mean_a,
 *   mean = mean_a + d * nb / n,  M2 = M2a + M2b + d^2 * na * nb / n.
 * Infinities are counted apart (they make mean +-inf or NaN and std NaN, as
 * numpy does) so they cannot poison the finite sums. */
#include "stats.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void stats_moments_init(stats_moments_t *m) {
  m->n = 0;
  m->mean = m->m2 = 0;
  m->min = INFINITY;
  m->max = -INFINITY;
  m->npinf = m->nminf = 0;
}

static void merge_raw(stats_moments_t *a, uint64_t nb, double meanb, double m2b) {
  if (nb == 0)
    return;
  if (a->n == 0) {
    a->n = nb;
    a->mean = meanb;
    a->m2 = m2b;
    return;
  }
  double na = (double)a->n, nbd = (double)nb, n = na + nbd;
  double d = meanb - a->mean;
  a->mean += d * (nbd / n);
  a->m2 += m2b + d * d * (na * nbd / n);
  a->n += nb;
}

#if defined(__x86_64__)
/* The SSE2 loops further down with one 256-bit register where they use two:
 * lane k still holds the values at i = k mod 4, and the lanes are combined
 * in the same order, so the results are the same bits in half the
 * instructions (no FMA: mul and add round apart, as in the SSE2 loops). */
__attribute__((target("avx2"))) static size_t
sum_min_max_avx2(const double *v, size_t n, double *s, double *lo, double *hi) {
  size_t i = 0;
  __m256d s4 = _mm256_setzero_pd(), lo4 = _mm256_set1_pd(*lo), hi4 = _mm256_set1_pd(*hi);
#pragma GCC unroll 2
  for (; i + 4 <= n; i += 4) {
    __m256d a = _mm256_loadu_pd(v + i);
    s4 = _mm256_add_pd(s4, a);
    lo4 = _mm256_min_pd(a, lo4);
    hi4 = _mm256_max_pd(a, hi4);
  }
  double t[2], l[2], h[2];
  _mm_storeu_pd(t, _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1)));
  _mm_storeu_pd(l, _mm_min_pd(_mm256_castpd256_pd128(lo4), _mm256_extractf128_pd(lo4, 1)));
  _mm_storeu_pd(h, _mm_max_pd(_mm256_castpd256_pd128(hi4), _mm256_extractf128_pd(hi4, 1)));
  *s = t[0] + t[1];
  *lo = l[0] < l[1] ? l[0] : l[1];
  *hi = h[0] > h[1] ? h[0] : h[1];
  return i;
}

__attribute__((target("avx2"))) static size_t sum_sq_dev_avx2(const double *v, size_t n,
                                                              double mean, double *q) {
  size_t i = 0;
  const __m256d mu = _mm256_set1_pd(mean);
  __m256d q4 = _mm256_setzero_pd();
#pragma GCC unroll 2
  for (; i + 4 <= n; i += 4) {
    __m256d a = _mm256_sub_pd(_mm256_loadu_pd(v + i), mu);
    q4 = _mm256_add_pd(q4, _mm256_mul_pd(a, a));
  }
  double t[2];
  _mm_storeu_pd(t, _mm_add_pd(_mm256_castpd256_pd128(q4), _mm256_extractf128_pd(q4, 1)));
  *q = t[0] + t[1];
  return i;
}

/* The same with two 128-bit registers (SSE2, every x86-64). */
static size_t sum_min_max_sse2(const double *v, size_t n, double *s, double *lo, double *hi) {
  size_t i = 0;
  __m128d s0 = _mm_setzero_pd(), s1 = s0, lo0 = _mm_set1_pd(*lo), lo1 = lo0,
          hi0 = _mm_set1_pd(*hi), hi1 = hi0;
  for (; i + 4 <= n; i += 4) {
    __m128d a = _mm_loadu_pd(v + i), b = _mm_loadu_pd(v + i + 2);
    s0 = _mm_add_pd(s0, a);
    s1 = _mm_add_pd(s1, b);
    lo0 = _mm_min_pd(a, lo0); /* (a < lo) ? a : lo, like the scalar code */
    lo1 = _mm_min_pd(b, lo1);
    hi0 = _mm_max_pd(a, hi0);
    hi1 = _mm_max_pd(b, hi1);
  }
  double t[2], l[2], h[2];
  _mm_storeu_pd(t, _mm_add_pd(s0, s1));
  _mm_storeu_pd(l, _mm_min_pd(lo0, lo1));
  _mm_storeu_pd(h, _mm_max_pd(hi0, hi1));
  *s = t[0] + t[1];
  *lo = l[0] < l[1] ? l[0] : l[1];
  *hi = h[0] > h[1] ? h[0] : h[1];
  return i;
}

static size_t sum_sq_dev_sse2(const double *v, size_t n, double mean, double *q) {
  size_t i = 0;
  const __m128d mu = _mm_set1_pd(mean);
  __m128d q0 = _mm_setzero_pd(), q1 = q0;
  for (; i + 4 <= n; i += 4) {
    __m128d a = _mm_sub_pd(_mm_loadu_pd(v + i), mu), b = _mm_sub_pd(_mm_loadu_pd(v + i + 2), mu);
    q0 = _mm_add_pd(q0, _mm_mul_pd(a, a));
    q1 = _mm_add_pd(q1, _mm_mul_pd(b, b));
  }
  double t[2];
  _mm_storeu_pd(t, _mm_add_pd(q0, q1));
  *q = t[0] + t[1];
  return i;
}
#endif

/* Sum, min and max of v[0..n) (four independent partial sums: one
 * accumulator would cost an FP-add latency per value), then the last few
 * values in order. */
static void sum_min_max(const double *v, size_t n, double *sum, double *mn, double *mx) {
  double s, lo = *mn, hi = *mx;
#if defined(__x86_64__)
  size_t i = stats_sketch_isa(-1) >= 1 ? sum_min_max_avx2(v, n, &s, &lo, &hi)
                         : sum_min_max_sse2(v, n, &s, &lo, &hi);
#else
  size_t i = 0;
  double s4[4] = {0, 0, 0, 0};
  for (; i + 4 <= n; i += 4)
    for (int u = 0; u < 4; u++) {
      double x = v[i + u];
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
      s4[u] += x;
    }
  s = (s4[0] + s4[2]) + (s4[1] + s4[3]);
#endif
  for (; i < n; i++) {
    lo = v[i] < lo ? v[i] : lo;
    hi = v[i] > hi ? v[i] : hi;
    s += v[i];
  }
  *sum = s;
  *mn = lo;
  *mx = hi;
}

/* Sum of (v[i] - mean)^2 over v[0..n), in the same order. */
static double sum_sq_dev(const double *v, size_t n, double mean) {
  double q;
#if defined(__x86_64__)
  size_t i = stats_sketch_isa(-1) >= 1 ? sum_sq_dev_avx2(v, n, mean, &q) : sum_sq_dev_sse2(v, n, mean, &q);
#else
  size_t i = 0;
  double q4[4] = {0, 0, 0, 0};
  for (; i + 4 <= n; i += 4)
    for (int u = 0; u < 4; u++) {
      double d = v[i + u] - mean;
      q4[u] += d * d;
    }
  q = (q4[0] + q4[2]) + (q4[1] + q4[3]);
#endif
  for (; i < n; i++) {
    double d = v[i] - mean;
    q += d * d;
  }
  return q;
}

void stats_moments_add_block_mm(stats_moments_t *m, const double *v, size_t n,
                                double *bmin, double *bmax) {
  double sum, mn = bmin ? *bmin : INFINITY, mx = bmax ? *bmax : -INFINITY;
  sum_min_max(v, n, &sum, &mn, &mx);
  if (bmin) {
    *bmin = mn;
    *bmax = mx;
  }
  m->min = mn < m->min ? mn : m->min;
  m->max = mx > m->max ? mx : m->max;
  size_t k = n, i;
  if (!isfinite(sum)) { /* infinities (or an overflow): count them apart */
    sum = 0;
    k = 0;
    for (i = 0; i < n; i++) {
      double x = v[i];
      if (isfinite(x)) {
        sum += x;
        k++;
      } else if (x > 0) {
        m->npinf++;
      } else {
        m->nminf++;
      }
    }
  }
  if (k == 0)
    return;
  double mean = sum / (double)k, q = 0;
  if (k == n) {
    q = sum_sq_dev(v, n, mean);
  } else {
    for (i = 0; i < n; i++)
      if (isfinite(v[i])) {
        double d = v[i] - mean;
        q += d * d;
      }
  }
  merge_raw(m, k, mean, q);
}

void stats_moments_add_block(stats_moments_t *m, const double *v, size_t n) {
  stats_moments_add_block_mm(m, v, n, NULL, NULL);
}

void stats_moments_merge(stats_moments_t *a, const stats_moments_t *b) {
  merge_raw(a, b->n, b->mean, b->m2);
  if (b->min < a->min)
    a->min = b->min;
  if (b->max > a->max)
    a->max = b->max;
  a->npinf += b->npinf;
  a->nminf += b->nminf;
}

uint64_t stats_moments_count(const stats_moments_t *m) {
  return m->n + m->npinf + m->nminf;
}

double stats_moments_mean(const stats_moments_t *m) {
  if (m->npinf && m->nminf)
    return NAN;
  if (m->npinf)
    return INFINITY;
  if (m->nminf)
    return -INFINITY;
  return m->n ? m->mean : NAN;
}

double stats_moments_std(const stats_moments_t *m) {
  if (m->npinf || m->nminf || m->n < 2)
    return NAN;
  return sqrt(m->m2 / (double)(m->n - 1));
}
