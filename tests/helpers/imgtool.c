/* imgtool: small image utilities for the image job's tests and benchmarks.
 *
 *   imgtool info FILE.png
 *       decode with libpng's simplified API (independent of the job's
 *       decoder) and print "W H CHANNELS DEPTH COLORTYPE".
 *   imgtool pixel FILE.png X Y
 *       print the samples of one pixel (as stored: 8- or 16-bit).
 *   imgtool psnr A.png B.png
 *       PSNR in dB between two same-sized 8-bit pictures ("inf" if equal).
 *   imgtool phases [--size WxH] [--filter F] [--level L] [--png-filter F]
 *                  [--strategy S] [--brightness B] FILE...
 *       run the job's decode / resize / brightness / encode code on each file
 *       in this process and print the time spent in each phase and the total
 *       output bytes (used to choose the encoder defaults, docs/image.md).
 *
 * The job's codec sources are compiled in directly: helpers link only
 * libmpcrun, not the job objects. */
#include "../../jobs/image/jpeg_io.c"
#include "../../jobs/image/png_io.c"
#include "../../jobs/image/resample.c"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  struct stat st;
  unsigned char *b = NULL;
  if (fstat(fileno(f), &st) == 0 && (b = malloc((size_t)st.st_size + 1)) &&
      fread(b, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
    free(b);
    b = NULL;
  }
  *len = (size_t)st.st_size;
  fclose(f);
  return b;
}

static int cmd_info(const char *path) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path)) {
    fprintf(stderr, "imgtool: %s: %s\n", path, im.message);
    return 1;
  }
  int ch = PNG_IMAGE_SAMPLE_CHANNELS(im.format);
  int depth = (im.format & PNG_FORMAT_FLAG_LINEAR) ? 16 : 8;
  /* Read the pixels too, so that a damaged file fails here (palette files
   * are expanded, so that no colour-map buffer is needed). */
  im.format &= ~PNG_FORMAT_FLAG_COLORMAP;
  size_t n = PNG_IMAGE_SIZE(im);
  void *buf = malloc(n);
  if (!buf || !png_image_finish_read(&im, NULL, buf, 0, NULL)) {
    fprintf(stderr, "imgtool: %s: %s\n", path, buf ? im.message : "no memory");
    free(buf);
    return 1;
  }
  free(buf);
  /* The simplified API reports linear (16-bit) for 16-bit files. */
  printf("%u %u %d %d\n", im.width, im.height, ch, depth);
  return 0;
}

static int load(const char *path, image_pix_t *p) {
  size_t len;
  mpc_buf_t err = MPC_BUF_INIT;
  unsigned char *b = slurp(path, &len);
  if (!b) {
    fprintf(stderr, "imgtool: cannot read %s\n", path);
    return 1;
  }
  int rc = image_sniff(b, len) == IMAGE_FMT_JPEG
               ? image_jpeg_decode(b, len, 1ull << 40, p, &err)
               : image_png_decode(b, len, 1ull << 40, 0, p, &err);
  free(b);
  if (rc)
    fprintf(stderr, "imgtool: %s: %s\n", path, mpc_buf_str(&err));
  mpc_buf_free(&err);
  return rc ? 1 : 0;
}

static int cmd_pixel(const char *path, int x, int y) {
  image_pix_t p;
  if (load(path, &p))
    return 1;
  if (x < 0 || y < 0 || (uint32_t)x >= p.w || (uint32_t)y >= p.h) {
    fprintf(stderr, "imgtool: pixel outside the picture\n");
    image_pix_free(&p);
    return 1;
  }
  for (int b = 0; b < p.channels; b++) {
    size_t i = (size_t)x * p.channels + b;
    unsigned v = p.depth == 8
                     ? p.data[(size_t)y * p.stride + i]
                     : ((uint16_t *)(p.data + (size_t)y * p.stride))[i];
    printf(b ? " %u" : "%u", v);
  }
  printf("\n");
  image_pix_free(&p);
  return 0;
}

static int cmd_psnr(const char *a, const char *b) {
  image_pix_t p, q;
  if (load(a, &p))
    return 1;
  if (load(b, &q)) {
    image_pix_free(&p);
    return 1;
  }
  int rc = 1;
  if (p.w != q.w || p.h != q.h || p.channels != q.channels || p.depth != 8 ||
      q.depth != 8) {
    fprintf(stderr, "imgtool: %s and %s differ in size or kind\n", a, b);
    goto done;
  }
  double se = 0;
  for (uint32_t y = 0; y < p.h; y++)
    for (size_t i = 0; i < p.stride; i++) {
      double d = (double)p.data[y * p.stride + i] - q.data[y * q.stride + i];
      se += d * d;
    }
  double mse = se / ((double)p.h * p.stride);
  if (mse == 0)
    printf("inf\n");
  else
    printf("%.2f\n", 10 * log10(255.0 * 255.0 / mse));
  rc = 0;
done:
  image_pix_free(&p);
  image_pix_free(&q);
  return rc;
}

static int cmd_phases(int argc, char **argv) {
  uint32_t w = 800, h = 600;
  image_filter_t f = IMAGE_FILTER_BICUBIC;
  image_png_opts_t o = {1, Z_RLE, PNG_FILTER_PAETH}; /* the job's default */
  double bright = 1.2;
  int i = 0;
  for (; i < argc && argv[i][0] == '-'; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(k, "--size"))
      sscanf(v, "%ux%u", &w, &h);
    else if (!strcmp(k, "--filter"))
      (void)!image_filter_parse(v, &f);
    else if (!strcmp(k, "--level"))
      o.level = atoi(v);
    else if (!strcmp(k, "--brightness"))
      bright = atof(v);
    else if (!strcmp(k, "--strategy"))
      o.strategy = !strcmp(v, "filtered")  ? Z_FILTERED
                   : !strcmp(v, "rle")     ? Z_RLE
                   : !strcmp(v, "huffman") ? Z_HUFFMAN_ONLY
                                           : Z_DEFAULT_STRATEGY;
    else if (!strcmp(k, "--png-filter"))
      o.filters = !strcmp(v, "none")     ? PNG_FILTER_NONE
                  : !strcmp(v, "sub")    ? PNG_FILTER_SUB
                  : !strcmp(v, "up")     ? PNG_FILTER_UP
                  : !strcmp(v, "avg")    ? PNG_FILTER_AVG
                  : !strcmp(v, "paeth")  ? PNG_FILTER_PAETH
                  : !strcmp(v, "sub+up") ? (PNG_FILTER_SUB | PNG_FILTER_UP)
                  : !strcmp(v, "sub+paeth")
                      ? (PNG_FILTER_SUB | PNG_FILTER_PAETH)
                      : PNG_ALL_FILTERS;
    else {
      fprintf(stderr, "imgtool: unknown option %s\n", k);
      return 2;
    }
  }
  double td = 0, tr = 0, te = 0;
  unsigned long long bytes = 0;
  int n = 0;
  for (; i < argc; i++) {
    size_t len;
    unsigned char *b = slurp(argv[i], &len);
    if (!b)
      return 1;
    image_pix_t p, r;
    mpc_buf_t err = MPC_BUF_INIT, out = MPC_BUF_INIT;
    double t0 = now();
    if (image_png_decode(b, len, 1ull << 40, 0, &p, &err)) {
      fprintf(stderr, "imgtool: %s: %s\n", argv[i], mpc_buf_str(&err));
      return 1;
    }
    double t1 = now();
    if (image_resize(&p, w, h, f, &r))
      return 1;
    image_brightness(&r, bright);
    double t2 = now();
    if (image_png_encode(&r, &o, &out, &err))
      return 1;
    double t3 = now();
    td += t1 - t0;
    tr += t2 - t1;
    te += t3 - t2;
    bytes += out.len;
    n++;
    image_pix_free(&p);
    image_pix_free(&r);
    mpc_buf_free(&out);
    mpc_buf_free(&err);
    free(b);
  }
  if (n == 0)
    return 2;
  printf("files=%d decode_ms=%.1f resize_ms=%.1f encode_ms=%.1f total_ms=%.1f "
         "bytes=%llu\n",
         n, td / n * 1e3, tr / n * 1e3, te / n * 1e3, (td + tr + te) / n * 1e3,
         bytes);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "info"))
    return cmd_info(argv[2]);
  if (argc >= 5 && !strcmp(argv[1], "pixel"))
    return cmd_pixel(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (argc >= 4 && !strcmp(argv[1], "psnr"))
    return cmd_psnr(argv[2], argv[3]);
  if (argc >= 3 && !strcmp(argv[1], "phases"))
    return cmd_phases(argc - 2, argv + 2);
  fprintf(stderr, "usage: imgtool info FILE | pixel FILE X Y | psnr A B | "
                  "phases [opts] FILE...\n");
  return 2;
}
