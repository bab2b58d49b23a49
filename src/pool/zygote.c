/* The fork server ("zygote").  Started by mpc_pool_new() so that workers,
 * replacements included, are forked from a process that has never called MPI
 * and whose state is the caller's at pool creation.  It forks workers on
 * request, reaps them, and reports each exit status (with peak RSS) to the
 * parent.  It dies with the parent (PR_SET_PDEATHSIG) and, when its control
 * socket closes, kills and reaps every worker before leaving. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool/internal.h"

#define MAX_CHILDREN 4096

static ssize_t send_msg(int fd, const zmsg_t *m, const int *fds, int nfds) {
  struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
  char cbuf[CMSG_SPACE(2 * sizeof(int))];
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  ssize_t n;
  do
    n = sendmsg(fd, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

static ssize_t recv_msg(int fd, zmsg_t *m, int *fds, int *nfds, int flags) {
  struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
  char cbuf[CMSG_SPACE(2 * sizeof(int))];
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = cbuf,
                      .msg_controllen = sizeof cbuf};
  ssize_t n;
  do
    n = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (nfds)
    *nfds = 0;
  if (n > 0 && nfds) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (k > 2)
          k = 2;
        memcpy(fds, CMSG_DATA(c), (size_t)k * sizeof(int));
        *nfds = k;
      }
  }
  return n;
}

__attribute__((noreturn)) static void zygote_main(const worker_cfg_t *cfg,
                                                  int ctl, pid_t parent) {
  pid_t kids[MAX_CHILDREN];
  int nkids = 0;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    _exit(1);
  for (;;) {
    struct pollfd p[2] = {{.fd = ctl, .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    int r = poll(p, 2, 1000);
    if (r < 0 && errno != EINTR)
      break;
    if (getppid() != parent)
      break;
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
    }
    /* Reap on every wake-up: cheap, and never misses a coalesced SIGCHLD. */
    for (;;) {
      int st;
      struct rusage ru;
      pid_t pid = wait4(-1, &st, WNOHANG, &ru);
      if (pid <= 0)
        break;
      for (int i = 0; i < nkids; i++)
        if (kids[i] == pid) {
          kids[i] = kids[--nkids];
          break;
        }
      zmsg_t m = {.type = Z_EXITED, .pid = pid, .status = st,
                  .maxrss_kb = ru.ru_maxrss};
      send_msg(ctl, &m, NULL, 0);
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      zmsg_t m;
      int fds[2] = {-1, -1}, nfds = 0;
      ssize_t n = recv_msg(ctl, &m, fds, &nfds, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN))
        break; /* parent closed: shut down */
      if (n != (ssize_t)sizeof m || m.type != Z_SPAWN || nfds != 2) {
        for (int i = 0; i < nfds; i++)
          close(fds[i]);
        continue;
      }
      pid_t pid = nkids < MAX_CHILDREN ? fork() : (errno = EAGAIN, -1);
      if (pid == 0) {
        close(ctl);
        close(sfd);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        mpc__worker_main(cfg, m.slot, fds[0], fds[1]);
      }
      zmsg_t rep = {.slot = m.slot, .gen = m.gen};
      if (pid < 0) {
        rep.type = Z_SPAWN_FAILED;
        rep.status = -errno;
      } else {
        rep.type = Z_SPAWNED;
        rep.pid = pid;
        kids[nkids++] = pid;
      }
      close(fds[0]);
      close(fds[1]);
      send_msg(ctl, &rep, NULL, 0);
    }
  }
  for (int i = 0; i < nkids; i++)
    kill(kids[i], SIGKILL);
  while (wait(NULL) > 0 || errno == EINTR) {
  }
  _exit(0);
}

int mpc__zygote_start(const worker_cfg_t *cfg, pid_t *pid_out, int *ctl_out) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return -e;
  }
  if (pid == 0) {
    close(sv[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(0);
    /* Own process group: a terminal's ^C goes to the parent, which decides. */
    setpgid(0, 0);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    zygote_main(cfg, sv[1], parent);
  }
  close(sv[1]);
  *pid_out = pid;
  *ctl_out = sv[0];
  return 0;
}

int mpc__zygote_spawn(int ctl, int slot, uint64_t gen, int memfd, int sock) {
  zmsg_t m = {.type = Z_SPAWN, .slot = slot, .gen = gen};
  int fds[2] = {memfd, sock};
  return send_msg(ctl, &m, fds, 2) == (ssize_t)sizeof m ? 0 : -errno;
}

int mpc__zygote_recv(int ctl, zmsg_t *m) {
  ssize_t n = recv_msg(ctl, m, NULL, NULL, MSG_DONTWAIT);
  if (n == (ssize_t)sizeof *m)
    return 1;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return 0;
  return n == 0 ? MPC_ECLOSED : (n < 0 ? -errno : MPC_EPROTO);
}
