/* Deterministic mergeable quantile sketch and exact selection.
 *
 * Level h holds items of weight 2^h.  When a level reaches k items it is
 * sorted and an even number of them (all, or all but the largest) is halved:
 * the items at even or at odd positions (alternating per level) move up with
 * double weight.  For any query value y, halving a sorted run changes the
 * weighted count of items <= y by at most one weight 2^h, so the sum of the
 * weights of all compactions (`err`) bounds the rank error of every answer.
 * Every compaction at level h consumes at least k-1 items and at most n/2^h
 * weight ever reaches level h, so err <= n/(k-1) per level with compactions,
 * i.e. err <= n * (floor(log2(n/(k-1))) + 1) / (k-1) however the sketches
 * were built and merged.  stats_sketch_pick_k() picks k from that. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t d2k(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return (u >> 63) ? ~u : u ^ 0x8000000000000000ULL;
}
static inline double k2d(uint64_t u) {
  u = (u >> 63) ? u ^ 0x8000000000000000ULL : ~u;
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static void isort_u64(uint64_t *a, size_t n) {
  for (size_t i = 1; i < n; i++) {
    uint64_t x = a[i];
    size_t j = i;
    while (j > 0 && a[j - 1] > x) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = x;
  }
}

/* MSD radix sort: 11-bit digits taken just below the longest prefix shared by
 * every key of the (sub)array, so data in a narrow range is usually sorted
 * after one scatter pass plus insertion sorts of tiny buckets. */
static void msd_sort(uint64_t *a, uint64_t *tmp, size_t n) {
  if (n <= 24) {
    isort_u64(a, n);
    return;
  }
  uint64_t mn = a[0], mx = a[0];
  for (size_t i = 1; i < n; i++) {
    mn = a[i] < mn ? a[i] : mn;
    mx = a[i] > mx ? a[i] : mx;
  }
  if (mn == mx)
    return;
  /* digit width: about log2(n), so the bucket bookkeeping stays O(n) */
  int bits = 64 - __builtin_clzll((uint64_t)n);
  bits = bits > 11 ? 11 : bits < 4 ? 4 : bits;
  const uint32_t nb = 1u << bits, mask = nb - 1;
  int top = 63 - __builtin_clzll(mn ^ mx);
  int shift = top >= bits - 1 ? top - (bits - 1) : 0;
  uint32_t cnt[2048 + 1];
  memset(cnt, 0, (nb + 1) * sizeof *cnt);
  for (size_t i = 0; i < n; i++)
    cnt[((a[i] >> shift) & mask) + 1]++;
  for (uint32_t d = 0; d < nb; d++)
    cnt[d + 1] += cnt[d];
  uint32_t pos[2048];
  memcpy(pos, cnt, nb * sizeof *pos);
  for (size_t i = 0; i < n; i++)
    tmp[pos[(a[i] >> shift) & mask]++] = a[i];
  memcpy(a, tmp, n * sizeof *a);
  if (shift == 0)
    return;
  for (uint32_t d = 0; d < nb; d++) {
    size_t b = cnt[d], e = cnt[d + 1];
    if (e - b > 1)
      msd_sort(a + b, tmp + b, e - b);
  }
}

/* Usual case: three LSD passes of 11 bits on the 33 bits below the prefix
 * that all keys share, then an insertion pass for keys that agree on those
 * bits.  Falls back to msd_sort() when that pass would do too much work. */
static void lsd33_sort(uint64_t *a, uint64_t *tmp, size_t n) {
  uint64_t mn = a[0], mx = a[0];
  for (size_t i = 1; i < n; i++) {
    mn = a[i] < mn ? a[i] : mn;
    mx = a[i] > mx ? a[i] : mx;
  }
  if (mn == mx)
    return;
  int top = 63 - __builtin_clzll(mn ^ mx);
  int shift = top >= 32 ? top - 32 : 0;
  uint32_t h[3][2048];
  memset(h, 0, sizeof h);
  for (size_t i = 0; i < n; i++) {
    uint64_t k = a[i] >> shift;
    h[0][k & 2047]++;
    h[1][(k >> 11) & 2047]++;
    h[2][(k >> 22) & 2047]++;
  }
  uint64_t *src = a, *dst = tmp;
  for (int d = 0; d < 3; d++) {
    if (h[d][((a[0] >> shift) >> (11 * d)) & 2047] == n)
      continue; /* every key has the same digit here */
    uint32_t sum = 0;
    for (int i = 0; i < 2048; i++) {
      uint32_t c = h[d][i];
      h[d][i] = sum;
      sum += c;
    }
    int sh = shift + 11 * d;
    for (size_t i = 0; i < n; i++)
      dst[h[d][(src[i] >> sh) & 2047]++] = src[i];
    uint64_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != a)
    memcpy(a, src, n * sizeof *a);
  if (shift == 0)
    return;
  size_t moves = 0, budget = 8 * n;
  for (size_t i = 1; i < n; i++) {
    uint64_t x = a[i];
    size_t j = i;
    while (j > 0 && a[j - 1] > x) {
      a[j] = a[j - 1];
      j--;
      if (++moves > budget) {
        a[j] = x;
        msd_sort(a, tmp, n);
        return;
      }
    }
    a[j] = x;
  }
}

void stats_sort_doubles(double *v, size_t n, double *tmp) {
  if (n < 2)
    return;
  uint64_t *a = (uint64_t *)v;
  for (size_t i = 0; i < n; i++)
    a[i] = d2k(v[i]);
  if (n <= 256)
    msd_sort(a, (uint64_t *)tmp, n);
  else
    lsd33_sort(a, (uint64_t *)tmp, n);
  for (size_t i = 0; i < n; i++)
    v[i] = k2d(a[i]);
}

static double bound_frac(uint64_t n, uint32_t k) {
  if (n < k)
    return 0;
  double h = floor(log2((double)n / (double)(k - 1))) + 1;
  return h / (double)(k - 1);
}

uint32_t stats_sketch_pick_k(uint64_t nmax, double frac) {
  uint32_t k = 4096; /* below 4096 values per column quantiles stay exact */
  while (k < (1u << 20) && bound_frac(nmax, k) > frac)
    k *= 2;
  return k;
}

int stats_sketch_init(stats_sketch_t *s, uint32_t k) {
  memset(s, 0, sizeof *s);
  s->k = k < 4 ? 4 : k;
  s->nlev = 1;
  return 0;
}

void stats_sketch_free(stats_sketch_t *s) {
  for (uint32_t h = 0; h < STATS_SKETCH_MAXLEV; h++)
    free(s->lev[h].v);
  memset(s, 0, sizeof *s);
}

static int lev_reserve(stats_sketch_t *s, uint32_t h, size_t extra) {
  size_t want = (size_t)s->lev[h].len + extra;
  if (want <= s->lev[h].cap)
    return 0;
  size_t cap = s->lev[h].cap ? s->lev[h].cap : 64;
  while (cap < want)
    cap *= 2;
  double *p = realloc(s->lev[h].v, cap * sizeof *p);
  if (!p)
    return MPC_ENOMEM;
  s->lev[h].v = p;
  s->lev[h].cap = (uint32_t)cap;
  return 0;
}

static int compact_from(stats_sketch_t *s, uint32_t h) {
  for (; h + 1 < STATS_SKETCH_MAXLEV && s->lev[h].len >= s->k; h++) {
    uint32_t m = s->lev[h].len;
    double *tmp = malloc((size_t)m * sizeof *tmp);
    if (!tmp)
      return MPC_ENOMEM;
    double *v = s->lev[h].v;
    /* Levels above 0 are usually two sorted runs (halves of sorted runs
     * appended one after the other): merge instead of sorting. */
    uint32_t cut = 0, desc = 0;
    for (uint32_t i = 1; i < m && desc < 2; i++)
      if (v[i] < v[i - 1]) {
        desc++;
        cut = i;
      }
    if (desc == 1) {
      uint32_t i = 0, j = cut, o = 0;
      while (i < cut && j < m) { /* branch-free: the comparison is data-dependent */
        double a = v[i], b = v[j];
        int tb = b < a;
        tmp[o++] = tb ? b : a;
        j += (uint32_t)tb;
        i += (uint32_t)!tb;
      }
      while (i < cut)
        tmp[o++] = v[i++];
      while (j < m)
        tmp[o++] = v[j++];
      memcpy(v, tmp, (size_t)m * sizeof *v);
    } else if (desc > 1) {
      stats_sort_doubles(v, m, tmp);
    }
    free(tmp);
    uint32_t even = m & ~1u;
    uint32_t off = (s->flip >> h) & 1;
    s->flip ^= 1u << h;
    if (lev_reserve(s, h + 1, even / 2))
      return MPC_ENOMEM;
    double *up = s->lev[h + 1].v + s->lev[h + 1].len;
    for (uint32_t i = off; i < even; i += 2)
      *up++ = v[i];
    s->lev[h + 1].len += even / 2;
    if (m & 1)
      v[0] = v[m - 1]; /* the largest stays behind */
    s->lev[h].len = m - even;
    s->err += 1ULL << h;
    if (s->nlev < h + 2)
      s->nlev = h + 2;
  }
  return 0;
}

int stats_sketch_add(stats_sketch_t *s, const double *v, size_t n) {
  while (n > 0) {
    size_t room = s->k - s->lev[0].len;
    size_t take = n < room ? n : room;
    if (lev_reserve(s, 0, take))
      return MPC_ENOMEM;
    memcpy(s->lev[0].v + s->lev[0].len, v, take * sizeof *v);
    s->lev[0].len += (uint32_t)take;
    s->n += take;
    v += take;
    n -= take;
    int rc = compact_from(s, 0);
    if (rc)
      return rc;
  }
  return 0;
}

int stats_sketch_merge(stats_sketch_t *a, const stats_sketch_t *b) {
  if (a->k != b->k)
    return MPC_EINVAL;
  for (uint32_t h = 0; h < b->nlev; h++) {
    if (b->lev[h].len == 0)
      continue;
    if (lev_reserve(a, h, b->lev[h].len))
      return MPC_ENOMEM;
    memcpy(a->lev[h].v + a->lev[h].len, b->lev[h].v,
           (size_t)b->lev[h].len * sizeof(double));
    a->lev[h].len += b->lev[h].len;
  }
  if (a->nlev < b->nlev)
    a->nlev = b->nlev;
  a->n += b->n;
  a->err += b->err;
  a->flip ^= b->flip;
  for (uint32_t h = 0; h < a->nlev; h++) {
    int rc = compact_from(a, h);
    if (rc)
      return rc;
  }
  return 0;
}

double stats_lerp(double a, double b, double t) {
  double d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

typedef struct {
  double v;
  uint64_t w;
} witem_t;

static int witem_cmp(const void *x, const void *y) {
  double a = ((const witem_t *)x)->v, b = ((const witem_t *)y)->v;
  return (a > b) - (a < b);
}

int stats_sketch_quantiles(const stats_sketch_t *s, const double *qs, size_t nq,
                           double *out) {
  size_t m = 0;
  for (uint32_t h = 0; h < s->nlev; h++)
    m += s->lev[h].len;
  if (m == 0 || s->n == 0) {
    for (size_t i = 0; i < nq; i++)
      out[i] = NAN;
    return 0;
  }
  witem_t *it = malloc(m * sizeof *it);
  if (!it)
    return MPC_ENOMEM;
  size_t j = 0;
  for (uint32_t h = 0; h < s->nlev; h++)
    for (uint32_t i = 0; i < s->lev[h].len; i++)
      it[j++] = (witem_t){s->lev[h].v[i], 1ULL << h};
  qsort(it, m, sizeof *it, witem_cmp);
  uint64_t total = 0;
  for (size_t i = 0; i < m; i++)
    total += it[i].w;
  for (size_t i = 0; i < nq; i++) {
    double r = qs[i] * (double)(total - 1);
    double lo = floor(r);
    uint64_t rl = (uint64_t)lo, rh = rl + 1 < total ? rl + 1 : rl;
    double vl = NAN, vh = NAN;
    uint64_t c = 0;
    for (size_t x = 0; x < m; x++) {
      if (rl >= c && rl < c + it[x].w)
        vl = it[x].v;
      if (rh >= c && rh < c + it[x].w) {
        vh = it[x].v;
        break;
      }
      c += it[x].w;
    }
    out[i] = stats_lerp(vl, vh, r - lo);
  }
  free(it);
  return 0;
}

int stats_sketch_write(const stats_sketch_t *s, mpc_buf_t *out) {
  uint64_t hdr[5] = {s->k, s->nlev, s->n, s->err, s->flip};
  int rc = mpc_buf_append(out, hdr, sizeof hdr);
  for (uint32_t h = 0; !rc && h < s->nlev; h++) {
    uint64_t len = s->lev[h].len;
    rc = mpc_buf_append(out, &len, sizeof len);
    if (!rc)
      rc = mpc_buf_append(out, s->lev[h].v, len * sizeof(double));
  }
  return rc;
}

size_t stats_sketch_read(stats_sketch_t *s, const unsigned char *p, size_t len) {
  uint64_t hdr[5];
  if (len < sizeof hdr)
    return 0;
  memcpy(hdr, p, sizeof hdr);
  if (hdr[1] > STATS_SKETCH_MAXLEV || hdr[0] < 4 || hdr[0] > (1u << 24))
    return 0;
  stats_sketch_init(s, (uint32_t)hdr[0]);
  s->nlev = (uint32_t)hdr[1];
  s->n = hdr[2];
  s->err = hdr[3];
  s->flip = (uint32_t)hdr[4];
  size_t off = sizeof hdr;
  for (uint32_t h = 0; h < s->nlev; h++) {
    uint64_t n;
    if (len - off < sizeof n)
      goto bad;
    memcpy(&n, p + off, sizeof n);
    off += sizeof n;
    if (n > (len - off) / sizeof(double))
      goto bad;
    if (n && lev_reserve(s, h, n))
      goto bad;
    if (n)
      memcpy(s->lev[h].v, p + off, n * sizeof(double));
    s->lev[h].len = (uint32_t)n;
    off += n * sizeof(double);
  }
  return off;
bad:
  stats_sketch_free(s);
  return 0;
}

/* Number of items <= key in a sorted run. */
static uint64_t count_le(const double *r, uint64_t n, uint64_t key) {
  uint64_t lo = 0, hi = n;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (d2k(r[mid]) <= key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

double stats_select_runs(const double *const *runs, const uint64_t *lens,
                         size_t nruns, uint64_t rank) {
  /* Smallest key K with count(<= K) > rank. */
  uint64_t lo = 0, hi = UINT64_MAX;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2, c = 0;
    for (size_t i = 0; i < nruns; i++)
      c += count_le(runs[i], lens[i], mid);
    if (c > rank)
      hi = mid;
    else
      lo = mid + 1;
  }
  return k2d(lo);
}
