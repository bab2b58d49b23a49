/* The `stats` job: describe() for big CSV files.  See docs/stats.md.
 *
 * Tasks are byte ranges of the file.  A worker maps the file and parses the
 * records that start in its range under both possible states at the range
 * start (record start, or inside a quoted field); gather() chains the ranges
 * in file order, picks the right hypothesis for each from the state the
 * previous range ended in, and merges in task order, so the result does not
 * depend on ranks, workers or completion order. */
#include "stats.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"

#define STATS_DEFAULT_CHUNK (16ULL << 20)
#define STATS_MIN_CHUNK (1ULL << 20)

enum { FMT_TABLE, FMT_CSV, FMT_JSON };
enum { ST_REC = 0, ST_QUOTED = 1 };

typedef struct pending {
  int have;
  int ok;
  unsigned char *data;
  size_t len;
  char *key;
} pending_t;

typedef struct run {
  size_t col;
  uint64_t off, len;
} run_t;

typedef struct stats_state {
  /* options */
  char *path;
  char *out;
  stats_h5_write_fn h5_write; /* --out on the master: from the plugin */
  int fmt;
  int exact;
  uint64_t chunk;
  int guided; /* default sizes: shrink ranges towards the end */
  uint64_t want_tasks;
  /* file */
  uint64_t fsize;
  stats_header_t hdr;
  stats_cfg_t cfg;
  unsigned char *want;
  size_t *order; /* output order of the considered columns */
  size_t norder;
  /* master: generation */
  uint64_t next_off;
  uint64_t generated;
  /* master: gathering */
  pending_t *pend;
  uint64_t npend;
  uint64_t done; /* tasks merged so far (in order) */
  int chain;     /* state at the start of task `done` */
  uint64_t rows;
  stats_part_t total;
  int failed;
  char *errmsg;
  int spill_fd;
  uint64_t spill_len;
  run_t *runs;
  size_t nruns, capruns;
} stats_state_t;

/* ---- options ------------------------------------------------------------------ */

/* The HDF5 plugin: <dir of the program>/../lib/STATS_H5_PLUGIN.  It stays
 * loaded to the end (HDF5 cleans up at exit). */
static int h5_load(stats_state_t *s, mpc_buf_t *err) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 64);
  if (n <= 0) {
    STATS_MSG(err, "--out: cannot find the program's directory: %s", strerror(errno));
    return MPC_ENOTFOUND;
  }
  path[n] = 0;
  for (int up = 0; up < 2; up++) { /* .../bin/mpc-run -> ... */
    char *sl = strrchr(path, '/');
    if (!sl)
      break;
    *sl = 0;
  }
  strcat(path, "/lib/" STATS_H5_PLUGIN);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  void *fn = h ? dlsym(h, "stats_h5_write") : NULL;
  if (!fn) {
    STATS_MSG(err, "--out needs HDF5 support, which did not load: %s", dlerror());
    return MPC_ENOTFOUND;
  }
  *(void **)&s->h5_write = fn;
  return 0;
}

static int parse_size(const char *s, uint64_t *out) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (e == s || errno || v < 1)
    return -1;
  switch (*e) {
  case 'k': case 'K': v *= 1024; e++; break;
  case 'm': case 'M': v *= 1048576; e++; break;
  case 'g': case 'G': v *= 1073741824.0; e++; break;
  default: break;
  }
  if (*e == 'B' || *e == 'b')
    e++;
  if (*e)
    return -1;
  *out = (uint64_t)v;
  return 0;
}

static void state_free(stats_state_t *s) {
  if (!s)
    return;
  if (s->total.cols)
    stats_part_free(&s->total, &s->cfg);
  for (uint64_t i = 0; i < s->npend; i++) {
    free(s->pend[i].data);
    free(s->pend[i].key);
  }
  free(s->pend);
  free(s->errmsg);
  free(s->runs);
  if (s->spill_fd >= 0)
    close(s->spill_fd);
  stats_header_free(&s->hdr);
  free(s->want);
  free(s->order);
  free(s->path);
  free(s->out);
  free(s);
}

static int stats_init(int argc, char **argv, const mpc_job_env_t *env,
                      void **state, mpc_buf_t *err) {
  stats_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return MPC_ENOMEM;
  s->spill_fd = -1;
  s->cfg.delim = ',';
  const char *cols = NULL;
  int rc = MPC_EUSAGE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--out") == 0 && v) {
      free(s->out);
      s->out = strdup(v);
      i++;
    } else if (strcmp(a, "--delimiter") == 0 && v) {
      if (strcmp(v, "\\t") == 0 || strcmp(v, "tab") == 0)
        s->cfg.delim = '\t';
      else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r')
        s->cfg.delim = v[0];
      else {
        STATS_MSG(err, "--delimiter: one character (not a quote or newline), or 'tab'");
        goto bad;
      }
      i++;
    } else if (strcmp(a, "--columns") == 0 && v) {
      cols = v;
      i++;
    } else if (strcmp(a, "--format") == 0 && v) {
      if (strcmp(v, "table") == 0)
        s->fmt = FMT_TABLE;
      else if (strcmp(v, "csv") == 0)
        s->fmt = FMT_CSV;
      else if (strcmp(v, "json") == 0)
        s->fmt = FMT_JSON;
      else {
        STATS_MSG(err, "--format: table, csv or json, not '%s'", v);
        goto bad;
      }
      i++;
    } else if (strcmp(a, "--exact") == 0) {
      s->exact = 1;
    } else if (strcmp(a, "--tasks") == 0 && v) {
      char *e;
      long long n = strtoll(v, &e, 10);
      if (*e || n < 1 || n > 10000000) {
        STATS_MSG(err, "--tasks: a number >= 1, not '%s'", v);
        goto bad;
      }
      s->want_tasks = (uint64_t)n;
      i++;
    } else if (strcmp(a, "--chunk-size") == 0 && v) {
      if (parse_size(v, &s->chunk)) {
        STATS_MSG(err, "--chunk-size: bytes (suffix K, M, G allowed), not '%s'", v);
        goto bad;
      }
      i++;
    } else if (a[0] == '-' && a[1]) {
      STATS_MSG(err, "unknown option or missing value: %s", a);
      goto bad;
    } else if (!s->path) {
      s->path = strdup(a);
    } else {
      STATS_MSG(err, "one CSV file only (got '%s' and '%s')", s->path, a);
      goto bad;
    }
  }
  if (!s->path) {
    STATS_MSG(err, "missing FILE.csv");
    goto bad;
  }
  struct stat st;
  if (stat(s->path, &st) != 0) {
    rc = -errno;
    STATS_MSG(err, "%s: %s", s->path, mpc_strerror(rc));
    goto bad;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = MPC_EINVAL;
    STATS_MSG(err, "%s: not a regular file", s->path);
    goto bad;
  }
  s->fsize = (uint64_t)st.st_size;
  rc = stats_header_read(s->path, s->cfg.delim, &s->hdr, err);
  if (rc)
    goto bad;
  s->cfg.ncols = s->hdr.ncols;
  s->want = calloc(s->hdr.ncols, 1);
  s->order = calloc(s->hdr.ncols, sizeof *s->order);
  if (!s->want || !s->order) {
    rc = MPC_ENOMEM;
    goto bad;
  }
  if (cols) {
    const char *p = cols;
    while (*p) {
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      size_t j;
      for (j = 0; j < s->hdr.ncols; j++)
        if (strlen(s->hdr.names[j]) == n && memcmp(s->hdr.names[j], p, n) == 0)
          break;
      if (j == s->hdr.ncols) {
        rc = MPC_EUSAGE;
        STATS_MSG(err, "--columns: no column '%.*s' in %s", (int)n, p, s->path);
        goto bad;
      }
      if (!s->want[j]) {
        s->want[j] = 1;
        s->order[s->norder++] = j;
      }
      p += n;
      if (*p == ',')
        p++;
    }
  } else {
    for (size_t j = 0; j < s->hdr.ncols; j++) {
      s->want[j] = 1;
      s->order[s->norder++] = j;
    }
  }
  s->cfg.want = s->want;
  s->cfg.exact = s->exact;
  uint64_t data = s->fsize > s->hdr.data_start ? s->fsize - s->hdr.data_start : 0;
  s->cfg.sketch_k = stats_sketch_pick_k(data / 2 + 1, 0.005);
  s->cfg.batch = stats_batch_for(s->norder);
  if (s->want_tasks) {
    s->chunk = (data + s->want_tasks - 1) / s->want_tasks;
    if (s->chunk == 0)
      s->chunk = 1;
  } else if (!s->chunk) {
    s->chunk = STATS_DEFAULT_CHUNK;
    s->guided = 1;
  }
  s->next_off = s->hdr.data_start;
  if (s->out && (!env || env->rank == 0) && (rc = h5_load(s, err)))
    goto bad;
  *state = s;
  return 0;
bad:
  state_free(s);
  return rc;
}

static void stats_fini(void *state) { state_free(state); }

/* ---- tasks ----------------------------------------------------------------------- */

static int stats_next(void *state, mpc_buf_t *input, mpc_buf_t *key) {
  stats_state_t *s = state;
  if (s->next_off >= s->fsize)
    return 0;
  /* By default the last eighth of the data goes in shrinking ranges (an
   * eighth of what is left, at least 1 MiB), so the workers finish close
   * together instead of one waiting for another's last 16 MiB.  The cuts
   * depend only on the file, never on the ranks or workers, so neither does
   * the result. */
  uint64_t len = s->chunk;
  if (s->guided) {
    uint64_t left = s->fsize - s->next_off, g = left / 8;
    g = g < STATS_MIN_CHUNK ? STATS_MIN_CHUNK : g;
    len = g < len ? g : len;
  }
  uint64_t r[2] = {s->next_off, s->next_off + len};
  if (r[1] > s->fsize || r[1] < r[0])
    r[1] = s->fsize;
  s->next_off = r[1];
  s->generated++;
  if (mpc_buf_append(input, r, sizeof r) ||
      mpc_buf_printf(key, "%s:%" PRIu64 "-%" PRIu64, s->path, r[0], r[1]))
    return MPC_ENOMEM;
  return 1;
}

static int put_u64(mpc_buf_t *o, uint64_t v) { return mpc_buf_append(o, &v, sizeof v); }

static int put_part(mpc_buf_t *o, const stats_cfg_t *c, stats_part_t *p) {
  int rc = put_u64(o, p->records);
  rc = rc ? rc : put_u64(o, p->has_err);
  rc = rc ? rc : put_u64(o, p->has_err ? p->err_pos : 0);
  uint64_t ml = p->has_err ? strlen(p->err_msg) : 0;
  rc = rc ? rc : put_u64(o, ml);
  rc = rc ? rc : mpc_buf_append(o, p->err_msg, ml);
  for (size_t i = 0; !rc && i < c->ncols; i++) {
    if (!c->want[i])
      continue;
    stats_col_t *col = &p->cols[i];
    rc = put_u64(o, col->nonnum);
    rc = rc ? rc : mpc_buf_append(o, &col->mom, sizeof col->mom);
    rc = rc ? rc : stats_sketch_write(&col->sk, o);
    if (!rc && c->exact) {
      uint64_t n = col->nonnum ? 0 : col->nexact;
      double *tmp = n ? malloc(n * sizeof *tmp) : NULL;
      if (n && !tmp)
        return MPC_ENOMEM;
      stats_sort_doubles(col->exact, n, tmp);
      free(tmp);
      rc = put_u64(o, n);
      rc = rc ? rc : mpc_buf_append(o, col->exact, n * sizeof(double));
    }
  }
  return rc;
}

/* Parse [from, stop) into a fresh part and append it to `o` (present flag
 * first).  *endp: where the last record ended. */
static int emit_parse_q(mpc_buf_t *o, const stats_cfg_t *c, const unsigned char *buf,
                        uint64_t from, uint64_t stop, uint64_t fend, uint64_t *endp,
                        uint64_t *quote, int *err) {
  stats_part_t part;
  int rc = stats_part_init(&part, c);
  if (rc)
    return rc;
  part.stop_at_quote = quote != NULL;
  rc = stats_parse(c, buf, from, stop, fend, &part, endp);
  if (quote)
    *quote = part.first_quote;
  if (err)
    *err = part.has_err;
  if (!rc)
    rc = put_u64(o, 1);
  if (!rc)
    rc = put_part(o, c, &part);
  stats_part_free(&part, c);
  return rc;
}

static int emit_parse(mpc_buf_t *o, const stats_cfg_t *c, const unsigned char *buf,
                      uint64_t from, uint64_t stop, uint64_t fend, uint64_t *endp) {
  return emit_parse_q(o, c, buf, from, stop, fend, endp, NULL, NULL);
}

/* A worker runs task after task with the same large buffers (values,
 * terminators, sketch scratch: tens of MB).  glibc would hand them back to
 * the kernel after each task and fault them in again, zeroed, for the next:
 * 8% of a run's CPU went there.  Keep them in the worker's heap instead. */
static void keep_heap(void) {
#if defined(__GLIBC__)
  static int done;
  if (!done) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    done = 1;
  }
#endif
}

static int stats_run(void *state, const void *in, size_t in_len, mpc_buf_t *out) {
  stats_state_t *s = state;
  keep_heap();
  uint64_t r[2];
  if (in_len != sizeof r)
    return mpc_task_fail(out, MPC_EINVAL, "stats: bad task input");
  memcpy(r, in, sizeof r);
  int fd = open(s->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return mpc_task_fail(out, -errno, "%s: %s", s->path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != s->fsize) {
    close(fd);
    return mpc_task_fail(out, MPC_EIO, "%s: file changed size during the run", s->path);
  }
  const uint64_t fend = s->fsize;
  unsigned char *buf = mmap(NULL, fend, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (buf == MAP_FAILED)
    return mpc_task_fail(out, -errno, "%s: mmap: %s", s->path, strerror(errno));
  const stats_cfg_t *c = &s->cfg;
  int known = r[0] == s->hdr.data_start;
  uint64_t p = known ? r[0] : stats_cut(buf, r[0], fend);
  uint64_t q = r[1] >= fend ? fend : stats_cut(buf, r[1], fend);
  if (p > q)
    p = q;
  madvise(buf + (p & ~(uint64_t)4095), q - (p & ~(uint64_t)4095), MADV_SEQUENTIAL);
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
  /* map the range's pages in one call instead of a fault per 16 pages
   * (Linux >= 5.14; older kernels say EINVAL and fault as before) */
  madvise(buf + (p & ~(uint64_t)4095), q - (p & ~(uint64_t)4095), MADV_POPULATE_READ);
  int rc = 0;
  /* Slots: R-prefix, Q-prefix, common; then the end state under R and Q. */
  uint64_t endR = q, endQ = q;
  if (rc) {
  } else if (known || p == q) {
    rc = emit_parse(out, c, buf, p, q, fend, &endR);
    rc = rc ? rc : put_u64(out, 0);
    rc = rc ? rc : put_u64(out, 0);
    endQ = known ? endR : q + 1; /* an empty range keeps whatever state */
  } else {
    /* Usual case first: parse the range as starting at a record, stopping
     * at the first '"'.  If there is none in [p, q], the walk below would
     * find no quote either (the range ends inside the quoted field), and
     * that parse is the result but for the two empty slots: no second pass
     * over the range.  Otherwise the trial is dropped. */
    size_t mark = out->len;
    uint64_t fq = 0;
    int perr = 1;
    rc = emit_parse_q(out, c, buf, p, q, fend, &endR, &fq, &perr);
    if (!rc && !perr && fq == UINT64_MAX && endR >= q &&
        (q == fend || endR > q || buf[q] != '"')) {
      rc = put_u64(out, 0);
      rc = rc ? rc : put_u64(out, 0);
      endQ = q < fend ? q + 1 : fend;
      goto states;
    }
    out->len = mark;
    rc = 0;
    /* Under the quoted hypothesis the first record boundary may lie far
     * away (no quote in the range at all: the file's end).  Anything past q
     * means the same (the range ends inside quotes), so the walk stops at
     * q + 1 instead of reading the rest of the file for every task. */
    uint64_t rq = stats_skip_record(buf, p, q < fend ? q + 1 : fend, c->delim, 1);
    uint64_t a = p, b = rq;
    while (a != b && a < q && b < q) {
      if (a < b)
        a = stats_skip_record(buf, a, fend, c->delim, 0);
      else
        b = stats_skip_record(buf, b, fend, c->delim, 0);
    }
    if (a == b && a < q) {
      uint64_t cpos = a, e1, e2;
      rc = emit_parse(out, c, buf, p, cpos, fend, &e1);
      rc = rc ? rc : emit_parse(out, c, buf, rq, cpos, fend, &e2);
      rc = rc ? rc : emit_parse(out, c, buf, cpos, q, fend, &endR);
      endQ = endR;
    } else {
      rc = emit_parse(out, c, buf, p, q, fend, &endR);
      if (!rc && rq < q)
        rc = emit_parse(out, c, buf, rq, q, fend, &endQ);
      else if (!rc) {
        rc = put_u64(out, 0);
        endQ = rq;
      }
      rc = rc ? rc : put_u64(out, 0);
    }
  }
states:
  /* An empty range hands on the state it was entered in (flag 2). */
  uint64_t sR = (p == q && !known) ? 2 : (endR == q ? ST_REC : ST_QUOTED);
  uint64_t sQ = (p == q && !known) ? 2 : (endQ == q ? ST_REC : ST_QUOTED);
  rc = rc ? rc : put_u64(out, sR);
  rc = rc ? rc : put_u64(out, sQ);
  munmap(buf, fend);
  if (rc)
    return mpc_task_fail(out, rc, "%s: %s", s->path, mpc_strerror(rc));
  return 0;
}

/* ---- gather -------------------------------------------------------------------------- */

typedef struct rd {
  const unsigned char *p;
  size_t len, off;
  int bad;
} rd_t;

static uint64_t get_u64(rd_t *r) {
  uint64_t v = 0;
  if (r->len - r->off < sizeof v) {
    r->bad = 1;
    return 0;
  }
  memcpy(&v, r->p + r->off, sizeof v);
  r->off += sizeof v;
  return v;
}

static const unsigned char *get_bytes(rd_t *r, uint64_t n) {
  if (r->len - r->off < n) {
    r->bad = 1;
    return NULL;
  }
  const unsigned char *p = r->p + r->off;
  r->off += n;
  return p;
}

typedef struct part_view {
  int present;
  uint64_t records, has_err, err_pos; /* err_pos: byte offset in the file */
  const char *msg;
  size_t msglen;
  size_t cols_off; /* where the column data starts */
} part_view_t;

static int skip_part_cols(rd_t *r, const stats_cfg_t *c) {
  for (size_t i = 0; i < c->ncols && !r->bad; i++) {
    if (!c->want[i])
      continue;
    get_u64(r);
    get_bytes(r, sizeof(stats_moments_t));
    size_t n = r->bad ? 0 : stats_sketch_skip(r->p + r->off, r->len - r->off);
    if (!n)
      return -1;
    r->off += n;
    if (c->exact) {
      uint64_t k = get_u64(r);
      if (k > (r->len - r->off) / sizeof(double))
        return -1;
      get_bytes(r, k * sizeof(double));
    }
  }
  return r->bad ? -1 : 0;
}

static int read_part(rd_t *r, const stats_cfg_t *c, part_view_t *v) {
  memset(v, 0, sizeof *v);
  v->present = (int)get_u64(r);
  if (!v->present)
    return r->bad ? -1 : 0;
  v->records = get_u64(r);
  v->has_err = get_u64(r);
  v->err_pos = get_u64(r);
  v->msglen = get_u64(r);
  v->msg = (const char *)get_bytes(r, v->msglen);
  v->cols_off = r->off;
  if (r->bad)
    return -1;
  return skip_part_cols(r, c);
}

static void set_error(stats_state_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(stats_state_t *s, const char *fmt, ...) {
  if (s->failed)
    return;
  s->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s->errmsg, fmt, ap) < 0)
    s->errmsg = NULL;
  va_end(ap);
}

static int spill(stats_state_t *s, size_t col, const double *v, uint64_t n) {
  if (n == 0)
    return 0;
  if (s->spill_fd < 0) {
    const char *dir = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/mpc-stats-XXXXXX", dir && *dir ? dir : "/tmp");
    s->spill_fd = mkstemp(tmpl);
    if (s->spill_fd < 0)
      return -errno;
    unlink(tmpl);
  }
  if (mpc__grow(&s->runs, &s->capruns, s->nruns + 1, sizeof *s->runs, 64))
    return MPC_ENOMEM;
  const unsigned char *p = (const unsigned char *)v;
  uint64_t left = n * sizeof(double), off = s->spill_len;
  while (left) {
    ssize_t w = pwrite(s->spill_fd, p, left, (off_t)off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += w;
    left -= (uint64_t)w;
    off += (uint64_t)w;
  }
  s->runs[s->nruns++] = (run_t){col, s->spill_len, n};
  s->spill_len = off;
  return 0;
}

static int merge_part(stats_state_t *s, const unsigned char *data, size_t len,
                      const part_view_t *v) {
  const stats_cfg_t *c = &s->cfg;
  rd_t r = {data, len, v->cols_off, 0};
  s->rows += v->records;
  for (size_t i = 0; i < c->ncols; i++) {
    if (!c->want[i])
      continue;
    stats_col_t *col = &s->total.cols[i];
    col->nonnum |= (int)get_u64(&r);
    stats_moments_t m;
    const unsigned char *mp = get_bytes(&r, sizeof m);
    if (!mp)
      return MPC_EPROTO;
    memcpy(&m, mp, sizeof m);
    stats_moments_merge(&col->mom, &m);
    size_t n = 0;
    int rc = r.bad ? MPC_EPROTO
                   : stats_sketch_merge_wire(&col->sk, r.p + r.off, r.len - r.off, &n);
    if (rc)
      return rc;
    r.off += n;
    if (c->exact) {
      uint64_t k = get_u64(&r);
      const unsigned char *vals = get_bytes(&r, k * sizeof(double));
      if (!vals)
        return MPC_EPROTO;
      if (!col->nonnum && (rc = spill(s, i, (const double *)vals, k)) != 0)
        return rc;
    }
  }
  return r.bad ? MPC_EPROTO : 0;
}

/* 1-based line number (LF-counted) of byte `pos` of the file.  Only called
 * for the one error that is reported, so tasks need not count lines. */
static uint64_t line_of(const stats_state_t *s, uint64_t pos) {
  uint64_t nl = 0;
  int fd = open(s->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  if (pos > s->fsize)
    pos = s->fsize;
  const unsigned char *m = pos ? mmap(NULL, pos, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (m == MAP_FAILED)
    return 0;
  if (m) {
    nl = stats_count_nl(m, 0, pos);
    munmap((void *)m, pos);
  }
  return nl + 1;
}

/* Merge task `s->done` (its outcome is pending). */
static int consume(stats_state_t *s, pending_t *pd) {
  const stats_cfg_t *c = &s->cfg;
  if (!pd->ok) {
    set_error(s, "task %s failed: %.*s", pd->key, (int)pd->len, (const char *)pd->data);
    return 0;
  }
  rd_t r = {pd->data, pd->len, 0, 0};
  part_view_t pv[3];
  for (int i = 0; i < 3 && !r.bad; i++)
    if (read_part(&r, c, &pv[i]))
      r.bad = 1;
  uint64_t sR = get_u64(&r), sQ = get_u64(&r);
  if (r.bad) {
    set_error(s, "task %s: malformed result", pd->key);
    return 0;
  }
  const part_view_t *use[2] = {NULL, NULL};
  int use_q = s->chain == ST_QUOTED && pv[1].present;
  if (s->chain == ST_QUOTED && !pv[1].present && (pv[2].present || pv[0].present)) {
    /* Inside a quoted field the whole range: no record starts here. */
    use[0] = NULL;
  } else {
    use[0] = use_q ? &pv[1] : &pv[0];
  }
  if (use[0] || s->chain == ST_REC)
    use[1] = pv[2].present ? &pv[2] : NULL;
  else if (pv[2].present)
    use[1] = &pv[2];
  /* the first error in file order wins */
  uint64_t epos = UINT64_MAX;
  const char *emsg = NULL;
  size_t elen = 0;
  for (int i = 0; i < 2; i++)
    if (use[i] && use[i]->has_err && use[i]->err_pos < epos) {
      epos = use[i]->err_pos;
      emsg = use[i]->msg;
      elen = use[i]->msglen;
    }
  if (emsg) {
    set_error(s, "%s:%" PRIu64 ": %.*s", s->path, line_of(s, epos), (int)elen, emsg);
    return 0;
  }
  for (int i = 0; i < 2; i++)
    if (use[i]) {
      int rc = merge_part(s, pd->data, pd->len, use[i]);
      if (rc) {
        set_error(s, "task %s: %s", pd->key, mpc_strerror(rc));
        return 0;
      }
    }
  uint64_t next = s->chain == ST_QUOTED ? sQ : sR;
  if (next != 2)
    s->chain = (int)next;
  return 0;
}

static int stats_gather(void *state, const mpc_job_result_t *res) {
  stats_state_t *s = state;
  if (!s->total.cols) {
    int rc = stats_part_init(&s->total, &s->cfg);
    if (rc)
      return rc;
  }
  if (res->seq >= s->npend) {
    uint64_t n = s->npend ? s->npend : 64;
    while (n <= res->seq)
      n *= 2;
    pending_t *np = realloc(s->pend, n * sizeof *np);
    if (!np)
      return MPC_ENOMEM;
    memset(np + s->npend, 0, (n - s->npend) * sizeof *np);
    s->pend = np;
    s->npend = n;
  }
  pending_t *pd = &s->pend[res->seq];
  if (pd->have)
    return 0; /* a duplicate (speculative re-run) */
  pd->have = 1;
  pd->ok = res->status == MPC_TASK_OK;
  pd->len = res->output_len;
  pd->data = malloc(pd->len ? pd->len : 1);
  pd->key = strdup(res->key ? res->key : "?");
  if (!pd->data || !pd->key)
    return MPC_ENOMEM;
  if (pd->len)
    memcpy(pd->data, res->output, pd->len);
  if (!pd->ok && pd->len == 0) {
    free(pd->data);
    static const char *const st[] = {"ok", "error", "crashed", "exited",
                                     "timed out", "out of memory", "canceled"};
    unsigned k = (unsigned)res->status;
    pd->data = (unsigned char *)strdup(k < 7 ? st[k] : "failed");
    pd->len = pd->data ? strlen((char *)pd->data) : 0;
  }
  while (s->done < s->npend && s->pend[s->done].have) {
    pending_t *x = &s->pend[s->done];
    if (!s->failed) {
      int rc = consume(s, x);
      if (rc)
        return rc;
    }
    free(x->data);
    x->data = NULL;
    s->done++;
  }
  return 0;
}

/* ---- finish ---------------------------------------------------------------------- */

static void json_str(const char *p) {
  putchar('"');
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void fmt_num(char *b, size_t n, double v) {
  if (isnan(v))
    snprintf(b, n, "NaN");
  else
    snprintf(b, n, "%.17g", v);
}

static int stats_finish(void *state, const mpc_job_report_t *rep) {
  stats_state_t *s = state;
  if (!s->total.cols) {
    int rc = stats_part_init(&s->total, &s->cfg);
    if (rc)
      return rc;
  }
  if (!s->failed && (s->done < s->generated || (rep && rep->interrupted)))
    set_error(s, "%s: %" PRIu64 " of %" PRIu64 " ranges were not processed", s->path,
              s->generated - s->done, s->generated);
  if (s->failed) {
    fprintf(stderr, "stats: %s\n", s->errmsg ? s->errmsg : "failed");
    return MPC_EFORMAT;
  }
  /* the numeric columns, in output order */
  size_t nc = 0;
  const char **names = calloc(s->norder + 1, sizeof *names);
  size_t *idx = calloc(s->norder + 1, sizeof *idx);
  stats_table_t t = {0};
  int rc = MPC_ENOMEM;
  if (!names || !idx)
    goto out;
  for (size_t i = 0; i < s->norder; i++)
    if (!s->total.cols[s->order[i]].nonnum) {
      idx[nc] = s->order[i];
      names[nc++] = s->hdr.names[s->order[i]];
    }
  t.ncols = nc;
  t.names = names;
  for (int r = 0; r < 8; r++)
    if (!(t.val[r] = calloc(nc + 1, sizeof(double))))
      goto out;
  const double qs[3] = {0.25, 0.5, 0.75};
  const double *mapd = NULL;
  if (s->exact && s->spill_len) {
    mapd = mmap(NULL, s->spill_len, PROT_READ, MAP_PRIVATE, s->spill_fd, 0);
    if (mapd == MAP_FAILED) {
      rc = -errno;
      goto out;
    }
  }
  for (size_t j = 0; j < nc; j++) {
    stats_col_t *col = &s->total.cols[idx[j]];
    uint64_t n = stats_moments_count(&col->mom);
    t.val[0][j] = (double)n;
    t.val[1][j] = stats_moments_mean(&col->mom);
    t.val[2][j] = stats_moments_std(&col->mom);
    t.val[3][j] = n ? col->mom.min : NAN;
    t.val[7][j] = n ? col->mom.max : NAN;
    double qv[3];
    if (!s->exact || n == 0) {
      if ((rc = stats_sketch_quantiles(&col->sk, qs, 3, qv)) != 0)
        goto out;
    } else {
      size_t nr = 0;
      const double **runs = malloc((s->nruns + 1) * sizeof *runs);
      uint64_t *lens = malloc((s->nruns + 1) * sizeof *lens);
      if (!runs || !lens) {
        free(runs);
        free(lens);
        rc = MPC_ENOMEM;
        goto out;
      }
      for (size_t k = 0; k < s->nruns; k++)
        if (s->runs[k].col == idx[j]) {
          runs[nr] = mapd + s->runs[k].off / sizeof(double);
          lens[nr++] = s->runs[k].len;
        }
      for (int k = 0; k < 3; k++) {
        double pos = qs[k] * (double)(n - 1), lo = floor(pos);
        uint64_t rl = (uint64_t)lo, rh = rl + 1 < n ? rl + 1 : rl;
        qv[k] = stats_lerp(stats_select_runs(runs, lens, nr, rl),
                           stats_select_runs(runs, lens, nr, rh), pos - lo);
      }
      free(runs);
      free(lens);
    }
    for (int k = 0; k < 3; k++)
      t.val[4 + k][j] = qv[k];
  }
  if (mapd)
    munmap((void *)mapd, s->spill_len);
  rc = 0;
  /* report */
  char b[64];
  if (s->fmt == FMT_JSON) {
    printf("{\"columns\":{");
    for (size_t j = 0; j < nc; j++) {
      printf("%s", j ? "," : "");
      json_str(names[j]);
      printf(":{");
      for (int r = 0; r < 8; r++) {
        double v = t.val[r][j];
        if (isfinite(v))
          snprintf(b, sizeof b, "%.17g", v);
        else
          snprintf(b, sizeof b, "null");
        printf("%s\"%s\":%s", r ? "," : "", stats_row_names[r], b);
      }
      printf("}");
    }
    printf("},\"skipped\":[");
    int first = 1;
    for (size_t i = 0; i < s->norder; i++)
      if (s->total.cols[s->order[i]].nonnum) {
        printf("%s", first ? "" : ",");
        json_str(s->hdr.names[s->order[i]]);
        first = 0;
      }
    printf("],\"rows\":%" PRIu64 ",\"quantiles\":\"%s\",\"rank_error_bound\":{", s->rows,
           s->exact ? "exact" : "sketch");
    for (size_t j = 0; j < nc; j++) {
      stats_col_t *col = &s->total.cols[idx[j]];
      uint64_t n = stats_moments_count(&col->mom);
      printf("%s", j ? "," : "");
      json_str(names[j]);
      printf(":%.6g", s->exact || !n ? 0.0 : (double)col->sk.err / (double)n);
    }
    printf("}}\n");
  } else if (s->fmt == FMT_CSV) {
    for (size_t j = 0; j < nc; j++)
      printf(",%s", names[j]);
    printf("\n");
    for (int r = 0; r < 8; r++) {
      printf("%s", stats_row_names[r]);
      for (size_t j = 0; j < nc; j++) {
        fmt_num(b, sizeof b, t.val[r][j]);
        printf(",%s", b);
      }
      printf("\n");
    }
  } else {
    size_t *w = calloc(nc + 1, sizeof *w);
    if (!w) {
      rc = MPC_ENOMEM;
      goto out;
    }
    for (size_t j = 0; j < nc; j++) {
      w[j] = strlen(names[j]);
      for (int r = 0; r < 8; r++) {
        int l = isnan(t.val[r][j]) ? 3 : snprintf(b, sizeof b, "%.6f", t.val[r][j]);
        if ((size_t)l > w[j])
          w[j] = (size_t)l;
      }
    }
    printf("%-5s", "");
    for (size_t j = 0; j < nc; j++)
      printf("  %*s", (int)w[j], names[j]);
    printf("\n");
    for (int r = 0; r < 8; r++) {
      printf("%-5s", stats_row_names[r]);
      for (size_t j = 0; j < nc; j++) {
        if (isnan(t.val[r][j]))
          snprintf(b, sizeof b, "NaN");
        else
          snprintf(b, sizeof b, "%.6f", t.val[r][j]);
        printf("  %*s", (int)w[j], b);
      }
      printf("\n");
    }
    free(w);
    int first = 1;
    for (size_t i = 0; i < s->norder; i++)
      if (s->total.cols[s->order[i]].nonnum) {
        printf(first ? "skipped (not numeric): %s" : ", %s", s->hdr.names[s->order[i]]);
        first = 0;
      }
    if (!first)
      printf("\n");
    printf("%" PRIu64 " rows; quantiles %s\n", s->rows,
           s->exact ? "exact" : "from a sketch (rank error <= 0.5% of count)");
  }
  if (s->fmt == FMT_CSV) {
    for (size_t i = 0; i < s->norder; i++)
      if (s->total.cols[s->order[i]].nonnum)
        fprintf(stderr, "stats: skipped (not numeric): %s\n", s->hdr.names[s->order[i]]);
  }
  fflush(stdout);
  if (s->out) {
    char err[512] = "";
    rc = s->h5_write(s->out, &t, s->path, s->rows, s->exact, err, sizeof err);
    if (rc)
      fprintf(stderr, "stats: %s\n", err);
  }
out:
  for (int r = 0; r < 8; r++)
    free(t.val[r]);
  free(names);
  free(idx);
  return rc;
}

const mpc_job_t mpc_job_stats = {
    .abi = MPC_JOB_ABI_VERSION,
    .flags = MPC_JOB_IDEMPOTENT | MPC_JOB_JOURNAL_OUTPUT,
    .name = "stats",
    .brief = "describe() for CSV files: count, mean, std, min, quartiles, max per numeric column",
    .usage = "stats FILE.csv [--out stats.h5] [--delimiter C] [--columns a,b,...]\n"
             "      [--format table|csv|json] [--exact] [--tasks N | --chunk-size BYTES]\n"
             "  --exact       exact quantiles (values go to a temporary file on the master)\n"
             "  --tasks N     split the data into N byte ranges (default: 16 MiB each)\n"
             "  --chunk-size  bytes per range (suffix K, M, G)",
    .init = stats_init,
    .next = stats_next,
    .run = stats_run,
    .gather = stats_gather,
    .finish = stats_finish,
    .fini = stats_fini,
};
MPC_JOB_BUILTIN(mpc_job_stats);
