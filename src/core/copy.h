/* Copies of the few bytes a typical task input, output or key has, without
 * a call to memcpy.  Internal (the pool and mpc-run), never installed. */
#ifndef MPC_CORE_COPY_H
#define MPC_CORE_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void mpc__copy_small(unsigned char *d, const unsigned char *s, size_t n) {
  if (n > 16) {
    memcpy(d, s, n);
  } else if (n >= 8) { /* two overlapping words */
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(d, &a, 8);
    memcpy(d + n - 8, &b, 8);
  } else {
    for (size_t i = 0; i < n; i++)
      d[i] = s[i];
  }
}

#endif
