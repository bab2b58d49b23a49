/* PNG through libpng, from and to memory.  libpng reports errors by calling
 * our error function, which records the message and longjmps back to the
 * setjmp in the caller; everything allocated before the setjmp is released on
 * that path, so a corrupt file costs one task and no memory. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mpc/error.h"
#include "pix.h"

void image_msg(mpc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (mpc_buf_vprintf(b, fmt, ap) != 0)
    b->len = 0;
  va_end(ap);
}

int image_pix_alloc(image_pix_t *p, uint32_t w, uint32_t h, int channels,
                    int depth) {
  memset(p, 0, sizeof *p);
  if (channels < 1 || channels > 4 || (depth != 8 && depth != 16))
    return MPC_EINVAL;
  uint64_t stride = (uint64_t)w * channels * (depth / 8);
  uint64_t total = stride * h;
  if (w == 0 || h == 0 || total > (uint64_t)SIZE_MAX / 2 || total / h != stride)
    return MPC_ETOOBIG;
  p->data = malloc((size_t)total);
  if (!p->data)
    return MPC_ENOMEM;
  p->w = w;
  p->h = h;
  p->channels = channels;
  p->depth = depth;
  p->stride = (size_t)stride;
  return 0;
}

void image_pix_free(image_pix_t *p) {
  free(p->data);
  memset(p, 0, sizeof *p);
}

image_fmt_t image_sniff(const void *data, size_t len) {
  const unsigned char *b = data;
  if (len >= 8 && png_sig_cmp(b, 0, 8) == 0)
    return IMAGE_FMT_PNG;
  if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
    return IMAGE_FMT_JPEG;
  return IMAGE_FMT_UNKNOWN;
}

/* Shared between libpng's callbacks and the code around setjmp. */
typedef struct png_ctx {
  jmp_buf jmp;
  char msg[256];
  const unsigned char *src; /* reading */
  size_t len, pos;
  mpc_buf_t *dst; /* writing */
  int nomem;
} png_ctx_t;

static void on_error(png_structp png, png_const_charp msg) {
  png_ctx_t *c = png_get_error_ptr(png);
  snprintf(c->msg, sizeof c->msg, "%s", msg);
  longjmp(c->jmp, 1);
}

/* Warnings (bad sRGB profiles and the like) do not change the pixels. */
static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void on_read(png_structp png, png_bytep out, png_size_t n) {
  png_ctx_t *c = png_get_io_ptr(png);
  if (n > c->len - c->pos)
    png_error(png, "file is truncated");
  memcpy(out, c->src + c->pos, n);
  c->pos += n;
}

static void on_write(png_structp png, png_bytep data, png_size_t n) {
  png_ctx_t *c = png_get_io_ptr(png);
  if (mpc_buf_append(c->dst, data, n) != 0) {
    c->nomem = 1;
    png_error(png, "out of memory");
  }
}

static void on_flush(png_structp png) { (void)png; }

int image_png_decode(const void *data, size_t len, uint64_t max_pixels,
                     int depth8, image_pix_t *out, mpc_buf_t *err) {
  /* Locals changed after setjmp and read after the longjmp are volatile. */
  png_ctx_t c = {.src = data, .len = len};
  png_structp png = NULL;
  png_infop info = NULL;
  png_bytep *volatile rows = NULL;
  volatile int rc = MPC_EFORMAT;
  memset(out, 0, sizeof *out);
  mpc_buf_clear(err);

  png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
  if (png)
    info = png_create_info_struct(png);
  if (!png || !info) {
    png_destroy_read_struct(&png, &info, NULL);
    image_msg(err, "out of memory");
    return MPC_ENOMEM;
  }
  if (setjmp(c.jmp)) {
    if (rc == MPC_EFORMAT)
      image_msg(err, "corrupt PNG: %s", c.msg);
    goto fail;
  }
  png_set_read_fn(png, &c, on_read);
  /* Width and height are limited by max_pixels below; this keeps libpng's
   * own sanity limit from refusing large but allowed pictures first. */
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, info);

  png_uint_32 w, h;
  int bit_depth, color_type, interlace;
  png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, &interlace, NULL,
               NULL);
  if ((uint64_t)w * h > max_pixels) {
    rc = MPC_ETOOBIG;
    image_msg(err,
              "%lux%lu = %llu pixels is over the limit of %llu "
              "(--max-pixels)",
              (unsigned long)w, (unsigned long)h, (unsigned long long)w * h,
              (unsigned long long)max_pixels);
    goto fail;
  }
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) {
    if (depth8)
      png_set_scale_16(png);
    else
      png_set_swap(png); /* host order (little-endian hosts) */
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  int channels = png_get_channels(png, info);
  int depth = png_get_bit_depth(png, info);
  int ret = image_pix_alloc(out, w, h, channels, depth);
  if (ret) {
    rc = ret;
    image_msg(err, "cannot allocate %lux%lu pixels: %s", (unsigned long)w,
              (unsigned long)h, mpc_strerror(ret));
    goto fail;
  }
  if (png_get_rowbytes(png, info) != out->stride) {
    image_msg(err, "unexpected PNG row size");
    goto fail;
  }
  rows = malloc(sizeof(png_bytep) * h);
  if (!rows) {
    rc = MPC_ENOMEM;
    image_msg(err, "out of memory");
    goto fail;
  }
  for (png_uint_32 y = 0; y < h; y++)
    rows[y] = out->data + (size_t)y * out->stride;
  png_read_image(png, rows);
  /* Read to IEND too, so that a file cut after its last IDAT still fails. */
  png_read_end(png, NULL);
  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  return 0;

fail:
  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  image_pix_free(out);
  return rc;
}

int image_png_encode(const image_pix_t *p, const image_png_opts_t *o,
                     mpc_buf_t *out, mpc_buf_t *err) {
  static const int types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                              PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_ctx_t c = {.dst = out};
  png_structp png = NULL;
  png_infop info = NULL;
  png_bytep *volatile rows = NULL;
  size_t start = out->len;
  mpc_buf_clear(err);
  if (p->channels < 1 || p->channels > 4)
    return MPC_EINVAL;

  png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
  if (png)
    info = png_create_info_struct(png);
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    image_msg(err, "out of memory");
    return MPC_ENOMEM;
  }
  if (setjmp(c.jmp)) {
    image_msg(err, "PNG encoder: %s", c.msg);
    free(rows);
    png_destroy_write_struct(&png, &info);
    out->len = start;
    return c.nomem ? MPC_ENOMEM : MPC_EFORMAT;
  }
  png_set_write_fn(png, &c, on_write, on_flush);
  png_set_IHDR(png, info, p->w, p->h, p->depth, types[p->channels],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, o->level);
  png_set_compression_strategy(png, o->strategy);
  png_set_compression_mem_level(png, 9);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, o->filters);
  png_write_info(png, info);
  if (p->depth == 16)
    png_set_swap(png);
  rows = malloc(sizeof(png_bytep) * p->h);
  if (!rows) {
    c.nomem = 1;
    png_error(png, "out of memory");
  }
  for (uint32_t y = 0; y < p->h; y++)
    rows[y] = p->data + (size_t)y * p->stride;
  png_write_image(png, rows);
  png_write_end(png, NULL);
  free(rows);
  png_destroy_write_struct(&png, &info);
  return 0;
}

/* ---- streaming writer: rows in order, straight to a file ----------------- */

struct image_png_writer {
  png_ctx_t c;
  png_structp png;
  png_infop info;
  FILE *fp;
  char *path, *tmp;
  uint32_t h, rows_done;
  size_t rowbytes;
  int depth, failed;
};

/* Release everything; remove the temporary file unless it was renamed. */
static void writer_destroy(image_png_writer_t *w, int keep) {
  if (!w)
    return;
  if (w->png)
    png_destroy_write_struct(&w->png, &w->info);
  if (w->fp)
    fclose(w->fp);
  if (!keep && w->tmp)
    unlink(w->tmp);
  free(w->path);
  free(w->tmp);
  free(w);
}

int image_png_writer_open(image_png_writer_t **out, const char *path,
                          uint32_t width, uint32_t height, int channels,
                          int depth, const image_png_opts_t *o,
                          mpc_buf_t *err) {
  static const int types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                              PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  *out = NULL;
  mpc_buf_clear(err);
  if (channels < 1 || channels > 4 || (depth != 8 && depth != 16) || !width ||
      !height)
    return MPC_EINVAL;
  image_png_writer_t *w = calloc(1, sizeof *w);
  if (!w)
    return MPC_ENOMEM;
  w->path = strdup(path);
  w->tmp = malloc(strlen(path) + 40);
  if (!w->path || !w->tmp) {
    writer_destroy(w, 1);
    return MPC_ENOMEM;
  }
  sprintf(w->tmp, "%s.mpc-%ld.tmp", path, (long)getpid());
  w->h = height;
  w->depth = depth;
  w->rowbytes = (size_t)width * channels * (depth / 8);
  w->fp = fopen(w->tmp, "wb");
  if (!w->fp) {
    int e = errno;
    image_msg(err, "cannot create %s: %s", w->tmp, strerror(e));
    free(w->tmp);
    w->tmp = NULL;
    writer_destroy(w, 1);
    return -e;
  }
  w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w->c, on_error,
                                   on_warning);
  if (w->png)
    w->info = png_create_info_struct(w->png);
  if (!w->png || !w->info) {
    writer_destroy(w, 0);
    image_msg(err, "out of memory");
    return MPC_ENOMEM;
  }
  if (setjmp(w->c.jmp)) {
    image_msg(err, "PNG encoder: %s", w->c.msg);
    writer_destroy(w, 0);
    return MPC_EFORMAT;
  }
  png_init_io(w->png, w->fp);
  png_set_IHDR(w->png, w->info, width, height, depth, types[channels],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(w->png, o->level);
  png_set_compression_strategy(w->png, o->strategy);
  png_set_compression_mem_level(w->png, 9);
  png_set_filter(w->png, PNG_FILTER_TYPE_BASE, o->filters);
  png_write_info(w->png, w->info);
  if (depth == 16)
    png_set_swap(w->png);
  *out = w;
  return 0;
}

int image_png_writer_rows(image_png_writer_t *w, const unsigned char *rows,
                          uint32_t n, size_t stride, mpc_buf_t *err) {
  mpc_buf_clear(err);
  if (w->failed || n > w->h - w->rows_done)
    return MPC_ESTATE;
  if (setjmp(w->c.jmp)) {
    w->failed = 1;
    image_msg(err, "PNG encoder: %s", w->c.msg);
    return MPC_EIO;
  }
  for (uint32_t i = 0; i < n; i++)
    png_write_row(w->png, (png_const_bytep)(rows + (size_t)i * stride));
  w->rows_done += n;
  return 0;
}

int image_png_writer_close(image_png_writer_t *w, int commit, mpc_buf_t *err) {
  mpc_buf_clear(err);
  if (!w)
    return 0;
  if (!commit || w->failed || w->rows_done != w->h) {
    writer_destroy(w, 0);
    return commit ? MPC_ESTATE : 0;
  }
  if (setjmp(w->c.jmp)) {
    image_msg(err, "PNG encoder: %s", w->c.msg);
    writer_destroy(w, 0);
    return MPC_EIO;
  }
  png_write_end(w->png, NULL);
  png_destroy_write_struct(&w->png, &w->info);
  int rc = 0;
  if (fflush(w->fp) != 0 || ferror(w->fp))
    rc = -errno;
  if (fclose(w->fp) != 0 && !rc)
    rc = -errno;
  w->fp = NULL;
  if (!rc && rename(w->tmp, w->path) != 0)
    rc = -errno;
  if (rc)
    image_msg(err, "cannot write %s: %s", w->path, strerror(-rc));
  writer_destroy(w, rc == 0);
  return rc;
}
