/* cmd job, running commands: cmd_spawn() (capture, status, process group,
 * timeouts, environment), the process-group table, and whole runs of the job
 * through the serial in-process driver (mpct_job_run). */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../jobs/cmd/cmd.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int spawn(const char *cmd, double timeout, mpc_buf_t *so, mpc_buf_t *se,
                 cmd_exec_t *ex) {
  mpc_buf_clear(so);
  mpc_buf_clear(se);
  char *const *envp = cmd_task_env(5, 0, 0, "testhost");
  CU_ASSERT_PTR_NOT_NULL_FATAL(envp);
  return cmd_spawn(cmd, envp, timeout, NULL, 0, so, se, ex);
}

static int read_file(const char *path, mpc_buf_t *b) {
  mpc_buf_clear(b);
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -errno;
  for (;;) {
    if (mpc_buf_reserve(b, 65536))
      break;
    ssize_t r = read(fd, b->data + b->len, b->cap - b->len);
    if (r <= 0)
      break;
    b->len += (size_t)r;
  }
  close(fd);
  mpc_buf_str(b);
  return 0;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fwrite(text, 1, strlen(text), f);
  fclose(f);
}

static char g_dir[64];

static const char *tpath(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static void mkdir_tmp(void) {
  strcpy(g_dir, "/tmp/mpct_cmdXXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_dir));
}

static void rm_tmp(void) {
  char c[128];
  snprintf(c, sizeof c, "rm -rf '%s'", g_dir);
  CU_ASSERT_EQUAL(system(c), 0);
}

typedef struct jr {
  mpc_buf_t out, err, msg;
  mpc_job_report_t rep;
  int rc;
} jr_t;

static void jr_free(jr_t *r) {
  mpc_buf_free(&r->out);
  mpc_buf_free(&r->err);
  mpc_buf_free(&r->msg);
}

/* Like mpct_job_run, but with env.resume set (mpct_job_run has no env). */
static int drive_resume(const mpc_job_t *job, int argc, char **argv,
                        mpc_job_report_t *rep, mpc_buf_t *err) {
  mpc_job_env_t env = {.rank = 0, .nranks = 1, .workers = 1, .resume = 1};
  mpc_buf_t in = MPC_BUF_INIT, key = MPC_BUF_INIT, out = MPC_BUF_INIT;
  void *st = NULL;
  memset(rep, 0, sizeof *rep);
  int rc = job->init(argc, argv, &env, &st, err);
  if (rc < 0)
    return rc;
  for (uint64_t seq = 0;; seq++) {
    mpc_buf_clear(&in);
    mpc_buf_clear(&key);
    rc = job->next(st, &in, &key);
    if (rc <= 0)
      break;
    mpc_buf_clear(&out);
    int code = job->run(st, in.data, in.len, &out);
    mpc_job_result_t r = {.seq = seq, .key = mpc_buf_str(&key), .input = in.data,
                          .input_len = in.len, .status = code ? MPC_TASK_ERROR : MPC_TASK_OK,
                          .code = code, .output = out.data, .output_len = out.len,
                          .attempts = 1, .host = "localhost"};
    rep->tasks++;
    code ? rep->failed++ : rep->ok++;
    if ((rc = job->gather(st, &r)) < 0)
      break;
  }
  if (rc >= 0)
    rc = job->finish(st, rep);
  job->fini(st);
  mpc_buf_free(&in);
  mpc_buf_free(&key);
  mpc_buf_free(&out);
  return rc < 0 ? rc : 0;
}

/* Run the cmd job on the NULL-terminated arguments, stdout and stderr
 * captured into r->out and r->err. */
static void run_job(jr_t *r, int resume, ...) {
  char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, resume);
  argv[argc++] = "cmd";
  const char *a;
  while ((a = va_arg(ap, const char *)) && argc < 63)
    argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  memset(r, 0, sizeof *r);
  char po[] = "/tmp/mpct_cmdoutXXXXXX", pe[] = "/tmp/mpct_cmderrXXXXXX";
  int fo = mkstemp(po), fe = mkstemp(pe);
  CU_ASSERT_FATAL(fo >= 0 && fe >= 0);
  fflush(stdout);
  fflush(stderr);
  int s1 = dup(1), s2 = dup(2);
  dup2(fo, 1);
  dup2(fe, 2);
  r->rc = resume ? drive_resume(&mpc_job_cmd, argc, argv, &r->rep, &r->msg)
                 : mpct_job_run(&mpc_job_cmd, argc, argv, &r->rep, &r->msg);
  fflush(stdout);
  fflush(stderr);
  dup2(s1, 1);
  dup2(s2, 2);
  close(s1);
  close(s2);
  close(fo);
  close(fe);
  read_file(po, &r->out);
  read_file(pe, &r->err);
  unlink(po);
  unlink(pe);
  mpc_buf_str(&r->msg);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* ---- cmd_spawn ------------------------------------------------------------------------ */

static void test_spawn_status(void) {
  mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
  cmd_exec_t ex;
  CU_ASSERT_EQUAL(spawn("true", 0, &so, &se, &ex), 0); /* opens the cached /dev/null */
  int fds = mpct_count_fds();
  CU_ASSERT_EQUAL(spawn("echo out; echo err >&2; exit 3", 0, &so, &se, &ex), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&so), "out\n");
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&se), "err\n");
  CU_ASSERT_EQUAL(ex.exitval, 3);
  CU_ASSERT_EQUAL(ex.sig, 0);
  CU_ASSERT(cmd_exec_failed(&ex));
  CU_ASSERT(ex.start > 1e9);
  CU_ASSERT_EQUAL(spawn("kill -9 $$", 0, &so, &se, &ex), 0);
  CU_ASSERT_EQUAL(ex.exitval, 0);
  CU_ASSERT_EQUAL(ex.sig, SIGKILL);
  CU_ASSERT(cmd_exec_failed(&ex));
  CU_ASSERT_EQUAL(spawn("true", 0, &so, &se, &ex), 0);
  CU_ASSERT_FALSE(cmd_exec_failed(&ex));
  CU_ASSERT_EQUAL(so.len + se.len, 0);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds); /* nothing leaked */
  mpc_buf_free(&so);
  mpc_buf_free(&se);
}

static void test_spawn_environment(void) {
  mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
  cmd_exec_t ex;
  setenv("MPC_TASK_ID", "stale", 1);
  /* Own process group, stdin /dev/null, the MPC_* variables (the stale one
   * replaced), nothing open beyond 0-2 (ls itself opens one fd). */
  CU_ASSERT_EQUAL(spawn("echo \"$MPC_TASK_ID $MPC_RANK $MPC_WORKER $MPC_HOST\"; "
                        "[ \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$ ] && echo own-group; "
                        "cat; ls /proc/self/fd | wc -l",
                        0, &so, &se, &ex),
                  0);
  unsetenv("MPC_TASK_ID");
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&so), "5 0 0 testhost\nown-group\n4\n");
  CU_ASSERT_EQUAL(ex.exitval, 0);
  /* An ignored SIGPIPE (the test runner ignores it) is not inherited. */
  CU_ASSERT_EQUAL(spawn("yes | head -n 2", 20, &so, &se, &ex), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&so), "y\ny\n");
  CU_ASSERT_FALSE(ex.timed_out);
  mpc_buf_free(&so);
  mpc_buf_free(&se);
}

/* In a child with 0, 1 and 2 closed (a daemonised worker): the pipes land on
 * low descriptors and must still reach the command's stdout and stderr. */
static int closed_std_child(void *arg) {
  (void)arg;
  close(0);
  close(1);
  close(2);
  mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
  cmd_exec_t ex;
  if (cmd_spawn("echo out; echo err >&2; cat", cmd_task_env(1, 0, 0, "h"), 10, NULL, 0,
                &so, &se, &ex) != 0)
    return 1;
  if (ex.exitval != 0 || ex.timed_out)
    return 2;
  if (so.len != 4 || memcmp(so.data, "out\n", 4) != 0)
    return 3;
  if (se.len != 4 || memcmp(se.data, "err\n", 4) != 0)
    return 4;
  return 0;
}

static void test_spawn_closed_std_fds(void) {
  CU_ASSERT_EQUAL(mpct_run_child(closed_std_child, NULL, 30), 0);
}

static int all_bytes(const mpc_buf_t *b, char c) {
  for (size_t i = 0; i < b->len; i++)
    if (b->data[i] != (unsigned char)c)
      return 0;
  return 1;
}

static void test_spawn_big_output(void) {
  mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
  cmd_exec_t ex;
  /* Both streams written at the same time, far beyond pipe capacity. */
  CU_ASSERT_EQUAL(spawn("head -c 3000000 /dev/zero | tr '\\0' o & "
                        "head -c 2500000 /dev/zero | tr '\\0' e >&2; wait",
                        60, &so, &se, &ex),
                  0);
  CU_ASSERT_FALSE(ex.timed_out);
  CU_ASSERT_EQUAL(ex.exitval, 0);
  CU_ASSERT_EQUAL(so.len, 3000000);
  CU_ASSERT_EQUAL(se.len, 2500000);
  CU_ASSERT(all_bytes(&so, 'o'));
  CU_ASSERT(all_bytes(&se, 'e'));
  mpc_buf_free(&so);
  mpc_buf_free(&se);
}

static void wait_dead(pid_t pid) {
  for (int i = 0; i < 200 && mpct_pid_alive(pid); i++)
    usleep(10000);
}

static void test_spawn_timeout_kills_group(void) {
  mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
  cmd_exec_t ex;
  CU_ASSERT_EQUAL(spawn("sleep 30 & echo $!; sleep 30", 0.3, &so, &se, &ex), 0);
  CU_ASSERT(ex.timed_out);
  CU_ASSERT_EQUAL(ex.exitval, -1);
  CU_ASSERT_EQUAL(ex.sig, SIGTERM);
  pid_t bg = (pid_t)atoi(mpc_buf_str(&so));
  CU_ASSERT_FATAL(bg > 0);
  wait_dead(bg);
  CU_ASSERT_FALSE(mpct_pid_alive(bg)); /* the background child died too */
  /* A command that ignores SIGTERM gets SIGKILL. */
  CU_ASSERT_EQUAL(spawn("trap '' TERM; echo $$; sleep 30; echo not-reached", 0.3,
                        &so, &se, &ex),
                  0);
  CU_ASSERT(ex.timed_out);
  CU_ASSERT_EQUAL(ex.sig, SIGKILL);
  CU_ASSERT_PTR_NULL(strstr(mpc_buf_str(&so), "not-reached"));
  mpc_buf_free(&so);
  mpc_buf_free(&se);
}

/* A "worker" that is SIGKILLed while its command runs leaves the command's
 * group behind; the table lets the rank (fini) or the next task in the slot
 * kill it. */
static pid_t orphan_group(cmd_pgtab_t *tab) {
  fflush(NULL);
  pid_t w = fork();
  if (w == 0) {
    mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
    cmd_exec_t ex;
    char *const *envp = cmd_task_env(1, 0, 0, "h");
    cmd_spawn("sleep 30 & sleep 30", envp, 0, tab, 3, &so, &se, &ex);
    _exit(0);
  }
  pid_t pg = 0;
  for (int i = 0; i < 500 && !(pg = tab->pg[2 * 3]); i++)
    usleep(10000);
  kill(w, SIGKILL);
  waitpid(w, NULL, 0);
  return pg;
}

static void test_pgtab_reaps_orphans(void) {
  cmd_pgtab_t tab = {0};
  CU_ASSERT_EQUAL_FATAL(cmd_pgtab_init(&tab, 8), 0);
  pid_t pg = orphan_group(&tab);
  CU_ASSERT_FATAL(pg > 0);
  CU_ASSERT(mpct_pid_alive(pg)); /* the worker is gone, its command is not */
  cmd_pgtab_reap_all(&tab);
  wait_dead(pg);
  CU_ASSERT_FALSE(mpct_pid_alive(pg));
  CU_ASSERT_EQUAL(tab.pg[2 * 3], 0);
  /* The next command started in that slot cleans up too. */
  pg = orphan_group(&tab);
  CU_ASSERT_FATAL(pg > 0);
  mpc_buf_t so = MPC_BUF_INIT, se = MPC_BUF_INIT;
  cmd_exec_t ex;
  CU_ASSERT_EQUAL(cmd_spawn("true", cmd_task_env(2, 0, 3, "h"), 0, &tab, 3, &so, &se, &ex), 0);
  wait_dead(pg);
  CU_ASSERT_FALSE(mpct_pid_alive(pg));
  CU_ASSERT_EQUAL(tab.pg[2 * 3], 0);
  cmd_pgtab_free(&tab);
  mpc_buf_free(&so);
  mpc_buf_free(&se);
}

/* ---- the job ------------------------------------------------------------------------------ */

static void test_job_awkward_names(void) {
  static const char *names[] = {
      "a b/c d.txt", "it's/\"q\".x", "$HOME/`id`.sh", "new\nline.d/f",
      "-n",          "*",            "back\\slash.e", "tab\there/x;y&z|w.tar.gz",
  };
  enum { N = sizeof names / sizeof names[0] };
  mkdir_tmp();
  jr_t r;
  run_job(&r, 0, "--joblog", tpath("log"),
          "printf '<%s>' {} {.} {/} {//} {/.} {#} {%}; echo", ":::", names[0], names[1],
          names[2], names[3], names[4], names[5], names[6], names[7], NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(r.rep.ok, N);
  mpc_buf_t want = MPC_BUF_INIT;
  for (int i = 0; i < N; i++) {
    int kinds[] = {CMD_P_ARG, CMD_P_DOT, CMD_P_BASE, CMD_P_DIR, CMD_P_BDOT};
    for (int k = 0; k < 5; k++) {
      CU_ASSERT_EQUAL(mpc_buf_append(&want, "<", 1), 0);
      CU_ASSERT_EQUAL(cmd_xform(&want, kinds[k], names[i], strlen(names[i])), 0);
      CU_ASSERT_EQUAL(mpc_buf_append(&want, ">", 1), 0);
    }
    CU_ASSERT_EQUAL(mpc_buf_printf(&want, "<%d><1>\n", i + 1), 0);
  }
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), mpc_buf_str(&want));
  /* The joblog reads back: one successful line per task, by command. */
  cmd_joblog_t j = {0};
  CU_ASSERT_EQUAL_FATAL(cmd_joblog_load(&j, tpath("log"), NULL), 0);
  CU_ASSERT_EQUAL(j.n, N);
  CU_ASSERT_EQUAL(j.bad, 0);
  for (size_t i = 0; i < j.n; i++) {
    CU_ASSERT_EQUAL(j.e[i].seq, i + 1);
    CU_ASSERT_FALSE(j.e[i].failed);
    CU_ASSERT_PTR_NULL(strchr(j.e[i].cmd, '\n'));
  }
  cmd_joblog_free(&j);
  mpc_buf_free(&want);
  jr_free(&r);
  rm_tmp();
}

static void test_job_failures_in_joblog(void) {
  mkdir_tmp();
  jr_t r;
  run_job(&r, 0, "--joblog", tpath("log"), "echo x{}; [ {} = ok ] || kill -{} $$", ":::",
          "ok", "9", "15", NULL);
  jr_free(&r);
  run_job(&r, 0, "--joblog", tpath("log"), "echo {}; exit {}", ":::", "0", "3", "0", NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(r.rep.ok, 2);
  CU_ASSERT_EQUAL(r.rep.failed, 1);
  /* Output of the failed command is still delivered. */
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "0\n3\n0\n");
  mpc_buf_t log = MPC_BUF_INIT;
  read_file(tpath("log"), &log);
  /* Overwritten (no resume): header + 3 lines, Receive = 2 bytes each. */
  CU_ASSERT_EQUAL(count_lines(mpc_buf_str(&log)), 4);
  CU_ASSERT_EQUAL(strncmp((char *)log.data, CMD_JOBLOG_HEADER, strlen(CMD_JOBLOG_HEADER)), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&log), "\t0\t2\t3\t0\techo 3; exit 3\n"));
  jr_free(&r);
  run_job(&r, 0, "--joblog", tpath("log2"), "echo x{}; [ {} = ok ] || kill -{} $$", ":::",
          "ok", "9", "15", NULL);
  CU_ASSERT_EQUAL(r.rep.failed, 2);
  read_file(tpath("log2"), &log);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&log), "\t0\t3\t0\t9\techo x9; [ 9 = ok ] || kill -9 $$\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&log), "\t0\t4\t0\t15\techo x15;"));
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&log), "\t0\t4\t0\t0\techo xok;"));
  mpc_buf_free(&log);
  jr_free(&r);
  rm_tmp();
}

static void test_job_sources(void) {
  mkdir_tmp();
  jr_t r;
  /* -a: every line a full command; blank lines are no tasks. */
  write_text(tpath("tasks"), "echo one\n\necho 'two  three' | tr a-z A-Z\nexit 4\n");
  run_job(&r, 0, "-a", tpath("tasks"), NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "one\nTWO  THREE\n");
  CU_ASSERT_EQUAL(r.rep.tasks, 3);
  CU_ASSERT_EQUAL(r.rep.failed, 1);
  jr_free(&r);
  /* :::: file (empty line = empty argument) and the cartesian product. */
  write_text(tpath("args"), "x y\n\nz\n");
  run_job(&r, 0, "echo", "[{}]", "::::", tpath("args"), NULL);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "[x y]\n[]\n[z]\n");
  jr_free(&r);
  run_job(&r, 0, "echo {#}:{1}-{2}", ":::", "a", "b", ":::", "1", "2", NULL);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "1:a-1\n2:a-2\n3:b-1\n4:b-2\n");
  jr_free(&r);
  /* No replacement string: the argument is appended, quoted. */
  run_job(&r, 0, "printf", "'%s\\n'", ":::", "a b", "$x", NULL);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "a b\n$x\n");
  jr_free(&r);
  /* A NUL byte in an argument fails that task only, with a message. */
  int fd = open(tpath("nul"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CU_ASSERT_EQUAL(write(fd, "ok1\nbad\0x\nok2\n", 14), 14);
  close(fd);
  run_job(&r, 0, "echo", "::::", tpath("nul"), NULL);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "ok1\nok2\n");
  CU_ASSERT_EQUAL(r.rep.failed, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&r.err), "task 2: the command contains a NUL byte"));
  jr_free(&r);
  rm_tmp();
}

static void test_job_results_dir(void) {
  mkdir_tmp();
  jr_t r;
  run_job(&r, 0, "--results", tpath("res"), "echo out {}; echo err {} >&2; exit {}", ":::",
          "0", "2", NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(r.out.len, 0); /* nothing printed */
  CU_ASSERT_EQUAL(r.rep.failed, 1);
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(read_file(tpath("res/2/stdout"), &b), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b), "out 2\n");
  CU_ASSERT_EQUAL(read_file(tpath("res/2/stderr"), &b), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b), "err 2\n");
  CU_ASSERT_EQUAL(read_file(tpath("res/1/cmd"), &b), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b), "echo out 0; echo err 0 >&2; exit 0\n");
  mpc_buf_free(&b);
  jr_free(&r);
  rm_tmp();
}

static void test_job_dry_run(void) {
  mkdir_tmp();
  jr_t r;
  char tmpl[300];
  snprintf(tmpl, sizeof tmpl, "touch %s/{} # {%%} {#}", g_dir);
  run_job(&r, 0, "--dry-run", "--joblog", tpath("log"), tmpl, ":::", "f 1", "f2", NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(r.rep.tasks, 0);
  char want[700];
  snprintf(want, sizeof want, "touch %s/'f 1' # {%%} 1\ntouch %s/f2 # {%%} 2\n", g_dir, g_dir);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), want);
  CU_ASSERT_NOT_EQUAL(access(tpath("f2"), F_OK), 0); /* nothing ran */
  CU_ASSERT_NOT_EQUAL(access(tpath("log"), F_OK), 0);
  jr_free(&r);
  rm_tmp();
}

static void test_job_resume(void) {
  mkdir_tmp();
  jr_t r;
  const char *log = tpath("log");
  run_job(&r, 0, "--joblog", log, "echo {}; test {} != b", ":::", "a", "b", "c", NULL);
  CU_ASSERT_EQUAL(r.rep.failed, 1);
  jr_free(&r);
  /* --resume-failed: b again (it fails again), the rest skipped. */
  run_job(&r, 0, "--joblog", log, "--resume-failed", "echo {}; test {} != b", ":::", "a",
          "b", "c", "d", NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "b\nd\n");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&r.err), "2 tasks already in"));
  jr_free(&r);
  /* --resume: everything in the log is skipped, failed or not. */
  run_job(&r, 1, "--joblog", log, "echo {}; test {} != b", ":::", "a", "b", "c", "d", "e",
          NULL);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "e\n");
  jr_free(&r);
  cmd_joblog_t j = {0};
  CU_ASSERT_EQUAL(cmd_joblog_load(&j, log, NULL), 0);
  CU_ASSERT_EQUAL(j.n, 6); /* a b c, b d, e */
  CU_ASSERT_EQUAL(j.bad, 0);
  cmd_joblog_free(&j);

  /* After a kill -9: whole lines for the finished tasks and a cut-off one. */
  write_text(log, CMD_JOBLOG_HEADER
             "1\th\t1795750350.034\t     0.004\t0\t2\t0\t0\techo t1\n"
             "3\th\t1795750350.034\t     0.004\t0\t2\t0\t0\techo t3\n"
             "4\th\t1795750350.0");
  run_job(&r, 1, "--joblog", log, "echo", ":::", "t1", "t2", "t3", "t4", "t5", NULL);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "t2\nt4\nt5\n");
  jr_free(&r);
  CU_ASSERT_EQUAL(cmd_joblog_load(&j, log, NULL), 0);
  CU_ASSERT_EQUAL(j.n, 5); /* t1 t3 t2 t4 t5 */
  CU_ASSERT_EQUAL(j.bad, 1); /* the cut-off line, now terminated */
  for (int i = 1; i <= 5; i++) {
    char c[32];
    snprintf(c, sizeof c, "echo t%d", i);
    CU_ASSERT_PTR_NOT_NULL(cmd_joblog_find(&j, c, strlen(c), NULL, 0, 0));
  }
  cmd_joblog_free(&j);
  rm_tmp();
}

static void test_job_task_timeout(void) {
  mkdir_tmp();
  jr_t r;
  run_job(&r, 0, "--task-timeout", "0.3", "--joblog", tpath("log"), "echo start {}; sleep {}",
          ":::", "30", "0", NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(r.rep.failed, 1);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.out), "start 30\nstart 0\n");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&r.err), "task 1 timed out"));
  mpc_buf_t log = MPC_BUF_INIT;
  read_file(tpath("log"), &log);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&log), "\t-1\t15\techo start 30; sleep 30\n"));
  mpc_buf_free(&log);
  jr_free(&r);
  rm_tmp();
}

/* Outcomes decided by the pool, not the command: no record in the output. */
static void test_job_pool_outcomes(void) {
  mkdir_tmp();
  char *argv[] = {"cmd", "--joblog", (char *)tpath("log"), "sleep", ":::", "1", NULL};
  mpc_job_env_t env = {.rank = 0, .nranks = 1, .workers = 1};
  mpc_buf_t err = MPC_BUF_INIT, in = MPC_BUF_INIT, key = MPC_BUF_INIT;
  void *st = NULL;
  CU_ASSERT_EQUAL_FATAL(mpc_job_cmd.init(6, argv, &env, &st, &err), 0);
  CU_ASSERT_EQUAL_FATAL(mpc_job_cmd.next(st, &in, &key), 1);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&key), "sleep 1");
  mpc_job_result_t r = {.seq = 0, .key = "sleep 1", .input = in.data, .input_len = in.len,
                        .status = MPC_TASK_TIMEOUT, .code = 0, .output = "timed out",
                        .output_len = 9, .attempts = 1, .host = "n1", .worker = 1,
                        .seconds = 2.0};
  int fe = open("/dev/null", O_WRONLY), s2 = dup(2);
  dup2(fe, 2);
  CU_ASSERT_EQUAL(mpc_job_cmd.gather(st, &r), 0);
  r.status = MPC_TASK_CRASHED;
  r.code = SIGSEGV;
  CU_ASSERT_EQUAL(mpc_job_cmd.gather(st, &r), 0);
  r.status = MPC_TASK_CANCELED;
  CU_ASSERT_EQUAL(mpc_job_cmd.gather(st, &r), 0);
  r.status = MPC_TASK_OK;
  r.resumed = 1; /* mpc-run's journal says done: the joblog gets its line */
  r.output = NULL;
  r.output_len = 0;
  CU_ASSERT_EQUAL(mpc_job_cmd.gather(st, &r), 0);
  dup2(s2, 2);
  close(s2);
  close(fe);
  mpc_job_cmd.fini(st);
  mpc_buf_t log = MPC_BUF_INIT;
  read_file(tpath("log"), &log);
  const char *l = mpc_buf_str(&log);
  CU_ASSERT_EQUAL(count_lines(l), 4); /* header, timeout, crash, resumed; not canceled */
  CU_ASSERT_PTR_NOT_NULL(strstr(l, "\t0\t0\tsleep 1\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(l, "1\tn1\t"));
  CU_ASSERT_PTR_NOT_NULL(strstr(l, "     2.000\t0\t"));
  CU_ASSERT_PTR_NOT_NULL(strstr(l, "\t-1\t9\tsleep 1\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(l, "\t-1\t11\tsleep 1\n"));
  mpc_buf_free(&log);
  mpc_buf_free(&err);
  mpc_buf_free(&in);
  mpc_buf_free(&key);
  rm_tmp();
}

static void test_job_usage_errors(void) {
  jr_t r;
  run_job(&r, 0, "--bogus", "echo", ":::", "a", NULL);
  CU_ASSERT_EQUAL(r.rc, MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&r.msg), "--bogus"));
  jr_free(&r);
  run_job(&r, 0, "echo {2}", ":::", "a", NULL);
  CU_ASSERT_EQUAL(r.rc, MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&r.msg), "{2}"));
  jr_free(&r);
  run_job(&r, 0, "--resume-failed", "echo", ":::", "a", NULL);
  CU_ASSERT_EQUAL(r.rc, MPC_EUSAGE);
  jr_free(&r);
  run_job(&r, 0, "--task-timeout", "soon", "echo", ":::", "a", NULL);
  CU_ASSERT_EQUAL(r.rc, MPC_EUSAGE);
  jr_free(&r);
  run_job(&r, 0, "echo", "::::", "/nonexistent/args", NULL);
  CU_ASSERT_EQUAL(r.rc, -ENOENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&r.msg), "/nonexistent/args"));
  jr_free(&r);
}

/* Many tasks with large outputs: each task's stdout arrives as one block. */
static void test_job_large_outputs(void) {
  jr_t r;
  run_job(&r, 0, "head -c 200000 /dev/zero | tr '\\0' {}; echo {} >&2", ":::", "a", "b",
          "c", "d", "e", "f", NULL);
  CU_ASSERT_EQUAL_FATAL(r.out.len, 6 * 200000);
  int blocks = 0;
  for (size_t i = 0; i < r.out.len; i++)
    blocks += i == 0 || r.out.data[i] != r.out.data[i - 1];
  CU_ASSERT_EQUAL(blocks, 6);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r.err), "a\nb\nc\nd\ne\nf\n");
  jr_free(&r);
}

MPC_TESTS(cmd_run) = {
    {"spawn: exit status, signal, capture, no fd leak", test_spawn_status},
    {"spawn: environment, stdin, process group, SIGPIPE", test_spawn_environment},
    {"spawn: works with 0-2 closed in the worker", test_spawn_closed_std_fds},
    {"spawn: megabytes on both streams, no deadlock", test_spawn_big_output},
    {"spawn: timeout kills the whole group", test_spawn_timeout_kills_group},
    {"groups of killed workers are killed", test_pgtab_reaps_orphans},
    {"job: every replacement string on awkward names", test_job_awkward_names},
    {"job: failing and crashing commands in the joblog", test_job_failures_in_joblog},
    {"job: -a, ::::, cartesian ::: groups, append, NUL", test_job_sources},
    {"job: --results DIR", test_job_results_dir},
    {"job: --dry-run runs nothing", test_job_dry_run},
    {"job: --resume, --resume-failed, after kill -9", test_job_resume},
    {"job: --task-timeout keeps output, logs -1/15", test_job_task_timeout},
    {"job: timeouts, crashes, journal-resumed tasks from mpc-run", test_job_pool_outcomes},
    {"job: usage errors", test_job_usage_errors},
    {"job: large outputs stay whole", test_job_large_outputs},
    CU_TEST_INFO_NULL,
};
