/* mpc_pipe_*: framed messages over a socketpair. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mpc/pipe.h"
#include "mpc/process.h"


/* The two ends; the child uses g_b, the parent g_a. */
static mpc_pipe_t *g_a, *g_b;

static unsigned char pat(size_t i) { return (unsigned char)(i * 131 + (i >> 13)); }

static int fill_pattern(mpc_buf_t *b, size_t n) {
  if (mpc_buf_reserve(b, n))
    return -1;
  for (size_t i = 0; i < n; i++)
    b->data[i] = pat(i);
  b->len = n;
  return 0;
}

static int check_pattern(const mpc_buf_t *b, size_t n) {
  if (b->len != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (b->data[i] != pat(i))
      return 0;
  return 1;
}

/* ---- a structured message: list of tagged values, encoded by the caller */
enum { T_INT = 1, T_DBL = 2, T_STR = 3 };

static int put_item(mpc_buf_t *b, unsigned char tag, const void *p, uint32_t n) {
  if (mpc_buf_append(b, &tag, 1) || mpc_buf_append(b, &n, sizeof n))
    return -1;
  return mpc_buf_append(b, p, n);
}

static int encode_list(mpc_buf_t *b) {
  int64_t i1 = -42, i2 = INT64_MAX;
  double d1 = 3.25, d2 = -1e-300;
  const char *s1 = "hello, world", *s2 = "";
  return put_item(b, T_INT, &i1, 8) || put_item(b, T_DBL, &d1, 8) ||
         put_item(b, T_STR, s1, (uint32_t)strlen(s1)) ||
         put_item(b, T_INT, &i2, 8) || put_item(b, T_STR, s2, 0) ||
         put_item(b, T_DBL, &d2, 8);
}

static int send_list(void *arg) {
  (void)arg;
  mpc_pipe_free(g_a);
  mpc_buf_t b = MPC_BUF_INIT;
  if (encode_list(&b))
    return 10;
  int rc = mpc_pipe_send(g_b, b.data, b.len, 10);
  mpc_buf_free(&b);
  return rc ? 11 : 0;
}

static void test_structured(void) {
  int fds = mpct_count_fds();
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&g_a, &g_b), 0);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, send_list, NULL), 0);
  mpc_pipe_free(g_b);
  mpc_buf_t got = MPC_BUF_INIT, want = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_a, &got, 10), 0);
  CU_ASSERT_EQUAL_FATAL(encode_list(&want), 0);
  CU_ASSERT_EQUAL(got.len, want.len);
  CU_ASSERT(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
  /* Decode and check a few fields, as a user would. */
  size_t off = 0;
  int n = 0;
  while (off + 5 <= got.len) {
    unsigned char tag = got.data[off];
    uint32_t len;
    memcpy(&len, got.data + off + 1, 4);
    off += 5;
    if (n == 0) {
      int64_t v;
      memcpy(&v, got.data + off, 8);
      CU_ASSERT_EQUAL(tag, T_INT);
      CU_ASSERT_EQUAL(v, -42);
    } else if (n == 1) {
      double v;
      memcpy(&v, got.data + off, 8);
      CU_ASSERT_EQUAL(tag, T_DBL);
      CU_ASSERT_DOUBLE_EQUAL(v, 3.25, 0);
    } else if (n == 2) {
      CU_ASSERT_EQUAL(tag, T_STR);
      CU_ASSERT_EQUAL(len, 12);
      CU_ASSERT(memcmp(got.data + off, "hello, world", 12) == 0);
    }
    off += len;
    n++;
  }
  CU_ASSERT_EQUAL(n, 6);
  CU_ASSERT_EQUAL(off, got.len);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  /* Child is gone: recv reports the closed peer. */
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_a, &got, 5), MPC_ECLOSED);
  mpc_process_free(p);
  mpc_pipe_free(g_a);
  mpc_buf_free(&got);
  mpc_buf_free(&want);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

static void test_zero_and_small(void) {
  mpc_pipe_t *a, *b;
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  mpc_buf_t got = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc_buf_set(&got, "junk", 4), 0);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, NULL, 0, 1), 0);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "abc", 3, 1), 0);
  CU_ASSERT_EQUAL(mpc_pipe_send(b, "xyz!", 4, 1), 0); /* other direction */
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), 0);
  CU_ASSERT_EQUAL(got.len, 0);
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), 0);
  CU_ASSERT(got.len == 3 && memcmp(got.data, "abc", 3) == 0);
  CU_ASSERT_EQUAL(mpc_pipe_recv(a, &got, 1), 0);
  CU_ASSERT(got.len == 4 && memcmp(got.data, "xyz!", 4) == 0);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, NULL, 5, 1), MPC_EINVAL);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "x", MPC_PIPE_MAX_MSG + 1, 1), MPC_ETOOBIG);
  mpc_pipe_free(a);
  mpc_pipe_free(b);
  mpc_buf_free(&got);
}

static size_t g_big;
static int send_big(void *arg) {
  (void)arg;
  mpc_pipe_free(g_a);
  mpc_buf_t b = MPC_BUF_INIT;
  if (fill_pattern(&b, g_big))
    return 10;
  int rc = mpc_pipe_send(g_b, b.data, b.len, 60);
  mpc_buf_free(&b);
  if (rc)
    return 11;
  /* Echo: receive it back from the parent and verify. */
  rc = mpc_pipe_recv(g_b, &b, 60);
  int ok = rc == 0 && check_pattern(&b, g_big);
  mpc_buf_free(&b);
  return ok ? 0 : 12;
}

static void big_roundtrip(size_t n) {
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&g_a, &g_b), 0);
  g_big = n;
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, send_big, NULL), 0);
  mpc_pipe_free(g_b);
  mpc_buf_t got = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_a, &got, 60), 0);
  CU_ASSERT(check_pattern(&got, n));
  CU_ASSERT_EQUAL(mpc_pipe_send(g_a, got.data, got.len, 60), 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 60, &st), 0);
  CU_ASSERT_EQUAL(st.exited, 1);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  mpc_pipe_free(g_a);
  mpc_buf_free(&got);
}

static void test_64mib(void) { big_roundtrip((size_t)64 << 20); }
static void test_256mib(void) {
  double t0 = mpct_now();
  big_roundtrip((size_t)256 << 20);
  CU_ASSERT(mpct_now() - t0 < 60);
}

/* Child writes a header promising 1 MiB, 1000 bytes, then dies. */
static int die_mid_message(void *arg) {
  (void)arg;
  mpc_pipe_free(g_a);
  unsigned char raw[16 + 1000];
  uint32_t magic = 0x4643504du, ver = 1;
  uint64_t len = 1 << 20;
  memcpy(raw, &magic, 4);
  memcpy(raw + 4, &ver, 4);
  memcpy(raw + 8, &len, 8);
  memset(raw + 16, 'x', 1000);
  if (write(mpc_pipe_fd(g_b), raw, sizeof raw) != (ssize_t)sizeof raw)
    return 10;
  raise(SIGKILL);
  return 0;
}

static int send_forever(void *arg) {
  (void)arg;
  mpc_pipe_free(g_a);
  mpc_buf_t b = MPC_BUF_INIT;
  if (fill_pattern(&b, (size_t)64 << 20))
    return 10;
  int rc = mpc_pipe_send(g_b, b.data, b.len, -1); /* parent never reads */
  mpc_buf_free(&b);
  return rc ? 11 : 0;
}

static void test_peer_killed(void) {
  int fds = mpct_count_fds();
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&g_a, &g_b), 0);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, die_mid_message, NULL), 0);
  mpc_pipe_free(g_b);
  mpc_buf_t got = MPC_BUF_INIT;
  double t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_a, &got, 10), MPC_ECLOSED);
  CU_ASSERT(mpct_now() - t0 < 5);
  CU_ASSERT_EQUAL(got.len, 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.signo, SIGKILL);
  mpc_process_free(p);
  mpc_pipe_free(g_a);

  /* Killed while blocked in the middle of sending 64 MiB. */
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&g_a, &g_b), 0);
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, send_forever, NULL), 0);
  mpc_pipe_free(g_b);
  usleep(200000);
  CU_ASSERT_EQUAL(mpc_process_signal(p, SIGKILL), 0);
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.signo, SIGKILL);
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_a, &got, 10), MPC_ECLOSED);
  mpc_process_free(p);
  mpc_pipe_free(g_a);
  mpc_buf_free(&got);
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
}

static void test_send_to_closed_no_sigpipe(void) {
  /* The runner ignores SIGPIPE; restore the default so that a send
   * without MSG_NOSIGNAL would kill this process. */
  struct sigaction dfl, old;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &old);
  mpc_pipe_t *a, *b;
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  mpc_pipe_free(b);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "hi", 2, 1), MPC_ECLOSED);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, NULL, 0, 1), MPC_ECLOSED);
  mpc_pipe_free(a);
  /* A closed own end is a state error, not a crash. */
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  mpc_pipe_close(a);
  CU_ASSERT_EQUAL(mpc_pipe_fd(a), -1);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "hi", 2, 1), MPC_ESTATE);
  mpc_buf_t got = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), MPC_ECLOSED);
  mpc_pipe_free(a);
  mpc_pipe_free(b);
  sigaction(SIGPIPE, &old, NULL);
}

static void test_corrupt_header(void) {
  mpc_pipe_t *a, *b;
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  unsigned char junk[16];
  memset(junk, 0xAB, sizeof junk);
  CU_ASSERT_EQUAL(write(mpc_pipe_fd(a), junk, sizeof junk), 16);
  mpc_buf_t got = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), MPC_EPROTO);
  CU_ASSERT_EQUAL(mpc_pipe_is_broken(b), 1);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "ok", 2, 1), 0);
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), MPC_ESTATE);
  mpc_pipe_free(a);
  mpc_pipe_free(b);
  /* A good magic with an absurd length is corrupt too. */
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  uint32_t magic = 0x4643504du, ver = 1;
  uint64_t len = (uint64_t)1 << 40;
  memcpy(junk, &magic, 4);
  memcpy(junk + 4, &ver, 4);
  memcpy(junk + 8, &len, 8);
  CU_ASSERT_EQUAL(write(mpc_pipe_fd(a), junk, sizeof junk), 16);
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), MPC_EPROTO);
  mpc_pipe_free(a);
  mpc_pipe_free(b);
  mpc_buf_free(&got);
}

static void test_timeouts(void) {
  mpc_pipe_t *a, *b;
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  mpc_buf_t got = MPC_BUF_INIT;
  double t0 = mpct_now();
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 0.2), MPC_ETIMEDOUT);
  double dt = mpct_now() - t0;
  CU_ASSERT(dt >= 0.19 && dt < 2);
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 0), MPC_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpc_pipe_is_broken(b), 0); /* no byte moved: still fine */
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "z", 1, 1), 0);
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 1), 0);
  CU_ASSERT_EQUAL(got.len, 1);
  /* A send that times out mid-frame breaks the connection. */
  mpc_buf_t big = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(fill_pattern(&big, (size_t)16 << 20), 0);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, big.data, big.len, 0.1), MPC_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpc_pipe_is_broken(a), 1);
  CU_ASSERT_EQUAL(mpc_pipe_send(a, "z", 1, 1), MPC_ESTATE);
  /* The receiver sees a truncated frame and times out mid-frame: broken. */
  CU_ASSERT_EQUAL(mpc_pipe_recv(b, &got, 0.1), MPC_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpc_pipe_is_broken(b), 1);
  mpc_pipe_free(a);
  mpc_pipe_free(b);
  mpc_buf_free(&got);
  mpc_buf_free(&big);
}

static mpc_pipe_t *g_pa[3], *g_pb[3];
static int write_second(void *arg) {
  (void)arg;
  usleep(100000);
  return mpc_pipe_send(g_pb[1], "one", 3, 5) ? 10 : 0;
}

static void test_poll(void) {
  for (int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&g_pa[i], &g_pb[i]), 0);
  int ready[3] = {9, 9, 9};
  size_t nready = 99;
  CU_ASSERT_EQUAL(mpc_pipe_poll(g_pa, 3, ready, &nready, 0.05), MPC_ETIMEDOUT);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, write_second, NULL), 0);
  mpct_storm_start();
  int rc = mpc_pipe_poll(g_pa, 3, ready, &nready, 10);
  mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(nready, 1);
  CU_ASSERT(ready[0] == 0 && ready[1] == 1 && ready[2] == 0);
  mpc_buf_t got = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_pa[1], &got, 1), 0);
  CU_ASSERT(got.len == 3 && memcmp(got.data, "one", 3) == 0);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  /* A closed peer counts as ready (recv then says MPC_ECLOSED). */
  mpc_pipe_free(g_pb[2]);
  g_pb[2] = NULL;
  CU_ASSERT_EQUAL(mpc_pipe_poll(g_pa, 3, ready, &nready, 1), 0);
  CU_ASSERT(ready[2] == 1 && ready[0] == 0);
  CU_ASSERT_EQUAL(mpc_pipe_recv(g_pa[2], &got, 1), MPC_ECLOSED);
  for (int i = 0; i < 3; i++) {
    mpc_pipe_free(g_pa[i]);
    mpc_pipe_free(g_pb[i]);
  }
  mpc_buf_free(&got);
}

static int late_big_send(void *arg) {
  (void)arg;
  mpc_pipe_free(g_a);
  mpc_buf_t b = MPC_BUF_INIT;
  if (fill_pattern(&b, (size_t)8 << 20))
    return 10;
  usleep(200000);
  int rc = mpc_pipe_send(g_b, b.data, b.len, 30);
  mpc_buf_free(&b);
  return rc ? 11 : 0;
}

static void test_recv_eintr(void) {
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&g_a, &g_b), 0);
  mpc_process_t *p;
  CU_ASSERT_EQUAL_FATAL(mpc_process_spawn(&p, late_big_send, NULL), 0);
  mpc_pipe_free(g_b);
  mpc_buf_t got = MPC_BUF_INIT;
  mpct_storm_start();
  int rc = mpc_pipe_recv(g_a, &got, -1);
  int alarms = mpct_storm_stop();
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(check_pattern(&got, (size_t)8 << 20));
  CU_ASSERT(alarms > 20);
  mpc_exit_status_t st;
  CU_ASSERT_EQUAL(mpc_process_join(p, 10, &st), 0);
  CU_ASSERT_EQUAL(st.code, 0);
  mpc_process_free(p);
  mpc_pipe_free(g_a);
  mpc_buf_free(&got);
}

static void test_cloexec_and_fds(void) {
  int fds = mpct_count_fds();
  mpc_pipe_t *a, *b;
  for (int i = 0; i < 50; i++) {
    CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
    mpc_pipe_free(a);
    mpc_pipe_free(b);
  }
  CU_ASSERT_EQUAL(mpct_count_fds(), fds);
  CU_ASSERT_EQUAL_FATAL(mpc_pipe_new(&a, &b), 0);
  int fl = fcntl(mpc_pipe_fd(a), F_GETFD);
  CU_ASSERT(fl >= 0 && (fl & FD_CLOEXEC));
  mpc_pipe_free(a);
  mpc_pipe_free(b);
}

MPC_TESTS(pipe) = {
    {"structured message intact", test_structured},
    {"0-byte and small messages, both directions", test_zero_and_small},
    {"64 MiB message round trip", test_64mib},
    {"256 MiB message round trip", test_256mib},
    {"peer killed mid-message: MPC_ECLOSED", test_peer_killed},
    {"send to closed peer: MPC_ECLOSED, no SIGPIPE", test_send_to_closed_no_sigpipe},
    {"corrupt header: MPC_EPROTO, then broken", test_corrupt_header},
    {"recv/send timeouts; mid-frame timeout breaks", test_timeouts},
    {"poll several connections", test_poll},
    {"recv under a SIGALRM storm", test_recv_eintr},
    {"close-on-exec, no fd leaks", test_cloexec_and_fds},
    CU_TEST_INFO_NULL,
};
