/* Batch sizes and the run summary: the pure parts of the runtime. */
#include "mpi/farm.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

void mpc__msg(mpc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (mpc_buf_vprintf(b, fmt, ap)) {
    /* out of memory: the message is lost, the error code is not */
  }
  va_end(ap);
}

size_t mpc__sched_batch(mpc__sched_t s, uint64_t remaining, size_t want,
                        int rank_workers, int total_workers, size_t max_batch) {
  if (want == 0)
    want = 1;
  if (s != MPC__SCHED_GUIDED)
    return remaining < want ? (size_t)remaining : want;
  if (total_workers < 1)
    total_workers = 1;
  if (rank_workers < 1)
    rank_workers = 1;
  uint64_t g;
  if (remaining == UINT64_MAX) {
    g = max_batch;
  } else {
    uint64_t den = 2ull * (uint64_t)total_workers;
    g = (remaining * (uint64_t)rank_workers + den - 1) / den;
  }
  if (g > max_batch)
    g = max_batch;
  if (g < want)
    g = want;
  if (g > remaining)
    g = remaining;
  return (size_t)g;
}

int mpc__reason_format(mpc_buf_t *b, int status, int code) {
  switch (status) {
  case MPC_TASK_OK: return mpc_buf_printf(b, "ok");
  case MPC_TASK_ERROR: return mpc_buf_printf(b, "error %d", code);
  case MPC_TASK_CRASHED: {
    const char *d = sigabbrev_np(code);
    return d ? mpc_buf_printf(b, "crashed (signal %d, SIG%s)", code, d)
             : mpc_buf_printf(b, "crashed (signal %d)", code);
  }
  case MPC_TASK_EXITED: return mpc_buf_printf(b, "exited (code %d)", code);
  case MPC_TASK_TIMEOUT: return mpc_buf_printf(b, "timeout (killed)");
  case MPC_TASK_OOM: return mpc_buf_printf(b, "out of memory");
  case MPC_TASK_CANCELED: return mpc_buf_printf(b, "canceled");
  default: return mpc_buf_printf(b, "status %d code %d", status, code);
  }
}

int mpc__summary_format(mpc_buf_t *b, const mpc__summary_t *s) {
  const mpc_job_report_t *r = &s->rep;
  double rate = r->wall > 0 ? (double)(r->ok + r->failed - r->resumed) / r->wall : 0;
  int rc = mpc_buf_printf(
      b,
      "mpc-run %s: %llu tasks: %llu ok, %llu failed, %llu retried, %llu "
      "resumed, %llu canceled; %.2f s, %.1f tasks/s\n",
      s->job, (unsigned long long)r->tasks, (unsigned long long)r->ok,
      (unsigned long long)r->failed, (unsigned long long)r->retried,
      (unsigned long long)r->resumed, (unsigned long long)r->canceled, r->wall,
      rate);
  for (int i = 0; !rc && i < s->nranks; i++) {
    const mpc__rank_stat_t *k = &s->ranks[i];
    double busy = r->wall > 0 && k->workers > 0
                      ? 100.0 * k->busy / (r->wall * k->workers)
                      : 0;
    if (busy > 100.0)
      busy = 100.0;
    rc = mpc_buf_printf(b,
                        "  rank %d (%s, %d worker%s): %llu tasks (%llu ok, "
                        "%llu failed), busy %.1f%%",
                        i, k->host ? k->host : "?", k->workers,
                        k->workers == 1 ? "" : "s",
                        (unsigned long long)k->tasks,
                        (unsigned long long)k->ok,
                        (unsigned long long)k->failed, busy);
    if (!rc && k->lost)
      rc = mpc_buf_printf(b, "; LOST: silent for %.1f s, its tasks ran elsewhere",
                          k->silent);
    if (!rc)
      rc = mpc_buf_append(b, "\n", 1);
  }
  if (!rc && s->spec_launched)
    rc = mpc_buf_printf(b, "  stragglers: %llu speculative cop%s started, %llu won\n",
                        (unsigned long long)s->spec_launched,
                        s->spec_launched == 1 ? "y" : "ies",
                        (unsigned long long)s->spec_won);
  if (!rc && r->failed) {
    rc = mpc_buf_printf(b, "  failed tasks:\n");
    for (size_t i = 0; !rc && i < s->nfails_kept; i++) {
      const mpc__fail_item_t *f = &s->fails[i];
      rc = mpc_buf_printf(b, "    %s: ", f->key);
      if (!rc)
        rc = mpc__reason_format(b, f->status, f->code);
      if (!rc)
        rc = mpc_buf_printf(b, " on rank %d (%s) pid %d%s%s\n", f->rank,
                            f->host ? f->host : "?", f->pid,
                            f->msg && *f->msg ? ": " : "",
                            f->msg ? f->msg : "");
    }
    if (!rc && r->failed > s->nfails_kept)
      rc = mpc_buf_printf(b, "    ... and %llu more (see the journal)\n",
                          (unsigned long long)(r->failed - s->nfails_kept));
  }
  if (!rc && s->why)
    rc = mpc_buf_printf(b, "  stopped early: %s\n", s->why);
  return rc;
}

static int json_str(mpc_buf_t *b, const char *s) {
  int rc = mpc_buf_append(b, "\"", 1);
  for (; !rc && s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      rc = mpc_buf_printf(b, "\\%c", c);
    else if (c < 0x20)
      rc = mpc_buf_printf(b, "\\u%04x", c);
    else
      rc = mpc_buf_append(b, s, 1);
  }
  return rc ? rc : mpc_buf_append(b, "\"", 1);
}

int mpc__summary_json(mpc_buf_t *b, const mpc__summary_t *s) {
  const mpc_job_report_t *r = &s->rep;
  int rc = mpc_buf_printf(b, "{\"job\":");
  if (!rc)
    rc = json_str(b, s->job);
  if (!rc)
    rc = mpc_buf_printf(
        b,
        ",\"tasks\":%llu,\"ok\":%llu,\"failed\":%llu,\"retried\":%llu,"
        "\"resumed\":%llu,\"canceled\":%llu,\"wall\":%.6f,"
        "\"tasks_per_second\":%.3f,\"interrupted\":%d,"
        "\"speculative\":{\"started\":%llu,\"won\":%llu}",
        (unsigned long long)r->tasks, (unsigned long long)r->ok,
        (unsigned long long)r->failed, (unsigned long long)r->retried,
        (unsigned long long)r->resumed, (unsigned long long)r->canceled,
        r->wall,
        r->wall > 0 ? (double)(r->ok + r->failed - r->resumed) / r->wall : 0.0,
        r->interrupted, (unsigned long long)s->spec_launched,
        (unsigned long long)s->spec_won);
  if (!rc && s->by_status) {
    rc = mpc_buf_printf(b, ",\"by_status\":{");
    for (int st = MPC_TASK_OK; !rc && st <= MPC_TASK_CANCELED; st++)
      rc = mpc_buf_printf(b, "%s\"%s\":%llu", st ? "," : "",
                          mpc_task_status_name((mpc_task_status_t)st),
                          (unsigned long long)s->by_status[st]);
    if (!rc)
      rc = mpc_buf_append(b, "}", 1);
  }
  if (!rc)
    rc = mpc_buf_printf(b, ",\"ranks\":[");
  for (int i = 0; !rc && i < s->nranks; i++) {
    const mpc__rank_stat_t *k = &s->ranks[i];
    rc = mpc_buf_printf(b, "%s{\"rank\":%d,\"host\":", i ? "," : "", i);
    if (!rc)
      rc = json_str(b, k->host);
    if (!rc)
      rc = mpc_buf_printf(b,
                          ",\"workers\":%d,\"tasks\":%llu,\"ok\":%llu,"
                          "\"failed\":%llu,\"busy_seconds\":%.6f,\"lost\":%s,"
                          "\"per_worker\":[",
                          k->workers, (unsigned long long)k->tasks,
                          (unsigned long long)k->ok,
                          (unsigned long long)k->failed, k->busy,
                          k->lost ? "true" : "false");
    for (int w = 0; !rc && k->wtasks && k->wbusy && w < k->workers; w++)
      rc = mpc_buf_printf(b, "%s{\"worker\":%d,\"tasks\":%llu,\"busy_seconds\":%.6f}",
                          w ? "," : "", w, (unsigned long long)k->wtasks[w], k->wbusy[w]);
    if (!rc)
      rc = mpc_buf_printf(b, "]}");
  }
  if (!rc)
    rc = mpc_buf_printf(b, "],\"failures\":[");
  for (size_t i = 0; !rc && i < s->nfails_kept; i++) {
    const mpc__fail_item_t *f = &s->fails[i];
    rc = mpc_buf_printf(b, "%s{\"key\":", i ? "," : "");
    if (!rc)
      rc = json_str(b, f->key);
    if (!rc)
      rc = mpc_buf_printf(b, ",\"status\":\"%s\",\"code\":%d,\"rank\":%d,\"pid\":%d,\"host\":",
                          mpc_task_status_name((mpc_task_status_t)f->status),
                          f->code, f->rank, f->pid);
    if (!rc)
      rc = json_str(b, f->host);
    if (!rc) {
      mpc_buf_t why = MPC_BUF_INIT;
      rc = mpc__reason_format(&why, f->status, f->code);
      if (!rc)
        rc = mpc_buf_printf(b, ",\"reason\":");
      if (!rc)
        rc = json_str(b, mpc_buf_str(&why));
      mpc_buf_free(&why);
    }
    if (!rc)
      rc = mpc_buf_printf(b, ",\"message\":");
    if (!rc)
      rc = json_str(b, f->msg);
    if (!rc)
      rc = mpc_buf_append(b, "}", 1);
  }
  if (!rc)
    rc = mpc_buf_printf(b, "],\"stopped\":");
  if (!rc)
    rc = s->why ? json_str(b, s->why) : mpc_buf_printf(b, "null");
  if (!rc)
    rc = mpc_buf_printf(b, "}\n");
  return rc;
}
