/**
 * @file error.h
 * @brief One error convention for all of mpc.
 *
 * Every call that can fail returns an int: 0 on success or a negative MPC_E*
 * code.  System errors are returned as -errno, so MPC_E* codes live below
 * -1000 to never collide with them.  mpc_strerror() and mpc_err_name() accept
 * both kinds.
 */
#ifndef MPC_ERROR_H
#define MPC_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define MPC_MUST_CHECK __attribute__((warn_unused_result))

/* X-macro: name, value, message.  The enum, mpc_strerror() and mpc_err_name()
 * are all generated from this one list. */
#define MPC_ERRNO_MAP(X)                                                       \
  X(TIMEDOUT, -1001, "timed out")                                              \
  X(CLOSED, -1002, "peer closed the connection")                               \
  X(NOSPC, -1003, "no space left in shared object")                            \
  X(INVAL, -1004, "invalid argument")                                          \
  X(NOMEM, -1005, "out of memory")                                             \
  X(TOOBIG, -1006, "message or item too large")                                \
  X(PROTO, -1007, "protocol error (corrupt frame)")                            \
  X(NOTFOUND, -1008, "not found")                                              \
  X(INTR, -1009, "interrupted")                                                \
  X(STATE, -1010, "operation not valid in this state")                         \
  X(CHILD, -1011, "child process failed to start")                             \
  X(OWNERDEAD, -1012, "lock owner died; state was recovered")                  \
  X(TASK, -1013, "task failed")                                                \
  X(USAGE, -1014, "usage error")                                               \
  X(ABI, -1015, "incompatible ABI version")                                    \
  X(IO, -1016, "input/output error")                                           \
  X(FORMAT, -1017, "malformed input")                                          \
  X(CANCELED, -1018, "canceled")

enum {
#define MPC__ERR_ENUM(name, val, msg) MPC_E##name = (val),
  MPC_ERRNO_MAP(MPC__ERR_ENUM)
#undef MPC__ERR_ENUM
};

/**
 * @brief Human-readable message for an error code.
 * @param[in] err 0, a negative MPC_E* code, or a negative errno.
 * @return A static string; never NULL.  Ownership: the library's, never free.
 */
const char *mpc_strerror(int err);

/**
 * @brief Symbolic name for an error code ("MPC_ETIMEDOUT", "ENOENT", ...).
 * @return A static string; never NULL.
 */
const char *mpc_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* MPC_ERROR_H */
