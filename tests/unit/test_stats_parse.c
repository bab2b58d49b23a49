/* stats job: number parsing (against strtod), missing tokens, CSV scanning. */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../jobs/stats/stats.h"

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Accepted strings must give strtod's exact bits. */
static int check_one(const char *s) {
  double v = 0;
  int ok = stats_parse_number(s, s + strlen(s), &v);
  char *end;
  double r = strtod(s, &end);
  if (!ok)
    return 0;
  if (!same_bits(v, r)) {
    fprintf(stderr, "parse mismatch for '%s': %.17g vs strtod %.17g\n", s, v, r);
    return -1;
  }
  return 1;
}

static void test_number_edges(void) {
  static const char *ok[] = {
      "0", "-0", "+0", "0.0", "1", "-1", "+1", ".5", "5.", "-.5", "1e5", "1E5", "1e+05",
      "1e-05", "0.1", "0.2", "0.3", "1.7976931348623157e308", "1e308", "1e309",
      "-1e309", "4.9e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
      "2.2250738585072011e-308", "2.2250738585072014e-308", "9007199254740992",
      "9007199254740993", "9007199254740995", "18446744073709551615",
      "123456789012345678901234567890", "0.000390126045075712", "3.14159265358979323846",
      "1e22", "1e23", "8.5e22", "123456789e22", "1e-22", "1e-23", "00000001.5000000000",
      "0.00000000000000000000000000000001", "7.2057594037927933e16", "1e-400", "1e400",
      " 12 ", "\t-3.5", "inf", "-inf", "+inf", "Infinity", "-INFINITY", "iNf",
      "1.00000000000000011102230246251565404236316680908203125",
      "1.00000000000000011102230246251565404236316680908203124",
      "1.00000000000000011102230246251565404236316680908203126"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    CU_ASSERT_EQUAL_FATAL(check_one(ok[i]), 1);
  static const char *bad[] = {"", " ", "e5", ".", "-", "+", "1e", "1e+", "1.2.3", "0x10",
                              "nan", "NaN", "1,5", "12a", "a12", "--1", "1 2", "in",
                              "infinit", "1e5.5", "+-1", "1_000", "١"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    double v;
    int r = stats_parse_number(bad[i], bad[i] + strlen(bad[i]), &v);
    if (r)
      fprintf(stderr, "accepted '%s'\n", bad[i]);
    CU_ASSERT_EQUAL(r, 0);
  }
  /* not NUL-terminated: the parser must stop at e */
  const char *s = "12345";
  double v;
  CU_ASSERT_EQUAL(stats_parse_number(s, s + 2, &v), 1);
  CU_ASSERT_EQUAL(v, 12.0);
}

static void test_number_random(void) {
  srand(12345);
  char b[96];
  int n_ok = 0;
  for (int it = 0; it < 300000; it++) {
    size_t k = 0;
    if (rand() % 3 == 0)
      b[k++] = rand() % 2 ? '-' : '+';
    int nd = 1 + rand() % (rand() % 4 == 0 ? 40 : 20);
    int dot = rand() % 3 ? rand() % (nd + 1) : -1;
    for (int d = 0; d < nd; d++) {
      if (d == dot)
        b[k++] = '.';
      b[k++] = (char)('0' + (rand() % 5 == 0 ? 0 : rand() % 10));
    }
    if (rand() % 2) {
      int e = rand() % 4 == 0 ? rand() % 700 - 350 : rand() % 50 - 25;
      k += (size_t)snprintf(b + k, sizeof b - k, "e%d", e);
    }
    b[k] = 0;
    int r = check_one(b);
    CU_ASSERT_FATAL(r >= 0);
    n_ok += r;
  }
  CU_ASSERT(n_ok == 300000);
  /* round trips of random doubles printed at 15..17 digits */
  for (int it = 0; it < 200000; it++) {
    uint64_t u = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
    double d;
    memcpy(&d, &u, sizeof d);
    if (!isfinite(d))
      continue;
    snprintf(b, sizeof b, "%.*g", 15 + it % 3, d);
    CU_ASSERT_EQUAL_FATAL(check_one(b), 1);
    snprintf(b, sizeof b, "%.6f", (double)(rand() % 2000000) / 7.0);
    CU_ASSERT_EQUAL_FATAL(check_one(b), 1);
  }
}

/* The CSV record parser has its own fast paths (SSE and SWAR); every value
 * it produces must equal strtod's bits too.  Two numeric columns, so fields
 * end in both ',' and '\n' (and '\r\n'), at every offset in the blocks. */
static void test_csv_numbers_exact(void) {
  srand(777);
  size_t cap = 16 << 20, len = 0, n = 0;
  char *csv = malloc(cap), (*strs)[64] = malloc(200000 * sizeof *strs);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv && strs);
  len += (size_t)snprintf(csv, cap, "v,w\n");
  static const char *fixed[] = {"0", "-0", "+0", "5", "-5", ".5", "5.", "-.5", "+.5", "00012",
                                "0.000", "1e5", "1E+05", "-1e-5", "9007199254740993",
                                "1234567890123456", "12345678901234567", "0.1234567890123456",
                                "123456789012.3456", "1.5e22", "1e23", "4e-22", "1e-23",
                                "99999999999999999999", "1.0336e+00", "-180.79"};
  while (n < 200000) {
    char *b = strs[n];
    if (n < sizeof fixed / sizeof *fixed) {
      snprintf(b, 64, "%s", fixed[n]);
    } else {
      size_t k = 0;
      if (rand() % 3 == 0)
        b[k++] = rand() % 2 ? '-' : '+';
      int nd = 1 + rand() % (rand() % 4 == 0 ? 24 : 12);
      int dot = rand() % 3 ? rand() % (nd + 1) : -1;
      for (int d = 0; d < nd; d++) {
        if (d == dot)
          b[k++] = '.';
        b[k++] = (char)('0' + rand() % 10);
      }
      if (rand() % 4 == 0)
        k += (size_t)snprintf(b + k, 64 - k, "%s%d", rand() % 2 ? "e" : "E",
                              rand() % 3 == 0 ? rand() % 700 - 350 : rand() % 50 - 25);
      b[k] = 0;
    }
    len += (size_t)snprintf(csv + len, cap - len, "%s,%d%s", b, (int)(n % 1000),
                            n % 7 == 0 ? "\r\n" : "\n");
    n++;
  }
  stats_cfg_t c = {',', 2, (const unsigned char *)"\1\1", 1u << 30, 1, 0};
  stats_part_t part;
  CU_ASSERT_EQUAL_FATAL(stats_part_init(&part, &c), 0);
  uint64_t end;
  CU_ASSERT_EQUAL_FATAL(stats_parse(&c, (const unsigned char *)csv, 4, len, len, &part, &end), 0);
  CU_ASSERT_EQUAL(end, len);
  CU_ASSERT_FALSE(part.has_err);
  CU_ASSERT_EQUAL(part.records, n);
  CU_ASSERT_FALSE(part.cols[0].nonnum);
  CU_ASSERT_EQUAL_FATAL(part.cols[0].nexact, n);
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    double r = strtod(strs[i], NULL);
    if (!same_bits(part.cols[0].exact[i], r) && bad++ < 5)
      fprintf(stderr, "csv parse mismatch for '%s': %.17g vs strtod %.17g\n", strs[i],
              part.cols[0].exact[i], r);
  }
  CU_ASSERT_EQUAL(bad, 0);
  stats_part_free(&part, &c);
  free(csv);
  free(strs);
}

/* The block path converts a column of a block in one loop specialised to
 * the shape of its first field (integer, or n digits after the point).
 * (or with an exponent part).
 * Columns here keep a shape for a few hundred rows and change it, with
 * deviants mixed in (other shapes, signs, missing values, > 16 bytes, values
 * near 2^53, spaces), and some records go to the record loop (quotes, CRLF).
 * Every value must equal strtod's bits, in order, with every code variant. */
static void gen_shaped(char *b, int col, size_t row, int shape) {
  int dev = rand() % 10 == 0;
  size_t k = 0;
  if (dev) {
    switch (rand() % 15) {
    case 0: strcpy(b, ""); return;
    case 1: strcpy(b, "NA"); return;
    case 2: snprintf(b, 64, "%+d", rand() % 1000); return;
    case 3: snprintf(b, 64, "%d.", rand() % 1000); return;
    case 4: snprintf(b, 64, "-.%d", rand() % 1000); return;
    case 5: snprintf(b, 64, "%.4e", (rand() - RAND_MAX / 2) * 1e-3); return;
    case 6: snprintf(b, 64, " %d", rand() % 1000); return;
    case 7: snprintf(b, 64, "%llu", 9007199254740990ULL + (unsigned)(rand() % 8)); return;
    case 8: snprintf(b, 64, "-%llu", 9999999999999990ULL + (unsigned)(rand() % 20)); return;
    case 9: snprintf(b, 64, "%.*f", 1 + rand() % 15, (double)rand() / 3.0); return;
    case 10: snprintf(b, 64, "0.%015d%d", rand() % 1000, rand() % 10); return;
    case 11: strcpy(b, rand() % 2 ? "-0" : "-0.000"); return;
    case 12: strcpy(b, rand() % 2 ? "." : "-"); return; /* text: replaced below */
    case 13: /* an 'e' where a point would go */
      snprintf(b, 64, "%de%d", rand() % 100, rand() % 20);
      return;
    default: snprintf(b, 64, "%d", rand()); return;
    }
  }
  (void)col;
  (void)row;
  if (shape >= 100) { /* exponent shapes: 100 + 8 * digits after the point + variant */
    int n = (shape - 100) / 8, var = (shape - 100) % 8;
    double v = (rand() - RAND_MAX / 2) * pow(10.0, rand() % 40 - 20) / RAND_MAX;
    if (var == 0)
      snprintf(b, 64, "%.*e", n, v);
    else if (var == 1)
      snprintf(b, 64, "%.*E", n, v);
    else if (var == 2) /* no exponent sign, one or two digits */
      snprintf(b, 64, "%.*fe%d", n, v, rand() % 30);
    else /* three exponent digits, sometimes far out of range */
      snprintf(b, 64, "%.*fe%c%03d", n, v, rand() % 2 ? '-' : '+',
               rand() % 4 ? rand() % 25 : rand() % 400);
    return;
  }
  if (rand() % 3 == 0)
    b[k++] = '-';
  int nint = rand() % (shape < 0 ? 17 : 17 - shape);
  for (int i = 0; i < nint; i++)
    b[k++] = (char)('0' + (i == 0 && nint > 1 && rand() % 4 ? 1 + rand() % 9 : rand() % 10));
  if (shape < 0 && nint == 0)
    b[k++] = (char)('0' + rand() % 10);
  if (shape >= 1) {
    b[k++] = '.';
    for (int i = 0; i < shape; i++)
      b[k++] = (char)('0' + rand() % 10);
  }
  b[k] = 0;
}

/* New shapes for gen_shaped(), column by column. */
static void pick_shapes(int *shape, int ncol) {
  for (int j = 0; j < ncol; j++)
    shape[j] = rand() % 4 == 0   ? -1
               : rand() % 3 == 0 ? 100 + 8 * (rand() % 9) + rand() % 4
                                 : 1 + rand() % 15;
}

/* A generated field b: "." or "-" become "7" (every column stays numeric),
 * and its strtod value goes in want[] unless it is missing. */
static void note_field(char *b, double *want, size_t *nwant) {
  if (strcmp(b, ".") == 0 || strcmp(b, "-") == 0)
    strcpy(b, "7");
  if (b[0] && strcmp(b, "NA") != 0)
    want[(*nwant)++] = strtod(b, NULL);
}

/* Every one of the ncol numeric columns of `part` holds strtod's exact bits
 * for want[j]. */
static void check_cols_exact(const stats_part_t *part, int ncol, double *const *want,
                             const size_t *nwant, const char *what) {
  for (int j = 0; j < ncol; j++) {
    CU_ASSERT_FALSE(part->cols[j].nonnum);
    CU_ASSERT_EQUAL_FATAL(part->cols[j].nexact, nwant[j]);
    size_t bad = 0;
    for (size_t i = 0; i < nwant[j]; i++)
      if (!same_bits(part->cols[j].exact[i], want[j][i]) && bad++ < 5)
        fprintf(stderr, "%s col %d value %zu: %.17g vs strtod %.17g\n", what, j, i,
                part->cols[j].exact[i], want[j][i]);
    CU_ASSERT_EQUAL(bad, 0);
  }
}

static void test_csv_shaped_exact(void) {
  enum { NCOL = 4, NROW = 60000 };
  size_t cap = 8u << 20, len = 0;
  char *csv = malloc(cap);
  double *want[NCOL];
  size_t nwant[NCOL] = {0};
  for (int j = 0; j < NCOL; j++)
    want[j] = malloc(NROW * sizeof(double));
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  srand(4242);
  len += (size_t)snprintf(csv, cap, "a,b,c,d\n");
  int shape[NCOL] = {-1, 3, 6, 1};
  for (size_t r = 0; r < NROW; r++) {
    if (r % 300 == 0)
      pick_shapes(shape, NCOL);
    int quoted = rand() % 50 == 0;
    for (int j = 0; j < NCOL; j++) {
      char b[64];
      gen_shaped(b, j, r, shape[j]);
      note_field(b, want[j], &nwant[j]);
      len += (size_t)snprintf(csv + len, cap - len, quoted && j == 1 ? "\"%s\"%s" : "%s%s", b,
                              j + 1 < NCOL ? "," : r % 97 == 5 ? "\r\n" : "\n");
    }
  }
  unsigned char want_cols[NCOL] = {1, 1, 1, 1};
  stats_cfg_t c = {',', NCOL, want_cols, 1u << 30, 1, 0};
  int prev = stats_parse_isa(-1);
  for (int isa = prev; isa >= 0; isa--) {
    CU_ASSERT_EQUAL_FATAL(stats_parse_isa(isa), isa);
    /* whole file, and in ranges that cut blocks short */
    for (int split = 0; split < 2; split++) {
      stats_part_t part;
      CU_ASSERT_EQUAL_FATAL(stats_part_init(&part, &c), 0);
      uint64_t pos = 8, end = 0;
      while (pos < len) {
        uint64_t stop = split ? stats_cut((const unsigned char *)csv, pos + 100000, len) : len;
        CU_ASSERT_EQUAL_FATAL(
            stats_parse(&c, (const unsigned char *)csv, pos, stop, len, &part, &end), 0);
        CU_ASSERT_FATAL(end >= stop);
        pos = end;
      }
      CU_ASSERT_FALSE(part.has_err);
      CU_ASSERT_EQUAL(part.records, NROW);
      char what[32];
      snprintf(what, sizeof what, "isa %d", isa);
      check_cols_exact(&part, NCOL, want, nwant, what);
      stats_part_free(&part, &c);
    }
  }
  stats_parse_isa(prev);
  for (int j = 0; j < NCOL; j++)
    free(want[j]);
  free(csv);
}

/* A column that turns out to be text in the middle of a block. */
static void test_csv_block_text(void) {
  char csv[20000];
  size_t len = (size_t)snprintf(csv, sizeof csv, "x,y\n");
  for (int r = 0; r < 1000; r++)
    len += (size_t)snprintf(csv + len, sizeof csv - len, "%d,%s\n", r,
                            r == 700 ? "abc" : r % 2 ? "1.5" : "");
  unsigned char w[2] = {1, 1};
  stats_cfg_t c = {',', 2, w, 1u << 30, 0, 0};
  stats_part_t part;
  CU_ASSERT_EQUAL_FATAL(stats_part_init(&part, &c), 0);
  uint64_t end;
  CU_ASSERT_EQUAL_FATAL(stats_parse(&c, (const unsigned char *)csv, 4, len, len, &part, &end), 0);
  CU_ASSERT_EQUAL(part.records, 1000);
  CU_ASSERT_FALSE(part.cols[0].nonnum);
  CU_ASSERT_TRUE(part.cols[1].nonnum);
  CU_ASSERT_EQUAL(stats_moments_count(&part.cols[0].mom), 1000);
  CU_ASSERT_DOUBLE_EQUAL(stats_moments_mean(&part.cols[0].mom), 499.5, 1e-12);
  stats_part_free(&part, &c);
}

/* Many columns and long runs of blank lines: the block path's terminator
 * array holds every LF it sees before a record is complete. */
static void block_blank_lines(size_t NC) {
  size_t cap = 1 << 20, len = 0;
  char *csv = malloc(cap);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  for (size_t j = 0; j < NC; j++)
    len += (size_t)snprintf(csv + len, cap - len, "c%zu%s", j, j + 1 < NC ? "," : "\n");
  size_t data = len;
  for (int part = 0; part < 3; part++) {
    for (int r = 0; r < 3; r++)
      for (size_t j = 0; j < NC; j++)
        len += (size_t)snprintf(csv + len, cap - len, "%zu%s", j + (size_t)r,
                                j + 1 < NC ? "," : "\n");
    for (int r = 0; r < 2000; r++)
      csv[len++] = '\n';
  }
  unsigned char *w = malloc(NC);
  memset(w, 1, NC);
  stats_cfg_t c = {',', NC, w, 1u << 30, 0, 0};
  int prev = stats_parse_isa(-1);
  for (int isa = prev; isa >= 0; isa--) {
    stats_parse_isa(isa);
    stats_part_t part;
    CU_ASSERT_EQUAL_FATAL(stats_part_init(&part, &c), 0);
    uint64_t end;
    CU_ASSERT_EQUAL_FATAL(
        stats_parse(&c, (const unsigned char *)csv, data, len, len, &part, &end), 0);
    CU_ASSERT_FALSE(part.has_err);
    CU_ASSERT_EQUAL(part.records, 9);
    CU_ASSERT_EQUAL(stats_moments_count(&part.cols[NC - 1].mom), 9);
    CU_ASSERT_DOUBLE_EQUAL(stats_moments_mean(&part.cols[NC - 1].mom), (double)NC, 1e-12);
    stats_part_free(&part, &c);
  }
  stats_parse_isa(prev);
  free(w);
  free(csv);
}

static void test_csv_block_blank_lines(void) {
  block_blank_lines(1000);
  block_blank_lines(9000); /* fewer records per block for wide files */
}

static void test_missing(void) {
  static const char *miss[] = {"", "NA", "NaN", "nan", "-NaN", "-nan", "null", "NULL",
                               "None", "N/A", "n/a", "#N/A", "#N/A N/A", "#NA", "<NA>",
                               "1.#IND", "1.#QNAN", "-1.#IND", "-1.#QNAN"};
  for (size_t i = 0; i < sizeof miss / sizeof *miss; i++)
    CU_ASSERT_EQUAL(stats_is_missing(miss[i], strlen(miss[i])), 1);
  static const char *not[] = {" ", "na", "NAN", " NA", "none", "0", "N/A ", "nil"};
  for (size_t i = 0; i < sizeof not / sizeof *not; i++)
    CU_ASSERT_EQUAL(stats_is_missing(not[i], strlen(not[i])), 0);
}

#define B(s) ((const unsigned char *)(s))

static void test_skip_and_cut(void) {
  const char *t = "a,\"x\ny\",c\n\"q\"\"\n\",2\r\nlast";
  uint64_t n = strlen(t);
  /* record 1 ends after "c\n" (offset 10), record 2 after "\r\n" */
  CU_ASSERT_EQUAL(stats_skip_record(B(t), 0, n, ',', 0), 10);
  CU_ASSERT_EQUAL(stats_skip_record(B(t), 10, n, ',', 0), 20);
  CU_ASSERT_EQUAL(stats_skip_record(B(t), 20, n, ',', 0), n);
  /* from inside the first quoted field: "y\"" closes, then ",c\n" ends it */
  CU_ASSERT_EQUAL(stats_skip_record(B(t), 5, n, ',', 1), 10);
  /* a quote in the middle of an unquoted field is literal */
  const char *u = "ab\"c,d\nx,y\n";
  CU_ASSERT_EQUAL(stats_skip_record(B(u), 0, strlen(u), ',', 0), 7);
  /* lone CR ends a record */
  const char *w = "a,b\rc,d\n";
  CU_ASSERT_EQUAL(stats_skip_record(B(w), 0, strlen(w), ',', 0), 4);
  CU_ASSERT_EQUAL(stats_cut(B(t), 0, n), 0);
  CU_ASSERT_EQUAL(stats_cut(B(t), 3, n), 5);   /* just after the '\n' in "x\ny" */
  CU_ASSERT_EQUAL(stats_cut(B(t), 10, n), 10);
  CU_ASSERT_EQUAL(stats_cut(B(t), 21, n), n);
}

static void test_prescan(void) {
  const char *t = "a,b\n1,2\n3,4\n";
  uint64_t bad;
  const char *why;
  CU_ASSERT_EQUAL(stats_prescan(B(t), 0, strlen(t), &bad, &why), 3);
  CU_ASSERT_EQUAL(bad, UINT64_MAX);
  const char g[] = "a,b\n1,2\n3,\0004\n5,6\n";
  CU_ASSERT_EQUAL(stats_prescan(B(g), 0, sizeof g - 1, &bad, &why), 4);
  CU_ASSERT_EQUAL(bad, 10);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, "NUL"));
  const char *v = "caf\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x80\nx\n";
  CU_ASSERT_EQUAL(stats_prescan(B(v), 0, strlen(v), &bad, &why), 2);
  CU_ASSERT_EQUAL(bad, UINT64_MAX);
  static const char *inval[] = {"ab\xff\n", "\xc3(\n", "\xed\xa0\x80\n", "\xc0\xaf\n",
                                "\xf4\x90\x80\x80\n", "\xe2\x82\n"};
  for (size_t i = 0; i < sizeof inval / sizeof *inval; i++) {
    stats_prescan(B(inval[i]), 0, strlen(inval[i]), &bad, &why);
    CU_ASSERT_NOT_EQUAL(bad, UINT64_MAX);
  }
  /* long ASCII runs go through the 8-byte path: newline count stays exact */
  char big[1000];
  for (int i = 0; i < 999; i++)
    big[i] = i % 7 == 6 ? '\n' : 'x';
  big[999] = 0;
  CU_ASSERT_EQUAL(stats_prescan(B(big), 0, 999, &bad, &why), stats_count_nl(B(big), 0, 999));
  CU_ASSERT_EQUAL(stats_count_nl(B(big), 0, 999), 142);
}

/* The batch size only decides how values reach the sketch: counts, moments
 * and the exact values are the same with any batch size. */
static void test_batch_size(void) {
  CU_ASSERT_EQUAL(stats_batch_for(1), 1u << 18);
  CU_ASSERT_EQUAL(stats_batch_for(10), 1u << 18);
  CU_ASSERT_EQUAL(stats_batch_for(64), 1u << 16);
  CU_ASSERT_EQUAL(stats_batch_for(100000), 1u << 14);
  size_t cap = 4 << 20, len = 0;
  char *csv = malloc(cap);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  len += (size_t)snprintf(csv, cap, "x,y\n");
  srand(3);
  for (int r = 0; r < 100000; r++)
    len += (size_t)snprintf(csv + len, cap - len, "%d,%d.%03d\n", rand() % 1000000 - 500000,
                            rand() % 100, rand() % 1000);
  unsigned char w[2] = {1, 1};
  stats_part_t part[2];
  for (int i = 0; i < 2; i++) {
    stats_cfg_t c = {',', 2, w, 8192, 1, i ? 1u << 18 : 1u << 14};
    uint64_t end;
    CU_ASSERT_EQUAL_FATAL(stats_part_init(&part[i], &c), 0);
    CU_ASSERT_EQUAL_FATAL(
        stats_parse(&c, (const unsigned char *)csv, 4, len, len, &part[i], &end), 0);
    CU_ASSERT_EQUAL_FATAL(stats_part_flush(&part[i], &c), 0);
  }
  for (int j = 0; j < 2; j++) {
    stats_col_t *a = &part[0].cols[j], *b = &part[1].cols[j];
    CU_ASSERT_EQUAL(stats_moments_count(&a->mom), 100000);
    CU_ASSERT_EQUAL(stats_moments_count(&b->mom), 100000);
    double ma = stats_moments_mean(&a->mom), mb = stats_moments_mean(&b->mom);
    CU_ASSERT_DOUBLE_EQUAL(ma, mb, 1e-12 * fabs(ma));
    double sa = stats_moments_std(&a->mom), sb = stats_moments_std(&b->mom);
    CU_ASSERT_DOUBLE_EQUAL(sa, sb, 1e-12 * sa);
    CU_ASSERT_EQUAL(a->sk.n, 100000);
    CU_ASSERT_EQUAL(b->sk.n, 100000);
    CU_ASSERT_EQUAL_FATAL(a->nexact, b->nexact);
    CU_ASSERT_EQUAL(memcmp(a->exact, b->exact, a->nexact * sizeof(double)), 0);
  }
  stats_cfg_t c = {',', 2, w, 8192, 1, 0};
  stats_part_free(&part[0], &c);
  stats_part_free(&part[1], &c);
  free(csv);
}

/* CRLF line ends go through the block path too (the last field's end moves
 * off the CR): the values are those of the same data with LF ends, for a
 * numeric or a text last column, all-CRLF or mixed. */
static void crlf_case(int text_last, int mixed) {
  const size_t rows = 3000, cap = rows * 64 + 64;
  char *lf = malloc(cap), *cr = malloc(cap);
  CU_ASSERT_PTR_NOT_NULL_FATAL(lf);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cr);
  size_t nl = (size_t)snprintf(lf, cap, "a,b,c,d\n"), nc = (size_t)snprintf(cr, cap, "a,b,c,d\r\n");
  size_t hl = nl, hc = nc;
  srand(11);
  for (size_t r = 0; r < rows; r++) {
    char rec[64];
    int n = snprintf(rec, sizeof rec, "%d,%d.%02d,%de%d,", rand() % 100000 - 50000, rand() % 1000,
                     rand() % 100, rand() % 900 + 100, rand() % 9 - 4);
    if (text_last)
      n += snprintf(rec + n, sizeof rec - (size_t)n, "t%d", rand() % 50);
    else if (r % 17 == 3)
      n += 0; /* a missing value */
    else
      n += snprintf(rec + n, sizeof rec - (size_t)n, "%d.%d", rand() % 100, rand() % 10);
    memcpy(lf + nl, rec, (size_t)n);
    nl += (size_t)n;
    lf[nl++] = '\n';
    memcpy(cr + nc, rec, (size_t)n);
    nc += (size_t)n;
    if (!mixed || r % 3)
      cr[nc++] = '\r';
    cr[nc++] = '\n';
  }
  unsigned char w[4] = {1, 1, 1, 1};
  stats_cfg_t c = {',', 4, w, 1u << 30, 1, 0};
  stats_part_t a, b;
  uint64_t end;
  CU_ASSERT_EQUAL_FATAL(stats_part_init(&a, &c), 0);
  CU_ASSERT_EQUAL_FATAL(stats_part_init(&b, &c), 0);
  CU_ASSERT_EQUAL_FATAL(stats_parse(&c, (const unsigned char *)lf, hl, nl, nl, &a, &end), 0);
  CU_ASSERT_EQUAL_FATAL(stats_parse(&c, (const unsigned char *)cr, hc, nc, nc, &b, &end), 0);
  CU_ASSERT_EQUAL_FATAL(stats_part_flush(&a, &c), 0);
  CU_ASSERT_EQUAL_FATAL(stats_part_flush(&b, &c), 0);
  CU_ASSERT_EQUAL(a.records, rows);
  CU_ASSERT_EQUAL(b.records, rows);
  CU_ASSERT(b.block_records > rows / 2); /* CRLF did not leave the block path */
  CU_ASSERT_FALSE(a.has_err);
  CU_ASSERT_FALSE(b.has_err);
  for (int j = 0; j < 4; j++) {
    stats_col_t *x = &a.cols[j], *y = &b.cols[j];
    CU_ASSERT_EQUAL(x->nonnum, y->nonnum);
    CU_ASSERT_EQUAL(x->nonnum, j == 3 && text_last);
    if (x->nonnum)
      continue;
    CU_ASSERT_EQUAL(stats_moments_count(&x->mom), stats_moments_count(&y->mom));
    CU_ASSERT_EQUAL_FATAL(x->nexact, y->nexact);
    CU_ASSERT_EQUAL(memcmp(x->exact, y->exact, x->nexact * sizeof(double)), 0);
  }
  CU_ASSERT_EQUAL(a.cols[3].nexact, text_last ? 0 : rows - (rows + 13) / 17);
  stats_part_free(&a, &c);
  stats_part_free(&b, &c);
  free(lf);
  free(cr);
}

static void test_crlf_block(void) {
  crlf_case(0, 0);
  crlf_case(1, 0);
  crlf_case(0, 1);
}

/* The AVX2 column loops find a field's start from its 16-byte window (the
 * byte after the last delimiter or LF in it), so the delimiter matters to
 * them: any byte, even one that can be part of a number, with the data
 * after a header that ends in a lone CR, and fields of 7 to 9 and 15 to 17
 * bytes.  Every value must equal strtod's bits with every code variant. */
static void delim_case(char dl) {
  enum { NCOL = 3, NROW = 6000 };
  size_t cap = 1u << 20, len = 0;
  char *csv = malloc(cap);
  double *want[NCOL];
  size_t nwant[NCOL] = {0};
  for (int j = 0; j < NCOL; j++)
    want[j] = malloc(NROW * sizeof(double));
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  len += (size_t)snprintf(csv, cap, "a%cb%c123\r", dl, dl); /* a lone CR ends the header */
  size_t data = len;
  int shape[NCOL] = {-1, 2, 104};
  static const char *longs[] = {"123456789012345", "-12345678901234", "1234567890123456",
                                "-123456789012345", "12345678901234567", "0.1234567890123",
                                "-0.123456789012", "0.12345678901234", "1.234567890e-05",
                                "12345678",        "-1234567",        "0.123456",
                                "-0.12345",        "123456789",       "-12345678",
                                "0.1234567",       "-0.123456",       "1234.5678"};
  const int nlongs = (int)(sizeof longs / sizeof *longs);
  for (size_t r = 0; r < NROW; r++) {
    if (r % 200 == 0)
      pick_shapes(shape, NCOL);
    for (int j = 0; j < NCOL; j++) {
      char b[64];
      if (rand() % 20 == 0)
        snprintf(b, sizeof b, "%s", longs[rand() % nlongs]);
      else
        gen_shaped(b, j, r, shape[j]);
      if (dl >= '0' && dl <= '9') {
        for (char *q = b; *q; q++)
          *q = *q == dl ? (char)(dl == '9' ? '0' : dl + 1) : *q;
      } else if (strchr(b, dl) != NULL) {
        strcpy(b, "7");
      }
      note_field(b, want[j], &nwant[j]);
      len += (size_t)snprintf(csv + len, cap - len, "%s%c", b, j + 1 < NCOL ? dl : '\n');
    }
  }
  unsigned char want_cols[NCOL] = {1, 1, 1};
  stats_cfg_t c = {dl, NCOL, want_cols, 1u << 30, 1, 0};
  int prev = stats_parse_isa(-1);
  for (int isa = prev; isa >= 0; isa--) {
    stats_parse_isa(isa);
    stats_part_t part;
    CU_ASSERT_EQUAL_FATAL(stats_part_init(&part, &c), 0);
    uint64_t end;
    CU_ASSERT_EQUAL_FATAL(
        stats_parse(&c, (const unsigned char *)csv, data, len, len, &part, &end), 0);
    CU_ASSERT_FALSE(part.has_err);
    CU_ASSERT_EQUAL(part.records, NROW);
    if (isa > 0 && dl != '.' && dl != '-' && dl != 'e' && (dl < '0' || dl > '9'))
      CU_ASSERT(part.block_records > NROW / 2);
    char what[32];
    snprintf(what, sizeof what, "delim '%c' isa %d", dl, isa);
    check_cols_exact(&part, NCOL, want, nwant, what);
    stats_part_free(&part, &c);
  }
  stats_parse_isa(prev);
  for (int j = 0; j < NCOL; j++)
    free(want[j]);
  free(csv);
}

static void test_block_delimiters(void) {
  srand(99);
  static const char dls[] = {',', ';', '\t', ' ', '|', 'x', '5', '0', '.', '-', 'e'};
  for (size_t i = 0; i < sizeof dls; i++)
    delim_case(dls[i]);
}

/* The block path checks that each LF ends the record after exactly ncols
 * terminators; a row with more or fewer fields anywhere in a block (any
 * offset in a 64-byte step, first or last of a block) stops it, and the
 * record loop reports that row with every code variant. */
static void test_block_ragged(void) {
  const size_t rows = 3000, cap = rows * 40 + 20000;
  char *csv = malloc(cap);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  srand(5);
  int prev = stats_parse_isa(-1);
  for (int trial = 0; trial < 50; trial++) {
    size_t badrow = trial < 4 ? (size_t)(255 + trial) : 1 + (size_t)rand() % (rows - 2);
    int kind = trial % 5; /* one field more, one fewer, two more, a lone field, 4000 */
    size_t len = (size_t)snprintf(csv, cap, "a,b,c\n"), bad_off = 0;
    for (size_t r = 0; r < rows; r++) {
      if (r == badrow) {
        bad_off = len;
        static const char *const badrec[] = {"1,2,3,4\n", "1,2\n", "1,2,3,4,5\n", "7\n"};
        if (kind < 4) {
          len += (size_t)snprintf(csv + len, cap - len, "%s", badrec[kind]);
        } else { /* more terminators than a block holds before its LF */
          for (int i = 0; i < 4000; i++)
            len += (size_t)snprintf(csv + len, cap - len, "%d%s", i % 10, i < 3999 ? "," : "\n");
        }
        continue;
      }
      len += (size_t)snprintf(csv + len, cap - len, "%d,%d.%d,%d\n", rand() % 100000,
                              rand() % 100, rand() % 10, rand() % (1 + rand() % 1000));
    }
    unsigned char w[3] = {1, 1, 1};
    stats_cfg_t c = {',', 3, w, 1u << 30, 0, 0};
    for (int isa = prev; isa >= 0; isa--) {
      stats_parse_isa(isa);
      stats_part_t part;
      CU_ASSERT_EQUAL_FATAL(stats_part_init(&part, &c), 0);
      uint64_t end;
      CU_ASSERT_EQUAL_FATAL(stats_parse(&c, (const unsigned char *)csv, 6, len, len, &part, &end), 0);
      CU_ASSERT_TRUE(part.has_err);
      CU_ASSERT_EQUAL(part.err_pos, bad_off);
      CU_ASSERT_EQUAL(part.records, badrow);
      /* (the record loop may have taken the bad row's first fields) */
      CU_ASSERT(stats_moments_count(&part.cols[2].mom) >= badrow);
      if (isa > 0 && badrow > 600)
        CU_ASSERT(part.block_records > badrow / 2);
      stats_part_free(&part, &c);
    }
  }
  stats_parse_isa(prev);
  free(csv);
}

MPC_TESTS(stats_parse) = {
    {"number parser edge cases equal strtod", test_number_edges},
    {"number parser equals strtod on random strings", test_number_random},
    {"CSV fast paths equal strtod on random fields", test_csv_numbers_exact},
    {"block path: shaped columns equal strtod, every code variant", test_csv_shaped_exact},
    {"block path: a column turning into text mid-block", test_csv_block_text},
    {"block path: many columns and runs of blank lines", test_csv_block_blank_lines},
    {"pandas missing-value tokens", test_missing},
    {"record walks and range cuts", test_skip_and_cut},
    {"prescan: newlines, NUL, invalid UTF-8", test_prescan},
    {"sketch batch size: same counts, moments and values", test_batch_size},
    {"CRLF line ends: the same values as LF, numeric or text last column", test_crlf_block},
    {"block path: other delimiters, lone CR header, long fields; every code variant",
     test_block_delimiters},
    {"block path: a row with more or fewer fields anywhere stops at that row", test_block_ragged},
    CU_TEST_INFO_NULL,
};
