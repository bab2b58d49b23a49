/* stats job end to end in-process: pandas-equal results on hand-made CSVs,
 * identical results for 1..100 ranges (cuts inside quoted newlines), HDF5
 * read back with the HDF5 API, malformed inputs give line-numbered errors. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../jobs/stats/stats.h"

static char g_dir[256];

static void mkdir_tmp(void) {
  if (!g_dir[0]) {
    strcpy(g_dir, "/tmp/mpct-stats-XXXXXX");
    if (!mkdtemp(g_dir))
      g_dir[0] = 0;
  }
}

static const char *path_of(const char *name) {
  static char p[64][512]; /* a ring: callers keep a few at a time */
  static int i;
  mkdir_tmp();
  i = (i + 1) % 64;
  snprintf(p[i], sizeof p[i], "%s/%s", g_dir, name);
  return p[i];
}

static const char *write_file(const char *name, const void *data, size_t len) {
  const char *p = path_of(name);
  FILE *f = fopen(p, "wb");
  if (!f)
    return NULL;
  fwrite(data, 1, len, f);
  fclose(f);
  return p;
}
#define WRITE_STR(name, s) write_file(name, s, sizeof(s) - 1)

/* Run the job with argv (NULL-terminated); stdout/stderr captured. */
typedef struct run_out {
  int rc;
  char out[65536];
  char err[8192];
  mpc_job_report_t rep;
} run_out_t;

static void slurp(int fd, char *buf, size_t cap) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, cap - 1);
  buf[n > 0 ? n : 0] = 0;
}

static void run_stats(run_out_t *r, ...) {
  char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, r);
  argv[argc++] = "stats";
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
    argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  fflush(stdout);
  fflush(stderr);
  FILE *fo = tmpfile(), *fe = tmpfile();
  int so = dup(1), se = dup(2);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  mpc_buf_t err = MPC_BUF_INIT;
  r->rc = mpct_job_run(&mpc_job_stats, argc, argv, &r->rep, &err);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  slurp(fileno(fo), r->out, sizeof r->out);
  slurp(fileno(fe), r->err, sizeof r->err);
  if (err.len) {
    size_t l = strlen(r->err);
    snprintf(r->err + l, sizeof r->err - l, "%s", mpc_buf_str(&err));
  }
  mpc_buf_free(&err);
  fclose(fo);
  fclose(fe);
}

/* ---- reading our HDF5 output ---------------------------------------------- */

typedef struct h5res {
  size_t ncols;
  char names[32][64];
  double v[8][32];
  uint64_t rows;
  char source[512];
} h5res_t;

static int read_h5(const char *path, h5res_t *o) {
  memset(o, 0, sizeof *o);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return -1;
  hid_t d = H5Dopen2(f, "columns", H5P_DEFAULT);
  hid_t sp = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  if (n < 0 || n > 32) {
    H5Fclose(f);
    return -1;
  }
  o->ncols = (size_t)n;
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, H5T_VARIABLE);
  H5Tset_cset(st, H5T_CSET_UTF8);
  char *names[32];
  if (n && H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0)
    return -1;
  for (hssize_t i = 0; i < n; i++)
    snprintf(o->names[i], sizeof o->names[i], "%s", names[i]);
  if (n)
    H5Dvlen_reclaim(st, sp, H5P_DEFAULT, names);
  H5Tclose(st);
  H5Sclose(sp);
  H5Dclose(d);
  for (int r = 0; r < 8; r++) {
    d = H5Dopen2(f, stats_row_names[r], H5P_DEFAULT);
    if (d < 0 || (n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               o->v[r]) < 0))
      return -1;
    H5Dclose(d);
  }
  hid_t a = H5Aopen(f, "rows", H5P_DEFAULT);
  H5Aread(a, H5T_NATIVE_UINT64, &o->rows);
  H5Aclose(a);
  a = H5Aopen(f, "source", H5P_DEFAULT);
  hid_t at = H5Aget_type(a);
  size_t sz = H5Tget_size(at);
  if (sz < sizeof o->source)
    H5Aread(a, at, o->source);
  H5Tclose(at);
  H5Aclose(a);
  H5Fclose(f);
  return 0;
}

/* ---- pandas ------------------------------------------------------------------- */

static const char *k_pandas =
    "import sys, pandas as pd\n"
    "kw = {'float_precision': 'round_trip'}\n"
    "if len(sys.argv) > 2: kw['sep'] = sys.argv[2]\n"
    "d = pd.read_csv(sys.argv[1], **kw).describe()\n"
    "for c in d.columns:\n"
    "    print(c + '\\t' + '\\t'.join(repr(float(v)) for v in d[c].values))\n";

typedef struct pdres {
  size_t ncols;
  char names[32][64];
  double v[32][8];
} pdres_t;

static int run_pandas(const char *csv, const char *sep, pdres_t *o) {
  memset(o, 0, sizeof *o);
  const char *py = path_of("describe.py");
  if (!write_file("describe.py", k_pandas, strlen(k_pandas)))
    return -1;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s '%s' %s%s%s 2>&1", py, csv, sep ? "'" : "",
           sep ? sep : "", sep ? "'" : "");
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  char line[4096];
  while (fgets(line, sizeof line, p) && o->ncols < 32) {
    char *save, *tok = strtok_r(line, "\t\n", &save);
    if (!tok)
      continue;
    snprintf(o->names[o->ncols], 64, "%s", tok);
    int k = 0;
    while (k < 8 && (tok = strtok_r(NULL, "\t\n", &save)))
      o->v[o->ncols][k++] = strtod(tok, NULL);
    if (k != 8) {
      fprintf(stderr, "pandas said: %s", o->names[o->ncols]);
      while (fgets(line, sizeof line, p))
        fputs(line, stderr);
      pclose(p);
      return -1;
    }
    o->ncols++;
  }
  return pclose(p) == 0 ? 0 : -1;
}

static int close_enough(int row, double a, double b) {
  if (isnan(a) || isnan(b))
    return isnan(a) && isnan(b);
  if (row == 1 || row == 2)
    return a == b || fabs(a - b) <= 1e-12 * fabs(b);
  return a == b;
}

/* Our output (HDF5) equals pandas describe() on csv. */
static void check_vs_pandas(const char *csv, const char *sep, int exact, const char *tasks) {
  pdres_t pd;
  int prc = run_pandas(csv, sep, &pd);
  CU_ASSERT_EQUAL_FATAL(prc, 0);
  const char *h5 = path_of("cmp.h5");
  run_out_t *r = calloc(1, sizeof *r);
  char delim[8] = ",";
  if (sep)
    snprintf(delim, sizeof delim, "%s", sep);
  if (exact)
    run_stats(r, csv, "--out", h5, "--delimiter", delim, "--tasks", tasks, "--exact", NULL);
  else
    run_stats(r, csv, "--out", h5, "--delimiter", delim, "--tasks", tasks, NULL);
  if (r->rc)
    fprintf(stderr, "stats failed on %s: %s\n", csv, r->err);
  CU_ASSERT_EQUAL_FATAL(r->rc, 0);
  h5res_t h;
  CU_ASSERT_EQUAL_FATAL(read_h5(h5, &h), 0);
  CU_ASSERT_EQUAL(h.ncols, pd.ncols);
  for (size_t j = 0; j < pd.ncols && j < h.ncols; j++) {
    CU_ASSERT_STRING_EQUAL(h.names[j], pd.names[j]);
    for (int k = 0; k < 8; k++) {
      int ok = close_enough(k, h.v[k][j], pd.v[j][k]);
      if (!ok)
        fprintf(stderr, "%s col %s %s: mpc %.17g pandas %.17g (tasks %s)\n", csv, pd.names[j],
                stats_row_names[k], h.v[k][j], pd.v[j][k], tasks);
      CU_ASSERT(ok);
    }
  }
  free(r);
}

/* every case the issue lists, in one file plus a few small ones */
static const char k_mixed[] =
    "\xEF\xBB\xBF" "id,int,\"flt, x\",sci,neg,miss,text,qnum\r\n"
    "\r\n"
    "1,10,1.5,1e3,-1,NA,hello,\"7\"\r\n"
    "2,-20,2.25,2.5E-2,-2.5,,\"with, comma\",\"8.5\"\r\n"
    "   \r\n"
    "3,30,-0.125,-3.75e+01,-3,NaN,\"multi\r\nline\",9\r\n"
    "4,40,1e-3,4e0,-4.0,null,\"quote \"\"inside\"\"\",\"-1\"\r\n"
    "\r\n"
    "5,50,7,5.5e1,-5,N/A,plain,10\r\n"
    "6,60,  8.5,6e-1,-6,n/a,\"a\nb\nc\",11\r\n"
    "7,70,9.75,7.25e2,-7,#N/A,x,\"\"\r\n"
    "8,,10,8e2,-8,<NA>,y,12\r\n"
    "9,90,11.5,9e-9,-9,NULL,z,13\r\n"
    "10,100,12,1.5e1,-10,-nan,w,14"; /* no trailing newline */

static void test_pandas_mixed(void) {
  const char *p = WRITE_STR("mixed.csv", k_mixed);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  check_vs_pandas(p, NULL, 0, "1");
  check_vs_pandas(p, NULL, 1, "1");
  check_vs_pandas(p, NULL, 1, "3");
  check_vs_pandas(p, NULL, 0, "50");
}

static void test_pandas_small_cases(void) {
  const char *p = WRITE_STR("one.csv", "v\n3\n1\n2\n");
  check_vs_pandas(p, NULL, 1, "2");
  p = WRITE_STR("lf.csv", "a,b,c\n1,,x\n2,,y\n3,,\n4.5,,z\n");
  check_vs_pandas(p, NULL, 1, "4");
  p = WRITE_STR("semi.csv", "a;b\n1,5;2\n3;4\n;6\n");
  check_vs_pandas(p, ";", 1, "2");
  p = WRITE_STR("big.csv", "a,b\n9007199254740993,1e308\n-1e-300,0.1\n0.30000000000000004,2\n");
  check_vs_pandas(p, NULL, 1, "1");
  /* all-missing column is numeric with count 0, text column skipped */
  p = WRITE_STR("allmiss.csv", "a,b,c\n1,,t\n2,NA,u\n");
  check_vs_pandas(p, NULL, 0, "2");
}

/* A generated file whose quoted fields contain newlines, commas and lines
 * that look like records, so that range cuts land inside quoted fields. */
static const char *gen_tricky(const char *name, int rows, unsigned seed) {
  const char *p = path_of(name);
  FILE *f = fopen(p, "w");
  srand(seed);
  fprintf(f, "x,note,y,z\n");
  for (int i = 0; i < rows; i++) {
    double x = (rand() % 200000 - 100000) / 137.0;
    fprintf(f, "%.17g,", x);
    switch (rand() % 6) {
    case 0: fprintf(f, "plain"); break;
    case 1: fprintf(f, "\"1,2,3\n4,5,6\n7,8,9\""); break;
    case 2: fprintf(f, "\"\"\"\n\"\",\"\"\n\""); break;
    case 3: fprintf(f, "\"a\"\"b\""); break;
    case 4: fprintf(f, "\"\n\n\n\""); break;
    default: break;
    }
    if (rand() % 50 == 0)
      fprintf(f, ",NA,%d\n", rand() % 10);
    else
      fprintf(f, ",%de%d,\"%d\"\n", rand() % 1000, rand() % 7 - 3, rand() % 10);
  }
  fclose(f);
  return p;
}

static void test_pandas_generated(void) {
  const char *p = gen_tricky("tricky.csv", 3000, 7);
  check_vs_pandas(p, NULL, 1, "1");
  check_vs_pandas(p, NULL, 1, "37");
  check_vs_pandas(p, NULL, 0, "100");
}

/* 1..100 ranges: same answer (bit-identical here: n < k keeps quantiles
 * exact, and mean/std within 1e-12). */
static void test_tasks_1_to_100(void) {
  const char *p = gen_tricky("ranges.csv", 2000, 11);
  const char *h5 = path_of("ranges.h5");
  h5res_t ref, h;
  run_out_t *r = calloc(1, sizeof *r);
  run_stats(r, p, "--out", h5, "--tasks", "1", NULL);
  CU_ASSERT_EQUAL_FATAL(r->rc, 0);
  CU_ASSERT_EQUAL_FATAL(read_h5(h5, &ref), 0);
  CU_ASSERT_EQUAL(ref.rows, 2000);
  CU_ASSERT_EQUAL(ref.ncols, 3);
  for (int t = 2; t <= 100; t++) {
    char ts[16];
    snprintf(ts, sizeof ts, "%d", t);
    run_stats(r, p, "--out", h5, "--tasks", ts, NULL);
    CU_ASSERT_EQUAL_FATAL(r->rc, 0);
    CU_ASSERT_EQUAL(r->rep.tasks, (uint64_t)t);
    CU_ASSERT_EQUAL_FATAL(read_h5(h5, &h), 0);
    CU_ASSERT_EQUAL(h.rows, ref.rows);
    for (size_t j = 0; j < ref.ncols; j++)
      for (int k = 0; k < 8; k++) {
        int ok = close_enough(k, h.v[k][j], ref.v[k][j]);
        if (!ok)
          fprintf(stderr, "tasks %d col %zu %s: %.17g vs %.17g\n", t, j, stats_row_names[k],
                  h.v[k][j], ref.v[k][j]);
        CU_ASSERT(ok);
      }
  }
  /* byte chunks smaller than a record */
  run_stats(r, p, "--out", h5, "--chunk-size", "7", NULL);
  CU_ASSERT_EQUAL(r->rc, 0);
  CU_ASSERT_EQUAL_FATAL(read_h5(h5, &h), 0);
  CU_ASSERT_EQUAL(h.rows, ref.rows);
  CU_ASSERT(close_enough(1, h.v[1][0], ref.v[1][0]));
  free(r);
}

static void test_hdf5_readback(void) {
  const char *p = WRITE_STR("h5.csv", "a,b,t\n1,2,x\n3,4,y\n5,,z\n");
  const char *h5 = path_of("out.h5");
  run_out_t *r = calloc(1, sizeof *r);
  run_stats(r, p, "--out", h5, NULL);
  CU_ASSERT_EQUAL_FATAL(r->rc, 0);
  h5res_t h;
  CU_ASSERT_EQUAL_FATAL(read_h5(h5, &h), 0);
  CU_ASSERT_EQUAL(h.ncols, 2);
  CU_ASSERT_STRING_EQUAL(h.names[0], "a");
  CU_ASSERT_STRING_EQUAL(h.names[1], "b");
  CU_ASSERT_EQUAL(h.rows, 3);
  CU_ASSERT_STRING_EQUAL(h.source, p);
  double want_a[8] = {3, 3, 2, 1, 2, 3, 4, 5};
  for (int k = 0; k < 8; k++)
    CU_ASSERT_EQUAL(h.v[k][0], want_a[k]);
  CU_ASSERT_EQUAL(h.v[0][1], 2);
  CU_ASSERT_EQUAL(h.v[1][1], 3);
  CU_ASSERT_EQUAL(h.v[4][1], 2.5);
  /* no temporary left behind */
  char tmpn[600];
  snprintf(tmpn, sizeof tmpn, "%s.tmp.%d", h5, (int)getpid());
  CU_ASSERT_NOT_EQUAL(access(tmpn, F_OK), 0);
  /* created attribute exists */
  hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT(H5Aexists(f, "created") > 0);
  H5Fclose(f);
  /* --columns restricts and orders; text output has the describe() shape */
  run_stats(r, p, "--columns", "b,a", NULL);
  CU_ASSERT_EQUAL(r->rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "count"));
  CU_ASSERT(strstr(r->out, "b") < strstr(r->out, "  a"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "75%"));
  run_stats(r, p, "--format", "json", NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"a\":{\"count\":3,\"mean\":3,\"std\":2,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"skipped\":[\"t\"]"));
  /* names with quotes and newlines are escaped */
  const char *q = WRITE_STR("names.csv", "\"a\"\"\nx\",b\\c,t\n1,2,x\n");
  run_stats(r, q, "--format", "json", NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "{\"columns\":{\"a\\\"\\u000ax\":{"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, ",\"b\\\\c\":{"));
  run_stats(r, p, "--format", "csv", NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, ",a,b\ncount,3,2\nmean,3,3\n"));
  free(r);
}

static void expect_error(const char *name, const void *data, size_t len, const char *what,
                         const char *tasks) {
  const char *p = write_file(name, data, len);
  run_out_t *r = calloc(1, sizeof *r);
  run_stats(r, p, "--tasks", tasks, NULL);
  char want[600];
  snprintf(want, sizeof want, "%s:%s", p, what);
  int ok = r->rc == MPC_EFORMAT && strstr(r->err, want) != NULL;
  if (!ok)
    fprintf(stderr, "%s (tasks %s): rc %d, stderr '%s', wanted '%s'\n", name, tasks, r->rc,
            r->err, want);
  CU_ASSERT(ok);
  free(r);
}

static void test_malformed(void) {
  static const char ragged[] = "a,b\n1,2\n3,4\n5,6,7\n8,9\n";
  static const char short_row[] = "a,b\n1,2\n\"x\ny\",4\n5\n";
  static const char unterminated[] = "a,b\n1,2\n3,\"oops\n4,5\n6,7\n";
  static const char nul[] = "a,b\n1,2\n3,4\n5,\0006\n";
  static const char badutf[] = "a,b\n1,2\n3,4\n5,\xff\n";
  for (int t = 1; t <= 6; t++) {
    char ts[8];
    snprintf(ts, sizeof ts, "%d", t & 7);
    expect_error("ragged.csv", ragged, sizeof ragged - 1, "4: row has 3 fields, header has 2", ts);
    expect_error("short.csv", short_row, sizeof short_row - 1, "5: row has 1 field, header has 2", ts);
    expect_error("unterm.csv", unterminated, sizeof unterminated - 1, "3: unterminated quoted", ts);
    expect_error("nul.csv", nul, sizeof nul - 1, "4: NUL byte", ts);
    expect_error("badutf.csv", badutf, sizeof badutf - 1, "4: invalid UTF-8", ts);
  }
  /* Longer files: valid multi-byte UTF-8 at every offset (so some straddle
   * the parser's 64-byte blocks) is accepted; a NUL or a bad byte inside a
   * quoted field that spans lines is reported at its own line, at any range
   * count, also in a column left out by --columns. */
  {
    size_t cap = 1 << 20, len = 0;
    char *big = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    len += (size_t)snprintf(big + len, cap - len, "a,b,c\n");
    for (int i = 0; i < 3000; i++)
      len += (size_t)snprintf(big + len, cap - len, "%d,\"%.*s\xc3\xa9\xe2\x82\xac\n\xf0\x9f\x98\x80\",%d.5\n",
                              i, i % 61, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
    run_out_t *r = calloc(1, sizeof *r);
    const char *bp = write_file("utf8.csv", big, len);
    for (int t = 1; t <= 13; t += 6) {
      char ts[16];
      snprintf(ts, sizeof ts, "%d", t);
      run_stats(r, bp, "--tasks", ts, "--format", "json", NULL);
      CU_ASSERT_EQUAL(r->rc, 0);
      CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"rows\":3000"));
    }
    /* record 2001 starts on line 4002; its field b's second line is 4003 */
    char *q = strstr(big, "\n2000,\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    char *nl2 = strchr(q + 1, '\n');
    nl2[1] = '\0';
    for (int t = 1; t <= 13; t += 6) {
      char ts[16];
      snprintf(ts, sizeof ts, "%d", t);
      expect_error("nulq.csv", big, len, "4003: NUL byte", ts);
    }
    nl2[1] = (char)0xC3;
    nl2[2] = 'x'; /* a lead byte without its continuation */
    const char *ep = write_file("badq.csv", big, len);
    run_stats(r, ep, "--tasks", "5", "--columns", "a", NULL);
    CU_ASSERT_EQUAL(r->rc, MPC_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "4003: invalid UTF-8"));
    free(r);
    free(big);
  }
  /* header problems are set-up errors */
  run_out_t *r = calloc(1, sizeof *r);
  const char *p = WRITE_STR("empty.csv", "");
  run_stats(r, p, NULL);
  CU_ASSERT_EQUAL(r->rc, MPC_EFORMAT);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "no header"));
  p = WRITE_STR("ok.csv", "a,b\n1,2\n");
  run_stats(r, p, "--columns", "a,zz", NULL);
  CU_ASSERT_EQUAL(r->rc, MPC_EUSAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "zz"));
  run_stats(r, "/nonexistent/x.csv", NULL);
  CU_ASSERT_EQUAL(r->rc, -ENOENT);
  run_stats(r, p, "--bogus", NULL);
  CU_ASSERT_EQUAL(r->rc, MPC_EUSAGE);
  free(r);
}

/* A table of 40k values (> k would compact at small k; here n < nmax bound):
 * the sketch bound reported in json stays <= 0.5%. */
static void test_sketch_in_job(void) {
  const char *p = path_of("many.csv");
  FILE *f = fopen(p, "w");
  fprintf(f, "v\n");
  for (int i = 0; i < 200000; i++)
    fprintf(f, "%d\n", (i * 7919) % 200000);
  fclose(f);
  run_out_t *r = calloc(1, sizeof *r);
  run_stats(r, p, "--format", "json", "--tasks", "9", NULL);
  CU_ASSERT_EQUAL_FATAL(r->rc, 0);
  const char *b = strstr(r->out, "\"rank_error_bound\":{\"v\":");
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  double bound = strtod(b + strlen("\"rank_error_bound\":{\"v\":"), NULL);
  CU_ASSERT(bound > 0 && bound <= 0.005);
  const char *m = strstr(r->out, "\"50%\":");
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  double med = strtod(m + 6, NULL);
  CU_ASSERT(fabs(med - 99999.5) <= 0.005 * 200000 + 1);
  run_stats(r, p, "--format", "json", "--tasks", "9", "--exact", NULL);
  CU_ASSERT_EQUAL_FATAL(r->rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"25%\":49999.75,\"50%\":99999.5,\"75%\":149999.25"));
  free(r);
}

static void test_cleanup(void) {
  if (g_dir[0]) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
  }
}

MPC_TESTS(stats) = {
    {"pandas-equal: BOM, CRLF, quotes, blanks, missing, no final newline", test_pandas_mixed},
    {"pandas-equal: small cases, delimiter, extremes, all-missing", test_pandas_small_cases},
    {"pandas-equal: generated file with quoted newlines, 1/37/100 ranges", test_pandas_generated},
    {"same result for 1..100 ranges and tiny chunks", test_tasks_1_to_100},
    {"HDF5 output read back; table, json and csv formats", test_hdf5_readback},
    {"malformed input: line-numbered errors at any range count", test_malformed},
    {"sketch bound reported and respected; --exact", test_sketch_in_job},
    {"cleanup", test_cleanup},
    CU_TEST_INFO_NULL,
};
