/* Internal to the image job: an in-memory picture and the codecs and
 * resampler that work on it.  Not installed.
 *
 * Conventions: functions return 0 or a negative MPC_E* code; on failure they
 * write a message into `err` (replaced, not appended) and leave no allocation
 * behind.  A pix owns its pixel buffer; image_pix_free() releases it. */
#ifndef MPC_JOBS_IMAGE_PIX_H
#define MPC_JOBS_IMAGE_PIX_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/buf.h"

/** A decoded picture: `channels` interleaved samples per pixel (1 grey,
 *  2 grey+alpha, 3 RGB, 4 RGBA), each 8-bit or 16-bit (host-endian uint16_t).
 *  Rows are `stride` bytes apart. */
typedef struct image_pix {
  uint32_t w, h;
  int channels; /* 1..4 */
  int depth;    /* 8 or 16 */
  size_t stride;
  unsigned char *data;
} image_pix_t;

typedef enum {
  IMAGE_FMT_UNKNOWN = 0,
  IMAGE_FMT_PNG = 1,
  IMAGE_FMT_JPEG = 2,
} image_fmt_t;

typedef enum {
  IMAGE_FILTER_BOX = 0,
  IMAGE_FILTER_BILINEAR = 1,
  IMAGE_FILTER_BICUBIC = 2,
  IMAGE_FILTER_LANCZOS = 3,
} image_filter_t;

/** PNG encoder settings. */
typedef struct image_png_opts {
  int level;    /* zlib level 0..9 */
  int strategy; /* Z_DEFAULT_STRATEGY, Z_FILTERED, Z_RLE, ... */
  int filters;  /* PNG_FILTER_* mask handed to png_set_filter */
} image_png_opts_t;

/** Append a printf-formatted message to `b`; on allocation failure the
 *  message is simply shorter (messages are best effort). */
void image_msg(mpc_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Allocate a w x h picture (uninitialised pixels).  @return 0, MPC_ENOMEM
 *  or MPC_ETOOBIG when the size overflows. */
int image_pix_alloc(image_pix_t *p, uint32_t w, uint32_t h, int channels,
                    int depth);
void image_pix_free(image_pix_t *p);

/** Sniff the format from the first bytes. */
image_fmt_t image_sniff(const void *data, size_t len);

/** Decode a PNG held in memory.  Every libpng kind is accepted: palette
 *  (tRNS becomes alpha), grey 1/2/4/8/16-bit, grey+alpha, RGB, RGBA,
 *  interlaced.  8-bit stays 8-bit; 16-bit stays 16-bit unless depth8 != 0
 *  (then scaled to 8-bit with rounding).  Pictures with more than max_pixels
 *  pixels are refused from the header, before any pixel memory is allocated.
 *  @return 0, MPC_EFORMAT (corrupt: message from libpng in err),
 *          MPC_ETOOBIG (over max_pixels) or MPC_ENOMEM. */
int image_png_decode(const void *data, size_t len, uint64_t max_pixels,
                     int depth8, image_pix_t *out, mpc_buf_t *err);

/** Encode `p` as PNG, appended to `out`.  @return 0, MPC_EFORMAT, MPC_ENOMEM.
 */
int image_png_encode(const image_pix_t *p, const image_png_opts_t *o,
                     mpc_buf_t *out, mpc_buf_t *err);

/** Streaming PNG writer: rows are handed over in order as they become
 *  available and encoded straight into PATH.mpc-PID.tmp, which
 *  image_png_writer_close() renames to PATH (commit) or removes. */
typedef struct image_png_writer image_png_writer_t;

/** @return 0, MPC_EINVAL, MPC_ENOMEM, -errno (cannot create the file). */
int image_png_writer_open(image_png_writer_t **w, const char *path,
                          uint32_t width, uint32_t height, int channels,
                          int depth, const image_png_opts_t *o, mpc_buf_t *err);
/** Append n rows (`stride` bytes apart).  @return 0, MPC_ESTATE (too many
 *  rows or an earlier failure), MPC_EIO (libpng or disk error, in err). */
int image_png_writer_rows(image_png_writer_t *w, const unsigned char *rows,
                          uint32_t n, size_t stride, mpc_buf_t *err);
/** Finish and rename (commit != 0, every row written) or abandon and remove
 *  the temporary file; frees w (NULL is fine).  @return 0, MPC_ESTATE
 *  (commit with rows missing: file removed), -errno. */
int image_png_writer_close(image_png_writer_t *w, int commit, mpc_buf_t *err);

/** Decode a JPEG (grey, YCbCr/RGB, CMYK/YCCK) into 8-bit grey or RGB.  Any
 *  libjpeg warning (corrupt or truncated data) is an error.  Same return
 *  codes as image_png_decode(). */
int image_jpeg_decode(const void *data, size_t len, uint64_t max_pixels,
                      image_pix_t *out, mpc_buf_t *err);

/** Encode an 8-bit grey or RGB picture (alpha is dropped; 16-bit is reduced
 *  to 8-bit) as baseline JPEG at `quality` (1..100), appended to `out`. */
int image_jpeg_encode(const image_pix_t *p, int quality, mpc_buf_t *out,
                      mpc_buf_t *err);

/** Resize `in` to ow x oh with `filter`, antialiased as Pillow's
 *  Image.resize: the filter's support widens with the downscale factor, the
 *  weights are per output pixel, the horizontal pass runs first; 8-bit
 *  samples use Pillow's 22-bit fixed point and rounding, 16-bit samples the
 *  same with 64-bit sums.  Pictures with alpha are resampled premultiplied
 *  (as Pillow's RGBa/La).  `out` is allocated.  @return 0, MPC_ENOMEM,
 *  MPC_EINVAL (zero size). */
int image_resize(const image_pix_t *in, uint32_t ow, uint32_t oh,
                 image_filter_t filter, image_pix_t *out);

/** Multiply every colour sample by `factor`, rounded (half to even, as Pillow's
 * point()) and clamped; alpha samples are left alone.  In place. */
void image_brightness(image_pix_t *p, double factor);

/** Reduce a 16-bit picture to 8-bit in place (rounded: v*255/65535). */
void image_to_depth8(image_pix_t *p);

/** Parse a filter name ("box", "bilinear", "bicubic", "lanczos").
 *  @return 0 or MPC_EINVAL. */
int image_filter_parse(const char *s, image_filter_t *f);

#endif
