/* The image job: codecs for every PNG kind, exact pixel values, failures,
 * decompression bombs, odd names and path safety.  Runs the job in-process
 * with mpct_job_run() and calls its run() directly where a single task's
 * message matters. */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
/* jpeglib.h needs stdio.h first */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../jobs/image/image.h"
#include "../../jobs/image/pix.h"

/* ---- scratch directories ------------------------------------------------- */

static char g_root[64];

static void scratch_new(void) {
  strcpy(g_root, "/tmp/mpc-test-image-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_root));
}

static int rm_rf(const char *p) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  return system(cmd);
}

static void scratch_free(void) {
  if (g_root[0])
    CU_ASSERT_EQUAL(rm_rf(g_root), 0);
  g_root[0] = '\0';
}

static const char *at(const char *rel) {
  static char buf[8][512];
  static int n;
  char *b = buf[n++ % 8];
  snprintf(b, 512, "%s/%s", g_root, rel);
  return b;
}

static int write_file(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(d, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
  *n = fread(b, 1, (size_t)sz, f);
  fclose(f);
  return b;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Count directory entries whose name starts with ".mpc-" (temp files). */
static int count_temps(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  if (!d)
    return 0;
  while ((e = readdir(d)))
    n += strncmp(e->d_name, ".mpc-", 5) == 0;
  closedir(d);
  return n;
}

/* ---- writing test PNGs with libpng --------------------------------------- */

typedef struct kind {
  const char *name;
  int color_type, bit_depth, interlace;
  int trns; /* add a tRNS chunk */
} kind_t;

/* Sample s of pixel (x, y) of a test picture, in 0 .. 2^bits-1. */
static unsigned sample(int x, int y, int c, int bits) {
  unsigned v =
      (unsigned)(x * 37 + y * 101 + c * 59 + (x * y) % 7) * 2654435761u;
  return (v >> 13) & ((1u << bits) - 1);
}

static int kind_channels(const kind_t *k) {
  switch (k->color_type) {
  case PNG_COLOR_TYPE_GRAY:
    return 1;
  case PNG_COLOR_TYPE_GRAY_ALPHA:
    return 2;
  case PNG_COLOR_TYPE_RGB:
    return 3;
  case PNG_COLOR_TYPE_RGB_ALPHA:
    return 4;
  default:
    return 1; /* palette index */
  }
}

/* The palette used for palette pictures: entry i. */
static void pal_entry(int i, png_color *c) {
  c->red = (png_byte)(i * 53 + 7);
  c->green = (png_byte)(i * 101 + 3);
  c->blue = (png_byte)(255 - i * 17);
}

static unsigned trns_alpha(int i) { return (unsigned)(i * 40 + 10) & 255; }
#define NTRANS 3

/* Value of pixel (x, y) as the file stores it (before any expansion). */
static unsigned file_sample(const kind_t *k, int x, int y, int c) {
  if (k->trns &&
      (k->color_type == PNG_COLOR_TYPE_GRAY ||
       k->color_type == PNG_COLOR_TYPE_RGB) &&
      (x + y) % 5 == 0)
    return 0; /* some pixels hit the transparent colour (0, 0, 0) */
  if (k->trns && (k->color_type == PNG_COLOR_TYPE_GRAY ||
                  k->color_type == PNG_COLOR_TYPE_RGB))
    return sample(x, y, c, k->bit_depth) | 1; /* others never */
  return sample(x, y, c, k->bit_depth);
}

static int write_png_kind(const char *path, const kind_t *k, int w, int h) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  int ch = kind_channels(k), bd = k->bit_depth;
  size_t rowbytes = ((size_t)w * ch * bd + 7) / 8;
  unsigned char *rows = calloc((size_t)h, rowbytes);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(rows);
    return -1;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, bd, k->color_type, k->interlace,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (k->color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    for (int i = 0; i < (1 << bd); i++)
      pal_entry(i, &pal[i]);
    png_set_PLTE(png, info, pal, 1 << bd);
    if (k->trns) {
      png_byte t[NTRANS];
      for (int i = 0; i < NTRANS; i++)
        t[i] = (png_byte)trns_alpha(i);
      png_set_tRNS(png, info, t, NTRANS, NULL);
    }
  } else if (k->trns) {
    png_color_16 tc = {0};
    png_set_tRNS(png, info, NULL, 0, &tc);
  }
  for (int y = 0; y < h; y++) {
    unsigned char *r = rows + (size_t)y * rowbytes;
    for (int x = 0; x < w; x++)
      for (int c = 0; c < ch; c++) {
        unsigned v = file_sample(k, x, y, c);
        size_t bit = ((size_t)x * ch + c) * bd;
        if (bd == 16) {
          r[bit / 8] = (unsigned char)(v >> 8);
          r[bit / 8 + 1] = (unsigned char)v;
        } else if (bd == 8) {
          r[bit / 8] = (unsigned char)v;
        } else {
          r[bit / 8] |= (unsigned char)(v << (8 - bd - bit % 8));
        }
      }
  }
  png_write_info(png, info);
  png_bytep *rp = malloc(sizeof(png_bytep) * h);
  for (int y = 0; y < h; y++)
    rp[y] = rows + (size_t)y * rowbytes;
  png_write_image(png, rp);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rp);
  free(rows);
  return fclose(f) == 0 ? 0 : -1;
}

/* What the decoder must produce for pixel (x, y): channels, depth, values. */
static void expected(const kind_t *k, int x, int y, int *och, int *odepth,
                     unsigned v[4]) {
  int bd = k->bit_depth;
  *odepth = bd == 16 ? 16 : 8;
  switch (k->color_type) {
  case PNG_COLOR_TYPE_PALETTE: {
    int i = (int)file_sample(k, x, y, 0);
    png_color c;
    pal_entry(i, &c);
    v[0] = c.red;
    v[1] = c.green;
    v[2] = c.blue;
    *och = k->trns ? 4 : 3;
    v[3] = i < NTRANS ? trns_alpha(i) : 255;
    return;
  }
  case PNG_COLOR_TYPE_GRAY: {
    unsigned s = file_sample(k, x, y, 0);
    v[0] = bd < 8 ? s * 255 / ((1u << bd) - 1) : s;
    *och = k->trns ? 2 : 1;
    v[1] = s == 0 ? 0 : (bd == 16 ? 65535 : 255);
    return;
  }
  default: {
    int ch = kind_channels(k);
    int allzero = 1;
    for (int c = 0; c < ch; c++) {
      v[c] = file_sample(k, x, y, c);
      allzero &= v[c] == 0;
    }
    *och = ch;
    if (k->trns) {
      *och = 4;
      v[3] = allzero ? 0 : (bd == 16 ? 65535 : 255);
    }
  }
  }
}

static unsigned pix_at(const image_pix_t *p, int x, int y, int c) {
  size_t i = (size_t)x * p->channels + c;
  return p->depth == 8
             ? p->data[(size_t)y * p->stride + i]
             : ((const uint16_t *)(p->data + (size_t)y * p->stride))[i];
}

static int decode_file(const char *path, image_pix_t *p) {
  size_t n;
  unsigned char *b = read_file(path, &n);
  mpc_buf_t err = MPC_BUF_INIT;
  if (!b)
    return -1;
  int rc = image_sniff(b, n) == IMAGE_FMT_JPEG
               ? image_jpeg_decode(b, n, 1u << 30, p, &err)
               : image_png_decode(b, n, 1u << 30, 0, p, &err);
  if (rc)
    fprintf(stderr, "decode %s: %s\n", path, mpc_buf_str(&err));
  free(b);
  mpc_buf_free(&err);
  return rc;
}

/* Run the image job; argv strings are copied so that callers can pass
 * literals.  Returns mpct_job_run()'s code; stdout goes to `out_path` when
 * given. */
static int run_job(mpc_job_report_t *rep, const char *out_path, int argc,
                   const char **args) {
  char *argv[32];
  argv[0] = "image";
  for (int i = 0; i < argc; i++)
    argv[i + 1] = (char *)args[i];
  mpc_buf_t err = MPC_BUF_INIT;
  int saved = -1;
  if (out_path) {
    fflush(stdout);
    saved = dup(1);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    close(fd);
  }
  int rc = mpct_job_run(&mpc_job_image, argc + 1, argv, rep, &err);
  if (out_path) {
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
  }
  if (rc)
    fprintf(stderr, "image job: %s\n", mpc_buf_str(&err));
  mpc_buf_free(&err);
  return rc;
}

/* ---- tests --------------------------------------------------------------- */

static const kind_t g_kinds[] = {
    {"g1", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, 0},
    {"g2", PNG_COLOR_TYPE_GRAY, 2, PNG_INTERLACE_NONE, 0},
    {"g4", PNG_COLOR_TYPE_GRAY, 4, PNG_INTERLACE_NONE, 0},
    {"g8", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 0},
    {"g16", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, 0},
    {"g8t", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 1},
    {"g16t", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, 1},
    {"ga8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, 0},
    {"ga16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE, 0},
    {"rgb8", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, 0},
    {"rgb16", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, 0},
    {"rgb8t", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, 1},
    {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, 0},
    {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_NONE, 0},
    {"p1", PNG_COLOR_TYPE_PALETTE, 1, PNG_INTERLACE_NONE, 0},
    {"p2", PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE, 0},
    {"p4", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, 0},
    {"p8", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, 0},
    {"p4t", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, 1},
    {"p8t", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, 1},
    {"g4i", PNG_COLOR_TYPE_GRAY, 4, PNG_INTERLACE_ADAM7, 0},
    {"rgb8i", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, 0},
    {"rgba16i", PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_ADAM7, 0},
    {"p2ti", PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_ADAM7, 1},
};
#define NKINDS (sizeof g_kinds / sizeof g_kinds[0])

/* Every kind decodes to the expected samples, and the job writes them back
 * unchanged at the same size with brightness 1 (a lossless round trip). */
static void test_png_kinds_roundtrip(void) {
  scratch_new();
  CU_ASSERT_EQUAL_FATAL(mkdir(at("in"), 0755), 0);
  const int w = 13, h = 11;
  for (size_t i = 0; i < NKINDS; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "in/%s.png", g_kinds[i].name);
    CU_ASSERT_EQUAL_FATAL(write_png_kind(at(rel), &g_kinds[i], w, h), 0);
  }
  mpc_job_report_t rep;
  const char *args[] = {at("in"), at("out"),      "--size",
                        "13x11",  "--brightness", "1"};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 6, args), 0);
  CU_ASSERT_EQUAL(rep.tasks, NKINDS);
  CU_ASSERT_EQUAL(rep.ok, NKINDS);
  for (size_t i = 0; i < NKINDS; i++) {
    const kind_t *k = &g_kinds[i];
    for (int pass = 0; pass < 2; pass++) {
      char rel[64];
      snprintf(rel, sizeof rel, "%s/%s.png", pass ? "out" : "in", k->name);
      image_pix_t p;
      CU_ASSERT_EQUAL_FATAL(decode_file(at(rel), &p), 0);
      int och, od, bad = 0;
      unsigned v[4];
      expected(k, 0, 0, &och, &od, v);
      CU_ASSERT_EQUAL(p.w, (uint32_t)w);
      CU_ASSERT_EQUAL(p.h, (uint32_t)h);
      CU_ASSERT_EQUAL(p.channels, och);
      CU_ASSERT_EQUAL(p.depth, od);
      if (p.channels == och && p.depth == od)
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++) {
            expected(k, x, y, &och, &od, v);
            for (int c = 0; c < och; c++)
              bad += pix_at(&p, x, y, c) != v[c];
          }
      if (bad)
        fprintf(stderr, "kind %s (%s): %d wrong samples\n", k->name, rel, bad);
      CU_ASSERT_EQUAL(bad, 0);
      image_pix_free(&p);
    }
  }
  scratch_free();
}

/* Pillow's premultiplied round trip for one 8-bit sample. */
static unsigned premul_rt8(unsigned v, unsigned a) {
  if (a == 0 || a == 255)
    return a == 0 ? 0 : v;
  unsigned t = v * a + 128;
  unsigned p = ((t >> 8) + t) >> 8;
  unsigned r = 255 * p / a;
  return r > 255 ? 255 : r;
}

static unsigned premul_rt16(unsigned v, unsigned a) {
  if (a == 0 || a == 65535)
    return a == 0 ? 0 : v;
  unsigned p = (unsigned)(((unsigned long long)v * a + 32767) / 65535);
  unsigned long long r = 65535ull * p / a;
  return r > 65535 ? 65535 : (unsigned)r;
}

/* Rounded half to even, as Pillow's point(lambda p: p * f). */
static unsigned bright(unsigned v, double f, unsigned max) {
  double r = rint((double)v * f);
  unsigned u = (unsigned)r;
  return u > max ? max : u;
}

/* Resize + brightness on uniform pictures of every kind: every output pixel
 * has a value known exactly (colour * factor, rounded and clamped; alpha
 * untouched; premultiplication rounding as Pillow's). */
static void test_resize_brightness_exact(void) {
  static const struct {
    int color_type, depth;
    unsigned v[4];
  } cases[] = {
      {PNG_COLOR_TYPE_GRAY, 8, {100}},
      {PNG_COLOR_TYPE_GRAY, 16, {40000}},
      {PNG_COLOR_TYPE_GRAY_ALPHA, 8, {100, 128}},
      {PNG_COLOR_TYPE_GRAY_ALPHA, 16, {30000, 1000}},
      {PNG_COLOR_TYPE_RGB, 8, {10, 200, 250}},
      {PNG_COLOR_TYPE_RGB, 16, {1000, 50000, 65000}},
      {PNG_COLOR_TYPE_RGB_ALPHA, 8, {10, 200, 250, 77}},
      {PNG_COLOR_TYPE_RGB_ALPHA, 16, {1000, 50000, 65000, 40000}},
  };
  const char *filters[] = {"box", "bilinear", "bicubic", "lanczos"};
  scratch_new();
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    int ch = kind_channels(&(kind_t){NULL, cases[ci].color_type, 8, 0, 0});
    int d = cases[ci].depth;
    image_pix_t p;
    CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 37, 23, ch, d), 0);
    for (uint32_t y = 0; y < p.h; y++)
      for (uint32_t x = 0; x < p.w; x++)
        for (int c = 0; c < ch; c++) {
          size_t i = (size_t)x * ch + c;
          if (d == 8)
            p.data[y * p.stride + i] = (unsigned char)cases[ci].v[c];
          else
            ((uint16_t *)(p.data + y * p.stride))[i] = (uint16_t)cases[ci].v[c];
        }
    mpc_buf_t enc = MPC_BUF_INIT, err = MPC_BUF_INIT;
    image_png_opts_t o = {6, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS};
    CU_ASSERT_EQUAL_FATAL(image_png_encode(&p, &o, &enc, &err), 0);
    image_pix_free(&p);
    for (int fi = 0; fi < 4; fi++) {
      rm_rf(at("in"));
      rm_rf(at("out"));
      mkdir(at("in"), 0755);
      CU_ASSERT_EQUAL_FATAL(write_file(at("in/u.png"), enc.data, enc.len), 0);
      mpc_job_report_t rep;
      const char *args[] = {at("in"),   at("out"),   "--size",       "10x7",
                            "--filter", filters[fi], "--brightness", "1.3"};
      CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 8, args), 0);
      CU_ASSERT_EQUAL(rep.ok, 1);
      image_pix_t q;
      CU_ASSERT_EQUAL_FATAL(decode_file(at("out/u.png"), &q), 0);
      CU_ASSERT_EQUAL(q.w, 10);
      CU_ASSERT_EQUAL(q.h, 7);
      CU_ASSERT_EQUAL(q.channels, ch);
      CU_ASSERT_EQUAL(q.depth, d);
      unsigned max = d == 8 ? 255 : 65535;
      int alpha = ch == 2 || ch == 4, bad = 0;
      for (int c = 0; c < ch; c++) {
        unsigned want = cases[ci].v[c];
        if (alpha && c == ch - 1) {
          /* alpha untouched */
        } else {
          unsigned a = alpha ? cases[ci].v[ch - 1] : max;
          want = d == 8 ? premul_rt8(want, a) : premul_rt16(want, a);
          want = bright(want, 1.3, max);
        }
        for (uint32_t y = 0; y < q.h; y++)
          for (uint32_t x = 0; x < q.w; x++)
            bad += pix_at(&q, (int)x, (int)y, c) != want;
      }
      if (bad)
        fprintf(stderr, "case %zu filter %s: %d wrong\n", ci, filters[fi], bad);
      CU_ASSERT_EQUAL(bad, 0);
      image_pix_free(&q);
    }
    mpc_buf_free(&enc);
    mpc_buf_free(&err);
  }
  scratch_free();
}

/* A box-filter 2:1 reduction averages each 2x2 block: (a+b+1)/2 across, then
 * the same down, exactly as Pillow's fixed point does. */
static void test_box_half_exact(void) {
  image_pix_t p, q;
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 8, 6, 3, 8), 0);
  for (uint32_t y = 0; y < 6; y++)
    for (uint32_t x = 0; x < 8; x++)
      for (int c = 0; c < 3; c++)
        p.data[y * p.stride + x * 3 + c] =
            (unsigned char)sample((int)x, (int)y, c, 8);
  CU_ASSERT_EQUAL_FATAL(image_resize(&p, 4, 3, IMAGE_FILTER_BOX, &q), 0);
  int bad = 0;
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 4; x++)
      for (int c = 0; c < 3; c++) {
        unsigned r0 = (pix_at(&p, 2 * x, 2 * y, c) +
                       pix_at(&p, 2 * x + 1, 2 * y, c) + 1) /
                      2;
        unsigned r1 = (pix_at(&p, 2 * x, 2 * y + 1, c) +
                       pix_at(&p, 2 * x + 1, 2 * y + 1, c) + 1) /
                      2;
        bad += pix_at(&q, x, y, c) != (r0 + r1 + 1) / 2;
      }
  CU_ASSERT_EQUAL(bad, 0);
  image_pix_free(&q);
  /* Upscaling 2x with bilinear keeps a constant row constant and stays
   * within the input's range. */
  CU_ASSERT_EQUAL_FATAL(image_resize(&p, 16, 12, IMAGE_FILTER_BILINEAR, &q), 0);
  CU_ASSERT_EQUAL(q.w, 16);
  CU_ASSERT_EQUAL(q.h, 12);
  image_pix_free(&q);
  /* Zero sizes are refused. */
  CU_ASSERT_EQUAL(image_resize(&p, 0, 3, IMAGE_FILTER_BOX, &q), MPC_EINVAL);
  image_pix_free(&p);
}

/* Brightness rounds half to even and clamps, as Pillow's point(); alpha is
 * untouched; 16-bit likewise. */
static void test_brightness_rounding(void) {
  image_pix_t p;
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 6, 1, 2, 8), 0);
  const unsigned char in[12] = {1, 1, 3, 3, 5, 5, 15, 15, 200, 200, 255, 7};
  memcpy(p.data, in, 12);
  image_brightness(&p, 0.5); /* 0.5 1.5 2.5 7.5 100 127.5 */
  const unsigned char want[12] = {0, 1, 2, 3, 2, 5, 8, 15, 100, 200, 128, 7};
  CU_ASSERT_EQUAL(memcmp(p.data, want, 12), 0);
  memcpy(p.data, in, 12);
  image_brightness(&p, 2.5); /* 2.5 7.5 12.5 37.5 500 637.5 */
  const unsigned char want2[12] = {2, 1, 8, 3, 12, 5, 38, 15, 255, 200, 255, 7};
  CU_ASSERT_EQUAL(memcmp(p.data, want2, 12), 0);
  image_pix_free(&p);
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 2, 1, 1, 16), 0);
  uint16_t *v = (uint16_t *)p.data;
  v[0] = 3;
  v[1] = 60000;
  image_brightness(&p, 1.5); /* 4.5 -> 4, 90000 -> 65535 */
  CU_ASSERT_EQUAL(v[0], 4);
  CU_ASSERT_EQUAL(v[1], 65535);
  image_pix_free(&p);
}

/* --fit keeps the aspect ratio inside the box; --depth 8 reduces 16-bit. */
static void test_fit_and_depth(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  kind_t k = {"wide", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, 0};
  CU_ASSERT_EQUAL_FATAL(write_png_kind(at("in/wide.png"), &k, 100, 50), 0);
  kind_t t = {"tall", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 0};
  CU_ASSERT_EQUAL_FATAL(write_png_kind(at("in/tall.png"), &t, 30, 90), 0);
  mpc_job_report_t rep;
  const char *args[] = {at("in"), at("out"), "--size=40x40",
                        "--fit",  "--depth", "8"};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 6, args), 0);
  CU_ASSERT_EQUAL(rep.ok, 2);
  image_pix_t p;
  CU_ASSERT_EQUAL_FATAL(decode_file(at("out/wide.png"), &p), 0);
  CU_ASSERT_EQUAL(p.w, 40);
  CU_ASSERT_EQUAL(p.h, 20);
  CU_ASSERT_EQUAL(p.depth, 8);
  image_pix_free(&p);
  CU_ASSERT_EQUAL_FATAL(decode_file(at("out/tall.png"), &p), 0);
  CU_ASSERT_EQUAL(p.w, 13);
  CU_ASSERT_EQUAL(p.h, 40);
  image_pix_free(&p);
  scratch_free();
}

/* JPEG in, JPEG out; grey stays grey; quality is honoured (lower quality,
 * smaller file). */
static void test_jpeg(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  image_pix_t p;
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 64, 48, 3, 8), 0);
  for (uint32_t y = 0; y < p.h; y++)
    for (uint32_t x = 0; x < p.w; x++) {
      p.data[y * p.stride + x * 3] = 200;
      p.data[y * p.stride + x * 3 + 1] = (unsigned char)(x * 4);
      p.data[y * p.stride + x * 3 + 2] = 60;
    }
  mpc_buf_t enc = MPC_BUF_INIT, err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(image_jpeg_encode(&p, 95, &enc, &err), 0);
  CU_ASSERT_EQUAL_FATAL(write_file(at("in/c.jpg"), enc.data, enc.len), 0);
  CU_ASSERT_EQUAL_FATAL(write_file(at("in/c2.JPEG"), enc.data, enc.len), 0);
  image_pix_free(&p);
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 32, 32, 1, 8), 0);
  memset(p.data, 90, p.stride * p.h);
  mpc_buf_clear(&enc);
  CU_ASSERT_EQUAL_FATAL(image_jpeg_encode(&p, 95, &enc, &err), 0);
  CU_ASSERT_EQUAL_FATAL(write_file(at("in/g.jpeg"), enc.data, enc.len), 0);
  image_pix_free(&p);

  mpc_job_report_t rep;
  const char *args[] = {at("in"),       at("out"), "--size",    "32x24",
                        "--brightness", "1.2",     "--quality", "92"};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 8, args), 0);
  CU_ASSERT_EQUAL(rep.ok, 3);
  CU_ASSERT_EQUAL_FATAL(decode_file(at("out/c.jpg"), &p), 0);
  CU_ASSERT_EQUAL(p.w, 32);
  CU_ASSERT_EQUAL(p.h, 24);
  CU_ASSERT_EQUAL(p.channels, 3);
  /* Red 200 * 1.2 = 240, blue 60 * 1.2 = 72, within JPEG error. */
  int r = (int)pix_at(&p, 16, 12, 0), b = (int)pix_at(&p, 16, 12, 2);
  CU_ASSERT(abs(r - 240) <= 4);
  CU_ASSERT(abs(b - 72) <= 4);
  image_pix_free(&p);
  CU_ASSERT_EQUAL_FATAL(decode_file(at("out/g.jpeg"), &p), 0);
  CU_ASSERT_EQUAL(p.channels, 1);
  CU_ASSERT(abs((int)pix_at(&p, 5, 5, 0) - 108) <= 2);
  image_pix_free(&p);
  CU_ASSERT(exists(at("out/c2.JPEG")));

  size_t n92, n20;
  free(read_file(at("out/c.jpg"), &n92));
  const char *args2[] = {at("in"), at("out2"),  "--size",
                         "32x24",  "--quality", "20"};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 6, args2), 0);
  free(read_file(at("out2/c.jpg"), &n20));
  CU_ASSERT(n20 < n92);
  mpc_buf_free(&enc);
  mpc_buf_free(&err);
  scratch_free();
}

/* A CMYK JPEG (Adobe convention, as libjpeg writes it) decodes to RGB =
 * stored value * K / 255; a 16-bit RGBA PNG under a .jpg name is written as
 * an 8-bit RGB JPEG (alpha dropped). */
static void test_jpeg_cmyk_and_conversion(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  struct jpeg_compress_struct ci;
  struct jpeg_error_mgr je;
  unsigned char *mem = NULL;
  unsigned long memlen = 0;
  ci.err = jpeg_std_error(&je);
  jpeg_create_compress(&ci);
  jpeg_mem_dest(&ci, &mem, &memlen);
  ci.image_width = 16;
  ci.image_height = 16;
  ci.input_components = 4;
  ci.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, 98, TRUE);
  jpeg_start_compress(&ci, TRUE);
  unsigned char row[16 * 4];
  for (int x = 0; x < 16; x++) {
    row[x * 4] = 200;
    row[x * 4 + 1] = 100;
    row[x * 4 + 2] = 50;
    row[x * 4 + 3] = 128;
  }
  while (ci.next_scanline < 16) {
    JSAMPROW r = row;
    jpeg_write_scanlines(&ci, &r, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  image_pix_t p;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(image_jpeg_decode(mem, memlen, 1000, &p, &err), 0);
  free(mem);
  CU_ASSERT_EQUAL(p.channels, 3);
  int want[3] = {200 * 128 / 255, 100 * 128 / 255, 50 * 128 / 255};
  for (int c = 0; c < 3; c++)
    CU_ASSERT(abs((int)pix_at(&p, 8, 8, c) - want[c]) <= 3);
  image_pix_free(&p);
  /* An empty buffer is a format error with a message, not a crash. */
  CU_ASSERT_EQUAL(image_jpeg_decode("", 0, 1000, &p, &err), MPC_EFORMAT);
  CU_ASSERT(err.len > 0);

  kind_t k = {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_NONE, 0};
  CU_ASSERT_EQUAL_FATAL(write_png_kind(at("in/weird.jpg"), &k, 20, 10), 0);
  mpc_job_report_t rep;
  const char *args[] = {at("in"), at("out"), "--size", "10x5"};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 4, args), 0);
  CU_ASSERT_EQUAL(rep.ok, 1);
  size_t n;
  unsigned char *b = read_file(at("out/weird.jpg"), &n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL(image_sniff(b, n), IMAGE_FMT_JPEG);
  free(b);
  CU_ASSERT_EQUAL_FATAL(decode_file(at("out/weird.jpg"), &p), 0);
  CU_ASSERT_EQUAL(p.w, 10);
  CU_ASSERT_EQUAL(p.h, 5);
  CU_ASSERT_EQUAL(p.channels, 3);
  CU_ASSERT_EQUAL(p.depth, 8);
  image_pix_free(&p);
  mpc_buf_free(&err);
  scratch_free();
}

/* Run one task directly; returns its code and leaves the message in msg. */
static int run_task(const char *in_dir, const char *out_dir, const char *rel,
                    mpc_buf_t *msg) {
  char *argv[] = {"image", (char *)in_dir, (char *)out_dir, "--max-pixels",
                  "1000000"};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  mpc_job_env_t env = {.rank = 0, .nranks = 1, .workers = 1};
  int rc = mpc_job_image.init(5, argv, &env, &st, &err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  mpc_buf_clear(msg);
  rc = mpc_job_image.run(st, rel, strlen(rel), msg);
  mpc_job_image.fini(st);
  mpc_buf_free(&err);
  return rc;
}

static unsigned char *good_png(size_t *n) {
  image_pix_t p;
  if (image_pix_alloc(&p, 40, 30, 3, 8))
    return NULL;
  for (size_t i = 0; i < p.stride * p.h; i++)
    p.data[i] = (unsigned char)(i * 7);
  mpc_buf_t enc = MPC_BUF_INIT, err = MPC_BUF_INIT;
  image_png_opts_t o = {6, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS};
  int rc = image_png_encode(&p, &o, &enc, &err);
  image_pix_free(&p);
  mpc_buf_free(&err);
  *n = enc.len;
  return rc ? NULL : enc.data;
}

/* PNG chunk with its CRC. */
static void put_chunk(mpc_buf_t *b, const char *type, const void *data,
                      uint32_t n) {
  unsigned char hdr[8] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
  memcpy(hdr + 4, type, 4);
  uLong crc = crc32(0, hdr + 4, 4);
  crc = crc32(crc, data, n);
  unsigned char c[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                        (unsigned char)(crc >> 8), (unsigned char)crc};
  CU_ASSERT_EQUAL(mpc_buf_append(b, hdr, 8), 0);
  CU_ASSERT_EQUAL(mpc_buf_append(b, data, n), 0);
  CU_ASSERT_EQUAL(mpc_buf_append(b, c, 4), 0);
}

/* A PNG whose header claims w x h grey pixels, with a little real data. */
static void bomb_png(mpc_buf_t *b, uint32_t w, uint32_t h) {
  static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  unsigned char ihdr[13] = {(unsigned char)(w >> 24),
                            (unsigned char)(w >> 16),
                            (unsigned char)(w >> 8),
                            (unsigned char)w,
                            (unsigned char)(h >> 24),
                            (unsigned char)(h >> 16),
                            (unsigned char)(h >> 8),
                            (unsigned char)h,
                            8,
                            0,
                            0,
                            0,
                            0};
  CU_ASSERT_EQUAL(mpc_buf_append(b, sig, 8), 0);
  put_chunk(b, "IHDR", ihdr, 13);
  unsigned char raw[4096] = {0}, z[4096];
  uLongf zn = sizeof z;
  compress2(z, &zn, raw, sizeof raw, 9);
  put_chunk(b, "IDAT", z, (uint32_t)zn);
  put_chunk(b, "IEND", "", 0);
}

/* Corrupt, truncated, empty, zero-size and non-image files fail alone, with
 * a message naming the file and the reason; nothing is written for them and
 * no temporary file is left; the good file is processed. */
static void test_bad_files_fail_alone(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  size_t n;
  unsigned char *g = good_png(&n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(write_file(at("in/good.png"), g, n), 0);
  CU_ASSERT_EQUAL(write_file(at("in/truncated.png"), g, n / 2), 0);
  unsigned char *c = malloc(n);
  memcpy(c, g, n);
  for (size_t i = 60; i < n - 20; i += 7)
    c[i] ^= 0x5a; /* damage IDAT (and its CRC no longer matches) */
  CU_ASSERT_EQUAL(write_file(at("in/corrupt.png"), c, n), 0);
  CU_ASSERT_EQUAL(write_file(at("in/empty.png"), "", 0), 0);
  CU_ASSERT_EQUAL(write_file(at("in/text.png"), "hello, world\n", 13), 0);
  mpc_buf_t zb = MPC_BUF_INIT;
  bomb_png(&zb, 0, 10); /* zero width */
  CU_ASSERT_EQUAL(write_file(at("in/zerosize.png"), zb.data, zb.len), 0);
  static const unsigned char jtrunc[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16,
                                         'J',  'F',  'I',  'F',  0};
  CU_ASSERT_EQUAL(write_file(at("in/trunc.jpg"), jtrunc, sizeof jtrunc), 0);
  /* A real JPEG cut in half. */
  image_pix_t p;
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 64, 64, 3, 8), 0);
  for (size_t i = 0; i < p.stride * p.h; i++)
    p.data[i] = (unsigned char)(i * 13);
  mpc_buf_t jb = MPC_BUF_INIT, err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(image_jpeg_encode(&p, 90, &jb, &err), 0);
  CU_ASSERT_EQUAL(write_file(at("in/half.jpg"), jb.data, jb.len / 2), 0);
  image_pix_free(&p);

  static const struct {
    const char *name, *reason;
  } bad[] = {
      {"truncated.png", "truncated"},  {"corrupt.png", "corrupt PNG"},
      {"empty.png", "empty file"},     {"text.png", "not a PNG or JPEG"},
      {"zerosize.png", "corrupt PNG"}, {"trunc.jpg", "corrupt JPEG"},
      {"half.jpg", "corrupt JPEG"},
  };
  mpc_buf_t msg = MPC_BUF_INIT;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = run_task(at("in"), at("out"), bad[i].name, &msg);
    const char *m = mpc_buf_str(&msg);
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, bad[i].name));
    if (!strstr(m, bad[i].reason))
      fprintf(stderr, "%s: message '%s' lacks '%s'\n", bad[i].name, m,
              bad[i].reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, bad[i].reason));
  }
  mpc_buf_free(&msg);

  rm_rf(at("out"));
  mpc_job_report_t rep;
  const char *args[] = {at("in"), at("out")};
  CU_ASSERT_EQUAL(run_job(&rep, at("report.txt"), 2, args), 0);
  CU_ASSERT_EQUAL(rep.tasks, 8);
  CU_ASSERT_EQUAL(rep.ok, 1);
  CU_ASSERT_EQUAL(rep.failed, 7);
  CU_ASSERT(exists(at("out/good.png")));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "out/%s", bad[i].name);
    CU_ASSERT(!exists(at(rel)));
  }
  CU_ASSERT_EQUAL(count_temps(at("out")), 0);
  /* The report lists every failed file. */
  size_t rn;
  char *r = (char *)read_file(at("report.txt"), &rn);
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  r = realloc(r, rn + 1);
  r[rn] = '\0';
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_PTR_NOT_NULL(strstr(r, bad[i].name));
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "7 failed"));
  free(r);
  free(g);
  free(c);
  mpc_buf_free(&zb);
  mpc_buf_free(&jb);
  mpc_buf_free(&err);
  scratch_free();
}

/* Pictures over --max-pixels are refused from the header: a 100000 x 100000
 * PNG (10 gigapixels) with a few bytes of data, a 1200x1000 real one over a
 * 1 MP limit, and a JPEG likewise. */
static void test_decompression_bomb(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  mpc_buf_t b = MPC_BUF_INIT, msg = MPC_BUF_INIT, err = MPC_BUF_INIT;
  bomb_png(&b, 100000, 100000);
  CU_ASSERT_EQUAL(write_file(at("in/bomb.png"), b.data, b.len), 0);
  image_pix_t p;
  CU_ASSERT_EQUAL_FATAL(image_pix_alloc(&p, 1200, 1000, 1, 8), 0);
  memset(p.data, 0, p.stride * p.h);
  mpc_buf_clear(&b);
  image_png_opts_t o = {9, Z_DEFAULT_STRATEGY, PNG_FILTER_NONE};
  CU_ASSERT_EQUAL_FATAL(image_png_encode(&p, &o, &b, &err), 0);
  CU_ASSERT_EQUAL(write_file(at("in/big.png"), b.data, b.len), 0);
  mpc_buf_clear(&b);
  CU_ASSERT_EQUAL_FATAL(image_jpeg_encode(&p, 50, &b, &err), 0);
  CU_ASSERT_EQUAL(write_file(at("in/big.jpg"), b.data, b.len), 0);
  image_pix_free(&p);
  const char *names[] = {"bomb.png", "big.png", "big.jpg"};
  for (int i = 0; i < 3; i++) {
    int rc = run_task(at("in"), at("out"), names[i], &msg);
    CU_ASSERT_EQUAL(rc, MPC_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&msg), "over the limit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&msg), names[i]));
  }
  /* Under the default limit (100 MP) the 10 GP bomb still fails. */
  mpc_job_report_t rep;
  const char *args[] = {at("in"), at("out2")};
  CU_ASSERT_EQUAL(run_job(&rep, NULL, 2, args), 0);
  CU_ASSERT_EQUAL(rep.failed, 1);
  CU_ASSERT_EQUAL(rep.ok, 2);
  CU_ASSERT(!exists(at("out2/bomb.png")));
  mpc_buf_free(&b);
  mpc_buf_free(&msg);
  mpc_buf_free(&err);
  scratch_free();
}

/* Names with spaces, unicode and leading dashes work, in subdirectories too
 * (--recursive), and come out under the same relative names. */
static void test_odd_names(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  mkdir(at("in/sub dir"), 0755);
  mkdir(at("in/sub dir/-deeper"), 0755);
  size_t n;
  unsigned char *g = good_png(&n);
  const char *names[] = {"a b.png",        "ünïcödé €.png",
                         "-x.png",         "--help.png",
                         "sub dir/-y.PNG", "sub dir/-deeper/日本.png"};
  for (int i = 0; i < 6; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "in/%s", names[i]);
    CU_ASSERT_EQUAL(write_file(at(rel), g, n), 0);
  }
  CU_ASSERT_EQUAL(write_file(at("in/notes.txt"), "x", 1), 0);
  mpc_job_report_t rep;
  const char *args[] = {"--recursive", "--size", "20x10",
                        "--",          at("in"), at("out")};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 6, args), 0);
  CU_ASSERT_EQUAL(rep.tasks, 6);
  CU_ASSERT_EQUAL(rep.ok, 6);
  for (int i = 0; i < 6; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "out/%s", names[i]);
    image_pix_t p;
    CU_ASSERT_EQUAL_FATAL(decode_file(at(rel), &p), 0);
    CU_ASSERT_EQUAL(p.w, 20);
    image_pix_free(&p);
  }
  CU_ASSERT(!exists(at("out/notes.txt")));
  /* Without --recursive only the top level. */
  const char *args2[] = {at("in"), at("out2")};
  CU_ASSERT_EQUAL_FATAL(run_job(&rep, NULL, 2, args2), 0);
  CU_ASSERT_EQUAL(rep.tasks, 4);
  free(g);
  scratch_free();
}

/* No task input can make a write land outside OUT_DIR: "..", absolute
 * paths, "." components, and a symlink planted inside OUT_DIR. */
static void test_no_escape(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  mkdir(at("in/sub"), 0755);
  mkdir(at("out"), 0755);
  mkdir(at("outside"), 0755);
  size_t n;
  unsigned char *g = good_png(&n);
  CU_ASSERT_EQUAL(write_file(at("x.png"), g, n), 0);
  CU_ASSERT_EQUAL(write_file(at("in/sub/x.png"), g, n), 0);
  CU_ASSERT_EQUAL(symlink(at("outside"), at("out/sub")), 0);
  mpc_buf_t msg = MPC_BUF_INIT;
  const char *evil[] = {"../x.png",
                        "sub/../../x.png",
                        "./sub/x.png",
                        "sub//x.png",
                        "/etc/x.png",
                        "..",
                        ""};
  for (int i = 0; i < 7; i++) {
    CU_ASSERT_NOT_EQUAL(run_task(at("in"), at("out"), evil[i], &msg), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&msg), "unsafe"));
  }
  /* A safe name whose directory is a symlink in OUT_DIR is refused too. */
  CU_ASSERT_NOT_EQUAL(run_task(at("in"), at("out"), "sub/x.png", &msg), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&msg), "symbolic link"));
  CU_ASSERT(!exists(at("outside/x.png")));
  CU_ASSERT(!exists(at("out/x.png")));
  CU_ASSERT_EQUAL(count_temps(at("outside")), 0);
  mpc_buf_free(&msg);
  free(g);
  scratch_free();
}

/* Bad arguments are usage errors with a message; OUT_DIR == IN_DIR too. */
static void test_usage(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  const char *cases[][4] = {
      {at("in"), NULL},
      {at("in"), at("out"), "--size", "0x5"},
      {at("in"), at("out"), "--filter", "nearest"},
      {at("in"), at("out"), "--compression", "10"},
      {at("in"), at("out"), "--brightness", "x"},
      {at("in"), at("out"), "--bogus", NULL},
      {at("in"), at("in"), NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int argc = 0;
    while (argc < 4 && cases[i][argc])
      argc++;
    char *argv[6] = {"image"};
    for (int k = 0; k < argc; k++)
      argv[k + 1] = (char *)cases[i][k];
    void *st = NULL;
    mpc_buf_t err = MPC_BUF_INIT;
    mpc_job_env_t env = {.rank = 0, .nranks = 1};
    int rc = mpc_job_image.init(argc + 1, argv, &env, &st, &err);
    CU_ASSERT_EQUAL(rc, MPC_EUSAGE);
    CU_ASSERT(err.len > 0);
    CU_ASSERT_PTR_NULL(st);
    mpc_buf_free(&err);
  }
  /* A missing input directory is a set-up error naming it. */
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  char *argv[] = {"image", (char *)at("nope"), (char *)at("out")};
  mpc_job_env_t env = {.rank = 0, .nranks = 1};
  CU_ASSERT(mpc_job_image.init(3, argv, &env, &st, &err) < 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "nope"));
  mpc_buf_free(&err);
  scratch_free();
}

/* gather() counts resumed tasks and names crashed ones. */
static void test_gather_resumed_and_crashed(void) {
  scratch_new();
  mkdir(at("in"), 0755);
  char *argv[] = {"image", (char *)at("in"), (char *)at("out")};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  mpc_job_env_t env = {.rank = 0, .nranks = 1, .resume = 1};
  CU_ASSERT_EQUAL_FATAL(mpc_job_image.init(3, argv, &env, &st, &err), 0);
  const char *okout = "in=1000 out=200 10x10 5x5";
  mpc_job_result_t r = {.key = "a.png",
                        .status = MPC_TASK_OK,
                        .output = okout,
                        .output_len = strlen(okout),
                        .resumed = 1};
  CU_ASSERT_EQUAL(mpc_job_image.gather(st, &r), 0);
  mpc_job_result_t c = {.key = "b.png", .status = MPC_TASK_CRASHED, .code = 11};
  CU_ASSERT_EQUAL(mpc_job_image.gather(st, &c), 0);
  char path[600];
  snprintf(path, sizeof path, "%s", at("report.txt"));
  fflush(stdout);
  int saved = dup(1), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  close(fd);
  mpc_job_report_t rep = {0};
  CU_ASSERT_EQUAL(mpc_job_image.finish(st, &rep), 0);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  mpc_job_image.fini(st);
  size_t n;
  char *t = (char *)read_file(path, &n);
  t = realloc(t, n + 1);
  t[n] = '\0';
  CU_ASSERT_PTR_NOT_NULL(strstr(t, "1 already done"));
  CU_ASSERT_PTR_NOT_NULL(strstr(t, "b.png: worker crashed"));
  free(t);
  mpc_buf_free(&err);
  scratch_free();
}

MPC_TESTS(image) = {
    {"every PNG kind decodes exactly and round-trips",
     test_png_kinds_roundtrip},
    {"resize + brightness give exact values, all kinds/filters",
     test_resize_brightness_exact},
    {"box 2:1 averages blocks exactly", test_box_half_exact},
    {"brightness rounds half to even, clamps, keeps alpha",
     test_brightness_rounding},
    {"--fit keeps aspect, --depth 8 reduces", test_fit_and_depth},
    {"JPEG in and out, quality honoured", test_jpeg},
    {"CMYK JPEG; 16-bit RGBA written as JPEG", test_jpeg_cmyk_and_conversion},
    {"corrupt/truncated/empty/zero-size fail alone", test_bad_files_fail_alone},
    {"decompression bombs refused from the header", test_decompression_bomb},
    {"spaces, unicode, leading dashes, subdirs", test_odd_names},
    {"no path can escape OUT_DIR", test_no_escape},
    {"usage errors", test_usage},
    {"gather counts resumed, names crashed", test_gather_resumed_and_crashed},
    CU_TEST_INFO_NULL,
};
