/**
 * @file shm.h
 * @brief Typed shared memory: a single shared value and a fixed-length shared
 * array, each with its own robust process-shared lock.
 *
 * Element types: MPC_SHM_INT64, MPC_SHM_DOUBLE, or MPC_SHM_BYTES (raw
 * elements of a size given at creation).  Loads, stores and the int64
 * add-and-fetch are atomic (lock-free, __atomic builtins); the lock is for
 * callers that need several operations to appear as one.
 *
 * Two ways to share:
 *  - anonymous (mpc_value_new(), mpc_array_new()): MAP_SHARED memory that
 *    children forked after creation inherit;
 *  - named (mpc_*_create() / mpc_*_open()): POSIX shared memory "/mpc-...",
 *    mode 0600, for unrelated processes.  The name is unlinked when the last
 *    handle is freed, or as soon as `expected_opens` opens have happened
 *    (whichever is first), so a killed process cannot leave it behind once
 *    everyone has attached.
 *
 * Ownership: handles are allocated by the library and released with the
 * matching *_free(), which unmaps.  A child that inherited a handle across
 * fork() may use it and free it (it only unmaps; the reference count belongs
 * to the process that created or opened the handle).
 */
#ifndef MPC_SHM_H
#define MPC_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Element type of a shared value or array. */
typedef enum mpc_shm_type {
  MPC_SHM_INT64 = 1,  /**< int64_t elements */
  MPC_SHM_DOUBLE = 2, /**< double elements */
  MPC_SHM_BYTES = 3   /**< raw elements of a caller-chosen size */
} mpc_shm_type_t;

typedef struct mpc_value mpc_value_t;
typedef struct mpc_array mpc_array_t;

/* ------------------------------------------------------------- value -- */

/**
 * @brief Create an anonymous shared value, zero-initialised.
 * @param[out] out       the new handle
 * @param[in]  type      element type
 * @param[in]  elem_size bytes for MPC_SHM_BYTES (1..2^30); ignored otherwise
 * @return 0, MPC_EINVAL, MPC_ENOMEM or -errno (mmap).
 * Ownership: free with mpc_value_free().
 */
MPC_MUST_CHECK int mpc_value_new(mpc_value_t **out, mpc_shm_type_t type,
                                 size_t elem_size);

/**
 * @brief Create a named shared value ("/mpc-..." , mode 0600).
 * @param[in] name           "/mpc-" followed by 1..195 characters, no '/'
 * @param[in] expected_opens unlink the name after this many mpc_value_open()
 *                           calls (0: only when the last handle is freed)
 * @return 0, MPC_EINVAL, MPC_ENOMEM, -EEXIST or -errno.
 */
MPC_MUST_CHECK int mpc_value_create(mpc_value_t **out, const char *name,
                                    mpc_shm_type_t type, size_t elem_size,
                                    unsigned expected_opens);

/**
 * @brief Open a named shared value created by mpc_value_create().
 * @return 0, -ENOENT (no such object), MPC_EINVAL (bad name or not a
 *         value), MPC_ENOMEM or -errno.
 */
MPC_MUST_CHECK int mpc_value_open(mpc_value_t **out, const char *name);

/** @brief Unmap and release the handle (NULL is fine).  See file comment. */
void mpc_value_free(mpc_value_t *v);

/**
 * @brief Take the value's lock, waiting at most `timeout` seconds.
 * @return 0; MPC_EOWNERDEAD when the previous holder died while holding it
 *         (the lock IS held now and has been made consistent; the value may
 *         hold a half-done update); MPC_ETIMEDOUT; -errno.
 */
MPC_MUST_CHECK int mpc_value_lock(mpc_value_t *v, double timeout);

/** @brief Release the lock. @return 0 or -errno (e.g. -EPERM if not held). */
MPC_MUST_CHECK int mpc_value_unlock(mpc_value_t *v);

/** @brief Atomic load of an MPC_SHM_INT64 value. @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_value_get_i64(const mpc_value_t *v, int64_t *out);
/** @brief Atomic store of an MPC_SHM_INT64 value. @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_value_set_i64(mpc_value_t *v, int64_t x);
/**
 * @brief Lock-free atomic add-and-fetch on an MPC_SHM_INT64 value.
 * @param[out] result the new value (may be NULL)
 * @return 0 or MPC_EINVAL.
 */
MPC_MUST_CHECK int mpc_value_add_i64(mpc_value_t *v, int64_t delta,
                                     int64_t *result);
/** @brief Atomic load of an MPC_SHM_DOUBLE value. @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_value_get_f64(const mpc_value_t *v, double *out);
/** @brief Atomic store of an MPC_SHM_DOUBLE value. @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_value_set_f64(mpc_value_t *v, double x);

/** @brief Address of the value in this process (any type); valid until
 *  mpc_value_free().  Use the lock for non-atomic access. */
void *mpc_value_ptr(mpc_value_t *v);
/** @brief Size of the value in bytes. */
size_t mpc_value_size(const mpc_value_t *v);

/* ------------------------------------------------------------- array -- */

/**
 * @brief Create an anonymous shared array of `n` zeroed elements.
 * @param[in] n number of elements (>= 1)
 * @return 0, MPC_EINVAL, MPC_ENOMEM or -errno.
 * Ownership: free with mpc_array_free().
 */
MPC_MUST_CHECK int mpc_array_new(mpc_array_t **out, mpc_shm_type_t type,
                                 size_t elem_size, size_t n);

/** @brief Named flavour of mpc_array_new(); see mpc_value_create(). */
MPC_MUST_CHECK int mpc_array_create(mpc_array_t **out, const char *name,
                                    mpc_shm_type_t type, size_t elem_size,
                                    size_t n, unsigned expected_opens);

/** @brief Open a named array. @return as mpc_value_open(). */
MPC_MUST_CHECK int mpc_array_open(mpc_array_t **out, const char *name);

/** @brief Unmap and release the handle (NULL is fine). */
void mpc_array_free(mpc_array_t *a);

/** @brief Take the array's lock; returns as mpc_value_lock(). */
MPC_MUST_CHECK int mpc_array_lock(mpc_array_t *a, double timeout);
/** @brief Release the array's lock. @return 0 or -errno. */
MPC_MUST_CHECK int mpc_array_unlock(mpc_array_t *a);

/** @brief Number of elements. */
size_t mpc_array_len(const mpc_array_t *a);
/** @brief Element size in bytes. */
size_t mpc_array_elem_size(const mpc_array_t *a);
/** @brief Address of element 0 in this process; valid until free. */
void *mpc_array_data(mpc_array_t *a);

/** @brief Atomic load of element i (INT64). @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_get_i64(const mpc_array_t *a, size_t i,
                                     int64_t *out);
/** @brief Atomic store of element i (INT64). @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_set_i64(mpc_array_t *a, size_t i, int64_t x);
/** @brief Lock-free add-and-fetch on element i (INT64). @return 0 or
 *  MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_add_i64(mpc_array_t *a, size_t i, int64_t delta,
                                     int64_t *result);
/** @brief Atomic load of element i (DOUBLE). @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_get_f64(const mpc_array_t *a, size_t i,
                                     double *out);
/** @brief Atomic store of element i (DOUBLE). @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_set_f64(mpc_array_t *a, size_t i, double x);
/** @brief Copy element i (any type, elem_size bytes) out; not atomic for
 *  BYTES: hold the lock if writers may be active. @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_get(const mpc_array_t *a, size_t i, void *out);
/** @brief Copy elem_size bytes into element i. @return 0 or MPC_EINVAL. */
MPC_MUST_CHECK int mpc_array_set(mpc_array_t *a, size_t i, const void *in);

/* ------------------------------------------------------------ naming -- */

/**
 * @brief Remove the name of a named mpc object (value, array, queue or dict)
 * by hand, e.g. after a crash left it behind.  Mappings stay valid.
 * @return 0, MPC_EINVAL (not an "/mpc-" name), -ENOENT or -errno.
 */
MPC_MUST_CHECK int mpc_shm_unlink(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* MPC_SHM_H */
