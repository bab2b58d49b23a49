/* Shared dict: open addressing over fixed slots plus a bump-allocated data
 * area, kept twice ("halves") so that compaction can build a fresh copy and
 * switch to it with one journaled store.  Every mutation writes into space
 * no reader looks at, then publishes through the journal (internal.h). */
#include "mpc/dict.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define KIND_DICT 0x44494354u /* "DICT" */
#define MAX_KEY 65535

enum { S_EMPTY = 0, S_USED = 1, S_TOMB = 2 };

typedef struct dslot {
  uint64_t state, hash, koff, klen, voff, vlen;
} dslot_t;

typedef struct dhalf {
  uint64_t bump, count, tombs, live;
} dhalf_t;

typedef struct dhdr {
  mpc__seg_hdr_t seg;
  pthread_mutex_t lock;
  uint64_t max_entries, max_bytes, nslots, half_size;
  uint64_t active; /* 0 or 1 */
  uint64_t repairs;
  mpc__journal_t j;
} dhdr_t;

#define D_HDR_OFF ((sizeof(dhdr_t) + 63) / 64 * 64)

struct mpc_dict {
  mpc__seg_t seg;
  dhdr_t *h;
  int crash; /* test hook */
};

void mpc__dict_debug_crash(struct mpc_dict *d, int point) { d->crash = point; }

typedef struct view {
  dhalf_t *hd;
  dslot_t *slots;
  unsigned char *data;
} view_t;

static view_t half(mpc_dict_t *d, uint64_t which) {
  view_t v;
  unsigned char *p =
      (unsigned char *)d->seg.base + D_HDR_OFF + which * d->h->half_size;
  v.hd = (dhalf_t *)p;
  v.slots = (dslot_t *)(p + 64);
  v.data = p + 64 + d->h->nslots * sizeof(dslot_t);
  return v;
}

static uint64_t hash_key(const char *k, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)k[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* Find `key` in v: returns its slot index and *found = 1, or the slot where
 * it would be inserted (first tombstone or the empty slot ending the probe)
 * and *found = 0. */
static uint64_t find(mpc_dict_t *d, view_t v, const char *key, size_t klen,
                     uint64_t hash, int *found) {
  uint64_t mask = d->h->nslots - 1, i = hash & mask, ins = UINT64_MAX;
  for (uint64_t n = 0; n < d->h->nslots; n++, i = (i + 1) & mask) {
    dslot_t *s = &v.slots[i];
    if (s->state == S_EMPTY) {
      *found = 0;
      return ins != UINT64_MAX ? ins : i;
    }
    if (s->state == S_TOMB) {
      if (ins == UINT64_MAX)
        ins = i;
      continue;
    }
    if (s->hash == hash && s->klen == klen &&
        memcmp(v.data + s->koff, key, klen) == 0) {
      *found = 1;
      return i;
    }
  }
  *found = 0;
  return ins; /* table full of tombstones; compaction keeps this rare */
}

/* Is half `which` self-consistent? */
static int half_ok(mpc_dict_t *d, uint64_t which) {
  view_t v = half(d, which);
  dhdr_t *h = d->h;
  uint64_t used = 0, tombs = 0, live = 0;
  if (v.hd->bump > h->max_bytes)
    return 0;
  for (uint64_t i = 0; i < h->nslots; i++) {
    dslot_t *s = &v.slots[i];
    if (s->state == S_TOMB)
      tombs++;
    if (s->state != S_USED)
      continue;
    if (s->klen == 0 || s->koff + s->klen > v.hd->bump ||
        s->voff + s->vlen > v.hd->bump)
      return 0;
    used++;
    live += s->klen + s->vlen;
  }
  return used == v.hd->count && tombs == v.hd->tombs && live == v.hd->live &&
         used <= h->max_entries;
}

static void d_repair(void *ctx) {
  mpc_dict_t *d = ctx;
  dhdr_t *h = d->h;
  mpc__journal_recover(&h->j, d->seg.base);
  if (h->active > 1 || !half_ok(d, h->active)) {
    /* Cannot happen with the journal; never hand out garbage if it does. */
    h->active = 0;
    view_t v = half(d, 0);
    memset(v.hd, 0, sizeof *v.hd);
    memset(v.slots, 0, h->nslots * sizeof(dslot_t));
  }
  h->repairs++;
}

static int d_lock(mpc_dict_t *d) {
  int rc = mpc__mutex_lock(&d->h->lock, -1, d_repair, d);
  return rc == MPC_EOWNERDEAD ? 0 : rc;
}

static void d_unlock(mpc_dict_t *d) { mpc__mutex_unlock(&d->h->lock); }

static int d_init(mpc_dict_t *d, const char *name, size_t max_entries,
                  size_t max_bytes, unsigned expected) {
  if (max_entries == 0 || max_entries > ((size_t)1 << 24) || max_bytes == 0 ||
      max_bytes > ((size_t)1 << 40))
    return MPC_EINVAL;
  uint64_t nslots = 8;
  while (nslots < 2 * (uint64_t)max_entries)
    nslots *= 2;
  uint64_t hs = 64 + nslots * sizeof(dslot_t) + max_bytes;
  hs = (hs + 63) / 64 * 64;
  int rc = mpc__seg_create(&d->seg, name, D_HDR_OFF + 2 * hs, KIND_DICT,
                           expected);
  if (rc)
    return rc;
  dhdr_t *h = d->seg.base;
  rc = mpc__mutex_init(&h->lock);
  if (rc) {
    mpc__seg_close(&d->seg);
    return rc;
  }
  h->max_entries = max_entries;
  h->max_bytes = max_bytes;
  h->nslots = nslots;
  h->half_size = hs;
  mpc__seg_publish(&d->seg);
  d->h = h;
  return 0;
}

static int d_new(mpc_dict_t **out, const char *name, size_t max_entries,
                 size_t max_bytes, unsigned expected) {
  if (!out)
    return MPC_EINVAL;
  *out = NULL;
  mpc_dict_t *d = calloc(1, sizeof *d);
  if (!d)
    return MPC_ENOMEM;
  int rc = d_init(d, name, max_entries, max_bytes, expected);
  if (rc) {
    free(d);
    return rc;
  }
  *out = d;
  return 0;
}

int mpc_dict_new(mpc_dict_t **out, size_t max_entries, size_t max_bytes) {
  return d_new(out, NULL, max_entries, max_bytes, 0);
}

int mpc_dict_create(mpc_dict_t **out, const char *name, size_t max_entries,
                    size_t max_bytes, unsigned expected_opens) {
  if (!name)
    return MPC_EINVAL;
  return d_new(out, name, max_entries, max_bytes, expected_opens);
}

int mpc_dict_open(mpc_dict_t **out, const char *name) {
  if (!out)
    return MPC_EINVAL;
  *out = NULL;
  mpc_dict_t *d = calloc(1, sizeof *d);
  if (!d)
    return MPC_ENOMEM;
  int rc = mpc__seg_open(&d->seg, name, KIND_DICT);
  if (rc) {
    free(d);
    return rc;
  }
  dhdr_t *h = d->seg.base;
  uint64_t ns = h->nslots;
  if (ns < 8 || (ns & (ns - 1)) ||
      h->half_size < 64 + ns * sizeof(dslot_t) + h->max_bytes ||
      D_HDR_OFF + 2 * h->half_size > d->seg.size) {
    mpc__seg_close(&d->seg);
    free(d);
    return MPC_EINVAL;
  }
  d->h = h;
  *out = d;
  return 0;
}

void mpc_dict_free(mpc_dict_t *d) {
  if (!d)
    return;
  mpc__seg_close(&d->seg);
  free(d);
}

/* Copy the live entries of the active half, except slot `skip`
 * (UINT64_MAX: none), into the other half, which nobody reads.  The caller
 * publishes it by flipping `active` with a journaled store.  Lock held. */
static view_t compact_build(mpc_dict_t *d, uint64_t skip) {
  dhdr_t *h = d->h;
  view_t a = half(d, h->active), b = half(d, 1 - h->active);
  memset(b.hd, 0, sizeof *b.hd);
  memset(b.slots, 0, h->nslots * sizeof(dslot_t));
  uint64_t mask = h->nslots - 1;
  for (uint64_t i = 0; i < h->nslots; i++) {
    dslot_t *s = &a.slots[i];
    if (s->state != S_USED || i == skip)
      continue;
    uint64_t j = s->hash & mask;
    while (b.slots[j].state != S_EMPTY)
      j = (j + 1) & mask;
    dslot_t *t = &b.slots[j];
    memcpy(b.data + b.hd->bump, a.data + s->koff, s->klen);
    memcpy(b.data + b.hd->bump + s->klen, a.data + s->voff, s->vlen);
    t->hash = s->hash;
    t->koff = b.hd->bump;
    t->klen = s->klen;
    t->voff = b.hd->bump + s->klen;
    t->vlen = s->vlen;
    t->state = S_USED;
    b.hd->bump += s->klen + s->vlen;
    b.hd->count++;
    b.hd->live += s->klen + s->vlen;
  }
  return b;
}

static int key_ok(const char *key, size_t *klen) {
  if (!key)
    return 0;
  *klen = strnlen(key, MAX_KEY + 1);
  return *klen > 0 && *klen <= MAX_KEY;
}

int mpc_dict_set(mpc_dict_t *d, const char *key, const void *val,
                 size_t len) {
  size_t klen;
  if (!d || !key_ok(key, &klen) || (!val && len))
    return MPC_EINVAL;
  dhdr_t *h = d->h;
  if (len > h->max_bytes || klen + len > h->max_bytes)
    return MPC_ETOOBIG;
  uint64_t need = klen + len, hash = hash_key(key, klen);
  int rc = d_lock(d);
  if (rc)
    return rc;
  view_t v = half(d, h->active);
  int found;
  uint64_t i = find(d, v, key, klen, hash, &found);
  uint64_t old = found ? v.slots[i].klen + v.slots[i].vlen : 0;
  if (!found && v.hd->count >= h->max_entries) {
    rc = MPC_ENOSPC;
    goto out;
  }
  if (v.hd->live - old + need > h->max_bytes) {
    rc = MPC_ENOSPC;
    goto out;
  }
  int crash = d->crash;
  mpc__journal_t *j = &h->j;
  void *base = d->seg.base;
  if (v.hd->bump + need > h->max_bytes || i == UINT64_MAX ||
      (!found && (v.hd->count + v.hd->tombs + 1) * 4 > h->nslots * 3)) {
    /* Build a compacted copy without the old entry, add the new one to it
     * directly (nobody reads that half), and publish it with one store:
     * readers see either the old dict or the new one. */
    view_t b = compact_build(d, found ? i : UINT64_MAX);
    int f2;
    uint64_t k = find(d, b, key, klen, hash, &f2);
    dslot_t *t = &b.slots[k];
    memcpy(b.data + b.hd->bump, key, klen);
    if (crash == MPC__CRASH_BEFORE_COMMIT) {
      memcpy(b.data + b.hd->bump + klen, val, len / 2);
      raise(SIGKILL);
    }
    if (len)
      memcpy(b.data + b.hd->bump + klen, val, len);
    t->hash = hash;
    t->koff = b.hd->bump;
    t->klen = klen;
    t->voff = b.hd->bump + klen;
    t->vlen = len;
    t->state = S_USED;
    b.hd->bump += need;
    b.hd->count++;
    b.hd->live += need;
    mpc__journal_begin(j);
    mpc__journal_add(j, base, &h->active, 1 - h->active);
    mpc__journal_commit(j, base, 0);
    rc = 0;
    goto out;
  }
  /* Bytes go to unused space past bump. */
  uint64_t off = v.hd->bump;
  memcpy(v.data + off, key, klen);
  if (crash == MPC__CRASH_BEFORE_COMMIT) {
    memcpy(v.data + off + klen, val, len / 2);
    raise(SIGKILL);
  }
  if (len)
    memcpy(v.data + off + klen, val, len);
  dslot_t *s = &v.slots[i];
  mpc__journal_begin(j);
  if (found) {
    mpc__journal_add(j, base, &s->koff, off);
    mpc__journal_add(j, base, &s->voff, off + klen);
    mpc__journal_add(j, base, &s->vlen, len);
  } else {
    /* The slot is not in use: its fields are invisible until state flips. */
    int was_tomb = s->state == S_TOMB;
    s->hash = hash;
    s->koff = off;
    s->klen = klen;
    s->voff = off + klen;
    s->vlen = len;
    mpc__journal_add(j, base, &s->state, S_USED);
    mpc__journal_add(j, base, &v.hd->count, v.hd->count + 1);
    if (was_tomb)
      mpc__journal_add(j, base, &v.hd->tombs, v.hd->tombs - 1);
  }
  mpc__journal_add(j, base, &v.hd->bump, off + need);
  mpc__journal_add(j, base, &v.hd->live, v.hd->live - old + need);
  mpc__journal_commit(j, base, crash == MPC__CRASH_IN_COMMIT);
  rc = 0;
out:
  d_unlock(d);
  return rc;
}

int mpc_dict_get(mpc_dict_t *d, const char *key, mpc_buf_t *out) {
  size_t klen;
  if (!d || !out || !key_ok(key, &klen))
    return MPC_EINVAL;
  int rc = d_lock(d);
  if (rc)
    return rc;
  view_t v = half(d, d->h->active);
  int found;
  uint64_t i = find(d, v, key, klen, hash_key(key, klen), &found);
  if (!found) {
    rc = MPC_ENOTFOUND;
    goto out;
  }
  rc = mpc_buf_set(out, v.data + v.slots[i].voff, (size_t)v.slots[i].vlen);
out:
  d_unlock(d);
  return rc;
}

int mpc_dict_delete(mpc_dict_t *d, const char *key) {
  size_t klen;
  if (!d || !key_ok(key, &klen))
    return MPC_EINVAL;
  int rc = d_lock(d);
  if (rc)
    return rc;
  dhdr_t *h = d->h;
  view_t v = half(d, h->active);
  int found;
  uint64_t i = find(d, v, key, klen, hash_key(key, klen), &found);
  if (!found) {
    rc = MPC_ENOTFOUND;
    goto out;
  }
  dslot_t *s = &v.slots[i];
  void *base = d->seg.base;
  mpc__journal_begin(&h->j);
  mpc__journal_add(&h->j, base, &s->state, S_TOMB);
  mpc__journal_add(&h->j, base, &v.hd->count, v.hd->count - 1);
  mpc__journal_add(&h->j, base, &v.hd->tombs, v.hd->tombs + 1);
  mpc__journal_add(&h->j, base, &v.hd->live, v.hd->live - s->klen - s->vlen);
  mpc__journal_commit(&h->j, base, 0);
out:
  d_unlock(d);
  return rc;
}

int mpc_dict_len(mpc_dict_t *d, size_t *out) {
  if (!d || !out)
    return MPC_EINVAL;
  int rc = d_lock(d);
  if (rc)
    return rc;
  *out = (size_t)half(d, d->h->active).hd->count;
  d_unlock(d);
  return 0;
}

int mpc_dict_next(mpc_dict_t *d, size_t *cursor, mpc_buf_t *key,
                  mpc_buf_t *val) {
  if (!d || !cursor || !key)
    return MPC_EINVAL;
  int rc = d_lock(d);
  if (rc)
    return rc;
  view_t v = half(d, d->h->active);
  rc = MPC_ENOTFOUND;
  for (uint64_t i = *cursor; i < d->h->nslots; i++) {
    dslot_t *s = &v.slots[i];
    if (s->state != S_USED)
      continue;
    rc = mpc_buf_set(key, v.data + s->koff, (size_t)s->klen);
    if (!rc && val)
      rc = mpc_buf_set(val, v.data + s->voff, (size_t)s->vlen);
    if (!rc)
      *cursor = (size_t)i + 1;
    break;
  }
  d_unlock(d);
  return rc;
}
