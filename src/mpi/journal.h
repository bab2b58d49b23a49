/* Internal: the task journal of mpc-run, and the task keys it is indexed by.
 *
 * The journal is a text file, one line per task attempt, appended to by the
 * master.  Fields are separated by tabs; text fields are escaped (as \\t, \\n, \\r, \\\\)
 * so that no key or message can break a line:
 *
 *   key status attempt rank host pid code maxrss_kb seconds message output
 *
 * status is mpc_task_status_name() ("ok", "error", "crashed", "exited",
 * "timeout", "oom", "canceled"); code is the error code, signal or exit code;
 * message is the tail of the task's error message (empty when ok); output is
 * the task's output in base64 for MPC_JOB_JOURNAL_OUTPUT jobs (else empty).
 * Lines starting with '#' are comments (one is written when a run starts).
 * A line cut short (a crash during a write) is ignored when read back, and
 * the next writer ends it with a "\t(cut)" field that makes it malformed.
 * The last line of a key decides its state for --resume. */
#ifndef MPC_MPI_JOURNAL_H
#define MPC_MPI_JOURNAL_H

#include <stdint.h>
#include <stdio.h>

#include "mpc/buf.h"
#include "mpc/pool.h"

#define MPC__JOURNAL_FIELDS 11
#define MPC__JOURNAL_MSG_TAIL 200 /* bytes of an error message kept */

/* 64-bit FNV-1a. */
uint64_t mpc__fnv1a64(const void *p, size_t n);
/* FNV-1a-64 of count inputs p[i] of n[i] bytes into out[i]: four at a time,
 * so that their multiply chains overlap (each one is serial). */
void mpc__fnv1a64_many(const unsigned char *const *p, const size_t *n, size_t count,
                       uint64_t *out);
/* Default task key: 16 lowercase hex digits of FNV-1a-64 of the input. */
MPC_MUST_CHECK int mpc__key_default(mpc_buf_t *key, const void *in, size_t n);
/* Default keys of count inputs into o[i] (17 bytes each), as
 * mpc__key_default makes them. */
void mpc__key_default_many(char *const *o, const unsigned char *const *p, const size_t *n,
                           size_t count);

/* Append `n` bytes of s escaped (\\ \t \n \r, other bytes < 0x20 as \xHH). */
MPC_MUST_CHECK int mpc__esc_append(mpc_buf_t *b, const void *s, size_t n);
/* Unescape s[0..n) into b (appended).  MPC_EFORMAT on a bad escape. */
MPC_MUST_CHECK int mpc__unesc_append(mpc_buf_t *b, const char *s, size_t n);

MPC_MUST_CHECK int mpc__b64_append(mpc_buf_t *b, const void *p, size_t n);
/* Decode base64 s[0..n) into b (appended).  MPC_EFORMAT when malformed. */
MPC_MUST_CHECK int mpc__b64_decode_append(mpc_buf_t *b, const char *s, size_t n);

/* One journal record. Text pointers are borrowed. */
typedef struct mpc__jrec {
  const char *key;
  size_t key_len;
  mpc_task_status_t status;
  int attempt;
  int rank;
  const char *host;
  int pid;
  int code;
  long maxrss_kb;
  double seconds;
  const void *msg; /* error message (only its tail is written) */
  size_t msg_len;
  const void *out; /* output to store (NULL: none) */
  size_t out_len;
} mpc__jrec_t;

/* Append one formatted line (with its '\n') to b. */
MPC_MUST_CHECK int mpc__jrec_format(mpc_buf_t *b, const mpc__jrec_t *r);

/* A parsed line: every field decoded into its own buffer. */
typedef struct mpc__jline {
  mpc_buf_t key, host, msg, out;
  mpc_task_status_t status;
  int attempt, rank, pid, code;
  long maxrss_kb;
  double seconds;
} mpc__jline_t;

/* Parse one line (without its '\n').  0, 1 for a comment or empty line,
 * MPC_EFORMAT when malformed. */
MPC_MUST_CHECK int mpc__jline_parse(mpc__jline_t *l, const char *s, size_t n);
void mpc__jline_free(mpc__jline_t *l);
/* Status from its name; -1 when unknown. */
int mpc__status_from_name(const char *s, size_t n);

/* ---- what --resume needs: key -> last state ----------------------------- */
typedef struct mpc__jdone mpc__jdone_t;

/* Read a journal.  A missing file gives an empty table.  Malformed lines are
 * counted in *bad (and skipped); a final line without '\n' is ignored. */
MPC_MUST_CHECK int mpc__jdone_load(mpc__jdone_t **out, const char *path,
                                   size_t *bad);
/* Was `key`'s last attempt ok?  1 yes (output, if journaled, in *out and *len,
 * valid until mpc__jdone_free), 0 no or unknown. */
int mpc__jdone_lookup(const mpc__jdone_t *t, const char *key, size_t key_len,
                      const void **out, size_t *len);
size_t mpc__jdone_count(const mpc__jdone_t *t); /* keys whose last status is ok */
void mpc__jdone_free(mpc__jdone_t *t);

/* ---- the writer: batched appends ---------------------------------------- */
typedef struct mpc__journal {
  int fd;
  mpc_buf_t pending; /* formatted lines not yet written */
  size_t lines;      /* lines in pending */
  double last_flush;
} mpc__journal_t;

/* Open for appending (created 0644); writes a newline first if the file ends
 * mid-line, then a '#' header line with `header`. */
MPC_MUST_CHECK int mpc__journal_open(mpc__journal_t *j, const char *path,
                                     const char *header);
MPC_MUST_CHECK int mpc__journal_add(mpc__journal_t *j, const mpc__jrec_t *r);
/* Write the pending lines if there are many or `now` - last flush is long,
 * or always when force. */
MPC_MUST_CHECK int mpc__journal_flush(mpc__journal_t *j, double now, int force);
/* Flush and close. */
MPC_MUST_CHECK int mpc__journal_close(mpc__journal_t *j);

#endif
