/* Internal: per-attempt records kept by the master for --trace FILE (Chrome
 * trace-event JSON, opened by Perfetto and chrome://tracing) and
 * --timeline FILE.png (a Gantt chart drawn with libpng).  Pure functions,
 * unit-tested; the farm only collects the records and calls them at the end. */
#ifndef MPC_MPI_TRACE_H
#define MPC_MPI_TRACE_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "mpc/buf.h"

/* One attempt that ran on a worker.  Times are seconds since the run start
 * (each rank's clock taken right after the start barrier, see farm.c). */
typedef struct mpc__attempt {
  uint64_t seq;
  char *key; /* owned by whoever fills the array; key_len bytes, any bytes */
  size_t key_len;
  int rank, worker, pid, attempt, status, code;
  double start, end;
} mpc__attempt_t;

typedef struct mpc__trace_rank {
  const char *host;
  int workers;
} mpc__trace_rank_t;

/* Append s (n bytes) as a JSON string, quotes included: ", \ and control
 * characters escaped, invalid UTF-8 bytes replaced by U+FFFD. */
MPC_MUST_CHECK int mpc__json_str(mpc_buf_t *b, const void *s, size_t n);

/* The whole trace: {"traceEvents":[...],"displayTimeUnit":"ms",...}. */
MPC_MUST_CHECK int mpc__trace_json(mpc_buf_t *b, const char *job,
                                   const mpc__attempt_t *a, size_t n,
                                   const mpc__trace_rank_t *ranks, int nranks);

/* The same, written to path through a temporary file in the same directory,
 * then rename(); never more than about 1 MiB of it in memory. */
MPC_MUST_CHECK int mpc__trace_write(const char *path, const char *job,
                                    const mpc__attempt_t *a, size_t n,
                                    const mpc__trace_rank_t *ranks, int nranks);

/* Write path through a temporary file in the same directory: emit(fp, ctx)
 * writes the content (0 or a negative code), then the file is renamed into
 * place; on any failure the temporary is removed and path is untouched. */
MPC_MUST_CHECK int mpc__write_file(const char *path,
                                   int (*emit)(FILE *fp, void *ctx), void *ctx);
/* mpc__write_file() of len bytes.  0 or -errno. */
MPC_MUST_CHECK int mpc__write_atomic(const char *path, const void *data, size_t len);
/* Can mpc__write_atomic(path) work?  Creates and removes its temporary file;
 * path itself is not touched.  0 or -errno. */
MPC_MUST_CHECK int mpc__probe_writable(const char *path);

/* ---- the PNG Gantt chart ------------------------------------------------------ */
#define MPC__TL_WIDTH 1200  /* pixels */
#define MPC__TL_LEGEND 16   /* legend band at the top */
#define MPC__TL_SEP 2       /* separator line above each rank and at the bottom */
#define MPC__TL_ROW 14      /* row height per worker (shrinks for huge runs) */
#define MPC__TL_GUTTER 8    /* row marker column at the left */
#define MPC__TL_X0 10       /* first pixel of the time axis */
#define MPC__TL_MAXH 8000   /* rows shrink so that the image stays below this */

typedef struct mpc__tl_img {
  int width, height, row_h;
  unsigned char *rgb; /* width*height*3 */
} mpc__tl_img_t;

/* Colour of a task status (ok green, error orange, crashed red, exited
 * olive, timeout purple, oom brown, canceled grey). */
void mpc__tl_color(int status, unsigned char rgb[3]);
/* Draw the chart.  t_end: the time at the right edge (<= 0: the latest end). */
MPC_MUST_CHECK int mpc__tl_render(mpc__tl_img_t *img, const mpc__attempt_t *a,
                                  size_t n, const mpc__trace_rank_t *ranks,
                                  int nranks, double t_end);
/* Top pixel row of (rank, worker)'s band in an image drawn for `ranks`. */
int mpc__tl_row_y(const mpc__tl_img_t *img, const mpc__trace_rank_t *ranks,
                  int rank, int worker);
void mpc__tl_free(mpc__tl_img_t *img);
/* Render and write as PNG (temp file, then rename).  0 or a negative code. */
MPC_MUST_CHECK int mpc__tl_png(const char *path, const mpc__attempt_t *a, size_t n,
                               const mpc__trace_rank_t *ranks, int nranks,
                               double t_end);

#endif
