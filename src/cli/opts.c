/* Global options of mpc-run.  They are recognised before and after JOB (so
 * `mpc-run chaos --tasks 9 -w 2` works) and removed from the job's argv; a
 * `--` ends recognition (it is kept in the job's argv, where the job may use
 * it as its own separator). */
#include "cli/opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *mpc__usage(void) {
  return "usage: mpc-run [options] JOB [job arguments]   (also: mpirun -n N mpc-run ...)\n"
         "       mpc-run --list | --help | --version | JOB --help\n"
         "JOB is a built-in job name (see --list) or a path to a job shared object.\n"
         "Options (recognised anywhere before a `--`):\n"
         "  -w, --workers K        worker processes per rank (default: cores/ranks per node)\n"
         "      --timeout S        kill a task after S seconds (default: none)\n"
         "      --retries R        extra attempts for a failed task, on another rank (default 1)\n"
         "      --halt WHEN        never | soon | now, optionally ,fail=N or ,fail=P%\n"
         "      --journal FILE     append one line per attempt to FILE\n"
         "      --resume           skip tasks the journal records as done (the job\n"
         "                         sees it too, e.g. cmd's --joblog)\n"
         "  -k, --ordered          gather results in task order (alias --keep-order)\n"
         "      --schedule S       guided (default) | dynamic | static\n"
         "      --progress, --no-progress   force or disable the progress bar\n"
         "      --json FILE        also write the run summary as JSON to FILE\n"
         "      --timeline FILE    each attempt's rank, worker and times: text, or a\n"
         "                         Gantt chart when FILE ends in .png\n"
         "      --trace FILE       every attempt as a Chrome/Perfetto trace (JSON)\n"
         "      --debug-protocol   log the master/worker protocol on stderr\n"
         "      --grace S          on SIGINT/SIGTERM let running tasks finish up to S seconds\n"
         "      --walltime T       the run must end within T (seconds, MM:SS, HH:MM:SS or\n"
         "                         D-HH:MM:SS; default: Slurm's job end time if known): tasks\n"
         "                         that would not finish in time do not start (exit 3)\n"
         "      --heartbeat S      a rank silent for S seconds is lost: its tasks run\n"
         "                         elsewhere (default 60; 0: never)\n"
         "      --mem-limit SIZE   memory a task may add to its worker (e.g. 2G); past it\n"
         "                         the task fails as out-of-memory\n"
         "      --no-speculate     never run copies of straggling tasks (idempotent jobs\n"
         "                         get them by default once nothing else is left)\n"
         "  -v, --verbose          more messages (repeatable)   -q, --quiet  no summary\n"
         "  -h, --help             this help (JOB --help: the job's usage)\n"
         "Exit: 0 all tasks ok, 1 some failed, 2 usage or set-up error, 3 interrupted.\n";
}

int mpc__parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0 || !isfinite(v))
    return MPC_EUSAGE;
  double m = 1;
  switch (*end) {
  case 'k': case 'K': m = 1024.0; end++; break;
  case 'm': case 'M': m = 1024.0 * 1024; end++; break;
  case 'g': case 'G': m = 1024.0 * 1024 * 1024; end++; break;
  case 't': case 'T': m = 1024.0 * 1024 * 1024 * 1024; end++; break;
  default: break;
  }
  if (*end == 'B' || *end == 'b')
    end++;
  if (*end)
    return MPC_EUSAGE;
  *out = (size_t)(v * m);
  return 0;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *v,
                     mpc_buf_t *err) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (errno || end == s || *end || x < lo || x > hi) {
    mpc__msg(err, "%s: expected an integer in [%ld, %ld], got '%s'",
                         opt, lo, hi, s);
    return MPC_EUSAGE;
  }
  *v = x;
  return 0;
}

static int parse_secs(const char *opt, const char *s, double *v, mpc_buf_t *err) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (errno || end == s || *end || x < 0 || !isfinite(x)) {
    mpc__msg(err, "%s: expected seconds (a number >= 0), got '%s'",
                         opt, s);
    return MPC_EUSAGE;
  }
  *v = x;
  return 0;
}

int mpc__parse_duration(const char *s, double *out) {
  /* Slurm's forms, with plain numbers meaning seconds as everywhere in
   * mpc-run: S, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
  double days = 0, part[3];
  int np = 0;
  const char *p = s, *dash = strchr(s, '-');
  char *end;
  if (dash) {
    errno = 0;
    long d = strtol(s, &end, 10);
    if (errno || end != dash || d < 0 || end == s)
      return MPC_EUSAGE;
    days = (double)d;
    p = dash + 1;
  }
  for (;;) {
    if (np == 3)
      return MPC_EUSAGE;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || v < 0 || !isfinite(v) || *p == '-' || *p == '+')
      return MPC_EUSAGE;
    part[np++] = v;
    if (*end == 0)
      break;
    if (*end != ':')
      return MPC_EUSAGE;
    p = end + 1;
  }
  double secs;
  if (dash) /* D-HH[:MM[:SS]] */
    secs = part[0] * 3600 + (np > 1 ? part[1] * 60 : 0) + (np > 2 ? part[2] : 0);
  else if (np == 1)
    secs = part[0];
  else if (np == 2)
    secs = part[0] * 60 + part[1];
  else
    secs = part[0] * 3600 + part[1] * 60 + part[2];
  *out = days * 86400 + secs;
  return 0;
}

static int parse_halt(mpc__opts_t *o, const char *s, mpc_buf_t *err) {
  const char *comma = strchr(s, ',');
  size_t n = comma ? (size_t)(comma - s) : strlen(s);
  o->halt_fail = 1;
  o->halt_pct = 0;
  if (n == 5 && !strncmp(s, "never", 5))
    o->halt = MPC__HALT_NEVER;
  else if (n == 4 && !strncmp(s, "soon", 4))
    o->halt = MPC__HALT_SOON;
  else if (n == 3 && !strncmp(s, "now", 3))
    o->halt = MPC__HALT_NOW;
  else
    goto bad;
  if (comma) {
    const char *c = comma + 1;
    if (strncmp(c, "fail=", 5) != 0 || o->halt == MPC__HALT_NEVER)
      goto bad;
    c += 5;
    char *end;
    errno = 0;
    double v = strtod(c, &end);
    if (errno || end == c || v <= 0)
      goto bad;
    if (*end == '%' && end[1] == 0 && v <= 100) {
      o->halt_pct = v;
    } else if (*end == 0 && v == floor(v)) {
      o->halt_fail = (long)v;
    } else {
      goto bad;
    }
  }
  return 0;
bad:
  mpc__msg(err,
                       "--halt: expected never, soon or now, optionally "
                       "followed by ,fail=N or ,fail=P%%; got '%s'",
                       s);
  return MPC_EUSAGE;
}

/* Options that take a value. */
static const char *const k_valued[] = {
    "--workers", "--timeout", "--retries", "--halt", "--journal",
    "--schedule", "--json", "--timeline", "--trace", "--grace", "--walltime",
    "--heartbeat", "--mem-limit", NULL};
/* Flags. */
static const char *const k_flags[] = {
    "--resume", "--ordered", "--keep-order", "--progress", "--no-progress",
    "--debug-protocol", "--no-speculate", "--verbose", "--quiet", "--help", "--list", "--version", NULL};

static int in_list(const char *const *l, const char *s, size_t n) {
  for (; *l; l++)
    if (strlen(*l) == n && !strncmp(*l, s, n))
      return 1;
  return 0;
}

/* Apply one recognised option.  name is the long form. */
static int apply(mpc__opts_t *o, const char *name, const char *val,
                 mpc_buf_t *err) {
  long v;
  int rc = 0;
  if (!strcmp(name, "--workers")) {
    if (!(rc = parse_int("--workers", val, 1, 100000, &v, err)))
      o->workers = (int)v;
  } else if (!strcmp(name, "--timeout")) {
    rc = parse_secs(name, val, &o->timeout, err);
  } else if (!strcmp(name, "--retries")) {
    if (!(rc = parse_int("--retries", val, 0, 1000, &v, err)))
      o->retries = (int)v;
  } else if (!strcmp(name, "--halt")) {
    rc = parse_halt(o, val, err);
  } else if (!strcmp(name, "--journal")) {
    if (!*val) {
      mpc__msg(err, "--journal: empty file name");
      rc = MPC_EUSAGE;
    }
    o->journal = val;
  } else if (!strcmp(name, "--schedule")) {
    if (!strcmp(val, "guided"))
      o->sched = MPC__SCHED_GUIDED;
    else if (!strcmp(val, "dynamic"))
      o->sched = MPC__SCHED_DYNAMIC;
    else if (!strcmp(val, "static"))
      o->sched = MPC__SCHED_STATIC;
    else {
      mpc__msg(err, "--schedule: expected guided, dynamic or static, got '%s'", val);
      rc = MPC_EUSAGE;
    }
  } else if (!strcmp(name, "--timeline") || !strcmp(name, "--trace") ||
             !strcmp(name, "--json")) {
    if (!*val) {
      mpc__msg(err, "%s: empty file name", name);
      rc = MPC_EUSAGE;
    }
    if (!strcmp(name, "--timeline"))
      o->timeline = val;
    else if (!strcmp(name, "--trace"))
      o->trace = val;
    else
      o->json = val;
  } else if (!strcmp(name, "--grace")) {
    rc = parse_secs(name, val, &o->grace, err);
  } else if (!strcmp(name, "--walltime")) {
    if ((rc = mpc__parse_duration(val, &o->walltime)) || o->walltime <= 0) {
      rc = MPC_EUSAGE;
      mpc__msg(err, "--walltime: expected a time > 0 like 3600, 45:00 or 1-02:00:00, "
                    "got '%s'", val);
    }
  } else if (!strcmp(name, "--heartbeat")) {
    rc = parse_secs(name, val, &o->heartbeat, err);
  } else if (!strcmp(name, "--mem-limit")) {
    if ((rc = mpc__parse_size(val, &o->mem_limit)))
      mpc__msg(err, "--mem-limit: expected a size like 512M or 2G, got '%s'", val);
  } else if (!strcmp(name, "--resume")) {
    o->resume = 1;
  } else if (!strcmp(name, "--ordered") || !strcmp(name, "--keep-order")) {
    o->ordered = 1;
  } else if (!strcmp(name, "--progress")) {
    o->progress = 1;
  } else if (!strcmp(name, "--no-progress")) {
    o->progress = 0;
  } else if (!strcmp(name, "--debug-protocol")) {
    o->debug_protocol = 1;
  } else if (!strcmp(name, "--no-speculate")) {
    o->no_speculate = 1;
  } else if (!strcmp(name, "--verbose")) {
    o->verbose++;
  } else if (!strcmp(name, "--quiet")) {
    o->quiet = 1;
  } else if (!strcmp(name, "--help")) {
    o->help = 1;
  } else if (!strcmp(name, "--list")) {
    o->list = 1;
  } else if (!strcmp(name, "--version")) {
    o->version = 1;
  }
  return rc;
}

static const char *short_long(char c) {
  switch (c) {
  case 'w': return "--workers";
  case 'k': return "--ordered";
  case 'v': return "--verbose";
  case 'q': return "--quiet";
  case 'h': return "--help";
  default: return NULL;
  }
}

/* Try argv[*i] as a global option.  1: consumed (and *i advanced past its
 * value), 0: not a global option, <0: error. */
static int try_global(mpc__opts_t *o, int argc, char **argv, int *i,
                      mpc_buf_t *err) {
  const char *a = argv[*i];
  if (a[0] != '-' || a[1] == 0)
    return 0;
  if (a[1] == '-') {
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    char name[32];
    if (n >= sizeof name)
      return 0;
    memcpy(name, a, n);
    name[n] = 0;
    if (in_list(k_valued, a, n)) {
      const char *val;
      if (eq) {
        val = eq + 1;
      } else {
        if (*i + 1 >= argc) {
          mpc__msg(err, "%s: missing value", name);
          return MPC_EUSAGE;
        }
        val = argv[++*i];
      }
      int rc = apply(o, name, val, err);
      return rc ? rc : 1;
    }
    if (in_list(k_flags, a, n)) {
      if (eq) {
        mpc__msg(err, "%s takes no value", name);
        return MPC_EUSAGE;
      }
      int rc = apply(o, name, NULL, err);
      return rc ? rc : 1;
    }
    return 0;
  }
  /* Short options: -w K, -wK, -vv, -kq ... only when every letter is ours. */
  for (const char *p = a + 1; *p; p++) {
    const char *ln = short_long(*p);
    if (!ln)
      return 0;
    if (*p == 'w')
      break;
  }
  for (const char *p = a + 1; *p; p++) {
    const char *ln = short_long(*p);
    if (*p == 'w') {
      const char *val = p[1] ? p + 1 : NULL;
      if (!val) {
        if (*i + 1 >= argc) {
          mpc__msg(err, "-w: missing value");
          return MPC_EUSAGE;
        }
        val = argv[++*i];
      }
      int rc = apply(o, ln, val, err);
      return rc ? rc : 1;
    }
    int rc = apply(o, ln, NULL, err);
    if (rc)
      return rc;
  }
  return 1;
}

int mpc__opts_parse(mpc__opts_t *o, int argc, char **argv, mpc_buf_t *err) {
  memset(o, 0, sizeof *o);
  o->retries = 1;
  o->heartbeat = 60;
  o->progress = -1;
  o->job_argv = calloc((size_t)argc + 1, sizeof *o->job_argv);
  if (!o->job_argv)
    return MPC_ENOMEM;
  int globals = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (globals && !strcmp(a, "--")) {
      globals = 0;
      if (o->job)
        o->job_argv[o->job_argc++] = argv[i];
      continue;
    }
    if (globals) {
      int rc = try_global(o, argc, argv, &i, err);
      if (rc < 0)
        return rc;
      if (rc == 1)
        continue;
    }
    if (!o->job) {
      if (globals && a[0] == '-' && a[1]) {
        mpc__msg(err, "unknown option '%s'", a);
        return MPC_EUSAGE;
      }
      o->job = a;
    }
    o->job_argv[o->job_argc++] = argv[i];
  }
  o->job_argv[o->job_argc] = NULL;
  if (!o->job && !o->help && !o->list && !o->version) {
    mpc__msg(err, "no JOB given");
    return MPC_EUSAGE;
  }
  return 0;
}

void mpc__opts_free(mpc__opts_t *o) {
  free(o->job_argv);
  o->job_argv = NULL;
}
