/* The column loop of the block path (see fb_col_sse() in csvscan.c),
 * included there once per code variant: FB_COL_NAME and FB_COL_TARGET name
 * the function and its target ISA.  Not a header of its own. */
#define FB_CAT2(a, b) a##b
#define FB_CAT(a, b) FB_CAT2(a, b)

__attribute__((target(FB_COL_TARGET), always_inline)) static inline long
FB_COL_NAME(const unsigned char *bb, const uint32_t *ix, size_t nrec, size_t nc, size_t f,
            double *out, uint32_t *redo, int8_t *kx, const int kind, const fb_shape_t sh) {
  const __m128i c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9), cdot = _mm_set1_epi8('.');
  const __m128i m1 = _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1);
  const __m128i m2 = _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1);
  const __m128i m4 = _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1);
  const int n = sh.n, x = kind == FB_EXP ? sh.x : 0, ed = x - 1 - sh.es;
  /* lane i of the squeezed digits takes lane src(i) (none if < 0) */
  unsigned char sq[16];
  for (int i = 0; i < 16; i++) {
    int src = i - x - (n >= 1 && i <= 15 - n ? 1 : 0);
    sq[i] = (unsigned char)(src >= 0 ? src : 0x80);
  }
  const __m128i sqz = _mm_loadu_si128((const __m128i *)sq);
  const uint32_t dotbit = n >= 1 ? 1u << (15 - x - n) : 0;
  const uint32_t ebit = x ? 1u << (16 - x) : 0, esbit = x && sh.es ? 1u << (17 - x) : 0;
  const uint32_t fixed = dotbit | ebit | esbit; /* expected non-digit lanes */
  const uint32_t *te = ix + f, *ts = ix + f - 1;
  size_t nredo = 0;
  if (kind == FB_GENERIC) {
    for (size_t r = 0; r < nrec; r++) {
      uint32_t s = ts[r * nc] + 1, e = te[r * nc];
      size_t len = e - s;
      int ok = len - 1 < 16 && sse_number(bb + s, len, &out[r]);
      redo[nredo] = (uint32_t)r;
      nredo += (size_t)!ok;
    }
  } else {
    /* two passes, so that each loop body is short and the out-of-order
     * window holds several fields: digits to (sign | M) in out[], then
     * those to doubles in place */
    const uint32_t *tp = ix + f;
    size_t r = 0;
#ifdef FB_COL_WIDE
    /* Two records at a time, one in each 128-bit lane: what the loop below
     * does for one, with the vector work shared (masks come out as one
     * 32-bit word, low half the first record's). */
    const __m256i w0 = _mm256_set1_epi8('0'), w9 = _mm256_set1_epi8(9);
    const __m256i wdot = _mm256_set1_epi8('.'), wsq = _mm256_broadcastsi128_si256(sqz);
    const __m256i wm1 = _mm256_broadcastsi128_si256(m1), wm2 = _mm256_broadcastsi128_si256(m2);
    const __m256i wm4 = _mm256_broadcastsi128_si256(m4);
    for (; r + 2 <= nrec; r += 2, tp += 2 * nc) {
      uint32_t s0 = tp[-1] + 1, e0 = tp[0], s1 = tp[nc - 1] + 1, e1 = tp[nc];
      size_t len0 = e0 - s0, len1 = e1 - s1;
      __m256i v = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(bb + e0 - 16))),
          _mm_loadu_si128((const __m128i *)(bb + e1 - 16)), 1);
      __m256i t = _mm256_sub_epi8(v, w0);
      uint32_t dig = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(t, w9), t));
      uint32_t neg0 = bb[s0] == '-', neg1 = bb[s1] == '-';
      uint32_t li0 = len0 <= 16 ? (uint32_t)len0 : 0, li1 = len1 <= 16 ? (uint32_t)len1 : 0;
      uint32_t bad0 = (~dig & sse_tabs.fm[li0]) ^ (fixed | neg0 << (16 - li0));
      uint32_t bad1 = (~(dig >> 16) & sse_tabs.fm[li1]) ^ (fixed | neg1 << (16 - li1));
      if (kind == FB_INT) {
        bad0 |= li0 <= neg0;
        bad1 |= li1 <= neg1;
      } else {
        uint32_t dotm = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, wdot));
        bad0 |= dotbit & ~dotm;
        bad1 |= dotbit & ~(dotm >> 16);
      }
      if (kind == FB_EXP) {
        uint32_t em = (uint32_t)_mm256_movemask_epi8(
            _mm256_cmpeq_epi8(_mm256_or_si256(v, _mm256_set1_epi8(0x20)), _mm256_set1_epi8('e')));
        uint32_t pm = (uint32_t)_mm256_movemask_epi8(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('+')),
                            _mm256_cmpeq_epi8(v, _mm256_set1_epi8('-'))));
        bad0 |= (ebit & ~em) | (esbit & ~pm) | (li0 <= (uint32_t)x + neg0);
        bad1 |= (ebit & ~(em >> 16)) | (esbit & ~(pm >> 16)) | (li1 <= (uint32_t)x + neg1);
        kx[r] = fb_exponent(bb + e0, ed, sh.es, n, &bad0);
        kx[r + 1] = fb_exponent(bb + e1, ed, sh.es, n, &bad1);
      }
      t = _mm256_and_si256(t, _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(
              (const __m128i *)sse_tabs.tail[(16 - li0 + neg0) & 15])),
          _mm_loadu_si128((const __m128i *)sse_tabs.tail[(16 - li1 + neg1) & 15]), 1));
      if (kind != FB_INT)
        t = _mm256_shuffle_epi8(t, wsq);
      __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(t, wm1), wm2);
      __m256i p4 = _mm256_madd_epi16(_mm256_packus_epi32(p2, p2), wm4);
      uint64_t hl0 = (uint64_t)_mm256_extract_epi64(p4, 0);
      uint64_t hl1 = (uint64_t)_mm256_extract_epi64(p4, 2);
      uint64_t mm0 = ((hl0 & 0xFFFFFFFFu) * 100000000u + (hl0 >> 32)) | (uint64_t)neg0 << 63;
      uint64_t mm1 = ((hl1 & 0xFFFFFFFFu) * 100000000u + (hl1 >> 32)) | (uint64_t)neg1 << 63;
      memcpy(&out[r], &mm0, sizeof mm0);
      memcpy(&out[r + 1], &mm1, sizeof mm1);
      redo[nredo] = (uint32_t)r;
      nredo += bad0 != 0;
      redo[nredo] = (uint32_t)r + 1;
      nredo += bad1 != 0;
    }
#endif
    for (; r < nrec; r++, tp += nc) {
      uint32_t s = tp[-1] + 1, e = tp[0];
      size_t len = e - s;
      __m128i v = _mm_loadu_si128((const __m128i *)(bb + e - 16));
      __m128i t = _mm_sub_epi8(v, c0);
      uint32_t dig = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, c9), t));
      /* field lanes: digits, plus the fixed lanes and a leading '-' */
      uint32_t neg = bb[s] == '-';
      uint32_t li = len <= 16 ? (uint32_t)len : 0;
      uint32_t fm = sse_tabs.fm[li], nd = ~dig & fm, sgb = neg << (16 - li);
      uint32_t bad = nd ^ (fixed | sgb);
      if (kind == FB_INT) {
        bad |= li <= neg;
      } else {
        uint32_t dotm = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cdot));
        bad |= dotbit & ~dotm;
      }
      if (kind == FB_EXP) {
        uint32_t em = (uint32_t)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('e')));
        uint32_t pm = (uint32_t)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8('+')), _mm_cmpeq_epi8(v, _mm_set1_epi8('-'))));
        bad |= (ebit & ~em) | (esbit & ~pm) | (li <= (uint32_t)x + neg);
        kx[r] = fb_exponent(bb + e, ed, sh.es, n, &bad);
      }
      /* index 16 or 17 only for fields that are bad anyway */
      t = _mm_and_si128(t, _mm_loadu_si128((const __m128i *)sse_tabs.tail[(16 - li + neg) & 15]));
      if (kind != FB_INT)
        t = _mm_shuffle_epi8(t, sqz);
      __m128i p1 = _mm_maddubs_epi16(t, m1);
      __m128i p2 = _mm_madd_epi16(p1, m2);
      __m128i p4 = _mm_madd_epi16(_mm_packus_epi32(p2, p2), m4);
      uint64_t hl = (uint64_t)_mm_cvtsi128_si64(p4);
      uint64_t m = (hl & 0xFFFFFFFFu) * 100000000u + (hl >> 32); /* < 10^16 */
      m |= (uint64_t)neg << 63;
      memcpy(&out[r], &m, sizeof m);
      redo[nredo] = (uint32_t)r;
      nredo += bad != 0;
    }
    const uint64_t sign = 1ULL << 63;
    const double div = p10[n];
    r = 0;
#ifdef FB_COL_WIDE
    {
      /* four at a time, bit for bit what the loop below does: (sign | M) to
       * double as two exact halves whose sum rounds once (the same value as
       * the int64 conversion), then the same multiplication or division;
       * scalar divisions would not overlap enough to keep up */
      const __m256i sgn = _mm256_set1_epi64x((long long)sign);
      const __m256i lo32 = _mm256_set1_epi64x(0xFFFFFFFFLL);
      const __m256i k52 = _mm256_set1_epi64x(0x4330000000000000LL); /* 2^52 */
      const __m256i k84 = _mm256_set1_epi64x(0x4530000000000000LL); /* 2^84 */
      const __m256d k8452 = _mm256_set1_pd(19342813118337666422669312.); /* 2^84 + 2^52 */
      const __m256d vdiv = _mm256_set1_pd(div);
      for (; r + 4 <= nrec; r += 4) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(out + r));
        __m256i sg = _mm256_and_si256(u, sgn);
        u = _mm256_andnot_si256(sgn, u);
        __m256d lo = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(u, lo32), k52));
        __m256d hi = _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(u, 32), k84));
        __m256d d = _mm256_add_pd(_mm256_sub_pd(hi, k8452), lo);
        if (kind == FB_DEC) {
          d = _mm256_div_pd(d, vdiv);
        } else if (kind == FB_EXP) {
          int32_t k4;
          memcpy(&k4, kx + r, sizeof k4);
          __m128i k = _mm_cvtepi8_epi32(_mm_cvtsi32_si128(k4));
          __m128i kp = _mm_max_epi32(k, _mm_setzero_si128());
          __m128i kn = _mm_max_epi32(_mm_sub_epi32(_mm_setzero_si128(), k), _mm_setzero_si128());
          d = _mm256_div_pd(_mm256_mul_pd(d, _mm256_i32gather_pd(p10, kp, 8)),
                            _mm256_i32gather_pd(p10, kn, 8));
        }
        _mm256_storeu_pd(out + r, _mm256_or_pd(d, _mm256_castsi256_pd(sg)));
      }
    }
#endif
    for (; r < nrec; r++) {
      uint64_t u, b;
      memcpy(&u, &out[r], sizeof u);
      double d = (double)(int64_t)(u & ~sign);
      if (kind == FB_DEC) {
        d /= div;
      } else if (kind == FB_EXP) {
        int k = kx[r];
        d = d * p10[k > 0 ? k : 0] / p10[k < 0 ? -k : 0]; /* one of them is by 1 */
      }
      memcpy(&b, &d, sizeof b);
      b |= u & sign;
      memcpy(&out[r], &b, sizeof b);
    }
  }
  if (nredo == 0)
    return (long)nrec;
  /* the odd fields, then squeeze out the missing ones */
  size_t k = redo[0];
  for (size_t i = 0, r = redo[0]; r < nrec; r++) {
    if (i < nredo && redo[i] == r) {
      i++;
      uint32_t s = ts[r * nc] + 1, e = te[r * nc];
      int ok = 0;
      if (kind != FB_GENERIC && e - s - 1 < 16)
        ok = sse_number(bb + s, e - s, &out[r]);
      if (!ok)
        ok = fb_slow(bb + s, e - s, &out[r]);
      if (ok < 0)
        return -1;
      if (!ok)
        continue;
    }
    out[k++] = out[r];
  }
  return (long)k;
}

/* one copy per shape kind, so that the loops test no kind at run time */
#define FB_COL_KIND(suffix, KIND)                                               \
  __attribute__((target(FB_COL_TARGET), noinline)) static long FB_CAT(FB_COL_NAME, suffix)(  \
      const unsigned char *bb, const uint32_t *ix, size_t nrec, size_t nc, size_t f,         \
      double *out, uint32_t *redo, int8_t *kx, const fb_shape_t sh) {                        \
    return FB_COL_NAME(bb, ix, nrec, nc, f, out, redo, kx, KIND, sh);                        \
  }
FB_COL_KIND(_int, FB_INT)
FB_COL_KIND(_dec, FB_DEC)
FB_COL_KIND(_exp, FB_EXP)
FB_COL_KIND(_gen, FB_GENERIC)
#undef FB_COL_KIND
#undef FB_CAT
#undef FB_CAT2
