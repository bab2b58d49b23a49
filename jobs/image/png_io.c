/* PNG through libpng, from and to memory.  libpng reports errors by calling
 * our error function, which records the message and longjmps back to the
 * setjmp in the caller; everything allocated before the setjmp is released on
 * that path, so a corrupt file costs one task and no memory. */
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                         (unsigned long)w, (unsigned long)h,
                         (unsigned long long)w * h,
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
    image_msg(err, "cannot allocate %lux%lu pixels: %s",
                         (unsigned long)w, (unsigned long)h,
                         mpc_strerror(ret));
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
  static const int types[] = {0, PNG_COLOR_TYPE_GRAY,
                              PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                              PNG_COLOR_TYPE_RGB_ALPHA};
  png_ctx_t c = {.dst = out};
  png_structp png = NULL;
  png_infop info = NULL;
  png_bytep *volatile rows = NULL;
  size_t start = out->len;
  mpc_buf_clear(err);
  if (p->channels < 1 || p->channels > 4)
    return MPC_EINVAL;

  png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error,
                                on_warning);
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
