/* Shared segments (used by queue, dict and value/array) and the shared value
 * and array themselves. */
#include "mpc/shm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/internal.h"

/* ------------------------------------------------------------ segment -- */

int mpc__seg_name_ok(const char *name) {
  if (!name || strncmp(name, "/mpc-", 5) != 0)
    return 0;
  size_t n = strlen(name);
  if (n < 6 || n > MPC__NAME_MAX)
    return 0;
  return strchr(name + 1, '/') == NULL;
}

static size_t page_round(size_t n) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  return (n + pg - 1) / pg * pg;
}

int mpc__seg_create(mpc__seg_t *s, const char *name, size_t size,
                    uint32_t kind, unsigned expected_opens) {
  int fd = -1, rc = 0;
  void *p = MAP_FAILED;
  memset(s, 0, sizeof *s);
  if (size < sizeof(mpc__seg_hdr_t) || size > ((size_t)1 << 46))
    return MPC_EINVAL;
  if (name && !mpc__seg_name_ok(name))
    return MPC_EINVAL;
  size = page_round(size);
  if (!name) {
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
      return errno == ENOMEM ? MPC_ENOMEM : -errno;
  } else {
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      return -errno;
    /* Exactly 0600 whatever the umask. */
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
      rc = -errno;
      goto fail;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      rc = errno == ENOMEM ? MPC_ENOMEM : -errno;
      goto fail;
    }
    close(fd);
    fd = -1;
    s->named = 1;
    strcpy(s->name, name);
  }
  s->base = p;
  s->size = size;
  s->pid = getpid();
  mpc__seg_hdr_t *h = p;
  h->kind = kind;
  h->size = size;
  h->refs = 1;
  h->expected = expected_opens;
  return 0;
fail:
  if (fd >= 0) {
    close(fd);
    shm_unlink(name);
  }
  return rc;
}

void mpc__seg_publish(mpc__seg_t *s) {
  mpc__seg_hdr_t *h = s->base;
  __atomic_store_n(&h->magic, MPC__SEG_MAGIC, __ATOMIC_RELEASE);
}

static void seg_unlink_once(mpc__seg_t *s) {
  mpc__seg_hdr_t *h = s->base;
  uint32_t zero = 0;
  if (__atomic_compare_exchange_n(&h->unlinked, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE))
    shm_unlink(s->name);
}

int mpc__seg_open(mpc__seg_t *s, const char *name, uint32_t kind) {
  int rc = 0;
  void *p = MAP_FAILED;
  struct stat st;
  memset(s, 0, sizeof *s);
  if (!mpc__seg_name_ok(name))
    return MPC_EINVAL;
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  /* The creator may still be sizing/initialising the object. */
  double deadline = mpc__deadline(2.0);
  for (;;) {
    if (fstat(fd, &st) < 0) {
      rc = -errno;
      goto out;
    }
    if ((size_t)st.st_size >= sizeof(mpc__seg_hdr_t)) {
      if (p == MAP_FAILED) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd, 0);
        if (p == MAP_FAILED) {
          rc = errno == ENOMEM ? MPC_ENOMEM : -errno;
          goto out;
        }
      }
      if (__atomic_load_n(&((mpc__seg_hdr_t *)p)->magic, __ATOMIC_ACQUIRE) ==
          MPC__SEG_MAGIC)
        break;
    }
    if (mpc__remaining(deadline) <= 0) {
      rc = MPC_EPROTO;
      goto out;
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  mpc__seg_hdr_t *h = p;
  if (h->kind != kind || h->size != (uint64_t)st.st_size) {
    rc = MPC_EINVAL;
    goto out;
  }
  s->base = p;
  s->size = (size_t)st.st_size;
  s->pid = getpid();
  s->named = 1;
  strcpy(s->name, name);
  p = MAP_FAILED;
  __atomic_add_fetch(&h->refs, 1, __ATOMIC_ACQ_REL);
  uint32_t opens = __atomic_add_fetch(&h->opens, 1, __ATOMIC_ACQ_REL);
  if (h->expected && opens >= h->expected)
    seg_unlink_once(s);
out:
  if (p != MAP_FAILED)
    munmap(p, (size_t)st.st_size);
  close(fd);
  return rc;
}

void mpc__seg_close(mpc__seg_t *s) {
  if (!s->base)
    return;
  if (s->named && s->pid == getpid()) {
    mpc__seg_hdr_t *h = s->base;
    if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) == 0)
      seg_unlink_once(s);
  }
  munmap(s->base, s->size);
  s->base = NULL;
}

void mpc__journal_commit(mpc__journal_t *j, void *base, int crash) {
  __atomic_store_n(&j->committing, 1, __ATOMIC_RELEASE);
  if (crash && j->n > 0) {
    __atomic_store_n((uint64_t *)((unsigned char *)base + j->off[0]),
                     j->val[0], __ATOMIC_RELEASE);
    raise(SIGKILL);
  }
  mpc__journal_apply(j, base);
  __atomic_store_n(&j->committing, 0, __ATOMIC_RELEASE);
}

int mpc_shm_unlink(const char *name) {
  if (!mpc__seg_name_ok(name))
    return MPC_EINVAL;
  return shm_unlink(name) < 0 ? -errno : 0;
}

/* -------------------------------------------------------- value/array -- */

#define KIND_VALUE 0x56414c55u /* "VALU" */
#define KIND_ARRAY 0x41525259u /* "ARRY" */

typedef struct arr_hdr {
  mpc__seg_hdr_t seg;
  pthread_mutex_t lock;
  uint32_t type;
  uint32_t pad;
  uint64_t elem_size;
  uint64_t n;
} arr_hdr_t;

#define ARR_DATA_OFF ((sizeof(arr_hdr_t) + 63) / 64 * 64)

/* Values and arrays share one representation; the distinct public types
 * only let the compiler catch a mix-up. */
typedef struct shobj {
  mpc__seg_t seg;
  arr_hdr_t *h;
  unsigned char *data;
  mpc_shm_type_t type;
  size_t elem_size;
  size_t n;
} shobj_t;

struct mpc_value {
  shobj_t o;
};
struct mpc_array {
  shobj_t o;
};

static int elem_size_for(mpc_shm_type_t type, size_t elem_size,
                         size_t *out) {
  switch (type) {
  case MPC_SHM_INT64:
  case MPC_SHM_DOUBLE:
    *out = 8;
    return 0;
  case MPC_SHM_BYTES:
    if (elem_size == 0 || elem_size > ((size_t)1 << 30))
      return MPC_EINVAL;
    *out = elem_size;
    return 0;
  }
  return MPC_EINVAL;
}

static void obj_bind(shobj_t *o) {
  o->h = o->seg.base;
  o->data = (unsigned char *)o->seg.base + ARR_DATA_OFF;
  o->type = (mpc_shm_type_t)o->h->type;
  o->elem_size = (size_t)o->h->elem_size;
  o->n = (size_t)o->h->n;
}

static int obj_create(shobj_t *o, const char *name, uint32_t kind,
                      mpc_shm_type_t type, size_t elem_size, size_t n,
                      unsigned expected) {
  size_t es;
  int rc = elem_size_for(type, elem_size, &es);
  if (rc)
    return rc;
  if (n == 0 || n > (((size_t)1 << 46) - ARR_DATA_OFF) / es)
    return MPC_EINVAL;
  rc = mpc__seg_create(&o->seg, name, ARR_DATA_OFF + n * es, kind, expected);
  if (rc)
    return rc;
  arr_hdr_t *h = o->seg.base;
  rc = mpc__mutex_init(&h->lock);
  if (rc) {
    mpc__seg_close(&o->seg);
    return rc;
  }
  h->type = (uint32_t)type;
  h->elem_size = es;
  h->n = n;
  mpc__seg_publish(&o->seg);
  obj_bind(o);
  return 0;
}

static int obj_open(shobj_t *o, const char *name, uint32_t kind) {
  int rc = mpc__seg_open(&o->seg, name, kind);
  if (rc)
    return rc;
  arr_hdr_t *h = o->seg.base;
  size_t es;
  if (elem_size_for((mpc_shm_type_t)h->type, (size_t)h->elem_size, &es) ||
      es != h->elem_size || h->n == 0 ||
      ARR_DATA_OFF + h->n * es > o->seg.size) {
    mpc__seg_close(&o->seg);
    return MPC_EINVAL;
  }
  obj_bind(o);
  return 0;
}

static int obj_lock(shobj_t *o, double timeout) {
  return mpc__mutex_lock(&o->h->lock, mpc__deadline(timeout), NULL, NULL);
}

static int obj_unlock(shobj_t *o) {
  int rc = pthread_mutex_unlock(&o->h->lock);
  return -rc;
}

static int64_t *i64_at(const shobj_t *o, size_t i) {
  if (o->type != MPC_SHM_INT64 || i >= o->n)
    return NULL;
  return (int64_t *)(o->data + i * 8);
}

static uint64_t *f64_at(const shobj_t *o, size_t i) {
  if (o->type != MPC_SHM_DOUBLE || i >= o->n)
    return NULL;
  return (uint64_t *)(o->data + i * 8);
}

static int obj_get_i64(const shobj_t *o, size_t i, int64_t *out) {
  int64_t *p = i64_at(o, i);
  if (!p || !out)
    return MPC_EINVAL;
  *out = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  return 0;
}

static int obj_set_i64(shobj_t *o, size_t i, int64_t x) {
  int64_t *p = i64_at(o, i);
  if (!p)
    return MPC_EINVAL;
  __atomic_store_n(p, x, __ATOMIC_SEQ_CST);
  return 0;
}

static int obj_add_i64(shobj_t *o, size_t i, int64_t d, int64_t *res) {
  int64_t *p = i64_at(o, i);
  if (!p)
    return MPC_EINVAL;
  int64_t r = __atomic_add_fetch(p, d, __ATOMIC_SEQ_CST);
  if (res)
    *res = r;
  return 0;
}

static int obj_get_f64(const shobj_t *o, size_t i, double *out) {
  uint64_t *p = f64_at(o, i);
  if (!p || !out)
    return MPC_EINVAL;
  uint64_t bits = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  memcpy(out, &bits, sizeof bits);
  return 0;
}

static int obj_set_f64(shobj_t *o, size_t i, double x) {
  uint64_t *p = f64_at(o, i);
  if (!p)
    return MPC_EINVAL;
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  __atomic_store_n(p, bits, __ATOMIC_SEQ_CST);
  return 0;
}

/* Allocate a handle struct of `sz` bytes whose first member is a shobj_t. */
#define NEW_HANDLE(T, out, call)                                               \
  do {                                                                         \
    if (!(out))                                                                \
      return MPC_EINVAL;                                                       \
    *(out) = NULL;                                                             \
    T *h_ = calloc(1, sizeof *h_);                                             \
    if (!h_)                                                                   \
      return MPC_ENOMEM;                                                       \
    int rc_ = (call);                                                          \
    if (rc_) {                                                                 \
      free(h_);                                                                \
      return rc_;                                                              \
    }                                                                          \
    *(out) = h_;                                                               \
    return 0;                                                                  \
  } while (0)

int mpc_value_new(mpc_value_t **out, mpc_shm_type_t type, size_t elem_size) {
  NEW_HANDLE(mpc_value_t, out,
             obj_create(&h_->o, NULL, KIND_VALUE, type, elem_size, 1, 0));
}

int mpc_value_create(mpc_value_t **out, const char *name, mpc_shm_type_t type,
                     size_t elem_size, unsigned expected_opens) {
  if (!name)
    return MPC_EINVAL;
  NEW_HANDLE(mpc_value_t, out,
             obj_create(&h_->o, name, KIND_VALUE, type, elem_size, 1,
                        expected_opens));
}

int mpc_value_open(mpc_value_t **out, const char *name) {
  NEW_HANDLE(mpc_value_t, out, obj_open(&h_->o, name, KIND_VALUE));
}

void mpc_value_free(mpc_value_t *v) {
  if (!v)
    return;
  mpc__seg_close(&v->o.seg);
  free(v);
}

int mpc_value_lock(mpc_value_t *v, double timeout) {
  return v ? obj_lock(&v->o, timeout) : MPC_EINVAL;
}
int mpc_value_unlock(mpc_value_t *v) {
  return v ? obj_unlock(&v->o) : MPC_EINVAL;
}
int mpc_value_get_i64(const mpc_value_t *v, int64_t *out) {
  return v ? obj_get_i64(&v->o, 0, out) : MPC_EINVAL;
}
int mpc_value_set_i64(mpc_value_t *v, int64_t x) {
  return v ? obj_set_i64(&v->o, 0, x) : MPC_EINVAL;
}
int mpc_value_add_i64(mpc_value_t *v, int64_t delta, int64_t *result) {
  return v ? obj_add_i64(&v->o, 0, delta, result) : MPC_EINVAL;
}
int mpc_value_get_f64(const mpc_value_t *v, double *out) {
  return v ? obj_get_f64(&v->o, 0, out) : MPC_EINVAL;
}
int mpc_value_set_f64(mpc_value_t *v, double x) {
  return v ? obj_set_f64(&v->o, 0, x) : MPC_EINVAL;
}
void *mpc_value_ptr(mpc_value_t *v) { return v ? v->o.data : NULL; }
size_t mpc_value_size(const mpc_value_t *v) { return v ? v->o.elem_size : 0; }

int mpc_array_new(mpc_array_t **out, mpc_shm_type_t type, size_t elem_size,
                  size_t n) {
  NEW_HANDLE(mpc_array_t, out,
             obj_create(&h_->o, NULL, KIND_ARRAY, type, elem_size, n, 0));
}

int mpc_array_create(mpc_array_t **out, const char *name, mpc_shm_type_t type,
                     size_t elem_size, size_t n, unsigned expected_opens) {
  if (!name)
    return MPC_EINVAL;
  NEW_HANDLE(mpc_array_t, out,
             obj_create(&h_->o, name, KIND_ARRAY, type, elem_size, n,
                        expected_opens));
}

int mpc_array_open(mpc_array_t **out, const char *name) {
  NEW_HANDLE(mpc_array_t, out, obj_open(&h_->o, name, KIND_ARRAY));
}

void mpc_array_free(mpc_array_t *a) {
  if (!a)
    return;
  mpc__seg_close(&a->o.seg);
  free(a);
}

int mpc_array_lock(mpc_array_t *a, double timeout) {
  return a ? obj_lock(&a->o, timeout) : MPC_EINVAL;
}
int mpc_array_unlock(mpc_array_t *a) {
  return a ? obj_unlock(&a->o) : MPC_EINVAL;
}
size_t mpc_array_len(const mpc_array_t *a) { return a ? a->o.n : 0; }
size_t mpc_array_elem_size(const mpc_array_t *a) {
  return a ? a->o.elem_size : 0;
}
void *mpc_array_data(mpc_array_t *a) { return a ? a->o.data : NULL; }

int mpc_array_get_i64(const mpc_array_t *a, size_t i, int64_t *out) {
  return a ? obj_get_i64(&a->o, i, out) : MPC_EINVAL;
}
int mpc_array_set_i64(mpc_array_t *a, size_t i, int64_t x) {
  return a ? obj_set_i64(&a->o, i, x) : MPC_EINVAL;
}
int mpc_array_add_i64(mpc_array_t *a, size_t i, int64_t delta,
                      int64_t *result) {
  return a ? obj_add_i64(&a->o, i, delta, result) : MPC_EINVAL;
}
int mpc_array_get_f64(const mpc_array_t *a, size_t i, double *out) {
  return a ? obj_get_f64(&a->o, i, out) : MPC_EINVAL;
}
int mpc_array_set_f64(mpc_array_t *a, size_t i, double x) {
  return a ? obj_set_f64(&a->o, i, x) : MPC_EINVAL;
}
int mpc_array_get(const mpc_array_t *a, size_t i, void *out) {
  if (!a || !out || i >= a->o.n)
    return MPC_EINVAL;
  memcpy(out, a->o.data + i * a->o.elem_size, a->o.elem_size);
  return 0;
}
int mpc_array_set(mpc_array_t *a, size_t i, const void *in) {
  if (!a || !in || i >= a->o.n)
    return MPC_EINVAL;
  memcpy(a->o.data + i * a->o.elem_size, in, a->o.elem_size);
  return 0;
}
