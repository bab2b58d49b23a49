/* The task journal: formatting, parsing, the --resume table and a batched
 * append-only writer.  See journal.h for the line format. */
#include "mpi/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

uint64_t mpc__fnv1a64(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0xcbf29ce484222325ULL;
  const uint64_t k = 0x100000001b3ULL;
  for (; n >= 8; s += 8, n -= 8) /* unrolled: the chain is serial anyway */
    h = ((((((((h ^ s[0]) * k ^ s[1]) * k ^ s[2]) * k ^ s[3]) * k ^ s[4]) * k ^ s[5]) * k ^
          s[6]) * k ^ s[7]) * k;
  for (; n; s++, n--)
    h = (h ^ *s) * k;
  return h;
}

/* 8 hex digits of v, most significant first, in one 64-bit word: one nibble
 * per byte, then '0'..'9' / 'a'..'f' for all eight bytes at once. */
#if !(defined(__SSE2__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
static uint64_t hex8(uint32_t v) {
  uint64_t x = v;
  x = ((x & 0xffff0000ULL) << 16) | (x & 0xffffULL);
  x = ((x & 0x0000ff000000ff00ULL) << 8) | (x & 0x000000ff000000ffULL);
  x = ((x & 0x00f000f000f000f0ULL) << 4) | (x & 0x000f000f000f000fULL);
  uint64_t letter = ((x + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
  x += 0x3030303030303030ULL + letter * ('a' - '0' - 10);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  x = __builtin_bswap64(x); /* byte 0 holds the lowest nibble: put it last */
#endif
  return x;
}
#endif

static inline void hex16(char *o, uint64_t h) {
#if defined(__SSE2__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* All 16 digits at once: high and low nibbles interleaved, then '0'-'9'
   * or 'a'-'f' by a compare. */
  __m128i v = _mm_cvtsi64_si128((long long)__builtin_bswap64(h));
  __m128i m = _mm_set1_epi8(0x0f);
  __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
  __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(nib, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10));
  _mm_storeu_si128((__m128i *)(void *)o, _mm_add_epi8(nib, _mm_add_epi8(letter, _mm_set1_epi8('0'))));
#else
  uint64_t hi = hex8((uint32_t)(h >> 32)), lo = hex8((uint32_t)h);
  memcpy(o, &hi, 8);
  memcpy(o + 8, &lo, 8);
#endif
  o[16] = 0;
}

int mpc__key_default(mpc_buf_t *key, const void *in, size_t n) {
  uint64_t h = mpc__fnv1a64(in, n);
  if (key->cap - key->len < 17) {
    int rc = mpc_buf_reserve(key, 17);
    if (rc)
      return rc;
  }
  hex16((char *)key->data + key->len, h);
  key->len += 16;
  return 0;
}

/* FNV-1a of four inputs, their multiply chains side by side in scalars (an
 * array of four was kept in memory: a load and a store per byte and chain). */
static inline void fnv4(const unsigned char *const *p, const size_t *n, uint64_t *out) {
  const uint64_t k = 0x100000001b3ULL, off = 0xcbf29ce484222325ULL;
  size_t m = n[0];
  for (int l = 1; l < 4; l++)
    if (n[l] < m)
      m = n[l];
  const unsigned char *a = p[0], *b = p[1], *c = p[2], *d = p[3];
  uint64_t h0 = off, h1 = off, h2 = off, h3 = off;
  size_t j = 0;
  for (; j + 4 <= m; j += 4) {
    h0 = (((((((h0 ^ a[j]) * k) ^ a[j + 1]) * k) ^ a[j + 2]) * k) ^ a[j + 3]) * k;
    h1 = (((((((h1 ^ b[j]) * k) ^ b[j + 1]) * k) ^ b[j + 2]) * k) ^ b[j + 3]) * k;
    h2 = (((((((h2 ^ c[j]) * k) ^ c[j + 1]) * k) ^ c[j + 2]) * k) ^ c[j + 3]) * k;
    h3 = (((((((h3 ^ d[j]) * k) ^ d[j + 1]) * k) ^ d[j + 2]) * k) ^ d[j + 3]) * k;
  }
  for (; j < m; j++) {
    h0 = (h0 ^ a[j]) * k;
    h1 = (h1 ^ b[j]) * k;
    h2 = (h2 ^ c[j]) * k;
    h3 = (h3 ^ d[j]) * k;
  }
  out[0] = h0;
  out[1] = h1;
  out[2] = h2;
  out[3] = h3;
  if ((n[0] ^ m) | (n[1] ^ m) | (n[2] ^ m) | (n[3] ^ m))
    for (int l = 0; l < 4; l++) /* the rest of the longer ones */
      for (size_t q = m; q < n[l]; q++)
        out[l] = (out[l] ^ p[l][q]) * k;
}

void mpc__fnv1a64_many(const unsigned char *const *p, const size_t *n, size_t count,
                       uint64_t *out) {
  size_t i = 0;
  for (; i + 4 <= count; i += 4)
    fnv4(p + i, n + i, out + i);
  for (; i < count; i++)
    out[i] = mpc__fnv1a64(p[i], n[i]);
}

void mpc__key_default_many(char *const *o, const unsigned char *const *p, const size_t *n,
                           size_t count) {
  uint64_t h[32];
  for (size_t i = 0; i < count; i += 32) {
    size_t c = count - i < 32 ? count - i : 32;
    mpc__fnv1a64_many(p + i, n + i, c, h);
    for (size_t j = 0; j < c; j++)
      hex16(o[i + j], h[j]);
  }
}

int mpc__esc_append(mpc_buf_t *b, const void *p, size_t n) {
  const unsigned char *s = p;
  int rc = mpc_buf_reserve(b, n + 8);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    char tmp[5];
    size_t k = 0;
    switch (c) {
    case '\\': tmp[0] = '\\'; tmp[1] = '\\'; k = 2; break;
    case '\t': tmp[0] = '\\'; tmp[1] = 't'; k = 2; break;
    case '\n': tmp[0] = '\\'; tmp[1] = 'n'; k = 2; break;
    case '\r': tmp[0] = '\\'; tmp[1] = 'r'; k = 2; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        static const char hx[] = "0123456789abcdef";
        tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = hx[c >> 4]; tmp[3] = hx[c & 15];
        k = 4;
      } else {
        tmp[0] = (char)c;
        k = 1;
      }
    }
    if ((rc = mpc_buf_append(b, tmp, k)))
      return rc;
  }
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int mpc__unesc_append(mpc_buf_t *b, const char *s, size_t n) {
  int rc = mpc_buf_reserve(b, n + 1);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\') {
      if (++i >= n)
        return MPC_EFORMAT;
      switch (s[i]) {
      case '\\': c = '\\'; break;
      case 't': c = '\t'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 'x': {
        if (i + 2 >= n)
          return MPC_EFORMAT;
        int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
        if (h < 0 || l < 0)
          return MPC_EFORMAT;
        c = (unsigned char)(h << 4 | l);
        i += 2;
        break;
      }
      default:
        return MPC_EFORMAT;
      }
    } else if (c == '\t' || c == '\n') {
      return MPC_EFORMAT;
    }
    b->data[b->len++] = c;
  }
  return 0;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int mpc__b64_append(mpc_buf_t *b, const void *p, size_t n) {
  const unsigned char *s = p;
  int rc = mpc_buf_reserve(b, (n + 2) / 3 * 4 + 1);
  if (rc)
    return rc;
  unsigned char *o = b->data + b->len;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = b64[(v >> 6) & 63];
    *o++ = b64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)s[i + 1] << 8;
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->data);
  return 0;
}

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int mpc__b64_decode_append(mpc_buf_t *b, const char *s, size_t n) {
  if (n % 4)
    return MPC_EFORMAT;
  int rc = mpc_buf_reserve(b, n / 4 * 3 + 1);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad || (v[k] = b64val(s[i + k])) < 0) {
        return MPC_EFORMAT;
      }
    }
    uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    b->data[b->len++] = (unsigned char)(x >> 16);
    if (pad < 2)
      b->data[b->len++] = (unsigned char)(x >> 8);
    if (pad < 1)
      b->data[b->len++] = (unsigned char)x;
  }
  return 0;
}

int mpc__jrec_format(mpc_buf_t *b, const mpc__jrec_t *r) {
  int rc;
  if ((rc = mpc__esc_append(b, r->key, r->key_len)))
    return rc;
  if ((rc = mpc_buf_printf(b, "\t%s\t%d\t%d\t", mpc_task_status_name(r->status),
                           r->attempt, r->rank)))
    return rc;
  const char *host = r->host ? r->host : "";
  if ((rc = mpc__esc_append(b, host, strlen(host))))
    return rc;
  if ((rc = mpc_buf_printf(b, "\t%d\t%d\t%ld\t%.3f\t", r->pid, r->code,
                           r->maxrss_kb, r->seconds)))
    return rc;
  size_t ml = r->msg_len;
  const unsigned char *m = r->msg;
  if (r->status == MPC_TASK_OK)
    ml = 0;
  if (ml > MPC__JOURNAL_MSG_TAIL) {
    m += ml - MPC__JOURNAL_MSG_TAIL;
    ml = MPC__JOURNAL_MSG_TAIL;
  }
  if ((rc = mpc__esc_append(b, m, ml)))
    return rc;
  if ((rc = mpc_buf_append(b, "\t", 1)))
    return rc;
  if (r->out && (rc = mpc__b64_append(b, r->out, r->out_len)))
    return rc;
  return mpc_buf_append(b, "\n", 1);
}

int mpc__status_from_name(const char *s, size_t n) {
  for (int st = MPC_TASK_OK; st <= MPC_TASK_CANCELED; st++) {
    const char *nm = mpc_task_status_name((mpc_task_status_t)st);
    if (strlen(nm) == n && memcmp(nm, s, n) == 0)
      return st;
  }
  return -1;
}

static int parse_long(const char *s, size_t n, long *v) {
  char tmp[32];
  if (n == 0 || n >= sizeof tmp)
    return MPC_EFORMAT;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *end;
  errno = 0;
  long x = strtol(tmp, &end, 10);
  if (errno || *end)
    return MPC_EFORMAT;
  *v = x;
  return 0;
}

void mpc__jline_free(mpc__jline_t *l) {
  mpc_buf_free(&l->key);
  mpc_buf_free(&l->host);
  mpc_buf_free(&l->msg);
  mpc_buf_free(&l->out);
}

int mpc__jline_parse(mpc__jline_t *l, const char *s, size_t n) {
  if (n == 0 || s[0] == '#')
    return 1;
  const char *f[MPC__JOURNAL_FIELDS];
  size_t fl[MPC__JOURNAL_FIELDS];
  size_t nf = 0, start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '\t') {
      if (nf == MPC__JOURNAL_FIELDS)
        return MPC_EFORMAT;
      f[nf] = s + start;
      fl[nf++] = i - start;
      start = i + 1;
    }
  }
  if (nf != MPC__JOURNAL_FIELDS)
    return MPC_EFORMAT;
  mpc_buf_clear(&l->key);
  mpc_buf_clear(&l->host);
  mpc_buf_clear(&l->msg);
  mpc_buf_clear(&l->out);
  int rc;
  if (fl[0] == 0)
    return MPC_EFORMAT;
  if ((rc = mpc__unesc_append(&l->key, f[0], fl[0])))
    return rc;
  int st = mpc__status_from_name(f[1], fl[1]);
  if (st < 0)
    return MPC_EFORMAT;
  l->status = (mpc_task_status_t)st;
  long v[5];
  static const int idx[5] = {2, 3, 5, 6, 7};
  for (int k = 0; k < 5; k++)
    if ((rc = parse_long(f[idx[k]], fl[idx[k]], &v[k])))
      return rc;
  l->attempt = (int)v[0];
  l->rank = (int)v[1];
  l->pid = (int)v[2];
  l->code = (int)v[3];
  l->maxrss_kb = v[4];
  {
    char tmp[48];
    if (fl[8] == 0 || fl[8] >= sizeof tmp)
      return MPC_EFORMAT;
    memcpy(tmp, f[8], fl[8]);
    tmp[fl[8]] = 0;
    char *end;
    l->seconds = strtod(tmp, &end);
    if (*end)
      return MPC_EFORMAT;
  }
  if ((rc = mpc__unesc_append(&l->host, f[4], fl[4])) ||
      (rc = mpc__unesc_append(&l->msg, f[9], fl[9])) ||
      (rc = mpc__b64_decode_append(&l->out, f[10], fl[10])))
    return rc;
  return 0;
}

/* ---- --resume table: open addressing, key -> (ok, output) ---------------- */
typedef struct jent {
  char *key; /* NULL: empty slot */
  size_t key_len;
  int ok;
  unsigned char *out;
  size_t out_len;
} jent_t;

struct mpc__jdone {
  jent_t *slots;
  size_t cap, used, nok;
};

static jent_t *jd_find(mpc__jdone_t *t, const char *k, size_t n) {
  size_t i = (size_t)mpc__fnv1a64(k, n) & (t->cap - 1);
  for (;;) {
    jent_t *e = &t->slots[i];
    if (!e->key || (e->key_len == n && memcmp(e->key, k, n) == 0))
      return e;
    i = (i + 1) & (t->cap - 1);
  }
}

static int jd_grow(mpc__jdone_t *t) {
  size_t ncap = t->cap ? t->cap * 2 : 1024;
  jent_t *old = t->slots;
  size_t ocap = t->cap;
  t->slots = calloc(ncap, sizeof *t->slots);
  if (!t->slots) {
    t->slots = old;
    return MPC_ENOMEM;
  }
  t->cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].key)
      *jd_find(t, old[i].key, old[i].key_len) = old[i];
  free(old);
  return 0;
}

static int jd_put(mpc__jdone_t *t, const mpc__jline_t *l) {
  if ((t->used + 1) * 2 > t->cap) {
    int rc = jd_grow(t);
    if (rc)
      return rc;
  }
  jent_t *e = jd_find(t, (const char *)l->key.data, l->key.len);
  if (!e->key) {
    e->key = malloc(l->key.len + 1);
    if (!e->key)
      return MPC_ENOMEM;
    memcpy(e->key, l->key.data, l->key.len);
    e->key[l->key.len] = 0;
    e->key_len = l->key.len;
    t->used++;
  }
  if (e->ok)
    t->nok--;
  free(e->out);
  e->out = NULL;
  e->out_len = 0;
  e->ok = l->status == MPC_TASK_OK;
  if (e->ok) {
    t->nok++;
    if (l->out.len) {
      e->out = malloc(l->out.len);
      if (!e->out)
        return MPC_ENOMEM;
      memcpy(e->out, l->out.data, l->out.len);
      e->out_len = l->out.len;
    }
  }
  return 0;
}

int mpc__jdone_load(mpc__jdone_t **out, const char *path, size_t *bad) {
  *out = NULL;
  *bad = 0;
  mpc__jdone_t *t = calloc(1, sizeof *t);
  if (!t)
    return MPC_ENOMEM;
  int rc = jd_grow(t);
  if (rc) {
    free(t);
    return rc;
  }
  FILE *fp = fopen(path, "r");
  if (!fp) {
    if (errno == ENOENT) {
      *out = t;
      return 0;
    }
    rc = -errno;
    mpc__jdone_free(t);
    return rc;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  mpc__jline_t l = {0};
  while ((n = getline(&line, &cap, fp)) > 0) {
    if (line[n - 1] != '\n')
      break; /* cut short by a crash: never acted upon */
    int prc = mpc__jline_parse(&l, line, (size_t)n - 1);
    if (prc == 1)
      continue;
    if (prc < 0) {
      if (prc == MPC_ENOMEM) {
        rc = prc;
        break;
      }
      (*bad)++;
      continue;
    }
    if ((rc = jd_put(t, &l)))
      break;
  }
  free(line);
  mpc__jline_free(&l);
  if (!rc && ferror(fp))
    rc = MPC_EIO;
  fclose(fp);
  if (rc) {
    mpc__jdone_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int mpc__jdone_lookup(const mpc__jdone_t *t, const char *key, size_t key_len,
                      const void **out, size_t *len) {
  if (!t || !t->used)
    return 0;
  jent_t *e = jd_find((mpc__jdone_t *)t, key, key_len);
  if (!e->key || !e->ok)
    return 0;
  if (out)
    *out = e->out;
  if (len)
    *len = e->out_len;
  return 1;
}

size_t mpc__jdone_count(const mpc__jdone_t *t) { return t ? t->nok : 0; }

void mpc__jdone_free(mpc__jdone_t *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->cap; i++) {
    free(t->slots[i].key);
    free(t->slots[i].out);
  }
  free(t->slots);
  free(t);
}

/* ---- writer -------------------------------------------------------------- */
static int write_all(int fd, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

int mpc__journal_open(mpc__journal_t *j, const char *path, const char *header) {
  memset(j, 0, sizeof *j);
  j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (j->fd < 0)
    return -errno;
  int rc = 0;
  struct stat st;
  if (fstat(j->fd, &st) == 0 && st.st_size > 0) {
    /* A line cut short by a crash must not swallow our first line. */
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    char c = '\n';
    if (rfd >= 0) {
      if (pread(rfd, &c, 1, st.st_size - 1) != 1)
        c = '\n';
      close(rfd);
    }
    /* End it with a field that no parser accepts ("(cut)" is neither an
     * extra field nor base64), so it can never pass for a complete line. */
    if (c != '\n')
      rc = mpc_buf_append(&j->pending, "\t(cut)\n", 7);
  }
  if (!rc && header)
    rc = mpc_buf_printf(&j->pending, "# %s\n", header);
  if (!rc)
    rc = mpc__journal_flush(j, 0, 1);
  if (rc) {
    close(j->fd);
    j->fd = -1;
    mpc_buf_free(&j->pending);
  }
  return rc;
}

int mpc__journal_add(mpc__journal_t *j, const mpc__jrec_t *r) {
  int rc = mpc__jrec_format(&j->pending, r);
  if (!rc)
    j->lines++;
  return rc;
}

int mpc__journal_flush(mpc__journal_t *j, double now, int force) {
  if (j->fd < 0 || j->pending.len == 0)
    return 0;
  if (!force && j->lines < 256 && j->pending.len < (1u << 20) &&
      now - j->last_flush < 0.25)
    return 0;
  int rc = write_all(j->fd, j->pending.data, j->pending.len);
  mpc_buf_clear(&j->pending);
  j->lines = 0;
  j->last_flush = now;
  return rc;
}

int mpc__journal_close(mpc__journal_t *j) {
  if (j->fd < 0)
    return 0;
  int rc = mpc__journal_flush(j, 0, 1);
  if (close(j->fd) != 0 && !rc)
    rc = -errno;
  j->fd = -1;
  mpc_buf_free(&j->pending);
  return rc;
}
