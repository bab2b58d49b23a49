/* --timeline FILE.png: a Gantt chart of every attempt, drawn with libpng.
 *
 * Layout (no text; see docs/mpc-run.md):
 *   - top MPC__TL_LEGEND px: the legend, one 24x10 swatch per status in the
 *     order ok, error, crashed, exited, timeout, oom, canceled;
 *   - per rank: a MPC__TL_SEP px dark separator, then one row per worker
 *     (MPC__TL_ROW px, fewer for runs with thousands of workers); a final
 *     separator at the bottom;
 *   - each row starts with a MPC__TL_GUTTER px marker, two shades of blue
 *     alternating by worker, so rows can be counted;
 *   - x from MPC__TL_X0 to the right edge is time, 0 to the end of the run,
 *     linear; each attempt is a bar in its status colour, at least 1 px wide,
 *     with a darker first column so back-to-back attempts stay apart. */
#include "mpi/trace.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpc/error.h"
#include "mpc/pool.h"

static const unsigned char k_bg[3] = {255, 255, 255};
static const unsigned char k_sep[3] = {64, 64, 64};
static const unsigned char k_gut[2][3] = {{80, 112, 160}, {144, 176, 224}};

void mpc__tl_color(int status, unsigned char rgb[3]) {
  static const unsigned char c[][3] = {
      [MPC_TASK_OK] = {44, 160, 44},      [MPC_TASK_ERROR] = {255, 127, 14},
      [MPC_TASK_CRASHED] = {214, 39, 40}, [MPC_TASK_EXITED] = {188, 189, 34},
      [MPC_TASK_TIMEOUT] = {148, 103, 189}, [MPC_TASK_OOM] = {140, 86, 75},
      [MPC_TASK_CANCELED] = {127, 127, 127},
  };
  if (status < 0 || status > MPC_TASK_CANCELED)
    status = MPC_TASK_CANCELED;
  memcpy(rgb, c[status], 3);
}

static void fill(mpc__tl_img_t *img, int x0, int y0, int x1, int y1,
                 const unsigned char c[3]) {
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > img->width) x1 = img->width;
  if (y1 > img->height) y1 = img->height;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      memcpy(img->rgb + ((size_t)y * (size_t)img->width + (size_t)x) * 3, c, 3);
}

static int total_rows(const mpc__trace_rank_t *ranks, int nranks) {
  int n = 0;
  for (int r = 0; r < nranks; r++)
    n += ranks[r].workers > 0 ? ranks[r].workers : 0;
  return n;
}

int mpc__tl_row_y(const mpc__tl_img_t *img, const mpc__trace_rank_t *ranks,
                  int rank, int worker) {
  int y = MPC__TL_LEGEND;
  for (int r = 0; r < rank; r++)
    y += MPC__TL_SEP + (ranks[r].workers > 0 ? ranks[r].workers : 0) * img->row_h;
  return y + MPC__TL_SEP + worker * img->row_h;
}

void mpc__tl_free(mpc__tl_img_t *img) {
  free(img->rgb);
  memset(img, 0, sizeof *img);
}

int mpc__tl_render(mpc__tl_img_t *img, const mpc__attempt_t *a, size_t n,
                   const mpc__trace_rank_t *ranks, int nranks, double t_end) {
  memset(img, 0, sizeof *img);
  int rows = total_rows(ranks, nranks);
  int fixed = MPC__TL_LEGEND + (nranks + 1) * MPC__TL_SEP;
  int row_h = MPC__TL_ROW;
  if (rows > 0 && fixed + rows * row_h > MPC__TL_MAXH)
    row_h = (MPC__TL_MAXH - fixed) / rows;
  if (row_h < 1)
    row_h = 1;
  img->row_h = row_h;
  img->width = MPC__TL_WIDTH;
  img->height = fixed + rows * row_h;
  img->rgb = malloc((size_t)img->width * (size_t)img->height * 3);
  if (!img->rgb)
    return MPC_ENOMEM;
  fill(img, 0, 0, img->width, img->height, k_bg);
  /* Legend. */
  for (int s = 0; s <= MPC_TASK_CANCELED; s++) {
    unsigned char c[3];
    mpc__tl_color(s, c);
    fill(img, MPC__TL_X0 + s * 32, 3, MPC__TL_X0 + s * 32 + 24, 13, c);
  }
  /* Separators and row markers. */
  for (int r = 0; r < nranks; r++) {
    int y = mpc__tl_row_y(img, ranks, r, 0) - MPC__TL_SEP;
    fill(img, 0, y, img->width, y + MPC__TL_SEP, k_sep);
    for (int w = 0; w < ranks[r].workers; w++) {
      int ry = mpc__tl_row_y(img, ranks, r, w);
      fill(img, 0, ry, MPC__TL_GUTTER, ry + row_h, k_gut[w & 1]);
    }
  }
  fill(img, 0, img->height - MPC__TL_SEP, img->width, img->height, k_sep);
  /* Bars. */
  if (t_end <= 0)
    for (size_t i = 0; i < n; i++)
      if (a[i].end > t_end)
        t_end = a[i].end;
  if (t_end <= 0)
    t_end = 1;
  double span = (double)(img->width - MPC__TL_X0);
  int pad = row_h >= 6 ? 2 : 0;
  for (size_t i = 0; i < n; i++) {
    const mpc__attempt_t *e = &a[i];
    if (e->rank < 0 || e->rank >= nranks || e->worker < 0 ||
        e->worker >= ranks[e->rank].workers)
      continue;
    double s = e->start < 0 ? 0 : e->start, d = e->end < s ? s : e->end;
    int x0 = MPC__TL_X0 + (int)(s / t_end * span);
    int x1 = MPC__TL_X0 + (int)(d / t_end * span);
    if (x0 >= img->width)
      x0 = img->width - 1;
    if (x1 <= x0)
      x1 = x0 + 1;
    int y = mpc__tl_row_y(img, ranks, e->rank, e->worker);
    unsigned char c[3], dk[3];
    mpc__tl_color(e->status, c);
    fill(img, x0, y + pad, x1, y + row_h - pad, c);
    if (x1 - x0 >= 3) {
      for (int k = 0; k < 3; k++)
        dk[k] = (unsigned char)(c[k] * 3 / 5);
      fill(img, x0, y + pad, x0 + 1, y + row_h - pad, dk);
    }
  }
  return 0;
}

static int write_png(FILE *fp, const mpc__tl_img_t *img) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  if (!png)
    return MPC_ENOMEM;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return MPC_ENOMEM;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return MPC_EIO;
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < img->height; y++)
    png_write_row(png, img->rgb + (size_t)y * (size_t)img->width * 3);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return 0;
}

static int png_to_file(FILE *fp, void *ctx) {
  return write_png(fp, ctx);
}

int mpc__tl_png(const char *path, const mpc__attempt_t *a, size_t n,
                const mpc__trace_rank_t *ranks, int nranks, double t_end) {
  mpc__tl_img_t img;
  int rc = mpc__tl_render(&img, a, n, ranks, nranks, t_end);
  if (rc)
    return rc;
  rc = mpc__write_file(path, png_to_file, &img);
  mpc__tl_free(&img);
  return rc;
}
