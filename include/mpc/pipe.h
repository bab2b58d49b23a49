/**
 * @file pipe.h
 * @brief Duplex message connection between two processes.
 *
 * Created as a pair (an AF_UNIX SOCK_STREAM socketpair, close-on-exec).
 * After fork() each side frees (or closes) the end it does not use.  Each
 * mpc_pipe_send() carries one whole message of 0 bytes up to
 * MPC_PIPE_MAX_MSG bytes; mpc_pipe_recv() returns exactly one whole message.
 *
 * Wire format: a 16-byte header — magic "MPCF" (u32), version 1 (u32),
 * payload length (u64), host byte order — then the payload.  A header with a
 * wrong magic, version or a length above MPC_PIPE_MAX_MSG is MPC_EPROTO.
 *
 * Failure behaviour: a peer that closed or died gives MPC_ECLOSED (never a
 * hang, never SIGPIPE: sends use MSG_NOSIGNAL).  If a send or recv times
 * out in the middle of a frame, or a frame is corrupt, the stream is out of
 * step: the connection is marked broken and every later send/recv returns
 * MPC_ESTATE.  A timeout before any byte of a frame moved leaves it usable.
 * EINTR is retried inside with the remaining time.
 */
#ifndef MPC_PIPE_H
#define MPC_PIPE_H

#include <stddef.h>

#include "mpc/buf.h"
#include "mpc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest message accepted by send and recv (1 GiB). */
#define MPC_PIPE_MAX_MSG ((size_t)1 << 30)

typedef struct mpc_pipe mpc_pipe_t;

/**
 * @brief Create a connected pair of ends.
 * @param[out] a,b the two ends; a message sent on one is received on the other
 * @return 0, MPC_EINVAL, MPC_ENOMEM or -errno (socketpair).
 * Ownership: free each end with mpc_pipe_free() (in every process that holds
 * it: after fork, each side frees the end it does not use).
 */
MPC_MUST_CHECK int mpc_pipe_new(mpc_pipe_t **a, mpc_pipe_t **b);

/**
 * @brief Send one message, waiting at most `timeout` seconds for room.
 * @param[in] data bytes to send (may be NULL when len == 0); not retained
 * @return 0, MPC_ECLOSED (peer gone), MPC_ETIMEDOUT, MPC_ETOOBIG
 *         (len > MPC_PIPE_MAX_MSG), MPC_ESTATE (broken or closed end), -errno.
 */
MPC_MUST_CHECK int mpc_pipe_send(mpc_pipe_t *p, const void *data, size_t len,
                                 double timeout);

/**
 * @brief Receive one whole message into `out`, replacing its contents.
 * @param[out] out receives the payload (out->len = message length)
 * @return 0, MPC_ECLOSED (peer closed, possibly mid-message), MPC_ETIMEDOUT,
 *         MPC_EPROTO (corrupt header), MPC_ENOMEM, MPC_ESTATE, -errno.
 */
MPC_MUST_CHECK int mpc_pipe_recv(mpc_pipe_t *p, mpc_buf_t *out,
                                 double timeout);

/**
 * @brief Wait until at least one of `n` connections has something to read
 * (a message, or end of stream: recv will then not block).
 * @param[in]  conns ends to watch (NULL entries and closed ends are skipped)
 * @param[out] ready ready[i] set to 1 if conns[i] is readable, else 0
 * @param[out] nready number of readable ends (may be NULL)
 * @return 0 when at least one is ready, MPC_ETIMEDOUT, MPC_EINVAL, -errno.
 */
MPC_MUST_CHECK int mpc_pipe_poll(mpc_pipe_t *const *conns, size_t n,
                                 int *ready, size_t *nready, double timeout);

/** @brief Close this end's descriptor but keep the handle (later calls
 *  return MPC_ESTATE); the peer then sees MPC_ECLOSED.  Idempotent. */
void mpc_pipe_close(mpc_pipe_t *p);

/** @brief Close (if needed) and release an end (NULL is fine). */
void mpc_pipe_free(mpc_pipe_t *p);

/** @brief The underlying descriptor (-1 once closed), for external loops. */
int mpc_pipe_fd(const mpc_pipe_t *p);

/** @brief 1 if the end was marked broken by a mid-frame timeout or a
 *  corrupt frame, else 0. */
int mpc_pipe_is_broken(const mpc_pipe_t *p);

#ifdef __cplusplus
}
#endif
#endif /* MPC_PIPE_H */
