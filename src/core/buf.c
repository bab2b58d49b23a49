/* Growable byte buffer. */
#include "mpc/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mpc_buf_reserve(mpc_buf_t *b, size_t extra) {
  if (extra <= b->cap - b->len)
    return 0;
  if (extra > ((size_t)-1) / 2 - b->len)
    return MPC_ENOMEM;
  size_t want = b->len + extra;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < want)
    cap *= 2;
  unsigned char *p = realloc(b->data, cap);
  if (!p)
    return MPC_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int mpc_buf_append(mpc_buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  int rc = mpc_buf_reserve(b, n);
  if (rc)
    return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int mpc_buf_set(mpc_buf_t *b, const void *p, size_t n) {
  b->len = 0;
  return mpc_buf_append(b, p, n);
}

int mpc_buf_vprintf(mpc_buf_t *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return MPC_EINVAL;
  int rc = mpc_buf_reserve(b, (size_t)n + 1);
  if (rc)
    return rc;
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int mpc_buf_printf(mpc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = mpc_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

const char *mpc_buf_str(mpc_buf_t *b) {
  if (b->len < b->cap) {
    b->data[b->len] = 0;
    return (const char *)b->data;
  }
  if (mpc_buf_reserve(b, 1) == 0) {
    b->data[b->len] = 0;
    return (const char *)b->data;
  }
  return "";
}

void mpc_buf_free(mpc_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
