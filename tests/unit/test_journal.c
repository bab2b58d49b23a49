/* The journal: escaping, base64, line format, --resume table, writer. */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi/journal.h"

static void test_fnv_key(void) {
  /* Reference values of 64-bit FNV-1a. */
  CU_ASSERT_EQUAL(mpc__fnv1a64("", 0), 0xcbf29ce484222325ULL);
  CU_ASSERT_EQUAL(mpc__fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  mpc_buf_t k = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__key_default(&k, "a", 1), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&k), "af63dc4c8601ec8c");
  /* Inputs of every length up to 40 (the unrolled and the byte loop), keys
   * against a byte-at-a-time FNV-1a printed with printf. */
  unsigned char in[40];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (unsigned char)(i * 37 + 11);
  for (size_t n = 0; n <= sizeof in; n++) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
      h = (h ^ in[i]) * 0x100000001b3ULL;
    CU_ASSERT_EQUAL(mpc__fnv1a64(in, n), h);
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)h);
    mpc_buf_clear(&k);
    CU_ASSERT_EQUAL(mpc__key_default(&k, in, n), 0);
    CU_ASSERT_STRING_EQUAL(mpc_buf_str(&k), want);
  }
  /* The four-at-a-time form, on groups of equal and of unequal lengths and a
   * count that leaves a remainder. */
  const unsigned char *ps[11];
  size_t ns[11];
  uint64_t hs[11];
  for (size_t c = 0; c <= 11; c++) {
    for (size_t i = 0; i < c; i++) {
      ps[i] = in + i;
      ns[i] = c % 2 ? 8 : (i * 7) % 30;
    }
    mpc__fnv1a64_many(ps, ns, c, hs);
    for (size_t i = 0; i < c; i++)
      CU_ASSERT_EQUAL(hs[i], mpc__fnv1a64(ps[i], ns[i]));
    /* and the keys made from them, as mpc__key_default makes one */
    char keys[11][17], *ko[11];
    memset(keys, 'x', sizeof keys);
    for (size_t i = 0; i < c; i++)
      ko[i] = keys[i];
    mpc__key_default_many(ko, ps, ns, c);
    for (size_t i = 0; i < c; i++) {
      mpc_buf_clear(&k);
      CU_ASSERT_EQUAL(mpc__key_default(&k, ps[i], ns[i]), 0);
      CU_ASSERT_STRING_EQUAL(keys[i], mpc_buf_str(&k));
    }
  }
  mpc_buf_free(&k);
}

static void test_escape_roundtrip(void) {
  const char raw[] = "a\tb\nc\\d\re\x01" "f";
  mpc_buf_t e = MPC_BUF_INIT, d = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__esc_append(&e, raw, sizeof raw - 1), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&e), "a\\tb\\nc\\\\d\\re\\x01f");
  CU_ASSERT_PTR_NULL(memchr(e.data, '\t', e.len));
  CU_ASSERT_EQUAL(mpc__unesc_append(&d, (char *)e.data, e.len), 0);
  CU_ASSERT_EQUAL(d.len, sizeof raw - 1);
  CU_ASSERT(memcmp(d.data, raw, d.len) == 0);
  mpc_buf_clear(&d);
  CU_ASSERT_EQUAL(mpc__unesc_append(&d, "x\\q", 3), MPC_EFORMAT);
  CU_ASSERT_EQUAL(mpc__unesc_append(&d, "x\\", 2), MPC_EFORMAT);
  CU_ASSERT_EQUAL(mpc__unesc_append(&d, "\\x4", 3), MPC_EFORMAT);
  mpc_buf_free(&e);
  mpc_buf_free(&d);
}

static void test_base64(void) {
  static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    mpc_buf_t e = MPC_BUF_INIT, d = MPC_BUF_INIT;
    CU_ASSERT_EQUAL(mpc__b64_append(&e, in[i], strlen(in[i])), 0);
    CU_ASSERT_STRING_EQUAL(mpc_buf_str(&e), out[i]);
    CU_ASSERT_EQUAL(mpc__b64_decode_append(&d, (char *)e.data, e.len), 0);
    CU_ASSERT_EQUAL(d.len, strlen(in[i]));
    CU_ASSERT(d.len == 0 || memcmp(d.data, in[i], d.len) == 0);
    mpc_buf_free(&e);
    mpc_buf_free(&d);
  }
  mpc_buf_t d = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__b64_decode_append(&d, "Zm9", 3), MPC_EFORMAT);
  CU_ASSERT_EQUAL(mpc__b64_decode_append(&d, "Z=9v", 4), MPC_EFORMAT);
  CU_ASSERT_EQUAL(mpc__b64_decode_append(&d, "Zm!v", 4), MPC_EFORMAT);
  mpc_buf_free(&d);
}

static void test_line_roundtrip(void) {
  unsigned char outb[5] = {0, 1, 2, '\n', 255};
  char longmsg[400];
  memset(longmsg, 'm', sizeof longmsg);
  memcpy(longmsg + 390, "\tend\nline", 9);
  mpc__jrec_t r = {
      .key = "dir/a\tb.png", .key_len = 11, .status = MPC_TASK_ERROR,
      .attempt = 2, .rank = 3, .host = "node-1", .pid = 4242, .code = 7,
      .maxrss_kb = 1234, .seconds = 1.25, .msg = longmsg, .msg_len = 399,
      .out = NULL,
  };
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__jrec_format(&b, &r), 0);
  CU_ASSERT_EQUAL(b.data[b.len - 1], '\n');
  CU_ASSERT_PTR_NULL(memchr(b.data, '\n', b.len - 1));
  mpc__jline_t l = {0};
  CU_ASSERT_EQUAL_FATAL(mpc__jline_parse(&l, (char *)b.data, b.len - 1), 0);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&l.key), "dir/a\tb.png");
  CU_ASSERT_EQUAL(l.status, MPC_TASK_ERROR);
  CU_ASSERT_EQUAL(l.attempt, 2);
  CU_ASSERT_EQUAL(l.rank, 3);
  CU_ASSERT_STRING_EQUAL(mpc_buf_str(&l.host), "node-1");
  CU_ASSERT_EQUAL(l.pid, 4242);
  CU_ASSERT_EQUAL(l.code, 7);
  CU_ASSERT_EQUAL(l.maxrss_kb, 1234);
  CU_ASSERT_DOUBLE_EQUAL(l.seconds, 1.25, 1e-9);
  CU_ASSERT_EQUAL(l.msg.len, MPC__JOURNAL_MSG_TAIL); /* the tail only */
  CU_ASSERT(memcmp(l.msg.data + l.msg.len - 8, "end\nline", 8) == 0);
  CU_ASSERT_EQUAL(l.out.len, 0);
  /* ok with output */
  mpc_buf_clear(&b);
  r.status = MPC_TASK_OK;
  r.out = outb;
  r.out_len = sizeof outb;
  CU_ASSERT_EQUAL_FATAL(mpc__jrec_format(&b, &r), 0);
  CU_ASSERT_EQUAL_FATAL(mpc__jline_parse(&l, (char *)b.data, b.len - 1), 0);
  CU_ASSERT_EQUAL(l.msg.len, 0);
  CU_ASSERT_EQUAL_FATAL(l.out.len, sizeof outb);
  CU_ASSERT(memcmp(l.out.data, outb, sizeof outb) == 0);
  /* comments, garbage */
  CU_ASSERT_EQUAL(mpc__jline_parse(&l, "# hello", 7), 1);
  CU_ASSERT_EQUAL(mpc__jline_parse(&l, "", 0), 1);
  CU_ASSERT_EQUAL(mpc__jline_parse(&l, "k\tok\t1", 6), MPC_EFORMAT);
  CU_ASSERT_EQUAL(mpc__jline_parse(&l, "k\tbogus\t1\t0\th\t1\t0\t0\t0.1\t\t", 25),
                  MPC_EFORMAT);
  mpc__jline_free(&l);
  mpc_buf_free(&b);
}

static void test_resume_table(void) {
  char path[] = "/tmp/mpc-journal-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  mpc__journal_t j;
  CU_ASSERT_EQUAL_FATAL(mpc__journal_open(&j, path, "test run"), 0);
  mpc__jrec_t r = {.key = "a", .key_len = 1, .status = MPC_TASK_CRASHED,
                   .attempt = 1, .rank = 1, .host = "h", .pid = 1, .code = 11};
  CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0);
  r.status = MPC_TASK_OK;
  r.attempt = 2;
  r.out = "AAA";
  r.out_len = 3;
  CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0); /* a: crashed then ok */
  r.key = "b";
  r.out = NULL;
  CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0);
  r.status = MPC_TASK_ERROR;
  CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0); /* b: ok then error */
  r.key = "c";
  r.status = MPC_TASK_CANCELED;
  CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0);
  CU_ASSERT_EQUAL(mpc__journal_close(&j), 0);
  /* A line cut short by kill -9: must be ignored, and the next writer must
   * start on a fresh line. */
  fd = open(path, O_WRONLY | O_APPEND);
  CU_ASSERT_EQUAL(write(fd, "d\tok\t1\t0\th", 10), 10);
  close(fd);
  mpc__jdone_t *t;
  size_t bad = 99;
  CU_ASSERT_EQUAL_FATAL(mpc__jdone_load(&t, path, &bad), 0);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(mpc__jdone_count(t), 1);
  const void *o;
  size_t n;
  CU_ASSERT_EQUAL(mpc__jdone_lookup(t, "a", 1, &o, &n), 1);
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT(n == 3 && memcmp(o, "AAA", 3) == 0);
  CU_ASSERT_EQUAL(mpc__jdone_lookup(t, "b", 1, NULL, NULL), 0);
  CU_ASSERT_EQUAL(mpc__jdone_lookup(t, "c", 1, NULL, NULL), 0);
  CU_ASSERT_EQUAL(mpc__jdone_lookup(t, "d", 1, NULL, NULL), 0);
  mpc__jdone_free(t);
  CU_ASSERT_EQUAL_FATAL(mpc__journal_open(&j, path, "second run"), 0);
  r.key = "e";
  r.status = MPC_TASK_OK;
  CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0);
  CU_ASSERT_EQUAL(mpc__journal_close(&j), 0);
  CU_ASSERT_EQUAL_FATAL(mpc__jdone_load(&t, path, &bad), 0);
  CU_ASSERT_EQUAL(bad, 1); /* the cut line, now ended by a newline */
  CU_ASSERT_EQUAL(mpc__jdone_lookup(t, "e", 1, NULL, NULL), 1);
  CU_ASSERT_EQUAL(mpc__jdone_count(t), 2);
  mpc__jdone_free(t);
  /* Many keys: the table grows. */
  CU_ASSERT_EQUAL_FATAL(mpc__journal_open(&j, path, NULL), 0);
  char key[32];
  for (int i = 0; i < 5000; i++) {
    r.key = key;
    r.key_len = (size_t)snprintf(key, sizeof key, "k%d", i);
    CU_ASSERT_EQUAL(mpc__journal_add(&j, &r), 0);
    CU_ASSERT_EQUAL(mpc__journal_flush(&j, mpct_now(), 0), 0);
  }
  CU_ASSERT_EQUAL(mpc__journal_close(&j), 0);
  CU_ASSERT_EQUAL_FATAL(mpc__jdone_load(&t, path, &bad), 0);
  CU_ASSERT_EQUAL(mpc__jdone_count(t), 5002);
  CU_ASSERT_EQUAL(mpc__jdone_lookup(t, "k4999", 5, NULL, NULL), 1);
  mpc__jdone_free(t);
  /* A missing journal is an empty one. */
  unlink(path);
  CU_ASSERT_EQUAL_FATAL(mpc__jdone_load(&t, path, &bad), 0);
  CU_ASSERT_EQUAL(mpc__jdone_count(t), 0);
  mpc__jdone_free(t);
}

MPC_TESTS(journal) = {
    {"FNV-1a keys", test_fnv_key},
    {"escaping round trip", test_escape_roundtrip},
    {"base64", test_base64},
    {"line format round trip", test_line_roundtrip},
    {"resume table: last status wins, cut lines ignored", test_resume_table},
    CU_TEST_INFO_NULL,
};
