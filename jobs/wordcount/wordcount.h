/* Internal interface of the `wordcount` job (jobs/wordcount/).  Not installed.
 * See docs/wordcount.md for the word definition. */
#ifndef MPC_JOBS_WORDCOUNT_H
#define MPC_JOBS_WORDCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "mpc/buf.h"
#include "mpc/job.h"

extern const mpc_job_t mpc_job_wordcount;

/* A word: a maximal run of bytes that are ASCII letters or digits or >= 0x80
 * (so UTF-8 letters stay inside words).  Same as the C-locale pipeline
 *   tr -cs 'A-Za-z0-9\200-\377' '\n'                                        */
static inline int wc_is_word(unsigned char c) {
  return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Hash table word -> count.  Words of up to 16 bytes (nearly all) live in
 * their entry, zero-padded, so a lookup compares two words of 8 bytes and
 * reads no other memory; longer ones live in an arena owned by the table. */
#define WC_INLINE 16
typedef struct wc_entry {
  uint64_t count;    /* 0: empty slot */
  uint32_t len;
  uint32_t tag;      /* high half of the hash: most probes end here */
  union {
    unsigned char b[WC_INLINE]; /* len <= WC_INLINE */
    uint64_t w[2];
    uint64_t off;               /* len > WC_INLINE: arena offset */
  } u;
} wc_entry_t;

typedef struct wc_table {
  wc_entry_t *slot;
  size_t cap, used;
  mpc_buf_t arena; /* the words, back to back */
} wc_table_t;

void wc_table_init(wc_table_t *t);
void wc_table_free(wc_table_t *t);
/* Add `count` to word w[0..n).  0 or MPC_ENOMEM. */
int wc_table_add(wc_table_t *t, const unsigned char *w, size_t n, uint64_t count);
/* Count of a word (0 if absent). */
uint64_t wc_table_get(const wc_table_t *t, const unsigned char *w, size_t n);
const unsigned char *wc_entry_word(const wc_table_t *t, const wc_entry_t *e);

typedef struct wc_opts {
  int lower;          /* ASCII + common UTF-8 (Latin-1, Latin Ext-A, Greek, Cyrillic) */
  size_t min_len;     /* minimum length in characters (UTF-8 code points) */
} wc_opts_t;

/* Count the words that START in buf[from, to) (reading past `to` up to `len`
 * to finish the last one; a word that starts before `from` is skipped). */
int wc_count(const unsigned char *buf, size_t len, size_t from, size_t to,
             const wc_opts_t *o, wc_table_t *t);

/* Lowercase a word in place (same byte length: only mappings that keep the
 * UTF-8 length are applied). */
void wc_lower(unsigned char *w, size_t n);

/* Serialize / merge a table: [u32 len][u64 count][bytes]... */
int wc_table_write(const wc_table_t *t, mpc_buf_t *out);
int wc_table_merge_bytes(wc_table_t *t, const unsigned char *p, size_t n);

/* Entries sorted by count descending then word ascending (bytes); the
 * caller frees the array. */
int wc_table_sorted(const wc_table_t *t, wc_entry_t **out);

#endif
