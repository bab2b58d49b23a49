/* The pool's parent side: dispatch, collection, failure accounting.
 *
 * Work moves in units: a run of tasks sent as one record.  Map calls over an
 * array keep a single pending unit covering the rest of the array and cut
 * chunks off its front, so a million tasks never become a million
 * allocations.  Each worker has a FIFO of units it was sent; it answers in
 * order, so the parent always knows which task a worker is on, and when a
 * worker dies the task it was running is the culprit and everything behind it
 * goes back to the front of the pending queue untouched.
 *
 * See docs/pool.md for the transport and where the time goes. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool/batch.h"
#include "pool/internal.h"
#include "pool/progress.h"

#define TASK_RING (1u << 20)
#define RES_RING (1u << 20)
#define SHM_HDR 4096u
#define GEN_WINDOW 16384u    /* in-flight tasks of a streaming map */
#define TARGET_QUEUE_NS 2e6  /* work queued ahead per worker */
#define TARGET_CHUNK_NS 2e5  /* automatic chunks last about this long */
#define MAX_CHUNK 4096u

enum { U_ARRAY = 1, U_OWNED = 2 };
enum { S_MAP = 1, S_FUTURE = 2, S_CALLER = 3 };
enum { WS_EMPTY = 0, WS_STARTING, WS_LIVE, WS_RETIRING };
enum { KR_NONE = 0, KR_TIMEOUT, KR_CANCEL, KR_STOP };

typedef struct unit {
  struct unit *next;
  uint64_t did;
  uint64_t first; /* U_ARRAY: index of entry 0 */
  uint32_t count, done;
  uint16_t kind, sink;
  int attempts;
  int canceled;
  unsigned char *cbits; /* entries canceled one by one (bit i: entry i), or NULL */
  unsigned char *blob; /* U_OWNED: wire payload (UNIT_HDR + entries) */
  size_t blob_len;
  size_t blob_skip; /* bytes cut off the front of the allocation (it starts
                       at blob - blob_skip) */
  size_t blob_off; /* U_OWNED: offset of the next entry to run */
  size_t esize;    /* U_OWNED: the size of every entry (header and padded
                      input) when all are the same, else 0: units are cut
                      without a walk over their entries */
  mpc_future_t *fut;
} unit_t;

struct mpc_future {
  mpc_pool_t *pool;
  int done;
  int orphan; /* freed by the user before it finished */
  mpc_result_t r;
  mpc_buf_t data;
};

typedef struct worker {
  int state;
  pid_t pid;
  uint64_t gen;
  int sock;
  int sock_closed;
  void *map;
  size_t map_len;
  wshm_t *shm;
  ring_t *tr, *rr;
  unit_t *fifo, *fifo_tail;
  size_t queued;    /* tasks sent and not answered */
  long sent_total;  /* tasks sent over its life (max_tasks_per_worker) */
  int retire_sent;
  mpc_buf_t outbox; /* a unit too large for one record, being streamed */
  size_t out_off;
  mpc_buf_t rasm;   /* a result too large for one record, being collected */
  int kill_reason;
  uint64_t kill_cur;
} worker_t;

#define MANY_MAX 256 /* results per mpc_pool_poll_many() call at most */

typedef struct parked {
  struct parked *next;
  mpc_result_t r;
  unsigned char data[];
} parked_t;

struct mpc_pool {
  mpc_pool_opts_t o;
  worker_cfg_t cfg;
  pid_t zpid;
  int zctl;
  int nw;
  worker_t *w;
  int started, stopped;
  int fatal;
  uint64_t next_did, next_gen;
  unit_t *pend, *pend_tail;
  size_t pend_tasks;
  size_t inflight; /* tasks accepted and not yet delivered */
  int cancel_queued; /* a canceled task waits on a worker: check_canceled() */
  size_t caller_pending;
  parked_t *parked, *parked_tail;
  double avg_ns; /* moving average of task run time */
  int init_fail_streak;
  /* The array a map call is working on. */
  const mpc_slice_t *arr;
  const unsigned char *arr_base;
  size_t arr_item;
  /* Delivery for S_MAP and S_CALLER units. */
  mpc_result_cb map_cb, caller_cb;
  void *map_ctx, *caller_ctx;
  /* Set with caller_cb by mpc_pool_poll_many(): successes of a worker's
   * batch of small results go to it in arrays. */
  mpc_results_cb caller_many;
  /* The arrays handed to caller_many; entries [0, many_init) hold many_tmpl's
   * fields that are the same for a whole batch (status, worker, pid...). */
  mpc_result_t many[MANY_MAX];
  size_t many_init;
  mpc_result_t many_tmpl;
  int cb_stop;
  mpc_progress_bar_t bar;
};

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

static double now_s(void) { return (double)mpc__now_ns() * 1e-9; }

const char *mpc_task_status_name(mpc_task_status_t st) {
  static const char *n[] = {"ok",      "error", "crashed", "exited",
                            "timeout", "oom",   "canceled"};
  return (unsigned)st < sizeof n / sizeof *n ? n[st] : "unknown";
}

int mpc_task_fail(mpc_buf_t *out, int code, const char *fmt, ...) {
  out->len = 0;
  va_list ap;
  va_start(ap, fmt);
  if (mpc_buf_vprintf(out, fmt, ap) != 0)
    out->len = 0;
  va_end(ap);
  return code ? code : 1;
}

int mpc_cpu_count(void) {
  const char *s = getenv("SLURM_CPUS_PER_TASK");
  if (s && atoi(s) > 0)
    return atoi(s);
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* ---- units ---------------------------------------------------------------- */

static unit_t *unit_new(int kind, int sink) {
  unit_t *u = calloc(1, sizeof *u);
  if (u) {
    u->attempts = 1; /* the run it is about to get */
    u->kind = (uint16_t)kind;
    u->sink = (uint16_t)sink;
  }
  return u;
}

static void unit_free(unit_t *u) {
  if (!u)
    return;
  if (u->blob)
    free(u->blob - u->blob_skip);
  free(u->cbits);
  free(u);
}

/* Entry i of u was canceled (all of u, or that entry alone). */
static int entry_canceled(const unit_t *u, uint32_t i) {
  return u->canceled || (u->cbits && (u->cbits[i >> 3] >> (i & 7) & 1));
}

static int cancel_entry(unit_t *u, uint32_t i) {
  if (!u->cbits && !(u->cbits = calloc((u->count + 7) / 8, 1)))
    return MPC_ENOMEM;
  u->cbits[i >> 3] |= (unsigned char)(1u << (i & 7));
  return 0;
}

/* The cancel bits of entries [from, from+n) of u, renumbered from 0: a new
 * bitmap, or NULL when none is set (or memory ran out: the cancel is lost,
 * the task runs and reports its real outcome). */
static unsigned char *cbits_slice(const unit_t *u, uint32_t from, uint32_t n) {
  if (!u->cbits)
    return NULL;
  unsigned char *b = NULL;
  for (uint32_t i = 0; i < n; i++)
    if (u->cbits[(from + i) >> 3] >> ((from + i) & 7) & 1) {
      if (!b && !(b = calloc((n + 7) / 8, 1)))
        return NULL;
      b[i >> 3] |= (unsigned char)(1u << (i & 7));
    }
  return b;
}

/* The owned-unit entry at blob + off: its id in *id; returns where the next
 * entry starts. */
static inline size_t ent_next(const unsigned char *blob, size_t off, uint64_t *id) {
  uint64_t l;
  memcpy(id, blob + off, 8);
  memcpy(&l, blob + off + 8, 8);
  return off + ENTRY_HDR + PAD8(l);
}

static void entry_get(const mpc_pool_t *p, const unit_t *u, uint32_t i,
                      size_t *blob_off, uint64_t *id, const void **in,
                      size_t *len) {
  if (u->kind == U_ARRAY) {
    uint64_t k = u->first + i;
    *id = k;
    if (p->arr) {
      *in = p->arr[k].data;
      *len = p->arr[k].len;
    } else {
      *in = p->arr_base + k * p->arr_item;
      *len = p->arr_item;
    }
    return;
  }
  uint64_t l;
  memcpy(id, u->blob + *blob_off, 8);
  memcpy(&l, u->blob + *blob_off + 8, 8);
  *in = u->blob + *blob_off + ENTRY_HDR;
  *len = (size_t)l;
  *blob_off += ENTRY_HDR + PAD8(l);
}

/* A new unit of u's entries [from, from + n) (same sink, future); for an
 * owned unit they are the bytes u->blob[start, end), copied under a header
 * of their own. */
static unit_t *unit_part(unit_t *u, uint32_t from, uint32_t n, size_t start, size_t end) {
  unit_t *v = unit_new(u->kind, u->sink);
  if (!v)
    return NULL;
  v->count = n;
  v->attempts = u->attempts;
  v->fut = u->fut;
  v->canceled = u->canceled;
  v->cbits = cbits_slice(u, from, n);
  if (u->kind == U_ARRAY) {
    v->first = u->first + from;
    return v;
  }
  v->esize = u->esize;
  v->blob_len = UNIT_HDR + (end - start);
  v->blob = malloc(v->blob_len);
  if (!v->blob) {
    unit_free(v);
    return NULL;
  }
  uint32_t hdr[2] = {n, 0};
  memcpy(v->blob, hdr, UNIT_HDR);
  memcpy(v->blob + UNIT_HDR, u->blob + start, end - start);
  v->blob_off = UNIT_HDR;
  return v;
}

static unit_t *unit_slice(const mpc_pool_t *p, unit_t *u, uint32_t from,
                          uint32_t n) {
  size_t off = UNIT_HDR, start = 0;
  if (u->kind == U_OWNED && u->esize)
    return unit_part(u, from, n, UNIT_HDR + from * u->esize,
                     UNIT_HDR + (size_t)(from + n) * u->esize);
  if (u->kind == U_OWNED)
    for (uint32_t i = 0; i < from + n; i++) {
      uint64_t id;
      if (i == from)
        start = off;
      off = ent_next(u->blob, off, &id);
    }
  return unit_part(u, from, n, start, off);
}

static void pend_push_back(mpc_pool_t *p, unit_t *u) {
  u->next = NULL;
  if (p->pend_tail)
    p->pend_tail->next = u;
  else
    p->pend = u;
  p->pend_tail = u;
  p->pend_tasks += u->count;
}

static void pend_push_front(mpc_pool_t *p, unit_t *u) {
  u->next = p->pend;
  p->pend = u;
  if (!p->pend_tail)
    p->pend_tail = u;
  p->pend_tasks += u->count;
}

static unit_t *pend_pop(mpc_pool_t *p) {
  unit_t *u = p->pend;
  if (u) {
    p->pend = u->next;
    if (!p->pend)
      p->pend_tail = NULL;
    p->pend_tasks -= u->count;
    u->next = NULL;
  }
  return u;
}

/* ---- delivery -------------------------------------------------------------- */

static void future_store(mpc_future_t *f, const mpc_result_t *r) {
  if (f->orphan) {
    mpc_buf_free(&f->data);
    free(f);
    return;
  }
  f->r = *r;
  if (mpc_buf_set(&f->data, r->data, r->len) != 0)
    f->r.len = 0;
  f->r.data = f->data.data;
  f->done = 1;
}

static void deliver(mpc_pool_t *p, const unit_t *u, mpc_result_t *r) {
  p->inflight--;
  mpc_progress_tick(&p->bar, r->status != MPC_TASK_OK);
  if (u->canceled && r->status == MPC_TASK_OK) {
    r->status = MPC_TASK_CANCELED;
    r->len = 0;
  }
  switch (u->sink) {
  case S_FUTURE:
    future_store(u->fut, r);
    return;
  case S_MAP:
    if (p->map_cb && !p->cb_stop && p->map_cb(p->map_ctx, r) != 0)
      p->cb_stop = 1;
    return;
  default:
    p->caller_pending--;
    if (p->caller_cb) {
      if (p->caller_cb(p->caller_ctx, r) != 0)
        p->cb_stop = 1;
      return;
    }
    parked_t *k = malloc(sizeof *k + r->len);
    if (!k) { /* cannot keep it: say so rather than lose it quietly */
      p->fatal = MPC_ENOMEM;
      return;
    }
    k->r = *r;
    k->next = NULL;
    if (r->len)
      memcpy(k->data, r->data, r->len);
    k->r.data = k->data;
    if (p->parked_tail)
      p->parked_tail->next = k;
    else
      p->parked = k;
    p->parked_tail = k;
  }
}

/* Outcome for entries [from, count) of u that will never run, but for entry
 * `cut` (-1: none), which w (in `slot`) was running when it was killed. */
static void deliver_canceled_ex(mpc_pool_t *p, unit_t *u, uint32_t from, long cut,
                                int slot, const worker_t *w) {
  size_t off = u->blob_off;
  if (u->kind == U_OWNED) { /* blob_off points at entry u->done */
    for (uint32_t i = u->done; i < from; i++) {
      uint64_t id;
      const void *in;
      size_t len;
      entry_get(p, u, i, &off, &id, &in, &len);
    }
  }
  for (uint32_t i = from; i < u->count; i++) {
    uint64_t id;
    const void *in;
    size_t len;
    entry_get(p, u, i, &off, &id, &in, &len);
    mpc_result_t r = {.id = id, .status = MPC_TASK_CANCELED,
                      .attempts = u->attempts - 1, .worker = -1};
    if ((long)i == cut && w && w->pid > 0) {
      static const char msg[] = "canceled while running";
      r.attempts = u->attempts;
      r.worker = slot;
      r.pid = w->pid;
      r.start = (double)atomic_load(&w->shm->cur_start_ns) * 1e-9;
      r.end = now_s();
      r.data = msg;
      r.len = sizeof msg - 1;
    }
    deliver(p, u, &r);
  }
}

static void deliver_canceled(mpc_pool_t *p, unit_t *u, uint32_t from) {
  deliver_canceled_ex(p, u, from, -1, -1, NULL);
}

/* ---- workers ---------------------------------------------------------------- */

static void doorbell(int sock) {
  char c = 1;
  ssize_t n = send(sock, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
}

static void wake_worker(worker_t *w) {
  if (atomic_load_explicit(&w->shm->worker_sleeping, memory_order_seq_cst) &&
      atomic_exchange(&w->shm->worker_sleeping, 0))
    doorbell(w->sock);
}

static int worker_spawn(mpc_pool_t *p, int slot) {
  worker_t *w = &p->w[slot];
  memset(w, 0, sizeof *w);
  w->sock = -1;
  int memfd = -1, sv[2] = {-1, -1}, rc;
  size_t len = SHM_HDR + sizeof(ring_t) + TASK_RING + sizeof(ring_t) + RES_RING;
  memfd = memfd_create("mpc-worker", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, (off_t)len) < 0) {
    rc = -errno;
    goto fail;
  }
  w->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (w->map == MAP_FAILED) {
    w->map = NULL;
    rc = -errno;
    goto fail;
  }
  w->map_len = len;
  w->shm = w->map;
  w->shm->task_off = SHM_HDR;
  w->shm->res_off = SHM_HDR + sizeof(ring_t) + TASK_RING;
  w->tr = (ring_t *)((char *)w->map + w->shm->task_off);
  w->rr = (ring_t *)((char *)w->map + w->shm->res_off);
  ring_init(w->tr, TASK_RING);
  ring_init(w->rr, RES_RING);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    rc = -errno;
    goto fail;
  }
  w->gen = ++p->next_gen;
  rc = mpc__zygote_spawn(p->zctl, slot, w->gen, memfd, sv[1]);
  if (rc)
    goto fail;
  close(memfd);
  close(sv[1]);
  w->sock = sv[0];
  w->state = WS_STARTING;
  return 0;
fail:
  if (memfd >= 0)
    close(memfd);
  if (sv[0] >= 0)
    close(sv[0]);
  if (sv[1] >= 0)
    close(sv[1]);
  if (w->map)
    munmap(w->map, len);
  memset(w, 0, sizeof *w);
  w->sock = -1;
  return rc;
}

static void worker_release(worker_t *w) {
  if (w->sock >= 0)
    close(w->sock);
  if (w->map)
    munmap(w->map, w->map_len);
  mpc_buf_free(&w->outbox);
  mpc_buf_free(&w->rasm);
  memset(w, 0, sizeof *w);
  w->sock = -1;
  w->state = WS_EMPTY;
}

static void worker_kill(worker_t *w, int reason) {
  if (w->state == WS_EMPTY)
    return;
  if (!w->kill_reason) {
    w->kill_reason = reason;
    w->kill_cur = atomic_load(&w->shm->cur);
  }
  int32_t pg = atomic_load(&w->shm->child_pgid);
  if (pg > 0)
    kill(-pg, SIGKILL);
  if (w->pid > 0)
    kill(w->pid, SIGKILL);
}

/* ---- collecting results ------------------------------------------------------ */

static void account_time(mpc_pool_t *p, uint64_t ns) {
  double x = (double)ns;
  p->avg_ns = p->avg_ns == 0 ? x : p->avg_ns * 0.9 + x * 0.1;
}

static void fifo_pop(worker_t *w) {
  unit_t *u = w->fifo;
  w->fifo = u->next;
  if (!w->fifo)
    w->fifo_tail = NULL;
  unit_free(u);
}

static int retryable(const mpc_pool_t *p, mpc_task_status_t st, int attempts) {
  if (attempts > p->o.retries) /* attempts made so far, this one included */
    return 0;
  return st == MPC_TASK_CRASHED || st == MPC_TASK_EXITED ||
         st == MPC_TASK_TIMEOUT || st == MPC_TASK_OOM ||
         (st == MPC_TASK_ERROR && p->o.retry_errors);
}

/* Put entry `i` of u (blob offset *off) back to be tried again. */
static void requeue_one(mpc_pool_t *p, unit_t *u, uint32_t i) {
  unit_t *v = unit_slice(p, u, i, 1);
  if (!v) {
    p->fatal = MPC_ENOMEM;
    return;
  }
  v->attempts = u->attempts + 1;
  pend_push_front(p, v);
}

/* Entry u->done of w's head unit is reported: the next one, or the unit is
 * done with. */
static void entry_done(worker_t *w, unit_t *u) {
  u->done++;
  w->queued--;
  if (u->done == u->count)
    fifo_pop(w);
}

/* The id of entry u->done, the next to report (the blob offset moves on). */
static uint64_t next_result_id(unit_t *u) {
  if (u->kind != U_OWNED)
    return u->first + u->done;
  uint64_t id;
  u->blob_off = ent_next(u->blob, u->blob_off, &id);
  return id;
}

/* Entry u->done of w's head unit u finished with `code` and output data. */
static int finish_entry(mpc_pool_t *p, int slot, worker_t *w, unit_t *u,
                        int code, const void *data, size_t len,
                        uint64_t start_ns, uint64_t end_ns, pid_t pid,
                        long maxrss) {
  mpc_result_t r = {
      .id = next_result_id(u),
      .status = !code ? MPC_TASK_OK
                      : (code == MPC_ENOMEM || code == -ENOMEM) && p->o.mem_limit
                          ? MPC_TASK_OOM
                                                             : MPC_TASK_ERROR,
      .code = code,
      .data = data,
      .len = len,
      .attempts = u->attempts,
      .worker = slot,
      .pid = pid,
      .start = (double)start_ns * 1e-9,
      .end = (double)end_ns * 1e-9,
      .maxrss_kb = maxrss,
  };
  int canceled = entry_canceled(u, u->done);
  if (canceled && r.status == MPC_TASK_OK) {
    r.status = MPC_TASK_CANCELED;
    r.len = 0;
  }
  if (code && !canceled && retryable(p, r.status, u->attempts)) {
    unit_t *v = unit_slice(p, u, u->done, 1);
    if (!v)
      return MPC_ENOMEM;
    v->attempts = u->attempts + 1;
    pend_push_front(p, v);
  } else {
    deliver(p, u, &r);
  }
  entry_done(w, u);
  return 1;
}

/* Successes of a batch gathered by handle_result(), handed to the polling
 * caller: in one call with mpc_pool_poll_many(), else one by one. */
static void deliver_many(mpc_pool_t *p, mpc_result_t *r, size_t *n) {
  size_t k = *n;
  if (!k)
    return;
  *n = 0;
  p->inflight -= k;
  p->caller_pending -= k;
  p->bar.done += k;
  if (p->caller_many) {
    if (p->caller_many(p->caller_ctx, r, k) != 0)
      p->cb_stop = 1;
    return;
  }
  for (size_t i = 0; i < k; i++)
    if (p->caller_cb(p->caller_ctx, &r[i]) != 0)
      p->cb_stop = 1;
}

/* handle_result()'s fast path: entries of w's head unit u done up to
 * `done`, its blob read up to `boff` (as entry_done() and next_result_id()
 * leave them).  Returns 1 if that was the unit's last entry (it is freed). */
static int batch_sync(worker_t *w, unit_t *u, uint32_t done, size_t boff) {
  w->queued -= done - u->done;
  u->done = done;
  u->blob_off = boff;
  if (done == u->count) {
    fifo_pop(w);
    return 1;
  }
  return 0;
}

static int handle_result(mpc_pool_t *p, int slot, worker_t *w, uint32_t type,
                         uint64_t did, const unsigned char *payload,
                         size_t len) {
  unit_t *u = w->fifo;
  if (!u || u->did != did)
    return MPC_EPROTO;
  pid_t pid = w->pid ? w->pid : (pid_t)atomic_load(&w->shm->pid);
  long rss = (long)atomic_load_explicit(&w->shm->maxrss_kb,
                                        memory_order_relaxed);
  if (RING_TYPE(type) == R_BATCH) {
    batch_hdr_t h;
    if (len < sizeof h)
      return MPC_EPROTO;
    memcpy(&h, payload, sizeof h);
    if (h.first != u->done || h.n > u->count - u->done)
      return MPC_EPROTO;
    size_t off = sizeof h;
    uint64_t t = h.start_ns;
    /* Fixed for the whole record: its worker, the sink.  (Cancels are
     * looked at per entry: a callback may cancel a task of this unit.) */
    int fast = u->sink == S_CALLER && p->caller_cb;
    if (fast && (p->many_tmpl.worker != slot || p->many_tmpl.pid != pid ||
                 p->many_tmpl.attempts != u->attempts || p->many_tmpl.maxrss_kb != rss)) {
      p->many_tmpl = (mpc_result_t){.status = MPC_TASK_OK, .attempts = u->attempts,
                                    .worker = slot, .pid = pid, .maxrss_kb = rss};
      p->many_init = 0;
    }
    mpc_result_t *many = p->many;
    size_t nmany = 0;
    /* Entry k starts where k-1 ended: each time is converted once.  (Clock
     * readings fit an int64_t, which converts to double faster.) */
    double tprev = (double)(int64_t)t * 1e-9;
    /* The fast path keeps the unit's progress (entries done, blob offset)
     * in locals and writes it back (sync) before anything that may look at
     * the unit: a delivery, whose callbacks may cancel tasks, and the
     * general path.  Cancels can only come from callbacks, so whether the
     * unit is clean of them is looked at again after each delivery. */
    uint32_t done = u->done;
    size_t boff = u->blob_off;
    const int owned = u->kind == U_OWNED, in_arrays = p->caller_many != NULL;
    int clean = fast && !u->canceled && !u->cbits;
    for (uint32_t k = 0; k < h.n; k++) {
      batch_ent_t e;
      if (off + sizeof e > len)
        goto proto;
      memcpy(&e, payload + off, sizeof e);
      off += sizeof e;
      if (off + e.len > len)
        goto proto;
      double tend = (double)(int64_t)e.end_ns * 1e-9;
      if (e.code == 0 && clean) {
        /* Most results of a submitted batch: a success handed straight to
         * the polling caller (what finish_entry() and deliver() do then,
         * without their tests); with mpc_pool_poll_many(), in arrays. */
        mpc_result_t *r = &many[nmany];
        if (nmany >= p->many_init) {
          *r = p->many_tmpl;
          p->many_init = nmany + 1;
        }
        if (owned) { /* the id of entry `done` (next_result_id()) */
          uint64_t id;
          boff = ent_next(u->blob, boff, &id);
          r->id = id;
        } else {
          r->id = u->first + done;
        }
        done++;
        r->data = payload + off;
        r->len = e.len;
        r->start = tprev;
        r->end = tend;
        if (++nmany == MANY_MAX || !in_arrays) {
          int popped = batch_sync(w, u, done, boff);
          deliver_many(p, many, &nmany);
          if (popped)
            u = NULL; /* (its last entry: the loop ends here) */
          else
            clean = fast && !u->canceled && !u->cbits;
        }
      } else {
        if (batch_sync(w, u, done, boff)) { /* (cannot be: this entry is left) */
          u = NULL;
          goto proto;
        }
        deliver_many(p, many, &nmany);
        int last = done + 1 == u->count;
        int rc = finish_entry(p, slot, w, u, e.code, payload + off, e.len, t,
                              e.end_ns, pid, rss);
        if (rc < 0)
          return rc;
        /* finish_entry() counted it done, and freed the unit with its last */
        if (last) {
          u = NULL;
        } else {
          done = u->done;
          boff = u->blob_off;
          clean = fast && !u->canceled && !u->cbits;
        }
      }
      off += PAD8(e.len);
      t = e.end_ns;
      tprev = tend;
    }
    if (u)
      batch_sync(w, u, done, boff);
    deliver_many(p, many, &nmany);
    if (h.n) /* one sample per batch: the mean task time */
      account_time(p, (t - h.start_ns) / h.n);
    return (int)h.n;
  proto: /* (what the fast path took is written back first) */
    if (u)
      batch_sync(w, u, done, boff);
    deliver_many(p, many, &nmany);
    return MPC_EPROTO;
  }
  res_hdr_t h;
  if (len < sizeof h)
    return MPC_EPROTO;
  memcpy(&h, payload, sizeof h);
  if (h.idx != u->done)
    return MPC_EPROTO;
  account_time(p, h.end_ns - h.start_ns);
  return finish_entry(p, slot, w, u, h.code, payload + sizeof h,
                      len - sizeof h, h.start_ns, h.end_ns, pid, rss);
}

/* Drain w's result ring; returns results handled or a negative error. */
static int collect(mpc_pool_t *p, int slot) {
  worker_t *w = &p->w[slot];
  if (w->state == WS_EMPTY)
    return 0;
  int n = 0, moved = 0;
  ring_rec_t *rec;
  uint64_t pos;
  while ((rec = ring_peek(w->rr, &pos))) {
    int rc;
    moved = 1;
    if ((rec->type & RING_MORE) || w->rasm.len) {
      if (mpc_buf_append(&w->rasm, rec + 1, rec->len) != 0)
        return MPC_ENOMEM;
      uint32_t type = rec->type;
      uint64_t did = rec->id;
      ring_release(w->rr, pos, rec);
      if (type & RING_MORE)
        continue;
      rc = handle_result(p, slot, w, type, did, w->rasm.data, w->rasm.len);
      mpc_buf_free(&w->rasm);
    } else {
      rc = handle_result(p, slot, w, rec->type, rec->id,
                         (const unsigned char *)(rec + 1), rec->len);
      ring_release(w->rr, pos, rec);
    }
    if (rc < 0)
      return rc;
    n += rc;
  }
  if (moved)
    wake_worker(w); /* it may be waiting for room in the result ring */
  return n;
}

/* ---- worker exits ------------------------------------------------------------- */

/* Index in w's head unit of the entry `cur` says is running, or -1.  It can
 * be past u->done: results of small tasks are batched before publication. */
static long running_idx(const worker_t *w, uint64_t cur) {
  const unit_t *u = w->fifo;
  if (!u || cur == 0 || ((cur - 1) >> 24) != u->did)
    return -1;
  uint32_t idx = (uint32_t)((cur - 1) & 0xffffff);
  return idx >= u->done && idx < u->count ? (long)idx : -1;
}

/* A worker is gone (exit status `st`).  Collect what it published, decide the
 * fate of the task it was running, requeue everything behind it, replace it. */
static int worker_gone(mpc_pool_t *p, int slot, int st, long maxrss) {
  worker_t *w = &p->w[slot];
  int rc = collect(p, slot);
  if (rc < 0)
    return rc;
  int was_ready = (int)atomic_load(&w->shm->ready);
  uint64_t cur = w->kill_reason ? w->kill_cur : atomic_load(&w->shm->cur);
  int32_t pg = atomic_load(&w->shm->child_pgid);
  if (pg > 0)
    kill(-pg, SIGKILL); /* a task's own process group dies with its worker */
  unit_t *u = w->fifo;
  unit_t *rest = NULL, **rest_tail = &rest;
  if (!was_ready && WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_INIT) {
    if (++p->init_fail_streak >= 3 * (p->nw > 0 ? p->nw : 1))
      p->fatal = MPC_ECHILD;
  } else if (was_ready) {
    p->init_fail_streak = 0;
  }
  long ri = running_idx(w, cur);
  if (u && ri > (long)u->done) {
    /* Entries before the culprit finished but their batched results were
     * lost with the worker: they run again. */
    unit_t *pre = unit_slice(p, u, u->done, (uint32_t)(ri - u->done));
    if (!pre)
      return p->fatal = MPC_ENOMEM;
    *rest_tail = pre;
    rest_tail = &pre->next;
    u->done = (uint32_t)ri;
  }
  if (ri >= 0) {
    /* The entry at the head was running: it is the culprit. */
    mpc_task_status_t status;
    int code;
    if (w->kill_reason == KR_TIMEOUT) {
      status = MPC_TASK_TIMEOUT;
      code = 0;
    } else if (w->kill_reason == KR_CANCEL || w->kill_reason == KR_STOP ||
               entry_canceled(u, u->done)) {
      status = MPC_TASK_CANCELED;
      code = 0;
    } else if (WIFSIGNALED(st)) {
      status = MPC_TASK_CRASHED;
      code = WTERMSIG(st);
      /* Died near the limit, or after an allocation failed (the worker's
       * fault handler saw errno ENOMEM): out of memory. */
      if (p->o.mem_limit && (atomic_load(&w->shm->oom_hint) ||
                             (size_t)maxrss * 1024 * 10 >= p->o.mem_limit * 9))
        status = MPC_TASK_OOM;
    } else {
      status = MPC_TASK_EXITED;
      code = WEXITSTATUS(st);
    }
    size_t off = UNIT_HDR;
    uint64_t id = 0;
    const void *in;
    size_t len;
    for (uint32_t i = 0; i <= u->done; i++)
      entry_get(p, u, i, &off, &id, &in, &len);
    if (retryable(p, status, u->attempts) && !entry_canceled(u, u->done)) {
      requeue_one(p, u, u->done);
    } else {
      char msg[160];
      int mlen = 0;
      if (status == MPC_TASK_CRASHED)
        mlen = snprintf(msg, sizeof msg, "worker killed by signal %d (%s)%s",
                        code, strsignal(code),
                        WCOREDUMP(st) ? ", core dumped" : "");
      else if (status == MPC_TASK_EXITED)
        mlen = snprintf(msg, sizeof msg, "worker exited with code %d", code);
      else if (status == MPC_TASK_TIMEOUT)
        mlen = snprintf(msg, sizeof msg, "timed out after %.3g s",
                        p->o.timeout);
      else if (status == MPC_TASK_OOM)
        mlen = snprintf(msg, sizeof msg,
                        "out of memory (limit %zu bytes, peak rss %ld KiB)",
                        p->o.mem_limit, maxrss);
      else
        mlen = snprintf(msg, sizeof msg, "canceled");
      uint64_t start_ns = atomic_load(&w->shm->cur_start_ns);
      mpc_result_t r = {.id = id,
                        .status = status,
                        .code = code,
                        .data = msg,
                        .len = mlen > 0 ? (size_t)mlen : 0,
                        .attempts = u->attempts,
                        .worker = slot,
                        .pid = w->pid,
                        .start = (double)start_ns * 1e-9,
                        .end = now_s(),
                        .maxrss_kb = maxrss};
      deliver(p, u, &r);
    }
    u->done++;
    w->queued--;
  }
  /* Everything not run goes back, in order, ahead of other pending work. */
  while (w->fifo) {
    u = w->fifo;
    w->fifo = u->next;
    if (u->done < u->count) {
      unit_t *v = unit_slice(p, u, u->done, u->count - u->done);
      if (!v) {
        p->fatal = MPC_ENOMEM;
        unit_free(u);
        continue;
      }
      *rest_tail = v;
      rest_tail = &v->next;
    }
    unit_free(u);
  }
  w->fifo_tail = NULL;
  if (rest) {
    unit_t *last = rest;
    size_t n = 0;
    for (unit_t *v = rest; v; v = v->next) {
      n += v->count;
      last = v;
    }
    last->next = p->pend;
    if (!p->pend)
      p->pend_tail = last;
    p->pend = rest;
    p->pend_tasks += n;
  }
  worker_release(w);
  if (!p->stopped && !p->fatal) {
    rc = worker_spawn(p, slot);
    if (rc < 0)
      p->fatal = rc;
  }
  return 0;
}

static int find_worker(mpc_pool_t *p, pid_t pid) {
  for (int i = 0; i < p->nw; i++)
    if (p->w[i].state != WS_EMPTY && p->w[i].pid == pid)
      return i;
  return -1;
}

static int zygote_events(mpc_pool_t *p) {
  zmsg_t m;
  int rc;
  while ((rc = mpc__zygote_recv(p->zctl, &m)) == 1) {
    if (m.type == Z_SPAWNED) {
      if (m.slot >= 0 && m.slot < p->nw && p->w[m.slot].gen == m.gen &&
          p->w[m.slot].state == WS_STARTING) {
        p->w[m.slot].pid = m.pid;
        p->w[m.slot].state = WS_LIVE;
        if (p->w[m.slot].kill_reason) /* killed before we knew its pid */
          kill(m.pid, SIGKILL);
      }
    } else if (m.type == Z_SPAWN_FAILED) {
      if (m.slot >= 0 && m.slot < p->nw && p->w[m.slot].gen == m.gen) {
        p->fatal = m.status ? m.status : MPC_ECHILD;
        worker_release(&p->w[m.slot]);
      }
    } else if (m.type == Z_EXITED) {
      int slot = find_worker(p, m.pid);
      if (slot >= 0) {
        rc = worker_gone(p, slot, m.status, (long)m.maxrss_kb);
        if (rc < 0)
          return rc;
      }
    }
  }
  if (rc < 0 && !p->stopped)
    return p->fatal = MPC_ECHILD; /* the fork server died */
  return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

static size_t depth_target(const mpc_pool_t *p) {
  if (p->avg_ns <= 0)
    return 2;
  if (p->avg_ns > 1e7)
    return 1;
  double d = TARGET_QUEUE_NS / p->avg_ns + 1;
  if (d > 65536)
    d = 65536;
  return d < 2 ? 2 : (size_t)d;
}

static uint32_t chunk_target(const mpc_pool_t *p) {
  if (p->o.chunk)
    return p->o.chunk > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)p->o.chunk;
  if (p->avg_ns <= 0)
    return 1;
  double c = TARGET_CHUNK_NS / p->avg_ns;
  /* Keep the tail balanced: no chunk larger than a share of what is left. */
  double share = (double)p->pend_tasks / (2.0 * p->nw);
  if (c > share)
    c = share;
  if (c > MAX_CHUNK)
    c = MAX_CHUNK;
  return c < 1 ? 1 : (uint32_t)c;
}

/* Stream the outbox of w into its task ring as far as room allows. */
static void pump_outbox(worker_t *w) {
  size_t maxrec = ring_maxrec(w->tr);
  while (w->out_off < w->outbox.len) {
    size_t n = w->outbox.len - w->out_off;
    if (n > maxrec)
      n = maxrec;
    uint64_t pos;
    ring_rec_t *rec = ring_reserve(w->tr, n, &pos);
    if (!rec)
      break;
    int more = w->out_off + n < w->outbox.len;
    rec->type = T_UNIT | (more ? RING_MORE : 0);
    rec->len = (uint32_t)n;
    rec->id = w->fifo_tail->did;
    memcpy(rec + 1, w->outbox.data + w->out_off, n);
    ring_commit(w->tr, pos, n);
    w->out_off += n;
  }
  wake_worker(w);
  if (w->out_off >= w->outbox.len) {
    mpc_buf_free(&w->outbox);
    w->out_off = 0;
  }
}

/* Payload size of entries [0, n) of u, stopping early past `limit`. */
static uint32_t fit_entries(const mpc_pool_t *p, const unit_t *u, uint32_t n,
                            size_t limit, size_t *bytes) {
  size_t total = UNIT_HDR, off = u->blob_off ? u->blob_off : UNIT_HDR;
  uint32_t k = 0;
  if (u->kind == U_OWNED && u->esize && n) { /* all of one size: no walk */
    size_t fit = limit > UNIT_HDR ? (limit - UNIT_HDR) / u->esize : 0;
    k = fit < n ? (fit ? (uint32_t)fit : 1) : n; /* the first goes anyway */
    *bytes = UNIT_HDR + (size_t)k * u->esize;
    return k;
  }
  if (u->kind == U_OWNED) { /* the entries' sizes are in the blob */
    for (; k < n; k++) {
      uint64_t id;
      size_t next = ent_next(u->blob, off, &id), add = next - off;
      if (k > 0 && total + add > limit)
        break;
      total += add;
      off = next;
    }
    *bytes = total;
    return k;
  }
  for (; k < n; k++) {
    uint64_t id;
    const void *in;
    size_t len;
    entry_get(p, u, k, &off, &id, &in, &len);
    size_t add = ENTRY_HDR + PAD8(len);
    if (k > 0 && total + add > limit)
      break;
    total += add;
  }
  *bytes = total;
  return k;
}

/* Send up to `want` tasks from the pending head to worker w.  Returns tasks
 * sent (0 when the ring is full or nothing is pending). */
static uint32_t send_some(mpc_pool_t *p, worker_t *w, uint32_t want) {
  unit_t *u = p->pend;
  if (!u || want == 0)
    return 0;
  if (u->canceled) { /* canceled while pending: answer without running */
    pend_pop(p);
    deliver_canceled(p, u, 0);
    unit_free(u);
    return 0;
  }
  uint32_t n = u->count < want ? u->count : want;
  size_t maxrec = ring_maxrec(w->tr), bytes;
  n = fit_entries(p, u, n, maxrec, &bytes);
  unit_t *v;
  if (n == u->count) {
    v = pend_pop(p);
  } else {
    /* Entries [0, n) of an owned unit are its first `bytes` (fit_entries()
     * measured them): no second walk. */
    v = unit_part(u, 0, n, UNIT_HDR, bytes);
    if (!v) {
      p->fatal = MPC_ENOMEM;
      return 0;
    }
    /* Cut the dispatched entries off the front of u. */
    if (u->kind == U_ARRAY) {
      u->first += n;
    } else {
      /* The rest starts with a new header over the bytes just dispatched:
       * moving the rest down instead cost O(tasks^2) for a big batch handed
       * out in small chunks. */
      size_t cut = bytes - UNIT_HDR;
      u->blob += cut;
      u->blob_skip += cut;
      u->blob_len -= cut;
      uint32_t hdr[2] = {u->count - n, 0};
      memcpy(u->blob, hdr, UNIT_HDR);
      if (u->cbits) {
        unsigned char *nb = cbits_slice(u, n, hdr[0]);
        free(u->cbits);
        u->cbits = nb;
      }
    }
    u->count -= n;
    p->pend_tasks -= n;
  }
  v->did = ++p->next_did;
  v->done = 0;
  v->blob_off = UNIT_HDR;
  if (bytes > maxrec) {
    /* One large entry: stream it in fragments. */
    if (v->kind == U_OWNED) {
      /* Copied, not handed over: a retry needs the input again. */
      if (mpc_buf_set(&w->outbox, v->blob, v->blob_len)) {
        p->fatal = MPC_ENOMEM;
        return 0;
      }
    } else {
      uint64_t id;
      const void *in;
      size_t len, off = 0;
      entry_get(p, v, 0, &off, &id, &in, &len);
      uint32_t hdr[2] = {1, 0};
      uint64_t eh[2] = {id, len};
      if (mpc_buf_append(&w->outbox, hdr, UNIT_HDR) ||
          mpc_buf_append(&w->outbox, eh, ENTRY_HDR) ||
          mpc_buf_append(&w->outbox, in, len)) {
        p->fatal = MPC_ENOMEM;
        return 0;
      }
    }
    w->out_off = 0;
  } else {
    uint64_t pos;
    ring_rec_t *rec = ring_reserve(w->tr, bytes, &pos);
    if (!rec) { /* no room now: put it back */
      if (v == u) {
        pend_push_front(p, v);
      } else if (u->kind == U_ARRAY) {
        u->first -= n;
        u->count += n;
        p->pend_tasks += n;
        unit_free(v);
      } else {
        pend_push_front(p, v);
      }
      p->next_did--;
      return 0;
    }
    rec->type = T_UNIT;
    rec->len = (uint32_t)bytes;
    rec->id = v->did;
    unsigned char *dst = (unsigned char *)(rec + 1);
    if (v->kind == U_OWNED) {
      memcpy(dst, v->blob, bytes);
    } else {
      uint32_t hdr[2] = {n, 0};
      memcpy(dst, hdr, UNIT_HDR);
      size_t o = UNIT_HDR, off = 0;
      for (uint32_t i = 0; i < n; i++) {
        uint64_t id;
        const void *in;
        size_t len;
        entry_get(p, v, i, &off, &id, &in, &len);
        uint64_t eh[2] = {id, len};
        memcpy(dst + o, eh, ENTRY_HDR);
        if (len)
          memcpy(dst + o + ENTRY_HDR, in, len);
        o += ENTRY_HDR + PAD8(len);
      }
    }
    ring_commit(w->tr, pos, bytes);
  }
  v->next = NULL;
  if (w->fifo_tail)
    w->fifo_tail->next = v;
  else
    w->fifo = v;
  w->fifo_tail = v;
  w->queued += n;
  w->sent_total += n;
  if (w->outbox.len)
    pump_outbox(w);
  return n;
}

/* Ask w to leave after what it was sent.  0 when its ring has no room. */
static int send_retire(worker_t *w) {
  uint64_t pos;
  ring_rec_t *rec = ring_reserve(w->tr, 0, &pos);
  if (!rec)
    return 0;
  rec->type = T_RETIRE;
  rec->len = 0;
  rec->id = 0;
  ring_commit(w->tr, pos, 0);
  w->retire_sent = 1;
  wake_worker(w);
  return 1;
}

static void dispatch(mpc_pool_t *p) {
  size_t depth = depth_target(p);
  uint32_t chunk = chunk_target(p);
  int progress = 1;
  while (progress && p->pend && !p->fatal) {
    progress = 0;
    /* Fill the least loaded workers first. */
    for (int i = 0; i < p->nw && p->pend; i++) {
      worker_t *w = &p->w[i];
      if ((w->state != WS_LIVE && w->state != WS_STARTING) || w->retire_sent ||
          w->outbox.len || w->queued >= depth)
        continue;
      uint32_t want = chunk;
      if (p->o.max_tasks_per_worker > 0) {
        long left = p->o.max_tasks_per_worker - w->sent_total;
        if (left <= 0)
          continue;
        if ((long)want > left)
          want = (uint32_t)left;
      }
      uint32_t sent = send_some(p, w, want);
      if (sent) {
        progress = 1;
        wake_worker(w);
      }
    }
  }
  /* Workers that reached their task budget retire after their last task. */
  if (p->o.max_tasks_per_worker > 0)
    for (int i = 0; i < p->nw; i++) {
      worker_t *w = &p->w[i];
      if ((w->state == WS_LIVE || w->state == WS_STARTING) && !w->retire_sent &&
          !w->outbox.len && w->sent_total >= p->o.max_tasks_per_worker) {
        send_retire(w);
      }
    }
}

/* ---- the loop ------------------------------------------------------------------ */

static double check_timeouts(mpc_pool_t *p) {
  double next = 0;
  if (p->o.timeout <= 0)
    return 0;
  uint64_t now = mpc__now_ns();
  for (int i = 0; i < p->nw; i++) {
    worker_t *w = &p->w[i];
    if (w->state != WS_LIVE || !w->fifo || w->kill_reason)
      continue;
    uint64_t cur = atomic_load_explicit(&w->shm->cur, memory_order_acquire);
    if (running_idx(w, cur) < 0) {
      /* Work is queued but we have not seen it start: a task can begin
       * without telling us, so look again soon. */
      double soon = (double)now * 1e-9 +
                    (p->o.timeout / 4 < 0.05 ? p->o.timeout / 4 : 0.05);
      if (!next || soon < next)
        next = soon;
      continue;
    }
    uint64_t start = atomic_load(&w->shm->cur_start_ns);
    double deadline = (double)start * 1e-9 + p->o.timeout;
    if ((double)now * 1e-9 >= deadline)
      worker_kill(w, KR_TIMEOUT);
    else if (!next || deadline < next)
      next = deadline;
  }
  return next;
}

/* A task canceled while queued on a worker (sent, not started) cannot be
 * taken back from its ring: when the worker starts it, the worker is killed
 * (reported canceled, replaced).  Returns when to look again while such a
 * task waits, else 0. */
static double check_canceled(mpc_pool_t *p) {
  if (!p->cancel_queued)
    return 0;
  int waiting = 0;
  for (int i = 0; i < p->nw; i++) {
    worker_t *w = &p->w[i];
    if (w->state != WS_LIVE || w->kill_reason)
      continue;
    for (unit_t *u = w->fifo; u; u = u->next) {
      if (!u->canceled)
        continue;
      if (u == w->fifo &&
          running_idx(w, atomic_load_explicit(&w->shm->cur, memory_order_acquire)) >= 0)
        worker_kill(w, KR_CANCEL);
      else
        waiting = 1;
      break;
    }
  }
  if (!waiting) {
    p->cancel_queued = 0;
    return 0;
  }
  return now_s() + 0.01;
}

/* One pass of everything that needs no waiting.  Returns results delivered. */
static int step(mpc_pool_t *p) {
  int n = 0;
  for (int i = 0; i < p->nw; i++) {
    int rc = collect(p, i);
    if (rc < 0)
      return p->fatal = rc;
    n += rc;
  }
  int rc = zygote_events(p);
  if (rc < 0)
    return rc;
  for (int i = 0; i < p->nw; i++)
    if (p->w[i].outbox.len && p->w[i].state != WS_EMPTY)
      pump_outbox(&p->w[i]);
  dispatch(p);
  return p->fatal ? p->fatal : n;
}

static int anything_to_read(mpc_pool_t *p) {
  for (int i = 0; i < p->nw; i++) {
    worker_t *w = &p->w[i];
    if (w->state != WS_EMPTY && ring_used(w->rr))
      return 1;
  }
  return 0;
}

/* Sleep until a worker or the fork server has news, or `until` (monotonic
 * seconds, 0 = no limit). */
static void wait_events(mpc_pool_t *p, double until) {
  struct pollfd fds[p->nw + 1];
  int map[p->nw + 1];
  int n = 0;
  fds[n].fd = p->zctl;
  fds[n].events = POLLIN;
  map[n++] = -1;
  for (int i = 0; i < p->nw; i++) {
    worker_t *w = &p->w[i];
    if (w->state == WS_EMPTY)
      continue;
    atomic_store_explicit(&w->shm->parent_sleeping, 1, memory_order_seq_cst);
    if (!w->sock_closed) {
      fds[n].fd = w->sock;
      fds[n].events = POLLIN;
      map[n++] = i;
    }
  }
  if (!anything_to_read(p) && !g_signal) {
    int ms = -1;
    if (until > 0) {
      double d = (until - now_s()) * 1000.0;
      ms = d <= 0 ? 0 : (int)ceil(d);
    }
    if (mpc_progress_active(&p->bar) && (ms < 0 || ms > 100))
      ms = 100;
    int r = poll(fds, (nfds_t)n, ms);
    if (r > 0)
      for (int k = 1; k < n; k++) {
        if (!fds[k].revents)
          continue;
        worker_t *w = &p->w[map[k]];
        char buf[256];
        for (;;) {
          ssize_t got = recv(w->sock, buf, sizeof buf, MSG_DONTWAIT);
          if (got > 0)
            continue;
          if (got == 0)
            w->sock_closed = 1; /* it died; the fork server tells how */
          break;
        }
      }
  }
  for (int i = 0; i < p->nw; i++)
    if (p->w[i].state != WS_EMPTY)
      atomic_store_explicit(&p->w[i].shm->parent_sleeping, 0,
                            memory_order_relaxed);
  mpc_progress_draw(&p->bar, 0);
}

/* Run until done() holds, a signal arrives (MPC_EINTR), the callback asks to
 * stop (MPC_ECANCELED), `until` passes (returns 0) or the pool breaks. */
static int run_loop(mpc_pool_t *p, int (*done)(mpc_pool_t *, void *),
                    void *arg, double until) {
  for (;;) {
    int rc = step(p);
    if (rc < 0)
      return rc;
    if (p->cb_stop)
      return MPC_ECANCELED;
    if (g_signal)
      return MPC_EINTR;
    if (done && done(p, arg))
      return 0;
    double next = check_timeouts(p), nc = check_canceled(p);
    if (nc > 0 && (next == 0 || nc < next))
      next = nc;
    if (until > 0 && now_s() >= until)
      return 0;
    double wake = until;
    if (next > 0 && (wake == 0 || next < wake))
      wake = next;
    wait_events(p, wake);
  }
}

/* ---- stopping ------------------------------------------------------------------- */

/* Kill every worker now; whatever they published is delivered, everything
 * else is delivered as MPC_TASK_CANCELED. */
static void stop_all(mpc_pool_t *p) {
  p->stopped = 1;
  for (int i = 0; i < p->nw; i++)
    worker_kill(&p->w[i], KR_STOP);
  for (int i = 0; i < p->nw; i++) {
    worker_t *w = &p->w[i];
    if (w->state == WS_EMPTY)
      continue;
    if (collect(p, i) < 0) { /* a broken ring: nothing more can be trusted */
    }
    /* The task running when the pool stopped was cut: it ran, so it is
     * reported with its worker, pid and times. */
    long ri = running_idx(w, w->kill_reason ? w->kill_cur : atomic_load(&w->shm->cur));
    while (w->fifo) {
      unit_t *u = w->fifo;
      w->fifo = u->next;
      deliver_canceled_ex(p, u, u->done, ri, i, w);
      ri = -1;
      unit_free(u);
    }
    w->fifo_tail = NULL;
    worker_release(w);
  }
  unit_t *u;
  while ((u = pend_pop(p))) {
    deliver_canceled(p, u, 0);
    unit_free(u);
  }
}

/* ---- creation ------------------------------------------------------------------- */

int mpc_pool_new(mpc_pool_t **out, const mpc_pool_opts_t *opts) {
  if (!out || !opts || !opts->fn || opts->workers < 0 || opts->retries < 0)
    return MPC_EINVAL;
  *out = NULL;
  mpc_pool_t *p = calloc(1, sizeof *p);
  if (!p)
    return MPC_ENOMEM;
  p->o = *opts;
  p->zctl = -1;
  p->cfg = (worker_cfg_t){.fn = opts->fn, .ctx = opts->ctx,
                          .init = opts->init, .mem_limit = opts->mem_limit};
  int rc = mpc__zygote_start(&p->cfg, &p->zpid, &p->zctl);
  if (rc < 0) {
    free(p);
    return rc;
  }
  if (!opts->defer_start) {
    rc = mpc_pool_start(p, opts->workers);
    if (rc < 0) {
      mpc_pool_free(p);
      return rc;
    }
  }
  *out = p;
  return 0;
}

int mpc_pool_start(mpc_pool_t *p, int workers) {
  if (!p || workers < 0)
    return MPC_EINVAL;
  if (p->started)
    return MPC_ESTATE;
  if (workers == 0)
    workers = p->o.workers > 0 ? p->o.workers : mpc_cpu_count();
  p->w = calloc((size_t)workers, sizeof *p->w);
  if (!p->w)
    return MPC_ENOMEM;
  p->nw = workers;
  p->started = 1;
  for (int i = 0; i < workers; i++) {
    p->w[i].sock = -1;
    int rc = worker_spawn(p, i);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int mpc_pool_workers(const mpc_pool_t *p) { return p ? p->nw : 0; }

static int usable(const mpc_pool_t *p) {
  if (!p->started || p->stopped)
    return MPC_ESTATE;
  return p->fatal;
}

/* ---- signals during blocking calls ------------------------------------------- */

typedef struct sigsave {
  int on;
  struct sigaction i, t;
} sigsave_t;

static void sig_enter(mpc_pool_t *p, sigsave_t *s) {
  s->on = !p->o.no_signals;
  g_signal = 0;
  if (!s->on)
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &s->i);
  sigaction(SIGTERM, &sa, &s->t);
}

static void sig_leave(sigsave_t *s) {
  if (!s->on)
    return;
  sigaction(SIGINT, &s->i, NULL);
  sigaction(SIGTERM, &s->t, NULL);
}

/* ---- map calls ------------------------------------------------------------------ */

/* Map results are kept compact (a million tasks, a million of these) and
 * expanded into an mpc_result_t on access. */
typedef struct cres {
  uint64_t off; /* output offset in the arena */
  uint64_t len;
  double start, end;
  int32_t code;
  int32_t pid;
  int32_t maxrss_kb;
  int16_t worker;
  uint8_t status;
  uint8_t attempts;
} cres_t;

struct mpc_results {
  size_t n, failed;
  cres_t *r;
  mpc_buf_t arena;
};

static int store_result(void *ctx, const mpc_result_t *r) {
  mpc_results_t *res = ctx;
  cres_t *d = &res->r[r->id];
  d->off = res->arena.len;
  d->len = r->len;
  if (r->len) {
    if (res->arena.cap - res->arena.len >= r->len) {
      memcpy(res->arena.data + res->arena.len, r->data, r->len);
      res->arena.len += r->len;
    } else if (mpc_buf_append(&res->arena, r->data, r->len) != 0) {
      d->len = 0;
    }
  }
  d->start = r->start;
  d->end = r->end;
  d->code = r->code;
  d->pid = r->pid;
  d->maxrss_kb = r->maxrss_kb > INT32_MAX ? INT32_MAX : (int32_t)r->maxrss_kb;
  d->worker = (int16_t)r->worker;
  d->status = (uint8_t)r->status;
  d->attempts = r->attempts > 255 ? 255 : (uint8_t)r->attempts;
  res->failed += r->status != MPC_TASK_OK;
  return 0;
}

static int map_done(mpc_pool_t *p, void *arg) {
  (void)arg;
  return p->inflight == p->caller_pending && !p->pend;
}

/* Common body of map calls over an array: results to cb. */
static int map_array_run(mpc_pool_t *p, size_t n, mpc_result_cb cb, void *ctx) {
  int rc = usable(p);
  if (rc < 0)
    return rc;
  if (p->caller_pending || p->pend)
    return MPC_ESTATE; /* submitted tasks are still outstanding */
  p->map_cb = cb;
  p->map_ctx = ctx;
  p->cb_stop = 0;
  /* One pending unit for the whole array (several past 2^32 tasks); chunks
   * are cut off its front as workers have room. */
  for (size_t first = 0; first < n; first += UINT32_MAX) {
    unit_t *u = unit_new(U_ARRAY, S_MAP);
    if (!u)
      return MPC_ENOMEM;
    u->first = first;
    u->count = (uint32_t)(n - first < UINT32_MAX ? n - first : UINT32_MAX);
    pend_push_back(p, u);
    p->inflight += u->count;
  }
  sigsave_t ss;
  sig_enter(p, &ss);
  mpc_progress_start(&p->bar, p->o.progress, n);
  rc = run_loop(p, map_done, NULL, 0);
  if (rc < 0)
    stop_all(p);
  mpc_progress_end(&p->bar);
  sig_leave(&ss);
  p->map_cb = NULL;
  p->arr = NULL;
  p->arr_base = NULL;
  return rc;
}

static int map_collect(mpc_pool_t *p, size_t n, mpc_results_t **out) {
  mpc_results_t *res = calloc(1, sizeof *res);
  if (!res)
    return MPC_ENOMEM;
  res->n = n;
  res->r = malloc((n ? n : 1) * sizeof *res->r);
  if (!res->r) {
    mpc_results_free(res);
    return MPC_ENOMEM;
  }
  int rc = map_array_run(p, n, store_result, res);
  if (rc < 0 && rc != MPC_EINTR) {
    mpc_results_free(res);
    return rc;
  }
  *out = res;
  return rc;
}

int mpc_pool_map(mpc_pool_t *p, const mpc_slice_t *in, size_t n,
                 mpc_results_t **out) {
  if (!p || !out || (n && !in))
    return MPC_EINVAL;
  *out = NULL;
  p->arr = in;
  return map_collect(p, n, out);
}

int mpc_pool_map_array(mpc_pool_t *p, const void *base, size_t item_size,
                       size_t n, mpc_results_t **out) {
  if (!p || !out || (n && item_size && !base))
    return MPC_EINVAL;
  *out = NULL;
  p->arr = NULL;
  p->arr_base = base;
  p->arr_item = item_size;
  return map_collect(p, n, out);
}

int mpc_pool_imap_unordered(mpc_pool_t *p, const mpc_slice_t *in, size_t n,
                            mpc_result_cb cb, void *cb_ctx) {
  if (!p || !cb || (n && !in))
    return MPC_EINVAL;
  p->arr = in;
  return map_array_run(p, n, cb, cb_ctx);
}

size_t mpc_results_count(const mpc_results_t *r) { return r ? r->n : 0; }
int mpc_results_get(const mpc_results_t *r, size_t i, mpc_result_t *out) {
  if (!r || !out || i >= r->n)
    return MPC_EINVAL;
  const cres_t *c = &r->r[i];
  *out = (mpc_result_t){
      .id = i,
      .status = (mpc_task_status_t)c->status,
      .code = c->code,
      .data = c->len ? r->arena.data + c->off : NULL,
      .len = (size_t)c->len,
      .attempts = c->attempts,
      .worker = c->worker,
      .pid = c->pid,
      .start = c->start,
      .end = c->end,
      .maxrss_kb = c->maxrss_kb,
  };
  return 0;
}
size_t mpc_results_failed(const mpc_results_t *r) { return r ? r->failed : 0; }
void mpc_results_free(mpc_results_t *r) {
  if (!r)
    return;
  free(r->r);
  mpc_buf_free(&r->arena);
  free(r);
}

/* ---- streaming map over a generator -------------------------------------------- */

typedef struct held {
  int have;
  mpc_result_t r;
  mpc_buf_t data;
} held_t;

typedef struct gen_state {
  mpc_gen_fn gen;
  void *gen_ctx;
  int ordered;
  mpc_result_cb cb;
  void *cb_ctx;
  uint64_t generated, delivered_upto; /* ordered: next seq to hand out */
  int exhausted, gen_err, stop;
  held_t *hold; /* ordered: GEN_WINDOW slots */
} gen_state_t;

static int gen_deliver(void *ctx, const mpc_result_t *r) {
  gen_state_t *g = ctx;
  if (g->stop)
    return 1;
  if (!g->ordered)
    return g->cb(g->cb_ctx, r);
  held_t *h = &g->hold[r->id % GEN_WINDOW];
  h->r = *r;
  if (mpc_buf_set(&h->data, r->data, r->len) != 0)
    h->r.len = 0;
  h->have = 1;
  while ((h = &g->hold[g->delivered_upto % GEN_WINDOW])->have) {
    h->r.data = h->data.data;
    h->have = 0;
    g->delivered_upto++;
    if (g->cb(g->cb_ctx, &h->r) != 0) {
      g->stop = 1;
      return 1;
    }
  }
  return 0;
}

/* Generate tasks until the window is full or the generator ends. */
static int gen_refill(mpc_pool_t *p, gen_state_t *g, mpc_buf_t *in) {
  uint64_t base = g->ordered ? g->delivered_upto : 0;
  while (!g->exhausted && p->inflight < GEN_WINDOW &&
         (!g->ordered || g->generated - base < GEN_WINDOW)) {
    uint32_t chunk = chunk_target(p);
    if (chunk > 1024)
      chunk = 1024;
    unit_t *u = unit_new(U_OWNED, S_MAP);
    mpc_buf_t blob = MPC_BUF_INIT;
    uint32_t hdr[2] = {0, 0};
    if (!u || mpc_buf_append(&blob, hdr, UNIT_HDR)) {
      free(u);
      return MPC_ENOMEM;
    }
    uint32_t k = 0;
    while (k < chunk && p->inflight + k < GEN_WINDOW &&
           (!g->ordered || g->generated + k - base < GEN_WINDOW)) {
      mpc_buf_clear(in);
      int r = g->gen(g->gen_ctx, g->generated + k, in);
      if (r <= 0) {
        g->exhausted = 1;
        if (r < 0)
          g->gen_err = r;
        break;
      }
      uint64_t eh[2] = {g->generated + k, in->len};
      static const unsigned char zeros[8];
      if (mpc_buf_append(&blob, eh, ENTRY_HDR) ||
          mpc_buf_append(&blob, in->data, in->len) ||
          mpc_buf_append(&blob, zeros, PAD8(in->len) - in->len)) {
        mpc_buf_free(&blob);
        free(u);
        return MPC_ENOMEM;
      }
      k++;
    }
    if (k == 0) {
      mpc_buf_free(&blob);
      free(u);
      break;
    }
    memcpy(blob.data, &k, 4);
    u->blob = blob.data;
    u->blob_len = blob.len;
    u->blob_off = UNIT_HDR;
    u->count = k;
    pend_push_back(p, u);
    p->inflight += k;
    g->generated += k;
    if (p->o.progress != MPC_PROGRESS_OFF && g->exhausted)
      p->bar.total = g->generated;
  }
  return 0;
}

static int gen_need(mpc_pool_t *p, void *arg) {
  gen_state_t *g = arg;
  if (g->stop)
    return 1;
  if (!g->exhausted && p->inflight < GEN_WINDOW / 2)
    return 1; /* room to generate more */
  return g->exhausted && p->inflight == p->caller_pending && !p->pend;
}

int mpc_pool_map_gen(mpc_pool_t *p, mpc_gen_fn gen, void *gen_ctx, int ordered,
                     mpc_result_cb cb, void *cb_ctx) {
  if (!p || !gen || !cb)
    return MPC_EINVAL;
  int rc = usable(p);
  if (rc < 0)
    return rc;
  if (p->caller_pending || p->pend)
    return MPC_ESTATE;
  gen_state_t g = {.gen = gen, .gen_ctx = gen_ctx, .ordered = ordered,
                   .cb = cb, .cb_ctx = cb_ctx};
  if (ordered && !(g.hold = calloc(GEN_WINDOW, sizeof *g.hold)))
    return MPC_ENOMEM;
  mpc_buf_t in = MPC_BUF_INIT;
  p->map_cb = gen_deliver;
  p->map_ctx = &g;
  p->cb_stop = 0;
  sigsave_t ss;
  sig_enter(p, &ss);
  mpc_progress_start(&p->bar, p->o.progress, 0);
  for (;;) {
    rc = gen_refill(p, &g, &in);
    if (rc < 0)
      break;
    rc = run_loop(p, gen_need, &g, 0);
    if (rc < 0)
      break;
    if (g.stop) {
      rc = MPC_ECANCELED;
      break;
    }
    if (g.exhausted && p->inflight == p->caller_pending && !p->pend)
      break;
  }
  if (rc < 0) {
    if (rc == MPC_ECANCELED)
      g.stop = 1; /* the caller asked to stop: no more callbacks */
    stop_all(p);
  }
  if (rc == 0 && g.gen_err)
    rc = g.gen_err;
  mpc_progress_end(&p->bar);
  sig_leave(&ss);
  p->map_cb = NULL;
  mpc_buf_free(&in);
  if (g.hold) {
    for (size_t i = 0; i < GEN_WINDOW; i++)
      mpc_buf_free(&g.hold[i].data);
    free(g.hold);
  }
  return rc;
}

/* ---- async apply and the non-blocking engine ----------------------------------- */

static unit_t *owned_single(uint64_t id, const void *in, size_t len, int sink) {
  unit_t *u = unit_new(U_OWNED, sink);
  if (!u)
    return NULL;
  u->blob_len = UNIT_HDR + ENTRY_HDR + PAD8(len);
  u->blob = calloc(1, u->blob_len);
  if (!u->blob) {
    free(u);
    return NULL;
  }
  uint32_t hdr[2] = {1, 0};
  uint64_t eh[2] = {id, len};
  memcpy(u->blob, hdr, UNIT_HDR);
  memcpy(u->blob + UNIT_HDR, eh, ENTRY_HDR);
  if (len)
    memcpy(u->blob + UNIT_HDR + ENTRY_HDR, in, len);
  u->blob_off = UNIT_HDR;
  u->count = 1;
  return u;
}

static int window_room(mpc_pool_t *p, void *arg) {
  (void)arg;
  return p->inflight < 4 * GEN_WINDOW;
}

int mpc_pool_apply_async(mpc_pool_t *p, const void *in, size_t len,
                         mpc_future_t **out) {
  if (!p || !out || (len && !in))
    return MPC_EINVAL;
  *out = NULL;
  int rc = usable(p);
  if (rc < 0)
    return rc;
  if (p->inflight >= 4 * GEN_WINDOW) {
    rc = run_loop(p, window_room, NULL, 0);
    if (rc < 0)
      return rc;
  }
  mpc_future_t *f = calloc(1, sizeof *f);
  unit_t *u = owned_single(0, in, len, S_FUTURE);
  if (!f || !u) {
    free(f);
    unit_free(u);
    return MPC_ENOMEM;
  }
  f->pool = p;
  u->fut = f;
  pend_push_back(p, u);
  p->inflight++;
  rc = step(p); /* start it now */
  *out = f;
  return rc < 0 ? rc : 0;
}

static int future_done(mpc_pool_t *p, void *arg) {
  (void)p;
  return ((mpc_future_t *)arg)->done;
}

int mpc_future_wait(mpc_future_t *f, double timeout) {
  if (!f)
    return MPC_EINVAL;
  if (f->done)
    return 0;
  mpc_pool_t *p = f->pool;
  if (p->stopped)
    return MPC_ESTATE;
  double until = timeout < 0 ? 0 : now_s() + timeout;
  if (timeout == 0)
    until = now_s();
  int rc = run_loop(p, future_done, f, until);
  if (rc < 0)
    return rc;
  return f->done ? 0 : MPC_ETIMEDOUT;
}

const mpc_result_t *mpc_future_result(const mpc_future_t *f) {
  return f && f->done ? &f->r : NULL;
}

void mpc_future_free(mpc_future_t *f) {
  if (!f)
    return;
  if (!f->done) {
    f->orphan = 1; /* the pool frees it when the task ends */
    return;
  }
  mpc_buf_free(&f->data);
  free(f);
}

int mpc__pool_batch_begin(mpc_pool_t *p, mpc__pool_batch_t *b, size_t n,
                          size_t in_bytes) {
  b->unit = NULL;
  b->o = b->end = NULL;
  b->n = b->max = 0;
  b->esize = 0;
  if (!p || n > UINT32_MAX / 2 || in_bytes > SIZE_MAX / 2 - n * (ENTRY_HDR + 8))
    return MPC_EINVAL;
  int rc = usable(p);
  if (rc < 0)
    return rc;
  /* Each entry: its header, its input padded to 8 (at most 7 bytes more). */
  size_t bytes = UNIT_HDR + n * (ENTRY_HDR + 7) + in_bytes;
  unit_t *u = unit_new(U_OWNED, S_CALLER);
  if (!u || !(u->blob = malloc(bytes))) {
    free(u);
    return MPC_ENOMEM;
  }
  b->unit = u;
  b->o = u->blob + UNIT_HDR;
  b->end = u->blob + bytes;
  b->max = (uint32_t)n;
  return 0;
}

void mpc__pool_batch_abort(mpc__pool_batch_t *b) {
  unit_free(b->unit);
  b->unit = NULL;
}

int mpc__pool_batch_end(mpc_pool_t *p, mpc__pool_batch_t *b) {
  unit_t *u = b->unit;
  b->unit = NULL;
  int rc = usable(p);
  if (rc < 0 || !b->n) {
    unit_free(u);
    return rc < 0 ? rc : 0;
  }
  uint32_t hdr[2] = {b->n, 0};
  memcpy(u->blob, hdr, UNIT_HDR);
  u->blob_len = (size_t)(b->o - u->blob);
  u->blob_off = UNIT_HDR;
  u->esize = b->esize == SIZE_MAX ? 0 : b->esize;
  u->count = b->n;
  pend_push_back(p, u);
  p->inflight += b->n;
  p->caller_pending += b->n;
  return 0;
}

int mpc_pool_submit_many(mpc_pool_t *p, const mpc_slice_t *in,
                         const uint64_t *tags, size_t n) {
  if (!p || (n && (!in || !tags)) || n > UINT32_MAX / 2)
    return MPC_EINVAL;
  int rc = usable(p);
  if (rc < 0)
    return rc;
  if (n == 0)
    return 0;
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i].len && !in[i].data)
      return MPC_EINVAL;
    bytes += in[i].len;
  }
  mpc__pool_batch_t b;
  if ((rc = mpc__pool_batch_begin(p, &b, n, bytes)))
    return rc;
  for (size_t i = 0; i < n; i++)
    if ((rc = mpc__pool_batch_add(&b, tags[i], in[i].data, in[i].len))) {
      mpc__pool_batch_abort(&b); /* (cannot be: sized above) */
      return rc;
    }
  return mpc__pool_batch_end(p, &b);
}

int mpc_pool_submit(mpc_pool_t *p, const void *in, size_t len, uint64_t tag) {
  if (!p || (len && !in))
    return MPC_EINVAL;
  int rc = usable(p);
  if (rc < 0)
    return rc;
  unit_t *u = owned_single(tag, in, len, S_CALLER);
  if (!u)
    return MPC_ENOMEM;
  pend_push_back(p, u);
  p->inflight++;
  p->caller_pending++;
  return 0;
}

typedef struct poll_arg {
  int got;
  mpc_result_cb cb;
  mpc_results_cb many;
  void *ctx;
} poll_arg_t;

static int poll_cb(void *ctx, const mpc_result_t *r) {
  poll_arg_t *a = ctx;
  a->got++;
  if (a->many)
    return a->many(a->ctx, r, 1);
  return a->cb ? a->cb(a->ctx, r) : 0;
}

static int poll_many_cb(void *ctx, const mpc_result_t *r, size_t n) {
  poll_arg_t *a = ctx;
  a->got += (int)n;
  return a->many(a->ctx, r, n);
}

/* Hand over results that arrived while nobody was listening. */
static void drain_parked(mpc_pool_t *p, poll_arg_t *a) {
  while (p->parked) {
    parked_t *k = p->parked;
    p->parked = k->next;
    if (!p->parked)
      p->parked_tail = NULL;
    poll_cb(a, &k->r);
    free(k);
  }
}

static int poll_done(mpc_pool_t *p, void *arg) {
  poll_arg_t *a = arg;
  return a->got > 0 || (p->caller_pending == 0);
}

static int poll_run(mpc_pool_t *p, double timeout, poll_arg_t *a) {
  int rc = usable(p);
  if (rc < 0)
    return rc;
  drain_parked(p, a);
  p->caller_cb = poll_cb;
  p->caller_many = a->many ? poll_many_cb : NULL;
  p->caller_ctx = a;
  p->cb_stop = 0;
  double until = timeout < 0 ? 0 : now_s() + timeout;
  if (timeout == 0)
    until = now_s();
  rc = run_loop(p, poll_done, a, until);
  p->caller_cb = NULL;
  p->caller_many = NULL;
  if (rc == MPC_ECANCELED)
    rc = 0;
  return rc < 0 ? rc : a->got;
}

int mpc_pool_poll(mpc_pool_t *p, double timeout, mpc_result_cb cb,
                  void *cb_ctx) {
  if (!p)
    return MPC_EINVAL;
  poll_arg_t a = {.cb = cb, .ctx = cb_ctx};
  return poll_run(p, timeout, &a);
}

int mpc_pool_poll_many(mpc_pool_t *p, double timeout, mpc_results_cb cb,
                       void *cb_ctx) {
  if (!p || !cb)
    return MPC_EINVAL;
  poll_arg_t a = {.many = cb, .ctx = cb_ctx};
  return poll_run(p, timeout, &a);
}

size_t mpc_pool_pending(const mpc_pool_t *p) {
  return p ? p->caller_pending : 0;
}

/* Index in u of the unfinished entry tagged `tag`, or -1. */
static long unit_find(const mpc_pool_t *p, const unit_t *u, uint64_t tag) {
  if (u->sink != S_CALLER)
    return -1;
  size_t off = UNIT_HDR;
  for (uint32_t i = 0; i < u->count; i++) {
    uint64_t id;
    const void *in;
    size_t len;
    entry_get(p, u, i, &off, &id, &in, &len);
    if (id == tag && i >= u->done)
      return (long)i;
  }
  return -1;
}

int mpc_pool_cancel(mpc_pool_t *p, uint64_t tag) {
  if (!p)
    return MPC_EINVAL;
  for (unit_t *u = p->pend; u; u = u->next) {
    long i = unit_find(p, u, tag);
    if (i < 0)
      continue;
    if (u->count == 1) {
      u->canceled = 1; /* answered without running */
      return 0;
    }
    return cancel_entry(u, (uint32_t)i); /* runs with its batch, answered canceled */
  }
  for (int k = 0; k < p->nw; k++) {
    worker_t *w = &p->w[k];
    for (unit_t *u = w->fifo; u; u = u->next) {
      long i = unit_find(p, u, tag);
      if (i < 0)
        continue;
      int rc = u->count == 1 ? (u->canceled = 1, 0) : cancel_entry(u, (uint32_t)i);
      if (!rc && u == w->fifo && running_idx(w, atomic_load(&w->shm->cur)) == i)
        worker_kill(w, KR_CANCEL);
      else if (!rc && u->count == 1)
        p->cancel_queued = 1; /* killed when it starts: check_canceled() */
      return rc;
    }
  }
  return MPC_ENOTFOUND;
}

int mpc_pool_drain(mpc_pool_t *p) {
  if (!p)
    return MPC_EINVAL;
  int rc = 0;
  for (unit_t *u = p->pend; u; u = u->next)
    if (u->sink == S_CALLER)
      u->canceled = 1;
  for (int k = 0; k < p->nw; k++) {
    worker_t *w = &p->w[k];
    for (unit_t *u = w->fifo; u; u = u->next) {
      if (u->sink != S_CALLER)
        continue;
      if (u != w->fifo) {
        u->canceled = 1;
        continue;
      }
      /* The head unit: its running entry finishes, the ones after it do not
       * count. */
      long ri = running_idx(w, atomic_load(&w->shm->cur));
      for (uint32_t i = ri >= 0 ? (uint32_t)ri + 1 : u->done; i < u->count && !rc; i++)
        rc = cancel_entry(u, i);
    }
  }
  return rc;
}

/* ---- shutdown ------------------------------------------------------------------- */

static int all_done(mpc_pool_t *p, void *arg) {
  (void)arg;
  return p->inflight == 0;
}

static int all_gone(mpc_pool_t *p, void *arg) {
  (void)arg;
  for (int i = 0; i < p->nw; i++)
    if (p->w[i].state != WS_EMPTY)
      return 0;
  return 1;
}

int mpc_pool_join(mpc_pool_t *p, mpc_result_cb cb, void *cb_ctx) {
  if (!p)
    return MPC_EINVAL;
  int rc = usable(p);
  if (rc < 0)
    return rc;
  poll_arg_t a = {.cb = cb, .ctx = cb_ctx};
  drain_parked(p, &a);
  p->caller_cb = poll_cb;
  p->caller_ctx = &a;
  rc = run_loop(p, all_done, NULL, 0);
  p->caller_cb = NULL;
  if (rc < 0)
    return rc;
  /* Everything is done: ask the workers to leave, and wait for them. */
  p->stopped = 1;
  for (int i = 0; i < p->nw; i++) {
    worker_t *w = &p->w[i];
    if (w->state == WS_EMPTY || w->retire_sent)
      continue;
    if (!send_retire(w))
      worker_kill(w, KR_STOP);
  }
  rc = run_loop(p, all_gone, NULL, now_s() + 10);
  for (int i = 0; i < p->nw; i++)
    if (p->w[i].state != WS_EMPTY) {
      worker_kill(&p->w[i], KR_STOP);
      worker_release(&p->w[i]);
    }
  return rc < 0 ? rc : 0;
}

void mpc_pool_terminate(mpc_pool_t *p, mpc_result_cb cb, void *cb_ctx) {
  if (!p)
    return;
  poll_arg_t a = {.cb = cb, .ctx = cb_ctx};
  p->caller_cb = poll_cb;
  p->caller_ctx = &a;
  stop_all(p);
  p->caller_cb = NULL;
  while (p->parked) {
    parked_t *k = p->parked;
    p->parked = k->next;
    free(k);
  }
  p->parked_tail = NULL;
}

void mpc_pool_free(mpc_pool_t *p) {
  if (!p)
    return;
  if (!p->stopped || p->pend)
    mpc_pool_terminate(p, NULL, NULL);
  for (int i = 0; i < p->nw; i++)
    if (p->w[i].state != WS_EMPTY)
      worker_release(&p->w[i]);
  if (p->zctl >= 0)
    close(p->zctl); /* the fork server kills what is left and leaves */
  if (p->zpid > 0) {
    int st;
    while (waitpid(p->zpid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  free(p->w);
  free(p);
}
