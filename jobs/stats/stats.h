/* Internal interface of the `stats` job (jobs/stats/).  Not installed.
 *
 *   numparse.c  correctly rounded decimal -> double, missing-value tokens
 *   moments.c   count/mean/M2/min/max per column, Chan et al. merge
 *   sketch.c    deterministic mergeable quantile sketch, exact selection
 *   csvscan.c   header, range cutting, the speculative range parser
 *   h5out.c     HDF5 output
 *   stats.c     the job table (init/next/run/gather/finish) and reports
 *
 * See docs/stats.md for the design. */
#ifndef MPC_JOBS_STATS_H
#define MPC_JOBS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/buf.h"
#include "mpc/job.h"

extern const mpc_job_t mpc_job_stats;

/* Append a message to an error buffer; running out of memory only loses the
 * message. */
#define STATS_MSG(b, ...)                                                      \
  do {                                                                         \
    if (mpc_buf_printf((b), __VA_ARGS__) != 0)                                 \
      mpc_buf_clear(b);                                                        \
  } while (0)

/* ---- numbers ----------------------------------------------------------- */

/* Parse a whole field [s, e) as a decimal number the way pandas' C parser
 * accepts it: optional surrounding spaces/tabs, sign, digits with an
 * optional '.', optional exponent; "inf"/"infinity" (any case, signed).
 * Correctly rounded (equal to strtod).  Returns 1 and sets *out, or 0. */
int stats_parse_number(const char *s, const char *e, double *out);

/* Is [s, e) one of pandas' default missing-value tokens ("", "NA", ...)? */
int stats_is_missing(const char *s, size_t n);

/* ---- moments ----------------------------------------------------------- */

typedef struct stats_moments {
  uint64_t n;      /* finite values */
  double mean, m2; /* over the finite values */
  double min, max; /* over all values, infinities included */
  uint64_t npinf, nminf;
} stats_moments_t;

void stats_moments_init(stats_moments_t *m);
/* Add a block of values (any order; the block is summed two-pass). */
void stats_moments_add_block(stats_moments_t *m, const double *v, size_t n);
/* The same, also folding the block's min/max into *bmin / *bmax. */
void stats_moments_add_block_mm(stats_moments_t *m, const double *v, size_t n,
                                double *bmin, double *bmax);
/* a = a (+) b, Chan et al.; a's data come first (order matters only for
 * rounding, and the job always merges in file order). */
void stats_moments_merge(stats_moments_t *a, const stats_moments_t *b);
uint64_t stats_moments_count(const stats_moments_t *m);
double stats_moments_mean(const stats_moments_t *m);
double stats_moments_std(const stats_moments_t *m); /* ddof = 1 */

/* ---- quantile sketch --------------------------------------------------- */

#define STATS_SKETCH_MAXLEV 48
/* A batch of n >= k values added at once is summarised by n/Q..2n/Q items
 * (see sketch.c), adding at most 2.5 n / Q to the rank-error bound. */
#define STATS_SKETCH_Q 1024

/* A deterministic compactor stack (MRL/KLL-style without randomness).  Level
 * h holds items of weight 2^h; a level with >= k items is sorted and every
 * other item (alternating offset) moves up.  Each compaction at level h moves
 * any rank by at most 2^h, so `err` (the sum of those weights) is a hard
 * bound on the rank error of every query.  See docs/stats.md. */
typedef struct stats_sketch {
  uint32_t k;
  uint32_t nlev;
  uint64_t n;      /* items inserted (total weight) */
  uint64_t err;    /* proven rank-error bound, in items */
  uint32_t flip;   /* alternating compaction offsets, one bit per level */
  struct {
    double *v;
    uint32_t len, cap;
  } lev[STATS_SKETCH_MAXLEV];
} stats_sketch_t;

/* Smallest k (power of two, >= 4096) for which the worst-case bound stays
 * within `frac` of n for any n <= nmax. */
uint32_t stats_sketch_pick_k(uint64_t nmax, double frac);
int stats_sketch_init(stats_sketch_t *s, uint32_t k);
void stats_sketch_free(stats_sketch_t *s);
/* Add n values.  n >= k: summarised as one batch (cheaper than n inserts;
 * the caller should pass large batches).  0 or MPC_ENOMEM. */
int stats_sketch_add(stats_sketch_t *s, const double *v, size_t n);
/* The same without copies: v[0..n) is clobbered, t is scratch for n values. */
int stats_sketch_add_batch(stats_sketch_t *s, double *v, size_t n, double *t);
/* The same with the batch's min and max known (mm[0], mm[1]; NULL: unknown). */
int stats_sketch_add_batch_mm(stats_sketch_t *s, double *v, size_t n, double *t,
                              const double *mm);
int stats_sketch_merge(stats_sketch_t *a, const stats_sketch_t *b);
/* Which code variant batch summaries and block moments use: 0 SSE2 (plain C
 * elsewhere), 1 AVX2
 * (the best the CPU has by default); the same results either way.  want >= 0
 * selects min(want, best) (tests); returns the variant in use. */
int stats_sketch_isa(int want);
/* Quantiles qs[0..nq) in [0,1] with numpy's "linear" interpolation over the
 * weighted items; exact when no compaction happened (err == 0).  NaN when
 * empty.  0 or MPC_ENOMEM. */
int stats_sketch_quantiles(const stats_sketch_t *s, const double *qs, size_t nq,
                           double *out);
int stats_sketch_write(const stats_sketch_t *s, mpc_buf_t *out);
/* Returns bytes consumed, or 0 on malformed input. */
size_t stats_sketch_read(stats_sketch_t *s, const unsigned char *p, size_t len);
/* The size of a written sketch at p (what stats_sketch_read() would consume,
 * with the same checks), without reading it; 0 when malformed. */
size_t stats_sketch_skip(const unsigned char *p, size_t len);
/* stats_sketch_merge() of the written sketch at p, without reading it into a
 * sketch first; *used gets its size.  0, MPC_EPROTO (malformed),
 * MPC_EINVAL (other k) or MPC_ENOMEM. */
int stats_sketch_merge_wire(stats_sketch_t *a, const unsigned char *p, size_t len,
                            size_t *used);

/* numpy's linear interpolation between a and b at t in [0,1). */
double stats_lerp(double a, double b, double t);
/* Sort doubles ascending (no NaN), radix sort on the bit patterns. */
void stats_sort_doubles(double *v, size_t n, double *tmp);

/* Exact selection over sorted runs: the 0-based rank-th smallest value of the
 * union of `nruns` sorted arrays. */
double stats_select_runs(const double *const *runs, const uint64_t *lens,
                         size_t nruns, uint64_t rank);

/* ---- CSV --------------------------------------------------------------- */

typedef struct stats_header {
  char **names;     /* ncols NUL-terminated names (duplicates mangled a.1) */
  size_t ncols;
  uint64_t data_start; /* byte offset of the first data record */
  uint64_t line0;      /* 1-based line number at data_start */
} stats_header_t;

/* Read only the first record of `path` (after a UTF-8 BOM and blank lines). */
int stats_header_read(const char *path, char delim, stats_header_t *h,
                      mpc_buf_t *err);
void stats_header_free(stats_header_t *h);

/* One parsed stretch of records: per-column accumulators and the first error. */
typedef struct stats_col {
  int nonnum;           /* saw a non-missing value that is not a number */
  stats_moments_t mom;
  stats_sketch_t sk;
  double *exact;        /* --exact: every value */
  size_t nexact, capexact;
  double *vals;         /* values not yet in the sketch (one batch); */
  size_t nvals, capvals;
  size_t nmom;          /* vals[0..nmom) are already in mom */
  double bmm[2];        /* min and max of vals[0..nmom) */
  double *scratch;      /* for stats_sketch_add_batch */
  size_t capscratch;
  unsigned wide_left;   /* blocks left before the block path tries 8-byte fields again */
} stats_col_t;

typedef struct stats_part {
  uint64_t records;
  uint64_t block_records; /* of those, taken by the block path (tests, tuning) */
  int has_err;
  uint64_t err_pos;     /* byte offset where the bad record starts */
  char err_msg[200];
  uint64_t first_quote; /* offset of the first '"' the parser met (UINT64_MAX: none) */
  int stop_at_quote;    /* set by the caller: stop parsing there (a trial parse) */
  stats_col_t *cols;    /* ncols (unselected columns are never touched) */
} stats_part_t;

/* What the parser needs to know; the same on every rank. */
typedef struct stats_cfg {
  char delim;
  size_t ncols;
  const unsigned char *want;  /* ncols flags: column considered at all */
  uint32_t sketch_k;
  int exact;
  size_t batch; /* values per column per sketch batch; 0: STATS_BATCH */
} stats_cfg_t;

int stats_part_init(stats_part_t *p, const stats_cfg_t *c);
void stats_part_free(stats_part_t *p, const stats_cfg_t *c);
/* Values per column handed to the sketch at once.  Larger batches leave
 * fewer items per task for the master to merge (each batch becomes about
 * STATS_SKETCH_Q / 4 items whatever its size), smaller ones bound a task's
 * memory (16 bytes per value and column).  stats_batch_for() sizes it by the
 * number of columns. */
#define STATS_BATCH (1u << 16)
size_t stats_batch_for(size_t nwant);
static inline size_t stats_batch(const stats_cfg_t *c) {
  return c->batch ? c->batch : STATS_BATCH;
}

/* Hand the pending value batches to moments and sketch (call before reading
 * the results). */
int stats_part_flush(stats_part_t *p, const stats_cfg_t *c);

/* Parse records starting at record start `from` while they start before
 * `stop` (reading past `stop` to finish the last one; `fend` is the end of
 * the data).  *endp gets the position after the last record parsed.
 * Stops at the first error (recorded in the part).  0 or MPC_ENOMEM. */
int stats_parse(const stats_cfg_t *c, const unsigned char *buf, uint64_t from,
                uint64_t stop, uint64_t fend, stats_part_t *part,
                uint64_t *endp);

/* Which code variant stats_parse() uses: 0 plain C, 1 SSE4.1, 2 AVX2 (the
 * best the CPU has by default).  want >= 0 selects min(want, best) (tests);
 * returns the variant in use. */
int stats_parse_isa(int want);

/* Structural walk: from `pos`, in a quoted field (inq=1) or at a record start
 * (inq=0), return the start of the next record (fend at the end of data). */
uint64_t stats_skip_record(const unsigned char *buf, uint64_t pos,
                           uint64_t fend, char delim, int inq);

/* Range cut: the first position >= off right after a '\n' (or fend). */
uint64_t stats_cut(const unsigned char *buf, uint64_t off, uint64_t fend);

/* Hypothesis-independent checks over [a, b): newlines, NUL bytes and invalid
 * UTF-8.  Returns the number of '\n'; *bad gets the first bad offset (or
 * UINT64_MAX) and *why a static message. */
uint64_t stats_prescan(const unsigned char *buf, uint64_t a, uint64_t b,
                       uint64_t *bad, const char **why);

uint64_t stats_count_nl(const unsigned char *buf, uint64_t a, uint64_t b);

/* ---- HDF5 -------------------------------------------------------------- */

typedef struct stats_table {
  size_t ncols;
  const char *const *names;
  double *val[8];  /* count, mean, std, min, 25%, 50%, 75%, max; [ncols] each */
} stats_table_t;

/* In the header, not exported: the HDF5 plugin needs them too. */
static const char *const stats_row_names[8] __attribute__((unused)) = {
    "count", "mean", "std", "min", "25%", "50%", "75%", "max"};

/* HDF5 output (h5out.c) is a plugin, <prefix>/lib/STATS_H5_PLUGIN beside
 * <prefix>/bin/mpc-run, loaded for --out only.  Linked into mpc-run, the
 * HDF5 that Debian builds brings some 30 more libraries (curl, gnutls,
 * kerberos, ldap...) into every process start: 13 ms each time.
 * stats_h5_write: 0, or a negative MPC_E* code with a message in err
 * (NUL-terminated; err[0] must be 0 on entry). */
#define STATS_H5_PLUGIN "mpcrun/stats-hdf5.so"
int stats_h5_write(const char *path, const stats_table_t *t, const char *source,
                   uint64_t rows, int exact, char *err, size_t errlen);
typedef int (*stats_h5_write_fn)(const char *path, const stats_table_t *t,
                                 const char *source, uint64_t rows, int exact,
                                 char *err, size_t errlen);

#endif
