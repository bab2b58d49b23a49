/* cmd job: arguments, the command template, GNU parallel's replacement
 * strings, shell quoting and the task encoding. */
#include "cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- argument groups ------------------------------------------------------- */

int cmd_group_add(cmd_group_t *g, const void *s, size_t n) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 64;
    size_t *off = realloc(g->off, cap * sizeof *off);
    if (!off)
      return MPC_ENOMEM;
    g->off = off;
    size_t *len = realloc(g->len, cap * sizeof *len);
    if (!len)
      return MPC_ENOMEM;
    g->len = len;
    g->cap = cap;
  }
  size_t at = g->data.len;
  int rc = mpc_buf_append(&g->data, s, n);
  if (rc == 0)
    rc = mpc_buf_append(&g->data, "", 1);
  if (rc)
    return rc;
  g->off[g->n] = at;
  g->len[g->n] = n;
  g->n++;
  return 0;
}

int cmd_group_read_fd(cmd_group_t *g, int fd, int skip_empty) {
  mpc_buf_t all = MPC_BUF_INIT;
  int rc = 0;
  for (;;) {
    if ((rc = mpc_buf_reserve(&all, 65536)))
      goto out;
    ssize_t r = read(fd, all.data + all.len, all.cap - all.len);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      goto out;
    }
    if (r == 0)
      break;
    all.len += (size_t)r;
  }
  const char *p = (const char *)all.data, *end = p + all.len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    if (!(skip_empty && e == p) && (rc = cmd_group_add(g, p, (size_t)(e - p))))
      goto out;
    p = nl ? nl + 1 : end;
  }
out:
  mpc_buf_free(&all);
  return rc;
}

void cmd_group_free(cmd_group_t *g) {
  mpc_buf_free(&g->data);
  free(g->off);
  free(g->len);
  memset(g, 0, sizeof *g);
}

/* ---- template ------------------------------------------------------------------ */

static int add_piece(cmd_tmpl_t *t, int kind, int group, size_t off,
                     size_t len) {
  if (kind == CMD_P_LIT && len == 0)
    return 0;
  if (kind == CMD_P_LIT && t->n && t->p[t->n - 1].kind == CMD_P_LIT &&
      t->p[t->n - 1].off + t->p[t->n - 1].len == off) {
    t->p[t->n - 1].len += len;
    return 0;
  }
  cmd_piece_t *p = realloc(t->p, (t->n + 1) * sizeof *p);
  if (!p)
    return MPC_ENOMEM;
  t->p = p;
  t->p[t->n++] = (cmd_piece_t){.kind = kind, .group = group, .off = off,
                               .len = len};
  if (kind != CMD_P_LIT)
    t->has_repl = 1;
  if (group > t->max_group)
    t->max_group = group;
  return 0;
}

/* Recognise a replacement string at s[0] == '{'; returns its length (0: none). */
static size_t match_repl(const char *s, size_t n, int *kind, int *group) {
  size_t i = 1;
  int g = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9' && g < 100000)
    g = g * 10 + (s[i++] - '0');
  if (i > 1 && (g == 0 || s[1] == '0'))
    return 0; /* {0}, {01}: not replacement strings */
  static const struct {
    const char *tail;
    int kind;
    int numbered; /* allowed after a number */
  } forms[] = {
      {"}", CMD_P_ARG, 1},   {".}", CMD_P_DOT, 1},  {"//}", CMD_P_DIR, 1},
      {"/.}", CMD_P_BDOT, 1}, {"/}", CMD_P_BASE, 1}, {"#}", CMD_P_SEQ, 0},
      {"%}", CMD_P_SLOT, 0},
  };
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    size_t tl = strlen(forms[f].tail);
    if (i > 1 && !forms[f].numbered)
      continue;
    if (n - i >= tl && memcmp(s + i, forms[f].tail, tl) == 0) {
      *kind = forms[f].kind;
      *group = g;
      return i + tl;
    }
  }
  return 0;
}

int cmd_tmpl_parse(cmd_tmpl_t *t, const char *text, size_t len) {
  memset(t, 0, sizeof *t);
  t->text = malloc(len + 1);
  if (!t->text)
    return MPC_ENOMEM;
  memcpy(t->text, text, len);
  t->text[len] = 0;
  t->text_len = len;
  size_t lit = 0, i = 0;
  int rc = 0;
  while (i < len) {
    int kind, group;
    size_t m = text[i] == '{' ? match_repl(text + i, len - i, &kind, &group) : 0;
    if (!m) {
      i++;
      continue;
    }
    if ((rc = add_piece(t, CMD_P_LIT, 0, lit, i - lit)) ||
        (rc = add_piece(t, kind, group, i, m)))
      goto fail;
    i += m;
    lit = i;
  }
  if ((rc = add_piece(t, CMD_P_LIT, 0, lit, len - lit)))
    goto fail;
  return 0;
fail:
  cmd_tmpl_free(t);
  return rc;
}

void cmd_tmpl_free(cmd_tmpl_t *t) {
  free(t->text);
  free(t->p);
  memset(t, 0, sizeof *t);
}

/* ---- quoting and transformations ----------------------------------------- */

static int safe_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || strchr("_./,:+@%-", c) != NULL;
}

int cmd_shell_quote(mpc_buf_t *out, const char *s, size_t n) {
  int safe = n > 0;
  for (size_t i = 0; safe && i < n; i++)
    safe = s[i] != 0 && safe_char((unsigned char)s[i]);
  if (safe)
    return mpc_buf_append(out, s, n);
  int rc = mpc_buf_reserve(out, n + 2);
  if (rc || (rc = mpc_buf_append(out, "'", 1)))
    return rc;
  const char *p = s, *end = s + n;
  while (p < end) {
    const char *q = memchr(p, '\'', (size_t)(end - p));
    const char *e = q ? q : end;
    if ((rc = mpc_buf_append(out, p, (size_t)(e - p))))
      return rc;
    if (q && (rc = mpc_buf_append(out, "'\\''", 4)))
      return rc;
    p = q ? q + 1 : end;
  }
  return mpc_buf_append(out, "'", 1);
}

/* Length of s without its extension: GNU parallel's s:\.[^/.]*$::. */
static size_t strip_ext(const char *s, size_t n) {
  for (size_t i = n; i-- > 0;) {
    if (s[i] == '/')
      return n;
    if (s[i] == '.')
      return i;
  }
  return n;
}

int cmd_xform(mpc_buf_t *out, int kind, const char *s, size_t n) {
  switch (kind) {
  case CMD_P_ARG:
    return mpc_buf_append(out, s, n);
  case CMD_P_DOT:
    return mpc_buf_append(out, s, strip_ext(s, n));
  case CMD_P_BASE:
  case CMD_P_BDOT: {
    /* Everything after the last slash, so "dir/" has an empty basename (GNU). */
    const char *b = s;
    for (size_t i = 0; i < n; i++)
      if (s[i] == '/')
        b = s + i + 1;
    size_t bn = n - (size_t)(b - s);
    return mpc_buf_append(out, b, kind == CMD_P_BDOT ? strip_ext(b, bn) : bn);
  }
  case CMD_P_DIR: {
    /* Perl's File::Basename::dirname, which GNU parallel uses (POSIX rules). */
    size_t e = n;
    while (e > 1 && s[e - 1] == '/')
      e--;
    size_t i = e;
    while (i > 0 && s[i - 1] != '/')
      i--;
    if (i == 0)
      return mpc_buf_append(out, e && s[0] == '/' ? "/" : ".", 1);
    while (i > 1 && s[i - 1] == '/')
      i--;
    return mpc_buf_append(out, s, i);
  }
  }
  return MPC_EINVAL;
}

/* ---- expansion --------------------------------------------------------------- */

static int put_arg(mpc_buf_t *cmd, mpc_buf_t *tmp, int kind, const char *a,
                   size_t n) {
  mpc_buf_clear(tmp);
  int rc = cmd_xform(tmp, kind, a, n);
  return rc ? rc : cmd_shell_quote(cmd, (const char *)tmp->data, tmp->len);
}

int cmd_tmpl_expand(const cmd_tmpl_t *t, const char *const *args,
                    const size_t *lens, size_t nargs, uint64_t seq,
                    mpc_buf_t *cmd, mpc_buf_t *slots) {
  int rc = 0;
  if (!t || t->n == 0) {
    for (size_t i = 0; i < nargs && rc == 0; i++)
      rc = (i ? mpc_buf_append(cmd, " ", 1) : 0) ||
           mpc_buf_append(cmd, args[i], lens[i]);
    return rc ? MPC_ENOMEM : 0;
  }
  mpc_buf_t tmp = MPC_BUF_INIT;
  for (size_t k = 0; k < t->n && rc == 0; k++) {
    const cmd_piece_t *p = &t->p[k];
    switch (p->kind) {
    case CMD_P_LIT:
      rc = mpc_buf_append(cmd, t->text + p->off, p->len);
      break;
    case CMD_P_SEQ:
      rc = mpc_buf_printf(cmd, "%llu", (unsigned long long)seq);
      break;
    case CMD_P_SLOT: {
      if (cmd->len > UINT32_MAX) {
        rc = MPC_ETOOBIG;
        break;
      }
      uint32_t at = (uint32_t)cmd->len;
      rc = mpc_buf_append(slots, &at, sizeof at);
      break;
    }
    default:
      if (p->group > 0) {
        if ((size_t)p->group > nargs) {
          rc = MPC_EINVAL;
          break;
        }
        rc = put_arg(cmd, &tmp, p->kind, args[p->group - 1],
                     lens[p->group - 1]);
      } else {
        for (size_t i = 0; i < nargs && rc == 0; i++)
          rc = (i ? mpc_buf_append(cmd, " ", 1) : 0) ||
               put_arg(cmd, &tmp, p->kind, args[i], lens[i]);
        if (rc > 0)
          rc = MPC_ENOMEM;
      }
    }
  }
  if (rc == 0 && !t->has_repl)
    for (size_t i = 0; i < nargs && rc == 0; i++)
      rc = mpc_buf_append(cmd, " ", 1) ||
           cmd_shell_quote(cmd, args[i], lens[i]);
  mpc_buf_free(&tmp);
  return rc > 0 ? MPC_ENOMEM : rc;
}

int cmd_render(mpc_buf_t *out, const char *cmd, size_t len,
               const uint32_t *slots, size_t nslots, const char *fill) {
  size_t at = 0, fl = strlen(fill);
  int rc = 0;
  for (size_t i = 0; i < nslots && rc == 0; i++) {
    size_t s = slots[i] <= len ? slots[i] : len;
    if (s < at)
      s = at;
    rc = mpc_buf_append(out, cmd + at, s - at);
    if (rc == 0)
      rc = mpc_buf_append(out, fill, fl);
    at = s;
  }
  return rc ? rc : mpc_buf_append(out, cmd + at, len - at);
}

/* ---- task encoding ------------------------------------------------------------- */

int cmd_task_encode(mpc_buf_t *in, uint64_t seq, const uint32_t *slots,
                    size_t nslots, const char *cmd, size_t len) {
  if (nslots > UINT32_MAX)
    return MPC_ETOOBIG;
  uint32_t ns = (uint32_t)nslots;
  int rc = mpc_buf_reserve(in, 12 + nslots * 4 + len);
  if (rc == 0)
    rc = mpc_buf_append(in, &seq, 8);
  if (rc == 0)
    rc = mpc_buf_append(in, &ns, 4);
  if (rc == 0 && nslots)
    rc = mpc_buf_append(in, slots, nslots * 4);
  if (rc == 0)
    rc = mpc_buf_append(in, cmd, len);
  return rc;
}

int cmd_task_decode(cmd_task_t *t, const void *in, size_t len) {
  const unsigned char *p = in;
  uint32_t ns;
  memset(t, 0, sizeof *t);
  if (len < 12)
    return MPC_EFORMAT;
  memcpy(&t->seq, p, 8);
  memcpy(&ns, p + 8, 4);
  if ((len - 12) / 4 < ns)
    return MPC_EFORMAT;
  uint32_t *dst = t->slotbuf;
  if (ns > 16 && !(dst = t->slotheap = malloc((size_t)ns * 4)))
    return MPC_ENOMEM;
  if (ns)
    memcpy(dst, p + 12, (size_t)ns * 4);
  t->slots = dst;
  t->nslots = ns;
  t->cmd = (const char *)p + 12 + (size_t)ns * 4;
  t->len = len - 12 - (size_t)ns * 4;
  return 0;
}

void cmd_task_release(cmd_task_t *t) {
  free(t->slotheap);
  t->slotheap = NULL;
}
