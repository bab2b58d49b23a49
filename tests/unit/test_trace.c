/* --trace (Chrome trace JSON) and --timeline FILE.png (Gantt chart): JSON
 * escaping, the trace document, the PNG renderer (decoded with libpng), the
 * atomic writer and the option names. */
#include "test.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/opts.h"
#include "mpc/pool.h"
#include "mpi/trace.h"

static char *json_of(const void *s, size_t n) {
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__json_str(&b, s, n), 0);
  char *r = strdup(mpc_buf_str(&b));
  mpc_buf_free(&b);
  return r;
}

static void expect_json(const void *s, size_t n, const char *want) {
  char *got = json_of(s, n);
  CU_ASSERT_STRING_EQUAL(got, want);
  if (strcmp(got, want))
    fprintf(stderr, "json: got %s want %s\n", got, want);
  free(got);
}

static void test_json_escape(void) {
  expect_json("plain-key_1.txt", 15, "\"plain-key_1.txt\"");
  expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
  expect_json("l1\nl2\tx\r\b\f", 10, "\"l1\\nl2\\tx\\r\\b\\f\"");
  expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
  /* An embedded NUL is a byte like any other. */
  expect_json("a\0b", 3, "\"a\\u0000b\"");
  /* Valid UTF-8 passes through: é, €, U+1F600. */
  expect_json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
              "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  /* Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate,
   * above U+10FFFF, 0xff: each bad byte becomes U+FFFD. */
  expect_json("x\x80y", 3, "\"x\\ufffdy\"");
  expect_json("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
  expect_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
  expect_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
  expect_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  expect_json("\xff" "a", 2, "\"\\ufffda\"");
  expect_json("", 0, "\"\"");
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

static mpc__attempt_t att(int rank, int worker, int status, double s, double e,
                          const char *key) {
  mpc__attempt_t a = {.seq = 7, .key = (char *)key, .key_len = strlen(key),
                      .rank = rank, .worker = worker, .pid = 1234, .attempt = 1,
                      .status = status, .start = s, .end = e};
  return a;
}

static void test_trace_doc(void) {
  mpc__trace_rank_t rk[2] = {{"node\"a", 2}, {"nodeb", 1}};
  mpc__attempt_t a[3] = {att(0, 0, MPC_TASK_OK, 0.5, 1.25, "k\"1\n"),
                         att(1, 0, MPC_TASK_CRASHED, 1, 2, "k2"),
                         att(1, 0, MPC_TASK_OK, 2, 3, "k2")};
  a[2].attempt = 2;
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__trace_json(&b, "chaos", a, 3, rk, 2), 0);
  const char *s = mpc_buf_str(&b);
  CU_ASSERT(strncmp(s, "{\"traceEvents\":[", 16) == 0);
  CU_ASSERT_EQUAL(count(s, "\"ph\":\"X\""), 3);
  CU_ASSERT_EQUAL(count(s, "\"ph\":\"M\""), 2 * 2 + 3); /* name+sort per rank, 3 workers */
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"displayTimeUnit\":\"ms\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"name\":\"rank 0 (node\\\"a)\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"name\":\"worker 1\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "{\"name\":\"k\\\"1\\n\",\"cat\":\"ok\",\"ph\":\"X\","
                                   "\"ts\":500000.000,\"dur\":750000.000,\"pid\":0,\"tid\":0"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"cat\":\"crashed\",\"ph\":\"X\",\"ts\":1000000.000,"
                                   "\"dur\":1000000.000,\"pid\":1,\"tid\":0"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"attempt\":2"));
  /* No raw control character anywhere. */
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\n')
      CU_FAIL("raw control character in the trace");
  /* Written to a file (in chunks): the same bytes. */
  char path[] = "/tmp/mpc-tr-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL_FATAL(mpc__trace_write(path, "chaos", a, 3, rk, 2), 0);
  FILE *fp = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  char *got = calloc(1, b.len + 16);
  CU_ASSERT_EQUAL(fread(got, 1, b.len + 16, fp), b.len);
  CU_ASSERT(memcmp(got, b.data, b.len) == 0);
  fclose(fp);
  free(got);
  unlink(path);
  CU_ASSERT(mpc__trace_write("/nonexistent-dir/t.json", "chaos", a, 3, rk, 2) < 0);
  mpc_buf_free(&b);
}

/* Many attempts: the file is written in chunks and stays well formed. */
static void test_trace_big(void) {
  enum { N = 40000 };
  mpc__trace_rank_t rk[1] = {{"h", 4}};
  mpc__attempt_t *a = calloc(N, sizeof *a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  char key[] = "key-with-\"quote";
  for (int i = 0; i < N; i++)
    a[i] = att(0, i % 4, MPC_TASK_OK, i * 0.001, i * 0.001 + 0.0005, key);
  char path[] = "/tmp/mpc-tr-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL_FATAL(mpc__trace_write(path, "chaos", a, N, rk, 1), 0);
  FILE *fp = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  rewind(fp);
  char *s = malloc((size_t)sz + 1);
  CU_ASSERT_EQUAL(fread(s, 1, (size_t)sz, fp), (size_t)sz);
  s[sz] = 0;
  fclose(fp);
  CU_ASSERT(sz > (1 << 20)); /* more than one chunk */
  CU_ASSERT_EQUAL(count(s, "\"ph\":\"X\""), N);
  CU_ASSERT_EQUAL(count(s, "\"name\":\"key-with-\\\"quote\""), N);
  CU_ASSERT(strstr(s, "\"attempts\":40000}}\n") != NULL);
  free(s);
  free(a);
  unlink(path);
}

/* Decode a PNG with libpng into RGB. */
static unsigned char *read_png(const char *path, int *w, int *h) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path))
    return NULL;
  img.format = PNG_FORMAT_RGB;
  unsigned char *buf = malloc(PNG_IMAGE_SIZE(img));
  if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
    free(buf);
    png_image_free(&img);
    return NULL;
  }
  *w = (int)img.width;
  *h = (int)img.height;
  return buf;
}

static int px_is(const unsigned char *rgb, int w, int x, int y, const unsigned char c[3]) {
  return memcmp(rgb + ((size_t)y * (size_t)w + (size_t)x) * 3, c, 3) == 0;
}

static void test_png(void) {
  char path[] = "/tmp/mpc-tl-XXXXXX.png";
  int fd = mkstemps(path, 4);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  mpc__trace_rank_t rk[2] = {{"a", 3}, {"b", 2}};
  mpc__attempt_t a[4] = {
      att(1, 1, MPC_TASK_TIMEOUT, 5, 10, "t"),   /* right half of rank 1 worker 1 */
      att(0, 2, MPC_TASK_CRASHED, 0, 2, "r"),    /* a crash, then its retry */
      att(0, 2, MPC_TASK_OK, 2, 4, "r"),
      att(0, 0, MPC_TASK_ERROR, 1, 1, "z"),      /* zero length: still 1 px */
  };
  CU_ASSERT_EQUAL_FATAL(mpc__tl_png(path, a, 4, rk, 2, 10.0), 0);
  int w = 0, h = 0;
  unsigned char *rgb = read_png(path, &w, &h);
  CU_ASSERT_PTR_NOT_NULL_FATAL(rgb);
  CU_ASSERT_EQUAL(w, MPC__TL_WIDTH);
  CU_ASSERT_EQUAL(h, MPC__TL_LEGEND + 3 * MPC__TL_SEP + 5 * MPC__TL_ROW);
  /* Row bands: runs of the gutter colours down column 2, separators apart. */
  static const unsigned char sep[3] = {64, 64, 64}, white[3] = {255, 255, 255};
  int bands = 0, seps = 0;
  const unsigned char *prev = NULL;
  for (int y = MPC__TL_LEGEND; y < h; y++) {
    const unsigned char *p = rgb + ((size_t)y * (size_t)w + 2) * 3;
    if (memcmp(p, sep, 3) == 0) {
      if (!prev || memcmp(prev, sep, 3))
        seps++;
    } else if (memcmp(p, white, 3) != 0 && (!prev || memcmp(prev, p, 3))) {
      bands++;
    }
    prev = p;
  }
  CU_ASSERT_EQUAL(bands, 5);
  CU_ASSERT_EQUAL(seps, 3);
  /* The timeout bar: purple at 3/4 of the axis in rank 1, worker 1. */
  mpc__tl_img_t geo = {.width = w, .height = h, .row_h = MPC__TL_ROW};
  int span = MPC__TL_WIDTH - MPC__TL_X0;
  int y = mpc__tl_row_y(&geo, rk, 1, 1) + MPC__TL_ROW / 2;
  CU_ASSERT_EQUAL(y, MPC__TL_LEGEND + 2 * MPC__TL_SEP + 4 * MPC__TL_ROW + MPC__TL_ROW / 2);
  unsigned char c[3];
  mpc__tl_color(MPC_TASK_TIMEOUT, c);
  CU_ASSERT(c[0] == 148 && c[1] == 103 && c[2] == 189);
  CU_ASSERT(px_is(rgb, w, MPC__TL_X0 + span * 3 / 4, y, c));
  CU_ASSERT(px_is(rgb, w, MPC__TL_X0 + span / 4, y, white));
  CU_ASSERT(px_is(rgb, w, w - 1, y, c));
  /* The same instant in the other worker of rank 1 is empty. */
  CU_ASSERT(px_is(rgb, w, MPC__TL_X0 + span * 3 / 4, mpc__tl_row_y(&geo, rk, 1, 0) + 7, white));
  /* The retry: red then green in rank 0 worker 2, each with its own bar. */
  y = mpc__tl_row_y(&geo, rk, 0, 2) + MPC__TL_ROW / 2;
  mpc__tl_color(MPC_TASK_CRASHED, c);
  CU_ASSERT(px_is(rgb, w, MPC__TL_X0 + span / 10, y, c));
  mpc__tl_color(MPC_TASK_OK, c);
  CU_ASSERT(px_is(rgb, w, MPC__TL_X0 + span * 3 / 10, y, c));
  int x2 = MPC__TL_X0 + (int)(2.0 / 10.0 * span); /* first column of the retry */
  CU_ASSERT(!px_is(rgb, w, x2, y, c) && !px_is(rgb, w, x2, y, white));
  /* A zero-length attempt is still visible. */
  mpc__tl_color(MPC_TASK_ERROR, c);
  CU_ASSERT(px_is(rgb, w, MPC__TL_X0 + span / 10, mpc__tl_row_y(&geo, rk, 0, 0) + 7, c));
  free(rgb);
  /* No temporary file is left next to it. */
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);
  unlink(path);
  /* An unwritable place is an error, not a crash. */
  CU_ASSERT(mpc__tl_png("/nonexistent-dir/x.png", a, 4, rk, 2, 10.0) < 0);
}

static void test_png_many_rows(void) {
  /* Thousands of workers: rows shrink, the image stays bounded. */
  mpc__trace_rank_t rk[4] = {{"a", 1000}, {"b", 1000}, {"c", 1000}, {"d", 1000}};
  mpc__tl_img_t img;
  mpc__attempt_t a = att(3, 999, MPC_TASK_OK, 0, 1, "k");
  CU_ASSERT_EQUAL_FATAL(mpc__tl_render(&img, &a, 1, rk, 4, 0), 0);
  CU_ASSERT(img.height <= MPC__TL_MAXH);
  CU_ASSERT_EQUAL(img.row_h, 1);
  int y = mpc__tl_row_y(&img, rk, 3, 999);
  CU_ASSERT(y < img.height - MPC__TL_SEP);
  unsigned char c[3];
  mpc__tl_color(MPC_TASK_OK, c);
  CU_ASSERT(memcmp(img.rgb + ((size_t)y * (size_t)img.width + 600) * 3, c, 3) == 0);
  mpc__tl_free(&img);
}

static void test_write_atomic(void) {
  char path[] = "/tmp/mpc-wa-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL(mpc__write_atomic(path, "hello\n", 6), 0);
  FILE *fp = fopen(path, "r");
  char buf[16] = {0};
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  CU_ASSERT_EQUAL(fread(buf, 1, sizeof buf, fp), 6);
  fclose(fp);
  CU_ASSERT_STRING_EQUAL(buf, "hello\n");
  unlink(path);
  CU_ASSERT(mpc__write_atomic("/nonexistent-dir/x.json", "x", 1) < 0);
  CU_ASSERT(mpc__probe_writable("/nonexistent-dir/x.json") < 0);
  CU_ASSERT_EQUAL(mpc__probe_writable(path), 0);
  CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0); /* the probe creates nothing */
}

static void test_options(void) {
  mpc__opts_t o;
  mpc_buf_t err = MPC_BUF_INIT;
  char *a[] = {"mpc-run", "chaos", "--trace", "t.json", "--timeline=t.png",
               "--debug-protocol", "--tasks", "3", NULL};
  CU_ASSERT_EQUAL_FATAL(mpc__opts_parse(&o, 8, a, &err), 0);
  CU_ASSERT_STRING_EQUAL(o.trace, "t.json");
  CU_ASSERT_STRING_EQUAL(o.timeline, "t.png");
  CU_ASSERT_EQUAL(o.debug_protocol, 1);
  CU_ASSERT_EQUAL(o.job_argc, 3);
  mpc__opts_free(&o);
  char *b[] = {"mpc-run", "chaos", "--trace", NULL};
  mpc_buf_clear(&err);
  CU_ASSERT_EQUAL(mpc__opts_parse(&o, 3, b, &err), MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "--trace: missing value"));
  mpc__opts_free(&o);
  char *c[] = {"mpc-run", "chaos", "--trace=", NULL};
  mpc_buf_clear(&err);
  CU_ASSERT_EQUAL(mpc__opts_parse(&o, 3, c, &err), MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "--trace: empty file name"));
  mpc__opts_free(&o);
  mpc_buf_free(&err);
}

MPC_TESTS(trace) = {
    {"JSON escaping: quotes, controls, invalid UTF-8", test_json_escape},
    {"trace document: X events and names", test_trace_doc},
    {"trace file of 40000 attempts, written in chunks", test_trace_big},
    {"PNG timeline: size, one band per worker, bar colours", test_png},
    {"PNG timeline: thousands of workers", test_png_many_rows},
    {"atomic writer", test_write_atomic},
    {"--trace FILE, --timeline, --debug-protocol options", test_options},
    CU_TEST_INFO_NULL,
};
