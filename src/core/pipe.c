/* Framed duplex connections over an AF_UNIX socketpair. */
#include "mpc/pipe.h"

#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/internal.h"

#define FRAME_MAGIC 0x4643504du /* "MPCF" read as little-endian bytes */
#define FRAME_VERSION 1u

typedef struct frame_hdr {
  uint32_t magic;
  uint32_t version;
  uint64_t len;
} frame_hdr_t;

struct mpc_pipe {
  int fd;
  int broken;
};

int mpc_pipe_new(mpc_pipe_t **a, mpc_pipe_t **b) {
  int sv[2] = {-1, -1}, rc = 0;
  mpc_pipe_t *pa = NULL, *pb = NULL;
  if (!a || !b)
    return MPC_EINVAL;
  *a = *b = NULL;
  pa = calloc(1, sizeof *pa);
  pb = calloc(1, sizeof *pb);
  if (!pa || !pb) {
    rc = MPC_ENOMEM;
    goto fail;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    rc = -errno;
    goto fail;
  }
  pa->fd = sv[0];
  pb->fd = sv[1];
  *a = pa;
  *b = pb;
  return 0;
fail:
  free(pa);
  free(pb);
  return rc;
}

/* Wait for `events` on fd until deadline.  0, MPC_ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, double deadline) {
  for (;;) {
    struct pollfd pfd = {fd, events, 0};
    int ms = mpc__poll_ms(deadline);
    int n = poll(&pfd, 1, ms);
    if (n > 0)
      return 0;
    if (n == 0)
      return MPC_ETIMEDOUT;
    if (errno != EINTR)
      return -errno;
  }
}

static int closed_errno(int e) {
  return e == EPIPE || e == ECONNRESET || e == ENOTCONN;
}

int mpc_pipe_send(mpc_pipe_t *p, const void *data, size_t len,
                  double timeout) {
  if (!p || (!data && len))
    return MPC_EINVAL;
  if (p->fd < 0 || p->broken)
    return MPC_ESTATE;
  if (len > MPC_PIPE_MAX_MSG)
    return MPC_ETOOBIG;
  double deadline = mpc__deadline(timeout);
  frame_hdr_t h = {FRAME_MAGIC, FRAME_VERSION, (uint64_t)len};
  size_t total = sizeof h + len, sent = 0;
  while (sent < total) {
    struct iovec iov[2];
    int niov = 0;
    if (sent < sizeof h) {
      iov[niov].iov_base = (char *)&h + sent;
      iov[niov++].iov_len = sizeof h - sent;
      if (len) {
        iov[niov].iov_base = (void *)data;
        iov[niov++].iov_len = len;
      }
    } else {
      iov[niov].iov_base = (char *)data + (sent - sizeof h);
      iov[niov++].iov_len = total - sent;
    }
    struct msghdr m = {0};
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)niov;
    ssize_t n = sendmsg(p->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && closed_errno(errno))
      return MPC_ECLOSED;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      int rc = -errno;
      if (sent)
        p->broken = 1;
      return rc;
    }
    int rc = wait_fd(p->fd, POLLOUT, deadline);
    if (rc) {
      if (sent)
        p->broken = 1; /* half a frame is on the wire */
      return rc;
    }
  }
  return 0;
}

/* Read exactly n bytes.  *got counts bytes read so far (for the caller to
 * know whether a frame was started).  0, MPC_ECLOSED, MPC_ETIMEDOUT, -errno. */
static int read_full(int fd, void *buf, size_t n, double deadline,
                     size_t *got) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = recv(fd, (char *)buf + off, n - off, MSG_DONTWAIT);
    if (r > 0) {
      off += (size_t)r;
      *got += (size_t)r;
      continue;
    }
    if (r == 0)
      return MPC_ECLOSED;
    if (errno == EINTR)
      continue;
    if (closed_errno(errno))
      return MPC_ECLOSED;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    int rc = wait_fd(fd, POLLIN, deadline);
    if (rc)
      return rc;
  }
  return 0;
}

int mpc_pipe_recv(mpc_pipe_t *p, mpc_buf_t *out, double timeout) {
  if (!p || !out)
    return MPC_EINVAL;
  if (p->fd < 0 || p->broken)
    return MPC_ESTATE;
  double deadline = mpc__deadline(timeout);
  frame_hdr_t h;
  size_t got = 0;
  out->len = 0;
  int rc = read_full(p->fd, &h, sizeof h, deadline, &got);
  if (rc)
    goto fail;
  if (h.magic != FRAME_MAGIC || h.version != FRAME_VERSION ||
      h.len > MPC_PIPE_MAX_MSG) {
    rc = MPC_EPROTO;
    goto fail;
  }
  rc = mpc_buf_reserve(out, (size_t)h.len);
  if (rc)
    goto fail;
  rc = read_full(p->fd, out->data, (size_t)h.len, deadline, &got);
  if (rc)
    goto fail;
  out->len = (size_t)h.len;
  return 0;
fail:
  out->len = 0;
  /* A frame was started (or is garbage): the stream is out of step. */
  if (got && rc != MPC_ECLOSED)
    p->broken = 1;
  if (rc == MPC_EPROTO || rc == MPC_ENOMEM)
    p->broken = 1;
  return rc;
}

int mpc_pipe_poll(mpc_pipe_t *const *conns, size_t n, int *ready,
                  size_t *nready, double timeout) {
  if (!conns || !ready || n == 0 || n > 65536)
    return MPC_EINVAL;
  struct pollfd *pfd = calloc(n, sizeof *pfd);
  if (!pfd)
    return MPC_ENOMEM;
  double deadline = mpc__deadline(timeout);
  int rc;
  size_t valid = 0;
  for (size_t i = 0; i < n; i++) {
    pfd[i].fd = conns[i] && !conns[i]->broken ? conns[i]->fd : -1;
    pfd[i].events = POLLIN;
    ready[i] = 0;
    valid += pfd[i].fd >= 0;
  }
  if (!valid) {
    rc = MPC_EINVAL; /* nothing could ever become ready */
    goto out;
  }
  for (;;) {
    int k = poll(pfd, (nfds_t)n, mpc__poll_ms(deadline));
    if (k > 0)
      break;
    if (k == 0) {
      rc = MPC_ETIMEDOUT;
      goto out;
    }
    if (errno != EINTR) {
      rc = -errno;
      goto out;
    }
  }
  size_t cnt = 0;
  for (size_t i = 0; i < n; i++) {
    if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
      ready[i] = 1;
      cnt++;
    }
  }
  if (nready)
    *nready = cnt;
  rc = cnt ? 0 : MPC_ETIMEDOUT;
out:
  free(pfd);
  return rc;
}

void mpc_pipe_close(mpc_pipe_t *p) {
  if (p && p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
}

void mpc_pipe_free(mpc_pipe_t *p) {
  if (!p)
    return;
  mpc_pipe_close(p);
  free(p);
}

int mpc_pipe_fd(const mpc_pipe_t *p) { return p ? p->fd : -1; }

int mpc_pipe_is_broken(const mpc_pipe_t *p) { return p ? p->broken : 0; }
