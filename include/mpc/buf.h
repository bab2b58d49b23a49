/**
 * @file buf.h
 * @brief Growable byte buffer: how task inputs, outputs and error messages move.
 *
 * A value type, not an opaque handle, so that hot paths can append without a
 * call.  Ownership: the buffer owns `data` (malloc'd); mpc_buf_free() releases
 * it.  `data` may move on any append or reserve, so never keep pointers into it
 * across those calls.  A zero-initialised mpc_buf_t (MPC_BUF_INIT) is a valid
 * empty buffer.
 */
#ifndef MPC_BUF_H
#define MPC_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpc_buf {
  unsigned char *data; /**< bytes; NULL when cap == 0 */
  size_t len;          /**< bytes in use */
  size_t cap;          /**< bytes allocated */
} mpc_buf_t;

#define MPC_BUF_INIT {NULL, 0, 0}

/** @brief Make room for at least `extra` more bytes. @return 0 or MPC_ENOMEM. */
MPC_MUST_CHECK int mpc_buf_reserve(mpc_buf_t *b, size_t extra);

/** @brief Append `n` bytes from `p` (p may be NULL when n == 0). @return 0 or MPC_ENOMEM. */
MPC_MUST_CHECK int mpc_buf_append(mpc_buf_t *b, const void *p, size_t n);

/** @brief Replace the contents with `n` bytes from `p`. @return 0 or MPC_ENOMEM. */
MPC_MUST_CHECK int mpc_buf_set(mpc_buf_t *b, const void *p, size_t n);

/** @brief Append printf-formatted text (no NUL counted in len, but one is kept after it). */
MPC_MUST_CHECK int mpc_buf_printf(mpc_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief vprintf flavour of mpc_buf_printf(). */
MPC_MUST_CHECK int mpc_buf_vprintf(mpc_buf_t *b, const char *fmt, va_list ap);

/** @brief Forget the contents, keep the allocation. */
static inline void mpc_buf_clear(mpc_buf_t *b) { b->len = 0; }

/** @brief Contents as a NUL-terminated string (adds a NUL after len if room
 *  allows, else returns ""); valid until the next change. */
const char *mpc_buf_str(mpc_buf_t *b);

/** @brief Release the allocation and reset to empty. Safe on an empty buffer. */
void mpc_buf_free(mpc_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif /* MPC_BUF_H */
