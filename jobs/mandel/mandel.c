/* The `mandel` job: renders the Mandelbrot set with smooth colouring to PNG.
 *
 * Each task is a band of rows of one frame ("FRAME Y0 ROWS").  A pixel's
 * value depends only on its own coordinates (computed from integers with the
 * same double arithmetic everywhere), never on the band it was computed in,
 * so the picture is bit-identical whatever the tiling, the number of ranks and
 * workers, or the order in which bands come back.  Bands cost very unevenly:
 * a band crossing the set's interior runs every pixel to --iter iterations,
 * one in the outer region escapes after a few.
 *
 * The master assembles bands by their row offset into the frame's buffer and
 * writes the frame (temporary file, then rename) as soon as its last band
 * arrives, so a zoom sequence holds only the frames in flight in memory. */
#include "mandel.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../image/pix.h"

#define MANDEL_MAX_PIXELS 400000000ull
#define MANDEL_BAILOUT2 (256.0 * 256.0)

typedef struct frame {
  unsigned char *rgb;  /* W*H*3, allocated on the first band */
  unsigned char *have; /* per band: arrived */
  uint32_t next_band;  /* first band not yet handed to the encoder */
  uint32_t rows_done;
  image_png_writer_t *wr; /* open while the frame is being written */
  int failed;             /* a band failed: the frame cannot be written */
  int written;
} frame_t;

typedef struct mandel_state {
  uint32_t w, h, tile, iter, frames;
  double cx, cy, zoom, step;
  int dir_mode; /* --frames given: --out is a directory */
  char *out;
  image_png_opts_t png;
  /* master */
  uint32_t next_frame, next_row;
  frame_t *fr;
  uint64_t tiles_ok, tiles_failed, frames_written;
  mpc_buf_t errors; /* one line per problem */
  int write_error;
} mandel_state_t;

static const char g_usage[] =
    "mandel --out FILE_OR_DIR [options]\n"
    "  Render the Mandelbrot set (smooth colouring) to PNG; each band of rows\n"
    "  is a task.\n"
    "  --out PATH          output file (PATH.png), or directory with --frames\n"
    "  --size WxH          picture size (default 4000x3000)\n"
    "  --iter N            maximum iterations (default 2000)\n"
    "  --tile ROWS         rows per task (default 16)\n"
    "  --center X,Y        centre of the view (default -0.75,0)\n"
    "  --zoom Z            magnification; 1 shows 3 units vertically (default "
    "1)\n"
    "  --frames K          zoom sequence of K frames into --out as a "
    "directory\n"
    "                      (frame_000.png ...)\n"
    "  --zoom-step F       zoom factor from one frame to the next (default "
    "1.5)\n"
    "  --compression 0-9   PNG effort, as for the image job (default 2)\n";

static void msg(mpc_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void msg(mpc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (mpc_buf_vprintf(b, fmt, ap) != 0)
    b->len = 0;
  va_end(ap);
}

/* ---- the picture --------------------------------------------------------- */

/* The palette: one cycle of a cosine colour ramp, sampled at PALETTE
 * points (plenty for 8-bit colour); built once, read by every pixel. */
#define PALETTE 2048
static unsigned char g_palette[PALETTE][3];
static int g_palette_ready;

static void palette_init(void) {
  static const double d[3] = {0.00, 0.15, 0.30};
  for (int i = 0; i < PALETTE; i++)
    for (int c = 0; c < 3; c++) {
      double v =
          0.5 + 0.5 * cos(6.283185307179586 * ((double)i / PALETTE + d[c]));
      g_palette[i][c] = (unsigned char)(v * 255.0 + 0.5);
    }
  g_palette_ready = 1;
}

/* Colour of pixel (px, py) of a w x h view: smooth iteration count mapped
 * through the palette; the interior is black. */
static void mandel_pixel(const mandel_state_t *s, double zoom, uint32_t px,
                         uint32_t py, unsigned char rgb[3]) {
  double scale = 3.0 / (zoom * s->h);
  double cr = s->cx + ((double)px + 0.5 - 0.5 * s->w) * scale;
  double ci = s->cy - ((double)py + 0.5 - 0.5 * s->h) * scale;
  double zr = 0, zi = 0, r2 = 0, i2 = 0;
  uint32_t n = 0;
  while (n < s->iter && r2 + i2 <= MANDEL_BAILOUT2) {
    zi = 2 * zr * zi + ci;
    zr = r2 - i2 + cr;
    r2 = zr * zr;
    i2 = zi * zi;
    n++;
  }
  if (n >= s->iter && r2 + i2 <= MANDEL_BAILOUT2) {
    rgb[0] = rgb[1] = rgb[2] = 0;
    return;
  }
  /* Smooth count: n + 1 - log2(log|z|), continuous across bands. */
  double mu = n + 1 - log2(0.5 * log(r2 + i2));
  if (mu < 0)
    mu = 0;
  double t = 0.35 * log(mu + 1.0);
  int i = (int)((t - floor(t)) * PALETTE);
  if (i >= PALETTE) /* t - floor(t) rounds to 1.0 for t just below an integer */
    i = 0;
  memcpy(rgb, g_palette[i], 3);
}

/* ---- options ------------------------------------------------------------- */

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *v) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-')
    return -1;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || *end || x < lo || x > hi)
    return -1;
  *v = (uint32_t)x;
  return 0;
}

static int parse_double(const char *s, double *v, char **endp) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  if (errno || end == s || !isfinite(*v))
    return -1;
  if (endp)
    *endp = end;
  else if (*end)
    return -1;
  return 0;
}

static void state_free(mandel_state_t *s) {
  if (!s)
    return;
  if (s->fr)
    for (uint32_t i = 0; i < s->frames; i++) {
      mpc_buf_t e = MPC_BUF_INIT;
      (void)image_png_writer_close(s->fr[i].wr, 0, &e); /* removes its temp */
      mpc_buf_free(&e);
      free(s->fr[i].rgb);
      free(s->fr[i].have);
    }
  free(s->fr);
  free(s->out);
  mpc_buf_free(&s->errors);
  free(s);
}

static int mandel_init(int argc, char **argv, const mpc_job_env_t *env,
                       void **state, mpc_buf_t *err) {
  mandel_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return MPC_ENOMEM;
  s->w = 4000;
  s->h = 3000;
  s->tile = 16;
  s->iter = 2000;
  s->frames = 1;
  s->cx = -0.75;
  s->cy = 0;
  s->zoom = 1;
  s->step = 1.5;
  s->png = (image_png_opts_t){1, Z_RLE, PNG_FILTER_PAETH};
  const char *out = NULL;
  int rc = MPC_EUSAGE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    char name[32];
    if (!strcmp(a, "--"))
      continue; /* mandel takes no positional arguments */
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    if (a[0] != '-' || a[1] != '-' || nl >= sizeof name) {
      msg(err, "mandel: unexpected argument '%s'", a);
      goto bad;
    }
    memcpy(name, a, nl);
    name[nl] = '\0';
    if (eq)
      val = eq + 1;
    else if (i + 1 < argc)
      val = argv[++i];
    else {
      msg(err, "mandel: %s needs a value", name);
      goto bad;
    }
    int bad = 0;
    if (!strcmp(name, "--out")) {
      out = val;
      bad = !*val;
    } else if (!strcmp(name, "--size")) {
      const char *x = strchr(val, 'x');
      char wb[16];
      bad = !x || (size_t)(x - val) >= sizeof wb;
      if (!bad) {
        memcpy(wb, val, (size_t)(x - val));
        wb[x - val] = '\0';
        bad = parse_u32(wb, 1, 1u << 20, &s->w) ||
              parse_u32(x + 1, 1, 1u << 20, &s->h);
      }
    } else if (!strcmp(name, "--iter")) {
      bad = parse_u32(val, 1, 100000000, &s->iter);
    } else if (!strcmp(name, "--tile")) {
      bad = parse_u32(val, 1, 1u << 20, &s->tile);
    } else if (!strcmp(name, "--frames")) {
      bad = parse_u32(val, 1, 100000, &s->frames);
      s->dir_mode = 1;
    } else if (!strcmp(name, "--center")) {
      char *end;
      bad = parse_double(val, &s->cx, &end) || *end != ',' ||
            parse_double(end + 1, &s->cy, NULL);
    } else if (!strcmp(name, "--zoom")) {
      bad = parse_double(val, &s->zoom, NULL) || !(s->zoom > 0);
    } else if (!strcmp(name, "--zoom-step")) {
      bad = parse_double(val, &s->step, NULL) || !(s->step > 0);
    } else if (!strcmp(name, "--compression")) {
      uint32_t c;
      bad = parse_u32(val, 0, 9, &c);
      if (!bad)
        s->png =
            c == 0 ? (image_png_opts_t){0, Z_DEFAULT_STRATEGY, PNG_FILTER_NONE}
            : c == 1 ? (image_png_opts_t){1, Z_HUFFMAN_ONLY, PNG_FILTER_SUB}
            : c == 2 ? (image_png_opts_t){1, Z_RLE, PNG_FILTER_PAETH}
                     : (image_png_opts_t){(int)c, Z_FILTERED, PNG_ALL_FILTERS};
    } else {
      msg(err, "mandel: unknown option '%s'", a);
      goto bad;
    }
    if (bad) {
      msg(err, "mandel: bad value '%s' for %s", val, name);
      goto bad;
    }
  }
  if (!out) {
    msg(err, "mandel: --out is required");
    goto bad;
  }
  if ((uint64_t)s->w * s->h > MANDEL_MAX_PIXELS) {
    msg(err, "mandel: %ux%u is over %llu pixels", s->w, s->h,
        (unsigned long long)MANDEL_MAX_PIXELS);
    goto bad;
  }
  if (!(s->out = strdup(out))) {
    rc = MPC_ENOMEM;
    goto bad;
  }
  if (env->rank == 0) {
    if (s->dir_mode) {
      if (mkdir(s->out, 0777) != 0 && errno != EEXIST) {
        rc = -errno;
        msg(err, "mandel: cannot create %s: %s", s->out, strerror(errno));
        goto bad;
      }
      struct stat st;
      if (stat(s->out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = -ENOTDIR;
        msg(err, "mandel: %s is not a directory", s->out);
        goto bad;
      }
    }
    if (!s->dir_mode) {
      /* Fail now, not after the rendering, if the file cannot be written. */
      char *dir = strdup(s->out);
      if (!dir) {
        rc = MPC_ENOMEM;
        goto bad;
      }
      char *slash = strrchr(dir, '/');
      const char *d = ".";
      if (slash == dir) {
        d = "/";
      } else if (slash) {
        *slash = '\0';
        d = dir;
      }
      int ok = access(d, W_OK | X_OK) == 0;
      int e = errno;
      if (!ok) {
        rc = -e;
        msg(err, "mandel: cannot write into %s: %s", d, strerror(e));
      }
      free(dir);
      if (!ok)
        goto bad;
    }
    if (!(s->fr = calloc(s->frames, sizeof *s->fr))) {
      rc = MPC_ENOMEM;
      goto bad;
    }
  }
  if (!g_palette_ready)
    palette_init();
  *state = s;
  return 0;
bad:
  state_free(s);
  return rc;
}

/* ---- tasks --------------------------------------------------------------- */

static int mandel_next(void *state, mpc_buf_t *input, mpc_buf_t *key) {
  mandel_state_t *s = state;
  if (s->next_frame >= s->frames)
    return 0;
  uint32_t f = s->next_frame, y0 = s->next_row;
  uint32_t rows = s->h - y0 < s->tile ? s->h - y0 : s->tile;
  s->next_row += rows;
  if (s->next_row >= s->h) {
    s->next_row = 0;
    s->next_frame++;
  }
  int rc = mpc_buf_printf(input, "%u %u %u", f, y0, rows);
  if (!rc)
    rc = mpc_buf_printf(key, "frame %u rows %u-%u", f, y0, y0 + rows - 1);
  return rc ? rc : 1;
}

/* Parse "FRAME Y0 ROWS" and check it against the picture. */
static int parse_task(const mandel_state_t *s, const void *in, size_t len,
                      uint32_t *f, uint32_t *y0, uint32_t *rows) {
  char buf[64];
  if (len == 0 || len >= sizeof buf)
    return -1;
  memcpy(buf, in, len);
  buf[len] = '\0';
  char tail;
  if (sscanf(buf, "%u %u %u%c", f, y0, rows, &tail) != 3)
    return -1;
  if (*f >= s->frames || *rows == 0 || *y0 >= s->h || *rows > s->h - *y0)
    return -1;
  return 0;
}

static double frame_zoom(const mandel_state_t *s, uint32_t f) {
  return s->zoom * pow(s->step, (double)f);
}

static int mandel_run(void *state, const void *in, size_t in_len,
                      mpc_buf_t *out) {
  mandel_state_t *s = state;
  uint32_t f, y0, rows;
  if (parse_task(s, in, in_len, &f, &y0, &rows) != 0) {
    mpc_buf_clear(out);
    msg(out, "mandel: malformed task '%.*s'", (int)(in_len < 64 ? in_len : 64),
        (const char *)in);
    return MPC_EFORMAT;
  }
  size_t n = (size_t)rows * s->w * 3;
  mpc_buf_clear(out);
  if (mpc_buf_reserve(out, n) != 0) {
    msg(out, "mandel: out of memory for %u rows", rows);
    return MPC_ENOMEM;
  }
  double zoom = frame_zoom(s, f);
  unsigned char *p = out->data;
  for (uint32_t y = y0; y < y0 + rows; y++)
    for (uint32_t x = 0; x < s->w; x++, p += 3)
      mandel_pixel(s, zoom, x, y, p);
  out->len = n;
  return 0;
}

/* ---- master: assembling and writing
 * ------------------------------------------ */

static void frame_path(const mandel_state_t *s, uint32_t f, mpc_buf_t *p) {
  mpc_buf_clear(p);
  if (s->dir_mode)
    msg(p, "%s/frame_%03u.png", s->out, f);
  else
    msg(p, "%s", s->out);
}

static void frame_drop(frame_t *fr) {
  mpc_buf_t e = MPC_BUF_INIT;
  (void)image_png_writer_close(fr->wr, 0, &e);
  mpc_buf_free(&e);
  fr->wr = NULL;
  free(fr->rgb);
  free(fr->have);
  fr->rgb = fr->have = NULL;
}

/* Hand the bands that are now contiguous from the top to the encoder, so
 * that encoding overlaps the rendering; close the file after the last. */
static void frame_advance(mandel_state_t *s, uint32_t f) {
  frame_t *fr = &s->fr[f];
  uint32_t nbands = (s->h + s->tile - 1) / s->tile;
  mpc_buf_t err = MPC_BUF_INIT;
  while (fr->next_band < nbands && fr->have[fr->next_band]) {
    uint32_t y0 = fr->next_band * s->tile;
    uint32_t rows = s->h - y0 < s->tile ? s->h - y0 : s->tile;
    if (image_png_writer_rows(fr->wr, fr->rgb + (size_t)y0 * s->w * 3, rows,
                              (size_t)s->w * 3, &err) != 0) {
      msg(&s->errors, "frame %u: %s\n", f, mpc_buf_str(&err));
      fr->failed = 1;
      s->write_error = 1;
      frame_drop(fr);
      goto done;
    }
    fr->next_band++;
  }
  if (fr->next_band == nbands) {
    int rc = image_png_writer_close(fr->wr, 1, &err);
    fr->wr = NULL;
    if (rc) {
      msg(&s->errors, "frame %u: %s\n", f, mpc_buf_str(&err));
      fr->failed = 1;
      s->write_error = 1;
    } else {
      fr->written = 1;
      s->frames_written++;
    }
    frame_drop(fr);
  }
done:
  mpc_buf_free(&err);
}

static int mandel_gather(void *state, const mpc_job_result_t *r) {
  mandel_state_t *s = state;
  uint32_t f, y0, rows;
  if (parse_task(s, r->input, r->input_len, &f, &y0, &rows) != 0) {
    msg(&s->errors, "task %s: malformed input\n", r->key);
    s->tiles_failed++;
    return 0;
  }
  frame_t *fr = &s->fr[f];
  size_t n = (size_t)rows * s->w * 3;
  if (r->status != MPC_TASK_OK || r->output_len != n) {
    s->tiles_failed++;
    fr->failed = 1;
    frame_drop(fr);
    if (r->status == MPC_TASK_OK)
      msg(&s->errors, "%s: %s\n", r->key,
          r->resumed ? "done in an earlier run, but its pixels were not kept "
                       "(rerun without --resume)"
                     : "wrong output size");
    else
      msg(&s->errors, "%s: failed (status %d, code %d): %.*s\n", r->key,
          (int)r->status, r->code,
          (int)(r->output_len < 200 ? r->output_len : 200),
          r->output ? (const char *)r->output : "");
    return 0;
  }
  s->tiles_ok++;
  if (fr->failed || y0 % s->tile != 0)
    return 0;
  if (!fr->rgb) {
    uint32_t nbands = (s->h + s->tile - 1) / s->tile;
    mpc_buf_t path = MPC_BUF_INIT, err = MPC_BUF_INIT;
    fr->rgb = malloc((size_t)s->w * s->h * 3);
    fr->have = calloc(nbands, 1);
    if (!fr->rgb || !fr->have) {
      frame_drop(fr);
      return MPC_ENOMEM;
    }
    frame_path(s, f, &path);
    int rc = image_png_writer_open(&fr->wr, mpc_buf_str(&path), s->w, s->h, 3,
                                   8, &s->png, &err);
    if (rc) {
      msg(&s->errors, "frame %u: %s\n", f, mpc_buf_str(&err));
      fr->failed = 1;
      s->write_error = 1;
      frame_drop(fr);
    }
    mpc_buf_free(&path);
    mpc_buf_free(&err);
    if (rc)
      return 0;
  }
  if (fr->have[y0 / s->tile])
    return 0; /* a duplicate (speculative re-run): same pixels */
  memcpy(fr->rgb + (size_t)y0 * s->w * 3, r->output, n);
  fr->have[y0 / s->tile] = 1;
  fr->rows_done += rows;
  frame_advance(s, f);
  return 0;
}

static int mandel_finish(void *state, const mpc_job_report_t *rep) {
  mandel_state_t *s = state;
  (void)rep;
  if (s->dir_mode)
    printf("mandel: %" PRIu64 " of %u frames written to %s/ (%ux%u, %u "
           "iterations)\n",
           s->frames_written, s->frames, s->out, s->w, s->h, s->iter);
  else
    printf("mandel: %s %s (%ux%u, %u iterations)\n",
           s->frames_written ? "wrote" : "could not write", s->out, s->w, s->h,
           s->iter);
  printf("mandel: %" PRIu64 " bands rendered, %" PRIu64 " failed\n",
         s->tiles_ok, s->tiles_failed);
  uint64_t missing = 0;
  for (uint32_t f = 0; f < s->frames; f++)
    if (!s->fr[f].written) {
      missing++;
      if (!s->fr[f].failed && !s->write_error)
        msg(&s->errors, "frame %u: incomplete (%u of %u rows)\n", f,
            s->fr[f].rows_done, s->h);
    }
  if (s->errors.len)
    printf("mandel: problems:\n%s", mpc_buf_str(&s->errors));
  fflush(stdout);
  return missing ? MPC_EIO : 0;
}

static void mandel_fini(void *state) { state_free(state); }

const mpc_job_t mpc_job_mandel = {
    .abi = MPC_JOB_ABI_VERSION,
    .flags = MPC_JOB_IDEMPOTENT,
    .name = "mandel",
    .brief = "render the Mandelbrot set to PNG (uneven tiles)",
    .usage = g_usage,
    .init = mandel_init,
    .next = mandel_next,
    .run = mandel_run,
    .gather = mandel_gather,
    .finish = mandel_finish,
    .fini = mandel_fini,
};
MPC_JOB_BUILTIN(mpc_job_mandel);
