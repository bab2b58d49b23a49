/* Separable two-pass resampler, antialiased when downscaling, built to give
 * the same numbers as Pillow's Image.resize (libImaging/Resample.c):
 *
 * - per output pixel, the filter is centred on (x + 0.5) * scale; its support
 *   is the filter's support times max(scale, 1), so a downscale averages every
 *   input pixel it covers;
 * - weights are computed in double, normalised to sum 1, then turned into
 *   22-bit fixed point with round-half-away-from-zero;
 * - the horizontal pass runs first, only over the rows the vertical pass
 *   will read, into an intermediate picture of the input's depth (clamped);
 * - pictures with alpha are resampled premultiplied, as Pillow does by
 *   converting RGBA to RGBa (and LA to La) and back.
 *
 * 16-bit samples use the same fixed-point weights with 64-bit sums. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpc/error.h"
#include "pix.h"

#define PRECISION_BITS (32 - 8 - 2)

typedef struct filter {
  double (*fn)(double x);
  double support;
} filter_t;

static double box_fn(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bilinear_fn(double x) {
  if (x < 0.0)
    x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double bicubic_fn(double x) {
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double sinc(double x) {
  if (x == 0.0)
    return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}

static double lanczos_fn(double x) {
  if (-3.0 <= x && x < 3.0)
    return sinc(x) * sinc(x / 3);
  return 0.0;
}

static const filter_t g_filters[] = {
    [IMAGE_FILTER_BOX] = {box_fn, 0.5},
    [IMAGE_FILTER_BILINEAR] = {bilinear_fn, 1.0},
    [IMAGE_FILTER_BICUBIC] = {bicubic_fn, 2.0},
    [IMAGE_FILTER_LANCZOS] = {lanczos_fn, 3.0},
};

int image_filter_parse(const char *s, image_filter_t *f) {
  static const char *names[] = {"box", "bilinear", "bicubic", "lanczos"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) {
      *f = (image_filter_t)i;
      return 0;
    }
  return MPC_EINVAL;
}

/* Weights for one axis: for output pixel i, bounds[2i] is the first input
 * pixel, bounds[2i+1] how many, and k[i*ksize ..] the fixed-point weights. */
typedef struct coeffs {
  int ksize;
  int *bounds;
  int32_t *k;
} coeffs_t;

static void coeffs_free(coeffs_t *c) {
  free(c->bounds);
  free(c->k);
  c->bounds = NULL;
  c->k = NULL;
}

static int coeffs_make(coeffs_t *c, int in_size, int out_size,
                       const filter_t *f) {
  double scale = (double)in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = f->support * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  c->ksize = ksize;
  c->bounds = malloc((size_t)out_size * 2 * sizeof(int));
  c->k = calloc((size_t)out_size * ksize, sizeof(int32_t));
  double *w = malloc((size_t)ksize * sizeof(double));
  if (!c->bounds || !c->k || !w) {
    free(w);
    coeffs_free(c);
    return MPC_ENOMEM;
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      w[x] = f->fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t *k = &c->k[(size_t)xx * ksize];
    for (int x = 0; x < xmax; x++) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                   : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    c->bounds[xx * 2] = xmin;
    c->bounds[xx * 2 + 1] = xmax;
  }
  free(w);
  return 0;
}

static inline uint8_t clip8(int32_t ss) {
  if (ss >= (1 << PRECISION_BITS << 8))
    return 255;
  if (ss <= 0)
    return 0;
  return (uint8_t)(ss >> PRECISION_BITS);
}

static inline uint16_t clip16(int64_t ss) {
  if (ss >= ((int64_t)1 << PRECISION_BITS << 16))
    return 65535;
  if (ss <= 0)
    return 0;
  return (uint16_t)(ss >> PRECISION_BITS);
}

/* Horizontal pass over rows [y0, y0 + out->h) of `in`.  `ch` is a constant
 * in every caller, so each instance keeps its sums in registers. */
#define HORIZ_BODY(T, ACC, CLIP)                                               \
  for (uint32_t yy = 0; yy < out->h; yy++) {                                   \
    const T *src = (const T *)(in->data + (size_t)(yy + y0) * in->stride);     \
    T *dst = (T *)(out->data + (size_t)yy * out->stride);                      \
    for (uint32_t xx = 0; xx < out->w; xx++) {                                 \
      int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];              \
      const int32_t *k = &c->k[(size_t)xx * c->ksize];                         \
      ACC s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0, s3 = s0;           \
      const T *s = src + (size_t)xmin * ch;                                    \
      for (int x = 0; x < xmax; x++, s += ch) {                                \
        ACC kx = k[x];                                                         \
        s0 += s[0] * kx;                                                       \
        if (ch > 1)                                                            \
          s1 += s[1] * kx;                                                     \
        if (ch > 2)                                                            \
          s2 += s[2] * kx;                                                     \
        if (ch > 3)                                                            \
          s3 += s[3] * kx;                                                     \
      }                                                                        \
      T *d = dst + (size_t)xx * ch;                                            \
      d[0] = CLIP(s0);                                                         \
      if (ch > 1)                                                              \
        d[1] = CLIP(s1);                                                       \
      if (ch > 2)                                                              \
        d[2] = CLIP(s2);                                                       \
      if (ch > 3)                                                              \
        d[3] = CLIP(s3);                                                       \
    }                                                                          \
  }

static inline __attribute__((always_inline)) void
horiz8(const image_pix_t *in, image_pix_t *out, int y0, const coeffs_t *c,
       const int ch) {
  HORIZ_BODY(uint8_t, int32_t, clip8)
}

static inline __attribute__((always_inline)) void
horiz16(const image_pix_t *in, image_pix_t *out, int y0, const coeffs_t *c,
        const int ch) {
  HORIZ_BODY(uint16_t, int64_t, clip16)
}

static void horiz(const image_pix_t *in, image_pix_t *out, int y0,
                  const coeffs_t *c) {
  if (in->depth == 8) {
    switch (in->channels) {
    case 1:
      horiz8(in, out, y0, c, 1);
      break;
    case 2:
      horiz8(in, out, y0, c, 2);
      break;
    case 3:
      horiz8(in, out, y0, c, 3);
      break;
    default:
      horiz8(in, out, y0, c, 4);
      break;
    }
  } else {
    switch (in->channels) {
    case 1:
      horiz16(in, out, y0, c, 1);
      break;
    case 2:
      horiz16(in, out, y0, c, 2);
      break;
    case 3:
      horiz16(in, out, y0, c, 3);
      break;
    default:
      horiz16(in, out, y0, c, 4);
      break;
    }
  }
}

/* Vertical pass: a row of sums is accumulated one input row at a time, which
 * reads memory in order and vectorises; integer sums make the result the
 * same as Pillow's per-pixel loop. */
static int vert(const image_pix_t *in, image_pix_t *out, const coeffs_t *c) {
  size_t n = (size_t)out->w * out->channels;
  if (in->depth == 8) {
    int32_t *acc = malloc(n * sizeof *acc);
    if (!acc)
      return MPC_ENOMEM;
    for (uint32_t yy = 0; yy < out->h; yy++) {
      int ymin = c->bounds[yy * 2], ymax = c->bounds[yy * 2 + 1];
      const int32_t *k = &c->k[(size_t)yy * c->ksize];
      for (size_t i = 0; i < n; i++)
        acc[i] = 1 << (PRECISION_BITS - 1);
      for (int y = 0; y < ymax; y++) {
        const uint8_t *s = in->data + (size_t)(ymin + y) * in->stride;
        int32_t ky = k[y];
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
          acc[i] += s[i] * ky;
          acc[i + 1] += s[i + 1] * ky;
          acc[i + 2] += s[i + 2] * ky;
          acc[i + 3] += s[i + 3] * ky;
        }
        for (; i < n; i++)
          acc[i] += s[i] * ky;
      }
      uint8_t *dst = out->data + (size_t)yy * out->stride;
      for (size_t i = 0; i < n; i++)
        dst[i] = clip8(acc[i]);
    }
    free(acc);
  } else {
    int64_t *acc = malloc(n * sizeof *acc);
    if (!acc)
      return MPC_ENOMEM;
    for (uint32_t yy = 0; yy < out->h; yy++) {
      int ymin = c->bounds[yy * 2], ymax = c->bounds[yy * 2 + 1];
      const int32_t *k = &c->k[(size_t)yy * c->ksize];
      for (size_t i = 0; i < n; i++)
        acc[i] = 1 << (PRECISION_BITS - 1);
      for (int y = 0; y < ymax; y++) {
        const uint16_t *s =
            (const uint16_t *)(in->data + (size_t)(ymin + y) * in->stride);
        int64_t ky = k[y];
        for (size_t i = 0; i < n; i++)
          acc[i] += s[i] * ky;
      }
      uint16_t *dst = (uint16_t *)(out->data + (size_t)yy * out->stride);
      for (size_t i = 0; i < n; i++)
        dst[i] = clip16(acc[i]);
    }
    free(acc);
  }
  return 0;
}

/* Pillow's MULDIV255: a * b / 255 rounded, exact for 8-bit operands. */
static inline unsigned muldiv255(unsigned a, unsigned b) {
  unsigned t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

static void premultiply(image_pix_t *p) {
  int ch = p->channels, ca = ch - 1;
  for (uint32_t y = 0; y < p->h; y++) {
    if (p->depth == 8) {
      uint8_t *r = p->data + (size_t)y * p->stride;
      for (uint32_t x = 0; x < p->w; x++, r += ch)
        for (int b = 0; b < ca; b++)
          r[b] = (uint8_t)muldiv255(r[b], r[ca]);
    } else {
      uint16_t *r = (uint16_t *)(p->data + (size_t)y * p->stride);
      for (uint32_t x = 0; x < p->w; x++, r += ch)
        for (int b = 0; b < ca; b++)
          r[b] = (uint16_t)(((uint32_t)r[b] * r[ca] + 32767) / 65535);
    }
  }
}

/* Pillow's rgba2rgbA / la2lA: colour = colour * 255 / alpha (truncated,
 * clamped), unchanged where alpha is 0 or opaque. */
static void unpremultiply(image_pix_t *p) {
  int ch = p->channels, ca = ch - 1;
  for (uint32_t y = 0; y < p->h; y++) {
    if (p->depth == 8) {
      uint8_t *r = p->data + (size_t)y * p->stride;
      for (uint32_t x = 0; x < p->w; x++, r += ch) {
        unsigned a = r[ca];
        if (a == 255 || a == 0)
          continue;
        for (int b = 0; b < ca; b++) {
          unsigned v = 255u * r[b] / a;
          r[b] = (uint8_t)(v > 255 ? 255 : v);
        }
      }
    } else {
      uint16_t *r = (uint16_t *)(p->data + (size_t)y * p->stride);
      for (uint32_t x = 0; x < p->w; x++, r += ch) {
        uint32_t a = r[ca];
        if (a == 65535 || a == 0)
          continue;
        for (int b = 0; b < ca; b++) {
          uint32_t v = (uint32_t)(65535ull * r[b] / a);
          r[b] = (uint16_t)(v > 65535 ? 65535 : v);
        }
      }
    }
  }
}

static int pix_copy(const image_pix_t *in, image_pix_t *out) {
  int rc = image_pix_alloc(out, in->w, in->h, in->channels, in->depth);
  if (rc)
    return rc;
  for (uint32_t y = 0; y < in->h; y++)
    memcpy(out->data + (size_t)y * out->stride,
           in->data + (size_t)y * in->stride, out->stride);
  return 0;
}

int image_resize(const image_pix_t *in, uint32_t ow, uint32_t oh,
                 image_filter_t filter, image_pix_t *out) {
  memset(out, 0, sizeof *out);
  if (ow == 0 || oh == 0 || in->w == 0 || in->h == 0 || ow > INT32_MAX ||
      oh > INT32_MAX)
    return MPC_EINVAL;
  if ((unsigned)filter > IMAGE_FILTER_LANCZOS)
    return MPC_EINVAL;
  /* Same size: Pillow returns a copy without touching the pixels. */
  if (ow == in->w && oh == in->h)
    return pix_copy(in, out);

  const filter_t *f = &g_filters[filter];
  int alpha = in->channels == 2 || in->channels == 4;
  image_pix_t pre = {0}, tmp = {0};
  coeffs_t ch = {0}, cv = {0};
  const image_pix_t *src = in;
  int rc = coeffs_make(&ch, (int)in->w, (int)ow, f);
  if (!rc)
    rc = coeffs_make(&cv, (int)in->h, (int)oh, f);
  if (rc)
    goto done;
  if (alpha) {
    if ((rc = pix_copy(in, &pre)))
      goto done;
    premultiply(&pre);
    src = &pre;
  }
  int need_h = ow != in->w, need_v = oh != in->h;
  int yfirst = cv.bounds[0];
  int ylast = cv.bounds[oh * 2 - 2] + cv.bounds[oh * 2 - 1];
  if (need_h) {
    for (uint32_t i = 0; i < oh; i++)
      cv.bounds[i * 2] -= yfirst;
    image_pix_t *dst = need_v ? &tmp : out;
    if ((rc = image_pix_alloc(dst, ow, (uint32_t)(ylast - yfirst), in->channels,
                              in->depth)))
      goto done;
    horiz(src, dst, yfirst, &ch);
    src = dst;
  }
  if (need_v) {
    if ((rc = image_pix_alloc(out, ow, oh, in->channels, in->depth)))
      goto done;
    if ((rc = vert(src, out, &cv)))
      goto done;
  }
  if (alpha)
    unpremultiply(out);
done:
  if (rc)
    image_pix_free(out);
  image_pix_free(&pre);
  image_pix_free(&tmp);
  coeffs_free(&ch);
  coeffs_free(&cv);
  return rc;
}

void image_brightness(image_pix_t *p, double factor) {
  int ch = p->channels, ncol = (ch == 2 || ch == 4) ? ch - 1 : ch;
  if (factor == 1.0)
    return;
  if (p->depth == 8) {
    uint8_t lut[256];
    for (int i = 0; i < 256; i++) {
      double v = rint(i * factor); /* half to even, as Pillow */
      lut[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    for (uint32_t y = 0; y < p->h; y++) {
      uint8_t *r = p->data + (size_t)y * p->stride;
      if (ncol == ch) {
        for (size_t i = 0; i < (size_t)p->w * ch; i++)
          r[i] = lut[r[i]];
      } else {
        for (uint32_t x = 0; x < p->w; x++, r += ch)
          for (int b = 0; b < ncol; b++)
            r[b] = lut[r[b]];
      }
    }
  } else {
    for (uint32_t y = 0; y < p->h; y++) {
      uint16_t *r = (uint16_t *)(p->data + (size_t)y * p->stride);
      for (uint32_t x = 0; x < p->w; x++, r += ch)
        for (int b = 0; b < ncol; b++) {
          double v = rint(r[b] * factor);
          r[b] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
        }
    }
  }
}

void image_to_depth8(image_pix_t *p) {
  if (p->depth != 16)
    return;
  size_t n = (size_t)p->w * p->channels;
  for (uint32_t y = 0; y < p->h; y++) {
    const uint16_t *s = (const uint16_t *)(p->data + (size_t)y * p->stride);
    uint8_t *d = p->data + (size_t)y * n; /* new stride n <= old stride */
    for (size_t i = 0; i < n; i++)
      d[i] = (uint8_t)((s[i] * 255u + 32767u) / 65535u);
  }
  p->depth = 8;
  p->stride = n;
}
