/* JPEG through libjpeg(-turbo), from and to memory.  libjpeg's default error
 * manager exits the process; ours formats the message and longjmps back, so a
 * corrupt file fails only its task.  libjpeg treats damaged or truncated data
 * as warnings and fills the rest of the picture with grey: we make every
 * warning an error, so such a file fails instead of giving a wrong picture. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "mpc/error.h"
#include "pix.h"

typedef struct jerr {
  struct jpeg_error_mgr pub;
  jmp_buf jmp;
  char msg[JMSG_LENGTH_MAX];
  unsigned char *mem; /* encoder output, owned by libjpeg's mem dest */
  unsigned long memlen;
} jerr_t;

static void on_error_exit(j_common_ptr cinfo) {
  jerr_t *e = (jerr_t *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->msg);
  longjmp(e->jmp, 1);
}

static void on_emit(j_common_ptr cinfo, int level) {
  if (level < 0) /* a warning: corrupt or truncated data */
    on_error_exit(cinfo);
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

static void jerr_init(jerr_t *e) {
  jpeg_std_error(&e->pub);
  e->pub.error_exit = on_error_exit;
  e->pub.emit_message = on_emit;
  e->pub.output_message = on_output;
  e->msg[0] = '\0';
  e->mem = NULL;
  e->memlen = 0;
}

int image_jpeg_decode(const void *data, size_t len, uint64_t max_pixels,
                      image_pix_t *out, mpc_buf_t *err) {
  struct jpeg_decompress_struct ci;
  jerr_t je;
  unsigned char *volatile row = NULL;
  volatile int rc = MPC_EFORMAT;
  memset(out, 0, sizeof *out);
  mpc_buf_clear(err);
  ci.err = &je.pub;
  jerr_init(&je);
  if (setjmp(je.jmp)) {
    if (rc == MPC_EFORMAT)
      image_msg(err, "corrupt JPEG: %s", je.msg);
    goto fail;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, data, (unsigned long)len);
  jpeg_read_header(&ci, TRUE);
  if ((uint64_t)ci.image_width * ci.image_height > max_pixels) {
    rc = MPC_ETOOBIG;
    image_msg(err,
              "%ux%u = %llu pixels is over the limit of %llu (--max-pixels)",
              ci.image_width, ci.image_height,
              (unsigned long long)ci.image_width * ci.image_height,
              (unsigned long long)max_pixels);
    goto fail;
  }
  int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
  if (cmyk)
    ci.out_color_space = JCS_CMYK;
  else if (ci.num_components == 1)
    ci.out_color_space = JCS_GRAYSCALE;
  else
    ci.out_color_space = JCS_RGB;
  jpeg_start_decompress(&ci);
  int ch = cmyk ? 3 : ci.output_components;
  int ret = image_pix_alloc(out, ci.output_width, ci.output_height, ch, 8);
  if (ret) {
    rc = ret;
    image_msg(err, "cannot allocate %ux%u pixels: %s", ci.output_width,
              ci.output_height, mpc_strerror(ret));
    goto fail;
  }
  if (cmyk) {
    row = malloc((size_t)ci.output_width * 4);
    if (!row) {
      rc = MPC_ENOMEM;
      image_msg(err, "out of memory");
      goto fail;
    }
  }
  while (ci.output_scanline < ci.output_height) {
    unsigned char *dst = out->data + (size_t)ci.output_scanline * out->stride;
    JSAMPROW r = cmyk ? row : dst;
    jpeg_read_scanlines(&ci, &r, 1);
    if (cmyk) {
      /* Adobe writes CMYK inverted (as libjpeg hands it to us): the channel
       * values are already 255 - ink, so RGB = value * K / 255. */
      for (JDIMENSION x = 0; x < ci.output_width; x++) {
        unsigned k = row[x * 4 + 3];
        for (int b = 0; b < 3; b++)
          dst[x * 3 + b] = (unsigned char)((row[x * 4 + b] * k + 127) / 255);
      }
    }
  }
  jpeg_finish_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  free(row);
  return 0;

fail:
  jpeg_destroy_decompress(&ci);
  free(row);
  image_pix_free(out);
  return rc;
}

int image_jpeg_encode(const image_pix_t *p, int quality, mpc_buf_t *out,
                      mpc_buf_t *err) {
  struct jpeg_compress_struct ci;
  jerr_t je;
  unsigned char *volatile row = NULL;
  mpc_buf_clear(err);
  ci.err = &je.pub;
  jerr_init(&je);
  if (setjmp(je.jmp)) {
    image_msg(err, "JPEG encoder: %s", je.msg);
    jpeg_destroy_compress(&ci);
    free(row);
    free(je.mem);
    return MPC_EFORMAT;
  }
  /* Computed after setjmp so that longjmp cannot clobber them. */
  const int ncol =
      (p->channels == 2 || p->channels == 4) ? p->channels - 1 : p->channels;
  /* Rows need converting unless they are already 8-bit grey or RGB. */
  const int convert = p->depth != 8 || ncol != p->channels;
  jpeg_create_compress(&ci);
  jpeg_mem_dest(&ci, &je.mem, &je.memlen);
  ci.image_width = p->w;
  ci.image_height = p->h;
  ci.input_components = ncol;
  ci.in_color_space = ncol == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  jpeg_start_compress(&ci, TRUE);
  if (convert) {
    row = malloc((size_t)p->w * ncol);
    if (!row) {
      jpeg_destroy_compress(&ci);
      free(je.mem);
      image_msg(err, "out of memory");
      return MPC_ENOMEM;
    }
  }
  while (ci.next_scanline < ci.image_height) {
    const unsigned char *src = p->data + (size_t)ci.next_scanline * p->stride;
    JSAMPROW r = (JSAMPROW)src;
    if (convert) {
      for (uint32_t x = 0; x < p->w; x++)
        for (int b = 0; b < ncol; b++) {
          size_t i = (size_t)x * p->channels + b;
          row[(size_t)x * ncol + b] =
              p->depth == 8
                  ? src[i]
                  : (unsigned char)((((const uint16_t *)src)[i] * 255u +
                                     32767u) /
                                    65535u);
        }
      r = row;
    }
    jpeg_write_scanlines(&ci, &r, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  free(row);
  int rc = mpc_buf_append(out, je.mem, je.memlen);
  free(je.mem);
  if (rc)
    image_msg(err, "out of memory");
  return rc;
}
