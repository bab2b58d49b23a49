/* The mandel job: the picture does not depend on the tiling or on the order
 * in which bands come back; frames; failures; usage. */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../jobs/image/pix.h"
#include "../../jobs/mandel/mandel.h"

static char g_dir[64];

static void scratch_new(void) {
  strcpy(g_dir, "/tmp/mpc-test-mandel-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_dir));
}

static void scratch_free(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

static const char *at(const char *rel) {
  static char buf[8][256];
  static int n;
  char *b = buf[n++ % 8];
  snprintf(b, 256, "%s/%s", g_dir, rel);
  return b;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)sz + 1);
  *n = fread(b, 1, (size_t)sz, f);
  fclose(f);
  return b;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  if (!d)
    return -1;
  while ((e = readdir(d)))
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static int same_file(const char *a, const char *b) {
  size_t na, nb;
  unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  free(x);
  free(y);
  return same;
}

/* Run the job with stdout silenced; argv[0] is added. */
static int run(int argc, const char **args, mpc_job_report_t *rep) {
  char *argv[24] = {"mandel"};
  for (int i = 0; i < argc; i++)
    argv[i + 1] = (char *)args[i];
  fflush(stdout);
  int saved = dup(1), nul = open("/dev/null", O_WRONLY);
  dup2(nul, 1);
  close(nul);
  mpc_buf_t err = MPC_BUF_INIT;
  int rc = mpct_job_run(&mpc_job_mandel, argc + 1, argv, rep, &err);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  if (rc)
    fprintf(stderr, "mandel: %s\n", mpc_buf_str(&err));
  mpc_buf_free(&err);
  return rc;
}

static int decode(const char *path, image_pix_t *p) {
  size_t n;
  unsigned char *b = slurp(path, &n);
  mpc_buf_t err = MPC_BUF_INIT;
  int rc = b ? image_png_decode(b, n, 1u << 30, 0, p, &err) : -1;
  free(b);
  mpc_buf_free(&err);
  return rc;
}

/* Bands of 1 row, 7 rows and one band for the whole picture give the same
 * file, byte for byte. */
static void test_tiling_independent(void) {
  scratch_new();
  const char *tiles[] = {"1", "7", "1000"};
  for (int i = 0; i < 3; i++) {
    char out[32];
    snprintf(out, sizeof out, "t%s.png", tiles[i]);
    mpc_job_report_t rep;
    const char *args[] = {"--size", "96x64",  "--iter", "300",
                          "--tile", tiles[i], "--out",  at(out)};
    CU_ASSERT_EQUAL_FATAL(run(8, args, &rep), 0);
    CU_ASSERT_EQUAL(rep.failed, 0);
    CU_ASSERT_EQUAL(rep.tasks, i == 0 ? 64u : i == 1 ? 10u : 1u);
  }
  CU_ASSERT(same_file(at("t1.png"), at("t7.png")));
  CU_ASSERT(same_file(at("t1.png"), at("t1000.png")));
  image_pix_t p;
  CU_ASSERT_EQUAL_FATAL(decode(at("t7.png"), &p), 0);
  CU_ASSERT_EQUAL(p.w, 96);
  CU_ASSERT_EQUAL(p.h, 64);
  CU_ASSERT_EQUAL(p.channels, 3);
  /* The default view is centred on -0.75: the centre column crosses the
   * interior (black) and the corners are outside (coloured). */
  const unsigned char *mid = p.data + 32 * p.stride + 40 * 3; /* c ~ -0.9 */
  CU_ASSERT(mid[0] == 0 && mid[1] == 0 && mid[2] == 0);
  const unsigned char *corner = p.data;
  CU_ASSERT(corner[0] + corner[1] + corner[2] > 0);
  image_pix_free(&p);
  scratch_free();
}

/* Bands gathered in reverse order (as if other ranks finished first) give
 * the same file. */
static void test_order_independent(void) {
  scratch_new();
  mpc_job_report_t rep;
  const char *args[] = {"--size", "80x50",      "--iter",   "200",
                        "--tile", "3",          "--center", "-0.5,0.1",
                        "--out",  at("fwd.png")};
  CU_ASSERT_EQUAL_FATAL(run(10, args, &rep), 0);

  char *argv[] = {"mandel",
                  "--size",
                  "80x50",
                  "--iter",
                  "200",
                  "--tile",
                  "3",
                  "--center",
                  "-0.5,0.1",
                  "--out",
                  (char *)at("rev.png")};
  mpc_job_env_t env = {.rank = 0, .nranks = 4, .workers = 2};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc_job_mandel.init(11, argv, &env, &st, &err), 0);
  mpc_buf_t in[32], out[32];
  int n = 0;
  for (;; n++) {
    CU_ASSERT_FATAL(n < 32);
    mpc_buf_t key = MPC_BUF_INIT;
    in[n] = (mpc_buf_t)MPC_BUF_INIT;
    out[n] = (mpc_buf_t)MPC_BUF_INIT;
    int rc = mpc_job_mandel.next(st, &in[n], &key);
    mpc_buf_free(&key);
    if (rc == 0)
      break;
    CU_ASSERT_EQUAL_FATAL(
        mpc_job_mandel.run(st, in[n].data, in[n].len, &out[n]), 0);
  }
  CU_ASSERT_EQUAL(n, 17);
  for (int i = n - 1; i >= 0; i--) {
    mpc_job_result_t r = {.seq = (uint64_t)i,
                          .key = "band",
                          .input = in[i].data,
                          .input_len = in[i].len,
                          .status = MPC_TASK_OK,
                          .output = out[i].data,
                          .output_len = out[i].len};
    CU_ASSERT_EQUAL(mpc_job_mandel.gather(st, &r), 0);
  }
  fflush(stdout);
  int saved = dup(1), nul = open("/dev/null", O_WRONLY);
  dup2(nul, 1);
  close(nul);
  mpc_job_report_t rep2 = {0};
  int frc = mpc_job_mandel.finish(st, &rep2);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  CU_ASSERT_EQUAL(frc, 0);
  mpc_job_mandel.fini(st);
  for (int i = 0; i < n; i++) {
    mpc_buf_free(&in[i]);
    mpc_buf_free(&out[i]);
  }
  mpc_buf_free(&err);
  CU_ASSERT(same_file(at("fwd.png"), at("rev.png")));
  scratch_free();
}

/* --frames K writes K frames into a directory; they differ (the zoom
 * advances); the first equals the single picture with the same view. */
static void test_frames(void) {
  scratch_new();
  mpc_job_report_t rep;
  const char *args[] = {"--size",   "64x48",  "--iter",      "150",
                        "--frames", "3",      "--center",    "-0.743,0.131",
                        "--zoom",   "2",      "--zoom-step", "3",
                        "--out",    at("seq")};
  CU_ASSERT_EQUAL_FATAL(run(14, args, &rep), 0);
  CU_ASSERT_EQUAL(rep.tasks, 9); /* 3 frames x 3 bands of 16 rows */
  const char *one[] = {"--size",   "64x48",        "--iter", "150",
                       "--center", "-0.743,0.131", "--zoom", "2",
                       "--out",    at("one.png")};
  CU_ASSERT_EQUAL_FATAL(run(10, one, &rep), 0);
  CU_ASSERT(same_file(at("seq/frame_000.png"), at("one.png")));
  CU_ASSERT(!same_file(at("seq/frame_000.png"), at("seq/frame_001.png")));
  CU_ASSERT(!same_file(at("seq/frame_001.png"), at("seq/frame_002.png")));
  struct stat st;
  CU_ASSERT_NOT_EQUAL(stat(at("seq/frame_003.png"), &st), 0);
  scratch_free();
}

/* A failed band: the frame is not written and finish() reports it. */
static void test_failed_band(void) {
  scratch_new();
  char *argv[] = {"mandel", "--size", "32x32", "--iter",           "50",
                  "--tile", "8",      "--out", (char *)at("x.png")};
  mpc_job_env_t env = {.rank = 0, .nranks = 1};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT, in = MPC_BUF_INIT, key = MPC_BUF_INIT,
            out = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc_job_mandel.init(9, argv, &env, &st, &err), 0);
  for (int i = 0; mpc_job_mandel.next(st, &in, &key) == 1; i++) {
    CU_ASSERT_EQUAL(mpc_job_mandel.run(st, in.data, in.len, &out), 0);
    mpc_job_result_t r = {.key = mpc_buf_str(&key),
                          .input = in.data,
                          .input_len = in.len,
                          .status = MPC_TASK_OK,
                          .output = out.data,
                          .output_len = out.len};
    if (i == 2) {
      r.status = MPC_TASK_CRASHED;
      r.code = 9;
      r.output_len = 0;
    }
    CU_ASSERT_EQUAL(mpc_job_mandel.gather(st, &r), 0);
    mpc_buf_clear(&in);
    mpc_buf_clear(&key);
  }
  fflush(stdout);
  int saved = dup(1), nul = open("/dev/null", O_WRONLY);
  dup2(nul, 1);
  close(nul);
  mpc_job_report_t rep = {0};
  int rc = mpc_job_mandel.finish(st, &rep);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  CU_ASSERT(rc < 0);
  struct stat sb;
  CU_ASSERT_NOT_EQUAL(stat(at("x.png"), &sb), 0);
  /* A malformed task fails in run() with a message. */
  CU_ASSERT_NOT_EQUAL(mpc_job_mandel.run(st, "0 40 8", 6, &out), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&out), "malformed"));
  mpc_job_mandel.fini(st);
  /* Nothing is left behind: no picture, no temporary file. */
  CU_ASSERT_EQUAL(count_entries(g_dir), 0);
  mpc_buf_free(&err);
  mpc_buf_free(&in);
  mpc_buf_free(&key);
  mpc_buf_free(&out);
  scratch_free();
}

/* A run that stops half-way (bands 0 and 1 arrived, and were streamed to the
 * encoder, the rest never came) leaves no file and no temporary file. */
static void test_interrupted_leaves_nothing(void) {
  scratch_new();
  char *argv[] = {"mandel", "--size", "40x40", "--iter",           "50",
                  "--tile", "8",      "--out", (char *)at("y.png")};
  mpc_job_env_t env = {.rank = 0, .nranks = 1};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT, in = MPC_BUF_INIT, key = MPC_BUF_INIT,
            out = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(mpc_job_mandel.init(9, argv, &env, &st, &err), 0);
  for (int i = 0; i < 2 && mpc_job_mandel.next(st, &in, &key) == 1; i++) {
    CU_ASSERT_EQUAL(mpc_job_mandel.run(st, in.data, in.len, &out), 0);
    mpc_job_result_t r = {.key = mpc_buf_str(&key),
                          .input = in.data,
                          .input_len = in.len,
                          .status = MPC_TASK_OK,
                          .output = out.data,
                          .output_len = out.len};
    CU_ASSERT_EQUAL(mpc_job_mandel.gather(st, &r), 0);
    mpc_buf_clear(&in);
    mpc_buf_clear(&key);
  }
  CU_ASSERT_EQUAL(count_entries(g_dir),
                  1); /* the temporary file, in progress */
  mpc_job_mandel.fini(st);
  CU_ASSERT_EQUAL(count_entries(g_dir), 0);
  mpc_buf_free(&err);
  mpc_buf_free(&in);
  mpc_buf_free(&key);
  mpc_buf_free(&out);
  scratch_free();
}

static void test_usage(void) {
  const char *cases[][3] = {
      {"--size", "10x10", NULL}, /* no --out */
      {"--out", "x.png", "--bogus"},
      {"--out", "x.png", "--size"}, /* missing value */
      {"--zoom", "0", NULL},
      {"--center", "1", NULL},
      {"--iter", "-5", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *argv[5] = {"mandel"};
    int argc = 1;
    for (int k = 0; k < 3 && cases[i][k]; k++)
      argv[argc++] = (char *)cases[i][k];
    mpc_job_env_t env = {.rank = 1, .nranks = 2};
    void *st = NULL;
    mpc_buf_t err = MPC_BUF_INIT;
    CU_ASSERT_EQUAL(mpc_job_mandel.init(argc, argv, &env, &st, &err),
                    MPC_EUSAGE);
    CU_ASSERT(err.len > 0);
    CU_ASSERT_PTR_NULL(st);
    mpc_buf_free(&err);
  }
  /* An output file in a missing directory is refused before any work. */
  char *argv[] = {"mandel", "--out", "/nonexistent-dir-mpc/x.png"};
  mpc_job_env_t env = {.rank = 0, .nranks = 1};
  void *st = NULL;
  mpc_buf_t err = MPC_BUF_INIT;
  CU_ASSERT(mpc_job_mandel.init(3, argv, &env, &st, &err) < 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpc_buf_str(&err), "/nonexistent-dir-mpc"));
  mpc_buf_free(&err);
}

MPC_TESTS(mandel) = {
    {"picture independent of the tiling", test_tiling_independent},
    {"picture independent of gather order", test_order_independent},
    {"--frames writes a zoom sequence", test_frames},
    {"a failed band: frame not written, reported", test_failed_band},
    {"an interrupted run leaves nothing", test_interrupted_leaves_nothing},
    {"usage errors", test_usage},
    CU_TEST_INFO_NULL,
};
