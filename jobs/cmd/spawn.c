/* cmd job: run one shell command and capture its output.
 *
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), so the cost does not grow
 * with the worker's size) of /bin/sh -c CMD in a new process group, stdin
 * /dev/null, stdout and stderr into two pipes read with poll() until EOF, so
 * any amount of output on either stream works.  The shell's exit is watched
 * through a pidfd, which lets one poll() loop also enforce the deadline. */
#include "cmd.h"
#include "mpc/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_epoch(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- process-group table ------------------------------------------------------- */

int cmd_pgtab_init(cmd_pgtab_t *t, size_t n) {
  void *p = mmap(NULL, 2 * n * sizeof(pid_t), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -errno;
  t->pg = p;
  t->n = n;
  return 0;
}

/* Is pgid still the group we started?  A group id cannot be reused while the
 * group has members; if its leader is alive it must still lead a group of our
 * session (a recycled pid would rarely be both). */
static int group_is_ours(pid_t pg, pid_t sid_want) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pg);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kill(-pg, 0) == 0; /* leader gone: members may remain */
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0)
    return 0;
  buf[r] = 0;
  const char *p = strrchr(buf, ')'); /* after "pid (comm)" */
  int ppid, pgrp, sid;
  char st;
  if (!p || sscanf(p + 1, " %c %d %d %d", &st, &ppid, &pgrp, &sid) != 4)
    return 0;
  return pgrp == pg && sid == sid_want;
}

void cmd_pgtab_reap(cmd_pgtab_t *t, size_t i) {
  if (!t || !t->pg || i >= t->n)
    return;
  pid_t pg = t->pg[2 * i], sid = t->pg[2 * i + 1];
  if (pg > 0 && group_is_ours(pg, sid))
    kill(-pg, SIGKILL);
  t->pg[2 * i] = 0;
}

void cmd_pgtab_reap_all(cmd_pgtab_t *t) {
  for (size_t i = 0; t && t->pg && i < t->n; i++)
    cmd_pgtab_reap(t, i);
}

void cmd_pgtab_free(cmd_pgtab_t *t) {
  if (t->pg)
    munmap((void *)t->pg, 2 * t->n * sizeof(pid_t));
  t->pg = NULL;
  t->n = 0;
}

/* ---- environment --------------------------------------------------------------- */

static const char *const k_env_names[] = {"MPC_TASK_ID=", "MPC_RANK=",
                                          "MPC_WORKER=", "MPC_HOST="};

char *const *cmd_task_env(uint64_t seq, int rank, int worker,
                          const char *host) {
  /* Built once per process (each worker is its own process). */
  static char **envp;
  static size_t base;
  static char vals[3][32];
  static mpc_buf_t hostvar;
  if (!envp) {
    size_t n = 0;
    while (environ && environ[n])
      n++;
    char **e = malloc((n + 5) * sizeof *e);
    if (!e)
      return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      int skip = 0;
      for (size_t j = 0; j < 4; j++)
        skip |= strncmp(environ[i], k_env_names[j], strlen(k_env_names[j])) == 0;
      if (!skip)
        e[k++] = environ[i];
    }
    base = k;
    envp = e;
  }
  snprintf(vals[0], sizeof vals[0], "MPC_TASK_ID=%llu", (unsigned long long)seq);
  snprintf(vals[1], sizeof vals[1], "MPC_RANK=%d", rank);
  snprintf(vals[2], sizeof vals[2], "MPC_WORKER=%d", worker);
  mpc_buf_clear(&hostvar);
  if (mpc_buf_printf(&hostvar, "MPC_HOST=%s", host ? host : "") != 0)
    return NULL;
  envp[base] = vals[0];
  envp[base + 1] = vals[1];
  envp[base + 2] = vals[2];
  envp[base + 3] = (char *)mpc_buf_str(&hostvar);
  envp[base + 4] = NULL;
  return envp;
}

/* ---- spawning ---------------------------------------------------------------------- */

/* Signals this process ignores: the command gets them back at default (an
 * ignored SIGPIPE would otherwise make `yes | head` spin forever). */
static void ignored_signals(sigset_t *set) {
  static sigset_t cached;
  static int done;
  if (!done) {
    sigemptyset(&cached);
    for (int s = 1; s < NSIG; s++) {
      struct sigaction sa;
      if (s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &sa) == 0 &&
          sa.sa_handler == SIG_IGN)
        sigaddset(&cached, s);
    }
    /* With SIGCHLD ignored, children are reaped by the kernel and the exit
     * status is lost: this process needs it at default. */
    struct sigaction sa;
    if (sigaction(SIGCHLD, NULL, &sa) == 0 &&
        (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT))) {
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = SIG_DFL;
      sigaction(SIGCHLD, &sa, NULL);
    }
    done = 1;
  }
  *set = cached;
}

static int devnull_fd(void) {
  static int fd = -1;
  if (fd < 0) {
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fd <= 2) {
      int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
      close(fd);
      fd = n;
    }
  }
  return fd;
}

/* Keep our descriptors off 0-2 (a worker may run with those closed), so the
 * dup2() actions in the child can never overwrite one another. */
static int lift_fd(int *fd) {
  if (*fd > 2)
    return 0;
  int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  if (n < 0)
    return -errno;
  close(*fd);
  *fd = n;
  return 0;
}

static int pidfd_open_(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/* Read what the pipe holds.  Room grows 4 KiB at a time while the output is
 * small (most commands print a line or nothing), 64 KiB after that.
 * @return 1 (more may come), 0 (EOF), or MPC_ENOMEM. */
static int drain(int fd, mpc_buf_t *b) {
  for (;;) {
    int rc = mpc_buf_reserve(b, b->len < 65536 ? 4096 : 65536);
    if (rc)
      return rc;
    size_t room = b->cap - b->len;
    ssize_t r = read(fd, b->data + b->len, room);
    if (r > 0) {
      b->len += (size_t)r;
      if ((size_t)r < room)
        return 1; /* a short read: the pipe is empty for now */
      continue;
    }
    if (r == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN)
      return 1;
    return 0; /* a read error ends the stream like EOF */
  }
}

static void set_status(cmd_exec_t *ex, int status) {
  if (WIFEXITED(status)) {
    ex->exitval = WEXITSTATUS(status);
    ex->sig = 0;
  } else if (WIFSIGNALED(status)) {
    ex->exitval = 0;
    ex->sig = WTERMSIG(status);
  }
}

/* Start /bin/sh -c cmd with stdout/stderr on the pipes' write ends.
 * @return 0 and *pid, or a positive errno from posix_spawn. */
static int spawn_child(const char *cmd, char *const *envp, int dn, int out_w,
                       int err_w, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, def;
  int rc;
  sigemptyset(&none);
  ignored_signals(&def);
  if ((rc = posix_spawn_file_actions_init(&fa)))
    return rc;
  if ((rc = posix_spawnattr_init(&at))) {
    posix_spawn_file_actions_destroy(&fa);
    return rc;
  }
  /* dup2 onto 0/1/2 clears close-on-exec there; everything else this process
   * has open (pool rings, sockets) is closed in the child. */
  if (!(rc = posix_spawn_file_actions_adddup2(&fa, dn, 0)) &&
      !(rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1)) &&
      !(rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2)) &&
      !(rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) &&
      !(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                               POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF)) &&
      !(rc = posix_spawnattr_setpgroup(&at, 0)) &&
      !(rc = posix_spawnattr_setsigmask(&at, &none)) &&
      !(rc = posix_spawnattr_setsigdefault(&at, &def))) {
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    rc = posix_spawn(pid, "/bin/sh", &fa, &at, argv, envp);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return rc;
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

int cmd_spawn(const char *cmd, char *const *envp, double timeout,
              cmd_pgtab_t *tab, size_t slot, mpc_buf_t *so, mpc_buf_t *se,
              cmd_exec_t *ex) {
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, pfd = -1, rc = 0, status = 0;
  int track = tab && tab->pg && slot < tab->n;
  pid_t pid = -1;
  memset(ex, 0, sizeof *ex);

  /* A group left behind by a worker that was killed in this slot. */
  if (track && tab->pg[2 * slot])
    cmd_pgtab_reap(tab, slot);

  ex->start = now_epoch();
  double t0 = now_mono();
  int dn = devnull_fd();
  if (dn < 0 || pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
    ex->spawn_err = -errno;
    goto out;
  }
  if ((rc = lift_fd(&po[0])) || (rc = lift_fd(&po[1])) || (rc = lift_fd(&pe[0])) ||
      (rc = lift_fd(&pe[1]))) {
    ex->spawn_err = rc;
    rc = 0;
    goto out;
  }
  int src = spawn_child(cmd, envp, dn, po[1], pe[1], &pid);
  if (src) {
    ex->spawn_err = -src;
    goto out;
  }
  /* If the pool kills this worker (--timeout, cancel, stop), it kills the
   * command's whole process group with it. */
  mpc_task_set_pgid(pid);
  if (track) {
    static pid_t my_sid = -1;
    if (my_sid < 0)
      my_sid = getsid(0);
    tab->pg[2 * slot + 1] = my_sid;
    tab->pg[2 * slot] = pid;
  }
  close_fd(&po[1]);
  close_fd(&pe[1]);
  pfd = pidfd_open_(pid);
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);

  int reaped = 0, stage = 0; /* stage 1: TERM sent, 2: KILL sent */
  double deadline = timeout > 0 ? t0 + timeout : 0;
  while (po[0] >= 0 || pe[0] >= 0 || !reaped) {
    struct pollfd fds[3];
    int *fdp[3];
    mpc_buf_t *bufs[3];
    nfds_t n = 0;
    if (po[0] >= 0) {
      fds[n] = (struct pollfd){.fd = po[0], .events = POLLIN};
      bufs[n] = so;
      fdp[n++] = &po[0];
    }
    if (pe[0] >= 0) {
      fds[n] = (struct pollfd){.fd = pe[0], .events = POLLIN};
      bufs[n] = se;
      fdp[n++] = &pe[0];
    }
    if (!reaped && pfd >= 0) {
      fds[n] = (struct pollfd){.fd = pfd, .events = POLLIN};
      bufs[n] = NULL;
      fdp[n++] = &pfd;
    }
    if (n == 0) {
      /* No pidfd (old kernel) and the pipes are closed: wait for the shell. */
      if (!deadline) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
          ;
        reaped = 1;
        continue;
      }
      if (waitpid(pid, &status, WNOHANG) == pid) {
        reaped = 1;
        continue;
      }
      struct timespec ts = {0, 5000000};
      nanosleep(&ts, NULL);
    } else {
      int ms = -1;
      if (deadline) {
        double left = deadline - now_mono();
        ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
      }
      int pr = poll(fds, n, ms);
      if (pr < 0 && errno != EINTR) {
        rc = -errno;
        break;
      }
      for (nfds_t i = 0; pr > 0 && i < n; i++) {
        if (!fds[i].revents)
          continue;
        if (bufs[i]) {
          int d = drain(fds[i].fd, bufs[i]);
          if (d < 0) {
            rc = d;
            break;
          }
          if (d == 0)
            close_fd(fdp[i]);
        } else {
          pid_t w = waitpid(pid, &status, WNOHANG);
          if (w == pid || (w < 0 && errno == ECHILD))
            reaped = 1;
        }
      }
      if (rc)
        break;
    }
    if (deadline && now_mono() >= deadline) {
      if (stage == 0) {
        ex->timed_out = 1;
        kill(-pid, SIGTERM);
        deadline = now_mono() + 0.2;
      } else if (stage == 1) {
        kill(-pid, SIGKILL);
        deadline = now_mono() + 1.0;
      } else {
        /* Something outside the group still holds the pipes: stop reading. */
        close_fd(&po[0]);
        close_fd(&pe[0]);
        deadline = 0;
      }
      stage++;
    }
  }
  if (rc) { /* out of memory or poll failure: do not leave the command behind */
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
  }
  set_status(ex, status);
  if (ex->timed_out) {
    /* As GNU parallel: Exitval -1, Signal the one that ended it. */
    if (!ex->sig)
      ex->sig = SIGTERM;
    ex->exitval = -1;
  }
out:
  ex->runtime = now_mono() - t0;
  close_fd(&po[0]);
  close_fd(&po[1]);
  close_fd(&pe[0]);
  close_fd(&pe[1]);
  close_fd(&pfd);
  if (track)
    tab->pg[2 * slot] = 0;
  if (ex->spawn_err)
    ex->exitval = -1;
  return rc;
}

/* ---- result record ---------------------------------------------------------------- */

static const char k_magic[8] = "MPCCMD1";

/* The record starts with a line of text (space-padded, ending in '\n') that
 * says what happened: mpc-run shows a failed task's first output line in its
 * summary, so that line must read well.  The binary part follows. */
#define TXT CMD_REC_TEXT
#define BIN (CMD_REC_HDR - CMD_REC_TEXT)

int cmd_rec_begin(mpc_buf_t *out) {
  unsigned char z[CMD_REC_HDR] = {0};
  memset(z, ' ', TXT - 1);
  z[TXT - 1] = '\n';
  memcpy(z + TXT, k_magic, 8);
  return mpc_buf_set(out, z, sizeof z);
}

void cmd_exec_describe(const cmd_exec_t *ex, char *buf, size_t n) {
  if (ex->spawn_err == MPC_EINVAL)
    snprintf(buf, n, "the command contains a NUL byte");
  else if (ex->spawn_err)
    snprintf(buf, n, "cannot start /bin/sh: %s", mpc_strerror(ex->spawn_err));
  else if (ex->timed_out)
    snprintf(buf, n, "timed out after %.3f s (signal %d)", ex->runtime, ex->sig);
  else if (ex->sig)
    snprintf(buf, n, "killed by signal %d (%s)", ex->sig, strsignal(ex->sig));
  else if (ex->exitval)
    snprintf(buf, n, "exit status %d", ex->exitval);
  else
    snprintf(buf, n, "ok");
}

int cmd_rec_finish(mpc_buf_t *out, const cmd_exec_t *ex, uint64_t seq,
                   const void *se, size_t se_len, const char *cmd,
                   size_t cmd_len) {
  if (out->len < CMD_REC_HDR)
    return MPC_EINVAL;
  uint64_t so_len = out->len - CMD_REC_HDR, sl = se_len, cl = cmd_len;
  int rc = mpc_buf_reserve(out, se_len + cmd_len);
  if (rc || (rc = mpc_buf_append(out, se, se_len)) ||
      (rc = mpc_buf_append(out, cmd, cmd_len)))
    return rc;
  unsigned char *t = out->data, *h = out->data + TXT;
  char text[TXT];
  cmd_exec_describe(ex, text, sizeof text);
  size_t tl = strlen(text);
  for (size_t i = 0; i < tl; i++)
    if ((unsigned char)text[i] < 0x20)
      text[i] = ' ';
  memset(t, ' ', TXT - 1);
  memcpy(t, text, tl < TXT - 1 ? tl : TXT - 1);
  t[TXT - 1] = '\n';
  int32_t v[4] = {ex->exitval, ex->sig, ex->timed_out, ex->spawn_err};
  memcpy(h, k_magic, 8);
  memcpy(h + 8, v, 16);
  memcpy(h + 24, &ex->start, 8);
  memcpy(h + 32, &ex->runtime, 8);
  memcpy(h + 40, &seq, 8);
  memcpy(h + 48, &so_len, 8);
  memcpy(h + 56, &sl, 8);
  memcpy(h + 64, &cl, 8);
  return 0;
}

int cmd_rec_decode(cmd_rec_t *r, const void *p, size_t len) {
  const unsigned char *h = (const unsigned char *)p + TXT;
  memset(r, 0, sizeof *r);
  if (!p || len < CMD_REC_HDR || ((const char *)p)[TXT - 1] != '\n' ||
      memcmp(h, k_magic, 8) != 0)
    return MPC_EFORMAT;
  int32_t v[4];
  uint64_t so, se, cl;
  memcpy(v, h + 8, 16);
  memcpy(&r->ex.start, h + 24, 8);
  memcpy(&r->ex.runtime, h + 32, 8);
  memcpy(&r->seq, h + 40, 8);
  memcpy(&so, h + 48, 8);
  memcpy(&se, h + 56, 8);
  memcpy(&cl, h + 64, 8);
  size_t body = len - CMD_REC_HDR;
  if (so > body || se > body - so || cl != body - so - se)
    return MPC_EFORMAT;
  r->ex.exitval = v[0];
  r->ex.sig = v[1];
  r->ex.timed_out = v[2];
  r->ex.spawn_err = v[3];
  r->so = (const char *)p + CMD_REC_HDR;
  r->so_len = so;
  r->se = r->so + so;
  r->se_len = se;
  r->cmd = r->se + se;
  r->cmd_len = cl;
  return 0;
}
