/**
 * @file log.h
 * @brief Levelled logging with a rank:host:pid prefix.  Quiet by default:
 * nothing is printed below the level set with mpc_log_set_level(), and the
 * library itself only logs at MPC_LOG_DEBUG/TRACE.
 */
#ifndef MPC_LOG_H
#define MPC_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  MPC_LOG_ERROR = 0,
  MPC_LOG_WARN = 1,
  MPC_LOG_INFO = 2,
  MPC_LOG_DEBUG = 3,
  MPC_LOG_TRACE = 4
} mpc_log_level_t;

/** @brief Set the level below which messages are dropped (default: MPC_LOG_WARN,
 *  or the MPC_LOG environment variable: error|warn|info|debug|trace). */
void mpc_log_set_level(mpc_log_level_t level);

/** @brief Current level. */
mpc_log_level_t mpc_log_level(void);

/** @brief Set the rank shown in the prefix (-1: no rank). */
void mpc_log_set_rank(int rank);

/** @brief Write one line to stderr as "[mpc rank:host:pid LEVEL] msg" in a single write(2). */
void mpc_log_write(mpc_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The level is tested before any formatting happens. */
#define MPC_LOG(level, ...)                                                    \
  do {                                                                         \
    if ((int)(level) <= (int)mpc_log_level())                                  \
      mpc_log_write((level), __VA_ARGS__);                                     \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif /* MPC_LOG_H */
