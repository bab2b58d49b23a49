/* cmd job: a task farm for shell commands (GNU parallel's model on mpc-run).
 *
 *   mpc-run cmd [options] 'TEMPLATE' ::: ARG... [::: ARG...] [:::: FILE...]
 *   mpc-run cmd [options] 'TEMPLATE' < args          (one argument per line)
 *   mpc-run cmd [options] -a TASKFILE                 (every line a command)
 *
 * The master (rank 0) reads every argument in init(), builds each command in
 * next() (all substitution except {%}), the workers run them in run(), and
 * gather() prints each task's stdout and stderr whole, writes --results and
 * the joblog.  See docs/cmd.md. */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CMD_MAX_SLOTS 4096 /* worker slots tracked for process-group cleanup */

typedef struct cmd_src {
  const char *file;  /* a file of arguments (::::, -a), or NULL: */
  char **words;      /* ::: words (borrowed from argv) */
  size_t n;
} cmd_src_t;

typedef struct cmd_state {
  int rank;
  int has_tmpl;      /* 0: the arguments are the commands */
  cmd_tmpl_t tmpl;
  cmd_group_t *groups;
  size_t ngroups;
  uint64_t total, next_i, skipped;
  char *joblog;
  int joblog_fd;
  int resume, resume_failed;
  cmd_joblog_t prev;
  int have_prev;
  char *results;
  int dry_run;
  double task_timeout;
  cmd_pgtab_t pgtab;
  mpc_buf_t cmd, slots, line, tmp; /* master scratch */
  mpc_buf_t se, rendered;          /* worker scratch (each worker has a copy) */
} cmd_state_t;

static const char k_usage[] =
    "cmd [options] 'TEMPLATE' ::: ARG... [::: ARG...] [:::: ARGFILE...]\n"
    "cmd [options] 'TEMPLATE'            (arguments from stdin, one per line)\n"
    "cmd [options] -a TASKFILE           (every line is a complete command)\n"
    "  Replacement strings: {} {.} {/} {//} {/.} {#} {%}, {N} {N.} {N/} {N//}\n"
    "  {N/.} for input source N; arguments are shell-quoted; without any\n"
    "  replacement string the arguments are appended.\n"
    "  -a, --arg-file FILE  an input source (like :::: FILE; '-' = stdin)\n"
    "  --joblog FILE        GNU parallel joblog (overwritten unless resuming)\n"
    "  --resume             (mpc-run option) skip commands in the joblog\n"
    "  --resume-failed      re-run failed commands in the joblog, skip the rest\n"
    "  --results DIR        write DIR/<seq>/{stdout,stderr,cmd} instead of printing\n"
    "  --dry-run            print the commands, run nothing\n"
    "  --task-timeout SECS  kill a command's process group after SECS (TERM,\n"
    "                       then KILL 0.2 s later); its output is kept\n"
    "  -k/--keep-order, --timeout, --retries, --halt are mpc-run options.\n";

/* ---- init ------------------------------------------------------------------------ */

static int usage(mpc_buf_t *err, const char *fmt, const char *arg) {
  mpc_buf_clear(err);
  if (mpc_buf_printf(err, fmt, arg) != 0)
    return MPC_ENOMEM;
  return MPC_EUSAGE;
}

static int read_source_file(cmd_group_t *g, const char *path, int skip_empty,
                            mpc_buf_t *err) {
  int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = -errno;
    mpc_buf_clear(err);
    if (mpc_buf_printf(err, "cmd: cannot open %s: %s", path, mpc_strerror(e)))
      return MPC_ENOMEM;
    return e;
  }
  int rc = cmd_group_read_fd(g, fd, skip_empty);
  if (fd != 0)
    close(fd);
  if (rc < 0) {
    mpc_buf_clear(err);
    if (mpc_buf_printf(err, "cmd: cannot read %s: %s", path, mpc_strerror(rc)))
      return MPC_ENOMEM;
  }
  return rc;
}

static int open_joblog(cmd_state_t *st, mpc_buf_t *err) {
  int rc;
  if (st->resume || st->resume_failed) {
    mpc_buf_t warn = MPC_BUF_INIT;
    rc = cmd_joblog_load(&st->prev, st->joblog, &warn);
    if (warn.len)
      fprintf(stderr, "mpc cmd: %s: %s", st->joblog, mpc_buf_str(&warn));
    mpc_buf_free(&warn);
    if (rc < 0) {
      usage(err, "cmd: cannot read joblog %s", st->joblog);
      return rc;
    }
    st->have_prev = 1;
    st->joblog_fd = open(st->joblog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  } else {
    st->joblog_fd = open(st->joblog, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);
  }
  if (st->joblog_fd < 0) {
    rc = -errno;
    usage(err, "cmd: cannot open joblog %s", st->joblog);
    return rc;
  }
  struct stat sb;
  const char *head = NULL;
  if (fstat(st->joblog_fd, &sb) == 0 && sb.st_size == 0) {
    head = CMD_JOBLOG_HEADER;
  } else {
    /* Appending after a run killed mid-line: start on a fresh line. */
    char last = '\n';
    int rfd = open(st->joblog, O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
      if (pread(rfd, &last, 1, sb.st_size - 1) != 1)
        last = '\n';
      close(rfd);
    }
    if (last != '\n')
      head = "\n";
  }
  if (head && write(st->joblog_fd, head, strlen(head)) != (ssize_t)strlen(head)) {
    rc = -errno;
    usage(err, "cmd: cannot write joblog %s", st->joblog);
    return rc ? rc : MPC_EIO;
  }
  return 0;
}

static void cmd_fini(void *state);

static int cmd_init(int argc, char **argv, const mpc_job_env_t *env,
                    void **state, mpc_buf_t *err) {
  cmd_state_t *st = calloc(1, sizeof *st);
  cmd_src_t *src = calloc((size_t)argc + 1, sizeof *src);
  mpc_buf_t tmpl = MPC_BUF_INIT;
  size_t nsrc = 0;
  int rc = 0, i = 1;
  if (!st || !src) {
    rc = MPC_ENOMEM;
    goto fail;
  }
  st->joblog_fd = -1;
  st->rank = env->rank;
  st->resume = env->resume;

  /* Options, up to the template. */
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || strcmp(a, "-") == 0)
      break;
    const char *val = NULL;
    int takes = strcmp(a, "-a") == 0 || strcmp(a, "--arg-file") == 0 ||
                strcmp(a, "--joblog") == 0 || strcmp(a, "--results") == 0 ||
                strcmp(a, "--task-timeout") == 0;
    const char *eq = strchr(a, '=');
    if (takes) {
      if (i + 1 >= argc) {
        rc = usage(err, "cmd: %s needs a value", a);
        goto fail;
      }
      val = argv[++i];
    } else if (eq && strncmp(a, "--", 2) == 0) {
      val = eq + 1;
    }
#define OPT(name) (strcmp(a, name) == 0 || (eq && strncmp(a, name "=", strlen(name) + 1) == 0))
    if (OPT("-a") || OPT("--arg-file")) {
      src[nsrc++] = (cmd_src_t){.file = val};
    } else if (OPT("--joblog")) {
      free(st->joblog);
      if (!(st->joblog = strdup(val)))
        goto nomem;
    } else if (OPT("--results")) {
      free(st->results);
      if (!(st->results = strdup(val)))
        goto nomem;
    } else if (OPT("--task-timeout")) {
      char *end;
      st->task_timeout = strtod(val, &end);
      if (end == val || *end || st->task_timeout <= 0) {
        rc = usage(err, "cmd: --task-timeout wants seconds > 0, not '%s'", val);
        goto fail;
      }
    } else if (strcmp(a, "--resume-failed") == 0) {
      st->resume_failed = 1;
    } else if (strcmp(a, "--dry-run") == 0) {
      st->dry_run = 1;
    } else if (strcmp(a, ":::") == 0 || strcmp(a, "::::") == 0) {
      break;
    } else {
      rc = usage(err, "cmd: unknown option %s", a);
      goto fail;
    }
#undef OPT
  }

  /* The template: every word up to the first ::: or ::::, joined by spaces. */
  for (; i < argc && strcmp(argv[i], ":::") && strcmp(argv[i], "::::"); i++) {
    if ((tmpl.len && mpc_buf_append(&tmpl, " ", 1)) ||
        mpc_buf_append(&tmpl, argv[i], strlen(argv[i])))
      goto nomem;
    st->has_tmpl = 1;
  }
  /* Input sources. */
  while (i < argc) {
    int is_file = strcmp(argv[i], "::::") == 0;
    int j = ++i;
    while (i < argc && strcmp(argv[i], ":::") && strcmp(argv[i], "::::"))
      i++;
    if (is_file) {
      if (i == j) {
        rc = usage(err, "cmd: %s needs at least one file", "::::");
        goto fail;
      }
      /* Each file of a :::: is its own input source, as in GNU parallel. */
      for (int k = j; k < i; k++)
        src[nsrc++] = (cmd_src_t){.file = argv[k]};
    } else {
      src[nsrc++] = (cmd_src_t){.words = &argv[j], .n = (size_t)(i - j)};
    }
  }
  if (st->has_tmpl && (rc = cmd_tmpl_parse(&st->tmpl, (const char *)tmpl.data, tmpl.len)))
    goto fail;
  if (st->has_tmpl && st->tmpl.n == 0)
    st->has_tmpl = 0; /* an empty template: arguments are commands */
  size_t ngroups = nsrc ? nsrc : 1;
  if (st->tmpl.max_group > 0 && (size_t)st->tmpl.max_group > ngroups) {
    mpc_buf_clear(err);
    if (mpc_buf_printf(err, "cmd: the template uses input source {%d} but there %s %zu",
                       st->tmpl.max_group, ngroups == 1 ? "is" : "are", ngroups))
      goto nomem;
    rc = MPC_EUSAGE;
    goto fail;
  }
  if (st->resume_failed && !st->joblog) {
    rc = usage(err, "cmd: %s needs --joblog FILE", "--resume-failed");
    goto fail;
  }

  if (cmd_pgtab_init(&st->pgtab, CMD_MAX_SLOTS) != 0)
    st->pgtab.pg = NULL; /* cleanup of killed workers' groups is then lost */

  if (env->rank == 0) {
    /* Only the master needs the arguments (and only it may read stdin). */
    if (!(st->groups = calloc(ngroups, sizeof *st->groups)))
      goto nomem;
    st->ngroups = ngroups;
    int skip_empty = !st->has_tmpl; /* blank lines in a task file are no tasks */
    if (nsrc == 0) {
      if ((rc = read_source_file(&st->groups[0], "-", skip_empty, err)))
        goto fail;
    }
    for (size_t s = 0; s < nsrc; s++) {
      if (src[s].file) {
        if ((rc = read_source_file(&st->groups[s], src[s].file, skip_empty, err)))
          goto fail;
      } else {
        for (size_t k = 0; k < src[s].n; k++)
          if ((rc = cmd_group_add(&st->groups[s], src[s].words[k], strlen(src[s].words[k]))))
            goto fail;
      }
    }
    st->total = 1;
    for (size_t g = 0; g < ngroups; g++) {
      if (st->groups[g].n && st->total > UINT64_MAX / st->groups[g].n) {
        rc = usage(err, "cmd: %s", "too many argument combinations");
        goto fail;
      }
      st->total *= st->groups[g].n;
    }
    if (st->results && !st->dry_run && mkdir(st->results, 0777) != 0 && errno != EEXIST) {
      rc = -errno;
      usage(err, "cmd: cannot create --results directory %s", st->results);
      goto fail;
    }
    if (st->joblog && !st->dry_run && (rc = open_joblog(st, err)))
      goto fail;
  }
  free(src);
  mpc_buf_free(&tmpl);
  *state = st;
  return 0;
nomem:
  rc = MPC_ENOMEM;
  mpc_buf_clear(err);
  if (mpc_buf_printf(err, "cmd: out of memory"))
    mpc_buf_clear(err);
fail:
  free(src);
  mpc_buf_free(&tmpl);
  if (st)
    cmd_fini(st);
  return rc;
}

/* ---- next (master) ---------------------------------------------------------------- */

/* The key names a command: {%} stays as "{%}", a NUL byte becomes "\0". */
static int make_key(mpc_buf_t *key, const char *cmd, size_t len,
                    const uint32_t *slots, size_t nslots, mpc_buf_t *tmp) {
  mpc_buf_clear(tmp);
  int rc = cmd_render(tmp, cmd, len, slots, nslots, "{%}");
  const char *p = (const char *)tmp->data, *end = p + tmp->len;
  while (rc == 0 && p < end) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    const char *e = z ? z : end;
    rc = mpc_buf_append(key, p, (size_t)(e - p));
    if (rc == 0 && z)
      rc = mpc_buf_append(key, "\\0", 2);
    p = z ? z + 1 : end;
  }
  return rc;
}

static int cmd_next(void *state, mpc_buf_t *input, mpc_buf_t *key) {
  cmd_state_t *st = state;
  const char *args[64];
  size_t lens[64];
  const char **argp = args;
  size_t *lenp = lens;
  int rc = 0;
  if (st->ngroups > 64) {
    argp = malloc(st->ngroups * sizeof *argp);
    lenp = malloc(st->ngroups * sizeof *lenp);
    if (!argp || !lenp) {
      rc = MPC_ENOMEM;
      goto out;
    }
  }
  while (st->next_i < st->total) {
    uint64_t i = st->next_i++, seq = i + 1, rest = i;
    /* The last input source varies fastest, as in GNU parallel. */
    for (size_t g = st->ngroups; g-- > 0;) {
      size_t k = (size_t)(rest % st->groups[g].n);
      rest /= st->groups[g].n;
      argp[g] = cmd_group_str(&st->groups[g], k);
      lenp[g] = st->groups[g].len[k];
    }
    mpc_buf_clear(&st->cmd);
    mpc_buf_clear(&st->slots);
    rc = cmd_tmpl_expand(st->has_tmpl ? &st->tmpl : NULL, argp, lenp,
                         st->ngroups, seq, &st->cmd, &st->slots);
    if (rc)
      goto out;
    const char *c = (const char *)st->cmd.data;
    size_t clen = st->cmd.len, ns = st->slots.len / 4;
    uint32_t *slots = (uint32_t *)st->slots.data;
    if (st->have_prev) {
      const cmd_joblog_entry_t *e = cmd_joblog_find(&st->prev, c ? c : "", clen,
                                                    slots, ns, seq);
      /* --resume: everything logged is done; --resume-failed: only successes. */
      if (e && (!st->resume_failed || !e->failed)) {
        st->skipped++;
        continue;
      }
    }
    if (st->dry_run) {
      mpc_buf_clear(&st->line);
      if ((rc = cmd_render(&st->line, c ? c : "", clen, slots, ns, "{%}")) ||
          (rc = mpc_buf_append(&st->line, "\n", 1)))
        goto out;
      fwrite(st->line.data, 1, st->line.len, stdout);
      continue;
    }
    if ((rc = cmd_task_encode(input, seq, slots, ns, c ? c : "", clen)) ||
        (rc = make_key(key, c ? c : "", clen, slots, ns, &st->tmp)))
      goto out;
    rc = 1;
    goto out;
  }
  if (st->dry_run)
    fflush(stdout);
out:
  if (argp != args) {
    free(argp);
    free(lenp);
  }
  if (rc < 0) {
    mpc_buf_clear(key);
    if (mpc_buf_printf(key, "cmd: cannot build task %llu: %s",
                       (unsigned long long)st->next_i, mpc_strerror(rc)))
      mpc_buf_clear(key);
  }
  return rc;
}

/* ---- run (worker) ------------------------------------------------------------------ */

static int cmd_run(void *state, const void *in, size_t in_len, mpc_buf_t *out) {
  cmd_state_t *st = state;
  cmd_task_t t;
  cmd_exec_t ex;
  int rc = cmd_task_decode(&t, in, in_len);
  if (rc) {
    mpc_buf_clear(out);
    if (mpc_buf_printf(out, "cmd: corrupt task input (%zu bytes)", in_len))
      mpc_buf_clear(out);
    return rc;
  }
  int slot = mpc_worker_index();
  if (slot < 0)
    slot = 0;
  char fill[24];
  snprintf(fill, sizeof fill, "%d", slot + 1);
  mpc_buf_clear(&st->rendered);
  mpc_buf_clear(&st->se);
  if ((rc = cmd_render(&st->rendered, t.cmd, t.len, t.slots, t.nslots, fill)) ||
      (rc = cmd_rec_begin(out)))
    goto fail;
  const char *cmd = mpc_buf_str(&st->rendered);
  memset(&ex, 0, sizeof ex);
  if (memchr(st->rendered.data, 0, st->rendered.len)) {
    ex.exitval = -1;
    ex.spawn_err = MPC_EINVAL;
    rc = mpc_buf_printf(&st->se, "mpc cmd: task %llu: the command contains a NUL byte\n",
                        (unsigned long long)t.seq);
  } else {
    char *const *envp = cmd_task_env(t.seq, mpc_job_rank(), slot, mpc_job_host());
    if (!envp) {
      rc = MPC_ENOMEM;
      goto fail;
    }
    rc = cmd_spawn(cmd, envp, st->task_timeout, &st->pgtab, (size_t)slot, out,
                   &st->se, &ex);
    if (rc == 0 && ex.spawn_err)
      rc = mpc_buf_printf(&st->se, "mpc cmd: task %llu: cannot start /bin/sh: %s\n",
                          (unsigned long long)t.seq, mpc_strerror(ex.spawn_err));
  }
  if (rc || (rc = cmd_rec_finish(out, &ex, t.seq, st->se.data, st->se.len,
                                 (const char *)st->rendered.data, st->rendered.len)))
    goto fail;
  cmd_task_release(&t);
  if (!cmd_exec_failed(&ex))
    return 0;
  /* The record in `out` travels to gather() as the task's error message. */
  if (ex.spawn_err)
    return ex.spawn_err;
  if (ex.timed_out)
    return MPC_ETIMEDOUT;
  if (ex.sig)
    return 128 + ex.sig;
  return ex.exitval;
fail:
  cmd_task_release(&t);
  mpc_buf_clear(out);
  if (mpc_buf_printf(out, "cmd: task %llu: %s", (unsigned long long)t.seq, mpc_strerror(rc)))
    mpc_buf_clear(out);
  return rc;
}

static const char *status_name(mpc_task_status_t s) {
  static const char *const names[] = {"ok", "failed", "crashed", "exited",
                                      "timed out", "out of memory", "canceled"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "failed";
}

/* ---- gather (master) ---------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* dir/name <- bytes, through a temporary name and rename(). */
static int write_file(const char *dir, const char *name, const void *p,
                      size_t n, mpc_buf_t *tmp) {
  mpc_buf_clear(tmp);
  if (mpc_buf_printf(tmp, "%s/.%s.tmp.%d", dir, name, (int)getpid()))
    return MPC_ENOMEM;
  size_t tl = tmp->len;
  if (mpc_buf_printf(tmp, "%c%s/%s", 0, dir, name))
    return MPC_ENOMEM;
  const char *tname = (const char *)tmp->data, *fname = tname + tl + 1;
  int fd = open(tname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  int rc = write_all(fd, p, n);
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tname, fname) != 0)
    rc = -errno;
  if (rc)
    unlink(tname);
  return rc;
}

static int write_results(cmd_state_t *st, uint64_t seq, const cmd_rec_t *r) {
  mpc_buf_t dir = MPC_BUF_INIT;
  int rc = mpc_buf_printf(&dir, "%s/%llu", st->results, (unsigned long long)seq);
  if (rc == 0 && mkdir(mpc_buf_str(&dir), 0777) != 0 && errno != EEXIST)
    rc = -errno;
  const char *d = mpc_buf_str(&dir);
  if (rc == 0)
    rc = write_file(d, "stdout", r->so, r->so_len, &st->tmp);
  if (rc == 0)
    rc = write_file(d, "stderr", r->se, r->se_len, &st->tmp);
  if (rc == 0) {
    mpc_buf_clear(&st->line);
    rc = mpc_buf_append(&st->line, r->cmd, r->cmd_len);
    if (rc == 0)
      rc = mpc_buf_append(&st->line, "\n", 1);
    if (rc == 0)
      rc = write_file(d, "cmd", st->line.data, st->line.len, &st->tmp);
  }
  if (rc)
    fprintf(stderr, "mpc cmd: --results %s: %s\n", d, mpc_strerror(rc));
  mpc_buf_free(&dir);
  return rc;
}

static int cmd_gather(void *state, const mpc_job_result_t *res) {
  cmd_state_t *st = state;
  cmd_rec_t r;
  mpc_buf_t msg = MPC_BUF_INIT, cmdbuf = MPC_BUF_INIT;
  int rc = 0;
  if (res->resumed) {
    /* Done by an earlier run according to mpc-run's journal (--journal with
     * --resume).  next() only produces commands the joblog does not list,
     * so add the line the joblog lacks (no output: it was printed then). */
    cmd_task_t t;
    if (st->joblog_fd < 0 || cmd_task_decode(&t, res->input, res->input_len) != 0)
      return 0;
    char fill[24];
    snprintf(fill, sizeof fill, "%d", res->worker >= 0 ? res->worker + 1 : 1);
    rc = cmd_render(&cmdbuf, t.cmd, t.len, t.slots, t.nslots, fill);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cmd_joblog_line_t l = {.seq = t.seq,
                           .host = res->host && res->host[0] ? res->host : ":",
                           .start = (double)ts.tv_sec + ts.tv_nsec * 1e-9 - res->seconds,
                           .runtime = res->seconds,
                           .cmd = cmdbuf.data ? (const char *)cmdbuf.data : "",
                           .cmd_len = cmdbuf.len};
    cmd_task_release(&t);
    mpc_buf_clear(&st->line);
    if (rc == 0 && (rc = cmd_joblog_format(&st->line, &l)) == 0)
      rc = write_all(st->joblog_fd, st->line.data, st->line.len);
    mpc_buf_free(&cmdbuf);
    return rc;
  }
  if (cmd_rec_decode(&r, res->output, res->output_len) != 0) {
    /* No record: the worker died, timed out or never ran the task. */
    cmd_task_t t;
    if (res->status == MPC_TASK_CANCELED)
      return 0; /* never ran: not logged, so a --resume runs it */
    memset(&r, 0, sizeof r);
    if (cmd_task_decode(&t, res->input, res->input_len) == 0) {
      char fill[24];
      snprintf(fill, sizeof fill, "%d", res->worker >= 0 ? res->worker + 1 : 1);
      rc = cmd_render(&cmdbuf, t.cmd, t.len, t.slots, t.nslots, fill);
      r.seq = t.seq;
      cmd_task_release(&t);
    } else {
      r.seq = res->seq + 1;
      rc = res->key ? mpc_buf_append(&cmdbuf, res->key, strlen(res->key)) : 0;
    }
    r.ex.exitval = -1;
    r.ex.sig = res->status == MPC_TASK_CRASHED   ? res->code
               : res->status == MPC_TASK_TIMEOUT ? SIGKILL
                                                 : 0;
    r.ex.timed_out = res->status == MPC_TASK_TIMEOUT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r.ex.runtime = res->seconds;
    r.ex.start = (double)ts.tv_sec + ts.tv_nsec * 1e-9 - res->seconds;
    r.cmd = (const char *)cmdbuf.data;
    r.cmd_len = cmdbuf.len;
    if (rc == 0)
      rc = mpc_buf_printf(&msg, "mpc cmd: task %llu %s (%s): %.*s\n",
                          (unsigned long long)r.seq,
                          status_name(res->status),
                          res->status == MPC_TASK_ERROR ? mpc_strerror(res->code) : "worker lost",
                          (int)res->output_len, res->output ? (const char *)res->output : "");
    r.se = (const char *)msg.data;
    r.se_len = msg.len;
    if (rc)
      goto out;
  } else if (r.ex.timed_out) {
    rc = mpc_buf_printf(&msg, "mpc cmd: task %llu timed out after %.3f s: %.*s\n",
                        (unsigned long long)r.seq, r.ex.runtime, (int)r.cmd_len, r.cmd);
    if (rc)
      goto out;
  }
  if (st->results) {
    if ((rc = write_results(st, r.seq, &r)))
      goto out;
  } else {
    fflush(stdout);
    if ((r.so_len && (rc = write_all(1, r.so, r.so_len))) ||
        (r.se_len && (rc = write_all(2, r.se, r.se_len))))
      goto out;
  }
  if (msg.len && r.se != (const char *)msg.data)
    (void)write_all(2, msg.data, msg.len);
  if (st->joblog_fd >= 0) {
    cmd_joblog_line_t l = {.seq = r.seq,
                           .host = res->host && res->host[0] ? res->host : ":",
                           .start = r.ex.start,
                           .runtime = r.ex.runtime,
                           .send = 0,
                           .receive = r.so_len + r.se_len,
                           .exitval = r.ex.exitval,
                           .sig = r.ex.sig,
                           .cmd = r.cmd ? r.cmd : "",
                           .cmd_len = r.cmd_len};
    mpc_buf_clear(&st->line);
    /* One write per line, appended: a kill -9 leaves whole lines only. */
    if ((rc = cmd_joblog_format(&st->line, &l)) ||
        (rc = write_all(st->joblog_fd, st->line.data, st->line.len))) {
      fprintf(stderr, "mpc cmd: cannot write joblog %s: %s\n", st->joblog, mpc_strerror(rc));
      goto out;
    }
  }
out:
  mpc_buf_free(&msg);
  mpc_buf_free(&cmdbuf);
  return rc;
}

/* ---- finish / fini --------------------------------------------------------------------- */

static int cmd_finish(void *state, const mpc_job_report_t *rep) {
  cmd_state_t *st = state;
  (void)rep;
  /* The commands' output is the report; only say what --resume skipped. */
  if (st->skipped)
    fprintf(stderr, "mpc cmd: %llu task%s already in %s, skipped\n",
            (unsigned long long)st->skipped, st->skipped == 1 ? "" : "s", st->joblog);
  fflush(stdout);
  return 0;
}

static void cmd_fini(void *state) {
  cmd_state_t *st = state;
  if (!st)
    return;
  /* Process groups left by workers that were killed mid-task. */
  cmd_pgtab_reap_all(&st->pgtab);
  cmd_pgtab_free(&st->pgtab);
  cmd_tmpl_free(&st->tmpl);
  for (size_t g = 0; g < st->ngroups; g++)
    cmd_group_free(&st->groups[g]);
  free(st->groups);
  if (st->joblog_fd >= 0)
    close(st->joblog_fd);
  cmd_joblog_free(&st->prev);
  free(st->joblog);
  free(st->results);
  mpc_buf_free(&st->cmd);
  mpc_buf_free(&st->slots);
  mpc_buf_free(&st->line);
  mpc_buf_free(&st->tmp);
  mpc_buf_free(&st->se);
  mpc_buf_free(&st->rendered);
  free(st);
}

const mpc_job_t mpc_job_cmd = {
    .abi = MPC_JOB_ABI_VERSION,
    .flags = 0,
    .name = "cmd",
    .brief = "run a shell command per argument (GNU parallel-like task farm)",
    .usage = k_usage,
    .init = cmd_init,
    .next = cmd_next,
    .run = cmd_run,
    .gather = cmd_gather,
    .finish = cmd_finish,
    .fini = cmd_fini,
};
MPC_JOB_BUILTIN(mpc_job_cmd);
