/* A worker process: takes units of tasks from its task ring, runs them, and
 * publishes one result record per task.  It sleeps on its socket when there is
 * nothing to do and rings the parent's doorbell only when the parent said it
 * is sleeping, so a busy pool makes no system calls per task. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/identity.h"
#include "pool/internal.h"

static wshm_t *g_self; /* this worker's control block */
static uint64_t g_task_id = UINT64_MAX;

uint64_t mpc_task_id(void) { return g_task_id; }

/* With a memory limit, a fault or abort right after an allocation failed
 * (errno still ENOMEM) is the limit at work: say so to the parent, then die
 * of the signal as before. */
static void on_fault(int sig) {
  if (errno == ENOMEM && g_self)
    atomic_store(&g_self->oom_hint, 1);
  signal(sig, SIG_DFL);
  raise(sig); /* pending until we return: then the default action */
}

static void limit_memory(size_t limit) {
  /* The limit is on what tasks add: the worker's own mappings (libraries,
   * MPI's) do not count against it. */
  size_t base = 0;
  FILE *fp = fopen("/proc/self/statm", "r");
  if (fp) {
    unsigned long pages;
    if (fscanf(fp, "%lu", &pages) == 1)
      base = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
    fclose(fp);
  }
  struct rlimit rl = {.rlim_cur = base + limit, .rlim_max = base + limit};
  setrlimit(RLIMIT_AS, &rl);
  static char altstack[16384];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGABRT, &sa, NULL);
}

void mpc_task_set_pgid(pid_t pgid) {
  if (g_self)
    atomic_store(&g_self->child_pgid, (int32_t)pgid);
}

typedef struct wctx {
  wshm_t *shm;
  ring_t *tr, *rr;
  int sock;
  uint64_t last_rss_ns;
} wctx_t;

static void ring_parent(wctx_t *w) {
  if (atomic_load_explicit(&w->shm->parent_sleeping, memory_order_seq_cst) &&
      atomic_exchange(&w->shm->parent_sleeping, 0)) {
    char c = 1;
    ssize_t n = send(w->sock, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
  }
}

/* Sleep until the parent rings; leave if the parent is gone. */
static void sleep_on_parent(wctx_t *w) {
  char buf[64];
  ssize_t n = recv(w->sock, buf, sizeof buf, 0);
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
    _exit(0);
}

/* Yield the CPU while waiting; 1 when that let another process run (the
 * call took long): the CPUs are oversubscribed, and spinning on would cost
 * a context switch per look, taken from processes with work to do. */
#define YIELD_SLOW_NS 20000u
static int yield_was_slow(void) {
  uint64_t t0 = mpc__now_ns();
  sched_yield();
  return mpc__now_ns() - t0 > YIELD_SLOW_NS;
}

/* Wait until `ok(w)` holds: spin a little (while no other process wants
 * this CPU), then announce sleep and block. */
#define WAIT_UNTIL(w, cond)                                                    \
  do {                                                                         \
    for (int spin_ = 0; !(cond); spin_++) {                                    \
      if (spin_ < 64) {                                                        \
        if (yield_was_slow())                                                  \
          spin_ = 63;                                                          \
        continue;                                                              \
      }                                                                        \
      atomic_store_explicit(&(w)->shm->worker_sleeping, 1,                     \
                            memory_order_seq_cst);                             \
      if (cond) {                                                              \
        atomic_store(&(w)->shm->worker_sleeping, 0);                           \
        break;                                                                 \
      }                                                                        \
      ring_parent(w); /* the parent may be waiting on us: never both sleep */  \
      sleep_on_parent(w);                                                      \
      atomic_store(&(w)->shm->worker_sleeping, 0);                             \
      spin_ = 0;                                                               \
    }                                                                          \
  } while (0)

/* Publish one record of `len` payload bytes made of hdr + body, fragmenting
 * when it is larger than a ring record may be. */
static void put_result(wctx_t *w, uint64_t did, const res_hdr_t *h,
                       const void *body, size_t blen) {
  ring_t *r = w->rr;
  size_t maxrec = ring_maxrec(r);
  size_t total = sizeof *h + blen, off = 0;
  do {
    size_t n = total - off < maxrec ? total - off : maxrec;
    ring_rec_t *rec;
    uint64_t pos = 0;
    WAIT_UNTIL(w, (rec = ring_reserve(r, n, &pos)) != NULL);
    rec->type = R_RESULT | (off + n < total ? RING_MORE : 0);
    rec->len = (uint32_t)n;
    rec->id = did;
    unsigned char *dst = (unsigned char *)(rec + 1);
    /* Copy the [off, off+n) window of hdr ++ body. */
    size_t done = 0;
    if (off < sizeof *h) {
      size_t k = sizeof *h - off < n ? sizeof *h - off : n;
      memcpy(dst, (const unsigned char *)h + off, k);
      done = k;
    }
    if (done < n)
      memcpy(dst + done, (const unsigned char *)body + (off + done - sizeof *h),
             n - done);
    ring_commit(r, pos, n);
    ring_parent(w);
    off += n;
  } while (off < total);
}

static void note_rss(wctx_t *w, uint64_t now) {
  if (now - w->last_rss_ns < 1000000ull)
    return;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    atomic_store_explicit(&w->shm->maxrss_kb, ru.ru_maxrss,
                          memory_order_relaxed);
  w->last_rss_ns = now;
}

/* Results of one unit being batched.  Written straight into the result
 * ring when it has room for the largest batch (a record reserved at the
 * first entry and committed at the flush: the parent sees nothing before),
 * else into `b` and copied at the flush. */
typedef struct batch {
  mpc_buf_t b;
  uint32_t n;
  uint64_t t0;
  unsigned char *d;  /* the batch: the reserved record's payload, or b.data */
  size_t len, cap;
  ring_rec_t *rec;   /* the reserved record (NULL: in b) */
  uint64_t pos;
} batch_t;

static void batch_flush(wctx_t *w, uint64_t did, batch_t *bt) {
  if (!bt->n)
    return;
  batch_hdr_t *h = (batch_hdr_t *)bt->d;
  h->n = bt->n;
  ring_t *r = w->rr;
  ring_rec_t *rec = bt->rec;
  uint64_t pos = bt->pos;
  if (!rec) {
    bt->b.len = bt->len;
    WAIT_UNTIL(w, (rec = ring_reserve(r, bt->len, &pos)) != NULL);
    memcpy(rec + 1, bt->b.data, bt->len);
  }
  rec->type = R_BATCH;
  rec->len = (uint32_t)bt->len;
  rec->id = did;
  ring_commit(r, pos, bt->len);
  ring_parent(w);
  bt->n = 0;
  bt->len = 0;
  bt->rec = NULL;
}

/* Tiny tasks are timed in samples: every task is timed while tasks take more
 * than SAMPLE_NS; below that, one clock read per SAMPLE_EVERY tasks, and the
 * tasks in between get evenly spread times.  A clock read costs about as much
 * as a trivial task. */
#define SAMPLE_NS 2000u
#define SAMPLE_EVERY 16u

/* The largest batch: flushed at a timed entry once past BATCH_MAX_BYTES, so
 * at most SAMPLE_EVERY entries of at most BATCH_MAX_OUT bytes beyond it. */
#define BATCH_RESERVE \
  (sizeof(batch_hdr_t) + BATCH_MAX_BYTES + SAMPLE_EVERY * (sizeof(batch_ent_t) + BATCH_MAX_OUT))

/* Start a batch: in the ring if it has room for the largest, else in b. */
static void batch_open(wctx_t *w, batch_t *bt, const batch_hdr_t *h) {
  bt->len = 0;
  bt->rec = ring_reserve(w->rr, BATCH_RESERVE, &bt->pos);
  if (bt->rec) {
    bt->d = (unsigned char *)(bt->rec + 1);
    bt->cap = BATCH_RESERVE;
  } else {
    bt->b.len = 0;
    if (mpc_buf_reserve(&bt->b, BATCH_RESERVE))
      _exit(WORKER_EXIT_INIT + 2);
    bt->d = bt->b.data;
    bt->cap = bt->b.cap;
  }
  memcpy(bt->d, h, sizeof *h);
  bt->len = sizeof *h;
}

/* Room for `need` more bytes in the batch (past BATCH_RESERVE: never, as
 * batches are flushed; if it were, the batch moves to b and grows there). */
static void batch_room(batch_t *bt, size_t need) {
  if (bt->cap - bt->len >= need)
    return;
  if (bt->rec) { /* abandon the reservation: nothing was committed */
    bt->b.len = 0;
    if (mpc_buf_append(&bt->b, bt->d, bt->len))
      _exit(WORKER_EXIT_INIT + 2);
    bt->rec = NULL;
  } else {
    bt->b.len = bt->len;
  }
  if (mpc_buf_reserve(&bt->b, need))
    _exit(WORKER_EXIT_INIT + 2);
  bt->d = bt->b.data;
  bt->cap = bt->b.cap;
}

/* Run the entries of one unit.  The batch's cursor (bt->d, len, n) and the
 * control block are kept in locals across the task calls, written back
 * (BT_OUT) before anything that uses bt and read again (BT_IN) after: the
 * task function may write anywhere as far as the compiler knows, so fields
 * behind a pointer would be reloaded after every call. */
static void run_unit(wctx_t *w, const worker_cfg_t *cfg, uint64_t did,
                     const unsigned char *p, size_t len, mpc_buf_t *out,
                     batch_t *bt) {
  if (len < UNIT_HDR)
    _exit(WORKER_EXIT_INIT + 1);
  uint32_t count;
  memcpy(&count, p, 4);
  wshm_t *const shm = w->shm;
  const mpc_task_fn fn = cfg->fn;
  void *const ctx = cfg->ctx;
  size_t off = UNIT_HDR;
  uint64_t t = mpc__now_ns();
  int sampling = 0;        /* tasks are tiny: not every one is timed */
  size_t untimed[SAMPLE_EVERY];
  uint32_t nuntimed = 0;
  unsigned char *d = bt->d;
  size_t blen = bt->len;
  uint32_t bn = bt->n;
#define BT_OUT() (bt->d = d, bt->len = blen, bt->n = bn)
#define BT_IN() (d = bt->d, blen = bt->len, bn = bt->n)
  /* The running entry's start: it changes only when a task is timed (the
   * untimed ones in between all start at t as far as the parent knows). */
  atomic_store_explicit(&shm->cur_start_ns, t, memory_order_relaxed);
  for (uint32_t i = 0; i < count; i++) {
    uint64_t id, elen;
    memcpy(&id, p + off, 8);
    memcpy(&elen, p + off + 8, 8);
    const unsigned char *in = p + off + ENTRY_HDR;
    off += ENTRY_HDR + PAD8(elen);
    atomic_store_explicit(&shm->cur, CUR_PACK(did, i), memory_order_release);
    out->len = 0;
    g_task_id = id;
    int code = fn(ctx, in, (size_t)elen, out);
    size_t olen = out->len;
    int batched = count > 1 && olen <= BATCH_MAX_OUT;
    uint64_t end = 0;
    if (!sampling || !batched || nuntimed + 1 == SAMPLE_EVERY ||
        i + 1 == count) {
      end = mpc__now_ns();
      if (nuntimed) { /* spread [t, end] over the untimed tasks and this one */
        uint64_t step = (end - t) / (nuntimed + 1);
        for (uint32_t k = 0; k < nuntimed; k++) {
          batch_ent_t *e = (batch_ent_t *)(d + untimed[k]);
          e->end_ns = t + step * (k + 1);
        }
        sampling = (end - t) / (nuntimed + 1) < SAMPLE_NS;
        t = t + step * nuntimed;
        nuntimed = 0;
      } else {
        sampling = end - t < SAMPLE_NS;
      }
      note_rss(w, end);
    }
    atomic_store_explicit(&shm->child_pgid, 0, memory_order_relaxed);
    if (batched) {
      /* Small result of a many-task unit: batch it. */
      size_t need = sizeof(batch_ent_t) + PAD8(olen);
      if (!bn || bt->cap - blen < need) {
        BT_OUT();
        if (!bn) {
          batch_hdr_t h = {.n = 0, .first = i, .start_ns = t};
          batch_open(w, bt, &h);
          bt->t0 = t;
        }
        batch_room(bt, need);
        BT_IN();
      }
      if (!end)
        untimed[nuntimed++] = blen;
      /* Plain copies (this runs once per tiny task). */
      unsigned char *o = d + blen;
      batch_ent_t e = {.code = code, .len = (uint32_t)olen, .end_ns = end};
      memcpy(o, &e, sizeof e);
      mpc__copy_pad8(o + sizeof e, out->data, olen);
      blen += need;
      bn++;
      if (end && (i + 1 == count || end - bt->t0 >= BATCH_MAX_NS ||
                  blen >= BATCH_MAX_BYTES)) {
        BT_OUT();
        batch_flush(w, did, bt);
        BT_IN();
      }
    } else {
      BT_OUT();
      batch_flush(w, did, bt);
      res_hdr_t h = {.id = id, .idx = i, .code = code, .start_ns = t,
                     .end_ns = end};
      put_result(w, did, &h, out->data, olen);
      BT_IN();
    }
    if (end) {
      t = end;
      atomic_store_explicit(&shm->cur_start_ns, t, memory_order_relaxed);
    }
  }
  g_task_id = UINT64_MAX;
  BT_OUT();
#undef BT_OUT
#undef BT_IN
  batch_flush(w, did, bt);
  /* Keep big outputs from pinning memory for the rest of the worker's life. */
  if (out->cap > (1u << 20))
    mpc_buf_free(out);
}

void mpc__worker_main(const worker_cfg_t *cfg, int slot, int memfd, int sock) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  struct stat st;
  if (fstat(memfd, &st) < 0)
    _exit(WORKER_EXIT_INIT + 1);
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED, memfd, 0);
  if (map == MAP_FAILED)
    _exit(WORKER_EXIT_INIT + 1);
  close(memfd);
  wctx_t w = {.shm = map, .sock = sock};
  w.tr = (ring_t *)((char *)map + w.shm->task_off);
  w.rr = (ring_t *)((char *)map + w.shm->res_off);
  atomic_store(&w.shm->pid, (int32_t)getpid());
  g_self = w.shm;
  mpc__identity_set_worker(slot);
  atomic_store(&w.shm->oom_hint, 0);
  if (cfg->mem_limit)
    limit_memory(cfg->mem_limit);
  if (cfg->init && cfg->init(cfg->ctx, slot) != 0)
    _exit(WORKER_EXIT_INIT);
  atomic_store(&w.shm->ready, 1);
  ring_parent(&w);

  mpc_buf_t out = MPC_BUF_INIT, rasm = MPC_BUF_INIT;
  batch_t bt = {.b = MPC_BUF_INIT};
  for (;;) {
    ring_rec_t *rec;
    uint64_t pos = 0;
    WAIT_UNTIL(&w, (rec = ring_peek(w.tr, &pos)) != NULL);
    uint32_t type = rec->type;
    uint64_t did = rec->id;
    if (RING_TYPE(type) == T_RETIRE)
      _exit(0);
    if ((type & RING_MORE) || rasm.len) {
      /* A fragment of a large unit: collect, then run from the copy. */
      if (mpc_buf_append(&rasm, rec + 1, rec->len) != 0)
        _exit(WORKER_EXIT_INIT + 2);
      ring_release(w.tr, pos, rec);
      ring_parent(&w);
      if (type & RING_MORE)
        continue;
      run_unit(&w, cfg, did, rasm.data, rasm.len, &out, &bt);
      mpc_buf_free(&rasm);
      continue;
    }
    /* Zero copy: the task reads its input where it lies in the ring. */
    run_unit(&w, cfg, did, (const unsigned char *)(rec + 1), rec->len, &out,
             &bt);
    ring_release(w.tr, pos, rec);
    ring_parent(&w);
  }
}
