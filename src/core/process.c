/* Child processes: spawn a function, join with a timeout, terminate. */
#include "mpc/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/internal.h"

struct mpc_process {
  pid_t pid;
  pid_t parent; /* the process that spawned it and may reap it */
  int pidfd;    /* -1 when pidfd_open() is unavailable */
  int joined;
  mpc_exit_status_t status;
};

static void decode(int ws, mpc_exit_status_t *st) {
  memset(st, 0, sizeof *st);
  if (WIFEXITED(ws)) {
    st->exited = 1;
    st->code = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    st->signaled = 1;
    st->signo = WTERMSIG(ws);
    st->core_dumped = WCOREDUMP(ws) ? 1 : 0;
  }
}

int mpc_process_spawn(mpc_process_t **out, int (*fn)(void *), void *arg) {
  if (!out)
    return MPC_EINVAL;
  *out = NULL;
  if (!fn)
    return MPC_EINVAL;
  mpc_process_t *p = calloc(1, sizeof *p);
  if (!p)
    return MPC_ENOMEM;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int rc = -errno;
    free(p);
    return rc;
  }
  if (pid == 0)
    _exit(fn(arg) & 0xff);
  p->pid = pid;
  p->parent = getpid();
  /* A pidfd lets join() sleep in poll() until the child ends; the child
   * cannot be reaped (and its pid reused) before we open it. */
  p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (p->pidfd >= 0)
    fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
  else
    p->pidfd = -1;
  *out = p;
  return 0;
}

pid_t mpc_process_pid(const mpc_process_t *p) { return p ? p->pid : -1; }

int mpc_process_join(mpc_process_t *p, double timeout, mpc_exit_status_t *st) {
  if (!p)
    return MPC_EINVAL;
  if (p->parent != getpid())
    return MPC_ESTATE;
  double deadline = mpc__deadline(timeout);
  long backoff_us = 200;
  while (!p->joined) {
    int ws;
    pid_t r = waitpid(p->pid, &ws, WNOHANG);
    if (r == p->pid) {
      decode(ws, &p->status);
      p->joined = 1;
      if (p->pidfd >= 0) {
        close(p->pidfd);
        p->pidfd = -1;
      }
      break;
    }
    if (r < 0 && errno != EINTR)
      return -errno;
    if (r < 0)
      continue;
    double left = mpc__remaining(deadline);
    if (left == 0)
      return MPC_ETIMEDOUT;
    if (p->pidfd >= 0) {
      struct pollfd pfd = {p->pidfd, POLLIN, 0};
      if (poll(&pfd, 1, mpc__poll_ms(deadline)) < 0 && errno != EINTR)
        return -errno;
    } else {
      double nap = (double)backoff_us * 1e-6;
      if (left >= 0 && left < nap)
        nap = left;
      struct timespec ts = mpc__ts_rel(nap);
      nanosleep(&ts, NULL); /* EINTR: just loop */
      if (backoff_us < 10000)
        backoff_us *= 2;
    }
  }
  if (st)
    *st = p->status;
  return 0;
}

int mpc_process_signal(mpc_process_t *p, int sig) {
  if (!p)
    return MPC_EINVAL;
  if (p->joined)
    return MPC_ESTATE;
  return kill(p->pid, sig) < 0 ? -errno : 0;
}

int mpc_process_terminate(mpc_process_t *p, double grace,
                          mpc_exit_status_t *st) {
  if (!p)
    return MPC_EINVAL;
  if (p->parent != getpid())
    return MPC_ESTATE;
  if (!p->joined) {
    kill(p->pid, SIGTERM);
    int rc = mpc_process_join(p, grace < 0 ? 0 : grace, st);
    if (rc != MPC_ETIMEDOUT)
      return rc;
    kill(p->pid, SIGKILL);
  }
  return mpc_process_join(p, -1, st);
}

void mpc_process_free(mpc_process_t *p) {
  if (!p)
    return;
  if (!p->joined && p->parent == getpid()) {
    kill(p->pid, SIGKILL);
    int ws;
    while (waitpid(p->pid, &ws, 0) < 0 && errno == EINTR)
      ;
  }
  if (p->pidfd >= 0)
    close(p->pidfd);
  free(p);
}

int mpc_exit_status_format(const mpc_exit_status_t *st, char *buf,
                           size_t len) {
  if (!st || !buf || len == 0)
    return MPC_EINVAL;
  int n;
  if (st->exited) {
    n = snprintf(buf, len, "exited with code %d", st->code);
  } else if (st->signaled) {
    const char *d = sigdescr_np(st->signo);
    n = snprintf(buf, len, "killed by signal %d (%s)%s", st->signo,
                 d ? d : "unknown signal", st->core_dumped ? ", core dumped" : "");
  } else {
    n = snprintf(buf, len, "unknown status");
  }
  if (n < 0)
    return MPC_EINVAL;
  return (size_t)n >= len ? MPC_ETOOBIG : 0;
}
