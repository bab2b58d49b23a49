/* Pure parts of mpc-run's runtime: batch sizes, wire format, summary. */
#include "test.h"

#include <string.h>

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
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g), 0);
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
  CU_ASSERT_EQUAL_FATAL(mpc__wire_read_result(&rd, &g), 0);
  CU_ASSERT_EQUAL(g.tid, 5);
  CU_ASSERT_EQUAL(g.len, 0);
  CU_ASSERT_PTR_EQUAL(rd.p, rd.end);
  CU_ASSERT_EQUAL(mpc__wire_read_result(&rd, &g), MPC_EPROTO);
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
    {"summary text and JSON", test_summary},
    {"MPC_FAULT parsing and the fail fault", test_fault_parse},
    {"summary: lost ranks, speculation, per-worker JSON", test_summary_cluster},
    CU_TEST_INFO_NULL,
};
