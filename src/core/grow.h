/* Internal: room in a growable array (pointer + capacity). */
#ifndef MPC_CORE_GROW_H
#define MPC_CORE_GROW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpc/error.h"

/* Make *pp (a pointer to any array pointer, e.g. &s->items) hold at least
 * `need` elements of `size` bytes, doubling *cap from `first`.  The array
 * keeps its contents; 0 or MPC_ENOMEM (then nothing changed). */
static inline int mpc__grow(void *pp, size_t *cap, size_t need, size_t size,
                            size_t first) {
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap : first;
  while (nc < need) {
    if (nc > SIZE_MAX / 2)
      return MPC_ENOMEM;
    nc *= 2;
  }
  if (nc > SIZE_MAX / size)
    return MPC_ENOMEM;
  void *p;
  memcpy(&p, pp, sizeof p);
  void *np = realloc(p, nc * size);
  if (!np)
    return MPC_ENOMEM;
  memcpy(pp, &np, sizeof np);
  *cap = nc;
  return 0;
}

#endif
