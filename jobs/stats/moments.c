/* Per-column moments.  Values arrive in blocks; a block's mean and M2 are
 * computed two-pass (accurate), then folded into the running totals with
 * Chan, Golub and LeVeque's pairwise update:
 *   n = na + nb, d = mean_b - mean_a,
 *   mean = mean_a + d * nb / n,  M2 = M2a + M2b + d^2 * na * nb / n.
 * Infinities are counted apart (they make mean +-inf or NaN and std NaN, as
 * numpy does) so they cannot poison the finite sums. */
#include "stats.h"

#include <math.h>

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

void stats_moments_add_block(stats_moments_t *m, const double *v, size_t n) {
  /* Four independent partial sums: the serial dependency on one accumulator
   * would cost an FP-add latency per value. */
  double s4[4] = {0, 0, 0, 0}, mn = m->min, mx = m->max;
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int u = 0; u < 4; u++) {
      double x = v[i + u];
      mn = x < mn ? x : mn;
      mx = x > mx ? x : mx;
      s4[u] += x;
    }
  for (; i < n; i++) {
    mn = v[i] < mn ? v[i] : mn;
    mx = v[i] > mx ? v[i] : mx;
    s4[0] += v[i];
  }
  double sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
  size_t k = n;
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
  m->min = mn;
  m->max = mx;
  if (k == 0)
    return;
  double mean = sum / (double)k, q4[4] = {0, 0, 0, 0};
  if (k == n) {
    for (i = 0; i + 4 <= n; i += 4)
      for (int u = 0; u < 4; u++) {
        double d = v[i + u] - mean;
        q4[u] += d * d;
      }
    for (; i < n; i++) {
      double d = v[i] - mean;
      q4[0] += d * d;
    }
  } else {
    for (i = 0; i < n; i++)
      if (isfinite(v[i])) {
        double d = v[i] - mean;
        q4[0] += d * d;
      }
  }
  merge_raw(m, k, mean, (q4[0] + q4[1]) + (q4[2] + q4[3]));
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
