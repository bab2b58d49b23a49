/* The `wordcount` job: word frequencies over many files and big files.
 * Tasks are whole files or byte ranges of big files; a word belongs to the
 * range holding its first byte.  Workers return serialized (word, count)
 * tables; gather() merges them into one hash table; finish() sorts by count
 * then word, prints the top N and writes the TSV.  Counts are integers, so
 * the answer is the same whatever the ranks and the completion order. */
#include "wordcount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#define WC_DEFAULT_CHUNK (32ULL << 20)

/* ---- hash table -------------------------------------------------------------- */

static inline uint64_t mix(uint64_t h) {
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ULL;
  h ^= h >> 32;
  return h;
}

/* Short words: their two zero-padded 8-byte halves. */
static inline uint64_t hash_short(uint64_t a, uint64_t b, size_t n) {
  return mix(a * 0x9E3779B97F4A7C15ULL + b * 0xbf58476d1ce4e5b9ULL + n);
}

static uint64_t hash_long(const unsigned char *p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  return mix(h ^ w);
}

/* w[0..n) as two zero-padded halves, n <= WC_INLINE.  `room`: bytes readable
 * from w (>= 16: one unaligned load, masked). */
static inline void load_short(const unsigned char *w, size_t n, size_t room, uint64_t *a,
                              uint64_t *b) {
  uint64_t x[2] = {0, 0};
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ /* the masks keep the first n bytes */
  if (room >= 16) {
    memcpy(x, w, 16);
    if (n < 8) {
      x[0] &= n ? ~0ULL >> (64 - 8 * n) : 0;
      x[1] = 0;
    } else if (n < 16) {
      x[1] &= n > 8 ? ~0ULL >> (128 - 8 * n) : 0;
    }
  } else
#endif
  {
    (void)room;
    memcpy(x, w, n);
  }
  *a = x[0];
  *b = x[1];
}

static inline uint64_t ent_hash(const wc_table_t *t, const wc_entry_t *e) {
  return e->len <= WC_INLINE ? hash_short(e->u.w[0], e->u.w[1], e->len)
                             : hash_long(t->arena.data + e->u.off, e->len);
}

const unsigned char *wc_entry_word(const wc_table_t *t, const wc_entry_t *e) {
  return e->len <= WC_INLINE ? e->u.b : t->arena.data + e->u.off;
}

void wc_table_init(wc_table_t *t) { memset(t, 0, sizeof *t); }

void wc_table_free(wc_table_t *t) {
  free(t->slot);
  mpc_buf_free(&t->arena);
  memset(t, 0, sizeof *t);
}

static int grow(wc_table_t *t) {
  size_t cap = t->cap ? t->cap * 2 : 1024;
  wc_entry_t *s = calloc(cap, sizeof *s);
  if (!s)
    return MPC_ENOMEM;
  for (size_t i = 0; i < t->cap; i++) {
    wc_entry_t *e = &t->slot[i];
    if (!e->count)
      continue;
    size_t j = ent_hash(t, e) & (cap - 1);
    while (s[j].count)
      j = (j + 1) & (cap - 1);
    s[j] = *e;
  }
  free(t->slot);
  t->slot = s;
  t->cap = cap;
  return 0;
}

/* The slot of a short word (a, b, n), or the empty slot where it goes. */
static inline wc_entry_t *find_short(const wc_table_t *t, uint64_t h, uint64_t a, uint64_t b,
                                     size_t n) {
  size_t j = h & (t->cap - 1);
  const uint32_t tag = (uint32_t)(h >> 32);
  for (;;) {
    wc_entry_t *e = &t->slot[j];
    if (!e->count || (e->tag == tag && e->len == n && e->u.w[0] == a && e->u.w[1] == b))
      return e;
    j = (j + 1) & (t->cap - 1);
  }
}

static inline wc_entry_t *find_long(const wc_table_t *t, uint64_t h, const unsigned char *w,
                                    size_t n) {
  size_t j = h & (t->cap - 1);
  const uint32_t tag = (uint32_t)(h >> 32);
  for (;;) {
    wc_entry_t *e = &t->slot[j];
    if (!e->count ||
        (e->tag == tag && e->len == n && memcmp(t->arena.data + e->u.off, w, n) == 0))
      return e;
    j = (j + 1) & (t->cap - 1);
  }
}

static inline int room_for_one(wc_table_t *t) {
  return (t->used + 1) * 4 > t->cap * 3 ? grow(t) : 0;
}

/* Add `count` to a short word (n <= WC_INLINE) given as its halves and hash. */
static inline int add_short_h(wc_table_t *t, uint64_t a, uint64_t b, size_t n, uint64_t h,
                              uint64_t count) {
  if (room_for_one(t))
    return MPC_ENOMEM;
  wc_entry_t *e = find_short(t, h, a, b, n);
  if (!e->count) {
    e->tag = (uint32_t)(h >> 32);
    e->len = (uint32_t)n;
    e->u.w[0] = a;
    e->u.w[1] = b;
    t->used++;
  }
  e->count += count;
  return 0;
}

static inline int add_short(wc_table_t *t, uint64_t a, uint64_t b, size_t n, uint64_t count) {
  return add_short_h(t, a, b, n, hash_short(a, b, n), count);
}

static int add_long(wc_table_t *t, const unsigned char *w, size_t n, uint64_t count) {
  if (n > UINT32_MAX)
    return MPC_ETOOBIG;
  if (room_for_one(t))
    return MPC_ENOMEM;
  uint64_t h = hash_long(w, n);
  wc_entry_t *e = find_long(t, h, w, n);
  if (!e->count) {
    uint64_t off = t->arena.len;
    if (mpc_buf_append(&t->arena, w, n))
      return MPC_ENOMEM;
    e->tag = (uint32_t)(h >> 32);
    e->len = (uint32_t)n;
    e->u.off = off;
    t->used++;
  }
  e->count += count;
  return 0;
}

/* `room`: bytes readable from w (a short word is read with one 16-byte load
 * when there are that many). */
static inline int add_word(wc_table_t *t, const unsigned char *w, size_t n, size_t room,
                           uint64_t count) {
  if (n > WC_INLINE)
    return add_long(t, w, n, count);
  uint64_t a, b;
  load_short(w, n, room, &a, &b);
  return add_short(t, a, b, n, count);
}

int wc_table_add(wc_table_t *t, const unsigned char *w, size_t n, uint64_t count) {
  return count ? add_word(t, w, n, n, count) : 0;
}

uint64_t wc_table_get(const wc_table_t *t, const unsigned char *w, size_t n) {
  if (!t->cap)
    return 0;
  if (n > WC_INLINE)
    return find_long(t, hash_long(w, n), w, n)->count;
  uint64_t a, b;
  load_short(w, n, n, &a, &b);
  return find_short(t, hash_short(a, b, n), a, b, n)->count;
}

int wc_table_write(const wc_table_t *t, mpc_buf_t *out) {
  for (size_t i = 0; i < t->cap; i++) {
    const wc_entry_t *e = &t->slot[i];
    if (!e->count)
      continue;
    unsigned char hdr[12];
    memcpy(hdr, &e->len, 4);
    memcpy(hdr + 4, &e->count, 8);
    if (mpc_buf_append(out, hdr, sizeof hdr) ||
        mpc_buf_append(out, wc_entry_word(t, e), e->len))
      return MPC_ENOMEM;
  }
  return 0;
}

int wc_table_merge_bytes(wc_table_t *t, const unsigned char *p, size_t n) {
  size_t off = 0;
  while (off < n) {
    uint32_t len;
    uint64_t c;
    if (n - off < 12)
      return MPC_EPROTO;
    memcpy(&len, p + off, 4);
    memcpy(&c, p + off + 4, 8);
    off += 12;
    if (n - off < len)
      return MPC_EPROTO;
    int rc = c ? add_word(t, p + off, len, n - off, c) : 0;
    if (rc)
      return rc;
    off += len;
  }
  return 0;
}

static const wc_table_t *g_sort_table; /* qsort has no context argument */

static int ent_cmp(const void *a, const void *b) {
  const wc_entry_t *x = a, *y = b;
  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(wc_entry_word(g_sort_table, x), wc_entry_word(g_sort_table, y), n);
  if (c)
    return c;
  return (x->len > y->len) - (x->len < y->len);
}

int wc_table_sorted(const wc_table_t *t, wc_entry_t **out) {
  wc_entry_t *v = malloc((t->used ? t->used : 1) * sizeof *v);
  if (!v)
    return MPC_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < t->cap; i++)
    if (t->slot[i].count)
      v[k++] = t->slot[i];
  g_sort_table = t;
  qsort(v, k, sizeof *v, ent_cmp);
  *out = v;
  return 0;
}

/* ---- tokenizing -------------------------------------------------------------- */

void wc_lower(unsigned char *w, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned c = w[i];
    if (c >= 'A' && c <= 'Z') {
      w[i] = (unsigned char)(c + 32);
    } else if (c >= 0xC2 && c <= 0xD4 && i + 1 < n && (w[i + 1] & 0xC0) == 0x80) {
      unsigned cp = ((c & 0x1F) << 6) | (w[i + 1] & 0x3F), lc = cp;
      if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || /* Latin-1 */
          (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) || /* Greek */
          (cp >= 0x410 && cp <= 0x42F))                  /* Cyrillic */
        lc = cp + 0x20;
      else if (cp >= 0x400 && cp <= 0x40F)
        lc = cp + 0x50;
      else if (cp == 0x178)
        lc = 0xFF;
      else if (cp >= 0x100 && cp <= 0x17F && cp != 0x130 && cp != 0x131 && cp != 0x138 &&
               cp != 0x149 && cp != 0x17F &&
               ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E) ? (cp & 1)
                                                                               : !(cp & 1)))
        lc = cp + 1; /* Latin Extended-A pairs */
      if (lc != cp && lc < 0x800) {
        w[i] = (unsigned char)(0xC0 | (lc >> 6));
        w[i + 1] = (unsigned char)(0x80 | (lc & 0x3F));
      }
      i++;
    }
  }
}

static size_t utf8_chars(const unsigned char *w, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += (w[i] & 0xC0) != 0x80;
  return k;
}

/* Bit i set: p[i] is a word byte, for the 64 bytes at p (all readable). */
static inline uint64_t word_mask64(const unsigned char *p) {
#if defined(__x86_64__)
  const __m128i c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9), ca = _mm_set1_epi8('a'),
                c25 = _mm_set1_epi8(25), c20 = _mm_set1_epi8(0x20);
  uint64_t m = 0;
  for (int k = 0; k < 4; k++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
    __m128i d = _mm_sub_epi8(v, c0);
    __m128i l = _mm_sub_epi8(_mm_or_si128(v, c20), ca);
    __m128i is_d = _mm_cmpeq_epi8(_mm_min_epu8(d, c9), d);  /* d <= 9 unsigned */
    __m128i is_l = _mm_cmpeq_epi8(_mm_min_epu8(l, c25), l); /* l <= 25 unsigned */
    __m128i w = _mm_or_si128(_mm_or_si128(is_d, is_l), v); /* v: its high bit */
    m |= (uint64_t)(uint32_t)_mm_movemask_epi8(w) << (16 * k);
  }
  return m;
#else
  uint64_t m = 0;
  for (int i = 0; i < 64; i++)
    m |= (uint64_t)wc_is_word(p[i]) << i;
  return m;
#endif
}

static int add_counted(const unsigned char *w, size_t n, size_t room, const wc_opts_t *o,
                       wc_table_t *t) {
  if (o->min_len > 1 && (n < o->min_len || utf8_chars(w, n) < o->min_len))
    return 0;
  if (!o->lower)
    return add_word(t, w, n, room, 1);
  unsigned char small[256];
  unsigned char *c = n <= sizeof small ? small : malloc(n);
  if (!c)
    return MPC_ENOMEM;
  memcpy(c, w, n);
  wc_lower(c, n);
  int rc = add_word(t, c, n, n, 1);
  if (c != small)
    free(c);
  return rc;
}

/* Words waiting to be counted: short ones are hashed and their slots
 * prefetched a batch ahead, so the table's cache misses overlap. */
#define WC_BATCH 32
typedef struct wbatch {
  size_t n;
  size_t start[WC_BATCH], len[WC_BATCH];
} wbatch_t;

static int flush_words(wbatch_t *wb, const unsigned char *buf, size_t buflen,
                       const wc_opts_t *o, wc_table_t *t) {
  uint64_t a[WC_BATCH], b[WC_BATCH], h[WC_BATCH];
  const int plain = !o->lower && o->min_len <= 1;
  for (size_t i = 0; i < wb->n; i++) {
    size_t n = wb->len[i];
    if (!plain || n > WC_INLINE) {
      a[i] = b[i] = h[i] = 0; /* not used */
      continue;
    }
    load_short(buf + wb->start[i], n, buflen - wb->start[i], &a[i], &b[i]);
    h[i] = hash_short(a[i], b[i], n);
    if (t->cap)
      __builtin_prefetch(&t->slot[h[i] & (t->cap - 1)]);
  }
  for (size_t i = 0; i < wb->n; i++) {
    size_t s = wb->start[i], n = wb->len[i];
    int rc = plain && n <= WC_INLINE ? add_short_h(t, a[i], b[i], n, h[i], 1)
                                     : add_counted(buf + s, n, buflen - s, o, t);
    if (rc)
      return rc;
  }
  wb->n = 0;
  return 0;
}

/* Words are found 64 bytes at a time: a mask of word bytes, then its
 * transitions (a word starts where a word byte follows a non-word byte, ends
 * at the next non-word byte), so no branch depends on each byte. */
int wc_count(const unsigned char *buf, size_t len, size_t from, size_t to,
             const wc_opts_t *o, wc_table_t *t) {
  wbatch_t wb = {0};
  size_t p = from;
  if (p > 0 && p < len && wc_is_word(buf[p - 1]))
    while (p < len && wc_is_word(buf[p]))
      p++; /* the word began in the previous range */
  size_t start = SIZE_MAX; /* of the word being read */
  uint64_t carry = 0;      /* the byte before this block is a word byte */
  unsigned char tail[64];
  for (size_t base = p; base < len; base += 64) {
    if (base >= to && start == SIZE_MAX)
      break; /* words starting at or past `to` are the next range's */
    uint64_t m;
    if (len - base >= 64) {
      m = word_mask64(buf + base);
    } else { /* the last bytes: a padded copy (never read past the buffer) */
      memset(tail, ' ', sizeof tail);
      memcpy(tail, buf + base, len - base);
      m = word_mask64(tail);
    }
    uint64_t edges = m ^ ((m << 1) | carry);
    carry = m >> 63;
    while (edges) {
      size_t at = base + (size_t)__builtin_ctzll(edges);
      edges &= edges - 1;
      if (start == SIZE_MAX) {
        if (at >= to)
          return flush_words(&wb, buf, len, o, t);
        start = at;
      } else {
        wb.start[wb.n] = start;
        wb.len[wb.n] = at - start;
        start = SIZE_MAX;
        int rc = ++wb.n == WC_BATCH ? flush_words(&wb, buf, len, o, t) : 0;
        if (rc)
          return rc;
      }
    }
  }
  int rc = flush_words(&wb, buf, len, o, t);
  if (!rc && start != SIZE_MAX) /* a word running to the end of the buffer */
    rc = add_counted(buf + start, len - start, len - start, o, t);
  return rc;
}

/* ---- the job ------------------------------------------------------------------ */

typedef struct file_ent {
  char *path;
  uint64_t size;
  int err; /* listing error (-errno), task will report it */
} file_ent_t;

typedef struct wc_state {
  char **paths;
  int npaths;
  size_t top;
  char *out;
  uint64_t chunk;
  wc_opts_t opts;
  /* master */
  int listed;
  file_ent_t *files;
  size_t nfiles, capfiles, fi;
  uint64_t foff;
  wc_table_t total;
  uint64_t failed;
  uint64_t words;
} wc_state_t;

static void wc_free(void *state) {
  wc_state_t *s = state;
  if (!s)
    return;
  for (size_t i = 0; i < s->nfiles; i++)
    free(s->files[i].path);
  free(s->files);
  wc_table_free(&s->total);
  free(s->paths);
  free(s->out);
  free(s);
}

static int wc_init(int argc, char **argv, const mpc_job_env_t *env, void **state,
                   mpc_buf_t *err) {
  (void)env;
  wc_state_t *s = calloc(1, sizeof *s);
  if (!s || !(s->paths = calloc((size_t)argc + 1, sizeof *s->paths))) {
    free(s);
    return MPC_ENOMEM;
  }
  s->top = 10;
  s->chunk = WC_DEFAULT_CHUNK;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *e;
    if (strcmp(a, "--top") == 0 && v) {
      long long n = strtoll(v, &e, 10);
      if (*e || n < 0)
        goto badnum;
      s->top = (size_t)n;
      i++;
    } else if (strcmp(a, "--min-length") == 0 && v) {
      long long n = strtoll(v, &e, 10);
      if (*e || n < 0)
        goto badnum;
      s->opts.min_len = (size_t)n;
      i++;
    } else if (strcmp(a, "--chunk-size") == 0 && v) {
      long long n = strtoll(v, &e, 10);
      if (n < 1)
        goto badnum;
      if (*e == 'K' || *e == 'k')
        n <<= 10, e++;
      else if (*e == 'M' || *e == 'm')
        n <<= 20, e++;
      else if (*e == 'G' || *e == 'g')
        n <<= 30, e++;
      if (*e)
        goto badnum;
      s->chunk = (uint64_t)n;
      i++;
    } else if (strcmp(a, "--out") == 0 && v) {
      free(s->out);
      s->out = strdup(v);
      i++;
    } else if (strcmp(a, "--lower") == 0) {
      s->opts.lower = 1;
    } else if (a[0] == '-' && a[1]) {
      if (mpc_buf_printf(err, "unknown option or missing value: %s", a))
        mpc_buf_clear(err);
      wc_free(s);
      return MPC_EUSAGE;
    } else {
      s->paths[s->npaths++] = argv[i];
    }
    continue;
  badnum:
    if (mpc_buf_printf(err, "%s: expected a number, got '%s'", a, v))
      mpc_buf_clear(err);
    wc_free(s);
    return MPC_EUSAGE;
  }
  if (s->npaths == 0) {
    if (mpc_buf_printf(err, "missing PATH (files or directories)"))
      mpc_buf_clear(err);
    wc_free(s);
    return MPC_EUSAGE;
  }
  *state = s;
  return 0;
}

static int add_file(wc_state_t *s, const char *path, uint64_t size, int err) {
  if (mpc__grow(&s->files, &s->capfiles, s->nfiles + 1, sizeof *s->files, 64))
    return MPC_ENOMEM;
  char *p = strdup(path);
  if (!p)
    return MPC_ENOMEM;
  s->files[s->nfiles++] = (file_ent_t){p, size, err};
  return 0;
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Depth-first, names sorted, so the task order does not depend on the file
 * system.  Symbolic links to directories are not followed (no loops). */
static int walk(wc_state_t *s, const char *path, int top) {
  struct stat st, lst;
  if (stat(path, &st) != 0)
    return add_file(s, path, 0, -errno);
  if (S_ISREG(st.st_mode))
    return add_file(s, path, (uint64_t)st.st_size, 0);
  if (!S_ISDIR(st.st_mode))
    return top ? add_file(s, path, 0, MPC_EINVAL) : 0;
  if (!top && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
    return 0;
  DIR *d = opendir(path);
  if (!d)
    return add_file(s, path, 0, -errno);
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if ((rc = mpc__grow(&names, &cap, n + 1, sizeof *names, 32)))
      break;
    if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0) {
      rc = MPC_ENOMEM;
      break;
    }
    n++;
  }
  closedir(d);
  if (!rc)
    qsort(names, n, sizeof *names, str_cmp);
  for (size_t i = 0; i < n; i++) {
    if (!rc)
      rc = walk(s, names[i], 0);
    free(names[i]);
  }
  free(names);
  return rc;
}

static int wc_next(void *state, mpc_buf_t *input, mpc_buf_t *key) {
  wc_state_t *s = state;
  if (!s->listed) {
    s->listed = 1;
    for (int i = 0; i < s->npaths; i++) {
      int rc = walk(s, s->paths[i], 1);
      if (rc) {
        if (mpc_buf_printf(key, "listing %s: %s", s->paths[i], mpc_strerror(rc)))
          mpc_buf_clear(key);
        return rc;
      }
    }
  }
  if (s->fi >= s->nfiles)
    return 0;
  file_ent_t *f = &s->files[s->fi];
  uint64_t hdr[4] = {s->foff, s->foff + s->chunk, f->size, (uint64_t)(int64_t)f->err};
  if (hdr[1] >= f->size || f->err)
    hdr[1] = f->size;
  int whole = hdr[0] == 0 && hdr[1] == f->size;
  if (mpc_buf_append(input, hdr, sizeof hdr) ||
      mpc_buf_append(input, f->path, strlen(f->path)))
    return MPC_ENOMEM;
  int rc = whole ? mpc_buf_printf(key, "%s", f->path)
                 : mpc_buf_printf(key, "%s:%" PRIu64 "-%" PRIu64, f->path, hdr[0], hdr[1]);
  if (rc)
    return rc;
  if (hdr[1] >= f->size) {
    s->fi++;
    s->foff = 0;
  } else {
    s->foff = hdr[1];
  }
  return 1;
}

static int wc_run(void *state, const void *in, size_t in_len, mpc_buf_t *out) {
  wc_state_t *s = state;
  uint64_t hdr[4];
  if (in_len < sizeof hdr)
    return mpc_task_fail(out, MPC_EINVAL, "wordcount: bad task input");
  memcpy(hdr, in, sizeof hdr);
  char *path = strndup((const char *)in + sizeof hdr, in_len - sizeof hdr);
  if (!path)
    return mpc_task_fail(out, MPC_ENOMEM, "wordcount: out of memory");
  int rc = 0;
  wc_table_t t;
  wc_table_init(&t);
  unsigned char *map = NULL;
  size_t len = 0;
  if ((int64_t)hdr[3] < 0) {
    rc = mpc_task_fail(out, (int)(int64_t)hdr[3], "%s: %s", path, mpc_strerror((int)(int64_t)hdr[3]));
    goto done;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = mpc_task_fail(out, -errno, "%s: %s", path, strerror(errno));
    goto done;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != hdr[2]) {
    close(fd);
    rc = mpc_task_fail(out, MPC_EIO, "%s: file changed size since it was listed", path);
    goto done;
  }
  len = (size_t)st.st_size;
  if (len) {
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      map = NULL;
      rc = mpc_task_fail(out, -errno, "%s: %s", path, strerror(errno));
      close(fd);
      goto done;
    }
    madvise(map + (hdr[0] & ~(uint64_t)4095), hdr[1] - (hdr[0] & ~(uint64_t)4095),
            MADV_SEQUENTIAL);
  }
  close(fd);
  rc = wc_count(map, len, hdr[0], hdr[1], &s->opts, &t);
  if (!rc)
    rc = wc_table_write(&t, out);
  if (rc)
    rc = mpc_task_fail(out, rc, "%s: %s", path, mpc_strerror(rc));
done:
  if (map)
    munmap(map, len);
  wc_table_free(&t);
  free(path);
  return rc;
}

static int wc_gather(void *state, const mpc_job_result_t *r) {
  wc_state_t *s = state;
  if (r->status != MPC_TASK_OK) {
    s->failed++;
    fprintf(stderr, "wordcount: %.*s\n", (int)r->output_len,
            r->output_len ? (const char *)r->output : r->key);
    return 0;
  }
  int rc = wc_table_merge_bytes(&s->total, r->output, r->output_len);
  if (rc == MPC_EPROTO) {
    s->failed++;
    fprintf(stderr, "wordcount: %s: malformed task result\n", r->key);
    return 0;
  }
  return rc;
}

static int wc_finish(void *state, const mpc_job_report_t *rep) {
  wc_state_t *s = state;
  (void)rep;
  wc_entry_t *v = NULL;
  int rc = wc_table_sorted(&s->total, &v);
  if (rc)
    return rc;
  size_t n = s->total.used;
  for (size_t i = 0; i < n && i < s->top; i++)
    printf("%" PRIu64 "\t%.*s\n", v[i].count, (int)v[i].len,
           (const char *)wc_entry_word(&s->total, &v[i]));
  fflush(stdout);
  if (s->out) {
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%d", s->out, (int)getpid()) < 0) {
      free(v);
      return MPC_ENOMEM;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
      rc = -errno;
      fprintf(stderr, "wordcount: %s: %s\n", tmp, strerror(errno));
    } else {
      for (size_t i = 0; i < n; i++)
        fprintf(f, "%.*s\t%" PRIu64 "\n", (int)v[i].len,
                (const char *)wc_entry_word(&s->total, &v[i]), v[i].count);
      int bad = ferror(f);
      if (fclose(f) != 0 || bad) {
        rc = MPC_EIO;
        fprintf(stderr, "wordcount: %s: write failed\n", tmp);
        unlink(tmp);
      } else if (rename(tmp, s->out) != 0) {
        rc = -errno;
        fprintf(stderr, "wordcount: %s: %s\n", s->out, strerror(errno));
        unlink(tmp);
      }
    }
    free(tmp);
  }
  free(v);
  if (!rc && s->failed)
    fprintf(stderr, "wordcount: %" PRIu64 " task%s failed; counts above exclude them\n",
            s->failed, s->failed == 1 ? "" : "s");
  return rc;
}

const mpc_job_t mpc_job_wordcount = {
    .abi = MPC_JOB_ABI_VERSION,
    .flags = MPC_JOB_IDEMPOTENT | MPC_JOB_JOURNAL_OUTPUT,
    .name = "wordcount",
    .brief = "word frequencies over files and directories (big files split by byte ranges)",
    .usage = "wordcount PATH... [--top N] [--out counts.tsv] [--lower] [--min-length N]\n"
             "          [--chunk-size BYTES]\n"
             "  words: maximal runs of ASCII letters/digits and bytes >= 0x80 (UTF-8)\n"
             "  --top N         print the N most frequent (default 10), count<TAB>word\n"
             "  --out FILE      all counts as word<TAB>count, by count desc then word\n"
             "  --lower         lowercase ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic\n"
             "  --min-length N  skip words shorter than N characters (code points)\n"
             "  --chunk-size B  split files larger than B bytes (default 32M)",
    .init = wc_init,
    .next = wc_next,
    .run = wc_run,
    .gather = wc_gather,
    .finish = wc_finish,
    .fini = wc_free,
};
MPC_JOB_BUILTIN(mpc_job_wordcount);
