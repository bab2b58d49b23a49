/* The `cmd` job: a task farm for shell commands (see docs/cmd.md).
 *
 * Internal header, shared by the jobs/cmd sources and the unit tests.  Nothing here is
 * installed.  Every fallible function returns 0 or a negative MPC_E* / -errno.
 *
 * Layers:
 *   template.c  arguments, template parsing, substitution, shell quoting,
 *               the task encoding (master -> worker)
 *   spawn.c     running one command: posix_spawn of /bin/sh -c in its own
 *               process group, stdout/stderr capture with poll(), the result
 *               record (worker -> master), the process-group tracking table
 *   joblog.c    GNU parallel's joblog: format one line, parse a file back,
 *               the --resume / --resume-failed lookup
 *   cmd.c       options, the job callbacks, --results, --dry-run
 */
#ifndef MPC_JOBS_CMD_H
#define MPC_JOBS_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mpc/buf.h"
#include "mpc/job.h"

extern const mpc_job_t mpc_job_cmd;

/* ---- arguments (template.c) ------------------------------------------------ */

/** One input source (a `:::` group, a `::::` file, -a, stdin): a list of
 *  byte strings kept in one buffer.  Zero-initialised is empty. */
typedef struct cmd_group {
  mpc_buf_t data;   /* the strings back to back, each followed by a NUL */
  size_t *off;      /* start of string i in data */
  size_t *len;      /* length of string i (may contain NUL bytes) */
  size_t n, cap;
} cmd_group_t;

int cmd_group_add(cmd_group_t *g, const void *s, size_t n);
/** Add every line of fd (split on '\n', which is removed; a last line without
 *  '\n' counts; empty lines are empty arguments unless skip_empty). */
int cmd_group_read_fd(cmd_group_t *g, int fd, int skip_empty);
void cmd_group_free(cmd_group_t *g);
static inline const char *cmd_group_str(const cmd_group_t *g, size_t i) {
  return (const char *)g->data.data + g->off[i];
}

/* ---- template (template.c) --------------------------------------------------- */

enum cmd_piece_kind {
  CMD_P_LIT = 0, /* literal text */
  CMD_P_ARG,     /* {}   the argument */
  CMD_P_DOT,     /* {.}  without extension */
  CMD_P_BASE,    /* {/}  basename */
  CMD_P_DIR,     /* {//} dirname */
  CMD_P_BDOT,    /* {/.} basename without extension */
  CMD_P_SEQ,     /* {#}  task number, 1-based */
  CMD_P_SLOT,    /* {%}  worker slot, 1-based (filled in by the worker) */
};

typedef struct cmd_piece {
  int kind;
  int group;        /* for argument pieces: 0 = every group, else {N...} */
  size_t off, len;  /* literal: bytes in the template text */
} cmd_piece_t;

typedef struct cmd_tmpl {
  char *text;       /* the template text (owned) */
  size_t text_len;
  cmd_piece_t *p;
  size_t n;
  int has_repl;     /* any replacement string at all (else args are appended) */
  int max_group;    /* largest N in {N...}, 0 if none */
} cmd_tmpl_t;

/** Parse a template into pieces.  Unknown {...} text stays literal. */
int cmd_tmpl_parse(cmd_tmpl_t *t, const char *text, size_t len);
void cmd_tmpl_free(cmd_tmpl_t *t);

/** Append `s` to out as one shell word: unchanged when it is non-empty and
 *  made only of [A-Za-z0-9_./,:+@%-], else in single quotes with each ' as '\''. */
int cmd_shell_quote(mpc_buf_t *out, const char *s, size_t n);

/** Append the transformation `kind` (CMD_P_ARG/DOT/BASE/DIR/BDOT) of s, as GNU
 *  parallel defines it, unquoted. */
int cmd_xform(mpc_buf_t *out, int kind, const char *s, size_t n);

/** Build the command for one combination of arguments.  args[i]/lens[i] is the
 *  argument from group i+1.  {%} is left out: its byte offsets in `cmd` are
 *  appended to `slots` as uint32_t.  With no template (t == NULL or empty), the
 *  arguments are the command itself, joined by spaces and not quoted. */
int cmd_tmpl_expand(const cmd_tmpl_t *t, const char *const *args,
                    const size_t *lens, size_t nargs, uint64_t seq,
                    mpc_buf_t *cmd, mpc_buf_t *slots);

/** Write `cmd` with the text `fill` inserted at each slot offset. */
int cmd_render(mpc_buf_t *out, const char *cmd, size_t len,
               const uint32_t *slots, size_t nslots, const char *fill);

/* Task input (master -> worker): u64 seq | u32 nslots | u32 slots[] | command. */
int cmd_task_encode(mpc_buf_t *in, uint64_t seq, const uint32_t *slots,
                    size_t nslots, const char *cmd, size_t len);
typedef struct cmd_task {
  uint64_t seq;
  const uint32_t *slots; /* may be unaligned-safe copy: see cmd_task_decode */
  size_t nslots;
  const char *cmd;
  size_t len;
  uint32_t slotbuf[16];  /* slots are copied here when nslots <= 16 */
  uint32_t *slotheap;    /* else here (free with cmd_task_release) */
} cmd_task_t;
int cmd_task_decode(cmd_task_t *t, const void *in, size_t len);
void cmd_task_release(cmd_task_t *t);

/* ---- running a command (spawn.c) ------------------------------------------- */

typedef struct cmd_exec {
  int exitval;      /* exit code; 0 when killed by a signal; -1 when it never
                       started or timed out (as GNU parallel's joblog) */
  int sig;          /* terminating signal, 0 if none */
  int timed_out;    /* 1: killed by --task-timeout */
  int spawn_err;    /* 0 or -errno: /bin/sh could not be started */
  double start;     /* epoch seconds */
  double runtime;   /* seconds */
} cmd_exec_t;

/** Process-group tracking (shared memory created before workers fork): slot i
 *  holds the process group of the command that worker i is running, so that
 *  a group left behind by a killed worker can be killed later. */
typedef struct cmd_pgtab {
  volatile pid_t *pg; /* pairs: process group, session of the worker */
  size_t n;
} cmd_pgtab_t;
int cmd_pgtab_init(cmd_pgtab_t *t, size_t n);
/** Kill the group recorded in slot i if it still exists (SIGKILL); clear it. */
void cmd_pgtab_reap(cmd_pgtab_t *t, size_t i);
void cmd_pgtab_reap_all(cmd_pgtab_t *t);
void cmd_pgtab_free(cmd_pgtab_t *t);

/** Run `/bin/sh -c cmd` (cmd NUL-terminated) in a new process group with stdin
 *  /dev/null and environment envp; append its stdout to `so` and stderr to `se`
 *  until both reach EOF and the shell has exited.  timeout > 0: SIGTERM to the
 *  group at the deadline, SIGKILL 0.2 s later.  tab/slot: record the group
 *  (tab may be NULL).  The return value is for set-up failures of this
 *  process (out of memory, ...); a command that cannot start is reported in
 *  ex->spawn_err with 0 returned. */
int cmd_spawn(const char *cmd, char *const *envp, double timeout,
              cmd_pgtab_t *tab, size_t slot, mpc_buf_t *so, mpc_buf_t *se,
              cmd_exec_t *ex);

/** Environment for a task: this process's environment without MPC_TASK_ID,
 *  MPC_RANK, MPC_WORKER, MPC_HOST, plus those four.  Cached per process;
 *  returns NULL when out of memory. */
char *const *cmd_task_env(uint64_t seq, int rank, int worker, const char *host);

/* Result record (worker -> master), the same for success and failure:
 *   a 64-byte text line, space-padded, ending in '\n' ("exit status 3",
 *   "killed by signal 9 (Killed)", "ok"...: what mpc-run's summary shows) |
 *   "MPCCMD1\0" | i32 exitval | i32 sig | i32 timed_out | i32 spawn_err |
 *   f64 start | f64 runtime | u64 seq | u64 stdout_len | u64 stderr_len |
 *   u64 cmd_len | stdout | stderr | cmd (as run, {%} filled in) */
#define CMD_REC_TEXT 64
#define CMD_REC_HDR (CMD_REC_TEXT + 72)
/** One line saying what happened to a command ("exit status 3"...). */
void cmd_exec_describe(const cmd_exec_t *ex, char *buf, size_t n);
/** Put a header with zero lengths in `out` (stdout is then appended directly). */
int cmd_rec_begin(mpc_buf_t *out);
/** Complete the record: `out` holds the header + stdout; append stderr and cmd. */
int cmd_rec_finish(mpc_buf_t *out, const cmd_exec_t *ex, uint64_t seq,
                   const void *se, size_t se_len, const char *cmd,
                   size_t cmd_len);
typedef struct cmd_rec {
  cmd_exec_t ex;
  uint64_t seq;
  const char *so, *se, *cmd;
  size_t so_len, se_len, cmd_len;
} cmd_rec_t;
/** @return 0, or MPC_EFORMAT when `p` is not a complete record. */
int cmd_rec_decode(cmd_rec_t *r, const void *p, size_t len);
static inline int cmd_exec_failed(const cmd_exec_t *ex) {
  return ex->exitval != 0 || ex->sig != 0 || ex->timed_out || ex->spawn_err;
}

/* ---- joblog (joblog.c) ------------------------------------------------------- */

#define CMD_JOBLOG_HEADER                                                      \
  "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

typedef struct cmd_joblog_line {
  uint64_t seq;
  const char *host;
  double start, runtime;
  uint64_t send, receive;
  int exitval, sig;
  const char *cmd;
  size_t cmd_len;
} cmd_joblog_line_t;

/** Append one joblog line (newlines in the command written as "\n"). */
int cmd_joblog_format(mpc_buf_t *out, const cmd_joblog_line_t *l);
/** Append the joblog form of a command (each newline as the two bytes \n). */
int cmd_joblog_escape(mpc_buf_t *out, const char *cmd, size_t len);

/** What a joblog says: every well-formed line, by command and by seq. */
typedef struct cmd_joblog_entry {
  uint64_t seq;
  int failed;       /* Exitval != 0 or Signal != 0 */
  char *cmd;        /* as written (escaped), NUL-terminated */
  size_t cmd_len;
} cmd_joblog_entry_t;
typedef struct cmd_joblog {
  cmd_joblog_entry_t *e;
  size_t n, cap;
  size_t *hcmd;     /* open-addressing: index+1 of the LAST entry per command */
  size_t *hseq;     /* the same by seq */
  size_t hcap;
  size_t bad;       /* malformed lines skipped */
} cmd_joblog_t;
/** Parse `text`; malformed lines are counted in bad and their line numbers
 *  described in `warn` (may be NULL). */
int cmd_joblog_parse(cmd_joblog_t *j, const char *text, size_t len,
                     mpc_buf_t *warn);
/** Read and parse a file; a missing file is an empty joblog. */
int cmd_joblog_load(cmd_joblog_t *j, const char *path, mpc_buf_t *warn);
void cmd_joblog_free(cmd_joblog_t *j);
/** Look a task up: its command (unescaped, {%} left out at `slots`) and seq.
 *  @return NULL if not in the log, else the last entry that matches. */
const cmd_joblog_entry_t *cmd_joblog_find(const cmd_joblog_t *j,
                                          const char *cmd, size_t len,
                                          const uint32_t *slots, size_t nslots,
                                          uint64_t seq);

#endif
