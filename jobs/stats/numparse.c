/* Decimal text -> double, correctly rounded, and pandas' missing tokens.
 *
 * Fast path (Clinger 1990): a mantissa of at most 19 significant digits that
 * fits in 53 bits, scaled by an exact power of ten (10^0..10^22), is one
 * IEEE operation on two exact operands, hence correctly rounded.  Everything
 * else goes to strtod (glibc's is correctly rounded).  Accepted syntax is
 * pandas' (no hex, no nan, which pandas treats as a missing token). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const double k_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline int is_sp(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

static int parse_inf(const char *s, const char *e, double *out) {
  int neg = 0;
  if (s < e && (*s == '+' || *s == '-'))
    neg = *s++ == '-';
  size_t n = (size_t)(e - s);
  if ((n == 3 && strncasecmp(s, "inf", 3) == 0) ||
      (n == 8 && strncasecmp(s, "infinity", 8) == 0)) {
    *out = neg ? -INFINITY : INFINITY;
    return 1;
  }
  return 0;
}

static int slow_path(const char *s, const char *e, double *out) {
  char small[128];
  size_t n = (size_t)(e - s);
  char *b = n < sizeof small ? small : malloc(n + 1);
  if (!b)
    return 0;
  memcpy(b, s, n);
  b[n] = 0;
  char *end;
  double v = strtod(b, &end);
  int ok = end == b + n;
  if (b != small)
    free(b);
  if (ok)
    *out = v;
  return ok;
}

int stats_parse_number(const char *s, const char *e, double *out) {
  while (s < e && is_sp((unsigned char)*s))
    s++;
  while (e > s && is_sp((unsigned char)e[-1]))
    e--;
  if (s == e)
    return 0;
  const char *p = s;
  int neg = 0;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  uint64_t mant = 0;
  int sig = 0;      /* significant digits taken into mant */
  int dropped = 0;  /* nonzero digits that did not fit */
  int exp10 = 0;
  int ndig = 0;
  while (p < e && (unsigned)(*p - '0') < 10) {
    unsigned d = (unsigned)(*p - '0');
    if (sig < 19) {
      if (mant || d) {
        mant = mant * 10 + d;
        sig++;
      }
    } else {
      exp10++;
      dropped |= d != 0;
    }
    p++;
    ndig++;
  }
  if (p < e && *p == '.') {
    p++;
    while (p < e && (unsigned)(*p - '0') < 10) {
      unsigned d = (unsigned)(*p - '0');
      if (sig < 19) {
        if (mant || d) {
          mant = mant * 10 + d;
          sig++;
        }
        exp10--;
      } else {
        dropped |= d != 0;
      }
      p++;
      ndig++;
    }
  }
  if (ndig == 0)
    return parse_inf(s, e, out);
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    int eneg = 0;
    if (p < e && (*p == '+' || *p == '-'))
      eneg = *p++ == '-';
    if (p == e || (unsigned)(*p - '0') >= 10)
      return 0;
    int x = 0;
    while (p < e && (unsigned)(*p - '0') < 10) {
      if (x < 100000)
        x = x * 10 + (*p - '0');
      p++;
    }
    exp10 += eneg ? -x : x;
  }
  if (p != e)
    return 0;
  if (!dropped && mant <= (1ULL << 53)) {
    double v = (double)mant;
    if (mant == 0) {
      *out = neg ? -0.0 : 0.0;
      return 1;
    }
    if (exp10 >= 0 && exp10 <= 22) {
      v *= k_pow10[exp10];
      *out = neg ? -v : v;
      return 1;
    }
    if (exp10 < 0 && exp10 >= -22) {
      v /= k_pow10[-exp10];
      *out = neg ? -v : v;
      return 1;
    }
    if (exp10 > 22 && exp10 <= 22 + 15) {
      /* mant * 10^(exp10-22) is still an exact integer below 2^53? */
      double w = v * k_pow10[exp10 - 22];
      if (w <= 9007199254740992.0) {
        w *= 1e22;
        *out = neg ? -w : w;
        return 1;
      }
    }
  }
  return slow_path(s, e, out);
}

int stats_is_missing(const char *s, size_t n) {
  static const char *const tok[] = {
      "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
      "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
      "nan", "null"};
  if (n == 0)
    return 1;
  if (n > 8)
    return 0;
  for (size_t i = 0; i < sizeof tok / sizeof *tok; i++)
    if (strlen(tok[i]) == n && memcmp(tok[i], s, n) == 0)
      return 1;
  return 0;
}
