/* Progress bar: done/total, percent, rate, elapsed, ETA, failures.  Redrawn at
 * most ten times a second, only on a terminal unless forced. */
#include "pool/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void mpc_progress_start(mpc_progress_bar_t *b, mpc_progress_t mode,
                        uint64_t total) {
  memset(b, 0, sizeof *b);
  b->on = mode == MPC_PROGRESS_FORCE ||
          (mode == MPC_PROGRESS_AUTO && isatty(STDERR_FILENO));
  b->total = total;
  b->t0 = b->last = mono();
}

static void fmt_time(char *out, size_t n, double s) {
  if (s < 0 || s > 359999)
    snprintf(out, n, "--:--");
  else if (s >= 3600)
    snprintf(out, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60,
             (int)s % 60);
  else
    snprintf(out, n, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void fmt_rate(char *out, size_t n, double r) {
  if (r >= 1e6)
    snprintf(out, n, "%.2fM/s", r / 1e6);
  else if (r >= 1e3)
    snprintf(out, n, "%.1fk/s", r / 1e3);
  else
    snprintf(out, n, "%.1f/s", r);
}

int mpc_progress_format(const mpc_progress_bar_t *b, double now, char *buf,
                        int size) {
  double el = now - b->t0;
  double rate = el > 0 ? (double)b->done / el : 0;
  char r[32], e[32], eta[32];
  fmt_rate(r, sizeof r, rate);
  fmt_time(e, sizeof e, el);
  if (b->total) {
    double frac = (double)b->done / (double)b->total;
    if (frac > 1)
      frac = 1;
    char bar[32];
    int w = 20, full = (int)(frac * w);
    for (int i = 0; i < w; i++)
      bar[i] = i < full ? '#' : '.';
    bar[w] = 0;
    fmt_time(eta, sizeof eta,
             rate > 0 ? (double)(b->total - b->done) / rate : -1);
    return snprintf(buf, (size_t)size,
                    "%3d%% [%s] %llu/%llu [%s<%s, %s] failed %llu",
                    (int)(frac * 100), bar, (unsigned long long)b->done,
                    (unsigned long long)b->total, e, eta, r,
                    (unsigned long long)b->failed);
  }
  return snprintf(buf, (size_t)size, "%llu done [%s, %s] failed %llu",
                  (unsigned long long)b->done, e, r,
                  (unsigned long long)b->failed);
}

void mpc_progress_draw(mpc_progress_bar_t *b, int force) {
  if (!b->on)
    return;
  double now = mono();
  if (!force && now - b->last < 0.1)
    return;
  b->last = now;
  char line[256];
  int n = mpc_progress_format(b, now, line + 1, (int)sizeof line - 8);
  if (n < 0)
    return;
  if (n > (int)sizeof line - 9)
    n = (int)sizeof line - 9;
  line[0] = '\r';
  memcpy(line + 1 + n, "\033[K", 3); /* clear to end of line */
  ssize_t w = write(STDERR_FILENO, line, (size_t)n + 4);
  (void)w;
  b->drawn = 1;
}

void mpc_progress_end(mpc_progress_bar_t *b) {
  if (!b->on)
    return;
  mpc_progress_draw(b, 1);
  if (b->drawn) {
    ssize_t w = write(STDERR_FILENO, "\n", 1);
    (void)w;
  }
  b->on = 0;
}
