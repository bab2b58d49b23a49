/* --trace FILE: every attempt as a Chrome trace-event JSON file (the format
 * Perfetto and chrome://tracing open).  Ranks are processes (pid = rank),
 * workers are threads (tid = worker slot); each attempt is a complete ("X")
 * event named by the task's key, with its status as category. */
#include "mpi/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpc/error.h"
#include "mpc/pool.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0)
      lo = 0xa0;
    else if (c == 0xed)
      hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0)
      lo = 0x90;
    else if (c == 0xf4)
      hi = 0x8f;
  } else
    return 0;
  if (n < len)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return len;
}

int mpc__json_str(mpc_buf_t *b, const void *p, size_t n) {
  const unsigned char *s = p;
  int rc = mpc_buf_append(b, "\"", 1);
  size_t i = 0;
  while (!rc && i < n) {
    /* A run of bytes that need no escaping goes in one append. */
    size_t j = i;
    while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
      j++;
    if (j > i) {
      rc = mpc_buf_append(b, s + i, j - i);
      i = j;
      continue;
    }
    unsigned char c = s[i];
    switch (c) {
    case '"': rc = mpc_buf_append(b, "\\\"", 2); i++; continue;
    case '\\': rc = mpc_buf_append(b, "\\\\", 2); i++; continue;
    case '\n': rc = mpc_buf_append(b, "\\n", 2); i++; continue;
    case '\t': rc = mpc_buf_append(b, "\\t", 2); i++; continue;
    case '\r': rc = mpc_buf_append(b, "\\r", 2); i++; continue;
    case '\b': rc = mpc_buf_append(b, "\\b", 2); i++; continue;
    case '\f': rc = mpc_buf_append(b, "\\f", 2); i++; continue;
    default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      rc = mpc_buf_printf(b, "\\u%04x", c);
      i++;
      continue;
    }
    size_t l = utf8_len(s + i, n - i);
    if (l == 0) {
      rc = mpc_buf_append(b, "\\ufffd", 6);
      i++;
    } else {
      rc = mpc_buf_append(b, s + i, l);
      i += l;
    }
  }
  return rc ? rc : mpc_buf_append(b, "\"", 1);
}

static const char *status_name(int st) {
  return mpc_task_status_name((mpc_task_status_t)st);
}

/* With fp, b is written out and emptied whenever it passes 1 MiB (and at the
 * end), so a trace of millions of attempts is never all in memory. */
static int spill(mpc_buf_t *b, FILE *fp, int force) {
  if (!fp || (!force && b->len < (1u << 20)))
    return 0;
  if (b->len && fwrite(b->data, 1, b->len, fp) != b->len)
    return -(errno ? errno : EIO);
  mpc_buf_clear(b);
  return 0;
}

static int trace_emit(mpc_buf_t *b, FILE *fp, const char *job, const mpc__attempt_t *a,
                      size_t n, const mpc__trace_rank_t *ranks, int nranks) {
  int rc = mpc_buf_printf(b, "{\"traceEvents\":[\n");
  int first = 1;
  /* Names: "rank R (host)" for each rank, "worker W" for each worker. */
  for (int r = 0; !rc && r < nranks; r++) {
    char name[160];
    snprintf(name, sizeof name, "rank %d (%s)", r, ranks[r].host ? ranks[r].host : "?");
    rc = mpc_buf_printf(b, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
                        "\"args\":{\"name\":", first ? "" : ",\n", r);
    first = 0;
    if (!rc)
      rc = mpc__json_str(b, name, strlen(name));
    if (!rc)
      rc = mpc_buf_printf(b, "}},\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,"
                          "\"tid\":0,\"args\":{\"sort_index\":%d}}", r, r);
    for (int w = 0; !rc && w < ranks[r].workers; w++)
      rc = mpc_buf_printf(b, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                          "\"args\":{\"name\":\"worker %d\"}}", r, w, w);
  }
  for (size_t i = 0; !rc && i < n; i++) {
    const mpc__attempt_t *e = &a[i];
    double ts = e->start * 1e6, dur = (e->end > e->start ? e->end - e->start : 0) * 1e6;
    rc = mpc_buf_printf(b, "%s{\"name\":", first ? "" : ",\n");
    first = 0;
    if (!rc)
      rc = mpc__json_str(b, e->key, e->key_len);
    if (!rc)
      rc = mpc_buf_printf(b,
                          ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
                          "\"pid\":%d,\"tid\":%d,\"args\":{\"seq\":%llu,\"attempt\":%d,"
                          "\"status\":\"%s\",\"code\":%d,\"worker_pid\":%d,\"host\":",
                          status_name(e->status), ts, dur, e->rank, e->worker,
                          (unsigned long long)e->seq, e->attempt,
                          status_name(e->status), e->code, e->pid);
    if (!rc) {
      const char *h = e->rank >= 0 && e->rank < nranks && ranks[e->rank].host
                          ? ranks[e->rank].host : "";
      rc = mpc__json_str(b, h, strlen(h));
    }
    if (!rc)
      rc = mpc_buf_append(b, "}}", 2);
    if (!rc)
      rc = spill(b, fp, 0);
  }
  if (!rc)
    rc = mpc_buf_printf(b, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"job\":");
  if (!rc)
    rc = mpc__json_str(b, job ? job : "", job ? strlen(job) : 0);
  if (!rc)
    rc = mpc_buf_printf(b, ",\"clock\":\"microseconds since each rank left the start "
                           "barrier (CLOCK_MONOTONIC)\",\"attempts\":%zu}}\n", n);
  return rc ? rc : spill(b, fp, 1);
}

int mpc__trace_json(mpc_buf_t *b, const char *job, const mpc__attempt_t *a,
                    size_t n, const mpc__trace_rank_t *ranks, int nranks) {
  return trace_emit(b, NULL, job, a, n, ranks, nranks);
}

typedef struct trace_ctx {
  const char *job;
  const mpc__attempt_t *a;
  size_t n;
  const mpc__trace_rank_t *ranks;
  int nranks;
} trace_ctx_t;

static int trace_to_file(FILE *fp, void *ctx) {
  trace_ctx_t *c = ctx;
  mpc_buf_t b = MPC_BUF_INIT;
  int rc = trace_emit(&b, fp, c->job, c->a, c->n, c->ranks, c->nranks);
  mpc_buf_free(&b);
  return rc;
}

int mpc__trace_write(const char *path, const char *job, const mpc__attempt_t *a,
                     size_t n, const mpc__trace_rank_t *ranks, int nranks) {
  trace_ctx_t c = {job, a, n, ranks, nranks};
  return mpc__write_file(path, trace_to_file, &c);
}

/* "path.tmp.PID": the temporary name beside path (malloc'd, NULL: no memory). */
static char *tmp_name(const char *path) {
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (tmp)
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  return tmp;
}

int mpc__write_file(const char *path, int (*emit)(FILE *fp, void *ctx), void *ctx) {
  char *tmp = tmp_name(path);
  if (!tmp)
    return MPC_ENOMEM;
  int rc = 0;
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    rc = -errno;
  } else {
    rc = emit(fp, ctx);
    if (fclose(fp) != 0 && !rc)
      rc = -errno;
    if (!rc && rename(tmp, path) != 0)
      rc = -errno;
    if (rc)
      unlink(tmp);
  }
  free(tmp);
  return rc;
}

int mpc__probe_writable(const char *path) {
  char *tmp = tmp_name(path);
  if (!tmp)
    return MPC_ENOMEM;
  int rc = 0;
  FILE *fp = fopen(tmp, "w");
  if (!fp) {
    rc = -errno;
  } else {
    fclose(fp);
    unlink(tmp);
  }
  free(tmp);
  return rc;
}

typedef struct bytes {
  const void *p;
  size_t n;
} bytes_t;

static int bytes_to_file(FILE *fp, void *ctx) {
  const bytes_t *b = ctx;
  return b->n && fwrite(b->p, 1, b->n, fp) != b->n ? -(errno ? errno : EIO) : 0;
}

int mpc__write_atomic(const char *path, const void *data, size_t len) {
  bytes_t b = {data, len};
  return mpc__write_file(path, bytes_to_file, &b);
}
