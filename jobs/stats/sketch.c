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
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
/* Smallest and largest of a[0..n), n >= 1; 0 when they are equal. */
static inline int key_span(const uint64_t *a, size_t n, uint64_t *mn, uint64_t *mx) {
  uint64_t lo = a[0], hi = a[0];
  for (size_t i = 1; i < n; i++) {
    lo = a[i] < lo ? a[i] : lo;
    hi = a[i] > hi ? a[i] : hi;
  }
  *mn = lo;
  *mx = hi;
  return lo != hi;
}

static void msd_sort(uint64_t *a, uint64_t *tmp, size_t n) {
  if (n <= 24) {
    isort_u64(a, n);
    return;
  }
  uint64_t mn, mx;
  if (!key_span(a, n, &mn, &mx))
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
  uint64_t mn, mx;
  if (!key_span(a, n, &mn, &mx))
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

/* Worst case of err / n: compactions (see the top of the file) plus batch
 * summaries (at most 2.5 n / STATS_SKETCH_Q in all). */
static double bound_frac(uint64_t n, uint32_t k) {
  if (n < k)
    return 0;
  double h = floor(log2((double)n / (double)(k - 1))) + 1;
  return h / (double)(k - 1) + 2.5 / STATS_SKETCH_Q;
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

#define MAX_RUNS 16

/* Merge sorted a[0..na) and b[0..nb) into out. */
static void merge2(const double *a, uint32_t na, const double *b, uint32_t nb, double *out) {
  uint32_t i = 0, j = 0, o = 0;
  while (i < na && j < nb) { /* branch-free: the comparison is data-dependent */
    double x = a[i], y = b[j];
    int tb = y < x;
    out[o++] = tb ? y : x;
    j += (uint32_t)tb;
    i += (uint32_t)!tb;
  }
  while (i < na)
    out[o++] = a[i++];
  while (j < nb)
    out[o++] = b[j++];
}

static int compact_from(stats_sketch_t *s, uint32_t h) {
  for (; h + 1 < STATS_SKETCH_MAXLEV && s->lev[h].len >= s->k; h++) {
    uint32_t m = s->lev[h].len;
    double *tmp = malloc((size_t)m * sizeof *tmp);
    if (!tmp)
      return MPC_ENOMEM;
    double *v = s->lev[h].v;
    /* Levels above 0 are usually a few sorted runs (halves of sorted runs
     * and batch summaries, appended one after the other): merge them in
     * pairs instead of sorting when there are at most MAX_RUNS. */
    uint32_t st[MAX_RUNS + 1], nr = 1;
    st[0] = 0;
    for (uint32_t i = 1; i < m && nr <= MAX_RUNS; i++)
      if (v[i] < v[i - 1])
        st[nr++] = i;
    if (nr > MAX_RUNS) {
      stats_sort_doubles(v, m, tmp);
    } else if (nr > 1) {
      st[nr] = m;
      double *src = v, *dst = tmp;
      while (nr > 1) {
        uint32_t o = 0;
        for (uint32_t r = 0; r < nr; r += 2) {
          if (r + 1 == nr) { /* odd one out */
            memcpy(dst + st[r], src + st[r], (size_t)(st[r + 1] - st[r]) * sizeof *v);
            st[o++] = st[r];
            continue;
          }
          merge2(src + st[r], st[r + 1] - st[r], src + st[r + 1], st[r + 2] - st[r + 1],
                 dst + st[r]);
          st[o++] = st[r];
        }
        st[o] = m;
        nr = o;
        double *t = src;
        src = dst;
        dst = t;
      }
      if (src != v)
        memcpy(v, src, (size_t)m * sizeof *v);
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

/* ---- batch summaries --------------------------------------------------------
 *
 * A batch of n >= k values is not pushed through level 0 (a sort of every
 * value, then merges at each level) but summarised at once, without sorting.
 *
 * The values are split into buckets of disjoint, increasing value ranges by a
 * histogram pass (linear in the value, or linear in the order-preserving bit
 * pattern, roughly log-scale, when a sample says the first is unbalanced); a bucket with more than E = 2w values is
 * split again recursively unless all its values are equal.  This gives the
 * exact count of every bucket, one value from each ("rep"), and the bucket
 * order, but not the order inside a bucket.
 *
 * Conceptually the values are then in sorted order up to permutations inside
 * buckets.  Positions are cut into consecutive groups: G groups of w = 2^j
 * (see stats_sketch_add_batch_mm() for j and for the bucket size emax_ok),
 * then the remainder in decreasing powers of two.  A group of 2^h positions becomes one item at
 * level h (weight 2^h, so weights still add up to n): the rep of the bucket
 * holding the group's middle position.
 *
 * Rank error of the batch, for any query y: let bucket i hold the boundary
 * between values <= y and values > y, its positions [s_i, e_i).  Groups whose
 * middle is before s_i are counted, those whose middle is at or after e_i are
 * not, the others either way; counting by middles misses a boundary by at most
 * half a group.  So the estimate is within [s_i - w/2, e_i + w/2], the true
 * rank within [s_i, e_i]: error <= (e_i - s_i) + w/2 <= emax_ok + w/2, and
 * <= w/2 when bucket i holds a single value.  The sketch's err grows by the
 * largest bucket that is not a single value plus w/2, and emax_ok and w are
 * chosen so that this is at most 2.5 n / STATS_SKETCH_Q. */

#define SUMM_NB 16384
#define SUMM_DEPTH 40 /* 2 linear levels, then the key range shrinks 8x a level */

typedef struct summ {
  struct {
    uint32_t *cnt; /* 2 * SUMM_NB: counts, then write positions */
    uint64_t *rep; /* SUMM_NB */
    uint32_t *chg;        /* SUMM_NB */
    uint64_t *cc;         /* SUMM_NB: count | changes << 32, while tallying */
  } scr[SUMM_DEPTH];
  int nomem;
  uint64_t pos;        /* sorted position where the next bucket starts */
  const uint64_t *mid; /* group middles, ascending */
  size_t nmid, next;
  double *out;         /* out[i]: item for group i */
  uint32_t *bk;        /* 8 * bucket of each value: a byte offset into
                        * the tally's arrays of 64-bit words */
  uint64_t emax;       /* largest bucket that is not a single value */
} summ_t;

static inline uint64_t bits_of(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

/* Count value v into the bucket at byte offset o (8 * its number), and
 * whether it differs from the bucket's last value (on bit patterns: no NaN
 * tests).  A byte offset saves a scaling a value. */
static inline void tally(uint64_t *cc, uint64_t *rep, uint32_t o, double v) {
  uint64_t bits, *c = (uint64_t *)((char *)cc + o), *r = (uint64_t *)((char *)rep + o);
  memcpy(&bits, &v, sizeof bits);
  *c += 1 | (uint64_t)(*r != bits) << 32; /* one update for both counts */
  *r = bits;
}

#if defined(__x86_64__)
/* lin_buckets() eight at a time in 256-bit registers: the same operations
 * in the same order, so the same buckets */
__attribute__((target("avx2"))) static size_t lin_buckets_avx2(const double *a, size_t n,
                                                               double mn, double scale,
                                                               uint32_t nb, uint32_t *bk) {
  const __m256d vmn = _mm256_set1_pd(mn), vs = _mm256_set1_pd(scale),
                top = _mm256_set1_pd((double)(nb - 1));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d x0 = _mm256_min_pd(_mm256_mul_pd(_mm256_sub_pd(_mm256_loadu_pd(a + i), vmn), vs), top);
    __m256d x1 =
        _mm256_min_pd(_mm256_mul_pd(_mm256_sub_pd(_mm256_loadu_pd(a + i + 4), vmn), vs), top);
    _mm_storeu_si128((__m128i *)(bk + i), _mm_slli_epi32(_mm256_cvttpd_epi32(x0), 3));
    _mm_storeu_si128((__m128i *)(bk + i + 4), _mm_slli_epi32(_mm256_cvttpd_epi32(x1), 3));
  }
  return i;
}

#endif

/* 0: SSE2 (or plain C), 1: AVX2; -1: not chosen yet */
static int sketch_isa = -1, sketch_isa_max;

int stats_sketch_isa(int want) {
  if (sketch_isa < 0) {
#if defined(__x86_64__)
    sketch_isa_max = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    sketch_isa = sketch_isa_max;
  }
  if (want >= 0)
    sketch_isa = want < sketch_isa_max ? want : sketch_isa_max;
  return sketch_isa;
}

/* bk[i] = 8 * bucket of a[i] among nb (<= SUMM_NB) value-linear buckets
 * from mn */
static void lin_buckets(const double *a, size_t n, double mn, double scale, uint32_t nb,
                        uint32_t *bk) {
  size_t i = 0;
#if defined(__x86_64__)
  if (stats_sketch_isa(-1) >= 1)
    i = lin_buckets_avx2(a, n, mn, scale, nb, bk);
  const __m128d vmn = _mm_set1_pd(mn), vs = _mm_set1_pd(scale),
                top = _mm_set1_pd((double)(nb - 1));
  for (; i + 4 <= n; i += 4) { /* min before truncating: the same as clamping after */
    __m128d x0 = _mm_min_pd(_mm_mul_pd(_mm_sub_pd(_mm_loadu_pd(a + i), vmn), vs), top);
    __m128d x1 = _mm_min_pd(_mm_mul_pd(_mm_sub_pd(_mm_loadu_pd(a + i + 2), vmn), vs), top);
    __m128i b = _mm_unpacklo_epi64(_mm_cvttpd_epi32(x0), _mm_cvttpd_epi32(x1));
    _mm_storeu_si128((__m128i *)(bk + i), _mm_slli_epi32(b, 3));
  }
#endif
  for (; i < n; i++) {
    uint32_t b = (uint32_t)((a[i] - mn) * scale);
    bk[i] = (b < nb ? b : nb - 1) << 3;
  }
}

/* bk[i] = 8 * bucket of a[i] among nb (<= SUMM_NB) buckets linear in the
 * order-preserving key: (d2k(a[i]) - kmn) >> shift */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static size_t key_buckets_avx2(const double *a, size_t n,
                                                               uint64_t kmn, int shift,
                                                               uint32_t *bk) {
  const __m256i top = _mm256_set1_epi64x((long long)0x8000000000000000ULL),
                vmn = _mm256_set1_epi64x((long long)kmn),
                low = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m128i sh = _mm_cvtsi32_si128(shift);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256i u = _mm256_loadu_si256((const __m256i *)(a + i));
    /* d2k: ~u for negative values, u with the top bit flipped otherwise */
    __m256i k = _mm256_xor_si256(u, _mm256_or_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), u), top));
    k = _mm256_srl_epi64(_mm256_sub_epi64(k, vmn), sh);
    __m128i k4 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(k, low));
    _mm_storeu_si128((__m128i *)(bk + i), _mm_slli_epi32(k4, 3));
  }
  return i;
}
#endif

static void key_buckets(const double *a, size_t n, uint64_t kmn, int shift, uint32_t *bk) {
  size_t i = 0;
#if defined(__x86_64__)
  if (stats_sketch_isa(-1) >= 1)
    i = key_buckets_avx2(a, n, kmn, shift, bk);
#endif
  for (; i < n; i++)
    bk[i] = (uint32_t)((d2k(a[i]) - kmn) >> shift) << 3;
}

/* p[0..n) = v */
static void fill64(uint64_t *p, uint64_t v, size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  const __m128i x = _mm_set1_epi64x((long long)v);
  for (; i + 4 <= n; i += 4) {
    _mm_storeu_si128((__m128i *)(p + i), x);
    _mm_storeu_si128((__m128i *)(p + i + 2), x);
  }
#endif
  for (; i < n; i++)
    p[i] = v;
}

/* One pass over the tallies: the largest count, the buckets to split (more
 * than emax_ok values, not all the same) and how many values they hold. */
/* tally() for a[0..n) into the buckets bk[] gave them. */
static inline __attribute__((always_inline)) void tally_all(uint64_t *cc, uint64_t *rep,
                                                            const uint32_t *bk,
                                                            const double *a, size_t n) {
#pragma GCC unroll 2
  for (size_t i = 0; i < n; i++)
    tally(cc, rep, bk[i], a[i]);
}

static void scan_tallies(const uint64_t *cc, uint32_t nb, uint64_t emax_ok, uint32_t *most,
                         uint32_t *heavy, uint32_t *packed) {
  uint32_t mo = 0, hv = 0, pk = 0;
  for (uint32_t b = 0; b < nb; b++) {
    uint32_t c = (uint32_t)cc[b], h = (uint32_t)(cc[b] >> 32);
    int sp = c > emax_ok && h > 1;
    mo = c > mo ? c : mo;
    hv += (uint32_t)sp;
    pk += sp ? c : 0;
  }
  *most = mo;
  *heavy = hv;
  *packed = pk;
}

static inline void summ_leaf(summ_t *z, uint64_t cnt, uint64_t repbits, int single) {
  double rep;
  memcpy(&rep, &repbits, sizeof rep);
  uint64_t end = z->pos + cnt;
  while (z->next < z->nmid && z->mid[z->next] < end)
    z->out[z->next++] = rep;
  z->pos = end;
  if (!single && cnt > z->emax)
    z->emax = cnt;
}


static void min_max(const double *a, size_t n, double *mnp, double *mxp) {
  double mn4[4] = {a[0], a[0], a[0], a[0]}, mx4[4] = {a[0], a[0], a[0], a[0]};
  size_t i4 = 0;
  for (; i4 + 4 <= n; i4 += 4) /* four independent chains */
    for (int u = 0; u < 4; u++) {
      mn4[u] = a[i4 + u] < mn4[u] ? a[i4 + u] : mn4[u];
      mx4[u] = a[i4 + u] > mx4[u] ? a[i4 + u] : mx4[u];
    }
  for (; i4 < n; i4++) {
    mn4[0] = a[i4] < mn4[0] ? a[i4] : mn4[0];
    mx4[0] = a[i4] > mx4[0] ? a[i4] : mx4[0];
  }
  double mn = mn4[0], mx = mx4[0];
  for (int u = 1; u < 4; u++) {
    mn = mn4[u] < mn ? mn4[u] : mn;
    mx = mx4[u] > mx ? mx4[u] : mx;
  }
  *mnp = mn;
  *mxp = mx;
}

static void summ_split(summ_t *z, double *a, double *t, size_t n, uint64_t emax_ok,
                       int depth, const double *mm) {
  if (n <= emax_ok) {
    summ_leaf(z, n, bits_of(a[0]), n == 1);
    return;
  }
  double mn, mx;
  if (mm) { /* known from the caller */
    mn = mm[0];
    mx = mm[1];
  } else {
    min_max(a, n, &mn, &mx);
  }
  if (mn == mx) {
    summ_leaf(z, n, bits_of(mn), 1);
    return;
  }
  double range = mx - mn;
  int linear = depth < 2 && isfinite(range) && (double)SUMM_NB / range < 1e300;
  uint32_t big = 0;
  if (linear && depth == 0) {
    /* a sample decides whether the value-linear buckets are balanced enough
     * (they are not for log-like data or outliers); one level down, inside
     * one bucket, they usually are, and the check after the pass catches
     * the rest */
    uint32_t sc[64] = {0};
    double sscale = 64.0 / range;
    size_t step = n / 256 ? n / 256 : 1;
    for (size_t i = 0; i < n; i += step) {
      uint32_t b = (uint32_t)((a[i] - mn) * sscale);
      b = b < 64 ? b : 63;
      big = ++sc[b] > big ? sc[b] : big;
    }
    if (big > 64)
      linear = 0;
  }
  /* about 8 buckets per allowed bucket size, at most SUMM_NB / 2; at the
   * top, for values that are not spread evenly (a sample bucket of the 64
   * with three times its share, or log-like values), up to SUMM_NB: the
   * dense part then fills fewer buckets past the allowed size, which would
   * each cost a pass over their values one level down.  Even values do
   * better with the smaller tables (they stay in cache). */
  const uint32_t nbmax = depth == 0 && (!linear || big > 12) ? SUMM_NB : SUMM_NB / 2;
  uint32_t nb = 16;
  while (nb < nbmax && (uint64_t)nb * emax_ok < 8 * (uint64_t)n)
    nb *= 2;
  if (depth >= SUMM_DEPTH) { /* cannot happen: key digits narrow every level */
    z->nomem = 1;
    return;
  }
  if (!z->scr[depth].cnt) {
    z->scr[depth].cnt = malloc(2 * SUMM_NB * sizeof(uint32_t));
    z->scr[depth].rep = malloc(SUMM_NB * sizeof(uint64_t));
    z->scr[depth].chg = malloc(SUMM_NB * sizeof(uint32_t));
    z->scr[depth].cc = malloc(SUMM_NB * sizeof(uint64_t));
    if (!z->scr[depth].cnt || !z->scr[depth].rep || !z->scr[depth].chg || !z->scr[depth].cc) {
      z->nomem = 1;
      return;
    }
  }
  uint32_t(*cnt)[SUMM_NB] = (uint32_t(*)[SUMM_NB])z->scr[depth].cnt;
  /* rep[b]: the bits of the last value seen in bucket b (a NaN: none yet,
   * values are never NaN); chg[b]: how often a value differed from the one
   * before it in b, so 1 when all of b's values are the same (SPLIT: b is to
   * be split further).  Comparing bits is one integer compare; it tells -0
   * from +0, which only makes such a bucket count as mixed. */
  uint64_t *rep = z->scr[depth].rep;
  uint32_t *chg = z->scr[depth].chg;
  uint64_t *cc = z->scr[depth].cc;
  const uint64_t none = 0x7FF8000000000000ULL;
  const uint32_t SPLIT = UINT32_MAX;
  memset(cc, 0, nb * sizeof *cc);
  fill64(rep, none, nb);
  const double scale = (double)nb / range;
  int shift = 0;
  uint64_t kmn = d2k(mn);
  uint32_t most, heavy, packed;
  if (linear) {
    lin_buckets(a, n, mn, scale, nb, z->bk);
    tally_all(cc, rep, z->bk, a, n);
    scan_tallies(cc, nb, emax_ok, &most, &heavy, &packed);
    if (most > n / 2) { /* the sample missed the skew: use bit digits */
      linear = 0;
      memset(cc, 0, nb * sizeof *cc);
      fill64(rep, none, nb);
    }
  }
  if (!linear) {
    /* linear in the order-preserving key: about log-scale for one sign */
    uint64_t kr = d2k(mx) - kmn;
    while ((kr >> shift) >= nb)
      shift++;
    key_buckets(a, n, kmn, shift, z->bk);
    tally_all(cc, rep, z->bk, a, n);
    scan_tallies(cc, nb, emax_ok, &most, &heavy, &packed);
  }
  if (heavy == 0) { /* summ_leaf() for every bucket, the state in registers */
    uint64_t pos = z->pos, emax = z->emax;
    size_t next = z->next;
    const size_t nmid = z->nmid;
    const uint64_t *mid = z->mid;
    double *out = z->out;
    for (uint32_t b = 0; b < nb; b++) {
      uint32_t c = (uint32_t)cc[b];
      if (!c)
        continue;
      uint64_t end = pos + c;
      while (next < nmid && mid[next] < end)
        memcpy(&out[next++], &rep[b], sizeof *out);
      pos = end;
      if ((uint32_t)(cc[b] >> 32) != 1 && c > emax)
        emax = c;
    }
    z->pos = pos;
    z->emax = emax;
    z->next = next;
    return;
  }
  /* gather the values of the big buckets, packed in bucket order, into t;
   * without a branch: the others are all written to one spare slot after
   * the packed values (there is one when there are others) */
  uint32_t *wp = cnt[1];
  uint32_t off = 0;
  const uint32_t spare = packed;
  for (uint32_t b = 0; b < nb; b++) {
    uint32_t c = (uint32_t)cc[b], h = (uint32_t)(cc[b] >> 32);
    int sp = c > emax_ok && h > 1;
    cnt[0][b] = c;
    chg[b] = sp ? SPLIT : h;
    wp[b] = sp ? off : spare;
    off += sp ? c : 0;
  }
  const uint32_t *bk = z->bk;
  for (size_t i = 0; i < n; i++) { /* bk[] still holds the buckets */
    uint32_t b = bk[i] >> 3;
    t[wp[b]] = a[i];
    wp[b] += chg[b] == SPLIT;
  }
  off = 0;
  for (uint32_t b = 0; b < nb; b++) {
    uint32_t c = cnt[0][b];
    if (chg[b] == SPLIT) {
      summ_split(z, t + off, a + off, c, emax_ok, depth + 1, NULL);
      off += c;
    } else if (c) {
      summ_leaf(z, c, rep[b], chg[b] == 1);
    }
  }
}

static int lev_push(stats_sketch_t *s, uint32_t h, const void *v, size_t n) {
  if (lev_reserve(s, h, n))
    return MPC_ENOMEM;
  memcpy(s->lev[h].v + s->lev[h].len, v, n * sizeof(double));
  s->lev[h].len += (uint32_t)n;
  if (s->nlev < h + 1)
    s->nlev = h + 1;
  return 0;
}

int stats_sketch_add_batch(stats_sketch_t *s, double *a, size_t n, double *t) {
  return stats_sketch_add_batch_mm(s, a, n, t, NULL);
}

int stats_sketch_add_batch_mm(stats_sketch_t *s, double *a, size_t n, double *t,
                              const double *mm) {
  /* A batch may move any rank by 2.5 n / Q (bound_frac): half a group (w/2)
   * plus the largest mixed bucket (below emax_ok).  Buckets of n/2048 are
   * what one histogram of SUMM_NB buckets gives at a quarter full; the rest
   * of the budget goes to groups, so a batch leaves about Q/4 items instead
   * of Q, and whatever merges them (the master) has a quarter of the work. */
  const uint64_t budget = (uint64_t)n * 5 / (2 * STATS_SKETCH_Q);
  const uint64_t emin = n / 2048 ? n / 2048 : 1;
  uint32_t j = 0;
  while (budget > emin && (1ULL << j) <= budget - emin && j + 2 < STATS_SKETCH_MAXLEV)
    j++; /* the largest w = 2^j with w/2 <= budget - emin */
  uint64_t w = 1ULL << j, g = n >> j, rem = n - (g << j);
  const uint64_t emax_ok = budget > w / 2 ? budget - w / 2 : 1;
  size_t m = (size_t)g + (size_t)__builtin_popcountll(rem);
  if (n < s->k)
    return stats_sketch_add(s, a, n);
  double *out = malloc(m * sizeof *out);
  uint64_t *mid = malloc(m * sizeof *mid);
  int rc = MPC_ENOMEM;
  if (!mid || !out)
    goto done;
  size_t q = 0;
  for (uint64_t i = 0; i < g; i++)
    mid[q++] = i * w + w / 2;
  uint64_t start = g << j;
  for (uint32_t h = j; h-- > 0;)
    if (rem >> h & 1) {
      mid[q++] = start + ((1ULL << h) >> 1);
      start += 1ULL << h;
    }
  summ_t z;
  memset(&z, 0, sizeof z);
  z.mid = mid;
  z.nmid = m;
  z.out = out;
  z.bk = malloc(n * sizeof *z.bk);
  if (!z.bk)
    goto done;
  summ_split(&z, a, t, n, emax_ok, 0, mm);
  free(z.bk);
  for (int d = 0; d < SUMM_DEPTH; d++) {
    free(z.scr[d].cnt);
    free(z.scr[d].rep);
    free(z.scr[d].chg);
    free(z.scr[d].cc);
  }
  if (z.nomem)
    goto done;
  if (z.next != m) { /* every middle lies in some bucket: cannot happen */
    rc = MPC_EINVAL;
    goto done;
  }
  if ((rc = lev_push(s, j, out, (size_t)g)) != 0)
    goto done;
  q = (size_t)g;
  for (uint32_t h = j; h-- > 0;)
    if (rem >> h & 1)
      if ((rc = lev_push(s, h, out + q++, 1)) != 0)
        goto done;
  s->n += n;
  s->err += z.emax + w / 2;
  for (uint32_t h = 0; h <= j && !rc; h++)
    rc = compact_from(s, h);
done:
  free(mid);
  free(out);
  return rc;
}

int stats_sketch_add(stats_sketch_t *s, const double *v, size_t n) {
  if (n >= s->k) {
    double *a = malloc(2 * n * sizeof *a);
    if (!a)
      return MPC_ENOMEM;
    memcpy(a, v, n * sizeof *a);
    int rc = stats_sketch_add_batch(s, a, n, a + n);
    free(a);
    return rc;
  }
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

/* The end of every merge, once the other sketch's levels are appended: its
 * counts folded in, then every level compacted. */
static int merge_finish(stats_sketch_t *a, uint32_t nlev, uint64_t n, uint64_t err,
                        uint32_t flip) {
  if (a->nlev < nlev)
    a->nlev = nlev;
  a->n += n;
  a->err += err;
  a->flip ^= flip;
  for (uint32_t h = 0; h < a->nlev; h++) {
    int rc = compact_from(a, h);
    if (rc)
      return rc;
  }
  return 0;
}

int stats_sketch_merge(stats_sketch_t *a, const stats_sketch_t *b) {
  if (a->k != b->k)
    return MPC_EINVAL;
  for (uint32_t h = 0; h < b->nlev; h++)
    if (b->lev[h].len && lev_push(a, h, b->lev[h].v, b->lev[h].len))
      return MPC_ENOMEM;
  return merge_finish(a, b->nlev, b->n, b->err, b->flip);
}

double stats_lerp(double a, double b, double t) {
  double d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

int stats_sketch_quantiles(const stats_sketch_t *s, const double *qs, size_t nq,
                           double *out) {
  size_t m = 0, maxlen = 0;
  for (uint32_t h = 0; h < s->nlev; h++) {
    m += s->lev[h].len;
    maxlen = s->lev[h].len > maxlen ? s->lev[h].len : maxlen;
  }
  if (m == 0 || s->n == 0) {
    for (size_t i = 0; i < nq; i++)
      out[i] = NAN;
    return 0;
  }
  /* each level sorted (radix sort), then merged by weight: the smallest head
   * among the levels next (there are few levels) */
  double *all = malloc((m + maxlen) * sizeof *all);
  if (!all)
    return MPC_ENOMEM;
  size_t beg[STATS_SKETCH_MAXLEV + 1], pos[STATS_SKETCH_MAXLEV];
  beg[0] = 0;
  for (uint32_t h = 0; h < s->nlev; h++) {
    if (s->lev[h].len) {
      memcpy(all + beg[h], s->lev[h].v, (size_t)s->lev[h].len * sizeof *all);
      stats_sort_doubles(all + beg[h], s->lev[h].len, all + m);
    }
    beg[h + 1] = beg[h] + s->lev[h].len;
    pos[h] = beg[h];
  }
  uint64_t total = 0;
  for (uint32_t h = 0; h < s->nlev; h++)
    total += (uint64_t)s->lev[h].len << h;
  /* wanted ranks, in the order of qs (which need not be sorted) */
  for (size_t i = 0; i < nq; i++)
    out[i] = NAN;
  double *vl = calloc(2 * nq, sizeof *vl);
  uint64_t *rk = calloc(2 * nq, sizeof *rk);
  if (!vl || !rk) {
    free(vl);
    free(rk);
    free(all);
    return MPC_ENOMEM;
  }
  double *vh = vl + nq;
  for (size_t i = 0; i < nq; i++) { /* ranks of the two neighbours */
    double r = qs[i] * (double)(total - 1);
    rk[i] = (uint64_t)floor(r);
    rk[nq + i] = rk[i] + 1 < total ? rk[i] + 1 : rk[i];
  }
  uint64_t c = 0;
  for (size_t x = 0; x < m; x++) {
    uint32_t best = 0;
    int found = 0;
    for (uint32_t h = 0; h < s->nlev; h++)
      if (pos[h] < beg[h + 1] && (!found || all[pos[h]] < all[pos[best]])) {
        best = h;
        found = 1;
      }
    double v = all[pos[best]++];
    uint64_t w = 1ULL << best;
    for (size_t i = 0; i < 2 * nq; i++)
      if (rk[i] - c < w) /* c <= rank < c + w */
        vl[i] = v;
    c += w;
  }
  for (size_t i = 0; i < nq; i++) {
    double r = qs[i] * (double)(total - 1), lo = floor(r);
    out[i] = stats_lerp(vl[i], vh[i], r - lo);
  }
  free(vl);
  free(rk);
  free(all);
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

int stats_sketch_merge_wire(stats_sketch_t *a, const unsigned char *p, size_t len,
                            size_t *used) {
  size_t n = stats_sketch_skip(p, len); /* checks the whole layout first */
  uint64_t hdr[5];
  if (!n)
    return MPC_EPROTO;
  memcpy(hdr, p, sizeof hdr);
  if (hdr[0] != a->k)
    return MPC_EINVAL;
  size_t off = sizeof hdr;
  for (uint32_t h = 0; h < (uint32_t)hdr[1]; h++) {
    uint64_t m;
    memcpy(&m, p + off, sizeof m);
    off += sizeof m;
    if (m && lev_push(a, h, p + off, m))
      return MPC_ENOMEM;
    off += m * sizeof(double);
  }
  int rc = merge_finish(a, (uint32_t)hdr[1], hdr[2], hdr[3], (uint32_t)hdr[4]);
  if (!rc)
    *used = n;
  return rc;
}

/* A written sketch's header (k, levels, n, ...) at p, if it is plausible. */
static int sketch_hdr(const unsigned char *p, size_t len, uint64_t hdr[5]) {
  if (len < 5 * sizeof(uint64_t))
    return 0;
  memcpy(hdr, p, 5 * sizeof(uint64_t));
  return hdr[1] <= STATS_SKETCH_MAXLEV && hdr[0] >= 4 && hdr[0] <= (1u << 24);
}

size_t stats_sketch_skip(const unsigned char *p, size_t len) {
  uint64_t hdr[5];
  if (!sketch_hdr(p, len, hdr))
    return 0;
  size_t off = sizeof hdr;
  for (uint64_t h = 0; h < hdr[1]; h++) {
    uint64_t n;
    if (len - off < sizeof n)
      return 0;
    memcpy(&n, p + off, sizeof n);
    off += sizeof n;
    if (n > (len - off) / sizeof(double))
      return 0;
    off += n * sizeof(double);
  }
  return off;
}

size_t stats_sketch_read(stats_sketch_t *s, const unsigned char *p, size_t len) {
  uint64_t hdr[5];
  size_t used = 0;
  if (!sketch_hdr(p, len, hdr))
    return 0;
  stats_sketch_init(s, (uint32_t)hdr[0]); /* a written sketch's levels are < k:
                                             merging compacts nothing */
  if (stats_sketch_merge_wire(s, p, len, &used)) {
    stats_sketch_free(s);
    return 0;
  }
  return used;
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
