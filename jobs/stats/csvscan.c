/* CSV scanning: header, range cuts, structural record walks, the record
 * parser that feeds the per-column accumulators, and the byte checks.
 *
 * Dialect (pandas' C tokenizer, RFC 4180): a '"' opens a quoted field only
 * as the first byte of a field; inside, '""' is a quote and a lone '"'
 * closes; bytes after a closing quote continue the field unquoted, where
 * quotes are literal.  Records end at "\n", "\r\n" or a lone "\r" outside
 * quotes.  Lines that are empty or only spaces/tabs are skipped. */
#include "stats.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#if defined(__x86_64__)
#include <immintrin.h>
#define STATS_SSE41 1
#endif

/* ---- byte checks --------------------------------------------------------- */

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

/* Number of bytes equal to zero in w (exact, no false positives). */
static inline unsigned zero_bytes(uint64_t x) {
  uint64_t y = ((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | x;
  return (unsigned)((((~y & 0x8080808080808080ULL) >> 7) * 0x0101010101010101ULL) >> 56);
}

uint64_t stats_count_nl(const unsigned char *buf, uint64_t a, uint64_t b) {
  uint64_t n = 0;
  const unsigned char *p = buf + a, *e = buf + b;
  while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
    n++;
    p++;
  }
  return n;
}

/* Length of the valid UTF-8 sequence at p (< e), or 0. */
static int utf8_len(const unsigned char *p, const unsigned char *e) {
  unsigned c = p[0];
  int n;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if (e - p < n)
    return 0;
  if (p[1] < lo || p[1] > hi)
    return 0;
  for (int i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

uint64_t stats_prescan(const unsigned char *buf, uint64_t a, uint64_t b,
                       uint64_t *bad, const char **why) {
  uint64_t nl = 0;
  const unsigned char *p = buf + a, *e = buf + b;
  *bad = UINT64_MAX;
  *why = NULL;
  while (p < e) {
    if (e - p >= 8) {
      uint64_t w = load64(p);
      if ((w & 0x8080808080808080ULL) == 0 && zero_bytes(w) == 0) {
        nl += zero_bytes(w ^ 0x0A0A0A0A0A0A0A0AULL);
        p += 8;
        continue;
      }
    }
    unsigned c = *p;
    if (c == 0) {
      *bad = (uint64_t)(p - buf);
      *why = "NUL byte (binary data?)";
      break;
    }
    if (c < 0x80) {
      nl += c == '\n';
      p++;
      continue;
    }
    int n = utf8_len(p, e);
    if (n == 0) {
      *bad = (uint64_t)(p - buf);
      *why = "invalid UTF-8 (binary data?)";
      break;
    }
    p += n;
  }
  if (*bad != UINT64_MAX)
    nl += stats_count_nl(buf, (uint64_t)(p - buf), b);
  return nl;
}

/* ---- cuts and structural walks ------------------------------------------ */

uint64_t stats_cut(const unsigned char *buf, uint64_t off, uint64_t fend) {
  if (off == 0)
    return 0;
  if (off >= fend)
    return fend;
  if (buf[off - 1] == '\n')
    return off;
  const unsigned char *q = memchr(buf + off, '\n', (size_t)(fend - off));
  return q ? (uint64_t)(q - buf) + 1 : fend;
}

uint64_t stats_skip_record(const unsigned char *buf, uint64_t pos,
                           uint64_t fend, char delim, int inq) {
  int fstart = 1;
  if (inq)
    goto quoted;
  while (pos < fend) {
    unsigned char c = buf[pos];
    if (fstart && c == '"') {
      pos++;
    quoted:
      for (;;) {
        const unsigned char *q = memchr(buf + pos, '"', (size_t)(fend - pos));
        if (!q)
          return fend;
        pos = (uint64_t)(q - buf) + 1;
        if (pos < fend && buf[pos] == '"') {
          pos++;
          continue;
        }
        break;
      }
      fstart = 0;
      continue;
    }
    if (c == (unsigned char)delim) {
      fstart = 1;
    } else if (c == '\n') {
      return pos + 1;
    } else if (c == '\r') {
      return (pos + 1 < fend && buf[pos + 1] == '\n') ? pos + 2 : pos + 1;
    } else {
      fstart = 0;
    }
    pos++;
  }
  return fend;
}

/* ---- fields --------------------------------------------------------------- */

enum { T_DELIM, T_EOR, T_BADQ };

/* Read one field at *pos.  Content in [*fs, *fs + *fl) (pointing into buf or
 * the scratch).  Advances *pos past the delimiter or record terminator and
 * returns T_DELIM / T_EOR (end of record or of data), T_BADQ (unterminated
 * quote), or MPC_ENOMEM. */
static inline int next_field(const unsigned char *buf, uint64_t *posp,
                             uint64_t fend, const unsigned char *cls,
                             mpc_buf_t *sc, const char **fs, size_t *fl) {
  uint64_t pos = *posp;
  const unsigned char *p = buf + pos, *e = buf + fend;
  if (p < e && *p == '"') {
    const unsigned char *s = p + 1;
    int copied = 0;
    mpc_buf_clear(sc);
    for (;;) {
      const unsigned char *q = memchr(s, '"', (size_t)(e - s));
      if (!q)
        return T_BADQ;
      if (q + 1 < e && q[1] == '"') {
        if (mpc_buf_append(sc, s, (size_t)(q + 1 - s)))
          return MPC_ENOMEM;
        copied = 1;
        s = q + 2;
        continue;
      }
      /* closing quote */
      const unsigned char *r = q + 1;
      if (r == e || cls[*r]) {
        if (copied) {
          if (mpc_buf_append(sc, s, (size_t)(q - s)))
            return MPC_ENOMEM;
          *fs = (const char *)sc->data;
          *fl = sc->len;
        } else {
          *fs = (const char *)(p + 1);
          *fl = (size_t)(q - p - 1);
        }
        p = r;
        break;
      }
      /* bytes after the closing quote continue the field unquoted */
      if (mpc_buf_append(sc, s, (size_t)(q - s)))
        return MPC_ENOMEM;
      const unsigned char *t = r;
      while (t < e && (!cls[*t] || *t == '"'))
        t++;
      if (mpc_buf_append(sc, r, (size_t)(t - r)))
        return MPC_ENOMEM;
      *fs = (const char *)sc->data;
      *fl = sc->len;
      p = t;
      break;
    }
  } else {
    const unsigned char *s = p;
    while (p < e && (!cls[*p] || *p == '"'))
      p++;
    *fs = (const char *)s;
    *fl = (size_t)(p - s);
  }
  if (p == e) {
    *posp = fend;
    return T_EOR;
  }
  unsigned char c = *p++;
  if (c == '\r') {
    if (p < e && *p == '\n')
      p++;
    *posp = (uint64_t)(p - buf);
    return T_EOR;
  }
  *posp = (uint64_t)(p - buf);
  return c == '\n' ? T_EOR : T_DELIM;
}

static void make_cls(unsigned char cls[256], char delim) {
  memset(cls, 0, 256);
  cls['\n'] = cls['\r'] = cls['"'] = 1;
  cls[(unsigned char)delim] = 1;
}

/* At a record start: skip an empty or blank (spaces/tabs) line.  Returns the
 * position after it, or `pos` when the line has content. */
static inline uint64_t skip_blank(const unsigned char *buf, uint64_t pos,
                                  uint64_t fend, char delim) {
  uint64_t q = pos;
  while (q < fend && (buf[q] == ' ' || buf[q] == '\t') && buf[q] != (unsigned char)delim)
    q++;
  if (q < fend && buf[q] == '\n')
    return q + 1;
  if (q < fend && buf[q] == '\r')
    return (q + 1 < fend && buf[q + 1] == '\n') ? q + 2 : q + 1;
  if (q == fend && q > pos)
    return fend;
  return pos;
}

/* ---- the fast path: structural bitmasks and SWAR numbers ------------------
 *
 * The record parser finds field ends with 64-byte masks of the structural
 * bytes (delimiter, LF, CR, quote), so an ordinary field costs a count of
 * trailing zeros, and the same pass notes NUL and non-ASCII bytes, which are
 * then checked (NUL is an error, UTF-8 must be valid) as the blocks are
 * loaded.  Quoted fields and quotes inside fields go through next_field(). */

typedef struct scan {
  const unsigned char *buf;
  uint64_t fend;
  uint64_t base, mask; /* structural bytes in [base, base + 64), as bits */
  uint64_t vto;        /* bytes before vto are checked */
  uint64_t bad;        /* first bad byte, or UINT64_MAX */
  const char *why;
  unsigned char delim;
} scan_t;

/* Check [vto, upto) (whole UTF-8 sequences; may end past upto). */
static void scan_check(scan_t *z, uint64_t upto) {
  if (z->bad != UINT64_MAX)
    return;
  const unsigned char *p = z->buf + z->vto, *e = z->buf + upto, *fe = z->buf + z->fend;
  while (p < e) {
    if (e - p >= 8) {
      uint64_t w = load64(p);
      if ((w & 0x8080808080808080ULL) == 0 && zero_bytes(w) == 0) {
        p += 8;
        continue;
      }
    }
    unsigned c = *p;
    if (c == 0) {
      z->bad = (uint64_t)(p - z->buf);
      z->why = "NUL byte (binary data?)";
      break;
    }
    if (c < 0x80) {
      p++;
      continue;
    }
    int n = utf8_len(p, fe);
    if (n == 0) {
      z->bad = (uint64_t)(p - z->buf);
      z->why = "invalid UTF-8 (binary data?)";
      break;
    }
    p += n;
  }
  z->vto = (uint64_t)(p - z->buf);
}

static void scan_load(scan_t *z, uint64_t b) {
  const unsigned char *p = z->buf + b;
  uint64_t m = 0, sp = 0;
  if (b + 64 <= z->fend) {
#if defined(__x86_64__)
    const __m128i vd = _mm_set1_epi8((char)z->delim), vn = _mm_set1_epi8('\n'),
                  vr = _mm_set1_epi8('\r'), vq = _mm_set1_epi8('"'), v0 = _mm_setzero_si128();
    for (int i = 0; i < 4; i++) {
      __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * i));
      __m128i st = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vd), _mm_cmpeq_epi8(v, vn)),
                                _mm_or_si128(_mm_cmpeq_epi8(v, vr), _mm_cmpeq_epi8(v, vq)));
      m |= (uint64_t)(uint32_t)_mm_movemask_epi8(st) << (16 * i);
      sp |= (uint64_t)(uint32_t)(_mm_movemask_epi8(v) |
                                 _mm_movemask_epi8(_mm_cmpeq_epi8(v, v0)))
            << (16 * i);
    }
#else
    for (int i = 0; i < 64; i++) {
      unsigned char c = p[i];
      m |= (uint64_t)(c == z->delim || c == '\n' || c == '\r' || c == '"') << i;
      sp |= (uint64_t)(c == 0 || c >= 0x80) << i;
    }
#endif
  } else {
    for (uint64_t i = 0; b + i < z->fend; i++) {
      unsigned char c = p[i];
      m |= (uint64_t)(c == z->delim || c == '\n' || c == '\r' || c == '"') << i;
      sp |= (uint64_t)(c == 0 || c >= 0x80) << i;
    }
  }
  z->base = b;
  z->mask = m;
  if (z->vto < b)
    scan_check(z, b); /* bytes jumped over (quoted fields) */
  uint64_t hi = b + 64 < z->fend ? b + 64 : z->fend;
  if (z->vto < hi) {
    if (sp == 0 && z->vto >= b)
      z->vto = hi;
    else
      scan_check(z, hi);
  }
}

static void scan_init(scan_t *z, const unsigned char *buf, uint64_t fend, uint64_t from,
                      char delim) {
  z->buf = buf;
  z->fend = fend;
  z->base = from + 64; /* nothing loaded: the first call loads at its pos */
  z->mask = 0;
  z->vto = from;
  z->bad = UINT64_MAX;
  z->why = NULL;
  z->delim = (unsigned char)delim;
}

/* Position of the first structural byte at or after pos (< fend), or fend.
 * The mask keeps only bits at or after the last position asked for. */
static inline uint64_t scan_next(scan_t *z, uint64_t pos) {
  for (;;) {
    uint64_t off = pos - z->base;
    if (off < 64) {
      uint64_t m = z->mask & (~0ULL << off);
      if (m) {
        z->mask = m;
        return z->base + (uint64_t)__builtin_ctzll(m);
      }
      if (z->base + 64 >= z->fend)
        return z->fend;
      scan_load(z, z->base + 64);
    } else {
      scan_load(z, pos);
    }
  }
}

/* The next structural byte after the one scan_next() or scan_pop() returned
 * last (the fast path when fields follow each other). */
static inline uint64_t scan_pop(scan_t *z) {
  uint64_t m = z->mask & (z->mask - 1);
  if (m) {
    z->mask = m;
    return z->base + (uint64_t)__builtin_ctzll(m);
  }
  if (z->base + 64 >= z->fend)
    return z->fend;
  z->mask = 0;
  return scan_next(z, z->base + 64);
}

/* 8 digit values (first digit in the lowest byte) -> integer. */
static inline uint32_t swar8(uint64_t v) {
  v = v * 10 + (v >> 8);
  v = (((v & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
       (((v >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32;
  return (uint32_t)v;
}

/* Number of leading decimal digits in the 8 bytes at p (0..8); *dv gets the
 * digit values. */
static inline int swar_digits(const unsigned char *p, uint64_t *dv) {
  uint64_t d = load64(p) ^ 0x3030303030303030ULL;
  uint64_t nd = (d & 0xF0F0F0F0F0F0F0F0ULL) |
                (((d & 0x0F0F0F0F0F0F0F0FULL) + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL);
  *dv = d & 0x0F0F0F0F0F0F0F0FULL;
  return nd ? __builtin_ctzll(nd) >> 3 : 8;
}

static inline uint64_t swar_value(uint64_t dv, int n) {
  return n ? swar8(dv << (64 - 8 * n)) : 0;
}

/* The field [s, e) as a plain decimal number: sign, <= 19 significant
 * digits with an optional '.', optional exponent, converted exactly with
 * Clinger's fast path (mantissa <= 2^53, |exponent| <= 22).  Returns 0 when
 * the field needs the general parser.  Needs: *e is a structural byte that is
 * not a digit, '.', sign or 'e', and 8 readable bytes at e. */
static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* m * 10^ex exactly (Clinger: m <= 2^53 and |ex| <= 22 make one correctly
 * rounded operation); 0 when outside that range. */
static inline int clinger(uint64_t m, int ex, int neg, double *out) {
  if (m > (1ULL << 53) || ex < -22 || ex > 22)
    return 0;
  double x = ex < 0 ? (double)m / p10[-ex] : (double)m * p10[ex];
  *out = neg ? -x : x;
  return 1;
}

static inline int swar_number(const unsigned char *s, const unsigned char *e, double *out) {
  static const uint64_t u10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                  100000000};
  const unsigned char *p = s;
  int neg = *p == '-';
  p += (*p == '-') | (*p == '+');
  uint64_t dv;
  int n = swar_digits(p, &dv);
  uint64_t m = swar_value(dv, n);
  p += n;
  int nd = n;
  if (n == 8)
    while ((unsigned)(*p - '0') < 10) {
      if (++nd > 19)
        return 0;
      m = m * 10 + (unsigned)(*p++ - '0');
    }
  int frac = 0;
  if (*p == '.') {
    p++;
    n = swar_digits(p, &dv);
    if (nd + n > 19)
      return 0;
    m = m * u10[n] + swar_value(dv, n);
    p += n;
    frac = n;
    if (n == 8)
      while ((unsigned)(*p - '0') < 10) {
        if (nd + ++frac > 19)
          return 0;
        m = m * 10 + (unsigned)(*p++ - '0');
      }
  }
  if (nd + frac == 0)
    return 0;
  int ex = 0;
  if ((*p | 0x20) == 'e') {
    p++;
    int en = *p == '-';
    p += (*p == '-') | (*p == '+');
    const unsigned char *xs = p;
    while ((unsigned)(*p - '0') < 10 && p - xs < 4)
      ex = ex * 10 + (*p++ - '0');
    if (p == xs)
      return 0;
    if (en)
      ex = -ex;
  }
  if (p != e)
    return 0;
  return clinger(m, ex - frac, neg, out);
}

#ifdef STATS_SSE41
/* The same for a field of at most 16 bytes, 16 readable bytes at s, in SSE4.1:
 * one load, digit/dot/sign/exponent masks, the dot squeezed out with one
 * shuffle, then all (<= 16) digits to an integer with multiply-adds.
 * Returns 0 when the field needs swar_number() or the general parser. */

typedef struct sse_tabs {
  unsigned char squeeze[17][16]; /* [dot]: drop lane `dot` (16: none) */
  unsigned char tail[17][16];    /* [n]: 0xFF in lanes >= n */
  uint64_t inv5[17];             /* 5^-k mod 2^64 */
} sse_tabs_t;

static sse_tabs_t sse_tabs;

static void sse_tabs_init(void) {
  for (int d = 0; d <= 16; d++)
    for (int i = 0; i < 16; i++) {
      int src = i < d ? i : i + 1;
      sse_tabs.squeeze[d][i] = (unsigned char)(src < 16 ? src : 0x80);
      sse_tabs.tail[d][i] = i >= d ? 0xFF : 0;
    }
  for (int k = 0; k <= 16; k++) { /* inverse of 5^k by Newton's iteration */
    uint64_t f = 1;
    for (int i = 0; i < k; i++)
      f *= 5;
    uint64_t x = f; /* correct to 3 bits for odd f */
    for (int i = 0; i < 5; i++)
      x *= 2 - f * x;
    sse_tabs.inv5[k] = x;
  }
}

__attribute__((target("sse4.1"))) static inline int sse_number(const unsigned char *s,
                                                                size_t len, double *out) {
  const __m128i v = _mm_loadu_si128((const __m128i *)s);
  const __m128i zero = _mm_set1_epi8('0');
  __m128i t = _mm_sub_epi8(v, zero);
  uint32_t dig = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(t, _mm_set1_epi8(9)),
                                                            _mm_set1_epi8(9)));
  uint32_t dot = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
  uint32_t exm = (uint32_t)_mm_movemask_epi8(
      _mm_cmpeq_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('e')));
  uint32_t lenm = (1u << len) - 1;
  int neg = s[0] == '-', sg = neg | (s[0] == '+');
  exm &= lenm;
  uint32_t mlen = exm ? (uint32_t)__builtin_ctz(exm) : (uint32_t)len; /* mantissa */
  uint32_t mm = (1u << mlen) - 1;
  dot &= mm;
  if (((dig | dot | (uint32_t)sg) & mm) != mm || (dot & (dot - 1)) || !(dig & mm))
    return 0;
  int ex = 0;
  if (exm) { /* exponent: [mlen + 1, len) */
    const unsigned char *p = s + mlen + 1, *e = s + len;
    int en = *p == '-';
    p += (*p == '-') | (*p == '+');
    if (p == e || e - p > 3)
      return 0;
    for (; p < e; p++) {
      if ((unsigned)(*p - '0') >= 10)
        return 0;
      ex = ex * 10 + (*p - '0');
    }
    ex = en ? -ex : ex;
  }
  uint32_t dp = dot ? (uint32_t)__builtin_ctz(dot) : 16;
  int frac = dot ? (int)(mlen - dp - 1) : 0;
  uint32_t nd = dot ? mlen - 1 : mlen; /* digit lanes after squeezing, sign lane included */
  /* sign lane reads as a leading zero */
  t = _mm_and_si128(t, _mm_loadu_si128((const __m128i *)sse_tabs.tail[sg]));
  t = _mm_shuffle_epi8(t, _mm_loadu_si128((const __m128i *)sse_tabs.squeeze[dp]));
  t = _mm_andnot_si128(_mm_loadu_si128((const __m128i *)sse_tabs.tail[nd]), t);
  /* 16 digits (trailing zeros) = M * 10^(16 - nd) */
  __m128i p1 = _mm_maddubs_epi16(t, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1,
                                                   10, 1, 10, 1));
  __m128i p2 = _mm_madd_epi16(p1, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
  __m128i p3 = _mm_packus_epi32(p2, p2);
  __m128i p4 = _mm_madd_epi16(p3, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
  uint64_t hi = (uint32_t)_mm_cvtsi128_si32(p4);
  uint64_t lo = (uint32_t)_mm_extract_epi32(p4, 1);
  uint64_t big = hi * 100000000ULL + lo;
  uint32_t k = 16 - nd;
  uint64_t m = (big >> k) * sse_tabs.inv5[k];
  return clinger(m, ex - frac, neg, out);
}
#endif

/* ---- header --------------------------------------------------------------- */

void stats_header_free(stats_header_t *h) {
  for (size_t i = 0; i < h->ncols; i++)
    free(h->names[i]);
  free(h->names);
  memset(h, 0, sizeof *h);
}

static int name_taken(char **names, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0)
      return 1;
  return 0;
}

int stats_header_read(const char *path, char delim, stats_header_t *h,
                      mpc_buf_t *err) {
  memset(h, 0, sizeof *h);
  int rc = 0;
  unsigned char *buf = NULL;
  size_t len = 0, cap = 0;
  mpc_buf_t sc = MPC_BUF_INIT;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    STATS_MSG(err, "%s: %s", path, mpc_strerror(rc));
    return rc;
  }
  int eof = 0;
  uint64_t start = 0, rec_end = 0;
  for (;;) {
    if (!eof) {
      if (len == cap) {
        if (cap >= (64u << 20)) {
          rc = MPC_EFORMAT;
          STATS_MSG(err, "%s: header record longer than 64 MiB", path);
          goto out;
        }
        size_t ncap = cap ? cap * 2 : 65536;
        unsigned char *nb = realloc(buf, ncap);
        if (!nb) {
          rc = MPC_ENOMEM;
          goto out;
        }
        buf = nb;
        cap = ncap;
      }
      ssize_t r = read(fd, buf + len, cap - len);
      if (r < 0) {
        if (errno == EINTR)
          continue;
        rc = -errno;
        STATS_MSG(err, "%s: %s", path, mpc_strerror(rc));
        goto out;
      }
      if (r == 0)
        eof = 1;
      len += (size_t)r;
    }
    start = (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    for (;;) {
      uint64_t q = skip_blank(buf, start, len, delim);
      if (q == start)
        break;
      start = q;
    }
    if (start == len && !eof)
      continue;
    if (start == len) {
      rc = MPC_EFORMAT;
      STATS_MSG(err, "%s: no header line (empty file)", path);
      goto out;
    }
    rec_end = stats_skip_record(buf, start, len, delim, 0);
    int complete = rec_end < len || (rec_end == len && len > 0 &&
                                     (buf[len - 1] == '\n' || buf[len - 1] == '\r'));
    if (complete && buf[len - 1] == '\r' && rec_end == len && !eof)
      complete = 0; /* a "\r" might be followed by "\n" */
    if (complete || eof)
      break;
  }
  uint64_t bad;
  const char *why;
  uint64_t nl = stats_prescan(buf, 0, rec_end, &bad, &why);
  if (bad != UINT64_MAX) {
    rc = MPC_EFORMAT;
    STATS_MSG(err, "%s:%llu: %s", path,
                         (unsigned long long)stats_count_nl(buf, 0, bad) + 1, why);
    goto out;
  }
  unsigned char cls[256];
  make_cls(cls, delim);
  uint64_t pos = start;
  size_t hcap = 0;
  for (;;) {
    const char *fs;
    size_t fl;
    int t = next_field(buf, &pos, rec_end, cls, &sc, &fs, &fl);
    if (t == T_BADQ) {
      rc = MPC_EFORMAT;
      STATS_MSG(err, "%s:%llu: unterminated quoted field", path,
                           (unsigned long long)stats_count_nl(buf, 0, start) + 1);
      goto out;
    }
    if (t < 0) {
      rc = t;
      goto out;
    }
    if ((rc = mpc__grow(&h->names, &hcap, h->ncols + 1, sizeof *h->names, 16)))
      goto out;
    char *name;
    if (fl == 0) {
      if (asprintf(&name, "Unnamed: %zu", h->ncols) < 0)
        name = NULL;
    } else {
      name = strndup(fs, fl);
    }
    for (int dup = 1; name && name_taken(h->names, h->ncols, name); dup++) {
      char *nn = NULL;
      if (asprintf(&nn, "%.*s.%d", (int)fl, fs, dup) < 0)
        nn = NULL;
      free(name);
      name = nn;
    }
    if (!name) {
      rc = MPC_ENOMEM;
      goto out;
    }
    h->names[h->ncols++] = name;
    if (t == T_EOR)
      break;
  }
  h->data_start = rec_end;
  h->line0 = nl + 1;
out:
  mpc_buf_free(&sc);
  free(buf);
  close(fd);
  if (rc)
    stats_header_free(h);
  return rc;
}

/* ---- the record parser ------------------------------------------------------ */

int stats_part_init(stats_part_t *p, const stats_cfg_t *c) {
  memset(p, 0, sizeof *p);
  p->cols = calloc(c->ncols ? c->ncols : 1, sizeof *p->cols);
  if (!p->cols)
    return MPC_ENOMEM;
  for (size_t i = 0; i < c->ncols; i++) {
    stats_moments_init(&p->cols[i].mom);
    if (c->want[i])
      stats_sketch_init(&p->cols[i].sk, c->sketch_k);
  }
  return 0;
}

void stats_part_free(stats_part_t *p, const stats_cfg_t *c) {
  if (!p->cols)
    return;
  for (size_t i = 0; i < c->ncols; i++) {
    stats_sketch_free(&p->cols[i].sk);
    free(p->cols[i].exact);
    free(p->cols[i].vals);
    free(p->cols[i].scratch);
  }
  free(p->cols);
  p->cols = NULL;
}

static int grow(double **v, size_t *cap, size_t want) {
  return mpc__grow(v, cap, want, sizeof **v, 1024);
}

/* Values are collected per column and handed on in batches of up to
 * STATS_BATCH: moments (two-pass over the batch), --exact's copy, and the
 * sketch, which summarises a batch much faster than value by value. */
static int col_batch(stats_col_t *col, const stats_cfg_t *c) {
  if (col->nvals == 0)
    return 0;
  stats_moments_add_block(&col->mom, col->vals, col->nvals);
  if (c->exact) {
    if (grow(&col->exact, &col->capexact, col->nexact + col->nvals))
      return MPC_ENOMEM;
    memcpy(col->exact + col->nexact, col->vals, col->nvals * sizeof(double));
    col->nexact += col->nvals;
  }
  if (grow(&col->scratch, &col->capscratch, col->nvals))
    return MPC_ENOMEM;
  int rc = stats_sketch_add_batch(&col->sk, col->vals, col->nvals, col->scratch);
  col->nvals = 0;
  return rc;
}

/* Make room for one more value. */
static int col_full(stats_col_t *col, const stats_cfg_t *c) {
  if (col->nvals >= STATS_BATCH)
    return col_batch(col, c);
  return grow(&col->vals, &col->capvals, col->nvals + 1);
}

#define COL_PUSH(col, c, v, rc, fail)                                          \
  do {                                                                         \
    if ((col)->nvals == (col)->capvals && ((rc) = col_full((col), (c))) != 0)  \
      goto fail;                                                               \
    (col)->vals[(col)->nvals++] = (v);                                         \
  } while (0)

int stats_part_flush(stats_part_t *p, const stats_cfg_t *c) {
  for (size_t i = 0; i < c->ncols; i++) {
    int rc = c->want[i] ? col_batch(&p->cols[i], c) : 0;
    if (rc)
      return rc;
  }
  return 0;
}

static void set_err(stats_part_t *part, uint64_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(stats_part_t *part, uint64_t pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  part->has_err = 1;
  part->err_pos = pos;
  vsnprintf(part->err_msg, sizeof part->err_msg, fmt, ap);
  va_end(ap);
}

/* A field's content for column f through the general number parser. */
static inline int take_field(stats_part_t *part, const stats_cfg_t *c, size_t f,
                             const char *fs, size_t fl) {
  if (f >= c->ncols || !c->want[f])
    return 0;
  stats_col_t *col = &part->cols[f];
  double v;
  if (col->nonnum) {
  } else if (stats_parse_number(fs, fs + fl, &v)) {
    int rc = 0;
    COL_PUSH(col, c, v, rc, fail);
  fail:
    return rc;
  } else if (!stats_is_missing(fs, fl)) {
    col->nonnum = 1;
  }
  return 0;
}

/* The record loop; compiled twice (with and without SSE4.1) so that the SSE
 * number parser inlines into it. */
static inline __attribute__((always_inline)) int
parse_records(const stats_cfg_t *c, const unsigned char *buf, uint64_t from, uint64_t stop,
              uint64_t fend, stats_part_t *part, uint64_t *endp, const int simd_ok) {
  unsigned char cls[256];
  make_cls(cls, c->delim);
  mpc_buf_t sc = MPC_BUF_INIT;
  int rc = 0;
  uint64_t pos = from;
  const size_t ncols = c->ncols;
  const unsigned char delim = (unsigned char)c->delim;
  /* swar_number() stops at the delimiter only if it cannot be part of a
   * number */
  const int fast = !((delim >= '0' && delim <= '9') || (delim | 0x20) == 'e' ||
                     delim == '.' || delim == '+' || delim == '-');
#ifdef STATS_SSE41
  const int simd = fast && simd_ok;
#else
  (void)simd_ok;
#endif
  scan_t z;
  scan_init(&z, buf, fend, from, c->delim);
  unsigned char *act = malloc(ncols + 1); /* column wanted and still numeric */
  if (!act) {
    rc = MPC_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < ncols; i++)
    act[i] = c->want[i] && !part->cols[i].nonnum;
  while (pos < stop) {
    unsigned char c0 = buf[pos];
    if (c0 == '\n' || c0 == '\r' || c0 == ' ' || c0 == '\t') {
      uint64_t q = skip_blank(buf, pos, fend, c->delim);
      if (q != pos) {
        pos = q;
        continue;
      }
    }
    uint64_t rec = pos;
    size_t f = 0;
    uint64_t e = scan_next(&z, pos);
    for (;;) {
      unsigned char ch = e < fend ? buf[e] : '\n';
      if (ch == '"') { /* a quoted field, or a quote inside a field */
        const char *fs;
        size_t fl;
        int t = next_field(buf, &pos, fend, cls, &sc, &fs, &fl);
        if (t == T_BADQ) {
          set_err(part, rec, "unterminated quoted field (reaches end of file)");
          pos = fend;
          goto out;
        }
        if (t < 0 || (rc = take_field(part, c, f, fs, fl)) != 0) {
          rc = t < 0 ? t : rc;
          goto out;
        }
        if (f < ncols)
          act[f] = act[f] && !part->cols[f].nonnum;
        f++;
        if (t == T_EOR)
          break;
        e = scan_next(&z, pos);
        continue;
      }
      if (f < ncols && act[f] && e > pos) {
        stats_col_t *col = &part->cols[f];
        double v;
        int ok;
#ifdef STATS_SSE41
        if (simd && e - pos <= 16 && pos + 16 <= fend)
          ok = sse_number(buf + pos, (size_t)(e - pos), &v) ||
               (e + 8 <= fend && swar_number(buf + pos, buf + e, &v));
        else
#endif
          ok = fast && e + 8 <= fend && swar_number(buf + pos, buf + e, &v);
        if (ok) {
          COL_PUSH(col, c, v, rc, out);
        } else {
          if ((rc = take_field(part, c, f, (const char *)buf + pos, (size_t)(e - pos))) != 0)
            goto out;
          act[f] = !col->nonnum;
        }
      }
      f++;
      if (ch == delim && e < fend) {
        pos = e + 1;
        e = scan_pop(&z);
        continue;
      }
      if (e >= fend)
        pos = fend;
      else if (ch == '\r' && e + 1 < fend && buf[e + 1] == '\n')
        pos = e + 2;
      else
        pos = e + 1;
      break;
    }
    if (z.vto < pos)
      scan_check(&z, pos);
    if (z.bad < pos) {
      set_err(part, z.bad, "%s", z.why);
      goto out;
    }
    if (f != ncols) {
      set_err(part, rec, "row has %zu field%s, header has %zu", f,
              f == 1 ? "" : "s", ncols);
      goto out;
    }
    part->records++;
  }
out:
  free(act);
  mpc_buf_free(&sc);
  *endp = pos;
  if (!rc)
    rc = stats_part_flush(part, c);
  return rc;
}

#ifdef STATS_SSE41
__attribute__((target("sse4.1"))) static int
parse_sse41(const stats_cfg_t *c, const unsigned char *buf, uint64_t from, uint64_t stop,
            uint64_t fend, stats_part_t *part, uint64_t *endp) {
  return parse_records(c, buf, from, stop, fend, part, endp, 1);
}
#endif

int stats_parse(const stats_cfg_t *c, const unsigned char *buf, uint64_t from,
                uint64_t stop, uint64_t fend, stats_part_t *part,
                uint64_t *endp) {
#ifdef STATS_SSE41
  static int have_sse41 = -1;
  if (have_sse41 < 0) {
    __builtin_cpu_init();
    sse_tabs_init();
    have_sse41 = __builtin_cpu_supports("sse4.1") ? 1 : 0;
  }
  if (have_sse41)
    return parse_sse41(c, buf, from, stop, fend, part, endp);
#endif
  return parse_records(c, buf, from, stop, fend, part, endp, 0);
}
