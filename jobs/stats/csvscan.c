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
#include <math.h>
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
  uint64_t b; /* the sign without a branch: signs are often random */
  memcpy(&b, &x, sizeof b);
  b |= (uint64_t)(neg != 0) << 63;
  memcpy(out, &b, sizeof b);
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
  uint32_t fm[17];               /* [n]: bits of lanes >= 16 - n */
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
  for (int n = 0; n <= 16; n++)
    sse_tabs.fm[n] = (0xFFFFu << (16 - n)) & 0xFFFFu;
}

__attribute__((target("sse4.1,popcnt"))) static inline int sse_number(const unsigned char *s,
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

/* Value buffers of finished parts are kept for the next part in this
 * process: a task's batches are megabytes, and fresh memory for every task
 * cost page faults, zeroing and the copies of growing arrays. */
#define KEEP_BUFS 64
static struct kept {
  double *p;
  size_t cap;
} kept[KEEP_BUFS];
static size_t nkept;

static void buf_put(double **p, size_t *cap) {
  if (*p && nkept < KEEP_BUFS) {
    kept[nkept].p = *p;
    kept[nkept++].cap = *cap;
  } else {
    free(*p);
  }
  *p = NULL;
  *cap = 0;
}

static void buf_get(double **p, size_t *cap) {
  if (!*p && nkept) {
    *p = kept[--nkept].p;
    *cap = kept[nkept].cap;
  }
}

int stats_part_init(stats_part_t *p, const stats_cfg_t *c) {
  memset(p, 0, sizeof *p);
  p->first_quote = UINT64_MAX;
  p->cols = calloc(c->ncols ? c->ncols : 1, sizeof *p->cols);
  if (!p->cols)
    return MPC_ENOMEM;
  for (size_t i = 0; i < c->ncols; i++) {
    stats_moments_init(&p->cols[i].mom);
    if (c->want[i]) {
      stats_sketch_init(&p->cols[i].sk, c->sketch_k);
      buf_get(&p->cols[i].vals, &p->cols[i].capvals);
    }
  }
  return 0;
}

void stats_part_free(stats_part_t *p, const stats_cfg_t *c) {
  if (!p->cols)
    return;
  for (size_t i = 0; i < c->ncols; i++) {
    stats_sketch_free(&p->cols[i].sk);
    free(p->cols[i].exact);
    buf_put(&p->cols[i].vals, &p->cols[i].capvals);
    buf_put(&p->cols[i].scratch, &p->cols[i].capscratch);
  }
  free(p->cols);
  p->cols = NULL;
}

static int grow(double **v, size_t *cap, size_t want) {
  return mpc__grow(v, cap, want, sizeof **v, 1024);
}

size_t stats_batch_for(size_t nwant) {
  /* about 4M values (64 MB with the sketch's scratch) over the columns,
   * 16K to 256K per column */
  size_t b = 1u << 18;
  while (b > (1u << 14) && b * (nwant ? nwant : 1) > (1u << 22))
    b /= 2;
  return b;
}

/* Values are collected per column and handed on in batches of up to
 * stats_batch(): moments (two-pass over each stretch of values, done as soon as
 * the block path has converted one, while it is in cache), --exact's copy,
 * and the sketch, which summarises a batch much faster than value by value. */
static void col_moments(stats_col_t *col) {
  if (col->nmom == 0) {
    col->bmm[0] = INFINITY;
    col->bmm[1] = -INFINITY;
  }
  if (col->nvals > col->nmom) {
    stats_moments_add_block_mm(&col->mom, col->vals + col->nmom, col->nvals - col->nmom,
                               &col->bmm[0], &col->bmm[1]);
    col->nmom = col->nvals;
  }
}

static int col_batch(stats_col_t *col, const stats_cfg_t *c) {
  if (col->nvals == 0)
    return 0;
  col_moments(col);
  if (c->exact) {
    if (grow(&col->exact, &col->capexact, col->nexact + col->nvals))
      return MPC_ENOMEM;
    memcpy(col->exact + col->nexact, col->vals, col->nvals * sizeof(double));
    col->nexact += col->nvals;
  }
  buf_get(&col->scratch, &col->capscratch);
  if (grow(&col->scratch, &col->capscratch, col->nvals))
    return MPC_ENOMEM;
  int rc = stats_sketch_add_batch_mm(&col->sk, col->vals, col->nvals, col->scratch, col->bmm);
  col->nvals = col->nmom = 0;
  return rc;
}

/* Make room for one more value. */
static int col_full(stats_col_t *col, const stats_cfg_t *c) {
  if (col->nvals >= stats_batch(c))
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

/* ---- the block path -----------------------------------------------------------
 *
 * Most records of a typical file have no quotes, no CR, only ASCII and
 * exactly ncols fields.  Runs of such records are parsed a block at a time:
 * 64-byte masks of the delimiters and LFs are flattened into an array of
 * field terminators, each LF is checked to be every ncols-th of them (its
 * rank, a popcount), and then each column of the block is converted in
 * one loop, so the branches of the number parser see one column's format at a
 * time.  The first record that is not of that kind (or the last bytes of the
 * data) goes to the record loop below, which reports errors. */

#define FB_ROWS 256u            /* records per block */
#define FB_MAXOFF (1u << 30)    /* block bytes (offsets are 32-bit) */

typedef struct fblk {
  uint32_t *ixa;      /* ixa[0] = UINT32_MAX, then the terminators */
  size_t rows;        /* records per block: FB_ROWS, fewer for wide files */
  uint32_t redo[FB_ROWS + FB_ROWS / 4]; /* fields for the general parser; exponents */
  uint16_t sg[FB_ROWS + 4];             /* AVX2 column loops: signs */
} fblk_t;

/* While a block is scanned, fewer than rows * ncols terminators are
 * stored (the records checked so far plus an incomplete one), and a 64-byte
 * step adds at most 64 and writes up to 15 entries past those. */
static int fblk_init(fblk_t *b, size_t ncols) {
  /* at most ~1M terminators (4 MB) however wide the file */
  b->rows = ncols <= (1u << 20) / FB_ROWS ? FB_ROWS : (1u << 20) / ncols;
  if (b->rows == 0)
    b->rows = 1;
  b->ixa = malloc((b->rows * ncols + 64 + 16 + 1) * sizeof *b->ixa);
  if (!b->ixa)
    return MPC_ENOMEM;
  b->ixa[0] = UINT32_MAX;
  return 0;
}

static void fblk_free(fblk_t *b) {
  free(b->ixa);
}

/* Bit i: p[i] is a CR, for the 64 bytes at p. */
static inline uint64_t cr_mask64(const unsigned char *p) {
  uint64_t m = 0;
#if defined(__x86_64__)
  const __m128i vr = _mm_set1_epi8('\r');
  for (int i = 0; i < 4; i++)
    m |= (uint64_t)(uint32_t)_mm_movemask_epi8(
             _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), vr))
         << (16 * i);
#else
  for (int i = 0; i < 64; i++)
    m |= (uint64_t)(p[i] == '\r') << i;
#endif
  return m;
}

/* Masks of the 64 bytes at p: terminators (delimiter or LF), LFs, and bytes
 * the block path does not handle (quote, CR, NUL, >= 0x80). */
static inline void fb_masks(const unsigned char *p, unsigned char delim, uint64_t *st,
                            uint64_t *lf, uint64_t *sp) {
#if defined(__x86_64__)
  const __m128i vd = _mm_set1_epi8((char)delim), vn = _mm_set1_epi8('\n'),
                vr = _mm_set1_epi8('\r'), vq = _mm_set1_epi8('"'), v0 = _mm_setzero_si128();
  uint64_t a = 0, b = 0, c = 0;
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * i));
    __m128i n = _mm_cmpeq_epi8(v, vn);
    __m128i t = _mm_or_si128(n, _mm_cmpeq_epi8(v, vd));
    __m128i x = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vr), _mm_cmpeq_epi8(v, vq)),
                             _mm_or_si128(_mm_cmpeq_epi8(v, v0), v));
    a |= (uint64_t)(uint32_t)_mm_movemask_epi8(t) << (16 * i);
    b |= (uint64_t)(uint32_t)_mm_movemask_epi8(n) << (16 * i);
    c |= (uint64_t)(uint32_t)_mm_movemask_epi8(x) << (16 * i);
  }
  *st = a;
  *lf = b;
  *sp = c;
#else
  uint64_t a = 0, b = 0, c = 0;
  for (int i = 0; i < 64; i++) {
    unsigned char ch = p[i];
    a |= (uint64_t)(ch == delim || ch == '\n') << i;
    b |= (uint64_t)(ch == '\n') << i;
    c |= (uint64_t)(ch == '"' || ch == '\r' || ch == 0 || ch >= 0x80) << i;
  }
  *st = a;
  *lf = b;
  *sp = c;
#endif
}

/* Append off + (position of each set bit of m) to out[n..]; returns the new
 * count.  Writes up to 15 entries past it (the caller leaves room). */
static inline size_t fb_flatten(uint32_t *out, size_t n, uint64_t m, uint32_t off) {
  size_t cnt = (size_t)__builtin_popcountll(m);
  uint32_t *o = out + n;
  const uint64_t hi = 1ULL << 63; /* keeps ctz defined once m runs out */
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    o[i] = off + (uint32_t)__builtin_ctzll(m | hi);
    m &= m - 1;
  }
  if (cnt > 8) {
#pragma GCC unroll 8
    for (int i = 8; i < 16; i++) {
      o[i] = off + (uint32_t)__builtin_ctzll(m | hi);
      m &= m - 1;
    }
    for (size_t i = 16; i < cnt; i++) {
      o[i] = off + (uint32_t)__builtin_ctzll(m);
      m &= m - 1;
    }
  }
  return n + cnt;
}

#ifdef STATS_SSE41
/* fb_masks() with AVX2 (two 32-byte halves) */
__attribute__((target("avx2,bmi,popcnt"))) static inline void
fb_masks_avx2(const unsigned char *p, unsigned char delim, uint64_t *st, uint64_t *lf,
              uint64_t *sp) {
  const __m256i vd = _mm256_set1_epi8((char)delim), vn = _mm256_set1_epi8('\n'),
                vr = _mm256_set1_epi8('\r'), vq = _mm256_set1_epi8('"'),
                v0 = _mm256_setzero_si256();
  __m256i a = _mm256_loadu_si256((const __m256i *)p),
          b = _mm256_loadu_si256((const __m256i *)(p + 32));
  __m256i na = _mm256_cmpeq_epi8(a, vn), nb = _mm256_cmpeq_epi8(b, vn);
  __m256i ta = _mm256_or_si256(na, _mm256_cmpeq_epi8(a, vd)),
          tb = _mm256_or_si256(nb, _mm256_cmpeq_epi8(b, vd));
  __m256i xa = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(a, vr), _mm256_cmpeq_epi8(a, vq)),
                               _mm256_or_si256(_mm256_cmpeq_epi8(a, v0), a));
  __m256i xb = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(b, vr), _mm256_cmpeq_epi8(b, vq)),
                               _mm256_or_si256(_mm256_cmpeq_epi8(b, v0), b));
  *st = (uint64_t)(uint32_t)_mm256_movemask_epi8(ta) |
        (uint64_t)(uint32_t)_mm256_movemask_epi8(tb) << 32;
  *lf = (uint64_t)(uint32_t)_mm256_movemask_epi8(na) |
        (uint64_t)(uint32_t)_mm256_movemask_epi8(nb) << 32;
  *sp = (uint64_t)(uint32_t)_mm256_movemask_epi8(xa) |
        (uint64_t)(uint32_t)_mm256_movemask_epi8(xb) << 32;
}

/* fb_flatten() with BMI's tzcnt (defined for 0) */
__attribute__((target("bmi,popcnt"))) static inline size_t
fb_flatten_bmi(uint32_t *out, size_t n, uint64_t m, uint32_t off) {
  size_t cnt = (size_t)__builtin_popcountll(m);
  uint32_t *o = out + n;
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    o[i] = off + (uint32_t)_tzcnt_u64(m);
    m = _blsr_u64(m);
  }
  if (cnt > 8) {
#pragma GCC unroll 8
    for (int i = 8; i < 16; i++) {
      o[i] = off + (uint32_t)_tzcnt_u64(m);
      m = _blsr_u64(m);
    }
    for (size_t i = 16; i < cnt; i++) {
      o[i] = off + (uint32_t)_tzcnt_u64(m);
      m = _blsr_u64(m);
    }
  }
  return n + cnt;
}
#endif

/* A field the column loops do not take: the general parser, or missing, or
 * text (returns -1). */
static int fb_slow(const unsigned char *p, size_t len, double *v) {
  if (stats_parse_number((const char *)p, (const char *)p + len, v))
    return 1;
  return stats_is_missing((const char *)p, len) ? 0 : -1;
}

/* The shape of a column in a block: kind, digits after the point (n),
 * length of the exponent part (x: 'e' or 'E', an optional sign (es), 1 to 3
 * digits; 0 when there is none). */
enum { FB_GENERIC, FB_INT, FB_DEC, FB_EXP };
typedef struct fb_shape {
  int kind, n, x, es;
} fb_shape_t;

/* The shape of column f in a block, from its first non-empty field:
 * [-]digits (FB_INT), [-]digits.n digits with 1 <= n <= 15 (FB_DEC), either
 * of those (n >= 0) with an exponent part (FB_EXP), or anything else. */
static fb_shape_t fb_shape(const unsigned char *bb, const uint32_t *ix, size_t nrec,
                           size_t nc, size_t f) {
  fb_shape_t sh = {FB_GENERIC, 0, 0, 0};
  for (size_t r = 0; r < nrec && r < 4; r++) {
    uint32_t s = ix[r * nc + f - 1] + 1, e = ix[r * nc + f];
    if (e == s)
      continue;
    if (e - s > 16)
      return sh;
    uint32_t i = s + (bb[s] == '-'), me = e; /* mantissa [i, me) */
    for (uint32_t j = i; j < e; j++)
      if ((bb[j] | 0x20) == 'e') {
        me = j;
        break;
      }
    int dot = -1, nd = 0;
    for (uint32_t j = i; j < me; j++) {
      if (bb[j] == '.' && dot < 0)
        dot = (int)(me - j - 1);
      else if ((unsigned)(bb[j] - '0') < 10)
        nd++;
      else
        return sh;
    }
    if (nd == 0)
      return sh;
    if (me == e) {
      if (dot < 0)
        sh.kind = FB_INT;
      else if (dot >= 1 && dot <= 15) {
        sh.kind = FB_DEC;
        sh.n = dot;
      }
      return sh;
    }
    int es = bb[me + 1] == '+' || bb[me + 1] == '-';
    int ed = (int)(e - me) - 1 - es;
    if (ed < 1 || ed > 3 || dot == 0 || dot > 15)
      return sh;
    for (uint32_t j = e - (uint32_t)ed; j < e; j++)
      if ((unsigned)(bb[j] - '0') >= 10)
        return sh;
    sh.kind = FB_EXP;
    sh.n = dot < 0 ? 0 : dot;
    sh.x = (int)(e - me);
    sh.es = es;
    return sh;
  }
  return sh;
}

#ifdef STATS_SSE41
/* The exponent of a field of the shape's exponent kind ending at pe (>= 16
 * bytes into the data): `ed` digits, signed when `es`, less the `n` digits
 * after the point; clamped to [-22, 22] and *bad set beyond that. */
static inline __attribute__((always_inline)) int8_t
fb_exponent(const unsigned char *pe, int ed, int es, int n, uint32_t *bad) {
  int d1 = pe[-1] - '0', d2 = pe[-2] - '0', d3 = pe[-3] - '0';
  int ex = ed == 1 ? d1 : ed == 2 ? d2 * 10 + d1 : d3 * 100 + d2 * 10 + d1;
  ex = es && pe[-ed - 1] == '-' ? -ex : ex;
  ex -= n;
  *bad |= (unsigned)(ex + 22) > 44;
  return (int8_t)(ex < -22 ? -22 : ex > 22 ? 22 : ex);
}

/* One column of a block whose fields mostly have one shape.  Each field is
 * loaded as the 16 bytes that end at its terminator, so its digits are
 * right-aligned and the point and exponent (if any) are in lanes fixed for
 * the whole loop: compares against the expected masks check the field, a
 * constant shuffle moves the mantissa digits to the right end without the
 * point, and multiply-adds give the integer M (< 10^16).  Integers are
 * converted by the (correctly rounding) int64 -> double conversion;
 * otherwise M < 10^15 and the value is M * 10^k (k = exponent - n, |k| <= 22)
 * by one multiplication or division of exact operands (Clinger), done in a
 * second loop of its own, where the divisions overlap.  Fields of another
 * shape, over 16 bytes, missing or with |k| > 22 are marked in the loop
 * (which has no calls, so nothing is spilled) and redone afterwards with
 * sse_number() and the general parser.  Needs 16 readable bytes before every
 * terminator.  out[] gets nrec slots, kx[] is scratch for nrec; returns the
 * values kept (compacted), or -1 when the column is text. */
#define FB_COL_NAME fb_col_sse
#define FB_COL_TARGET "sse4.1,popcnt"
#include "fbcol.h"
#undef FB_COL_NAME
#undef FB_COL_TARGET
/* the same compiled for AVX2 + BMI (VEX encodings, andn, shlx) */
#define FB_COL_NAME fb_col_avx2
#define FB_COL_TARGET "avx2,bmi,bmi2,popcnt"
#define FB_COL_WIDE 1 /* 256-bit loops too */
#include "fbcol.h"
#undef FB_COL_NAME
#undef FB_COL_TARGET
#undef FB_COL_WIDE
#endif

/* Convert one column of a block: fields f of records 0..nrec-1. */
static inline __attribute__((always_inline)) int
fb_column(const stats_cfg_t *c, const unsigned char *bb, const uint32_t *ix, size_t nrec,
          size_t f, stats_col_t *col, uint32_t *redo, uint16_t *sg, const int simd,
          const int fast) {
  const size_t nc = c->ncols;
  if (col->capvals < col->nvals + nrec &&
      grow(&col->vals, &col->capvals, stats_batch(c) + FB_ROWS))
    return MPC_ENOMEM;
  double *out = col->vals + col->nvals;
  long k = 0;
#ifdef STATS_SSE41
  if (simd) {
    fb_shape_t sh = fb_shape(bb, ix, nrec, nc, f);
    int8_t *kx = (int8_t *)(redo + FB_ROWS);
    const unsigned char dl = (unsigned char)c->delim;
    /* Fields of at most 8 bytes four at a time (AVX2): for integers and up
     * to 6 digits after the point, unless the last try found more than a
     * quarter of the fields longer (then the two-at-a-time loop for the
     * next 32 blocks of this column) */
    const int quad = simd >= 2 && col->wide_left == 0 &&
                     (sh.kind == FB_INT || (sh.kind == FB_DEC && sh.n <= 6));
    size_t nlong = 0;
#define FB_COL(fn)                                                             \
  do {                                                                         \
    if (sh.kind == FB_INT)                                                     \
      k = fn##_int(bb, ix, nrec, nc, f, out, redo, kx, sg, dl, sh, quad, &nlong);                 \
    else if (sh.kind == FB_DEC)                                                \
      k = fn##_dec(bb, ix, nrec, nc, f, out, redo, kx, sg, dl, sh, quad, &nlong);                 \
    else if (sh.kind == FB_EXP)                                                \
      k = fn##_exp(bb, ix, nrec, nc, f, out, redo, kx, sg, dl, sh, quad, &nlong);                 \
    else                                                                       \
      k = fn##_gen(bb, ix, nrec, nc, f, out, redo, kx, sg, dl, sh, quad, &nlong);                 \
  } while (0)
    if (simd >= 2)
      FB_COL(fb_col_avx2);
    else
      FB_COL(fb_col_sse);
#undef FB_COL
    if (quad && nlong > nrec / 4)
      col->wide_left = 32;
    else if (col->wide_left)
      col->wide_left--;
  } else
#endif
  {
    const uint32_t *te = ix + f, *ts = ix + f - 1;
    for (size_t r = 0; r < nrec && k >= 0; r++) {
      uint32_t s = ts[r * nc] + 1, e = te[r * nc];
      const unsigned char *p = bb + s;
      double v;
      int ok = fast && swar_number(p, bb + e, &v);
      if (!ok)
        ok = fb_slow(p, e - s, &v);
      out[k] = v;
      k = ok < 0 ? -1 : k + ok;
    }
  }
  if (k < 0) {
    col->nonnum = 1;
    return 0;
  }
  col->nvals += (size_t)k;
  col_moments(col);
  return col->nvals >= stats_batch(c) ? col_batch(col, c) : 0;
}

/* Parse a block of plain records at *posp (a record start before stop).
 * Returns the number of records parsed (0: the record at *posp is not plain,
 * or too close to the end of the data) and advances *posp. */
static inline __attribute__((always_inline)) size_t
fb_parse(const stats_cfg_t *c, const unsigned char *buf, uint64_t *posp, uint64_t stop,
         uint64_t fend, stats_part_t *part, unsigned char *act, fblk_t *fb, int *rcp,
         const int simd, const int fast) {
  const uint64_t base = *posp;
  const size_t nc = c->ncols;
  if (base < 16)
    return 0; /* fields are loaded as the 16 bytes before their end */
  const unsigned char delim = (unsigned char)c->delim;
  uint32_t *ix = fb->ixa + 1;
  size_t nix = 0, r = 0, want = nc - 1; /* the LF of record r is terminator `want` */
  uint32_t off = 0;
  int done = 0, crlf_seen = 0;
  /* 128: the 64 bytes loaded plus room for 16-byte loads at any field */
  while (!done && base + off + 128 <= fend && off < FB_MAXOFF) {
    uint64_t st, lf, sp;
#ifdef STATS_SSE41
    if (simd >= 2)
      fb_masks_avx2(buf + base + off, delim, &st, &lf, &sp);
    else
#endif
      fb_masks(buf + base + off, delim, &st, &lf, &sp);
    if (sp && nc > 1) {
      /* CRLF line ends stay on this path: a CR right before an LF (in the
       * same 64 bytes) is not special; the last field's end is moved off it
       * below (with one column that field's end is also the next record's
       * start: those stay on the record loop).  Any other CR, and the rest,
       * end the block. */
      uint64_t crlf = cr_mask64(buf + base + off) & (lf >> 1);
      sp &= ~crlf;
      crlf_seen |= crlf != 0;
    }
    if (sp) {
      uint64_t keep = (sp & (0 - sp)) - 1;
      st &= keep;
      lf &= keep;
      done = 1;
    }
    const size_t before = nix;
#ifdef STATS_SSE41
    if (simd >= 2)
      nix = fb_flatten_bmi(ix, nix, st, off);
    else
#endif
      nix = fb_flatten(ix, nix, st, off);
    /* check the records whose LF is here: each LF must be terminator
     * number `want` (its rank among the terminators) */
    for (uint64_t l = lf; l; l &= l - 1) {
      if (before + (size_t)__builtin_popcountll(st & (l - 1) & ~l) != want) {
        done = 1;
        break;
      }
      r++;
      want += nc;
      if (r == fb->rows || base + off + (uint64_t)__builtin_ctzll(l) + 1 >= stop) {
        done = 1;
        break;
      }
    }
    /* terminator `want` is here but no LF: record r has too many fields */
    done |= nix > want;
    off += 64;
  }
  if (r == 0)
    return 0;
  const unsigned char *bb = buf + base;
  for (size_t f = 0; f < nc; f++) {
    if (crlf_seen && f == nc - 1) /* columns before it took their starts */
      for (size_t i = 0; i < r; i++)
        ix[i * nc + f] -= bb[ix[i * nc + f] - 1] == '\r';
    if (!act[f])
      continue;
    int rc = fb_column(c, bb, ix, r, f, &part->cols[f], fb->redo, fb->sg, simd, fast);
    if (rc) {
      *rcp = rc;
      return 0;
    }
    act[f] = !part->cols[f].nonnum;
  }
  part->records += r;
  part->block_records += r;
  *posp = base + ix[r * nc - 1] + 1;
  return r;
}

/* The record loop; compiled twice (with and without SSE4.1) so that the SSE
 * number parser inlines into it. */
static inline __attribute__((always_inline)) int
parse_records(const stats_cfg_t *c, const unsigned char *buf, uint64_t from, uint64_t stop,
              uint64_t fend, stats_part_t *part, uint64_t *endp, const int isa) {
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
  const int simd = fast && isa >= 1;
#endif
  scan_t z;
  scan_init(&z, buf, fend, from, c->delim);
  /* the block path needs a delimiter it can tell from the bytes it leaves
   * to this loop, and a delimiter in every record (no blank lines); its
   * SSE number parser gets each field's length, so any delimiter does */
  fblk_t fb = {NULL, 0, {0}, {0}};
  const int fbok = ncols >= 2 && delim != '"' && delim != '\r' && delim != '\n' &&
                   delim != 0 && delim < 0x80 && fblk_init(&fb, ncols) == 0;
  uint64_t slow_left = 0, backoff = 1; /* records left for this loop after a miss */
  unsigned char *act = malloc(ncols + 1); /* column wanted and still numeric */
  if (!act) {
    rc = MPC_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < ncols; i++)
    act[i] = c->want[i] && !part->cols[i].nonnum;
  while (pos < stop) {
    if (fbok && slow_left == 0) {
      if (fb_parse(c, buf, &pos, stop, fend, part, act, &fb, &rc, isa, fast)) {
        if (z.vto < pos)
          z.vto = pos; /* the block path checked these bytes */
        backoff = 1;
        continue;
      }
      if (rc)
        goto out;
      slow_left = backoff;
      backoff = backoff < 64 ? backoff * 2 : 64;
    }
    if (slow_left)
      slow_left--;
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
        if (part->first_quote == UINT64_MAX) {
          part->first_quote = e; /* the block path takes no record with a '"' */
          if (part->stop_at_quote)
            goto out;
        }
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
  fblk_free(&fb);
  free(act);
  mpc_buf_free(&sc);
  *endp = pos;
  if (!rc)
    rc = stats_part_flush(part, c);
  return rc;
}

#ifdef STATS_SSE41
__attribute__((target("sse4.1,popcnt"), flatten)) static int
parse_sse41(const stats_cfg_t *c, const unsigned char *buf, uint64_t from, uint64_t stop,
            uint64_t fend, stats_part_t *part, uint64_t *endp) {
  return parse_records(c, buf, from, stop, fend, part, endp, 1);
}

__attribute__((target("avx2,bmi,popcnt"), flatten)) static int
parse_avx2(const stats_cfg_t *c, const unsigned char *buf, uint64_t from, uint64_t stop,
           uint64_t fend, stats_part_t *part, uint64_t *endp) {
  return parse_records(c, buf, from, stop, fend, part, endp, 2);
}
#endif

/* 0: plain C, 1: SSE4.1 + POPCNT, 2: also AVX2 + BMI; -1: not chosen yet */
static int parse_isa = -1, parse_isa_max;

static void pick_isa(void) {
#ifdef STATS_SSE41
  __builtin_cpu_init();
  sse_tabs_init();
  int sse = __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("popcnt");
  parse_isa_max =
      !sse ? 0 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") ? 2 : 1;
#else
  parse_isa_max = 0;
#endif
  parse_isa = parse_isa_max;
}

int stats_parse_isa(int want) {
  if (parse_isa < 0)
    pick_isa();
  if (want >= 0)
    parse_isa = want < parse_isa_max ? want : parse_isa_max;
  return parse_isa;
}

int stats_parse(const stats_cfg_t *c, const unsigned char *buf, uint64_t from,
                uint64_t stop, uint64_t fend, stats_part_t *part,
                uint64_t *endp) {
  if (parse_isa < 0)
    pick_isa();
#ifdef STATS_SSE41
  const int isa = parse_isa;
  if (isa == 2)
    return parse_avx2(c, buf, from, stop, fend, part, endp);
  if (isa == 1)
    return parse_sse41(c, buf, from, stop, fend, part, endp);
#endif
  return parse_records(c, buf, from, stop, fend, part, endp, 0);
}
