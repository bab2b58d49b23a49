/**
 * @file dict.h
 * @brief Shared dictionary: string keys to byte values, in shared memory,
 * with a fixed capacity (entries and bytes) chosen at creation.
 *
 * Keys are NUL-terminated strings (1..65535 bytes, the NUL is not stored);
 * values are byte strings (0 bytes allowed).  `max_bytes` bounds the sum of
 * key and value bytes of live entries; space freed by deletes and overwrites
 * is reclaimed by compaction.  When an operation would exceed the capacity
 * it fails with MPC_ENOSPC and the dict is unchanged.
 *
 * Robustness: one robust process-shared mutex guards the dict.  Every change
 * writes its bytes into unused space and is published with a journaled
 * commit; compaction builds a second copy and switches to it with one
 * store.  So if a process dies while holding the lock, the next locker sees
 * either the old or the new entry, never a torn one.
 *
 * Sharing and ownership as in queue.h: mpc_dict_new() is anonymous
 * (inherited across fork); mpc_dict_create()/mpc_dict_open() use a
 * "/mpc-..." name (mode 0600).  Handles are released with mpc_dict_free().
 * Memory used: about 2 * (max_bytes + 96 * max_entries) bytes.
 */
#ifndef MPC_DICT_H
#define MPC_DICT_H

#include <stddef.h>

#include "mpc/buf.h"
#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpc_dict mpc_dict_t;

/**
 * @brief Create an anonymous shared dict.
 * @param[in] max_entries most live entries (1..2^24)
 * @param[in] max_bytes   most key+value bytes of live entries (>= 1)
 * @return 0, MPC_EINVAL, MPC_ENOMEM, -errno.
 * Ownership: free with mpc_dict_free().
 */
MPC_MUST_CHECK int mpc_dict_new(mpc_dict_t **out, size_t max_entries,
                                size_t max_bytes);

/** @brief Named flavour ("/mpc-...", mode 0600); `expected_opens` as in
 *  shm.h. @return 0, MPC_EINVAL, MPC_ENOMEM, -EEXIST, -errno. */
MPC_MUST_CHECK int mpc_dict_create(mpc_dict_t **out, const char *name,
                                   size_t max_entries, size_t max_bytes,
                                   unsigned expected_opens);

/** @brief Open a named dict. @return 0, -ENOENT, MPC_EINVAL, -errno. */
MPC_MUST_CHECK int mpc_dict_open(mpc_dict_t **out, const char *name);

/** @brief Unmap and release the handle (NULL is fine). */
void mpc_dict_free(mpc_dict_t *d);

/**
 * @brief Insert or replace `key` -> `val` (copied).
 * @return 0; MPC_ENOSPC (no room for it in entries or bytes: dict
 *         unchanged); MPC_ETOOBIG (key+value larger than max_bytes);
 *         MPC_EINVAL; -errno.
 */
MPC_MUST_CHECK int mpc_dict_set(mpc_dict_t *d, const char *key,
                                const void *val, size_t len);

/**
 * @brief Copy the value of `key` into `out` (contents replaced).
 * @return 0, MPC_ENOTFOUND, MPC_ENOMEM, MPC_EINVAL, -errno.
 */
MPC_MUST_CHECK int mpc_dict_get(mpc_dict_t *d, const char *key,
                                mpc_buf_t *out);

/** @brief Remove `key`. @return 0, MPC_ENOTFOUND, MPC_EINVAL, -errno. */
MPC_MUST_CHECK int mpc_dict_delete(mpc_dict_t *d, const char *key);

/** @brief Number of entries. @return 0, MPC_EINVAL, -errno. */
MPC_MUST_CHECK int mpc_dict_len(mpc_dict_t *d, size_t *out);

/**
 * @brief Iterate: start with *cursor = 0; each call copies one entry's key
 * (as a string: mpc_buf_str(key)) and value and advances the cursor.
 * Entries present for the whole iteration are returned exactly once if no
 * other process changes the dict meanwhile; concurrent changes may make an
 * iteration skip or repeat entries (it never returns a torn one).
 * @param[out] key, val receive the entry (val may be NULL)
 * @return 0 (an entry), MPC_ENOTFOUND (no more), MPC_ENOMEM, MPC_EINVAL.
 */
MPC_MUST_CHECK int mpc_dict_next(mpc_dict_t *d, size_t *cursor,
                                 mpc_buf_t *key, mpc_buf_t *val);

#ifdef __cplusplus
}
#endif
#endif /* MPC_DICT_H */
