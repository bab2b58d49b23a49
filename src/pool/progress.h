/* Internal: the pool's tqdm-like progress bar on stderr. */
#ifndef MPC_POOL_PROGRESS_H
#define MPC_POOL_PROGRESS_H

#include <stdint.h>

#include "mpc/pool.h"

typedef struct mpc_progress_bar {
  int on;
  uint64_t total; /* 0: unknown */
  uint64_t done, failed;
  double t0, last;
  int drawn;
} mpc_progress_bar_t;

/* Start a bar: drawn when mode is FORCE, or AUTO and stderr is a terminal. */
void mpc_progress_start(mpc_progress_bar_t *b, mpc_progress_t mode,
                        uint64_t total);
static inline void mpc_progress_tick(mpc_progress_bar_t *b, int failed) {
  b->done++;
  b->failed += (uint64_t)(failed != 0);
}
static inline int mpc_progress_active(const mpc_progress_bar_t *b) {
  return b->on;
}
/* Redraw if at least 0.1 s passed (or force). */
void mpc_progress_draw(mpc_progress_bar_t *b, int force);
/* Final redraw and newline; the bar is off afterwards. */
void mpc_progress_end(mpc_progress_bar_t *b);
/* Format the bar line into buf (for tests). */
int mpc_progress_format(const mpc_progress_bar_t *b, double now, char *buf,
                        int size);

#endif
