/* Pure parts of mpc-run's runtime: batch sizes, wire format, summary. */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpi/fault.h"
#include "mpi/farm.h"
#include "mpi/wire.h"

static void test_guided(void) {
  /* 1000 left, 4 workers in all, this rank has 2: ceil(1000*2/8) = 250. */
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_GUIDED, 1000, 4, 2, 4, 4096), 250);
  /* Capped by max_batch. */
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_GUIDED, 1000000, 4, 2, 4, 4096), 4096);
  /* Never below the credits asked for, never above what is left. */
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_GUIDED, 10, 4, 1, 8, 4096), 4);
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_GUIDED, 3, 4, 1, 8, 4096), 3);
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_GUIDED, 0, 4, 1, 8, 4096), 0);
  /* Shrinks as the end nears. */
  size_t prev = (size_t)-1;
  uint64_t left = 100000;
  int steps = 0;
  while (left) {
    size_t b = mpc__sched_batch(MPC__SCHED_GUIDED, left, 1, 1, 4, 100000);
    CU_ASSERT(b >= 1 && b <= prev);
    prev = b;
    left -= b;
    steps++;
  }
  CU_ASSERT(steps > 10 && steps < 200);
  /* dynamic and static: what was asked for. */
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_DYNAMIC, 1000, 6, 2, 4, 4096), 6);
  CU_ASSERT_EQUAL(mpc__sched_batch(MPC__SCHED_STATIC, UINT64_MAX, 6, 2, 4, 4096), 6);
}

static void test_wire(void) {
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_hdr(&b, MPC__UP_RESULTS, 0), 0);
  mpc__wres_t r1 = {.tid = 1ull << 40, .status = 2, .code = 11, .worker = 3,
                    .pid = 999, .start = 1.5, .end = 2.25, .maxrss_kb = 77,
                    .data = "boom", .len = 4};
  mpc__wres_t r2 = {.tid = 5, .status = 0, .data = NULL, .len = 0};
  CU_ASSERT_EQUAL(mpc__wire_result(&b, &r1), 0);
  CU_ASSERT_EQUAL(mpc__wire_result(&b, &r2), 0);
  mpc__wire_set_n(&b, 2);
  mpc__wire_set_x(&b, 8);
  mpc__wire_set_kind(&b, MPC__UP_BYE);
  mpc__wrd_t rd = {b.data, b.data + b.len};
  uint32_t kind, x, n;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_hdr(&rd, &kind, &x, &n), 0);
  CU_ASSERT_EQUAL(kind, MPC__UP_BYE);
  CU_ASSERT_EQUAL(x, 8);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  mpc__wres_t g = {0};
  uint64_t prev = 0;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 0);
  CU_ASSERT_EQUAL(g.tid, 1ull << 40);
  CU_ASSERT_EQUAL(g.status, 2);
  CU_ASSERT_EQUAL(g.code, 11);
  CU_ASSERT_EQUAL(g.worker, 3);
  CU_ASSERT_EQUAL(g.pid, 999);
  CU_ASSERT_DOUBLE_EQUAL(g.start, 1.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(g.end, 2.25, 0);
  CU_ASSERT_EQUAL(g.maxrss_kb, 77);
  CU_ASSERT_EQUAL_FATAL(g.len, 4);
  CU_ASSERT(memcmp(g.data, "boom", 4) == 0);
  CU_ASSERT_EQUAL(prev, 1ull << 40);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 0);
  CU_ASSERT_EQUAL(g.tid, 5);
  CU_ASSERT_EQUAL(g.len, 0);
  CU_ASSERT_PTR_EQUAL(rd.p, rd.end);
  CU_ASSERT_EQUAL(mpc__wire_read_result(&rd, &g, &prev), MPC_EPROTO);
  /* Truncated messages are refused, not overrun. */
  mpc_buf_t t = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__wire_hdr(&t, MPC__DOWN_TASKS, MPC__DOWN_LAST), 0);
  CU_ASSERT_EQUAL(mpc__wire_task(&t, 42, "input", 5), 0);
  mpc__wrd_t tr = {t.data, t.data + t.len - 1};
  CU_ASSERT_EQUAL(mpc__wire_read_hdr(&tr, &kind, &x, &n), 0);
  const void *p = NULL;
  uint32_t len;
  uint64_t tid;
  CU_ASSERT_EQUAL(mpc__wire_read_task(&tr, &tid, &p, &len), MPC_EPROTO);
  tr.p = t.data + MPC__HDR_BYTES;
  tr.end = t.data + t.len;
  CU_ASSERT_EQUAL(mpc__wire_read_task(&tr, &tid, &p, &len), 0);
  CU_ASSERT_EQUAL(tid, 42);
  CU_ASSERT(len == 5 && memcmp(p, "input", 5) == 0);
  mpc_buf_free(&t);
  mpc_buf_free(&b);
}

/* LEB128 numbers at their edges, and refusal of truncated ones. */
static void test_wire_varint(void) {
  static const uint64_t v[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX,
                               (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
  static const int bytes[] = {1, 1, 1, 2, 2, 3, 5, 5, 10, 10};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    unsigned char b[10];
    unsigned char *e = mpc__put_uvar(b, v[i]);
    CU_ASSERT_EQUAL(e - b, bytes[i]);
    uint64_t got = 12345;
    CU_ASSERT_PTR_EQUAL(mpc__get_uvar(b, e, &got), e);
    CU_ASSERT_EQUAL(got, v[i]);
    CU_ASSERT_PTR_NULL(mpc__get_uvar(b, e - 1, &got)); /* cut short */
  }
  unsigned char eleven[11];
  memset(eleven, 0x80, sizeof eleven); /* never ends within 64 bits */
  uint64_t got;
  CU_ASSERT_PTR_NULL(mpc__get_uvar(eleven, eleven + sizeof eleven, &got));
}

/* Short result entries mixed with full ones; tids going back and forth. */
static void test_wire_short(void) {
  /* What fits: tid within -128..127 of the previous entry's, worker
   * 0..254, under 4.29 s, output up to 65535 bytes. */
  CU_ASSERT(mpc__wire_short_fits(1000, 1127, 0, 0.1, 8));
  CU_ASSERT(!mpc__wire_short_fits(1000, 1128, 0, 0.1, 8));
  CU_ASSERT(mpc__wire_short_fits(1000, 872, 0, 0.1, 8));
  CU_ASSERT(!mpc__wire_short_fits(1000, 871, 0, 0.1, 8));
  CU_ASSERT(!mpc__wire_short_fits(0, 1000, 0, 0.1, 8)); /* first of a message */
  CU_ASSERT(mpc__wire_short_fits(5, 6, 254, 0.1, 8));
  CU_ASSERT(!mpc__wire_short_fits(5, 6, 255, 0.1, 8));
  CU_ASSERT(!mpc__wire_short_fits(5, 6, -1, 0.1, 8));
  CU_ASSERT(!mpc__wire_short_fits(5, 6, 0, 5.0, 8));
  CU_ASSERT(mpc__wire_short_fits(5, 6, 0, 4.2, 65535));
  CU_ASSERT(!mpc__wire_short_fits(5, 6, 0, 0.1, 65536));
  CU_ASSERT(mpc__wire_short_fits(UINT64_MAX, 0, 0, 0.1, 8)); /* wraps */

  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_hdr(&b, MPC__UP_RESULTS, 0), 0);
  mpc__wres_t full = {.tid = 1000, .status = 3, .code = 9, .worker = 1, .pid = 4242,
                      .start = 0.5, .end = 0.75, .maxrss_kb = 5, .data = "e", .len = 1};
  CU_ASSERT_EQUAL(mpc__wire_result(&b, &full), 0);
  CU_ASSERT_EQUAL(mpc__wire_result_short(&b, 1000, 1001, 0, 1.5e-6, "12345678", 8), 0);
  CU_ASSERT_EQUAL(mpc__wire_result_short(&b, 1001, 1128, 254, 0, NULL, 0), 0);
  CU_ASSERT_EQUAL(mpc__wire_result_short(&b, 1128, 1000, 2, 4.2, "x", 1), 0);
  unsigned char big[65535];
  memset(big, 'q', sizeof big);
  CU_ASSERT_EQUAL(mpc__wire_result_short(&b, 1000, 999, 1, -1.0, big, sizeof big), 0);
  mpc__wire_set_n(&b, 5);
  /* 8-byte outputs: 16 bytes an entry instead of 62 */
  mpc_buf_t c = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__wire_result_short(&c, 41, 42, 0, 2e-5, "12345678", 8), 0);
  CU_ASSERT_EQUAL(c.len, 16);
  mpc_buf_free(&c);

  mpc__wrd_t rd = {b.data + MPC__HDR_BYTES, b.data + b.len};
  mpc__wres_t g = {0};
  uint64_t prev = 0;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 0);
  CU_ASSERT(g.tid == 1000 && g.status == 3 && g.code == 9 && g.pid == 4242 && g.len == 1);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 1);
  CU_ASSERT_EQUAL(g.tid, 1001);
  CU_ASSERT(g.status == 0 && g.code == 0 && g.pid == 0 && g.maxrss_kb == 0);
  CU_ASSERT_EQUAL(g.worker, 0);
  CU_ASSERT_DOUBLE_EQUAL(g.end - g.start, 1.5e-6, 1e-12);
  CU_ASSERT(g.len == 8 && memcmp(g.data, "12345678", 8) == 0);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 1);
  CU_ASSERT(g.tid == 1128 && g.worker == 254 && g.len == 0 && g.end == 0);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 1);
  CU_ASSERT(g.tid == 1000 && g.worker == 2 && g.len == 1 && memcmp(g.data, "x", 1) == 0);
  CU_ASSERT_DOUBLE_EQUAL(g.end, 4.2, 1e-9);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 1);
  CU_ASSERT(g.tid == 999 && g.worker == 1 && g.len == 65535 && g.end == 0);
  CU_ASSERT(memcmp(g.data, big, sizeof big) == 0);
  CU_ASSERT_EQUAL(prev, 999);
  CU_ASSERT_PTR_EQUAL(rd.p, rd.end);
  CU_ASSERT_EQUAL(mpc__wire_read_result(&rd, &g, &prev), MPC_EPROTO);
  /* Every cut of the first entries is refused at some entry, never overrun. */
  for (size_t cut = MPC__HDR_BYTES; cut < b.len - sizeof big; cut++) {
    mpc__wrd_t r = {b.data + MPC__HDR_BYTES, b.data + cut};
    uint64_t p = 0;
    int rc = 0;
    for (int i = 0; i < 5 && rc >= 0; i++)
      rc = mpc__wire_read_result(&r, &g, &p);
    CU_ASSERT_EQUAL(rc, MPC_EPROTO);
    CU_ASSERT(r.p <= r.end);
  }
  /* A length past the end of the message. */
  unsigned char bad[] = {1, 1, 0, 0, 0, 0, 3, 0, 'a', 'b'};
  mpc__wrd_t r = {bad, bad + sizeof bad};
  prev = 0;
  CU_ASSERT_EQUAL(mpc__wire_read_result(&r, &g, &prev), MPC_EPROTO);
  r.p = bad;
  bad[6] = 2;
  CU_ASSERT_EQUAL(mpc__wire_read_result(&r, &g, &prev), 1);
  CU_ASSERT_PTR_EQUAL(r.p, r.end);

  /* mpc__wire_read_short (the master's fast path): short entries as
   * read_result reads them; a full entry, a truncated or an overlong one is
   * left unread, for read_result to take or refuse. */
  rd = (mpc__wrd_t){b.data + MPC__HDR_BYTES, b.data + b.len};
  prev = 0;
  uint64_t tid = 0;
  int wk = -1;
  uint32_t ns = 0, len = 0;
  const void *data = NULL;
  CU_ASSERT_EQUAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 0);
  CU_ASSERT_PTR_EQUAL(rd.p, b.data + MPC__HDR_BYTES); /* the full entry: not read */
  CU_ASSERT_EQUAL(prev, 0);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g, &prev), 0);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 1);
  CU_ASSERT(tid == 1001 && prev == 1001 && wk == 0 && ns == 1500 && len == 8);
  CU_ASSERT(memcmp(data, "12345678", 8) == 0);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 1);
  CU_ASSERT(tid == 1128 && wk == 254 && ns == 0 && len == 0);
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 1);
  CU_ASSERT(tid == 1000 && wk == 2 && ns == 4200000000u && len == 1);
  /* the last entry cut short by one byte: refused, nothing moves */
  const unsigned char *last = rd.p;
  rd.end--;
  CU_ASSERT_EQUAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 0);
  CU_ASSERT(rd.p == last && prev == 1000);
  CU_ASSERT_EQUAL(mpc__wire_read_result(&rd, &g, &prev), MPC_EPROTO);
  rd.end++;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 1);
  CU_ASSERT(tid == 999 && wk == 1 && len == 65535 && memcmp(data, big, sizeof big) == 0);
  CU_ASSERT_PTR_EQUAL(rd.p, rd.end);
  CU_ASSERT_EQUAL(mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len), 0);
  /* a short header shorter than its fixed fields */
  r = (mpc__wrd_t){bad, bad + 5};
  prev = 0;
  CU_ASSERT_EQUAL(mpc__wire_read_short(&r, &prev, &tid, &wk, &ns, &data, &len), 0);
  CU_ASSERT_PTR_EQUAL(r.p, bad);
  mpc_buf_free(&b);
}

/* TASKS with consecutive tids: tid0 once, then lengths and inputs. */
static void test_wire_run(void) {
  unsigned char big[300];
  memset(big, 'z', sizeof big);
  const struct { const void *p; uint32_t len; } in[] = {{"", 0}, {"abc", 3}, {big, 300}};
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__wire_hdr(&b, MPC__DOWN_TASKS, MPC__DOWN_RUN), 0);
  CU_ASSERT_EQUAL_FATAL(mpc_buf_reserve(&b, 8 + 3 * 10 + 303), 0);
  unsigned char *o = b.data + b.len;
  mpc__put64(o, 77);
  o += 8;
  for (int i = 0; i < 3; i++)
    o = mpc__wire_run_task_at(o, in[i].p, in[i].len);
  b.len = (size_t)(o - b.data);
  CU_ASSERT_EQUAL(b.len, MPC__HDR_BYTES + 8 + 1 + 0 + 1 + 3 + 2 + 300);
  mpc__wrd_t rd = {b.data + MPC__HDR_BYTES + 8, b.data + b.len};
  CU_ASSERT_EQUAL(mpc__get64(b.data + MPC__HDR_BYTES), 77);
  for (int i = 0; i < 3; i++) {
    const void *p = NULL;
    uint32_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mpc__wire_read_run_task(&rd, &p, &len), 0);
    CU_ASSERT_EQUAL(len, in[i].len);
    CU_ASSERT(memcmp(p, in[i].p, len) == 0);
  }
  CU_ASSERT_PTR_EQUAL(rd.p, rd.end);
  const void *p = NULL;
  uint32_t len;
  CU_ASSERT_EQUAL(mpc__wire_read_run_task(&rd, &p, &len), MPC_EPROTO);
  /* The big input cut by one byte; its length cut in half. */
  mpc__wrd_t t1 = {b.data + b.len - 302, b.data + b.len - 1};
  CU_ASSERT_EQUAL(mpc__wire_read_run_task(&t1, &p, &len), MPC_EPROTO);
  mpc__wrd_t t2 = {b.data + b.len - 302, b.data + b.len - 301};
  CU_ASSERT_EQUAL(mpc__wire_read_run_task(&t2, &p, &len), MPC_EPROTO);
  mpc_buf_free(&b);
}

static void test_summary(void) {
  mpc__rank_stat_t ranks[2] = {
      {.workers = 2, .host = "n0", .tasks = 30, .ok = 29, .failed = 1, .busy = 3.0},
      {.workers = 1, .host = "n1", .tasks = 12, .ok = 12, .failed = 0, .busy = 1.0},
  };
  mpc__fail_item_t fails[1] = {
      {.key = "img/7.png", .status = MPC_TASK_CRASHED, .code = 11, .rank = 0,
       .pid = 321, .host = "n0", .msg = NULL},
  };
  mpc__summary_t s = {
      .job = "demo",
      .rep = {.tasks = 45, .ok = 41, .failed = 3, .resumed = 2, .retried = 1,
              .canceled = 1, .wall = 2.0},
      .nranks = 2, .ranks = ranks, .fails = fails, .nfails_kept = 1,
      .why = "--halt now: 3 tasks failed",
  };
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__summary_format(&b, &s), 0);
  const char *txt = mpc_buf_str(&b);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "45 tasks: 41 ok, 3 failed, 1 retried, 2 resumed, 1 canceled; 2.00 s, 21.0 tasks/s"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "rank 0 (n0, 2 workers): 30 tasks (29 ok, 1 failed), busy 75.0%"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "rank 1 (n1, 1 worker): 12 tasks (12 ok, 0 failed), busy 50.0%"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "img/7.png: crashed (signal 11, SIGSEGV) on rank 0 (n0) pid 321"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "... and 2 more"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "stopped early: --halt now"));
  mpc_buf_clear(&b);
  CU_ASSERT_EQUAL_FATAL(mpc__summary_json(&b, &s), 0);
  txt = mpc_buf_str(&b);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"tasks\":45,\"ok\":41,\"failed\":3"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"key\":\"img/7.png\",\"status\":\"crashed\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"message\":\"\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"reason\":\"crashed (signal 11, SIGSEGV)\""));
  mpc_buf_free(&b);
}

static void test_fault_parse(void) {
  mpc__faults_t fs;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__fault_parse("segv:task=17,hang:task=30,kill:rank=1@2s", &fs, &err), 0);
  CU_ASSERT_EQUAL(fs.n, 3);
  CU_ASSERT_EQUAL(fs.nrank, 1);
  CU_ASSERT(fs.v[0].kind == MPC__F_SEGV && fs.v[0].task == 17 && fs.v[0].rank == -1);
  CU_ASSERT(fs.v[1].kind == MPC__F_HANG && fs.v[1].task == 30);
  CU_ASSERT(fs.v[2].kind == MPC__F_KILL && fs.v[2].rank == 1 && fs.v[2].at == 2.0);
  mpc__fault_free(&fs);
  CU_ASSERT_EQUAL_FATAL(mpc__fault_parse("exit:task=3:rank=0:code=9,delay:rank=2:worker=1@250ms,"
                                         "stop:rank=1@1.5,oom:task=4,fail,abort:task=5", &fs, &err), 0);
  CU_ASSERT_EQUAL(fs.n, 6);
  CU_ASSERT(fs.v[0].kind == MPC__F_EXIT && fs.v[0].code == 9 && fs.v[0].rank == 0 && fs.v[0].task == 3);
  CU_ASSERT(fs.v[1].kind == MPC__F_DELAY && fs.v[1].worker == 1 && fs.v[1].at == 0.25);
  CU_ASSERT(fs.v[2].kind == MPC__F_STOP && fs.v[2].at == 1.5);
  CU_ASSERT(fs.v[4].kind == MPC__F_FAIL && fs.v[4].task == -1 && fs.v[4].code == 1);
  /* A fail fault: the task's error, with a message; others do not match. */
  mpc_buf_t out = MPC_BUF_INIT;
  CU_ASSERT_EQUAL(mpc__fault_task(&fs, 1, 0, 99, &out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&out), "task 99"));
  mpc_buf_free(&out);
  mpc__fault_free(&fs);
  CU_ASSERT_EQUAL(mpc__fault_parse("", &fs, &err), 0);
  CU_ASSERT_EQUAL(fs.n, 0);
  CU_ASSERT_EQUAL(mpc__fault_parse(NULL, &fs, &err), 0);
  static const char *bad[] = {"segfault:task=1", "segv:task=x", "segv:tsk=1", "kill:task=1",
                              "kill:rank=1", "delay:task=1", "segv:task=1@2s",
                              "stop:rank=1@soon", "exit:code=0", NULL};
  for (int i = 0; bad[i]; i++) {
    mpc_buf_clear(&err);
    CU_ASSERT_EQUAL(mpc__fault_parse(bad[i], &fs, &err), MPC_EUSAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "MPC_FAULT item"));
  }
  mpc_buf_free(&err);
}

static int nodelay_of(int fd) {
  int v = -1;
  socklen_t l = sizeof v;
  return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l) ? -1 : v;
}

/* A loopback connection (both ends), a listener and a Unix socket pair: the
 * TCP ends get TCP_NODELAY, the pair is left alone. */
static void test_tcp_nodelay(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), sp[2];
  CU_ASSERT_FATAL(ls >= 0 && c >= 0);
  CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CU_ASSERT_FATAL(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 1) == 0);
  CU_ASSERT_FATAL(getsockname(ls, (struct sockaddr *)&a, &al) == 0);
  CU_ASSERT_FATAL(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
  int s = accept(ls, NULL, NULL);
  CU_ASSERT_FATAL(s >= 0);
  CU_ASSERT_EQUAL(nodelay_of(c), 0); /* Nagle on by default */
  CU_ASSERT_EQUAL(nodelay_of(s), 0);
  CU_ASSERT(mpc__tcp_nodelay_all() >= 3);
  CU_ASSERT_EQUAL(nodelay_of(c), 1);
  CU_ASSERT_EQUAL(nodelay_of(s), 1);
  CU_ASSERT_EQUAL(nodelay_of(sp[0]), -1); /* not TCP: untouched (and no such option) */
  char b = 'x';
  CU_ASSERT(write(sp[0], &b, 1) == 1 && read(sp[1], &b, 1) == 1 && b == 'x');
  close(s);
  close(c);
  close(ls);
  close(sp[0]);
  close(sp[1]);
}

static void test_summary_cluster(void) {
  uint64_t wt[2] = {3, 4};
  double wb[2] = {1.5, 2.0};
  mpc__rank_stat_t ranks[2] = {
      {.workers = 2, .host = "n0", .tasks = 7, .ok = 7, .busy = 3.5, .wtasks = wt, .wbusy = wb},
      {.workers = 1, .host = "n1", .tasks = 2, .ok = 1, .busy = 1.0, .lost = 1, .silent = 61.5},
  };
  uint64_t by[8] = {8, 0, 0, 0, 0, 0, 0, 0};
  mpc__summary_t s = {.job = "demo", .rep = {.tasks = 8, .ok = 8, .wall = 4.0},
                      .nranks = 2, .ranks = ranks, .spec_launched = 3, .spec_won = 2,
                      .by_status = by};
  mpc_buf_t b = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc__summary_format(&b, &s), 0);
  const char *txt = mpc_buf_str(&b);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "rank 1 (n1, 1 worker): 2 tasks (1 ok, 0 failed), busy 25.0%; LOST: silent for 61.5 s"));
  CU_ASSERT_PTR_NULL(strstr(txt, "rank 0 (n0, 2 workers): 7 tasks (7 ok, 0 failed), busy 43.8%; LOST"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "stragglers: 3 speculative copies started, 2 won"));
  mpc_buf_clear(&b);
  CU_ASSERT_EQUAL_FATAL(mpc__summary_json(&b, &s), 0);
  txt = mpc_buf_str(&b);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"tasks_per_second\":2.000"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"speculative\":{\"started\":3,\"won\":2}"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"per_worker\":[{\"worker\":0,\"tasks\":3,\"busy_seconds\":1.500000},"
                                     "{\"worker\":1,\"tasks\":4,\"busy_seconds\":2.000000}]"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"lost\":true"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"by_status\":{\"ok\":8,\"error\":0,\"crashed\":0,"
                                     "\"exited\":0,\"timeout\":0,\"oom\":0,\"canceled\":0}"));
  mpc_buf_free(&b);
}

MPC_TESTS(farm) = {
    {"guided batch sizes", test_guided},
    {"wire format round trip and bounds", test_wire},
    {"wire varints at their edges", test_wire_varint},
    {"wire short result entries", test_wire_short},
    {"wire task runs", test_wire_run},
    {"summary text and JSON", test_summary},
    {"MPC_FAULT parsing and the fail fault", test_fault_parse},
    {"summary: lost ranks, speculation, per-worker JSON", test_summary_cluster},
    {"TCP_NODELAY on the process's TCP sockets", test_tcp_nodelay},
    CU_TEST_INFO_NULL,
};
