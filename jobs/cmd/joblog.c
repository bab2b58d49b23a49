/* cmd job: GNU parallel's joblog, written and read back.
 *
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 *
 * tab-separated, Starttime in epoch seconds with 3 decimals, JobRuntime as
 * "%10.3f" (GNU pads it), Command last (it may contain tabs; a newline in it is
 * written as the two bytes "\n" so that one task stays one line). */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"

int cmd_joblog_escape(mpc_buf_t *out, const char *cmd, size_t len) {
  const char *p = cmd, *end = cmd + len;
  int rc = 0;
  while (p < end && rc == 0) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    rc = mpc_buf_append(out, p, (size_t)(e - p));
    if (rc == 0 && nl)
      rc = mpc_buf_append(out, "\\n", 2);
    p = nl ? nl + 1 : end;
  }
  return rc;
}

int cmd_joblog_format(mpc_buf_t *out, const cmd_joblog_line_t *l) {
  int rc = mpc_buf_printf(out, "%llu\t%s\t%.3f\t%10.3f\t%llu\t%llu\t%d\t%d\t",
                          (unsigned long long)l->seq, l->host ? l->host : ":",
                          l->start, l->runtime, (unsigned long long)l->send,
                          (unsigned long long)l->receive, l->exitval, l->sig);
  if (rc == 0)
    rc = cmd_joblog_escape(out, l->cmd, l->cmd_len);
  return rc ? rc : mpc_buf_append(out, "\n", 1);
}

/* ---- reading back ------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static uint64_t hash_seq(uint64_t s) {
  s ^= s >> 33;
  s *= 0xff51afd7ed558ccdull;
  return s ^ (s >> 33);
}

/* Insert entry index i (the newest for its key wins). */
static void hinsert(cmd_joblog_t *j, size_t *tab, uint64_t h, size_t i,
                    int by_seq) {
  size_t m = j->hcap - 1, k = h & m;
  for (;; k = (k + 1) & m) {
    size_t x = tab[k];
    if (!x)
      break;
    const cmd_joblog_entry_t *o = &j->e[x - 1], *e = &j->e[i];
    if (by_seq ? o->seq == e->seq
               : (o->cmd_len == e->cmd_len &&
                  memcmp(o->cmd, e->cmd, e->cmd_len) == 0))
      break;
  }
  tab[k] = i + 1;
}

static int rebuild(cmd_joblog_t *j) {
  size_t cap = 16;
  while (cap < j->n * 2 + 2)
    cap *= 2;
  size_t *hc = calloc(cap, sizeof *hc), *hs = calloc(cap, sizeof *hs);
  if (!hc || !hs) {
    free(hc);
    free(hs);
    return MPC_ENOMEM;
  }
  free(j->hcmd);
  free(j->hseq);
  j->hcmd = hc;
  j->hseq = hs;
  j->hcap = cap;
  for (size_t i = 0; i < j->n; i++) {
    hinsert(j, hc, hash_bytes(j->e[i].cmd, j->e[i].cmd_len), i, 0);
    hinsert(j, hs, hash_seq(j->e[i].seq), i, 1);
  }
  return 0;
}

/* Parse a decimal integer field [p, e); sign allowed when neg_ok. */
static int parse_int(const char *p, const char *e, int neg_ok, long long *v) {
  while (p < e && *p == ' ')
    p++;
  int neg = 0;
  if (p < e && *p == '-' && neg_ok) {
    neg = 1;
    p++;
  }
  if (p == e)
    return -1;
  unsigned long long x = 0;
  for (; p < e; p++) {
    if (*p < '0' || *p > '9' || x > 1000000000000000000ull)
      return -1;
    x = x * 10 + (unsigned)(*p - '0');
  }
  *v = neg ? -(long long)x : (long long)x;
  return 0;
}

static int parse_num(const char *p, const char *e) {
  while (p < e && *p == ' ')
    p++;
  int digits = 0, dot = 0;
  for (; p < e; p++) {
    if (*p >= '0' && *p <= '9')
      digits++;
    else if (*p == '.' && !dot)
      dot = 1;
    else
      return -1;
  }
  return digits ? 0 : -1;
}

int cmd_joblog_parse(cmd_joblog_t *j, const char *text, size_t len,
                     mpc_buf_t *warn) {
  const char *p = text, *end = text + len;
  size_t lineno = 0;
  int rc = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    lineno++;
    if (!nl) {
      /* A last line without its newline was cut short (kill -9 mid-write):
       * the task it names did not finish cleanly, so it does not count. */
      if (warn)
        rc = mpc_buf_printf(warn, "line %zu: incomplete last line ignored\n",
                            lineno);
      j->bad++;
      break;
    }
    const char *f[9], *fe[9];
    int nf = 0;
    const char *q = p;
    while (nf < 8) {
      const char *t = memchr(q, '\t', (size_t)(nl - q));
      if (!t)
        break;
      f[nf] = q;
      fe[nf++] = t;
      q = t + 1;
    }
    f[nf] = q;
    fe[nf++] = nl;
    long long seq, send, recv, xv, sg;
    int ok = nf == 9 && parse_int(f[0], fe[0], 0, &seq) == 0 &&
             parse_num(f[2], fe[2]) == 0 && parse_num(f[3], fe[3]) == 0 &&
             parse_int(f[4], fe[4], 0, &send) == 0 &&
             parse_int(f[5], fe[5], 0, &recv) == 0 &&
             parse_int(f[6], fe[6], 1, &xv) == 0 &&
             parse_int(f[7], fe[7], 1, &sg) == 0;
    if (lineno == 1 && !ok && (size_t)(nl - p) >= 4 && memcmp(p, "Seq\t", 4) == 0) {
      p = nl + 1;
      continue; /* the header */
    }
    if (!ok) {
      j->bad++;
      if (warn && (rc = mpc_buf_printf(warn, "line %zu: not a joblog line\n",
                                       lineno)))
        return rc;
      p = nl + 1;
      continue;
    }
    if (mpc__grow(&j->e, &j->cap, j->n + 1, sizeof *j->e, 64))
      return MPC_ENOMEM;
    size_t cl = (size_t)(fe[8] - f[8]);
    char *c = malloc(cl + 1);
    if (!c)
      return MPC_ENOMEM;
    memcpy(c, f[8], cl);
    c[cl] = 0;
    j->e[j->n++] = (cmd_joblog_entry_t){.seq = (uint64_t)seq,
                                        .failed = xv != 0 || sg != 0,
                                        .cmd = c,
                                        .cmd_len = cl};
    p = nl + 1;
  }
  return rc ? rc : rebuild(j);
}

int cmd_joblog_load(cmd_joblog_t *j, const char *path, mpc_buf_t *warn) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? rebuild(j) : -errno;
  mpc_buf_t all = MPC_BUF_INIT;
  int rc = 0;
  for (;;) {
    if ((rc = mpc_buf_reserve(&all, 65536)))
      break;
    ssize_t r = read(fd, all.data + all.len, all.cap - all.len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      rc = -errno;
    if (r <= 0)
      break;
    all.len += (size_t)r;
  }
  close(fd);
  if (rc == 0)
    rc = cmd_joblog_parse(j, (const char *)all.data, all.len, warn);
  mpc_buf_free(&all);
  return rc;
}

void cmd_joblog_free(cmd_joblog_t *j) {
  for (size_t i = 0; i < j->n; i++)
    free(j->e[i].cmd);
  free(j->e);
  free(j->hcmd);
  free(j->hseq);
  memset(j, 0, sizeof *j);
}

/* Does entry e (escaped, slot numbers filled in) match cmd with digits at the
 * slot offsets? */
static int match_slots(const cmd_joblog_entry_t *e, const char *cmd,
                       size_t len, const uint32_t *slots, size_t nslots,
                       mpc_buf_t *tmp) {
  size_t pos = 0, at = 0;
  for (size_t i = 0; i <= nslots; i++) {
    size_t s = i < nslots ? (slots[i] <= len ? slots[i] : len) : len;
    if (s < at)
      s = at;
    mpc_buf_clear(tmp);
    if (cmd_joblog_escape(tmp, cmd + at, s - at) != 0)
      return 0;
    if (e->cmd_len - pos < tmp->len ||
        (tmp->len && memcmp(e->cmd + pos, tmp->data, tmp->len) != 0))
      return 0;
    pos += tmp->len;
    at = s;
    if (i < nslots) {
      size_t d = pos;
      while (pos < e->cmd_len && e->cmd[pos] >= '0' && e->cmd[pos] <= '9')
        pos++;
      if (pos == d)
        return 0;
    }
  }
  return pos == e->cmd_len;
}

const cmd_joblog_entry_t *cmd_joblog_find(const cmd_joblog_t *j,
                                          const char *cmd, size_t len,
                                          const uint32_t *slots, size_t nslots,
                                          uint64_t seq) {
  if (!j->hcap || !j->n)
    return NULL;
  size_t m = j->hcap - 1;
  const cmd_joblog_entry_t *hit = NULL;
  mpc_buf_t tmp = MPC_BUF_INIT;
  if (nslots == 0) {
    if (cmd_joblog_escape(&tmp, cmd, len) != 0)
      goto out;
    for (size_t k = hash_bytes((const char *)tmp.data, tmp.len) & m;;
         k = (k + 1) & m) {
      size_t x = j->hcmd[k];
      if (!x)
        break;
      const cmd_joblog_entry_t *e = &j->e[x - 1];
      if (e->cmd_len == tmp.len &&
          (tmp.len == 0 || memcmp(e->cmd, tmp.data, tmp.len) == 0)) {
        hit = e;
        break;
      }
    }
  } else {
    /* {%} makes the logged command depend on the slot it ran in: match the
     * line with the same Seq, the slot numbers as any digits. */
    for (size_t k = hash_seq(seq) & m;; k = (k + 1) & m) {
      size_t x = j->hseq[k];
      if (!x)
        break;
      const cmd_joblog_entry_t *e = &j->e[x - 1];
      if (e->seq == seq) {
        if (match_slots(e, cmd, len, slots, nslots, &tmp))
          hit = e;
        break;
      }
    }
  }
out:
  mpc_buf_free(&tmp);
  return hit;
}
