/* wordcount job: tokenizer, lowercase, table, ranges, and the whole job in
 * process against the tr/sort/uniq reference pipeline. */
#include "test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../jobs/wordcount/wordcount.h"

#define U(s) ((const unsigned char *)(s))

static void test_tokenize(void) {
  const char *t = "Hello, world! hello-world 42x don't caf\xc3\xa9 \xd0\x9c\xd0\xb8\xd1\x80\n"
                  "a  b\tc\r\nhello";
  wc_opts_t o = {0};
  wc_table_t tab;
  wc_table_init(&tab);
  CU_ASSERT_EQUAL_FATAL(wc_count(U(t), strlen(t), 0, strlen(t), &o, &tab), 0);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("Hello"), 5), 1);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("hello"), 5), 2);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("world"), 5), 2);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("42x"), 3), 1);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("don"), 3), 1);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("t"), 1), 1);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("caf\xc3\xa9"), 5), 1);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("\xd0\x9c\xd0\xb8\xd1\x80"), 6), 1);
  CU_ASSERT_EQUAL(tab.used, 11);
  wc_table_free(&tab);
  /* --lower and --min-length (characters, not bytes) */
  wc_opts_t lo = {.lower = 1, .min_len = 3};
  wc_table_init(&tab);
  CU_ASSERT_EQUAL_FATAL(wc_count(U(t), strlen(t), 0, strlen(t), &lo, &tab), 0);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("hello"), 5), 3);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("\xd0\xbc\xd0\xb8\xd1\x80"), 6), 1); /* мир */
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("don"), 3), 1);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("t"), 1), 0);
  CU_ASSERT_EQUAL(wc_table_get(&tab, U("a"), 1), 0);
  wc_table_free(&tab);
}

static void test_lower(void) {
  unsigned char w[64];
  struct {
    const char *in, *out;
  } cases[] = {{"ABCxyz09", "abcxyz09"},
               {"\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9"},         /* ÉTÉ -> été */
               {"\xc3\x97", "\xc3\x97"},                           /* × unchanged */
               {"\xce\xa3\xce\x9f\xce\xa6", "\xcf\x83\xce\xbf\xcf\x86"}, /* ΣΟΦ -> σοφ */
               {"\xd0\x81\xd0\xaf", "\xd1\x91\xd1\x8f"},           /* ЁЯ -> ёя */
               {"\xc5\x81\xc3\xb3" "d\xc5\xba", "\xc5\x82\xc3\xb3" "d\xc5\xba"}, /* Łódź */
               {"\xc5\xb9", "\xc5\xba"},                           /* Ź -> ź */
               {"\xc4\x80", "\xc4\x81"},                           /* Ā -> ā */
               {"\xc5\xb8", "\xc3\xbf"},                           /* Ÿ -> ÿ */
               {"\xe2\x82\xac", "\xe2\x82\xac"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = strlen(cases[i].in);
    memcpy(w, cases[i].in, n);
    wc_lower(w, n);
    CU_ASSERT(memcmp(w, cases[i].out, n) == 0);
  }
}

/* Counting a text in any split into ranges gives the same table. */
static void test_ranges(void) {
  char *t = malloc(200000);
  size_t n = 0;
  srand(3);
  const char *words[] = {"alpha", "beta", "gamma", "\xc3\xa9t\xc3\xa9", "x", "Zz9"};
  while (n < 199000) {
    const char *w = words[rand() % 6];
    memcpy(t + n, w, strlen(w));
    n += strlen(w);
    t[n++] = " \n\t,.;"[rand() % 6];
  }
  wc_opts_t o = {0};
  wc_table_t ref;
  wc_table_init(&ref);
  CU_ASSERT_EQUAL_FATAL(wc_count(U(t), n, 0, n, &o, &ref), 0);
  for (size_t chunk = 1; chunk < n; chunk = chunk * 3 + 1) {
    wc_table_t tot;
    wc_table_init(&tot);
    for (size_t a = 0; a < n; a += chunk) {
      size_t b = a + chunk < n ? a + chunk : n;
      wc_table_t part;
      wc_table_init(&part);
      CU_ASSERT_EQUAL_FATAL(wc_count(U(t), n, a, b, &o, &part), 0);
      mpc_buf_t buf = MPC_BUF_INIT;
      CU_ASSERT_EQUAL_FATAL(wc_table_write(&part, &buf), 0);
      CU_ASSERT_EQUAL_FATAL(wc_table_merge_bytes(&tot, buf.data, buf.len), 0);
      mpc_buf_free(&buf);
      wc_table_free(&part);
    }
    CU_ASSERT_EQUAL(tot.used, ref.used);
    for (int i = 0; i < 6; i++)
      CU_ASSERT_EQUAL(wc_table_get(&tot, U(words[i]), strlen(words[i])),
                      wc_table_get(&ref, U(words[i]), strlen(words[i])));
    wc_table_free(&tot);
  }
  wc_table_free(&ref);
  free(t);
}

/* Words of every length around the 16 bytes kept in an entry, ending at
 * every distance from the end of an exactly sized buffer (the tokenizer's
 * 64-byte steps and its padded last step), against a plain byte loop. */
static void test_lengths_and_ends(void) {
  for (size_t total = 1; total < 200; total += 7) {
    unsigned char *t = malloc(total); /* exactly sized: ASan sees any overread */
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    srand((unsigned)total);
    for (size_t i = 0; i < total; i++)
      t[i] = rand() % 5 == 0 ? (unsigned char)" ,\n-"[rand() % 4]
                             : (unsigned char)"abcXY09\xc3\xa9"[rand() % 9];
    wc_opts_t o = {0};
    wc_table_t tab;
    wc_table_init(&tab);
    CU_ASSERT_EQUAL_FATAL(wc_count(t, total, 0, total, &o, &tab), 0);
    /* reference: each word, counted by looking it up and comparing */
    size_t words = 0, p = 0;
    while (p < total) {
      while (p < total && !wc_is_word(t[p]))
        p++;
      size_t s0 = p;
      while (p < total && wc_is_word(t[p]))
        p++;
      if (p > s0) {
        words++;
        size_t c = 0;
        for (size_t q = 0; q + (p - s0) <= total; q++)
          if ((q == 0 || !wc_is_word(t[q - 1])) && memcmp(t + q, t + s0, p - s0) == 0 &&
              (q + (p - s0) == total || !wc_is_word(t[q + (p - s0)])))
            c++;
        CU_ASSERT_EQUAL(wc_table_get(&tab, t + s0, p - s0), c);
      }
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < tab.cap; i++)
      sum += tab.slot[i].count;
    CU_ASSERT_EQUAL(sum, words);
    wc_table_free(&tab);
    free(t);
  }
  /* one table, words of 1..40 bytes: merged through the wire format */
  wc_table_t a, b;
  wc_table_init(&a);
  wc_table_init(&b);
  char w[41];
  for (int n = 1; n <= 40; n++) {
    for (int i = 0; i < n; i++)
      w[i] = (char)('a' + (i * 7 + n) % 26);
    CU_ASSERT_EQUAL_FATAL(wc_table_add(&a, U(w), (size_t)n, (uint64_t)n), 0);
  }
  mpc_buf_t buf = MPC_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(wc_table_write(&a, &buf), 0);
  CU_ASSERT_EQUAL_FATAL(wc_table_merge_bytes(&b, buf.data, buf.len), 0);
  CU_ASSERT_EQUAL_FATAL(wc_table_merge_bytes(&b, buf.data, buf.len), 0);
  for (int n = 1; n <= 40; n++) {
    for (int i = 0; i < n; i++)
      w[i] = (char)('a' + (i * 7 + n) % 26);
    CU_ASSERT_EQUAL(wc_table_get(&b, U(w), (size_t)n), 2 * (uint64_t)n);
    CU_ASSERT_EQUAL(wc_table_get(&b, U(w), (size_t)n - 1), 0); /* a prefix is another word */
  }
  CU_ASSERT_EQUAL(b.used, 40);
  mpc_buf_free(&buf);
  wc_table_free(&a);
  wc_table_free(&b);
}

static void test_sorted(void) {
  wc_table_t t;
  wc_table_init(&t);
  CU_ASSERT_EQUAL(wc_table_add(&t, U("b"), 1, 5), 0);
  CU_ASSERT_EQUAL(wc_table_add(&t, U("ab"), 2, 5), 0);
  CU_ASSERT_EQUAL(wc_table_add(&t, U("a"), 1, 5), 0);
  CU_ASSERT_EQUAL(wc_table_add(&t, U("z"), 1, 9), 0);
  CU_ASSERT_EQUAL(wc_table_add(&t, U("\xc3\xa9"), 2, 5), 0);
  for (int i = 0; i < 5000; i++) {
    char w[16];
    int l = snprintf(w, sizeof w, "w%d", i);
    CU_ASSERT_EQUAL_FATAL(wc_table_add(&t, U(w), (size_t)l, 1), 0);
  }
  wc_entry_t *v;
  CU_ASSERT_EQUAL_FATAL(wc_table_sorted(&t, &v), 0);
  const char *want[] = {"z", "a", "ab", "b", "\xc3\xa9", "w0", "w1", "w10"};
  for (int i = 0; i < 8; i++) {
    CU_ASSERT_EQUAL(v[i].len, strlen(want[i]));
    CU_ASSERT(memcmp(wc_entry_word(&t, &v[i]), want[i], v[i].len) == 0);
  }
  free(v);
  wc_table_free(&t);
}

/* ---- the job ------------------------------------------------------------------ */

static char g_dir[128];

static int run_wc(mpc_job_report_t *rep, char *out, size_t outcap, char *err, size_t errcap,
                  ...) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = "wordcount";
  va_list ap;
  va_start(ap, errcap);
  const char *a;
  while ((a = va_arg(ap, const char *)) && argc < 31)
    argv[argc++] = (char *)a;
  va_end(ap);
  fflush(stdout);
  fflush(stderr);
  FILE *fo = tmpfile(), *fe = tmpfile();
  int so = dup(1), se = dup(2);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  int rc = mpct_job_run(&mpc_job_wordcount, argc, argv, rep, NULL);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  rewind(fo);
  rewind(fe);
  size_t n = fread(out, 1, outcap - 1, fo);
  out[n] = 0;
  n = fread(err, 1, errcap - 1, fe);
  err[n] = 0;
  fclose(fo);
  fclose(fe);
  return rc;
}

static int sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd);
}

static void test_job_vs_reference(void) {
  strcpy(g_dir, "/tmp/mpct-wc-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_dir));
  /* a corpus: nested dirs, UTF-8, CRLF, a big file to be split, an empty file */
  CU_ASSERT_EQUAL_FATAL(sh("mkdir -p %s/c/sub/deeper && cd %s/c && "
                           "printf 'The cat sat on the mat.\\r\\nThe END\\n' > a.txt && "
                           "printf 'caf\\303\\251 CAF\\303\\211 na\\303\\257ve x-y_z 3.14\\n' > sub/b.txt && "
                           ": > sub/empty.txt && "
                           "for i in $(seq 1 3000); do echo \"word$((i %% 37)) Alpha beta, GAMMA; $i\"; done > sub/deeper/big.txt && "
                           "ln -s ../a.txt sub/link.txt && ln -s nowhere sub/dangling.txt",
                           g_dir, g_dir),
                        0);
  char *out = malloc(1 << 16), *err = malloc(1 << 14);
  mpc_job_report_t rep;
  char tsv[256], ref[256], dir[200];
  snprintf(dir, sizeof dir, "%s/c", g_dir);
  snprintf(ref, sizeof ref, "%s/ref.tsv", g_dir);
  snprintf(tsv, sizeof tsv, "%s/out.tsv", g_dir);
  /* the reference: C-locale tr/sort/uniq over the readable files */
  CU_ASSERT_EQUAL_FATAL(
      sh("cd %s && find -L c -type f 2>/dev/null | sort | xargs cat | "
         "LC_ALL=C tr -cs 'A-Za-z0-9\\200-\\377' '\\n' | grep -v '^$' | LC_ALL=C sort | "
         "LC_ALL=C uniq -c | awk '{print $2\"\\t\"$1}' | LC_ALL=C sort -t'\t' -k2,2nr -k1,1 > %s",
         g_dir, ref),
      0);
  const char *chunks[] = {"1", "7", "100", "4096", "32M"};
  for (int i = 0; i < 5; i++) {
    int rc = run_wc(&rep, out, 1 << 16, err, 1 << 14, dir, "--out", tsv, "--top", "3",
                    "--chunk-size", chunks[i], NULL);
    CU_ASSERT_EQUAL(rc, 0);
    /* the dangling link fails alone, with its name */
    CU_ASSERT_EQUAL(rep.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "dangling.txt: No such file or directory"));
    CU_ASSERT_EQUAL(sh("cmp -s %s %s", ref, tsv), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3000\tAlpha\n3000\tGAMMA\n3000\tbeta\n"));
  }
  /* --lower --min-length against tr-lowercased ASCII reference */
  CU_ASSERT_EQUAL(sh("cd %s && printf 'Aa aA AA b BB bb\\nccc CCC\\n' > low.txt", g_dir), 0);
  char low[256];
  snprintf(low, sizeof low, "%s/low.txt", g_dir);
  int rc = run_wc(&rep, out, 1 << 16, err, 1 << 14, low, "--lower", "--min-length", "2",
                  "--out", tsv, NULL);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(rep.failed, 0);
  CU_ASSERT_EQUAL(sh("printf 'aa\\t3\\nbb\\t2\\nccc\\t2\\n' | cmp -s - %s", tsv), 0);
  /* usage errors */
  CU_ASSERT_EQUAL(run_wc(&rep, out, 1 << 16, err, 1 << 14, NULL), MPC_EUSAGE);
  CU_ASSERT_EQUAL(run_wc(&rep, out, 1 << 16, err, 1 << 14, dir, "--top", "x", NULL), MPC_EUSAGE);
  free(out);
  free(err);
  CU_ASSERT_EQUAL(sh("rm -rf %s", g_dir), 0);
}

MPC_TESTS(wordcount) = {
    {"tokenizer: word bytes, UTF-8, --lower, --min-length", test_tokenize},
    {"lowercase mappings", test_lower},
    {"any split into ranges gives the same counts", test_ranges},
    {"words around 16 bytes, at every distance from the buffer end", test_lengths_and_ends},
    {"sorted by count desc then word bytes asc", test_sorted},
    {"job equals tr|sort|uniq; bad file fails alone", test_job_vs_reference},
    CU_TEST_INFO_NULL,
};
