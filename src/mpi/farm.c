/* mpc-run's runtime: the master/worker task farm over MPI.
 *
 * Every rank (the master's included) drives a local pool created before
 * MPI_Init.  Ranks ask the master for work with credits before they run dry;
 * the master answers with batches sized by the schedule, gathers results,
 * writes the journal and retries failed tasks on another rank.  The master
 * never blocks in MPI: it probes, receives what has arrived and tests its
 * sends, between short polls of its own pool. */
#include "mpi/farm.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/identity.h"
#include "mpc/log.h"
#include "mpc/pool.h"
#include "pool/batch.h"
#include "mpi/fault.h"
#include "mpi/journal.h"
#include "mpi/trace.h"
#include "mpi/wire.h"

#define HOSTLEN 64
#define MAX_BATCH 4096     /* tasks per message at most (guided) */
#define SEND_WINDOW 256    /* one-task messages in flight to a rank at most */
#define BATCH_WORK_S 0.005 /* guided: a batch beyond the ask holds ~this per worker */
#define KPEND 32          /* default keys made together (keys_flush) */
#define LOOKAHEAD 2048     /* tasks generated ahead, to know what is left */
#define GEN_AHEAD 64       /* tasks generated at a time while handing out */
#define FAILS_KEPT 20      /* failures listed in the summary */
#define UP_MAX_RESULTS 512 /* a rank sends its results at least this often */
#define UP_MAX_BYTES (256u << 10)
#define UP_MAX_DELAY 0.005 /* seconds a result may wait to be sent */
#define POLL_MAX 0.002     /* longest sleep between polls when idle... */
#define POLL_MAX_LONG 0.016 /* ...up to this while tasks are long (idle_cap) */
#define WORKER_GIVEUP 30.0 /* seconds a signalled rank waits for the master */
#define SPEC_EVERY 0.05    /* seconds between looks for stragglers */
#define SPEC_MIN_AGE 0.5   /* a task younger than this is never a straggler */

static volatile sig_atomic_t g_signals;
static volatile sig_atomic_t g_signo;

static void on_signal(int sig) {
  g_signals++;
  g_signo = sig;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int env_int(const char *const *names, int dflt) {
  for (; *names; names++) {
    const char *v = getenv(*names);
    if (v && *v) {
      char *end;
      long x = strtol(v, &end, 10);
      if (!*end && x >= 0 && x < (1 << 30))
        return (int)x;
    }
  }
  return dflt;
}

int mpc__env_rank(void) {
  static const char *const n[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                  "PMIX_RANK", "SLURM_PROCID", NULL};
  return env_int(n, 0);
}

int mpc__env_size(void) {
  static const char *const n[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                                  "SLURM_NTASKS", NULL};
  return env_int(n, 1);
}

/* ---- master's task records -------------------------------------------------- */
typedef struct task {
  uint64_t seq;
  union {
    char *key;      /* NUL-terminated; the input follows it (TASK_IN) */
    unsigned char inb[8]; /* in_rec: the input itself (TASK_KEY is "") */
  };
  union {
    struct task *qnext;   /* while queued */
    struct stash *stash;  /* once done, with --ordered (has_stash) */
  };
  uint32_t key_len, in_len;
  float run_at[2];  /* when the running attempts were dispatched (s after t0) */
  int32_t run_rank[2]; /* ranks running an attempt now, -1: none ([1]: a copy) */
  int32_t rank;     /* rank of the last attempt, -1 never ran */
  uint16_t attempts; /* started */
  uint16_t excused;  /* attempts not counted against --retries: lost rank,
                        signal, speculative copies */
  uint16_t run_att[2]; /* attempt numbers of the running ones */
  union {
    struct {
      unsigned live : 1;   /* a record in use (not freed) */
      unsigned retried : 1;
      unsigned zombie : 1; /* gathered and freed but for an attempt still running */
      unsigned copied : 1; /* a speculative copy was started (once per task) */
      unsigned done : 1;   /* outcome known, waiting for its turn (--ordered) */
      unsigned has_stash : 1;
      unsigned own_data : 1; /* key and input in an allocation of their own */
      unsigned key_lazy : 1; /* default key not made yet ("" until task_key()) */
      unsigned in_rec : 1;   /* lazy key and an input of up to 8 bytes, kept in
                                inb: no bytes elsewhere to write, read and
                                free (one cache line per task, not two) */
    };
    uint32_t flags; /* all of them: a new record's are set with one store
                       (bit by bit, the byte was read back first, from a line
                       not yet in the cache, and the master waited on it) */
  };
} task_t;
/* Small on purpose: the master writes and reads one per task, thousands of
 * tasks apart, so a record that fits a cache line is one miss, not three. */
_Static_assert(sizeof(task_t) <= 64, "task records fit a cache line");
#define TASK_INB_MAX 8u /* inputs up to this size may be kept in the record */

/* The task's input. */
static inline const unsigned char *TASK_IN(const task_t *t) {
  return t->in_rec ? t->inb : (const unsigned char *)t->key + t->key_len + 1;
}

/* The task's key as it is now ("" while a lazy one is not made). */
static inline const char *TASK_KEY(const task_t *t) {
  return t->in_rec ? "" : t->key;
}

/* The task's key, made now if it was left for later (lazy_keys).  A task
 * whose input is in its record gets an allocation for key and input first
 * (pointers to its input taken before are then stale; "" if memory runs
 * out). */
static const char *task_key(task_t *t) {
  if (t->in_rec) {
    char *d = malloc(17 + t->in_len);
    if (!d)
      return "";
    memcpy(d + 17, t->inb, t->in_len);
    d[0] = 0;
    t->key = d;
    t->key_len = 16;
    t->in_rec = 0;
    t->own_data = 1;
  }
  if (t->key_lazy) {
    const unsigned char *in = TASK_IN(t);
    size_t len = t->in_len;
    mpc__key_default_many(&t->key, &in, &len, 1);
    t->key_lazy = 0;
  }
  return t->key;
}

/* An outcome kept for --ordered until it is its turn (allocated only then,
 * so that task records stay small on the hot path). */
typedef struct stash {
  mpc_job_result_t res;
  char host[HOSTLEN];
  size_t out_len;
  unsigned char out[]; /* out_len bytes */
} stash_t;

typedef struct tq {
  task_t *head, *tail;
  size_t n;
} tq_t;

static void tq_push(tq_t *q, task_t *t) {
  t->qnext = NULL;
  if (q->tail)
    q->tail->qnext = t;
  else
    q->head = t;
  q->tail = t;
  q->n++;
}

static task_t *tq_pop(tq_t *q) {
  task_t *t = q->head;
  if (t) {
    q->head = t->qnext;
    if (!q->head)
      q->tail = NULL;
    q->n--;
  }
  return t;
}

/* Pop the first task whose last attempt was not on `avoid`. */
static task_t *tq_pop_avoid(tq_t *q, int avoid) {
  task_t *prev = NULL;
  for (task_t *t = q->head; t; prev = t, t = t->qnext) {
    if (t->rank == avoid)
      continue;
    if (prev)
      prev->qnext = t->qnext;
    else
      q->head = t->qnext;
    if (q->tail == t)
      q->tail = prev;
    q->n--;
    return t;
  }
  return NULL;
}

/* ---- task records in blocks -------------------------------------------------
 * Records are carved from blocks of TB_TASKS consecutive seqs (seqs are handed
 * out without gaps from 0), and their keys and inputs from byte chunks owned by
 * the block (a large one gets an allocation of its own).  So generating a task
 * rarely allocates, and seq -> task is an index into a ring of blocks instead
 * of a hash.  A block is freed with its last task: a task that stays (it hangs,
 * or waits for its turn with --ordered) keeps its own block alive, not the
 * ones after it. */
#define TB_TASKS 1024u
#define TB_CHUNK (32u << 10) /* bytes per chunk of keys and inputs */
#define TB_INLINE 1024u      /* larger key + input: an allocation of its own */

typedef struct tchunk {
  struct tchunk *next;
  size_t used, cap;
  unsigned char b[];
} tchunk_t;

typedef struct tblock {
  uint64_t first;   /* seq of rec[0] */
  uint32_t n, live; /* records handed out; of those, not yet freed */
  tchunk_t *chunk;  /* newest first */
  struct tblock *next_spare;
  task_t rec[TB_TASKS];
} tblock_t;

typedef struct tmap {
  tblock_t **blk; /* ring: blk[(head + i) & (cap - 1)] holds seqs from
                     base + i * TB_TASKS; NULL once freed */
  size_t head, n, cap;
  uint64_t base;
  tblock_t *cur;   /* block being filled (the last one in the ring) */
  tblock_t *spare; /* freed blocks kept for the next ones (warm memory) */
  size_t nspare;
  tblock_t *hint;  /* the block of the last look-up: results and fresh tasks
                      come in runs of seqs (NULL when it is retired) */
  size_t live;     /* records in use */
} tmap_t;

static void tb_free(tblock_t *b) {
  for (tchunk_t *c = b->chunk, *nx; c; c = nx) {
    nx = c->next;
    free(c);
  }
  free(b);
}

/* A block is done with: keep a few (with one chunk each) for the next
 * blocks, so that they reuse warm memory instead of faulting fresh pages in
 * (malloc gives memory this size back to the system when it is freed). */
#define TB_SPARES 8
static void tb_retire(tmap_t *m, tblock_t *b) {
  if (m->hint == b)
    m->hint = NULL;
  if (m->nspare >= TB_SPARES) {
    tb_free(b);
    return;
  }
  if (b->chunk) {
    for (tchunk_t *c = b->chunk->next, *nx; c; c = nx) {
      nx = c->next;
      free(c);
    }
    b->chunk->next = NULL;
    b->chunk->used = 0;
  }
  b->next_spare = m->spare;
  m->spare = b;
  m->nspare++;
}

/* Forget freed blocks at the head of the ring. */
static void tm_trim(tmap_t *m) {
  while (m->n && !m->blk[m->head]) {
    m->head = (m->head + 1) & (m->cap - 1);
    m->n--;
    m->base += TB_TASKS;
  }
}

/* The next record of block b, for task seq, with `flags` (and live). */
static inline __attribute__((always_inline)) task_t *rec_put(tmap_t *m, tblock_t *b,
                                                             uint64_t seq, uint32_t flags) {
  task_t *t = &b->rec[b->n++];
  /* The flags of a new record, as constants the compiler folds. */
  task_t in_block = {.flags = 0};
  in_block.live = 1;
  *t = (task_t){.seq = seq, .run_rank = {-1, -1}, .rank = -1, .flags = in_block.flags | flags};
  b->live++;
  m->live++;
  return t;
}

/* A new record for task `seq` (the next seq, always) with `dlen` bytes for its
 * key and input at *data (none, *data NULL, if dlen is 0).  The record is new
 * but for seq, live, own_data and the flags in `flags` (one store per field as
 * it is written: no separate pass over the block). */
static task_t *tm_new(tmap_t *m, uint64_t seq, size_t dlen, unsigned char **data,
                      uint32_t flags) {
  if (!m->cur || m->cur->n == TB_TASKS) {
    if (m->n == m->cap) {
      size_t nc = m->cap ? 2 * m->cap : 64;
      tblock_t **nb = malloc(nc * sizeof *nb);
      if (!nb)
        return NULL;
      for (size_t i = 0; i < m->n; i++)
        nb[i] = m->blk[(m->head + i) & (m->cap - 1)];
      free(m->blk);
      m->blk = nb;
      m->cap = nc;
      m->head = 0;
    }
    tblock_t *b = m->spare;
    if (b) {
      m->spare = b->next_spare;
      m->nspare--;
    } else {
      if (!(b = malloc(sizeof *b)))
        return NULL;
      b->chunk = NULL;
    }
    b->first = seq;
    b->n = b->live = 0;
    if (m->cur && !m->cur->live) { /* every task of the full block is gone */
      m->blk[(m->head + m->n - 1) & (m->cap - 1)] = NULL;
      tb_retire(m, m->cur);
    }
    if (!m->n)
      m->base = seq;
    m->blk[(m->head + m->n++) & (m->cap - 1)] = b;
    m->cur = b;
    tm_trim(m);
  }
  tblock_t *b = m->cur;
  unsigned char *d = NULL;
  if (dlen == 0) {
    /* nothing to place */
  } else if (dlen > TB_INLINE) {
    d = malloc(dlen);
    if (!d)
      return NULL;
  } else {
    tchunk_t *c = b->chunk;
    if (!c || c->cap - c->used < dlen) {
      c = malloc(sizeof *c + TB_CHUNK);
      if (c) {
        c->next = b->chunk;
        c->used = 0;
        c->cap = TB_CHUNK;
        b->chunk = c;
      }
    }
    if (!c)
      return NULL;
    d = c->b + c->used;
    c->used += dlen;
  }
  task_t own = {.flags = 0};
  own.own_data = 1;
  *data = d;
  return rec_put(m, b, seq, (dlen > TB_INLINE ? own.flags : 0) | flags);
}

/* tm_new() for a record without key or input bytes (in_rec): inline while
 * the current block has room. */
static inline __attribute__((always_inline)) task_t *tm_new_rec(tmap_t *m, uint64_t seq,
                                                                uint32_t flags) {
  tblock_t *b = m->cur;
  if (__builtin_expect(!b || b->n == TB_TASKS, 0)) {
    unsigned char *d;
    return tm_new(m, seq, 0, &d, flags);
  }
  return rec_put(m, b, seq, flags);
}

static task_t *tm_get_slow(tmap_t *m, uint64_t seq) {
  if (seq < m->base)
    return NULL;
  uint64_t i = (seq - m->base) / TB_TASKS;
  if (i >= m->n)
    return NULL;
  tblock_t *b = m->blk[(m->head + i) & (m->cap - 1)];
  if (!b || seq - b->first >= b->n)
    return NULL;
  m->hint = b;
  task_t *t = &b->rec[seq - b->first];
  return t->live ? t : NULL;
}

/* (A hinted block is in the ring: retired ones drop the hint.) */
static inline task_t *tm_get(tmap_t *m, uint64_t seq) {
  tblock_t *b = m->hint;
  if (b && seq - b->first < b->n) {
    task_t *t = &b->rec[seq - b->first];
    return t->live ? t : NULL;
  }
  return tm_get_slow(m, seq);
}

/* The live task with the lowest seq >= *from, or NULL; *from moves past it.
 * Safe while tasks are freed in between calls. */
static task_t *tm_next(const tmap_t *m, uint64_t *from) {
  uint64_t s = *from < m->base ? m->base : *from;
  for (uint64_t i = (s - m->base) / TB_TASKS; i < m->n; i++) {
    tblock_t *b = m->blk[(m->head + i) & (m->cap - 1)];
    if (!b)
      continue;
    for (uint64_t k = s > b->first ? s - b->first : 0; k < b->n; k++)
      if (b->rec[k].live) {
        *from = b->first + k + 1;
        return &b->rec[k];
      }
  }
  *from = UINT64_MAX;
  return NULL;
}

/* Release a task's record (and its block with its last record).  `b`: its
 * block if the caller knows it, else NULL. */
static inline __attribute__((always_inline)) void task_free_in(tmap_t *m, task_t *t,
                                                               tblock_t *b) {
  if (!t || !t->live)
    return;
  /* A live record's block is in the ring, where its seq says. */
  if (!b)
    b = m->blk[(m->head + (t->seq - m->base) / TB_TASKS) & (m->cap - 1)];
  if (t->has_stash)
    free(t->stash);
  if (t->own_data)
    free(t->key); /* key and input live in one allocation */
  t->live = 0;
  m->live--;
  if (--b->live == 0 && b != m->cur) {
    m->blk[(m->head + (b->first - m->base) / TB_TASKS) & (m->cap - 1)] = NULL;
    tb_retire(m, b);
    tm_trim(m);
  }
}

static inline __attribute__((always_inline)) void task_free(tmap_t *m, task_t *t) {
  task_free_in(m, t, NULL);
}

static void tm_free(tmap_t *m) {
  for (size_t i = 0; i < m->n; i++) {
    tblock_t *b = m->blk[(m->head + i) & (m->cap - 1)];
    if (!b)
      continue;
    for (uint32_t k = 0; k < b->n; k++)
      if (b->rec[k].live) {
        if (b->rec[k].has_stash)
          free(b->rec[k].stash);
        if (b->rec[k].own_data)
          free(b->rec[k].key);
      }
    tb_free(b);
  }
  while (m->spare) {
    tblock_t *b = m->spare;
    m->spare = b->next_spare;
    tb_free(b);
  }
  free(m->blk);
  memset(m, 0, sizeof *m);
}

static int t_nrun(const task_t *t) {
  return (t->run_rank[0] >= 0) + (t->run_rank[1] >= 0);
}

/* The task's outcome was gathered: free it, unless an attempt still runs
 * (a speculative race): then when that attempt reports. */
static void task_retire(tmap_t *m, task_t *t) {
  t->done = 1;
  if (t_nrun(t)) {
    t->zombie = 1;
    return;
  }
  task_free(m, t);
}

/* ---- sends in flight ------------------------------------------------------- */
#define SENDQ_SPARES 16
#define SENDQ_SPARE_MAX (1u << 20)
typedef struct sendq {
  MPI_Request *req;
  mpc_buf_t *buf;
  int *dest;
  int *idx; /* for MPI_Testsome */
  size_t n, cap;
  size_t *per_dest; /* optional: sends in flight to each rank */
  /* Buffers of finished sends, kept for the next messages: freeing and
   * allocating tens of kilobytes per message made the kernel fault and clear
   * fresh pages for every one. */
  mpc_buf_t spare[SENDQ_SPARES];
  size_t nspare;
} sendq_t;

/* An empty buffer for a new message, warm if one is spare. */
static mpc_buf_t sendq_buf(sendq_t *s) {
  if (s && s->nspare) {
    mpc_buf_t b = s->spare[--s->nspare];
    b.len = 0;
    return b;
  }
  return (mpc_buf_t)MPC_BUF_INIT;
}

static void sendq_done(sendq_t *s, mpc_buf_t *b) {
  if (s->nspare < SENDQ_SPARES && b->cap <= SENDQ_SPARE_MAX) {
    s->spare[s->nspare++] = *b;
    *b = (mpc_buf_t)MPC_BUF_INIT;
  } else {
    mpc_buf_free(b);
  }
}

static int sendq_add(sendq_t *s, MPI_Comm comm, int dest, int tag, mpc_buf_t *b) {
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    MPI_Request *nr = realloc(s->req, nc * sizeof *nr);
    if (!nr)
      return MPC_ENOMEM;
    s->req = nr;
    mpc_buf_t *nb = realloc(s->buf, nc * sizeof *nb);
    if (!nb)
      return MPC_ENOMEM;
    s->buf = nb;
    int *nd = realloc(s->dest, nc * sizeof *nd);
    if (!nd)
      return MPC_ENOMEM;
    s->dest = nd;
    int *ni = realloc(s->idx, nc * sizeof *ni);
    if (!ni)
      return MPC_ENOMEM;
    s->idx = ni;
    s->cap = nc;
  }
  /* The buffer is handed over; the caller gets an empty one back. */
  s->buf[s->n] = *b;
  *b = (mpc_buf_t)MPC_BUF_INIT;
  if (MPI_Isend(s->buf[s->n].data, (int)s->buf[s->n].len, MPI_BYTE, dest, tag,
                comm, &s->req[s->n]) != MPI_SUCCESS) {
    mpc_buf_free(&s->buf[s->n]);
    return MPC_EIO;
  }
  s->dest[s->n++] = dest;
  if (s->per_dest)
    s->per_dest[dest]++;
  return 0;
}

/* Free the buffers of finished sends, with one MPI_Testsome.  (Before the
 * send window of serve() existed, thousands of one-task messages could be in
 * flight and Open MPI needed the progress calls of one MPI_Test per send to
 * move its backlog; with the window, one Testsome is as fast and cheaper.) */
static void sendq_test(sendq_t *s) {
  int outc = 0;
  if (!s->n || MPI_Testsome((int)s->n, s->req, &outc, s->idx, MPI_STATUSES_IGNORE) !=
                   MPI_SUCCESS || outc <= 0)
    return;
  for (int k = 0; k < outc; k++) {
    sendq_done(s, &s->buf[s->idx[k]]);
    if (s->per_dest)
      s->per_dest[s->dest[s->idx[k]]]--;
  }
  size_t j = 0; /* finished requests are MPI_REQUEST_NULL now */
  for (size_t i = 0; i < s->n; i++)
    if (s->req[i] != MPI_REQUEST_NULL) {
      s->req[j] = s->req[i];
      s->buf[j] = s->buf[i];
      s->dest[j++] = s->dest[i];
    }
  s->n = j;
}

/* Free the queue.  `wait`: first wait for the sends in flight; else leave
 * them (a lost rank may never take what was sent to it). */
static void sendq_release(sendq_t *s, int wait) {
  if (wait) {
    if (s->n)
      MPI_Waitall((int)s->n, s->req, MPI_STATUSES_IGNORE);
    for (size_t i = 0; i < s->n; i++)
      mpc_buf_free(&s->buf[i]);
  } else {
    sendq_test(s); /* what finished is freed; the rest stays with MPI */
  }
  for (size_t i = 0; i < s->nspare; i++)
    mpc_buf_free(&s->spare[i]);
  free(s->req);
  free(s->buf);
  free(s->dest);
  free(s->idx);
  memset(s, 0, sizeof *s);
}

/* ---- per-rank view on the master ------------------------------------------ */
typedef struct rstate {
  int workers;
  char host[HOSTLEN];
  size_t want;    /* outstanding request (credits), 0: none */
  size_t inflight;
  int draining;   /* it canceled its tasks on its own (signal): send no more */
  int bye;        /* its last message arrived */
  double last_seen;
  int lost;       /* silent past --heartbeat: its tasks went elsewhere */
  tq_t staticq;   /* --schedule static: its share */
  int32_t *wpid;  /* pid of each worker slot as its last full entry said
                     (for short entries; MPC__SHORT_WORKERS, made on use) */
  mpc__rank_stat_t st;
} rstate_t;

struct mpc__farm {
  mpc__farm_cfg_t cfg;
  const mpc_job_t *job;
  void *state;
  int job_inited;
  mpc_pool_t *pool;
  int rank_guess, size_guess;
  pid_t launcher; /* our parent when a launcher started us, else 0 */
  char host[HOSTLEN];
  /* MPI */
  int we_init;
  int mpi;        /* MPI is in use: launched by mpirun/srun, or already up */
  MPI_Comm comm;
  int rank, nranks, workers, total_workers;
  double t0;
  mpc_slice_t *sub_in; /* a batch for mpc_pool_submit_many: inputs, tags */
  uint64_t *sub_tag;
  size_t sub_cap;
  /* worker side */
  mpc_buf_t up;   /* results being collected for the next UP message */
  uint32_t up_n;
  double up_first;
  double task_avg; /* running mean of task seconds on this rank (0: none yet) */
  int up_err;
  int up_short;    /* the master takes short entries for successes */
  uint64_t up_prev; /* tid of the last entry in `up` */
  int32_t up_pid[MPC__SHORT_WORKERS]; /* pid the master knows for each worker */
  /* master side */
  rstate_t *r;
  tmap_t map;
  /* Fresh tasks are generated in seq order and handed out in that order, so
   * they are the live, not yet done records from fresh_lo on: no queue links
   * to chase through records that have left the cache. */
  uint64_t fresh_lo;
  size_t fresh_n;
  tq_t retry;
  uint64_t next_seq, next_gather, static_rr;
  int gen_done;
  int fatal;      /* an error stops the run (exit 1) */
  int stop_kind;  /* 0 running, MPC__HALT_SOON or MPC__HALT_NOW */
  int stop_signal, stop_wall, stop_halt;
  double soon_deadline;
  double deadline;   /* --walltime or the allocation's end (monotonic), 0: none */
  int wall_hold;     /* a rank was refused work: it would not finish in time */
  uint64_t dur_n;    /* durations of successful attempts: count, and sums */
  double dur_shift, dur_s1, dur_s2; /* of (d - dur_shift) and its square */
  double tnow;       /* the master loop's clock, read once per turn */
  double last_spec;
  uint64_t spec_launched, spec_won;
  uint64_t by_status[8]; /* final outcomes (resumed ones count as ok) */
  int nlost;
  mpc__faults_t faults;
  sendq_t *msq;      /* this rank's sends in flight (master or worker loop) */
  char why[256];
  mpc__jdone_t *jdone;
  mpc__journal_t jr;
  int have_journal;
  FILE *timeline;
  int observe;         /* --trace or --timeline: keep every attempt */
  int lazy_keys;       /* the job reads no keys and nothing here needs them
                          (no journal, resume, trace, timeline): default keys
                          are made only for failures */
  int plain;           /* none of those, no journal, no --ordered (fixed at
                          the start: a journal closed on error stays slow) */
  int ordered;         /* --ordered or a job that wants task order */
  int tl_png;          /* --timeline FILE.png: drawn at the end from att[] */
  mpc__attempt_t *att; /* attempts that ran, for --trace and the PNG timeline */
  size_t natt, catt;
  int att_err;
  size_t inflight;
  mpc_job_report_t rep;
  uint64_t finished; /* ok + failed (not resumed) */
  mpc__fail_item_t fails[FAILS_KEPT];
  size_t nfails;
  mpc_buf_t in, key, tmp;
  task_t *kpend[KPEND]; /* generated tasks whose default key is still to make */
  size_t nkpend;
  int progress;
  double last_progress;
};

/* The pool's task function when there are task faults to inject
 * (MPC_FAULT): the fault, else the job's run() with its state.  Without
 * faults the pool calls run() directly (mpc__farm_new()). */
static int task_tramp(void *ctx, const void *in, size_t len, mpc_buf_t *out) {
  mpc__farm_t *f = ctx;
  int rc = mpc__fault_task(&f->faults, f->rank_guess, mpc_worker_index(),
                           mpc_task_id(), out);
  return rc ? rc : f->job->run(f->state, in, len, out);
}

int mpc__farm_new(mpc__farm_t **out, const mpc__farm_cfg_t *cfg, int job_argc,
                  char **job_argv, mpc_buf_t *err) {
  *out = NULL;
  mpc__farm_t *f = calloc(1, sizeof *f);
  if (!f)
    return MPC_ENOMEM;
  f->cfg = *cfg;
  f->job = cfg->job;
  f->comm = MPI_COMM_NULL;
  f->rank_guess = mpc__env_rank();
  f->size_guess = mpc__env_size();
  /* Started by a launcher (mpirun's daemon, slurmstepd): go when it goes, as
   * after `kill -9 mpirun`, instead of waiting for MPI to notice.  Worker
   * ranks have nothing to save; the master gets SIGTERM, flushes its journal
   * and leaves (see master_loop). */
  if (getenv("OMPI_COMM_WORLD_RANK") || getenv("PMI_RANK") ||
      getenv("PMIX_RANK") || getenv("SLURM_PROCID")) {
    int sig = f->rank_guess == 0 ? SIGTERM : SIGKILL;
    f->launcher = getppid();
    if (prctl(PR_SET_PDEATHSIG, sig) == 0 && getppid() != f->launcher)
      raise(sig);
  }
  if (gethostname(f->host, sizeof f->host - 1) != 0)
    strcpy(f->host, "localhost");
  f->host[HOSTLEN - 1] = 0;
  mpc__identity_set(f->rank_guess, f->host);
  mpc_log_set_rank(f->rank_guess);
  int rc = mpc__fault_parse(getenv("MPC_FAULT"), &f->faults, err);
  if (rc) {
    free(f);
    return rc;
  }

  f->ordered = cfg->ordered || (cfg->job->flags & MPC_JOB_ORDERED);
  mpc_job_env_t env = {
      .rank = f->rank_guess,
      .nranks = f->size_guess,
      .workers = cfg->workers,
      .ordered = f->ordered,
      .resume = cfg->resume,
      .verbose = cfg->verbose,
      .journal = cfg->journal,
  };
  rc = f->job->init(job_argc, job_argv, &env, &f->state, err);
  if (rc) {
    if (err->len == 0)
      mpc__msg(err, "%s: init failed: %s", cfg->job_name,
                           mpc_strerror(rc));
    mpc__fault_free(&f->faults);
    free(f);
    return rc;
  }
  f->job_inited = 1;
  /* Without task faults to inject the pool calls the job's run() itself
   * (same signature, its state as ctx): no trampoline per task.  The
   * workers are forked with what f holds now. */
  int tramp = f->faults.n > f->faults.nrank;
  mpc_pool_opts_t po = {
      .workers = cfg->workers,
      .fn = tramp ? task_tramp : f->job->run,
      .ctx = tramp ? (void *)f : f->state,
      .timeout = cfg->timeout,
      .retries = 0,
      .mem_limit = cfg->mem_limit,
      .progress = MPC_PROGRESS_OFF,
      .no_signals = 1,
      .defer_start = 1,
  };
  rc = mpc_pool_new(&f->pool, &po);
  if (rc) {
    mpc__msg(err, "cannot start the local pool: %s",
                         mpc_strerror(rc));
    mpc__farm_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

void mpc__farm_free(mpc__farm_t *f) {
  if (!f)
    return;
  mpc_pool_free(f->pool);
  if (f->job_inited && f->job->fini)
    f->job->fini(f->state);
  free(f->sub_in);
  free(f->sub_tag);
  mpc_buf_free(&f->up);
  mpc_buf_free(&f->in);
  mpc_buf_free(&f->key);
  mpc_buf_free(&f->tmp);
  tm_free(&f->map);
  if (f->r) {
    for (int i = 0; i < f->nranks; i++) {
      free(f->r[i].st.wtasks);
      free(f->r[i].st.wbusy);
      free(f->r[i].wpid);
    }
    free(f->r);
  }
  mpc__fault_free(&f->faults);
  for (size_t i = 0; i < f->nfails; i++) {
    free(f->fails[i].key);
    free(f->fails[i].host);
    free(f->fails[i].msg);
  }
  mpc__jdone_free(f->jdone);
  for (size_t i = 0; i < f->natt; i++)
    free(f->att[i].key);
  free(f->att);
  free(f);
}

/* ======================================================================= */
/*                              worker ranks                                */
/* ======================================================================= */

/* Room for a batch of n tasks in sub_in / sub_tag. */
static int sub_reserve(mpc__farm_t *f, size_t n) {
  if (n <= f->sub_cap)
    return 0;
  size_t nc = n < 256 ? 256 : n;
  mpc_slice_t *ni = malloc(nc * sizeof *ni);
  uint64_t *nt = malloc(nc * sizeof *nt);
  if (!ni || !nt) {
    free(ni);
    free(nt);
    return MPC_ENOMEM;
  }
  free(f->sub_in);
  free(f->sub_tag);
  f->sub_in = ni;
  f->sub_tag = nt;
  f->sub_cap = nc;
  return 0;
}

static int up_begin(mpc__farm_t *f) {
  if (f->up.len)
    return 0;
  f->up_n = 0;
  f->up_prev = 0;
  /* The last buffer went with its send: take a spare one, sized for a full
   * message of small results rather than grown result by result. */
  if (!f->up.cap)
    f->up = sendq_buf(f->msq);
  int rc = mpc_buf_reserve(&f->up, UP_MAX_RESULTS * (MPC__RES_FIXED + 16));
  return rc ? rc : mpc__wire_hdr(&f->up, MPC__UP_RESULTS, 0);
}

/* A worker killed by the signal that stops the run (mpirun sends it to the
 * whole process group) did not fail: its task was canceled. */
static mpc_task_status_t status_in_shutdown(const mpc_result_t *r) {
  if (g_signals && r->status == MPC_TASK_CRASHED &&
      (r->code == SIGINT || r->code == SIGTERM || r->code == SIGHUP ||
       r->code == SIGKILL || r->code == SIGUSR1))
    return MPC_TASK_CANCELED;
  return r->status;
}

/* A local pool result as it travels to the master (times relative to t0). */
static mpc__wres_t wres_from(const mpc__farm_t *f, const mpc_result_t *r) {
  return (mpc__wres_t){
      .tid = r->id,
      .status = (uint32_t)status_in_shutdown(r),
      .code = r->code,
      .worker = r->worker,
      .pid = (int32_t)r->pid,
      .start = r->start > 0 ? r->start - f->t0 : 0,
      .end = r->end > 0 ? r->end - f->t0 : 0,
      .maxrss_kb = r->maxrss_kb,
      .data = r->data,
      .len = (uint32_t)r->len,
  };
}

/* One result into the UP message being collected (up_begin() was called). */
static inline __attribute__((always_inline)) int up_put(mpc__farm_t *f,
                                                        const mpc_result_t *r) {
  double d = r->end - r->start;
  unsigned wk = (unsigned)r->worker;
  uint64_t prev = f->up_prev;
  f->up_prev = r->id;
  if (f->up_short && r->status == MPC_TASK_OK && r->start > 0 &&
      mpc__wire_short_fits(prev, r->id, r->worker, d, r->len) && r->pid > 0 &&
      f->up_pid[wk] == r->pid) /* a success: its worker, run time, output */
    return mpc__wire_result_short(&f->up, prev, r->id, (int)wk, d, r->data,
                                  (uint32_t)r->len);
  mpc__wres_t w = wres_from(f, r);
  if (w.pid > 0 && wk < MPC__SHORT_WORKERS)
    f->up_pid[wk] = w.pid; /* the master learns it from this entry */
  return mpc__wire_result(&f->up, &w);
}

/* 0.9^n by squaring: pow() cost ~125 instructions, and this runs once per
 * array of results (a dozen tasks each with trivial tasks). */
static double pow09(size_t n) {
  double r = 1, b = 0.9;
  for (; n; n >>= 1, b *= b)
    if (n & 1)
      r *= b;
  return r;
}

/* The longest run from r[0] of plain successes that go as short entries
 * into the room `up` has now, written there: what up_put() does for each,
 * with the message's end, the last task id and the run-time sum in
 * registers (a store through a byte pointer would make the compiler reload
 * them every entry).  Returns how many were written; 0 when r[0] needs
 * up_put(). */
static size_t up_put_shorts(mpc__farm_t *f, const mpc_result_t *r, size_t n,
                            double *dsum, size_t *dn) {
  unsigned char *o = f->up.data + f->up.len;
  const unsigned char *lim = f->up.data + f->up.cap;
  uint64_t prev = f->up_prev;
  double s = 0;
  size_t i, k = 0;
  for (i = 0; i < n; i++) {
    const mpc_result_t *x = &r[i];
    unsigned wk = (unsigned)x->worker;
    double d = x->end - x->start;
    if (x->status != MPC_TASK_OK || !(x->start > 0) ||
        !mpc__wire_short_fits(prev, x->id, x->worker, d, x->len) ||
        x->pid <= 0 || f->up_pid[wk] != x->pid ||
        (size_t)(lim - o) < MPC__RES_SHORT + x->len)
      break;
    if (d > 0) { /* (what the running mean counts: end > start > 0) */
      s += d;
      k++;
    }
    o = mpc__wire_result_short_at(o, prev, x->id, (int)wk, d, x->data,
                                  (uint32_t)x->len);
    prev = x->id;
  }
  f->up.len = (size_t)(o - f->up.data);
  f->up_prev = prev;
  f->up_n += (uint32_t)i;
  *dsum += s;
  *dn += k;
  return i;
}

/* Results into the UP message being collected, in arrays as
 * mpc_pool_poll_many() hands them over (most are the successes of one
 * worker's batch).  The running mean of task times moves once per array:
 * as n steps of weight 0.1 would move it, towards the array's mean. */
static int local_results_to_up(void *ctx, const mpc_result_t *r, size_t n) {
  mpc__farm_t *f = ctx;
  int rc = up_begin(f);
  if (rc) {
    f->up_err = rc;
    return 0;
  }
  if (f->up_n == 0)
    f->up_first = now_s();
  double dsum = 0;
  size_t dn = 0;
  for (size_t i = 0; i < n; i++) {
    if (f->up_short && (i += up_put_shorts(f, r + i, n - i, &dsum, &dn)) == n)
      break;
    if (r[i].end > r[i].start && r[i].start > 0) {
      dsum += r[i].end - r[i].start;
      dn++;
    }
    if ((rc = up_put(f, &r[i]))) {
      f->up_err = rc;
      return 0;
    }
    f->up_n++;
  }
  if (dn) {
    double m = dsum / (double)dn;
    double keep = pow09(dn);
    f->task_avg = f->task_avg > 0 ? keep * f->task_avg + (1 - keep) * m : m;
  }
  return 0;
}

/* One result (what mpc_pool_terminate() hands over, and canceled tasks). */
static int local_result_to_up(void *ctx, const mpc_result_t *r) {
  return local_results_to_up(ctx, r, 1);
}

static int up_send(mpc__farm_t *f, sendq_t *sq, uint32_t kind, size_t want) {
  int rc = up_begin(f);
  if (rc)
    return rc;
  mpc__wire_set_kind(&f->up, kind);
  mpc__wire_set_x(&f->up, (uint32_t)want);
  mpc__wire_set_n(&f->up, f->up_n);
  if (f->cfg.debug_protocol)
    MPC_LOG(MPC_LOG_ERROR, "-> master: %s, %u results, want %zu",
            kind == MPC__UP_BYE ? "BYE" : "RESULTS", f->up_n, want);
  rc = sendq_add(sq, f->comm, 0, MPC__TAG_UP, &f->up);
  f->up_n = 0;
  return rc;
}

/* The longest sleep between looks at MPI while nothing happens, for tasks
 * of `task` seconds (0: unknown): an eighth of a task, within [POLL_MAX,
 * POLL_MAX_LONG].  A rank's workers wake it through the pool, but MPI has no
 * such doorbell, and every look is a context switch taken from a worker on
 * the same core: with 47 ms tasks, looks every 2 ms cost the two rank
 * processes of a 2-rank stats run ~5% of the CPU.  Credits cover two tasks
 * per worker, so a reply that waits an eighth of a task idles no one. */
static double idle_cap(double task) {
  double c = task / 8;
  return c < POLL_MAX ? POLL_MAX : c > POLL_MAX_LONG ? POLL_MAX_LONG : c;
}

/* Poll the local pool for up to `timeout` seconds.  An empty pool returns at
 * once, so then sleep here: an idle rank must not spin on a shared core. */
static int poll_pool(mpc__farm_t *f, double timeout, mpc_results_cb cb) {
  double t0 = timeout > 0 ? now_s() : 0;
  int got = mpc_pool_poll_many(f->pool, timeout, cb, f);
  if (got == 0 && timeout > 0) {
    double left = timeout - (now_s() - t0);
    if (left > 0.00005) {
      struct timespec ts = {0, (long)(left * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  return got;
}

/* Tasks that keep `workers` busy for two waits of `wait` s for more (a round
 * trip to the master, or a turn of its loop), for tasks of `task` s: at
 * least 2 per worker, at most cap. */
static size_t credits(int workers, double wait, double task, size_t cap) {
  double c = (double)workers * (2.0 + 2.0 * wait / (task > 1e-7 ? task : 1e-7));
  return c > (double)cap ? cap : (size_t)c;
}

static int worker_loop(mpc__farm_t *f) {
  sendq_t sq = {0};
  mpc_buf_t msg = MPC_BUF_INIT;
  f->msq = &sq;
  int rc = 0, asked = 0, stop = 0, canceled_self = 0, draining = 0;
  double poll_to = 0, last_send = now_s(), sig_time = 0;
  size_t credit = 2 * (size_t)f->workers;
  size_t low_water = (size_t)f->workers, got_batch = 0;
  double rtt = 0, asked_at = 0;
  while (!stop) {
    int activity = 0;
    /* Messages from the master. */
    for (;;) {
      int flag = 0;
      MPI_Message m;
      MPI_Status st;
      MPI_Improbe(0, MPC__TAG_DOWN, f->comm, &flag, &m, &st);
      if (!flag)
        break;
      int cnt;
      MPI_Get_count(&st, MPI_BYTE, &cnt);
      mpc_buf_clear(&msg);
      if ((rc = mpc_buf_reserve(&msg, (size_t)cnt + 1)))
        goto out;
      MPI_Mrecv(msg.data, cnt, MPI_BYTE, &m, MPI_STATUS_IGNORE);
      msg.len = (size_t)cnt;
      activity = 1;
      mpc__wrd_t rd = {msg.data, msg.data + msg.len};
      uint32_t kind, x, n;
      if ((rc = mpc__wire_read_hdr(&rd, &kind, &x, &n)))
        goto out;
      if (f->cfg.debug_protocol)
        MPC_LOG(MPC_LOG_ERROR, "<- master: kind %u, %u tasks", kind, n);
      if (kind == MPC__DOWN_TASKS) {
        /* The message's tasks go to the pool as one batch, written into
         * the pool's unit as they are decoded (their inputs are at most
         * the rest of the message). */
        if (x & MPC__DOWN_SHORT)
          f->up_short = 1;
        uint64_t tid0 = 0;
        if (x & MPC__DOWN_RUN) {
          if (rd.end - rd.p < 8) {
            rc = MPC_EPROTO;
            goto out;
          }
          tid0 = mpc__get64(rd.p);
          rd.p += 8;
        }
        /* Every task takes at least a byte of the message: a count past
         * that is a broken message, not a reason to allocate its room. */
        if ((size_t)n > (size_t)(rd.end - rd.p)) {
          rc = MPC_EPROTO;
          goto out;
        }
        mpc__pool_batch_t bt = {0};
        if (!canceled_self &&
            (rc = mpc__pool_batch_begin(f->pool, &bt, n, (size_t)(rd.end - rd.p))))
          goto out;
        if (!canceled_self && (x & MPC__DOWN_RUN)) {
          /* The usual case in a loop of its own (no per-task tests of the
           * message's kind), on a copy of the batch whose address is not
           * taken, so that its cursor can stay in registers. */
          mpc__pool_batch_t lb = bt;
          for (uint32_t i = 0; i < n; i++) {
            uint32_t len;
            const void *in;
            if ((rc = mpc__wire_read_run_task(&rd, &in, &len)) ||
                (rc = mpc__pool_batch_add(&lb, tid0 + i, in, len))) {
              mpc__pool_batch_abort(&bt);
              goto out;
            }
          }
          bt = lb;
        } else {
          for (uint32_t i = 0; i < n; i++) {
            uint32_t len;
            uint64_t tid = tid0 + i;
            const void *in;
            if (x & MPC__DOWN_RUN)
              rc = mpc__wire_read_run_task(&rd, &in, &len);
            else
              rc = mpc__wire_read_task(&rd, &tid, &in, &len);
            if (!rc && !canceled_self)
              rc = mpc__pool_batch_add(&bt, tid, in, len);
            if (rc) {
              mpc__pool_batch_abort(&bt);
              goto out;
            }
            if (canceled_self) {
              mpc_result_t cr = {.id = tid, .status = MPC_TASK_CANCELED,
                                 .worker = -1};
              local_result_to_up(f, &cr);
            }
          }
        }
        if (!canceled_self && (rc = mpc__pool_batch_end(f->pool, &bt)))
          goto out;
        got_batch += n;
        if (asked_at > 0) {
          double d = now_s() - asked_at;
          rtt = rtt > 0 ? 0.8 * rtt + 0.2 * d : d;
          asked_at = 0;
        }
        if (x & MPC__DOWN_LAST) {
          asked = 0;
          /* Ask again when half of this reply is left: big batches of short
           * tasks must not run dry while the next request travels. */
          low_water = got_batch / 2 > (size_t)f->workers ? got_batch / 2 : (size_t)f->workers;
          got_batch = 0;
        }
      } else if (kind == MPC__DOWN_CANCEL) {
        for (uint32_t i = 0; i < n; i++) {
          uint64_t tid;
          if (rd.end - rd.p < 8) {
            rc = MPC_EPROTO;
            goto out;
          }
          memcpy(&tid, rd.p, 8);
          rd.p += 8;
          if (mpc_pool_cancel(f->pool, tid)) {
            /* finished already: its result is on the way */
          }
        }
      } else if (kind == MPC__DOWN_DRAIN) {
        draining = 1;
        if ((rc = mpc_pool_drain(f->pool)))
          goto out;
      } else if (kind == MPC__DOWN_STOP || kind == MPC__DOWN_STOP_NOW) {
        if (kind == MPC__DOWN_STOP_NOW || mpc_pool_pending(f->pool))
          mpc_pool_terminate(f->pool, local_result_to_up, f);
        stop = 1;
      } else {
        rc = MPC_EPROTO;
        goto out;
      }
    }
    if (stop)
      break;
    /* A signal: cancel what runs here and wait for the master's word. */
    if (g_signals && !canceled_self) {
      canceled_self = 1;
      sig_time = now_s();
      mpc_pool_terminate(f->pool, local_result_to_up, f);
    }
    if (canceled_self && now_s() - sig_time > WORKER_GIVEUP) {
      rc = MPC_EINTR;
      goto out;
    }
    size_t pend = mpc_pool_pending(f->pool);
    size_t want = 0;
    /* Credits: enough tasks to keep the workers busy for about two round
     * trips to the master (short tasks: many; long ones: 2 per worker). */
    if (f->task_avg > 0 && rtt > 0) {
      credit = credits(f->workers, rtt, f->task_avg, MAX_BATCH);
      if (low_water < credit / 2)
        low_water = credit / 2;
    }
    if (!asked && !canceled_self && !draining && pend <= low_water) {
      want = credit > pend ? credit - pend : 1;
      asked = 1;
      asked_at = now_s();
    }
    double t = now_s();
    if (f->faults.nrank)
      mpc__fault_rank(&f->faults, f->rank, t - f->t0);
    if (want ||
        (f->up_n && (pend == 0 || f->up_n >= UP_MAX_RESULTS ||
                     f->up.len >= UP_MAX_BYTES || t - f->up_first >= UP_MAX_DELAY)) ||
        (f->cfg.heartbeat > 0 && t - last_send >= f->cfg.heartbeat / 4)) {
      if ((rc = up_send(f, &sq, MPC__UP_RESULTS, want)))
        goto out;
      last_send = t;
      activity = 1;
    }
    if (f->up_err) {
      rc = f->up_err;
      goto out;
    }
    sendq_test(&sq);
    int got = 0;
    if (!canceled_self) {
      got = poll_pool(f, poll_to, local_results_to_up);
      if (got < 0) {
        rc = got;
        goto out;
      }
    } else {
      struct timespec ts = {0, (long)(POLL_MAX * 1e9)};
      nanosleep(&ts, NULL);
    }
    /* While our workers are busy, wait on the pool (its doorbell wakes us
     * as results come) instead of spinning on a core they could use; a
     * message from the master then waits a little, less when we asked. */
    if (activity)
      poll_to = 0;
    else if (got > 0)
      poll_to = asked ? 0.00005 : 0.0002;
    else
      poll_to = poll_to == 0 ? 0.0001 : fmin(poll_to * 2, idle_cap(f->task_avg));
  }
  /* Our last word: whatever results are left, then BYE. */
  rc = up_send(f, &sq, MPC__UP_BYE, 0);
out:
  f->msq = NULL;
  sendq_release(&sq, 1);
  mpc_buf_free(&msg);
  return rc;
}

/* ======================================================================= */
/*                                 master                                   */
/* ======================================================================= */

static void set_why(mpc__farm_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_why(mpc__farm_t *f, const char *fmt, ...) {
  if (f->why[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->why, sizeof f->why, fmt, ap);
  va_end(ap);
}

static void stop_run(mpc__farm_t *f, int kind) {
  if (kind > f->stop_kind)
    f->stop_kind = kind;
}

/* The job's gather(); its failure stops the run. */
static int gather_one(mpc__farm_t *f, const mpc_job_result_t *r) {
  int rc = f->job->gather(f->state, r);
  if (rc) {
    set_why(f, "the job's gather() returned %d", rc);
    f->fatal = 1;
    stop_run(f, MPC__HALT_NOW);
  }
  return rc;
}

/* Hand a finished task to gather() (now, or in task order with --ordered). */
static int gather_ready(mpc__farm_t *f) {
  if (!f->ordered)
    return 0;
  for (;;) {
    task_t *t = tm_get(&f->map, f->next_gather);
    if (!t || !t->done)
      return 0;
    f->next_gather++;
    stash_t *st = t->stash;
    st->res.key = TASK_KEY(t);
    st->res.input = TASK_IN(t);
    st->res.output = st->out;
    st->res.host = st->host;
    int rc = gather_one(f, &st->res);
    task_retire(&f->map, t);
    if (rc)
      return rc;
  }
}

static void note_failure(mpc__farm_t *f, task_t *t, const mpc_job_result_t *r) {
  if (f->nfails >= FAILS_KEPT)
    return;
  mpc__fail_item_t *it = &f->fails[f->nfails++];
  /* complete() made the key before r pointed at the input; if memory ran
   * out then, making it now would move the input from under r. */
  it->key = strdup(t->in_rec ? "" : task_key(t));
  it->status = r->status;
  it->code = r->code;
  it->rank = r->rank;
  it->pid = r->pid;
  it->host = strdup(r->host ? r->host : "");
  it->msg = NULL;
  if (r->output_len && r->output) {
    size_t n = r->output_len;
    const char *m = r->output;
    const char *nl = memchr(m, '\n', n);
    if (nl)
      n = (size_t)(nl - m);
    if (n > 160)
      n = 160;
    it->msg = malloc(n + 1);
    if (it->msg) {
      memcpy(it->msg, m, n);
      it->msg[n] = 0;
      for (size_t i = 0; i < n; i++)
        if ((unsigned char)it->msg[i] < 0x20)
          it->msg[i] = ' ';
    }
  }
}

static void check_halt(mpc__farm_t *f) {
  if (f->cfg.halt == MPC__HALT_NEVER || f->stop_halt || !f->rep.failed)
    return;
  int hit;
  if (f->cfg.halt_pct > 0) {
    /* Of all tasks once their number is known (as GNU parallel), else of
     * those finished so far, once there are 10 of them. */
    double den = f->gen_done ? (double)(f->next_seq - f->rep.resumed)
                             : (f->finished >= 10 ? (double)f->finished : -1);
    hit = den > 0 && 100.0 * (double)f->rep.failed >= f->cfg.halt_pct * den;
  }
  else
    hit = (long)f->rep.failed >= f->cfg.halt_fail;
  if (!hit)
    return;
  f->stop_halt = 1;
  set_why(f, "--halt %s: %llu task%s failed", f->cfg.halt == MPC__HALT_NOW ? "now" : "soon",
          (unsigned long long)f->rep.failed, f->rep.failed == 1 ? "" : "s");
  stop_run(f, f->cfg.halt == MPC__HALT_NOW ? MPC__HALT_NOW : MPC__HALT_SOON);
}

/* A task's final outcome.  Takes `t` out of circulation. */
static int complete(mpc__farm_t *f, task_t *t, mpc_task_status_t status, int code,
                    const void *out, size_t out_len, int rank, int worker,
                    int pid, double secs, int resumed) {
  /* A failure's key is made for the summary (note_failure): before the
   * result points at an input that making it may move. */
  if (t->in_rec && status != MPC_TASK_OK && status != MPC_TASK_CANCELED)
    (void)task_key(t);
  mpc_job_result_t r = {
      .seq = t->seq,
      .key = TASK_KEY(t),
      .input = TASK_IN(t),
      .input_len = t->in_len,
      .status = status,
      .code = code,
      .output = out,
      .output_len = out_len,
      .attempts = t->attempts,
      .resumed = resumed,
      .rank = rank,
      .worker = worker,
      .host = rank >= 0 ? f->r[rank].host : "",
      .pid = pid,
      .seconds = secs,
  };
  f->rep.tasks++;
  f->by_status[(unsigned)status < 8 ? (unsigned)status : 7]++;
  if (resumed) {
    f->rep.resumed++;
    f->rep.ok++;
  } else if (status == MPC_TASK_OK) {
    f->rep.ok++;
    f->finished++;
  } else if (status == MPC_TASK_CANCELED) {
    f->rep.canceled++;
  } else {
    f->rep.failed++;
    f->finished++;
    note_failure(f, t, &r);
  }
  if (t->retried)
    f->rep.retried++;
  int rc = 0;
  if (!f->ordered) {
    rc = gather_one(f, &r);
    task_retire(&f->map, t);
  } else {
    stash_t *st = malloc(sizeof *st + out_len);
    if (!st)
      return MPC_ENOMEM;
    st->res = r;
    st->out_len = out_len;
    if (out_len)
      memcpy(st->out, out, out_len);
    snprintf(st->host, sizeof st->host, "%s", r.host);
    t->stash = st;
    t->has_stash = 1;
    t->done = 1;
    rc = gather_ready(f);
  }
  if (status != MPC_TASK_OK && status != MPC_TASK_CANCELED)
    check_halt(f);
  return rc;
}

/* Keep an attempt that ran for --trace / --timeline FILE.png. */
static void keep_attempt(mpc__farm_t *f, const task_t *t, const mpc__wres_t *w,
                         int rank, int att) {
  if (mpc__grow(&f->att, &f->catt, f->natt + 1, sizeof *f->att, 1024))
    goto oom;
  mpc__attempt_t *a = &f->att[f->natt];
  a->key = malloc(t->key_len + 1);
  if (!a->key)
    goto oom;
  memcpy(a->key, TASK_KEY(t), t->key_len + 1);
  a->key_len = t->key_len;
  a->seq = t->seq;
  a->rank = rank;
  a->worker = w->worker;
  a->pid = w->pid;
  a->attempt = att;
  a->status = (int)w->status;
  a->code = w->code;
  a->start = w->start;
  a->end = w->end;
  f->natt++;
  return;
oom:
  f->att_err = 1;
  MPC_LOG(MPC_LOG_ERROR, "out of memory: --trace/--timeline will be incomplete");
}

/* An attempt that ran, for --trace and --timeline. */
static void record_run(mpc__farm_t *f, const task_t *t, const mpc__wres_t *w,
                       int rank, int att) {
  if (w->pid <= 0)
    return;
  if ((f->cfg.trace || f->tl_png) && !f->att_err)
    keep_attempt(f, t, w, rank, att);
  if (f->timeline)
    fprintf(f->timeline, "%llu\t%s\t%d\t%d\t%d\t%.6f\t%.6f\t%s\n",
            (unsigned long long)t->seq, TASK_KEY(t), rank, w->worker, w->pid,
            w->start, w->end, mpc_task_status_name((mpc_task_status_t)w->status));
}

/* One line per attempt: `att` is its number, `note` (may be NULL) replaces
 * the message.  (The test of the wrapper below is all a run without a
 * journal, trace or timeline pays per task.) */
static void journal_attempt_do(mpc__farm_t *f, task_t *t, const mpc__wres_t *w,
                               int rank, int att, const char *note) {
  if (f->have_journal) {
    int keep_out = (f->job->flags & MPC_JOB_JOURNAL_OUTPUT) &&
                   w->status == MPC_TASK_OK;
    mpc__jrec_t jr = {
        .key = TASK_KEY(t),
        .key_len = t->key_len,
        .status = (mpc_task_status_t)w->status,
        .attempt = att,
        .rank = w->status == MPC_TASK_CANCELED && w->pid == 0 && !note ? -1 : rank,
        .host = rank >= 0 ? f->r[rank].host : "",
        .pid = w->pid,
        .code = w->code,
        .maxrss_kb = w->maxrss_kb,
        .seconds = w->end > w->start ? w->end - w->start : 0,
        .msg = note ? note : w->data,
        .msg_len = note ? strlen(note) : w->len,
        .out = keep_out ? w->data : NULL,
        .out_len = keep_out ? w->len : 0,
    };
    int rc = mpc__journal_add(&f->jr, &jr);
    if (!rc)
      rc = mpc__journal_flush(&f->jr, now_s(), 0);
    if (rc) {
      MPC_LOG(MPC_LOG_ERROR, "journal %s: %s; journaling stops", f->cfg.journal,
              mpc_strerror(rc));
      if (mpc__journal_close(&f->jr)) {
        /* already failing: nothing more to say */
      }
      f->have_journal = 0;
    }
  }
  record_run(f, t, w, rank, att);
}

static inline void journal_attempt(mpc__farm_t *f, task_t *t, const mpc__wres_t *w,
                                   int rank, int att, const char *note) {
  if (f->have_journal || f->observe)
    journal_attempt_do(f, t, w, rank, att, note);
}

/* Kill the attempt of task `seq` still running on `rank`: a copy won. */
static void cancel_on(mpc__farm_t *f, int rank, uint64_t seq) {
  if (rank == 0) {
    if (mpc_pool_cancel(f->pool, seq)) {
      /* finished already: its result is on the way */
    }
    return;
  }
  mpc_buf_t b = MPC_BUF_INIT;
  int rc = mpc__wire_hdr(&b, MPC__DOWN_CANCEL, 0);
  if (!rc)
    rc = mpc_buf_append(&b, &seq, 8);
  if (!rc) {
    mpc__wire_set_n(&b, 1);
    rc = sendq_add(f->msq, f->comm, rank, MPC__TAG_DOWN, &b);
  }
  mpc_buf_free(&b);
  if (rc)
    MPC_LOG(MPC_LOG_WARN, "cannot cancel task %llu on rank %d: %s",
            (unsigned long long)seq, rank, mpc_strerror(rc));
}

/* Learn how long tasks take (successful attempts): --walltime, speculation. */
static void learn_duration(mpc__farm_t *f, double d) {
  /* Sums shifted by the first duration (no division per task; the shift
   * keeps the variance from cancelling when durations are alike). */
  if (f->dur_n++ == 0)
    f->dur_shift = d;
  double x = d - f->dur_shift;
  f->dur_s1 += x;
  f->dur_s2 += x * x;
}

/* The mean duration of successful attempts (0: none yet). */
static double dur_mean(const mpc__farm_t *f) {
  return f->dur_n ? f->dur_shift + f->dur_s1 / (double)f->dur_n : 0;
}

/* A pessimistic guess of one task's duration: mean plus one deviation. */
static double dur_estimate(const mpc__farm_t *f) {
  if (!f->dur_n)
    return 0;
  double n = (double)f->dur_n, m = f->dur_s1 / n;
  double var = f->dur_n > 1 ? (f->dur_s2 - f->dur_s1 * m) / (n - 1) : 0;
  return dur_mean(f) + (var > 0 ? sqrt(var) : 0);
}

/* An attempt that ran on rs: the rank's and the worker's counts and busy
 * time, and its duration learnt if it succeeded.  Returns that duration. */
static inline __attribute__((always_inline)) double count_attempt(mpc__farm_t *f, rstate_t *rs, const mpc__wres_t *w) {
  double d = w->end > w->start ? w->end - w->start : 0;
  rs->st.tasks++;
  if (w->status == MPC_TASK_OK)
    rs->st.ok++;
  else if (w->status != MPC_TASK_CANCELED)
    rs->st.failed++;
  rs->st.busy += d;
  if ((unsigned)w->worker < (unsigned)rs->workers && rs->st.wtasks) {
    rs->st.wtasks[w->worker]++;
    rs->st.wbusy[w->worker] += d;
  }
  if (w->status == MPC_TASK_OK && d > 0)
    learn_duration(f, d);
  return d;
}

/* Most results are plain successes: the task's only attempt succeeded and
 * there is no journal, trace or --ordered to serve.  Those of one message
 * (or one array from the master's pool) go to gather() as a run: one
 * mpc_job_result_t whose common fields are set once, and the counts that
 * every such result moves the same way (tasks in flight, ok, finished...)
 * added once per run.  Anything else ends the run first (okrun_flush), so
 * the general path always sees exact counts. */
typedef struct okrun {
  rstate_t *rs;
  mpc_job_result_t r; /* status OK, rank and host set once */
  size_t n;           /* successes since the last flush */
  double busy;        /* their run times */
} okrun_t;

static inline void okrun_begin(mpc__farm_t *f, okrun_t *o, int rank) {
  o->rs = &f->r[rank];
  o->r = (mpc_job_result_t){.status = MPC_TASK_OK, .rank = rank, .host = o->rs->host};
  o->n = 0;
  o->busy = 0;
}

/* Whether a success of `t` from `rank` takes the plain path (f->plain). */
static inline int okrun_fits(const task_t *t, int rank) {
  return t && t->run_rank[0] == rank && t->run_rank[1] < 0 && !t->done;
}

static inline void okrun_flush(mpc__farm_t *f, okrun_t *o) {
  size_t n = o->n;
  if (!n)
    return;
  rstate_t *rs = o->rs;
  rs->inflight -= n;
  f->inflight -= n;
  rs->st.tasks += n;
  rs->st.ok += n;
  rs->st.busy += o->busy;
  f->rep.tasks += n;
  f->rep.ok += n;
  f->finished += n;
  f->by_status[MPC_TASK_OK] += n;
  o->n = 0;
  o->busy = 0;
}

/* A plain success (okrun_fits said yes; t came from tm_get(), so that
 * map.hint is its block) of `d` seconds on `worker`: what on_result() and
 * complete() would do in that case, then the record goes.  Returns
 * gather()'s code. */
static inline __attribute__((always_inline)) int okrun_put(mpc__farm_t *f, okrun_t *o,
                                                           task_t *t, int worker, int pid,
                                                           double d, const void *out,
                                                           size_t len) {
  rstate_t *rs = o->rs;
  if ((unsigned)worker < (unsigned)rs->workers && rs->st.wtasks) {
    rs->st.wtasks[worker]++;
    rs->st.wbusy[worker] += d;
  }
  if (d > 0)
    learn_duration(f, d);
  o->n++;
  o->busy += d;
  if (t->retried)
    f->rep.retried++;
  o->r.seq = t->seq;
  o->r.key = TASK_KEY(t);
  o->r.input = TASK_IN(t);
  o->r.input_len = t->in_len;
  o->r.output = out;
  o->r.output_len = len;
  o->r.attempts = t->attempts;
  o->r.worker = worker;
  o->r.pid = pid;
  o->r.seconds = d;
  tblock_t *b = f->map.hint; /* (gather() cannot change the map) */
  int rc = gather_one(f, &o->r);
  task_free_in(&f->map, t, b);
  return rc;
}

/* A success of task `tid` from o's rank: put in the run if it takes the
 * plain path (1, with gather()'s code in *rc), else 0 (the caller flushes
 * the run and takes the general path). */
static inline __attribute__((always_inline)) int okrun_try(mpc__farm_t *f, okrun_t *o,
                                                           uint64_t tid, int worker, int pid,
                                                           double d, const void *out,
                                                           size_t len, int *rc) {
  task_t *t = tm_get(&f->map, tid);
  if (!okrun_fits(t, o->r.rank))
    return 0;
  *rc = okrun_put(f, o, t, worker, pid, d, out, len);
  return 1;
}

/* One attempt's outcome from `rank`. */
static int on_result(mpc__farm_t *f, int rank, const mpc__wres_t *w) {
  task_t *t = tm_get(&f->map, w->tid);
  int k = !t ? -1 : t->run_rank[0] == rank ? 0 : t->run_rank[1] == rank ? 1 : -1;
  rstate_t *rs = &f->r[rank];
  if (k < 0) {
    /* A lost rank that woke up reports tasks that went elsewhere. */
    if (!rs->lost)
      MPC_LOG(MPC_LOG_WARN, "rank %d reported unknown task %llu", rank,
              (unsigned long long)w->tid);
    return 0;
  }
  int att = t->run_att[k];
  t->run_rank[k] = -1;
  int other = t->run_rank[!k] >= 0; /* a copy of it still runs */
  rs->inflight--;
  f->inflight--;
  if (w->pid) /* it ran (a task never started has no pid) */
    count_attempt(f, rs, w);
  if (t->done) {
    /* The other attempt won the race; this one's journal line is written
     * (before the winner's, so that a key's last line is its outcome). */
    record_run(f, t, w, rank, att);
    if (!other && t->zombie)
      task_free(&f->map, t);
    return 0;
  }
  if (w->status == MPC_TASK_CANCELED && !f->stop_kind) {
    /* Not the task's fault: the rank stopped on its own (a signal there).
     * (A speculation loser is canceled alone, and its task is done.) */
    if (w->pid == 0)
      t->attempts--;
    else
      t->excused++;
    rs->draining = 1;
    if (!other)
      tq_push(&f->retry, t);
    return 0;
  }
  if (w->status != MPC_TASK_OK && w->status != MPC_TASK_CANCELED) {
    if (other && !f->stop_kind) {
      journal_attempt(f, t, w, rank, att, NULL);
      t->retried = 1;
      return 0; /* the copy may still succeed */
    }
    if (!other && t->attempts - t->excused <= f->cfg.retries && !f->stop_kind) {
      journal_attempt(f, t, w, rank, att, NULL);
      t->retried = 1;
      if (f->cfg.verbose)
        MPC_LOG(MPC_LOG_ERROR, "task %s: %s on rank %d, retrying", task_key(t),
                mpc_task_status_name((mpc_task_status_t)w->status), rank);
      tq_push(&f->retry, t);
      return 0;
    }
  }
  if (other) {
    int lr = t->run_rank[!k];
    char note[96];
    snprintf(note, sizeof note, "canceled: attempt %d on rank %d finished first", att, rank);
    /* pid 0: a journal line only; the loser's real run reaches the trace
     * and timeline when it reports. */
    mpc__wres_t lw = {.tid = t->seq, .status = MPC_TASK_CANCELED, .worker = -1};
    journal_attempt(f, t, &lw, lr, t->run_att[!k], note);
    if (k == 1 && w->status == MPC_TASK_OK)
      f->spec_won++;
    cancel_on(f, lr, t->seq);
  }
  journal_attempt(f, t, w, rank, att, NULL);
  return complete(f, t, (mpc_task_status_t)w->status, w->code, w->data, w->len,
                  rank, w->worker, w->pid,
                  w->end > w->start ? w->end - w->start : 0, 0);
}

/* The master's own pool's results, as rank 0's. */
static int master_local_many(void *ctx, const mpc_result_t *r, size_t n) {
  mpc__farm_t *f = ctx;
  okrun_t o;
  okrun_begin(f, &o, 0);
  const int plain = f->plain; /* (fixed at the start) */
  for (size_t i = 0; i < n; i++) {
    int rc;
    /* (the run time as wres_from() and on_result() make it) */
    double s = r[i].start > 0 ? r[i].start - f->t0 : 0;
    double e = r[i].end > 0 ? r[i].end - f->t0 : 0;
    if (!(plain && r[i].status == MPC_TASK_OK && r[i].pid &&
          okrun_try(f, &o, r[i].id, r[i].worker, (int)r[i].pid, e > s ? e - s : 0,
                    r[i].data, r[i].len, &rc))) {
      okrun_flush(f, &o);
      mpc__wres_t w = wres_from(f, &r[i]);
      rc = on_result(f, 0, &w);
    }
    if (rc && !f->fatal) {
      f->fatal = 1;
      set_why(f, "%s", mpc_strerror(rc));
      stop_run(f, MPC__HALT_NOW);
    }
  }
  okrun_flush(f, &o);
  return 0;
}

static int master_local_cb(void *ctx, const mpc_result_t *r) {
  return master_local_many(ctx, r, 1);
}

/* The default keys of the tasks generated since the last call. */
static void keys_flush(mpc__farm_t *f) {
  const unsigned char *in[KPEND];
  size_t len[KPEND];
  char *key[KPEND];
  for (size_t i = 0; i < f->nkpend; i++) {
    in[i] = TASK_IN(f->kpend[i]);
    len[i] = f->kpend[i]->in_len;
    key[i] = f->kpend[i]->key;
  }
  mpc__key_default_many(key, in, len, f->nkpend);
  f->nkpend = 0;
}

/* Generate one task.  1 produced (queued or completed as resumed), 0 end.
 * (Inline in the loops below: it runs once per task.) */
static inline __attribute__((always_inline)) int gen_task(mpc__farm_t *f) {
  mpc_buf_clear(&f->in);
  mpc_buf_clear(&f->key);
  int rc = f->job->next(f->state, &f->in, &f->key);
  if (rc < 0) {
    set_why(f, "the job's next() failed: %s%s%.*s", mpc_strerror(rc),
            f->key.len ? ": " : "", (int)f->key.len, (const char *)f->key.data);
    f->fatal = 1;
    f->gen_done = 1;
    stop_run(f, MPC__HALT_NOW);
    return 0;
  }
  if (rc == 0) {
    f->gen_done = 1;
    return 0;
  }
  /* A default key is a hash of the input.  With --resume it is needed now
   * (to look the task up); otherwise it is made with the keys of the next
   * few tasks, four hashes at a time, before any of them is handed out. */
  int defer = 0;
  task_t *t;
  if (f->key.len == 0 && f->lazy_keys && f->in.len <= TASK_INB_MAX) {
    /* The usual case for tiny tasks: a key left for later (needed for
     * failures only) and the input in the record. */
    task_t in_rec = {.flags = 0};
    in_rec.key_lazy = in_rec.in_rec = 1;
    if (!(t = tm_new_rec(&f->map, f->next_seq, in_rec.flags)))
      return MPC_ENOMEM;
    f->next_seq++;
    if (f->in.len == TASK_INB_MAX)
      memcpy(t->inb, f->in.data, TASK_INB_MAX);
    else
      mpc__copy_small(t->inb, f->in.data, f->in.len);
    t->in_len = (uint32_t)f->in.len;
    goto queue;
  }
  if (f->key.len == 0) {
    if (!f->jdone)
      defer = 1;
    else if ((rc = mpc__key_default(&f->key, f->in.data, f->in.len)))
      return rc;
  }
  size_t key_len = defer ? 16 : f->key.len;
  if (f->in.len > UINT32_MAX - 64 || key_len > UINT32_MAX - 64) {
    set_why(f, "task %llu: input or key over 4 GiB", (unsigned long long)f->next_seq);
    f->fatal = 1;
    f->gen_done = 1;
    stop_run(f, MPC__HALT_NOW);
    return 0;
  }
  /* The record, then its key and input, from the current block. */
  unsigned char *d;
  t = tm_new(&f->map, f->next_seq, key_len + 1 + f->in.len, &d, 0);
  if (!t)
    return MPC_ENOMEM;
  f->next_seq++;
  t->key = (char *)d;
  t->key_len = (uint32_t)key_len;
  t->key[key_len] = 0;
  if (!defer)
    mpc__copy_small((unsigned char *)t->key, f->key.data, key_len);
  mpc__copy_small((unsigned char *)t->key + key_len + 1, f->in.data, f->in.len);
  t->in_len = (uint32_t)f->in.len;
  if (defer && f->lazy_keys) {
    t->key[0] = 0;
    t->key_lazy = 1;
  } else if (defer) {
    f->kpend[f->nkpend++] = t;
    if (f->nkpend == KPEND)
      keys_flush(f);
  }
  const void *jout = NULL;
  size_t jlen = 0;
  if (f->jdone && mpc__jdone_lookup(f->jdone, t->key, t->key_len, &jout, &jlen)) {
    rc = complete(f, t, MPC_TASK_OK, 0, jout, jlen, -1, -1, 0, 0, 1);
    return rc < 0 ? rc : 1;
  }
queue:
  if (f->cfg.sched == MPC__SCHED_STATIC)
    tq_push(&f->r[f->static_rr++ % (uint64_t)f->nranks].staticq, t);
  else
    f->fresh_n++;
  return 1;
}

static int gen_one(mpc__farm_t *f) {
  return gen_task(f);
}

/* Generate until `want` fresh tasks are queued or the generator is done
 * (not for --schedule static, whose tasks are not fresh ones).  0 or the
 * error of gen_one(). */
static int gen_fill(mpc__farm_t *f, size_t want) {
  while (f->fresh_n < want && !f->gen_done && !f->fatal) {
    int rc = gen_task(f);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* The oldest fresh task (resumed ones were completed when generated). */
static inline __attribute__((always_inline)) task_t *fresh_pop(mpc__farm_t *f) {
  while (f->fresh_n) {
    task_t *t = tm_get(&f->map, f->fresh_lo++);
    if (t && !t->done) {
      f->fresh_n--;
      return t;
    }
  }
  return NULL;
}

static size_t queued_total(mpc__farm_t *f) {
  size_t n = f->fresh_n + f->retry.n;
  if (f->cfg.sched == MPC__SCHED_STATIC)
    for (int i = 0; i < f->nranks; i++)
      n += f->r[i].staticq.n;
  return n;
}

/* `at`: now, in seconds since t0.  The caller counts the task in flight. */
static inline void mark_dispatched(task_t *t, int rank, float at) {
  int k = t->run_rank[0] < 0 ? 0 : 1;
  t->attempts++;
  t->rank = rank;
  t->run_rank[k] = rank;
  t->run_att[k] = t->attempts;
  t->run_at[k] = at;
}

/* What take() learnt of the tasks it took, for dispatch(): one pass over
 * the records instead of one per question (a batch of 4096 records is
 * more than the first-level cache holds). */
typedef struct taken {
  size_t in_bytes; /* their inputs' bytes */
  int run;         /* their seqs are consecutive */
} taken_t;

/* Task t is the k-th taken for `rank`: marked as dispatched to it now (the
 * caller sends or submits every task it takes), and for rank 0 put in the
 * batch for the pool (sub_reserve() was called). */
static inline __attribute__((always_inline)) void take_one(mpc__farm_t *f, int rank,
                                                           float at, task_t *t,
                                                           task_t **out, size_t k,
                                                           taken_t *tk) {
  mark_dispatched(t, rank, at);
  out[k] = t;
  if (rank == 0) {
    f->sub_in[k] = (mpc_slice_t){TASK_IN(t), t->in_len};
    f->sub_tag[k] = t->seq;
  }
  tk->in_bytes += t->in_len;
  tk->run &= t->seq == out[0]->seq + k;
}

/* take() without making the deferred keys. */
static size_t take_gen(mpc__farm_t *f, int rank, size_t n, task_t **out, taken_t *tk) {
  size_t k = 0;
  int avoid = f->nranks > 1 ? rank : -2;
  float at = (float)(f->tnow - f->t0);
  *tk = (taken_t){0, 1};
  while (k < n) {
    task_t *t = tq_pop_avoid(&f->retry, avoid);
    if (!t)
      break;
    take_one(f, rank, at, t, out, k++, tk);
  }
  if (f->stop_kind)
    return k; /* stopping: nothing new */
  int stat = f->cfg.sched == MPC__SCHED_STATIC;
  tq_t *q = &f->r[rank].staticq;
  while (k < n) {
    if (!(stat ? q->n : f->fresh_n) && !f->gen_done && !f->fatal) {
      /* (a few at a time, so that their records are still in the cache
       * when taken) */
      int rc = stat ? gen_one(f) : gen_fill(f, n - k < GEN_AHEAD ? n - k : GEN_AHEAD);
      if (rc < 0) {
        set_why(f, "%s", mpc_strerror(rc));
        f->fatal = 1;
        stop_run(f, MPC__HALT_NOW);
        break;
      }
      continue;
    }
    task_t *t = stat ? tq_pop(q) : fresh_pop(f);
    if (!t)
      break;
    take_one(f, rank, at, t, out, k++, tk);
  }
  return k;
}

/* Take up to n tasks for `rank` into out[], marked as dispatched to it (for
 * rank 0 also into sub_in/sub_tag: call sub_reserve(f, n) first); returns
 * how many.  The caller dispatches them all. */
static size_t take(mpc__farm_t *f, int rank, size_t n, task_t **out, taken_t *tk) {
  size_t k = take_gen(f, rank, n, out, tk);
  keys_flush(f);
  return k;
}

static uint64_t remaining(mpc__farm_t *f) {
  if (!f->gen_done) {
    /* Look ahead so that the end is seen before it comes. */
    /* (guided only: tasks are fresh ones.  An error is met again by
     * take(), which stops the run.) */
    (void)gen_fill(f, LOOKAHEAD);
    keys_flush(f);
  }
  /* While the generator is not done, what is known is a lower bound: batches
   * sized from it are smaller than guided self-scheduling would make them. */
  return queued_total(f);
}

/* Send (or, for rank 0, submit) scratch[0..k) to `rank`: tasks that
 * take_one() marked as dispatched (for rank 0 also put in sub_in), with what
 * it learnt of them in tk.  `partial`: this answers only part of the rank's
 * request (the send window is full), so the last message is not flagged last
 * and the rest of the request stays open. */
static int dispatch(mpc__farm_t *f, int rank, sendq_t *sq, task_t **scratch,
                    size_t k, int partial, const taken_t *tk) {
  int rc = 0;
  /* In flight even if a message fails: the run stops, and the end of the
   * master loop cancels what is in flight, so each gets its line. */
  f->r[rank].inflight += k;
  f->inflight += k;
  if (rank == 0) {
    f->r[0].want = 0;
    return mpc_pool_submit_many(f->pool, f->sub_in, f->sub_tag, k);
  }
  /* dynamic: one task per message; otherwise one message for the batch. */
  size_t per = f->cfg.sched == MPC__SCHED_DYNAMIC ? 1 : k;
  for (size_t i = 0; i < k && !rc; i += per) {
    size_t m = k - i < per ? k - i : per;
    mpc_buf_t b = sendq_buf(sq);
    /* Fresh tasks go out in seq order: then the tids are one number. */
    uint64_t tid0 = scratch[i]->seq;
    int run = 1;
    size_t bytes = MPC__HDR_BYTES + 8 + 12 * m;
    if (m == k) {
      run = tk->run;
      bytes += tk->in_bytes;
    } else {
      for (size_t j = 0; j < m; j++) {
        run &= scratch[i + j]->seq == tid0 + j;
        bytes += scratch[i + j]->in_len;
      }
    }
    rc = mpc_buf_reserve(&b, bytes); /* once, not as it grows */
    uint32_t flags = (i + m == k && !partial ? MPC__DOWN_LAST : 0) |
                     (f->plain ? MPC__DOWN_SHORT : 0) | (run ? MPC__DOWN_RUN : 0);
    if (!rc)
      rc = mpc__wire_hdr(&b, MPC__DOWN_TASKS, flags);
    if (!rc) { /* room is reserved: entries written in place */
      unsigned char *o = b.data + b.len;
      if (run) {
        mpc__put64(o, tid0);
        o += 8;
        for (size_t j = 0; j < m; j++)
          o = mpc__wire_run_task_at(o, TASK_IN(scratch[i + j]), scratch[i + j]->in_len);
      } else {
        for (size_t j = 0; j < m; j++)
          o = mpc__wire_task_at(o, scratch[i + j]->seq, TASK_IN(scratch[i + j]),
                                scratch[i + j]->in_len);
      }
      b.len = (size_t)(o - b.data);
    }
    if (!rc) {
      mpc__wire_set_n(&b, (uint32_t)m);
      if (f->cfg.debug_protocol)
        MPC_LOG(MPC_LOG_ERROR, "-> rank %d: %zu tasks", rank, m);
      rc = sendq_add(sq, f->comm, rank, MPC__TAG_DOWN, &b);
    }
    mpc_buf_free(&b);
  }
  f->r[rank].want = partial && f->r[rank].want > k ? f->r[rank].want - k : 0;
  return rc;
}

/* --walltime: how many more tasks `rank` can take and still finish in time,
 * judging by the tasks finished so far (SIZE_MAX: no limit known). */
static size_t wall_room(mpc__farm_t *f, const rstate_t *rs) {
  if (f->deadline <= 0 || f->dur_n == 0)
    return SIZE_MAX;
  double left = f->deadline - f->tnow, est = dur_estimate(f);
  if (est <= 0)
    return SIZE_MAX;
  double fit = floor(left / est) * rs->workers - (double)rs->inflight;
  return fit <= 0 ? 0 : fit >= 1e15 ? SIZE_MAX : (size_t)fit;
}

/* Answer rank's outstanding request if work is there. */
static int serve(mpc__farm_t *f, int rank, sendq_t *sq, task_t **scratch) {
  rstate_t *rs = &f->r[rank];
  if (!rs->want || rs->draining || rs->bye || rs->lost || f->stop_kind)
    return 0;
  uint64_t rem = f->cfg.sched == MPC__SCHED_GUIDED ? remaining(f) : UINT64_MAX;
  if (f->stop_kind)
    return 0;
  size_t n = mpc__sched_batch(f->cfg.sched, rem, rs->want, rs->workers,
                              f->total_workers, MAX_BATCH);
  /* Guided batches are counted in tasks.  Batching only pays for short
   * tasks; long ones queued on a rank leave the others idle at the end (a
   * stats run ended with one rank holding 4 of the last ranges).  Beyond
   * what the rank asked for, a batch holds about BATCH_WORK_S of work per
   * worker, and nothing beyond the ask until a duration is known (other
   * schedules never go beyond it; --walltime relies on that too). */
  if (n > rs->want && f->cfg.sched == MPC__SCHED_GUIDED) {
    double d = dur_mean(f);
    double fit = f->dur_n == 0 ? 0 : d > 0 ? BATCH_WORK_S * rs->workers / d : (double)n;
    size_t cap = fit < (double)n ? (size_t)fit : n;
    n = cap > rs->want ? cap : rs->want;
  }
  size_t room = wall_room(f, rs);
  if (n > room) {
    if (!f->gen_done || queued_total(f))
      f->wall_hold = 1;
    n = room;
  }
  /* One task per message: at most SEND_WINDOW messages in flight to a rank.
   * Posting thousands at once makes Open MPI queue them and spend the
   * master's time re-trying its backlog in every progress call. */
  int limited = 0;
  if (rank != 0 && f->cfg.sched == MPC__SCHED_DYNAMIC && sq->per_dest) {
    size_t busy = sq->per_dest[rank];
    size_t win = busy < SEND_WINDOW ? SEND_WINDOW - busy : 0;
    if (n > win) {
      n = win;
      limited = 1;
    }
  }
  if (n == 0)
    return 0;
  int rc;
  if (rank == 0 && (rc = sub_reserve(f, n)))
    return rc;
  taken_t tk;
  size_t k = take(f, rank, n, scratch, &tk);
  if (k == 0)
    return 0;
  /* Answered in full unless the window cut it short: then the rest of the
   * request is served as sends to that rank complete. */
  return dispatch(f, rank, sq, scratch, k, limited && k == n, &tk);
}

/* A rank went silent past --heartbeat: what it was running goes elsewhere. */
static void lose_rank(mpc__farm_t *f, int rank, double silent) {
  rstate_t *rs = &f->r[rank];
  rs->lost = 1;
  rs->st.lost = 1;
  rs->st.silent = silent;
  rs->want = 0;
  f->nlost++;
  MPC_LOG(MPC_LOG_ERROR, "rank %d (%s) lost: silent for %.1f s; its %zu task%s "
          "go to other ranks", rank, rs->host, silent, rs->inflight,
          rs->inflight == 1 ? "" : "s");
  char note[96];
  snprintf(note, sizeof note, "rank %d lost (silent for %.1f s)", rank, silent);
  uint64_t cur = 0;
  task_t *t;
  while (rs->inflight && (t = tm_next(&f->map, &cur))) {
    for (int k = 0; k < 2; k++) {
      if (t->run_rank[k] != rank)
        continue;
      int att = t->run_att[k];
      t->run_rank[k] = -1;
      rs->inflight--;
      f->inflight--;
      if (t->done) { /* a copy won; the loser's line is written */
        if (!t_nrun(t) && t->zombie)
          task_free(&f->map, t);
        break;
      }
      mpc__wres_t w = {.tid = t->seq, .status = MPC_TASK_CANCELED, .worker = -1};
      journal_attempt(f, t, &w, rank, att, note);
      t->excused++;
      if (!t_nrun(t))
        tq_push(&f->retry, t);
    }
  }
  while ((t = tq_pop(&rs->staticq)))
    tq_push(&f->retry, t);
}

/* Stragglers: with nothing left to hand out, give ranks with idle workers a
 * copy of the oldest tasks running elsewhere (jobs that declared their tasks
 * idempotent).  The first result wins; the other attempt is canceled. */
static int speculate(mpc__farm_t *f, sendq_t *sq, task_t **scratch) {
  /* Age counts from dispatch, and credits queue up to two tasks a worker:
   * a task that did not start yet can be two task times old (with twice,
   * a 2-rank run of 300 ms tasks sometimes copied a task still queued). */
  double min_age = fmax(SPEC_MIN_AGE, 3 * dur_estimate(f));
  for (int r = 0; r < f->nranks; r++) {
    rstate_t *rs = &f->r[r];
    if (rs->lost || rs->bye || rs->draining || rs->inflight >= (size_t)rs->workers)
      continue;
    if (r > 0 && !rs->want)
      continue; /* it will ask when it has room */
    size_t room = (size_t)rs->workers - rs->inflight, k = 0;
    size_t wr = wall_room(f, rs);
    if (room > wr)
      room = wr;
    float at = (float)(f->tnow - f->t0);
    taken_t tk = {0, 1};
    int rc = r == 0 ? sub_reserve(f, room) : 0;
    if (rc)
      return rc;
    while (k < room) {
      task_t *best = NULL, *t;
      uint64_t cur = 0;
      while ((t = tm_next(&f->map, &cur))) {
        /* (copied is set as a task is picked, so no task is picked twice) */
        if (t->done || t->copied || t->run_rank[0] < 0 || t->run_rank[1] >= 0 ||
            t->run_rank[0] == r || f->tnow - f->t0 - t->run_at[0] < min_age)
          continue;
        if (!best || t->run_at[0] < best->run_at[0])
          best = t;
      }
      if (!best)
        break;
      best->copied = 1; /* a copy counts as an attempt, as a retry would */
      f->spec_launched++;
      if (f->cfg.verbose)
        MPC_LOG(MPC_LOG_ERROR, "task %s: running for %.1f s on rank %d; a copy "
                "starts on rank %d", task_key(best), f->tnow - f->t0 - best->run_at[0],
                best->run_rank[0], r);
      take_one(f, r, at, best, scratch, k++, &tk);
    }
    if (k && (rc = dispatch(f, r, sq, scratch, k, 0, &tk)))
      return rc;
  }
  return 0;
}

static int send_ctl(mpc__farm_t *f, sendq_t *sq, int rank, uint32_t kind) {
  mpc_buf_t b = MPC_BUF_INIT;
  int rc = mpc__wire_hdr(&b, kind, 0);
  if (!rc)
    rc = sendq_add(sq, f->comm, rank, MPC__TAG_DOWN, &b);
  mpc_buf_free(&b);
  return rc;
}

static int handle_up(mpc__farm_t *f, int src, mpc_buf_t *msg, sendq_t *sq,
                     task_t **scratch) {
  mpc__wrd_t rd = {msg->data, msg->data + msg->len};
  uint32_t kind, want, n;
  int rc = mpc__wire_read_hdr(&rd, &kind, &want, &n);
  if (rc)
    return rc;
  rstate_t *rs = &f->r[src];
  rs->last_seen = now_s();
  if (f->cfg.debug_protocol)
    MPC_LOG(MPC_LOG_ERROR, "<- rank %d: %s, %u results, want %u", src,
            kind == MPC__UP_BYE ? "BYE" : "RESULTS", n, want);
  /* Serve the ask before gathering the results: a job's gather() can take
   * a while (stats merges sketches in task order, so a late range releases
   * a burst of merges), and this rank's workers would wait for it. */
  if (kind != MPC__UP_BYE && want) {
    rs->want = want;
    if ((rc = serve(f, src, sq, scratch)))
      return rc;
  }
  uint64_t prev = 0;
  int s;
  okrun_t o;
  okrun_begin(f, &o, src);
  const int plain = f->plain; /* (fixed at the start) */
  for (uint32_t i = 0; i < n; i++) {
    if (plain && rs->wpid) {
      /* Most entries: short ones (successes) of tasks that take the plain
       * path, read straight into it.  Anything else is read again below. */
      mpc__wrd_t at = rd;
      uint64_t at_prev = prev, tid;
      int wk;
      uint32_t ns, len;
      const void *data;
      if (mpc__wire_read_short(&rd, &prev, &tid, &wk, &ns, &data, &len)) {
        int32_t pid = rs->wpid[wk];
        if (pid && okrun_try(f, &o, tid, wk, pid, (double)ns * 1e-9, data, len, &s)) {
          if (s)
            goto fail;
          continue;
        }
        rd = at;
        prev = at_prev;
      }
    }
    mpc__wres_t w;
    s = mpc__wire_read_result(&rd, &w, &prev);
    if (s < 0)
      goto fail;
    if (s) { /* short: only asked for when plain; the pid is the worker's last */
      if (!f->plain || !rs->wpid || !(w.pid = rs->wpid[w.worker])) {
        s = MPC_EPROTO;
        goto fail;
      }
    } else if (w.pid > 0 && (unsigned)w.worker < MPC__SHORT_WORKERS) {
      if (!rs->wpid && !(rs->wpid = calloc(MPC__SHORT_WORKERS, sizeof *rs->wpid))) {
        s = MPC_ENOMEM;
        goto fail;
      }
      rs->wpid[w.worker] = w.pid;
    }
    if (f->plain && w.status == MPC_TASK_OK && w.pid && /* most: every short one */
        okrun_try(f, &o, w.tid, w.worker, w.pid, w.end > w.start ? w.end - w.start : 0,
                  w.data, w.len, &s)) {
      if (s)
        goto fail;
      continue;
    }
    okrun_flush(f, &o);
    if ((rc = on_result(f, src, &w)))
      return rc;
  }
  okrun_flush(f, &o);
  if (kind == MPC__UP_BYE)
    rs->bye = 1;
  return 0;
fail:
  okrun_flush(f, &o);
  return s;
}

static void progress_draw(mpc__farm_t *f, int final) {
  if (!f->progress)
    return;
  double t = now_s();
  if (!final && t - f->last_progress < 0.2)
    return;
  f->last_progress = t;
  double el = t - f->t0;
  uint64_t done = f->rep.tasks;
  double rate = el > 0 ? (double)(done - f->rep.resumed) / el : 0;
  char tot[32] = "?";
  if (f->gen_done)
    snprintf(tot, sizeof tot, "%llu", (unsigned long long)f->next_seq);
  char eta[32] = "";
  if (f->gen_done && rate > 0 && f->next_seq > done)
    snprintf(eta, sizeof eta, " ETA %.0fs", (double)(f->next_seq - done) / rate);
  fprintf(stderr, "\r\033[K[mpc] %llu/%s done, %.1f/s%s, %llu failed, %zu running%s",
          (unsigned long long)done, tot, rate, eta,
          (unsigned long long)f->rep.failed, f->inflight, final ? "\n" : "");
  fflush(stderr);
}

/* End a task that will not run (any more): journal it, gather it. */
static void cancel_task(mpc__farm_t *f, task_t *t) {
  mpc__wres_t w = {.tid = t->seq, .status = MPC_TASK_CANCELED, .worker = -1};
  journal_attempt(f, t, &w, -1, t->attempts, NULL);
  if (complete(f, t, MPC_TASK_CANCELED, 0, NULL, 0, t->rank, -1, 0, 0, 0)) {
    /* gather() failed: already recorded as the reason to stop */
  }
}

static int master_loop(mpc__farm_t *f) {
  sendq_t sq = {0};
  mpc_buf_t msg = MPC_BUF_INIT;
  task_t **scratch = malloc(MAX_BATCH * sizeof *scratch);
  size_t *per_dest = calloc((size_t)f->nranks, sizeof *per_dest);
  int rc = 0, stop_sent = 0, now_sent = 0, drain_sent = 0;
  unsigned seen_signals = 0;
  double poll_to = 0, last_turn = now_s(), turn_avg = 0;
  size_t credit0 = 2 * (size_t)f->workers;
  if (!scratch || !per_dest) {
    free(scratch);
    free(per_dest);
    return MPC_ENOMEM;
  }
  sq.per_dest = per_dest;
  f->msq = &sq;
  for (;;) {
    int activity = 0;
    double t = f->tnow = now_s();
    if (f->faults.nrank)
      mpc__fault_rank(&f->faults, 0, t - f->t0);
    /* Stop conditions from outside. */
    if ((unsigned)g_signals != seen_signals) {
      seen_signals = (unsigned)g_signals;
      f->stop_signal = 1;
      f->rep.interrupted = 1;
      set_why(f, "interrupted by signal %d", (int)g_signo);
      if (f->cfg.grace > 0 && seen_signals == 1 && f->stop_kind < MPC__HALT_SOON) {
        stop_run(f, MPC__HALT_SOON);
        f->soon_deadline = t + f->cfg.grace;
      } else {
        stop_run(f, MPC__HALT_NOW);
      }
      if (f->have_journal)
        if (mpc__journal_flush(&f->jr, t, 1)) {
        /* reported again at close */
      }
      if (f->launcher && getppid() != f->launcher) {
        /* The launcher is gone (kill -9 mpirun): so is the job.  The journal
         * is flushed; --resume will do the rest. */
        if (f->have_journal && mpc__journal_close(&f->jr)) {
          /* nothing more can be done */
        }
        fprintf(stderr, "mpc-run: the launcher died; journal flushed, leaving\n");
        _exit(3);
      }
    }
    if (f->deadline > 0 && !f->stop_wall && t >= f->deadline) {
      f->stop_wall = 1;
      f->rep.interrupted = 1;
      set_why(f, "--walltime %g s reached", f->deadline - f->t0);
      stop_run(f, f->cfg.grace > 0 ? MPC__HALT_SOON : MPC__HALT_NOW);
      f->soon_deadline = t + f->cfg.grace;
    }
    if (f->stop_kind == MPC__HALT_SOON && f->soon_deadline > 0 && t >= f->soon_deadline)
      stop_run(f, MPC__HALT_NOW);
    if (f->stop_kind == MPC__HALT_SOON && !drain_sent) {
      /* Nothing new starts, retries included; running tasks finish. */
      task_t *rt;
      while ((rt = tq_pop(&f->retry)))
        cancel_task(f, rt);
      drain_sent = 1;
      for (int i = 1; i < f->nranks; i++)
        if (!f->r[i].bye && !f->r[i].lost && (rc = send_ctl(f, &sq, i, MPC__DOWN_DRAIN)))
          goto out;
      if ((rc = mpc_pool_drain(f->pool)))
        goto out;
    }
    if (f->stop_kind == MPC__HALT_NOW && !now_sent) {
      now_sent = 1;
      for (int i = 1; i < f->nranks; i++)
        if (!f->r[i].bye && !f->r[i].lost &&
            (rc = send_ctl(f, &sq, i, MPC__DOWN_STOP_NOW)))
          goto out;
      stop_sent = 1;
      mpc_pool_terminate(f->pool, master_local_cb, f);
    }
    /* Messages from the ranks. */
    while (f->nranks > 1) {
      int flag = 0;
      MPI_Message m;
      MPI_Status st;
      MPI_Improbe(MPI_ANY_SOURCE, MPC__TAG_UP, f->comm, &flag, &m, &st);
      if (!flag)
        break;
      int cnt;
      MPI_Get_count(&st, MPI_BYTE, &cnt);
      mpc_buf_clear(&msg);
      if ((rc = mpc_buf_reserve(&msg, (size_t)cnt + 1)))
        goto out;
      MPI_Mrecv(msg.data, cnt, MPI_BYTE, &m, MPI_STATUS_IGNORE);
      msg.len = (size_t)cnt;
      if ((rc = handle_up(f, st.MPI_SOURCE, &msg, &sq, scratch)))
        goto out;
      activity = 1;
    }
    /* Our own pool asks like any rank: enough tasks to keep its workers
     * busy for about two turns of this loop (a rank covers two round trips
     * the same way), asked for when half of that is left.  Two per worker
     * starved it: short tasks were done long before the next turn. */
    if (!now_sent) {
      double turn = t - last_turn;
      last_turn = t;
      turn_avg = turn_avg > 0 ? 0.9 * turn_avg + 0.1 * turn : turn;
      if (f->dur_n) /* with dynamic, no more in flight than a rank may have */
        credit0 = credits(f->workers, turn_avg, dur_mean(f),
                          f->cfg.sched == MPC__SCHED_DYNAMIC ? SEND_WINDOW : MAX_BATCH);
      size_t pend = mpc_pool_pending(f->pool);
      size_t low = credit0 / 2 > (size_t)f->workers ? credit0 / 2 : (size_t)f->workers;
      if (pend <= low && !f->r[0].want)
        f->r[0].want = credit0 > pend ? credit0 - pend : 1;
    }
    f->wall_hold = 0;
    /* Remote ranks first: their tasks travel while ours are handed over. */
    for (int j = 1; j <= f->nranks; j++) {
      int i = j % f->nranks;
      if (f->r[i].want && (rc = serve(f, i, &sq, scratch)))
        goto out;
    }
    /* --walltime: every rank is idle and was refused work that would not
     * finish in time. */
    if (f->wall_hold && !f->stop_kind && f->inflight == 0) {
      f->stop_wall = 1;
      f->rep.interrupted = 1;
      set_why(f, "--walltime %g s: %.1f s left, tasks take about %.2f s: "
              "%s%llu task%s not started (--resume runs them)",
              f->deadline - f->t0, f->deadline - t, dur_estimate(f),
              f->gen_done ? "" : "at least ", (unsigned long long)queued_total(f),
              queued_total(f) == 1 ? "" : "s");
      stop_run(f, MPC__HALT_SOON);
    }
    /* Stragglers, once there is nothing else to hand out. */
    if ((f->job->flags & MPC_JOB_IDEMPOTENT) && !f->cfg.no_speculate &&
        !f->stop_kind && f->gen_done &&
        f->inflight && f->dur_n && !queued_total(f) && t - f->last_spec >= SPEC_EVERY) {
      f->last_spec = t;
      if ((rc = speculate(f, &sq, scratch)))
        goto out;
    }
    /* Ranks that went quiet (--heartbeat). */
    if (f->cfg.heartbeat > 0)
      for (int i = 1; i < f->nranks; i++)
        if (!f->r[i].bye && !f->r[i].lost && t - f->r[i].last_seen > f->cfg.heartbeat)
          lose_rank(f, i, t - f->r[i].last_seen);
    /* All done? */
    int nothing_left =
        f->inflight == 0 &&
        (f->stop_kind == MPC__HALT_NOW || f->stop_kind == MPC__HALT_SOON ||
         (f->gen_done && queued_total(f) == 0));
    if (nothing_left && !stop_sent) {
      if (f->cfg.debug_protocol)
        MPC_LOG(MPC_LOG_ERROR, "all done: STOP to every rank");
      stop_sent = 1;
      for (int i = 1; i < f->nranks; i++)
        if (!f->r[i].bye && !f->r[i].lost && (rc = send_ctl(f, &sq, i, MPC__DOWN_STOP)))
          goto out;
    }
    if (stop_sent) {
      int all = 1;
      for (int i = 1; i < f->nranks; i++)
        all &= f->r[i].bye || f->r[i].lost;
      if (all) /* every rank has reported everything it had */
        break;
    }
    sendq_test(&sq);
    if (f->have_journal)
      if (mpc__journal_flush(&f->jr, t, 0)) {
        /* reported again at close */
      }
    progress_draw(f, 0);
    int got = 0;
    if (!now_sent) {
      got = poll_pool(f, poll_to, master_local_many);
      if (got < 0) {
        rc = got;
        goto out;
      }
    } else {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
    if (activity || got > 0)
      poll_to = 0;
    else
      poll_to = poll_to == 0 ? 0.0001 : fmin(poll_to * 2, idle_cap(dur_mean(f)));
    if (sq.n && poll_to > 0.0001)
      poll_to = 0.0001; /* sends in flight: a window may open soon */
  }
out:
  /* Whatever never got an outcome is canceled: queued, or lost in flight.
   * The journal gets a line for each, so that every generated task has one. */
  {
    task_t *t;
    while ((t = tq_pop(&f->retry)))
      cancel_task(f, t);
    while ((t = fresh_pop(f)))
      cancel_task(f, t);
    for (int i = 0; i < f->nranks; i++)
      while ((t = tq_pop(&f->r[i].staticq)))
        cancel_task(f, t);
    uint64_t cur = 0;
    while (f->inflight && (t = tm_next(&f->map, &cur)))
      if (t_nrun(t)) {
        f->inflight -= (size_t)t_nrun(t);
        t->run_rank[0] = t->run_rank[1] = -1;
        if (!t->done)
          cancel_task(f, t);
        else if (t->zombie)
          task_free(&f->map, t);
      }
  }
  if (rc) {
    set_why(f, "internal error: %s", mpc_strerror(rc));
    f->fatal = 1;
  }
  progress_draw(f, 1);
  /* With a rank lost, do not wait for sends it may never take (the job
   * ends with MPI_Abort; see mpc__farm_run). */
  sendq_release(&sq, !f->nlost);
  f->msq = NULL;
  mpc_buf_free(&msg);
  free(scratch);
  free(per_dest);
  return rc;
}

/* ======================================================================= */
/*                                   run                                    */
/* ======================================================================= */

static int setup_master(mpc__farm_t *f, mpc_buf_t *err) {
  int rc;
  if (f->cfg.journal && f->cfg.resume) {
    size_t bad = 0;
    if ((rc = mpc__jdone_load(&f->jdone, f->cfg.journal, &bad))) {
      mpc__msg(err, "--resume: cannot read journal %s: %s",
                           f->cfg.journal, mpc_strerror(rc));
      return rc;
    }
    if (bad)
      MPC_LOG(MPC_LOG_WARN, "journal %s: %zu malformed line%s ignored",
              f->cfg.journal, bad, bad == 1 ? "" : "s");
    if (f->cfg.verbose)
      MPC_LOG(MPC_LOG_ERROR, "journal %s: %zu task%s already done",
              f->cfg.journal, mpc__jdone_count(f->jdone),
              mpc__jdone_count(f->jdone) == 1 ? "" : "s");
  }
  if (f->cfg.journal) {
    char hdr[512];
    time_t now = time(NULL);
    struct tm tm;
    char ts[64];
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(hdr, sizeof hdr,
             "mpc-run journal v1: job %s, %d ranks, started %s%s; fields: key "
             "status attempt rank host pid code maxrss_kb seconds message output",
             f->cfg.job_name, f->nranks, ts, f->cfg.resume ? " (resume)" : "");
    if ((rc = mpc__journal_open(&f->jr, f->cfg.journal, hdr))) {
      mpc__msg(err, "--journal %s: %s", f->cfg.journal,
                           mpc_strerror(rc));
      return rc;
    }
    f->have_journal = 1;
  }
  /* --trace and a PNG --timeline are written at the end (temp file, then
   * rename); find out now whether they can be. */
  size_t tl_len = f->cfg.timeline ? strlen(f->cfg.timeline) : 0;
  f->tl_png = tl_len >= 4 && !strcasecmp(f->cfg.timeline + tl_len - 4, ".png");
  const char *late[3] = {f->cfg.trace, f->tl_png ? f->cfg.timeline : NULL, f->cfg.json};
  const char *late_opt[3] = {"--trace", "--timeline", "--json"};
  for (int i = 0; i < 3; i++) {
    if (!late[i])
      continue;
    if ((rc = mpc__probe_writable(late[i]))) {
      mpc__msg(err, "%s %s: %s", late_opt[i], late[i], mpc_strerror(rc));
      return rc;
    }
  }
  if (f->cfg.timeline && !f->tl_png) {
    f->timeline = fopen(f->cfg.timeline, "w");
    if (!f->timeline) {
      rc = -errno;
      mpc__msg(err, "--timeline %s: %s", f->cfg.timeline,
                           mpc_strerror(rc));
      return rc;
    }
    fprintf(f->timeline, "seq\tkey\trank\tworker\tpid\tstart\tend\tstatus\n");
  }
  f->progress = f->cfg.progress == 1 || (f->cfg.progress < 0 && isatty(2));
  f->observe = f->cfg.trace || f->tl_png || f->timeline;
  f->plain = !f->observe && !f->have_journal && !f->ordered;
  f->lazy_keys = (f->job->flags & MPC_JOB_KEYS_UNUSED) && !f->observe && !f->have_journal &&
                 !f->jdone;
  return 0;
}

static int finish_master(mpc__farm_t *f) {
  f->rep.wall = now_s() - f->t0;
  int code = 0;
  int frc = 0;
  if (f->job->finish)
    frc = f->job->finish(f->state, &f->rep);
  fflush(stdout);
  if (f->have_journal) {
    int rc = mpc__journal_close(&f->jr);
    if (rc)
      MPC_LOG(MPC_LOG_ERROR, "journal %s: %s", f->cfg.journal, mpc_strerror(rc));
    f->have_journal = 0;
  }
  if (f->timeline) {
    fclose(f->timeline);
    f->timeline = NULL;
  }
  if (f->cfg.trace || f->tl_png) {
    mpc__trace_rank_t *tr = calloc((size_t)f->nranks, sizeof *tr);
    for (int i = 0; tr && i < f->nranks; i++) {
      tr[i].host = f->r[i].host;
      tr[i].workers = f->r[i].workers;
    }
    if (f->cfg.trace) {
      int rc = tr ? mpc__trace_write(f->cfg.trace, f->job->name, f->att, f->natt, tr,
                                     f->nranks)
                  : MPC_ENOMEM;
      if (rc)
        MPC_LOG(MPC_LOG_ERROR, "--trace %s: %s", f->cfg.trace, mpc_strerror(rc));
    }
    if (f->tl_png) {
      int rc = tr ? mpc__tl_png(f->cfg.timeline, f->att, f->natt, tr, f->nranks,
                                f->rep.wall)
                  : MPC_ENOMEM;
      if (rc)
        MPC_LOG(MPC_LOG_ERROR, "--timeline %s: %s", f->cfg.timeline, mpc_strerror(rc));
    }
    free(tr);
  }
  mpc__rank_stat_t *st = calloc((size_t)f->nranks, sizeof *st);
  for (int i = 0; st && i < f->nranks; i++) {
    st[i] = f->r[i].st;
    st[i].workers = f->r[i].workers;
    st[i].host = f->r[i].host;
  }
  mpc__summary_t s = {
      .job = f->job->name,
      .rep = f->rep,
      .nranks = st ? f->nranks : 0,
      .ranks = st,
      .fails = f->fails,
      .nfails_kept = f->nfails,
      .why = f->why[0] ? f->why : NULL,
      .spec_launched = f->spec_launched,
      .spec_won = f->spec_won,
      .by_status = f->by_status,
  };
  mpc_buf_t b = MPC_BUF_INIT;
  if (!f->cfg.quiet || f->rep.failed || f->why[0]) {
    if (mpc__summary_format(&b, &s) == 0)
      fwrite(b.data, 1, b.len, stderr);
  }
  if (f->cfg.json) {
    mpc_buf_clear(&b);
    int rc = mpc__summary_json(&b, &s);
    if (!rc)
      rc = mpc__write_atomic(f->cfg.json, b.data, b.len);
    if (rc)
      MPC_LOG(MPC_LOG_ERROR, "--json %s: %s", f->cfg.json, mpc_strerror(rc));
  }
  mpc_buf_free(&b);
  free(st);
  if (frc)
    fprintf(stderr, "mpc-run: %s: finish failed: %s\n", f->job->name,
            mpc_strerror(frc));
  if (f->stop_signal || f->stop_wall)
    code = 3;
  else if (f->rep.failed || f->rep.canceled || f->fatal || frc)
    code = 1;
  if (f->nlost)
    fprintf(stderr, "mpc-run: %d rank%s lost; Open MPI cannot finish with a rank "
            "gone, so the job ends with MPI_Abort (exit code %d)\n", f->nlost,
            f->nlost == 1 ? "" : "s", code);
  return code;
}

/* When the run must end: --walltime, else the allocation's end when the
 * scheduler says (Slurm exports SLURM_JOB_END_TIME, epoch seconds); 0: never. */
static double wall_deadline(mpc__farm_t *f) {
  if (f->cfg.walltime > 0)
    return f->t0 + f->cfg.walltime;
  const char *e = getenv("SLURM_JOB_END_TIME");
  if (e && *e) {
    char *end;
    double at = strtod(e, &end);
    double left = at - (double)time(NULL);
    if (!*end && at > 0 && left > 0) {
      if (f->cfg.verbose)
        MPC_LOG(MPC_LOG_ERROR, "the allocation ends in %.0f s (SLURM_JOB_END_TIME)", left);
      return f->t0 + left;
    }
  }
  return 0;
}

int mpc__tcp_nodelay_all(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return 0;
  int n = 0, one = 1;
  struct dirent *e;
  while ((e = readdir(d))) {
    int fd = atoi(e->d_name), type = 0;
    socklen_t tl = sizeof type;
    struct sockaddr_storage a;
    socklen_t al = sizeof a;
    if (fd < 3 || fd == dirfd(d) ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&a, &al) ||
        (a.ss_family != AF_INET && a.ss_family != AF_INET6))
      continue;
    n += setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
  }
  closedir(d);
  return n;
}

int mpc__farm_run(mpc__farm_t *f) {
  int inited = 0, code = 2, rc;
  mpc_buf_t err = MPC_BUF_INIT;
  /* A singleton (no launcher in the environment) is one rank: it needs no
   * MPI, and Open MPI's singleton start-up (a daemon of its own) costs
   * ~0.35 s and the same again to end. */
  MPI_Initialized(&inited);
  f->mpi = inited || f->launcher;
  if (f->mpi && !inited) {
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
      fprintf(stderr, "mpc-run: MPI_Init failed\n");
      return 2;
    }
    f->we_init = 1;
    /* PMIx's client connection to the local daemon writes small messages
     * back to back with Nagle on: MPI_Finalize's fence waited 40-50 ms for
     * the daemon's delayed ACK (measured: 48 -> 5 ms with this). */
    mpc__tcp_nodelay_all();
  }
  if (f->mpi) {
    MPI_Comm_dup(MPI_COMM_WORLD, &f->comm);
    MPI_Comm_set_name(f->comm, "mpc-run");
    MPI_Comm_set_errhandler(f->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(f->comm, &f->rank);
    MPI_Comm_size(f->comm, &f->nranks);
  } else {
    f->rank = 0;
    f->nranks = 1;
  }
  if (f->rank != f->rank_guess)
    MPC_LOG(MPC_LOG_WARN,
            "launcher said rank %d, MPI says %d: workers report rank %d",
            f->rank_guess, f->rank, f->rank_guess);
  mpc_log_set_rank(f->nranks > 1 ? f->rank : -1);

  /* Workers per rank: the node's cores shared by its ranks. */
  MPI_Comm node;
  int local = 1;
  if (f->mpi && MPI_Comm_split_type(f->comm, MPI_COMM_TYPE_SHARED, f->rank,
                                    MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
  }
  f->workers = f->cfg.workers;
  if (f->workers <= 0) {
    f->workers = mpc_cpu_count() / (local > 0 ? local : 1);
    if (f->workers < 1)
      f->workers = 1;
  }
  rc = mpc_pool_start(f->pool, f->workers);
  if (!rc)
    f->workers = mpc_pool_workers(f->pool);
  if (rc)
    mpc__msg(&err, "rank %d: cannot start %d workers: %s", f->rank,
                         f->workers, mpc_strerror(rc));

  /* Rank info to the master; master set-up; everyone agrees before going on. */
  struct {
    int workers;
    char host[HOSTLEN];
  } me = {f->workers, {0}}, *all = NULL;
  snprintf(me.host, sizeof me.host, "%s", f->host);
  if (f->rank == 0) {
    all = calloc((size_t)f->nranks, sizeof *all);
    f->r = calloc((size_t)f->nranks, sizeof *f->r);
    if ((!all || !f->r) && !rc) {
      rc = MPC_ENOMEM;
      mpc__msg(&err, "out of memory");
    }
  }
  if (f->mpi)
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0,
               f->comm);
  else if (all)
    all[0] = me;
  if (f->rank == 0 && all && f->r) {
    for (int i = 0; i < f->nranks; i++) {
      f->r[i].workers = all[i].workers;
      f->r[i].st.wtasks = calloc((size_t)all[i].workers, sizeof *f->r[i].st.wtasks);
      f->r[i].st.wbusy = calloc((size_t)all[i].workers, sizeof *f->r[i].st.wbusy);
      if (!f->r[i].st.wtasks || !f->r[i].st.wbusy) {
        free(f->r[i].st.wtasks);
        free(f->r[i].st.wbusy);
        f->r[i].st.wtasks = NULL;
        f->r[i].st.wbusy = NULL;
      }
      memcpy(f->r[i].host, all[i].host, HOSTLEN);
      f->r[i].host[HOSTLEN - 1] = 0;
      f->total_workers += all[i].workers;
    }
    if (!rc)
      rc = setup_master(f, &err);
  }
  free(all);
  int ok = rc == 0, all_ok = ok;
  if (f->mpi)
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, f->comm);
  if (!all_ok) {
    if (rc)
      fprintf(stderr, "mpc-run: %s\n", mpc_buf_str(&err));
    code = 2;
    goto done;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* Batch systems warn of the end with SIGUSR1 (Slurm's --signal, mpirun
   * forwards it to every rank): the same as SIGTERM. */
  sigaction(SIGUSR1, &sa, NULL);
  if (f->mpi)
    MPI_Barrier(f->comm);
  f->t0 = now_s();
  if (f->rank == 0) {
    for (int i = 0; i < f->nranks; i++)
      f->r[i].last_seen = f->t0;
    f->deadline = wall_deadline(f);
    rc = master_loop(f);
    code = finish_master(f);
    if (f->nlost) {
      mpc_pool_terminate(f->pool, NULL, NULL);
      MPI_Abort(f->comm, code);
    }
    if (rc && f->nranks > 1) {
      /* The protocol broke (out of memory, a corrupt message, an MPI error):
       * the other ranks may wait for words that will never come.  The journal
       * and summary are written; end the job rather than hang. */
      fprintf(stderr, "mpc-run: internal error on the master (%s): aborting the job\n",
              mpc_strerror(rc));
      mpc_pool_terminate(f->pool, NULL, NULL);
      MPI_Abort(f->comm, code ? code : 1);
    }
  } else {
    rc = worker_loop(f);
    if (rc)
      MPC_LOG(MPC_LOG_ERROR, "rank %d: %s", f->rank, mpc_strerror(rc));
    if (rc == MPC_EINTR) {
      /* The master never answered after our signal: leave without MPI. */
      mpc_pool_free(f->pool);
      f->pool = NULL;
      _exit(3);
    }
    if (rc) {
      /* Same as above, seen from a worker rank: the master would wait for
       * this rank's results forever. */
      mpc_pool_terminate(f->pool, NULL, NULL);
      MPI_Abort(f->comm, 1);
    }
  }
  /* Everyone leaves with the master's exit code.  Waiting ranks sleep between
   * tests instead of spinning in a blocking collective while the master
   * finishes (ranks share cores). */
  if (f->mpi) {
    MPI_Request req;
    int flag = 0;
    MPI_Ibcast(&code, 1, MPI_INT, 0, f->comm, &req);
    while (!flag) {
      MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
      if (!flag) {
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
      }
    }
  }
done:
  mpc_buf_free(&err);
  mpc_pool_terminate(f->pool, NULL, NULL);
  if (f->mpi)
    MPI_Comm_free(&f->comm);
  if (f->we_init)
    MPI_Finalize();
  return code;
}
