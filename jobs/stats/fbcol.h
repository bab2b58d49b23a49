/* The column loop of the block path (see fb_col_sse() in csvscan.c),
 * included there once per code variant: FB_COL_NAME and FB_COL_TARGET name
 * the function and its target ISA.  Not a header of its own. */
#define FB_CAT2(a, b) a##b
#define FB_CAT(a, b) FB_CAT2(a, b)

#ifdef FB_COL_WIDE
/* Two fields of a column, one in each 128-bit lane: the 16 bytes that end
 * at field 0's terminator (e0) and at field 1's (e1).  Each field starts
 * right after the last terminator (delimiter or LF) in its window, as no
 * field of a plain record holds one; a window without one holds a field of
 * 16 bytes or more (bad: redone by the general parser).  The first field
 * of a block follows the LF or CR that ended the record before it; a CR is
 * no terminator here, but no digit, point, sign or 'e' either, so such a
 * field can only come out bad (and be redone), never misread.  The
 * garbage lanes (the terminator and what is before it) come from a suffix
 * OR of the terminator lanes within each 128-bit lane; the lanes of a
 * field and the first of them follow as bit masks of both fields at once
 * (field 1 in bits 16..31).  A field is good when its non-digit lanes are
 * exactly the shape's fixed lanes (point, 'e', exponent sign) plus
 * perhaps a '-' in its first lane, the fixed lanes hold the right bytes,
 * and its last lane (and for exponents the lane before the 'e') is a
 * digit of the field.  Returns the two M (< 10^15 for good fields) in the
 * two 64-bit halves; *bad gets the bits of bad lanes (zero half: good
 * field), *neg the bit of a leading '-' of each field (bits 0..15 and
 * 16..31, zero when positive); for exponent shapes kx[0..1] get the
 * exponents less n, clamped to [-22, 22] (bad beyond). */
__attribute__((target(FB_COL_TARGET), always_inline)) static inline __m128i
FB_CAT(FB_COL_NAME, _pair)(const unsigned char *bb, uint32_t e0, uint32_t e1, const int kind,
                           const __m256i wsq, const uint32_t fixed, const uint32_t dotbit,
                           const uint32_t ebit, const uint32_t esbit, const uint32_t must,
                           const __m256i wex, const int xs, const int n,
                           const unsigned char delim, uint32_t *badp, uint32_t *negp,
                           int8_t *kx) {
  const __m256i w9 = _mm256_set1_epi8(9);
  const __m256i wm1 = _mm256_set1_epi16(0x010A); /* bytes 10, 1 */
  const __m256i wm2 = _mm256_set1_epi32(0x00010064); /* words 100, 1 */
  const __m256i wm4 = _mm256_set1_epi32(0x00012710); /* words 10000, 1 */
  __m256i v = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(bb + e0 - 16))),
      _mm_loadu_si128((const __m128i *)(bb + e1 - 16)), 1);
  __m256i t = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
  __m256i dv = _mm256_cmpeq_epi8(_mm256_min_epu8(t, w9), t); /* digit lanes */
  __m256i g = _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8((char)delim)),
                              _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n')));
  g = _mm256_or_si256(g, _mm256_bsrli_epi128(g, 1)); /* lane i: a terminator at >= i */
  g = _mm256_or_si256(g, _mm256_bsrli_epi128(g, 2));
  g = _mm256_or_si256(g, _mm256_bsrli_epi128(g, 4));
  g = _mm256_or_si256(g, _mm256_bsrli_epi128(g, 8));
  const uint32_t fx2 = fixed | fixed << 16, must2 = must | must << 16;
  uint32_t dig = (uint32_t)_mm256_movemask_epi8(dv);
  uint32_t fl = ~(uint32_t)_mm256_movemask_epi8(g); /* field lanes */
  uint32_t first = fl & ~(fl << 1); /* bit 16 also when field 0 is empty: bad anyway */
  const __m256i mv = _mm256_cmpeq_epi8(v, _mm256_set1_epi8('-'));
  uint32_t mn = (uint32_t)_mm256_movemask_epi8(mv);
  uint32_t neg = mn & first;
  uint32_t bad = ((fl & ~dig) ^ (fx2 | neg)) | (must2 & ~(dig & fl)) | (fl & 0x10001u);
  if (kind == FB_DEC || (kind == FB_EXP && dotbit)) {
    uint32_t dm = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('.')));
    bad |= (dotbit | dotbit << 16) & ~dm;
  }
  if (kind == FB_EXP) {
    uint32_t em = (uint32_t)_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_or_si256(v, _mm256_set1_epi8(0x20)), _mm256_set1_epi8('e')));
    uint32_t pm = (uint32_t)_mm256_movemask_epi8(
        _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('+')),
                        _mm256_cmpeq_epi8(v, _mm256_set1_epi8('-'))));
    bad |= ((ebit | ebit << 16) & ~em) | ((esbit | esbit << 16) & ~pm);
  }
  /* digits of the field only; the shape's lanes squeezed out */
  t = _mm256_andnot_si256(g, _mm256_and_si256(t, dv));
  if (kind == FB_EXP) {
    /* the exponent's digits (the last lanes) times 100, 10, 1 (wex), summed
     * in the last dword of each lane, negated when its sign lane (xs) is a
     * '-' (that byte spread over the dword), less n, checked, clamped */
    __m256i xe = _mm256_madd_epi16(_mm256_maddubs_epi16(t, wex), _mm256_set1_epi16(1));
    if (xs >= 0) {
      __m256i sgn = _mm256_shuffle_epi8(mv, _mm256_set1_epi8((char)xs));
      xe = _mm256_sub_epi32(_mm256_xor_si256(xe, sgn), sgn);
    }
    const __m256i lim = _mm256_set1_epi32(22), nlim = _mm256_set1_epi32(-22);
    xe = _mm256_sub_epi32(xe, _mm256_set1_epi32(n));
    bad |= (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpgt_epi32(xe, lim),
                                                          _mm256_cmpgt_epi32(nlim, xe))) &
           0xF000F000u; /* dwords 3 and 7 */
    xe = _mm256_min_epi32(_mm256_max_epi32(xe, nlim), lim);
    kx[0] = (int8_t)_mm256_extract_epi8(xe, 12);
    kx[1] = (int8_t)_mm256_extract_epi8(xe, 28);
  }
  if (kind != FB_INT)
    t = _mm256_shuffle_epi8(t, wsq);
  __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(t, wm1), wm2);
  __m256i p4 = _mm256_madd_epi16(_mm256_packus_epi32(p2, p2), wm4);
  /* dwords (high 8 digits, low 8 digits) in each lane: M = hi * 10^8 + lo */
  __m256i m = _mm256_add_epi64(_mm256_mul_epu32(p4, _mm256_set1_epi64x(100000000)),
                               _mm256_srli_epi64(p4, 32));
  *badp = bad;
  *negp = neg;
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(m, 0x08));
}

/* The same for four fields of at most 8 bytes (integers, or n <= 6 digits
 * after the point), one in each 64-bit lane: the 8 bytes that end at each
 * terminator.  Masks are 8 bits a field (field i in bits 8i..8i+7).  A
 * window without a terminator (*full: its bit 8i) holds a field of 8 bytes
 * when the terminator before it is 9 bytes before its own, else a longer
 * one, which is bad; the caller checks that, and gives the bad fields to
 * the _pair function.  Returns the four M (< 10^8). */
__attribute__((target(FB_COL_TARGET), always_inline)) static inline __m256i
FB_CAT(FB_COL_NAME, _quad)(const unsigned char *bb, uint32_t e0, uint32_t e1, uint32_t e2,
                           uint32_t e3, const int kind, const __m256i wsq8, const uint32_t dot4,
                           const unsigned char delim, uint32_t *badp, uint32_t *negp,
                           uint32_t *fullp) {
  const __m256i w9 = _mm256_set1_epi8(9);
  const __m256i wm1 = _mm256_set1_epi16(0x010A);     /* bytes 10, 1 */
  const __m256i wm2 = _mm256_set1_epi32(0x00010064); /* words 100, 1 */
  uint64_t w0, w1, w2, w3;
  memcpy(&w0, bb + e0 - 8, 8);
  memcpy(&w1, bb + e1 - 8, 8);
  memcpy(&w2, bb + e2 - 8, 8);
  memcpy(&w3, bb + e3 - 8, 8);
  __m256i v = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_insert_epi64(_mm_cvtsi64_si128((long long)w0), (long long)w1, 1)),
      _mm_insert_epi64(_mm_cvtsi64_si128((long long)w2), (long long)w3, 1), 1);
  __m256i t = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
  __m256i dv = _mm256_cmpeq_epi8(_mm256_min_epu8(t, w9), t);
  __m256i g = _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8((char)delim)),
                              _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n')));
  g = _mm256_or_si256(g, _mm256_srli_epi64(g, 8)); /* lane i: a terminator at >= i */
  g = _mm256_or_si256(g, _mm256_srli_epi64(g, 16));
  g = _mm256_or_si256(g, _mm256_srli_epi64(g, 32));
  uint32_t dig = (uint32_t)_mm256_movemask_epi8(dv);
  uint32_t fl = ~(uint32_t)_mm256_movemask_epi8(g);
  uint32_t first = fl & ~((fl << 1) & 0xFEFEFEFEu);
  uint32_t neg =
      (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('-'))) & first;
  uint32_t bad = ((fl & ~dig) ^ (dot4 | neg)) | (0x80808080u & ~(dig & fl));
  *fullp = fl & 0x01010101u; /* no terminator: 8 bytes or more */
  if (kind == FB_DEC)
    bad |= dot4 & ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('.')));
  t = _mm256_andnot_si256(g, _mm256_and_si256(t, dv));
  if (kind == FB_DEC)
    t = _mm256_shuffle_epi8(t, wsq8);
  /* dwords (first 4 digits, last 4) in each qword: M = hi * 10^4 + lo */
  __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(t, wm1), wm2);
  *badp = bad;
  *negp = neg;
  return _mm256_add_epi64(_mm256_mul_epu32(p2, _mm256_set1_epi64x(10000)),
                          _mm256_srli_epi64(p2, 32));
}
#endif

__attribute__((target(FB_COL_TARGET), always_inline)) static inline long
FB_COL_NAME(const unsigned char *bb, const uint32_t *ix, size_t nrec, size_t nc, size_t f,
            double *out, uint32_t *redo, int8_t *kx, uint16_t *sg, const unsigned char delim,
            const int kind, const fb_shape_t sh, const int quad, size_t *nlong) {
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
  *nlong = 0;
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
    /* Two records at a time, one in each 128-bit lane, everything taken
     * from the two 16-byte windows themselves (no field starts, no byte
     * loads): see the _pair function above.  A pair with a bad field is
     * noted with a branch (rare in the data this path is for), not with
     * branch-free stores for every pair. */
    const __m256i wsq = _mm256_broadcastsi128_si256(sqz);
    const uint32_t must = 0x8000u | (x ? 1u << (15 - x) : 0); /* digits of the field */
    /* exponent digits: lanes 16 - ed .. 15 weigh 10^(ed-1) .. 1; its sign lane */
    unsigned char wx[16] = {0};
    for (int i = 0; kind == FB_EXP && i < ed; i++)
      wx[15 - i] = (unsigned char)(i == 0 ? 1 : i == 1 ? 10 : 100);
    const __m256i wex = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)wx));
    const int xs = kind == FB_EXP && sh.es ? 15 - ed : -1;
    unsigned char *sb = (unsigned char *)sg; /* q4: a sign byte per record */
    const int q4 = kind != FB_EXP && quad;
    if (q4) {
      /* Four records at a time (see the _quad function), then the fields
       * of 9 bytes or more (and the bad ones) through the _pair function */
      unsigned char q8[16];
      for (int i = 0; i < 16; i++) {
        int j = i & 7, src = kind == FB_DEC && j <= 7 - n ? j - 1 : j;
        q8[i] = (unsigned char)(src >= 0 ? src + (i & 8) : 0x80);
      }
      const __m256i wsq8 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q8));
      const uint32_t dot4 = kind == FB_DEC ? 0x01010101u << (7 - n) : 0;
      for (; r + 4 <= nrec; r += 4, tp += 4 * nc) {
        uint32_t bad, neg;
        uint32_t full;
        __m256i m = FB_CAT(FB_COL_NAME, _quad)(bb, tp[0], tp[nc], tp[2 * nc], tp[3 * nc], kind,
                                               wsq8, dot4, delim, &bad, &neg, &full);
        _mm256_storeu_si256((__m256i *)(out + r), m);
        memcpy(sb + r, &neg, sizeof neg);
        if (full) { /* 8 bytes exactly? */
          const uint32_t *t1 = tp + nc, *t2 = t1 + nc, *t3 = t2 + nc;
          bad |= ((uint32_t)(tp[-1] + 9 != tp[0]) | (uint32_t)(t1[-1] + 9 != t1[0]) << 8 |
                  (uint32_t)(t2[-1] + 9 != t2[0]) << 16 | (uint32_t)(t3[-1] + 9 != t3[0]) << 24) &
                 full;
        }
        if (bad) {
          for (int i = 0; i < 4; i++) {
            redo[nredo] = (uint32_t)r + (uint32_t)i;
            nredo += (bad >> (8 * i) & 0xFFu) != 0;
          }
        }
      }
      if (r < nrec) { /* the last one to three, the first of them repeated */
        uint32_t bad, neg, k = (uint32_t)(nrec - r);
        uint64_t m4[4];
        uint32_t full;
        const size_t o1 = k > 1 ? nc : 0, o2 = k > 2 ? 2 * nc : 0;
        __m256i m = FB_CAT(FB_COL_NAME, _quad)(bb, tp[0], tp[o1], tp[o2], tp[0], kind, wsq8,
                                               dot4, delim, &bad, &neg, &full);
        bad |= (uint32_t)(tp[-1] + 9 != tp[0]) & full;
        bad |= (uint32_t)(tp[o1 - 1] + 9 != tp[o1]) << 8 & full;
        bad |= (uint32_t)(tp[o2 - 1] + 9 != tp[o2]) << 16 & full;
        _mm256_storeu_si256((__m256i *)m4, m);
        for (uint32_t i = 0; i < k; i++) {
          memcpy(out + r + i, m4 + i, sizeof *m4);
          sb[r + i] = (unsigned char)(neg >> (8 * i));
          redo[nredo] = (uint32_t)r + i;
          nredo += (bad >> (8 * i) & 0xFFu) != 0;
        }
        r = nrec;
      }
      /* second chance, two at a time; the list shrinks in place */
      *nlong = nredo;
      size_t left = 0;
      for (size_t i = 0; i < nredo; i += 2) {
        uint32_t ra = redo[i], rb = i + 1 < nredo ? redo[i + 1] : ra, bad, neg;
        uint64_t m2[2];
        __m128i m01 = FB_CAT(FB_COL_NAME, _pair)(bb, te[ra * nc], te[rb * nc], kind, wsq, fixed,
                                                 dotbit, ebit, esbit, must, wex, xs, n, delim,
                                                 &bad, &neg, kx);
        _mm_storeu_si128((__m128i *)m2, m01);
        memcpy(out + ra, m2, sizeof *m2);
        sb[ra] = (neg & 0xFFFFu) != 0;
        redo[left] = ra;
        left += (bad & 0xFFFFu) != 0;
        if (rb != ra) {
          memcpy(out + rb, m2 + 1, sizeof *m2);
          sb[rb] = (neg >> 16) != 0;
          redo[left] = rb;
          left += (bad >> 16) != 0;
        }
      }
      nredo = left;
    }
    for (; r + 2 <= nrec; r += 2, tp += 2 * nc) {
      uint32_t e0 = tp[0], e1 = tp[nc];
      uint32_t bad, neg;
      __m128i m01 = FB_CAT(FB_COL_NAME, _pair)(bb, e0, e1, kind, wsq, fixed, dotbit, ebit, esbit,
                                               must, wex, xs, n, delim, &bad, &neg, kx + r);
      _mm_storeu_si128((__m128i *)(out + r), m01);
      memcpy(sg + r, &neg, sizeof neg);
      if (bad) { /* rare: a branch costs less than noting every pair */
        redo[nredo] = (uint32_t)r;
        nredo += (bad & 0xFFFFu) != 0;
        redo[nredo] = (uint32_t)r + 1;
        nredo += (bad >> 16) != 0;
      }
    }
    if (r < nrec) { /* the last of an odd count, paired with itself */
      uint32_t e0 = tp[0], bad, neg;
      int8_t k2[2] = {0, 0};
      __m128i m01 = FB_CAT(FB_COL_NAME, _pair)(bb, e0, e0, kind, wsq, fixed, dotbit, ebit, esbit,
                                               must, wex, xs, n, delim, &bad, &neg, k2);
      kx[r] = k2[0];
      _mm_storel_epi64((__m128i *)(out + r), m01);
      sg[r] = (uint16_t)neg;
      redo[nredo] = (uint32_t)r;
      nredo += (bad & 0xFFFFu) != 0;
      r++;
    }
#else
    const __m128i c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9), cdot = _mm_set1_epi8('.');
    const __m128i m1 = _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1);
    const __m128i m2 = _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1);
    const __m128i m4 = _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1);
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
#endif
    const uint64_t sign = 1ULL << 63;
    const double div = p10[n];
    r = 0;
#ifdef FB_COL_WIDE
    {
      /* M < 10^15 < 2^52 (valid fields have at most 15 lanes), so
       * (2^52 + M) - 2^52 is M exactly; then the multiplication or division
       * of the loop below, four at a time (scalar divisions would not
       * overlap enough to keep up), and the sign from sg[] */
      const __m256i sgn = _mm256_set1_epi64x((long long)sign);
      const __m256i k52 = _mm256_set1_epi64x(0x4330000000000000LL); /* 2^52 */
      const __m256d vdiv = _mm256_set1_pd(div);
      for (; r + 4 <= nrec; r += 4) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(out + r));
        __m256d d = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(u, k52)),
                                  _mm256_castsi256_pd(k52));
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
        __m256i ng;
        if (q4) {
          int32_t s4;
          memcpy(&s4, sb + r, sizeof s4);
          ng = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(s4));
        } else {
          ng = _mm256_cvtepu16_epi64(_mm_loadl_epi64((const __m128i *)(sg + r)));
        }
        ng = _mm256_andnot_si256(_mm256_cmpeq_epi64(ng, _mm256_setzero_si256()), sgn);
        _mm256_storeu_pd(out + r, _mm256_or_pd(d, _mm256_castsi256_pd(ng)));
      }
    }
#endif
    for (; r < nrec; r++) {
      uint64_t u, b;
      memcpy(&u, &out[r], sizeof u);
#ifdef FB_COL_WIDE
      uint64_t neg = (q4 ? sb[r] : sg[r]) ? sign : 0;
#else
      uint64_t neg = u & sign;
#endif
      double d = (double)(int64_t)(u & ~sign);
      if (kind == FB_DEC) {
        d /= div;
      } else if (kind == FB_EXP) {
        int k = kx[r];
        d = d * p10[k > 0 ? k : 0] / p10[k < 0 ? -k : 0]; /* one of them is by 1 */
      }
      memcpy(&b, &d, sizeof b);
      b |= neg;
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
      double *out, uint32_t *redo, int8_t *kx, uint16_t *sg, unsigned char delim,             \
      const fb_shape_t sh, int quad, size_t *nlong) {                                        \
    return FB_COL_NAME(bb, ix, nrec, nc, f, out, redo, kx, sg, delim, KIND, sh, quad, nlong); \
  }
FB_COL_KIND(_int, FB_INT)
FB_COL_KIND(_dec, FB_DEC)
FB_COL_KIND(_exp, FB_EXP)
FB_COL_KIND(_gen, FB_GENERIC)
#undef FB_COL_KIND
#undef FB_CAT
#undef FB_CAT2
