/* Internal helpers shared by the core primitives (process, pipe, queue, shm,
 * dict).  Never installed.
 *
 *  - time: monotonic clock, deadlines and "time left" for EINTR retry loops;
 *  - robust process-shared mutexes, with a repair callback on EOWNERDEAD;
 *  - futex wait/wake on 32-bit counters in shared memory;
 *  - a tiny redo journal that makes multi-word updates crash-consistent;
 *  - shared segments: anonymous MAP_SHARED or named (shm_open) mappings with
 *    a reference-counted header (implemented in shm.c). */
#ifndef MPC_CORE_INTERNAL_H
#define MPC_CORE_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "mpc/error.h"

/* ---------------------------------------------------------------- time -- */

/* Monotonic seconds. */
static inline double mpc__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Absolute deadline for a timeout in seconds: negative timeout -> -1 (never). */
static inline double mpc__deadline(double timeout) {
  return timeout < 0 ? -1.0 : mpc__now() + timeout;
}

/* Seconds left before `deadline` (never below 0); -1 when there is none. */
static inline double mpc__remaining(double deadline) {
  if (deadline < 0)
    return -1.0;
  double r = deadline - mpc__now();
  return r > 0 ? r : 0.0;
}

/* Remaining time as a poll(2) timeout in ms, rounded up; -1 = forever. */
static inline int mpc__poll_ms(double deadline) {
  double r = mpc__remaining(deadline);
  if (r < 0)
    return -1;
  double ms = r * 1000.0 + 0.999;
  return ms > (double)INT_MAX ? INT_MAX : (int)ms;
}

/* A relative timespec for `seconds` (>= 0). */
static inline struct timespec mpc__ts_rel(double seconds) {
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  if (ts.tv_nsec < 0)
    ts.tv_nsec = 0;
  return ts;
}

/* Absolute CLOCK_MONOTONIC timespec for a deadline >= 0. */
static inline struct timespec mpc__ts_abs(double deadline) {
  return mpc__ts_rel(deadline);
}

/* ------------------------------------------------------- robust mutex -- */

/* Initialise a PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST mutex that
 * lives in shared memory.  Returns 0 or -errno. */
static inline int mpc__mutex_init(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  int rc = pthread_mutexattr_init(&a);
  if (rc)
    return -rc;
  rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!rc)
    rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (!rc)
    rc = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return -rc;
}

/* Lock a robust mutex before `deadline` (mpc__deadline(); -1 = forever).
 * When the previous owner died holding it, `repair(ctx)` (if not NULL) runs
 * with the lock held, the mutex is marked consistent and MPC_EOWNERDEAD is
 * returned: the caller holds the lock in that case too.
 * Returns 0, MPC_EOWNERDEAD, MPC_ETIMEDOUT or -errno (lock not held). */
static inline int mpc__mutex_lock(pthread_mutex_t *m, double deadline,
                                  void (*repair)(void *), void *ctx) {
  int rc;
  if (deadline < 0) {
    rc = pthread_mutex_lock(m);
  } else {
    struct timespec ts = mpc__ts_abs(deadline);
    rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
  }
  if (rc == 0)
    return 0;
  if (rc == ETIMEDOUT)
    return MPC_ETIMEDOUT;
  if (rc == EOWNERDEAD) {
    if (repair)
      repair(ctx);
    pthread_mutex_consistent(m);
    return MPC_EOWNERDEAD;
  }
  return -rc;
}

static inline void mpc__mutex_unlock(pthread_mutex_t *m) {
  pthread_mutex_unlock(m);
}

/* -------------------------------------------------------------- futex -- */

/* Sleep while *addr == expected, at most until `deadline` (-1 = forever).
 * Shared (not private) futex: works across processes on MAP_SHARED memory.
 * Returns 0 (woken, value changed, or interrupted: re-check and loop) or
 * MPC_ETIMEDOUT when the deadline has passed. */
static inline int mpc__futex_wait(uint32_t *addr, uint32_t expected,
                                  double deadline) {
  struct timespec ts, *tsp = NULL;
  if (deadline >= 0) {
    double r = mpc__remaining(deadline);
    if (r <= 0)
      return MPC_ETIMEDOUT;
    ts = mpc__ts_rel(r);
    tsp = &ts;
  }
  long rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, NULL, 0);
  if (rc < 0 && errno == ETIMEDOUT)
    return MPC_ETIMEDOUT;
  return 0; /* woken, EAGAIN (value changed) or EINTR */
}

static inline void mpc__futex_wake(uint32_t *addr) {
  syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------ journal -- */

/* A redo journal for up to MPC__JMAX 64-bit words of a shared object.  A
 * mutation first writes its new data into space nobody can see yet, then
 * publishes it with one journal commit.  If the writer dies before the
 * commit flag is set, nothing is visible; if it dies after, the next lock
 * owner replays the journal (the writes are idempotent).  Offsets are from
 * the start of the mapping, so they are valid in every process. */
#define MPC__JMAX 8
typedef struct mpc__journal {
  uint32_t committing;
  uint32_t n;
  uint64_t off[MPC__JMAX];
  uint64_t val[MPC__JMAX];
} mpc__journal_t;

static inline void mpc__journal_begin(mpc__journal_t *j) { j->n = 0; }

static inline void mpc__journal_add(mpc__journal_t *j, void *base,
                                    uint64_t *word, uint64_t v) {
  j->off[j->n] = (uint64_t)((unsigned char *)word - (unsigned char *)base);
  j->val[j->n] = v;
  j->n++;
}

static inline void mpc__journal_apply(mpc__journal_t *j, void *base) {
  for (uint32_t i = 0; i < j->n && i < MPC__JMAX; i++)
    __atomic_store_n((uint64_t *)((unsigned char *)base + j->off[i]), j->val[i],
                     __ATOMIC_RELEASE);
}

/* Test hook: when `crash` is non-zero the process SIGKILLs itself halfway
 * through the commit (after the flag is set, one word applied). */
void mpc__journal_commit(mpc__journal_t *j, void *base, int crash);

/* Replay an interrupted commit; called with the lock held on EOWNERDEAD. */
static inline void mpc__journal_recover(mpc__journal_t *j, void *base) {
  if (__atomic_load_n(&j->committing, __ATOMIC_ACQUIRE))
    mpc__journal_apply(j, base);
  __atomic_store_n(&j->committing, 0, __ATOMIC_RELEASE);
  j->n = 0;
}

/* Test hook points (handle-local, set through the mpc__*_debug_crash()
 * functions): the process kills itself with SIGKILL at that point while
 * holding the object's lock. */
enum {
  MPC__CRASH_NONE = 0,
  MPC__CRASH_BEFORE_COMMIT = 1, /* data half written, nothing published */
  MPC__CRASH_IN_COMMIT = 2      /* journal committing, half applied */
};

/* ----------------------------------------------------- shared segment -- */

#define MPC__NAME_MAX 200
#define MPC__SEG_MAGIC 0x4d504353u /* "MPCS" */

/* First bytes of every shared object (queue, value/array, dict). */
typedef struct mpc__seg_hdr {
  uint32_t magic;    /* set last by the creator (release) */
  uint32_t kind;     /* object kind, checked on open */
  uint64_t size;     /* whole mapping */
  uint32_t refs;     /* attached handles (named objects) */
  uint32_t opens;    /* successful mpc_*_open() calls */
  uint32_t expected; /* opens after which the name is unlinked (0: none) */
  uint32_t unlinked; /* the name is gone */
} mpc__seg_hdr_t;

/* Process-local view of a segment. */
typedef struct mpc__seg {
  void *base;
  size_t size;
  pid_t pid; /* process that created or opened this handle */
  int named;
  char name[MPC__NAME_MAX + 1];
} mpc__seg_t;

/* Is `name` an acceptable object name ("/mpc-" + 1..MPC__NAME_MAX-5 chars,
 * no further '/')? */
int mpc__seg_name_ok(const char *name);

/* Create a zeroed segment of `size` bytes (header included).  name NULL:
 * anonymous MAP_SHARED (shared with children forked later); otherwise
 * shm_open(O_CREAT|O_EXCL, 0600).  The caller initialises its object and
 * then calls mpc__seg_publish().  Returns 0, MPC_EINVAL, -EEXIST, -errno. */
int mpc__seg_create(mpc__seg_t *s, const char *name, size_t size,
                    uint32_t kind, unsigned expected_opens);

/* Make a created segment visible to mpc__seg_open(). */
void mpc__seg_publish(mpc__seg_t *s);

/* Open a named segment of the given kind (waits up to 2 s for a creator that
 * is still initialising).  Returns 0, -ENOENT, MPC_EINVAL, MPC_EPROTO. */
int mpc__seg_open(mpc__seg_t *s, const char *name, uint32_t kind);

/* Drop this handle's mapping.  In the process that created/opened the
 * handle, the reference count is decremented and the name unlinked when it
 * reaches zero; in a forked child that inherited the handle, only unmaps. */
void mpc__seg_close(mpc__seg_t *s);

/* Test hooks: make the next put/set of this handle die at `point`
 * (MPC__CRASH_*), holding the object's lock. */
struct mpc_queue;
struct mpc_dict;
void mpc__queue_debug_crash(struct mpc_queue *q, int point);
void mpc__dict_debug_crash(struct mpc_dict *d, int point);

#endif /* MPC_CORE_INTERNAL_H */
