/* The resampler against Pillow's Image.resize: for every filter, on
 * photographic-like pictures (smooth gradients, hard edges, noise; RGB, RGBA
 * and grey; down- and upscaling), the PSNR between our result and Pillow's
 * must be at least 40 dB.  Needs Debian's /usr/bin/python3 with PIL; without
 * it the test says so and checks nothing else. */
#include "test.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../../jobs/image/pix.h"

#define PY "/usr/bin/python3"

static const char *g_filters[] = {"box", "bilinear", "bicubic", "lanczos"};

/* Deterministic photographic-like picture: gradients + discs + noise;
 * with alpha, a smooth alpha ramp with a fully transparent corner. */
static void photo(image_pix_t *p, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1;
  for (uint32_t y = 0; y < p->h; y++)
    for (uint32_t x = 0; x < p->w; x++) {
      for (int c = 0; c < p->channels; c++) {
        double v;
        if ((p->channels == 4 && c == 3) || (p->channels == 2 && c == 1)) {
          v = 255.0 * x / p->w * 1.3 - 20;
        } else {
          v = 128 + 60 * sin(x * 0.021 * (c + 1) + y * 0.013) +
              40 * cos(y * 0.031 - x * 0.007 * c);
          double dx = x - p->w * 0.4, dy = y - p->h * 0.55;
          if (dx * dx + dy * dy < p->h * p->h * 0.09)
            v = v * 0.3 + 170 - 50 * c;
          if (x > p->w * 0.7 && y < p->h * 0.3)
            v = 30 + 20 * c;
          s = s * 1103515245u + 12345u;
          v += ((s >> 16) % 13) - 6.0; /* noise */
        }
        p->data[y * p->stride + x * p->channels + c] =
            (unsigned char)(v < 0     ? 0
                            : v > 255 ? 255
                                      : v);
      }
    }
}

static int write_file(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(d, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static int load_png(const char *path, image_pix_t *p) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n);
  size_t got = fread(b, 1, (size_t)n, f);
  fclose(f);
  mpc_buf_t err = MPC_BUF_INIT;
  int rc =
      got == (size_t)n ? image_png_decode(b, got, 1u << 30, 0, p, &err) : -1;
  free(b);
  mpc_buf_free(&err);
  return rc;
}

static double psnr(const image_pix_t *a, const image_pix_t *b, int *maxdiff) {
  double se = 0;
  *maxdiff = 0;
  for (uint32_t y = 0; y < a->h; y++)
    for (size_t i = 0; i < a->stride; i++) {
      int d = (int)a->data[y * a->stride + i] - b->data[y * b->stride + i];
      se += (double)d * d;
      if (abs(d) > *maxdiff)
        *maxdiff = abs(d);
    }
  double mse = se / ((double)a->h * a->stride);
  return mse == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / mse);
}

static void test_psnr_vs_pillow(void) {
  if (system(PY " -c 'import PIL.Image' >/dev/null 2>&1") != 0) {
    printf("\n  SKIP: " PY " has no PIL (apt-get install python3-pil); "
           "the comparison with Pillow did not run\n");
    return;
  }
  char dir[] = "/tmp/mpc-test-pillow-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char script[128], cmd[1024], path[128];
  snprintf(script, sizeof script, "%s/resize.py", dir);
  static const char py[] =
      "import sys\n"
      "from PIL import Image\n"
      "F = {'box': Image.BOX, 'bilinear': Image.BILINEAR,\n"
      "     'bicubic': Image.BICUBIC, 'lanczos': Image.LANCZOS}\n"
      "src, dst, w, h, f = sys.argv[1:6]\n"
      "Image.open(src).resize((int(w), int(h)), F[f]).save(dst)\n";
  CU_ASSERT_EQUAL_FATAL(write_file(script, py, sizeof py - 1), 0);

  static const struct {
    int channels;
    uint32_t w, h, ow, oh;
  } cases[] = {
      {3, 640, 480, 250, 171}, /* downscale, non-integer factor */
      {3, 160, 120, 301, 233}, /* upscale */
      {4, 400, 300, 123, 97},  /* RGBA: Pillow resizes premultiplied */
      {1, 300, 200, 97, 211},  /* grey, down in x and up in y */
      {2, 200, 150, 80, 60},   /* grey + alpha */
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    image_pix_t src;
    CU_ASSERT_EQUAL_FATAL(
        image_pix_alloc(&src, cases[ci].w, cases[ci].h, cases[ci].channels, 8),
        0);
    photo(&src, (uint32_t)ci + 1);
    mpc_buf_t enc = MPC_BUF_INIT, err = MPC_BUF_INIT;
    image_png_opts_t o = {6, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS};
    CU_ASSERT_EQUAL_FATAL(image_png_encode(&src, &o, &enc, &err), 0);
    snprintf(path, sizeof path, "%s/in%zu.png", dir, ci);
    CU_ASSERT_EQUAL_FATAL(write_file(path, enc.data, enc.len), 0);
    for (int fi = 0; fi < 4; fi++) {
      char outp[192];
      snprintf(outp, sizeof outp, "%s/pil%zu_%s.png", dir, ci, g_filters[fi]);
      snprintf(cmd, sizeof cmd, PY " %s %s %s %u %u %s", script, path, outp,
               cases[ci].ow, cases[ci].oh, g_filters[fi]);
      CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
      image_pix_t pil, ours;
      CU_ASSERT_EQUAL_FATAL(load_png(outp, &pil), 0);
      CU_ASSERT_EQUAL_FATAL(image_resize(&src, cases[ci].ow, cases[ci].oh,
                                         (image_filter_t)fi, &ours),
                            0);
      CU_ASSERT_EQUAL_FATAL(pil.channels, ours.channels);
      CU_ASSERT_EQUAL_FATAL(pil.w, ours.w);
      CU_ASSERT_EQUAL_FATAL(pil.h, ours.h);
      int maxdiff;
      double db = psnr(&pil, &ours, &maxdiff);
      char dbs[32];
      if (isinf(db))
        snprintf(dbs, sizeof dbs, "inf (identical)");
      else
        snprintf(dbs, sizeof dbs, "%.1f dB", db);
      printf("\n    %d ch %ux%u -> %ux%u %-8s PSNR %s, max diff %d",
             cases[ci].channels, cases[ci].w, cases[ci].h, cases[ci].ow,
             cases[ci].oh, g_filters[fi], dbs, maxdiff);
      CU_ASSERT(db >= 40.0);
      image_pix_free(&pil);
      image_pix_free(&ours);
    }
    image_pix_free(&src);
    mpc_buf_free(&enc);
    mpc_buf_free(&err);
  }
  printf("\n");
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

/* The brightness step against Pillow's point(lambda p: p * f). */
static void test_brightness_vs_pillow(void) {
  if (system(PY " -c 'import PIL.Image' >/dev/null 2>&1") != 0) {
    printf("\n  SKIP: " PY
           " has no PIL; the comparison with Pillow did not run\n");
    return;
  }
  static const double factors[] = {1.2, 0.7, 1.25, 0.5, 2.5, 1.0 / 3};
  for (size_t fi = 0; fi < sizeof factors / sizeof factors[0]; fi++) {
    char cmd[512];
    snprintf(
        cmd, sizeof cmd,
        PY
        " -c \"from PIL import Image; im = Image.new('L', (256, 1)); "
        "im.putdata(list(range(256))); "
        "print(' '.join(map(str, im.point(lambda p: p * %.17g).getdata())))\"",
        factors[fi]);
    FILE *f = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    image_pix_t p;
    CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 256, 1, 1, 8), 0);
    for (int i = 0; i < 256; i++)
      p.data[i] = (unsigned char)i;
    image_brightness(&p, factors[fi]);
    int bad = 0, n = 0, v;
    while (n < 256 && fscanf(f, "%d", &v) == 1)
      bad += p.data[n++] != v;
    CU_ASSERT_EQUAL(pclose(f), 0);
    CU_ASSERT_EQUAL(n, 256);
    CU_ASSERT_EQUAL(bad, 0);
    image_pix_free(&p);
  }
}

MPC_TESTS(image_pillow) = {
    {"resize within 40 dB of Pillow for every filter", test_psnr_vs_pillow},
    {"brightness equals Pillow's point()", test_brightness_vs_pillow},
    CU_TEST_INFO_NULL,
};
