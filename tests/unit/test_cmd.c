/* cmd job, pure parts: replacement strings, quoting, template expansion, the
 * task and result encodings, the joblog format and its parser. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../jobs/cmd/cmd.h"

static const char *xf(int kind, const char *s) {
  static mpc_buf_t b;
  mpc_buf_clear(&b);
  CU_ASSERT_EQUAL(cmd_xform(&b, kind, s, strlen(s)), 0);
  return mpc_buf_str(&b);
}

/* Expected values as printed by GNU parallel 20221122 for the same inputs. */
static void test_xform_gnu(void) {
  static const struct {
    const char *in, *dot, *base, *dir, *bdot;
  } c[] = {
      {"dir/sub.d/file.tar.gz", "dir/sub.d/file.tar", "file.tar.gz", "dir/sub.d", "file.tar"},
      {"noext", "noext", "noext", ".", "noext"},
      {"/abs", "/abs", "abs", "/", "abs"},
      {"a b.c", "a b", "a b.c", ".", "a b"},
      {".hidden", "", ".hidden", ".", ""},
      {"dir/", "dir/", "", ".", ""},
      {"file.", "file", "file.", ".", "file"},
      {"a/b/", "a/b/", "", "a", ""},
      {"a//b", "a//b", "b", "a", "b"},
      {"/", "/", "", "/", ""},
      {"a.b/c", "a.b/c", "c", "a.b", "c"},
      {"..", ".", "..", ".", "."},
      {"x/.y.z", "x/.y", ".y.z", "x", ".y"},
      {"", "", "", ".", ""},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    CU_ASSERT_STRING_EQUAL(xf(CMD_P_ARG, c[i].in), c[i].in);
    CU_ASSERT_STRING_EQUAL(xf(CMD_P_DOT, c[i].in), c[i].dot);
    CU_ASSERT_STRING_EQUAL(xf(CMD_P_BASE, c[i].in), c[i].base);
    CU_ASSERT_STRING_EQUAL(xf(CMD_P_DIR, c[i].in), c[i].dir);
    CU_ASSERT_STRING_EQUAL(xf(CMD_P_BDOT, c[i].in), c[i].bdot);
  }
}

static const char *q(const char *s, size_t n) {
  static mpc_buf_t b;
  mpc_buf_clear(&b);
  CU_ASSERT_EQUAL(cmd_shell_quote(&b, s, n), 0);
  return mpc_buf_str(&b);
}

static void test_quote(void) {
  CU_ASSERT_STRING_EQUAL(q("plain-file_1.txt", 16), "plain-file_1.txt");
  CU_ASSERT_STRING_EQUAL(q("dir/a,b:c+d@e%f", 15), "dir/a,b:c+d@e%f");
  CU_ASSERT_STRING_EQUAL(q("", 0), "''");
  CU_ASSERT_STRING_EQUAL(q("a b", 3), "'a b'");
  CU_ASSERT_STRING_EQUAL(q("it's", 4), "'it'\\''s'");
  CU_ASSERT_STRING_EQUAL(q("'", 1), "''\\'''");
  CU_ASSERT_STRING_EQUAL(q("$HOME", 5), "'$HOME'");
  CU_ASSERT_STRING_EQUAL(q("a\nb", 3), "'a\nb'");
  CU_ASSERT_STRING_EQUAL(q("x=1", 3), "'x=1'"); /* never an assignment */
  CU_ASSERT_STRING_EQUAL(q("~root", 5), "'~root'");
}

static void test_parse(void) {
  cmd_tmpl_t t;
  const char *s = "cp {} {.}.bak {/} {//} {/.} {#} {%} {2} {1.} {3//} {x} {0} ${HOME} {";
  CU_ASSERT_EQUAL_FATAL(cmd_tmpl_parse(&t, s, strlen(s)), 0);
  CU_ASSERT(t.has_repl);
  CU_ASSERT_EQUAL(t.max_group, 3);
  int kinds[32], groups[32], n = 0;
  for (size_t i = 0; i < t.n; i++)
    if (t.p[i].kind != CMD_P_LIT) {
      kinds[n] = t.p[i].kind;
      groups[n++] = t.p[i].group;
    }
  int want[] = {CMD_P_ARG, CMD_P_DOT, CMD_P_BASE, CMD_P_DIR, CMD_P_BDOT,
                CMD_P_SEQ, CMD_P_SLOT, CMD_P_ARG, CMD_P_DOT, CMD_P_DIR};
  int wantg[] = {0, 0, 0, 0, 0, 0, 0, 2, 1, 3};
  CU_ASSERT_EQUAL_FATAL(n, 10);
  for (int i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(kinds[i], want[i]);
    CU_ASSERT_EQUAL(groups[i], wantg[i]);
  }
  /* The last literal keeps the unknown braces as they were. */
  const cmd_piece_t *last = &t.p[t.n - 1];
  CU_ASSERT_EQUAL(last->kind, CMD_P_LIT);
  CU_ASSERT_NSTRING_EQUAL(t.text + last->off, " {x} {0} ${HOME} {", last->len);
  cmd_tmpl_free(&t);

  CU_ASSERT_EQUAL_FATAL(cmd_tmpl_parse(&t, "echo hi", 7), 0);
  CU_ASSERT_FALSE(t.has_repl);
  CU_ASSERT_EQUAL(t.n, 1);
  cmd_tmpl_free(&t);
}

static const char *expand(const char *tmpl, const char *const *args,
                          size_t nargs, uint64_t seq, mpc_buf_t *slots) {
  static mpc_buf_t b;
  cmd_tmpl_t t;
  size_t lens[8];
  for (size_t i = 0; i < nargs; i++)
    lens[i] = strlen(args[i]);
  mpc_buf_clear(&b);
  mpc_buf_clear(slots);
  if (tmpl) {
    CU_ASSERT_EQUAL_FATAL(cmd_tmpl_parse(&t, tmpl, strlen(tmpl)), 0);
  }
  CU_ASSERT_EQUAL(cmd_tmpl_expand(tmpl ? &t : NULL, args, lens, nargs, seq, &b, slots), 0);
  if (tmpl)
    cmd_tmpl_free(&t);
  return mpc_buf_str(&b);
}

static void test_expand(void) {
  mpc_buf_t slots = MPC_BUF_INIT;
  const char *one[] = {"my file.txt"};
  CU_ASSERT_STRING_EQUAL(expand("wc -l", one, 1, 1, &slots), "wc -l 'my file.txt'");
  CU_ASSERT_STRING_EQUAL(expand("mv {} {.}.bak # {#}", one, 1, 7, &slots),
                         "mv 'my file.txt' 'my file'.bak # 7");
  CU_ASSERT_EQUAL(slots.len, 0);
  /* {#} alone is a replacement string: nothing is appended. */
  CU_ASSERT_STRING_EQUAL(expand("echo {#}", one, 1, 3, &slots), "echo 3");
  /* {%} is left for the worker; its offsets are recorded. */
  CU_ASSERT_STRING_EQUAL(expand("w{%}:{%}", one, 1, 1, &slots), "w:");
  CU_ASSERT_EQUAL_FATAL(slots.len, 8);
  uint32_t so[2];
  memcpy(so, slots.data, 8);
  CU_ASSERT_EQUAL(so[0], 1);
  CU_ASSERT_EQUAL(so[1], 2);
  mpc_buf_t r = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(cmd_render(&r, "w:", 2, so, 2, "12"), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&r), "w12:12");
  /* Two sources: {} is all of them, {N} one of them. */
  const char *two[] = {"a b", "x.y"};
  CU_ASSERT_STRING_EQUAL(expand("echo {2.} {1} {}", two, 2, 1, &slots),
                         "echo x 'a b' 'a b' x.y");
  CU_ASSERT_STRING_EQUAL(expand("echo", two, 2, 1, &slots), "echo 'a b' x.y");
  /* No template: the arguments are the command, unquoted. */
  const char *cmd[] = {"echo \"$HOME\" | wc -c"};
  CU_ASSERT_STRING_EQUAL(expand(NULL, cmd, 1, 1, &slots), "echo \"$HOME\" | wc -c");
  mpc_buf_free(&slots);
  mpc_buf_free(&r);
}

static void test_task_encoding(void) {
  mpc_buf_t in = MPC_BUF_INIT;
  uint32_t slots[20];
  for (int i = 0; i < 20; i++)
    slots[i] = (uint32_t)i;
  cmd_task_t t;
  CU_ASSERT_EQUAL(cmd_task_encode(&in, 42, slots, 2, "echo a\0b", 8), 0);
  CU_ASSERT_EQUAL_FATAL(cmd_task_decode(&t, in.data, in.len), 0);
  CU_ASSERT_EQUAL(t.seq, 42);
  CU_ASSERT_EQUAL(t.nslots, 2);
  CU_ASSERT_EQUAL(t.slots[1], 1);
  CU_ASSERT_EQUAL(t.len, 8);
  CU_ASSERT(memcmp(t.cmd, "echo a\0b", 8) == 0);
  cmd_task_release(&t);
  mpc_buf_clear(&in);
  CU_ASSERT_EQUAL(cmd_task_encode(&in, 1, slots, 20, "", 0), 0);
  CU_ASSERT_EQUAL_FATAL(cmd_task_decode(&t, in.data, in.len), 0);
  CU_ASSERT_EQUAL(t.nslots, 20);
  CU_ASSERT_EQUAL(t.slots[19], 19);
  CU_ASSERT_EQUAL(t.len, 0);
  cmd_task_release(&t);
  /* Truncated inputs are refused. */
  CU_ASSERT_EQUAL(cmd_task_decode(&t, in.data, 11), MPC_EFORMAT);
  CU_ASSERT_EQUAL(cmd_task_decode(&t, in.data, 12 + 4 * 19), MPC_EFORMAT);
  mpc_buf_free(&in);
}

static void test_record(void) {
  mpc_buf_t out = MPC_BUF_INIT;
  cmd_exec_t ex = {.exitval = 3, .sig = 0, .start = 1700000000.25, .runtime = 1.5};
  CU_ASSERT_EQUAL(cmd_rec_begin(&out), 0);
  CU_ASSERT_EQUAL(mpc_buf_append(&out, "OUT\0x", 5), 0);
  CU_ASSERT_EQUAL(cmd_rec_finish(&out, &ex, 9, "ERR", 3, "false", 5), 0);
  cmd_rec_t r;
  CU_ASSERT_EQUAL_FATAL(cmd_rec_decode(&r, out.data, out.len), 0);
  /* The first line reads well in mpc-run's failure summary. */
  CU_ASSERT_EQUAL(memcmp(out.data, "exit status 3   ", 16), 0);
  CU_ASSERT_PTR_EQUAL(memchr(out.data, '\n', out.len), out.data + CMD_REC_TEXT - 1);
  CU_ASSERT_EQUAL(r.seq, 9);
  CU_ASSERT_EQUAL(r.ex.exitval, 3);
  CU_ASSERT_DOUBLE_EQUAL(r.ex.start, 1700000000.25, 1e-9);
  CU_ASSERT_EQUAL(r.so_len, 5);
  CU_ASSERT(memcmp(r.so, "OUT\0x", 5) == 0);
  CU_ASSERT_EQUAL(r.se_len, 3);
  CU_ASSERT(memcmp(r.se, "ERR", 3) == 0);
  CU_ASSERT_EQUAL(r.cmd_len, 5);
  CU_ASSERT(cmd_exec_failed(&r.ex));
  /* Not a record: plain text, or cut short. */
  CU_ASSERT_EQUAL(cmd_rec_decode(&r, "worker crashed", 14), MPC_EFORMAT);
  CU_ASSERT_EQUAL(cmd_rec_decode(&r, out.data, out.len - 1), MPC_EFORMAT);
  CU_ASSERT_EQUAL(cmd_rec_decode(&r, NULL, 0), MPC_EFORMAT);
  mpc_buf_free(&out);
}

static void test_joblog_format(void) {
  mpc_buf_t b = MPC_BUF_INIT;
  cmd_joblog_line_t l = {.seq = 12, .host = "node1", .start = 1795750350.0344,
                         .runtime = 0.0041, .receive = 2, .exitval = -1,
                         .sig = 15, .cmd = "echo 'a\tb\nc'", .cmd_len = 12};
  CU_ASSERT_EQUAL(cmd_joblog_format(&b, &l), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&b),
                         "12\tnode1\t1795750350.034\t     0.004\t0\t2\t-1\t15\techo 'a\tb\\nc'\n");
  mpc_buf_free(&b);
}

static void test_joblog_parse(void) {
  const char *text =
      CMD_JOBLOG_HEADER
      "1\t:\t1795750350.034\t     0.004\t0\t2\t0\t0\techo 0; exit 0\n"
      "2\t:\t1795750350.038\t     0.001\t0\t2\t3\t0\techo 3; exit 3\n"
      "garbage line\n"
      "3\tn1\t1795750351.000\t1.5\t0\t0\t0\t9\tkill -9 $$\n"
      "4\tn1\t1795750351.000\t1.5\t0\t0\t0\t0\tw7:7 'a\tb\\nc'\n"
      "2\t:\t1795750352.038\t     0.001\t0\t2\t0\t0\techo 3; exit 3\n"
      "5\t:\t1795750352.0";
  cmd_joblog_t j = {0};
  mpc_buf_t warn = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(cmd_joblog_parse(&j, text, strlen(text), &warn), 0);
  CU_ASSERT_EQUAL(j.n, 5);
  CU_ASSERT_EQUAL(j.bad, 2); /* the garbage and the cut-short last line */
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&warn), "line 4"));
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&warn), "line 8"));
  const cmd_joblog_entry_t *e = cmd_joblog_find(&j, "echo 0; exit 0", 14, NULL, 0, 99);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_FALSE(e->failed);
  /* The last line for a command wins: seq 2 failed, then succeeded. */
  e = cmd_joblog_find(&j, "echo 3; exit 3", 14, NULL, 0, 2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_FALSE(e->failed);
  e = cmd_joblog_find(&j, "kill -9 $$", 10, NULL, 0, 3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT(e->failed);
  CU_ASSERT_PTR_NULL(cmd_joblog_find(&j, "echo 0; exit", 12, NULL, 0, 1));
  CU_ASSERT_PTR_NULL(cmd_joblog_find(&j, "5", 1, NULL, 0, 5));
  /* {%}: "w{%}:{%} 'a<TAB>b<NL>c'" logged as w7:7 under seq 4. */
  uint32_t sl[2] = {1, 2};
  const char *c = "w: 'a\tb\nc'";
  e = cmd_joblog_find(&j, c, strlen(c), sl, 2, 4);
  CU_ASSERT_PTR_NOT_NULL(e);
  CU_ASSERT_PTR_NULL(cmd_joblog_find(&j, c, strlen(c), sl, 2, 3));
  CU_ASSERT_PTR_NULL(cmd_joblog_find(&j, "w: 'a'", 6, sl, 2, 4));
  cmd_joblog_free(&j);
  mpc_buf_free(&warn);
}

static void test_groups(void) {
  cmd_group_t g = {0};
  char path[] = "/tmp/mpct_cmdgrpXXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(write(fd, "a b\n\nlast", 9), 9);
  lseek(fd, 0, SEEK_SET);
  CU_ASSERT_EQUAL(cmd_group_read_fd(&g, fd, 0), 0);
  CU_ASSERT_EQUAL_FATAL(g.n, 3);
  CU_ASSERT_STRING_EQUAL(cmd_group_str(&g, 0), "a b");
  CU_ASSERT_EQUAL(g.len[1], 0);
  CU_ASSERT_STRING_EQUAL(cmd_group_str(&g, 2), "last");
  cmd_group_free(&g);
  lseek(fd, 0, SEEK_SET);
  CU_ASSERT_EQUAL(cmd_group_read_fd(&g, fd, 1), 0);
  CU_ASSERT_EQUAL(g.n, 2);
  cmd_group_free(&g);
  close(fd);
  unlink(path);
}

MPC_TESTS(cmd) = {
    {"replacement strings match GNU parallel", test_xform_gnu},
    {"shell quoting", test_quote},
    {"template parsing", test_parse},
    {"template expansion, {#} and {%}", test_expand},
    {"task encoding round trip", test_task_encoding},
    {"result record round trip", test_record},
    {"joblog line format", test_joblog_format},
    {"joblog parse and lookup", test_joblog_parse},
    {"argument files", test_groups},
    CU_TEST_INFO_NULL,
};
