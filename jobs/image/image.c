/* The `image` job: every .png/.jpg/.jpeg file under IN_DIR is one task that
 * decodes it, resizes it, scales its brightness and writes it under the same
 * relative name in OUT_DIR.
 *
 * The master walks IN_DIR (sorted, so runs are reproducible) and hands out
 * relative paths; the task's key is that path too, so --resume skips files
 * already done.  A worker reads the file itself (ranks share the filesystem),
 * writes the result to a temporary file in the target directory and renames it,
 * and returns a one-line summary ("in=BYTES out=BYTES WxH WxH") that gather()
 * adds up.  Output directories are opened one component at a time with
 * O_NOFOLLOW, so neither a "../" in a name nor a symlink planted in OUT_DIR
 * can make a write land outside OUT_DIR. */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/grow.h"
#include "pix.h"

#define IMAGE_DEFAULT_MAX_PIXELS 100000000ull

/* --compression presets, chosen by measurement (docs/image.md).  On
 * photographic pictures deflate's string matching finds almost nothing
 * (noise), so run-length matching after the Paeth filter (2, the default)
 * writes files ~5% smaller than Pillow's level 6 at a tenth of the cost;
 * 3-9 are zlib levels with adaptive filters and Z_FILTERED, Pillow's
 * choice (6 is Pillow's setting), better for synthetic graphics. */
#define IMAGE_DEFAULT_COMPRESSION 2

static image_png_opts_t png_preset(int n) {
  image_png_opts_t o;
  switch (n) {
  case 0:
    o = (image_png_opts_t){0, Z_DEFAULT_STRATEGY, PNG_FILTER_NONE};
    break;
  case 1:
    o = (image_png_opts_t){1, Z_HUFFMAN_ONLY, PNG_FILTER_SUB};
    break;
  case 2:
    o = (image_png_opts_t){1, Z_RLE, PNG_FILTER_PAETH};
    break;
  default:
    o = (image_png_opts_t){n, Z_FILTERED, PNG_ALL_FILTERS};
    break;
  }
  return o;
}

typedef struct failure {
  char *key;
  char *msg;
} failure_t;

typedef struct image_state {
  /* Options (every rank). */
  char *in_dir, *out_dir;
  uint32_t w, h;
  int fit;
  image_filter_t filter;
  double brightness;
  image_png_opts_t png;
  int quality;
  int depth8;
  int recursive;
  uint64_t max_pixels;
  /* Master: the file list, walked on the first next(). */
  int walked;
  char **files;
  size_t nfiles, capfiles, next;
  dev_t out_dev;
  ino_t out_ino;
  /* Master: what gather() saw. */
  uint64_t ok, resumed, bytes_in, bytes_out;
  failure_t *fails;
  size_t nfails, capfails;
  size_t walk_errors;
} image_state_t;

static const char g_usage[] =
    "image IN_DIR OUT_DIR [options]\n"
    "  Every .png/.jpg/.jpeg file in IN_DIR is resized, its brightness "
    "scaled,\n"
    "  and written to OUT_DIR under the same relative name.\n"
    "  --size WxH          output size (default 800x600, exact)\n"
    "  --fit               keep the aspect ratio inside WxH\n"
    "  --filter NAME       box|bilinear|bicubic|lanczos (default bicubic)\n"
    "  --brightness F      multiply colour channels by F (default 1.2)\n"
    "  --compression 0-9   PNG effort: 0 none, 1 fastest, 2 default (Paeth +\n"
    "                      run-length), 3-9 adaptive filters + zlib level N\n"
    "  --png-filter NAME   override: none|sub|up|avg|paeth|all\n"
    "  --png-strategy NAME override: default|filtered|rle|huffman\n"
    "  --quality 1-100     JPEG quality (default 90)\n"
    "  --depth 8|keep      reduce 16-bit PNGs to 8-bit, or keep (default "
    "keep)\n"
    "  --recursive         descend into subdirectories\n"
    "  --max-pixels N      refuse larger pictures (default 100000000)\n";

/* ---- small helpers ------------------------------------------------------- */

static int has_image_ext(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                 strcasecmp(dot, ".jpeg") == 0);
}

static image_fmt_t ext_format(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot && strcasecmp(dot, ".png") == 0)
    return IMAGE_FMT_PNG;
  if (dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0))
    return IMAGE_FMT_JPEG;
  return IMAGE_FMT_UNKNOWN;
}

/* A relative path is safe when it is not absolute and no component is empty,
 * "." or "..". */
static int rel_is_safe(const char *rel, size_t len) {
  if (len == 0 || rel[0] == '/' || memchr(rel, '\0', len))
    return 0;
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    while (j < len && rel[j] != '/')
      j++;
    size_t n = j - i;
    if (n == 0 || (n == 1 && rel[i] == '.') ||
        (n == 2 && rel[i] == '.' && rel[i + 1] == '.'))
      return 0;
    i = j + 1;
  }
  return 1;
}

static int mkdir_p(const char *path) {
  char *p = strdup(path);
  if (!p)
    return MPC_ENOMEM;
  int rc = 0;
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        rc = -errno;
        break;
      }
      *s = c;
      if (c == '\0')
        break;
    }
  }
  free(p);
  if (rc == 0) {
    struct stat st;
    if (stat(path, &st) != 0)
      rc = -errno;
    else if (!S_ISDIR(st.st_mode))
      rc = -ENOTDIR;
  }
  return rc;
}

/* ---- options ------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *v) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-')
    return MPC_EINVAL;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || *end || x < lo || x > hi)
    return MPC_EINVAL;
  *v = x;
  return 0;
}

static int parse_size(const char *s, uint32_t *w, uint32_t *h) {
  const char *x = s ? strchr(s, 'x') : NULL;
  if (!x)
    return MPC_EINVAL;
  char buf[32];
  size_t n = (size_t)(x - s);
  if (n == 0 || n >= sizeof buf)
    return MPC_EINVAL;
  memcpy(buf, s, n);
  buf[n] = '\0';
  uint64_t a, b;
  if (parse_u64(buf, 1, 1u << 20, &a) || parse_u64(x + 1, 1, 1u << 20, &b))
    return MPC_EINVAL;
  *w = (uint32_t)a;
  *h = (uint32_t)b;
  return 0;
}

static void state_free(image_state_t *s) {
  if (!s)
    return;
  free(s->in_dir);
  free(s->out_dir);
  for (size_t i = 0; i < s->nfiles; i++)
    free(s->files[i]);
  free(s->files);
  for (size_t i = 0; i < s->nfails; i++) {
    free(s->fails[i].key);
    free(s->fails[i].msg);
  }
  free(s->fails);
  free(s);
}

static int image_init(int argc, char **argv, const mpc_job_env_t *env,
                      void **state, mpc_buf_t *err) {
  image_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return MPC_ENOMEM;
  s->w = 800;
  s->h = 600;
  s->filter = IMAGE_FILTER_BICUBIC;
  s->brightness = 1.2;
  int compression = IMAGE_DEFAULT_COMPRESSION, png_filter = -1,
      png_strategy = -1;
  s->quality = 90;
  s->max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
  const char *pos[2] = {NULL, NULL};
  int npos = 0, rc = MPC_EUSAGE, only_pos = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (npos >= 2) {
        image_msg(err, "image: unexpected argument '%s'", a);
        goto bad;
      }
      pos[npos++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    /* --name=value or --name value */
    char name[32];
    const char *val = NULL;
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    if (nl >= sizeof name) {
      image_msg(err, "image: unknown option '%s'", a);
      goto bad;
    }
    memcpy(name, a, nl);
    name[nl] = '\0';
    if (strcmp(name, "--fit") == 0 || strcmp(name, "--recursive") == 0) {
      if (eq) {
        image_msg(err, "image: %s takes no value", name);
        goto bad;
      }
      if (strcmp(name, "--fit") == 0)
        s->fit = 1;
      else
        s->recursive = 1;
      continue;
    }
    static const char *with_value[] = {
        "--size",         "--filter", "--brightness", "--compression",
        "--quality",      "--depth",  "--max-pixels", "--png-filter",
        "--png-strategy", NULL};
    int known = 0;
    for (int k = 0; with_value[k]; k++)
      known |= strcmp(name, with_value[k]) == 0;
    if (!known) {
      image_msg(err, "image: unknown option '%s'", a);
      goto bad;
    }
    if (eq)
      val = eq + 1;
    else if (i + 1 < argc)
      val = argv[++i];
    else {
      image_msg(err, "image: %s needs a value", name);
      goto bad;
    }
    uint64_t u;
    int bad = 0;
    if (strcmp(name, "--size") == 0) {
      bad = parse_size(val, &s->w, &s->h) != 0;
    } else if (strcmp(name, "--filter") == 0) {
      bad = image_filter_parse(val, &s->filter) != 0;
    } else if (strcmp(name, "--brightness") == 0) {
      char *end;
      errno = 0;
      s->brightness = strtod(val, &end);
      bad = errno || *end || !*val || !(s->brightness >= 0) ||
            s->brightness > 1e6;
    } else if (strcmp(name, "--compression") == 0) {
      bad = parse_u64(val, 0, 9, &u) != 0;
      compression = (int)u;
    } else if (strcmp(name, "--quality") == 0) {
      bad = parse_u64(val, 1, 100, &u) != 0;
      s->quality = (int)u;
    } else if (strcmp(name, "--depth") == 0) {
      if (strcmp(val, "8") == 0)
        s->depth8 = 1;
      else if (strcmp(val, "keep") == 0 || strcmp(val, "16") == 0)
        s->depth8 = 0;
      else
        bad = 1;
    } else if (strcmp(name, "--max-pixels") == 0) {
      bad = parse_u64(val, 1, UINT64_MAX / 16, &u) != 0;
      s->max_pixels = u;
    } else if (strcmp(name, "--png-filter") == 0) {
      static const struct {
        const char *n;
        int f;
      } fl[] = {{"none", PNG_FILTER_NONE},   {"sub", PNG_FILTER_SUB},
                {"up", PNG_FILTER_UP},       {"avg", PNG_FILTER_AVG},
                {"paeth", PNG_FILTER_PAETH}, {"all", PNG_ALL_FILTERS}};
      bad = 1;
      for (size_t k = 0; k < sizeof fl / sizeof fl[0]; k++)
        if (strcmp(val, fl[k].n) == 0) {
          png_filter = fl[k].f;
          bad = 0;
        }
    } else if (strcmp(name, "--png-strategy") == 0) {
      static const struct {
        const char *n;
        int v;
      } st[] = {{"default", Z_DEFAULT_STRATEGY},
                {"filtered", Z_FILTERED},
                {"rle", Z_RLE},
                {"huffman", Z_HUFFMAN_ONLY}};
      bad = 1;
      for (size_t k = 0; k < sizeof st / sizeof st[0]; k++)
        if (strcmp(val, st[k].n) == 0) {
          png_strategy = st[k].v;
          bad = 0;
        }
    }
    if (bad) {
      image_msg(err, "image: bad value '%s' for %s", val, name);
      goto bad;
    }
  }
  s->png = png_preset(compression);
  if (png_filter >= 0)
    s->png.filters = png_filter;
  if (png_strategy >= 0)
    s->png.strategy = png_strategy;
  if (npos != 2) {
    image_msg(err, "image: need IN_DIR and OUT_DIR");
    goto bad;
  }
  if ((uint64_t)s->w * s->h > s->max_pixels) {
    image_msg(err, "image: --size %ux%u is over --max-pixels", s->w, s->h);
    goto bad;
  }
  s->in_dir = strdup(pos[0]);
  s->out_dir = strdup(pos[1]);
  if (!s->in_dir || !s->out_dir) {
    rc = MPC_ENOMEM;
    goto bad;
  }
  struct stat si, so;
  rc = stat(s->in_dir, &si) != 0 ? -errno : !S_ISDIR(si.st_mode) ? -ENOTDIR : 0;
  if (rc) {
    image_msg(err, "image: input directory %s: %s", s->in_dir,
              mpc_strerror(rc));
    goto bad;
  }
  rc = mkdir_p(s->out_dir);
  if (!rc && stat(s->out_dir, &so) != 0)
    rc = -errno;
  if (rc) {
    image_msg(err, "image: output directory %s: %s", s->out_dir,
              mpc_strerror(rc));
    goto bad;
  }
  if (si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
    rc = MPC_EUSAGE;
    image_msg(err, "image: OUT_DIR must differ from IN_DIR");
    goto bad;
  }
  s->out_dev = so.st_dev;
  s->out_ino = so.st_ino;
  (void)env;
  *state = s;
  return 0;
bad:
  state_free(s);
  return rc;
}

/* ---- master: walking IN_DIR ---------------------------------------------- */

static int add_file(image_state_t *s, const char *rel) {
  if (s->nfiles == s->capfiles) {
    size_t cap = s->capfiles ? s->capfiles * 2 : 64;
    char **f = realloc(s->files, cap * sizeof *f);
    if (!f)
      return MPC_ENOMEM;
    s->files = f;
    s->capfiles = cap;
  }
  if (!(s->files[s->nfiles] = strdup(rel)))
    return MPC_ENOMEM;
  s->nfiles++;
  return 0;
}

static int add_failure(image_state_t *s, const char *key, const char *msg,
                       size_t msglen) {
  if (mpc__grow(&s->fails, &s->capfails, s->nfails + 1, sizeof *s->fails, 16))
    return MPC_ENOMEM;
  failure_t *f = &s->fails[s->nfails];
  f->key = strdup(key);
  f->msg = strndup(msg, msglen);
  if (!f->key || !f->msg) {
    free(f->key);
    free(f->msg);
    return MPC_ENOMEM;
  }
  s->nfails++;
  return 0;
}

static int walk(image_state_t *s, const char *rel) {
  mpc_buf_t path = MPC_BUF_INIT, sub = MPC_BUF_INIT;
  int rc = mpc_buf_printf(&path, "%s%s%s", s->in_dir, *rel ? "/" : "", rel);
  if (rc)
    return rc;
  DIR *d = opendir(mpc_buf_str(&path));
  if (!d) {
    char msg[256];
    snprintf(msg, sizeof msg, "directory %s: cannot read: %s",
             *rel ? rel : s->in_dir, strerror(errno));
    rc = add_failure(s, *rel ? rel : ".", msg, strlen(msg));
    s->walk_errors++;
    mpc_buf_free(&path);
    return rc;
  }
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    mpc_buf_clear(&sub);
    if ((rc = mpc_buf_printf(&sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name)))
      break;
    struct stat st;
    mpc_buf_t full = MPC_BUF_INIT;
    if ((rc = mpc_buf_printf(&full, "%s/%s", s->in_dir, mpc_buf_str(&sub))))
      break;
    int st_ok = lstat(mpc_buf_str(&full), &st) == 0;
    mpc_buf_free(&full);
    if (!st_ok)
      continue; /* vanished while we looked */
    if (S_ISDIR(st.st_mode)) {
      /* Never descend into OUT_DIR (it may live inside IN_DIR). */
      if (s->recursive && !(st.st_dev == s->out_dev && st.st_ino == s->out_ino))
        rc = walk(s, mpc_buf_str(&sub));
    } else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) &&
               has_image_ext(e->d_name)) {
      rc = add_file(s, mpc_buf_str(&sub));
    }
  }
  closedir(d);
  mpc_buf_free(&path);
  mpc_buf_free(&sub);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int image_next(void *state, mpc_buf_t *input, mpc_buf_t *key) {
  image_state_t *s = state;
  if (!s->walked) {
    s->walked = 1;
    int rc = walk(s, "");
    if (rc) {
      image_msg(key, "image: walking %s: %s", s->in_dir, mpc_strerror(rc));
      return rc;
    }
    qsort(s->files, s->nfiles, sizeof *s->files, cmp_str);
  }
  if (s->next >= s->nfiles)
    return 0;
  const char *rel = s->files[s->next++];
  int rc = mpc_buf_set(input, rel, strlen(rel));
  if (!rc)
    rc = mpc_buf_set(key, rel, strlen(rel));
  return rc ? rc : 1;
}

/* ---- worker: one file
 * --------------------------------------------------------- */

/* Open (creating as needed) the directory that will hold OUT_DIR/rel, one
 * component at a time, never following a symlink.  Returns a directory fd
 * and points *base at the file name within rel. */
static int open_out_dir(const char *out_dir, const char *rel, const char **base,
                        mpc_buf_t *msg) {
  int dfd = open(out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    int e = errno;
    image_msg(msg, "cannot open %s: %s", out_dir, strerror(e));
    return -e;
  }
  const char *p = rel;
  const char *slash;
  while ((slash = strchr(p, '/')) != NULL) {
    char comp[NAME_MAX + 1];
    size_t n = (size_t)(slash - p);
    if (n > NAME_MAX) {
      close(dfd);
      image_msg(msg, "path component too long");
      return -ENAMETOOLONG;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    if (mkdirat(dfd, comp, 0777) != 0 && errno != EEXIST) {
      int e = errno;
      close(dfd);
      image_msg(msg, "cannot create directory %s: %s", comp, strerror(e));
      return -e;
    }
    int nfd =
        openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    struct stat st;
    if (nfd < 0 && fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
      e = ELOOP;
    close(dfd);
    if (nfd < 0) {
      image_msg(msg, "cannot open output directory %s: %s", comp,
                e == ELOOP ? "is a symbolic link" : strerror(e));
      return -e;
    }
    dfd = nfd;
    p = slash + 1;
  }
  *base = p;
  return dfd;
}

/* Write `data` to OUT_DIR/rel through a temporary file in the same directory
 * and a rename, so the final name only ever holds a complete picture. */
static int write_out(const char *out_dir, const char *rel, const void *data,
                     size_t len, mpc_buf_t *msg) {
  const char *base = rel;
  int dfd = open_out_dir(out_dir, rel, &base, msg);
  if (dfd < 0)
    return dfd;
  char tmp[NAME_MAX + 64];
  int fd = -1, rc = 0;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(tmp, sizeof tmp, ".mpc-%ld-%d.tmp", (long)getpid(), attempt);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                0666);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    rc = -errno;
    image_msg(msg,
              "cannot create a temporary file in the output "
              "directory: %s",
              strerror(errno));
    close(dfd);
    return rc;
  }
  const unsigned char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? -errno : -EIO;
      break;
    }
    p += n;
    left -= (size_t)n;
  }
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && renameat(dfd, tmp, dfd, base) != 0)
    rc = -errno;
  if (rc) {
    unlinkat(dfd, tmp, 0);
    image_msg(msg, "cannot write output: %s", strerror(-rc));
  }
  close(dfd);
  return rc;
}

static void target_size(const image_state_t *s, uint32_t w, uint32_t h,
                        uint32_t *ow, uint32_t *oh) {
  if (!s->fit) {
    *ow = s->w;
    *oh = s->h;
    return;
  }
  /* The largest size with the input's aspect ratio inside the box. */
  double sx = (double)s->w / w, sy = (double)s->h / h;
  if (sx <= sy) {
    *ow = s->w;
    double v = h * sx + 0.5;
    *oh = v < 1 ? 1 : v > s->h ? s->h : (uint32_t)v;
  } else {
    *oh = s->h;
    double v = w * sy + 0.5;
    *ow = v < 1 ? 1 : v > s->w ? s->w : (uint32_t)v;
  }
}

static int image_run(void *state, const void *in, size_t in_len,
                     mpc_buf_t *out) {
  image_state_t *s = state;
  char *rel = strndup(in, in_len);
  mpc_buf_t path = MPC_BUF_INIT, msg = MPC_BUF_INIT, enc = MPC_BUF_INIT;
  image_pix_t pix = {0}, res = {0};
  void *map = MAP_FAILED;
  size_t size = 0;
  int fd = -1, rc = 0;
  if (!rel)
    return mpc_task_fail(out, MPC_ENOMEM, "out of memory");
  if (!rel_is_safe(in, in_len)) {
    rc = mpc_task_fail(out, MPC_EINVAL,
              "file %s: unsafe relative path (absolute, "
              "empty or with . or .. components)",
              rel);
    goto done;
  }
  image_fmt_t ofmt = ext_format(rel);
  if (ofmt == IMAGE_FMT_UNKNOWN) {
    rc = mpc_task_fail(out, MPC_EINVAL, "file %s: not a .png, .jpg or .jpeg name", rel);
    goto done;
  }
  if ((rc = mpc_buf_printf(&path, "%s/%s", s->in_dir, rel)))
    goto nomem;
  fd = open(mpc_buf_str(&path), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    rc = mpc_task_fail(out, -errno, "file %s: %s", rel, strerror(errno));
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = mpc_task_fail(out, MPC_EINVAL, "file %s: not a regular file", rel);
    goto done;
  }
  if (st.st_size == 0) {
    rc = mpc_task_fail(out, MPC_EFORMAT, "file %s: empty file", rel);
    goto done;
  }
  size = (size_t)st.st_size;
  map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    rc = mpc_task_fail(out, -errno, "file %s: cannot map: %s", rel, strerror(errno));
    goto done;
  }
  image_fmt_t ifmt = image_sniff(map, size);
  if (ifmt == IMAGE_FMT_PNG)
    rc = image_png_decode(map, size, s->max_pixels, s->depth8, &pix, &msg);
  else if (ifmt == IMAGE_FMT_JPEG)
    rc = image_jpeg_decode(map, size, s->max_pixels, &pix, &msg);
  else {
    rc = mpc_task_fail(out, MPC_EFORMAT, "file %s: not a PNG or JPEG file", rel);
    goto done;
  }
  if (rc) {
    rc = mpc_task_fail(out, rc, "file %s: %s", rel, mpc_buf_str(&msg));
    goto done;
  }
  uint32_t ow, oh;
  target_size(s, pix.w, pix.h, &ow, &oh);
  if ((rc = image_resize(&pix, ow, oh, s->filter, &res))) {
    rc = mpc_task_fail(out, rc, "file %s: resize: %s", rel, mpc_strerror(rc));
    goto done;
  }
  image_brightness(&res, s->brightness);
  if (ofmt == IMAGE_FMT_PNG)
    rc = image_png_encode(&res, &s->png, &enc, &msg);
  else
    rc = image_jpeg_encode(&res, s->quality, &enc, &msg);
  if (rc) {
    rc = mpc_task_fail(out, rc, "file %s: %s", rel, mpc_buf_str(&msg));
    goto done;
  }
  mpc_buf_clear(&msg);
  if ((rc = write_out(s->out_dir, rel, enc.data, enc.len, &msg))) {
    rc = mpc_task_fail(out, rc, "file %s: %s", rel, mpc_buf_str(&msg));
    goto done;
  }
  mpc_buf_clear(out);
  if ((rc = mpc_buf_printf(out, "in=%zu out=%zu %ux%u %ux%u", size, enc.len,
                           pix.w, pix.h, ow, oh)))
    goto nomem;
  goto done;
nomem:
  rc = mpc_task_fail(out, MPC_ENOMEM, "file %s: out of memory", rel);
done:
  if (map != MAP_FAILED)
    munmap(map, size);
  if (fd >= 0)
    close(fd);
  image_pix_free(&pix);
  image_pix_free(&res);
  mpc_buf_free(&path);
  mpc_buf_free(&msg);
  mpc_buf_free(&enc);
  free(rel);
  return rc;
}

/* ---- master: results
 * ------------------------------------------------------------ */

static const char *status_name(mpc_task_status_t st) {
  switch (st) {
  case MPC_TASK_OK:
    return "ok";
  case MPC_TASK_ERROR:
    return "failed";
  case MPC_TASK_CRASHED:
    return "worker crashed";
  case MPC_TASK_EXITED:
    return "worker exited";
  case MPC_TASK_TIMEOUT:
    return "timed out";
  case MPC_TASK_OOM:
    return "over the memory limit";
  case MPC_TASK_CANCELED:
    return "canceled";
  }
  return "failed";
}

static int image_gather(void *state, const mpc_job_result_t *r) {
  image_state_t *s = state;
  if (r->status == MPC_TASK_OK) {
    if (r->resumed)
      s->resumed++;
    else
      s->ok++;
    char line[128];
    size_t n =
        r->output_len < sizeof line - 1 ? r->output_len : sizeof line - 1;
    memcpy(line, r->output, n);
    line[n] = '\0';
    unsigned long long bi, bo;
    if (sscanf(line, "in=%llu out=%llu", &bi, &bo) == 2) {
      s->bytes_in += bi;
      s->bytes_out += bo;
    }
    return 0;
  }
  if (r->status == MPC_TASK_CANCELED)
    return 0; /* never ran: the run summary counts these */
  if (r->output_len > 0 && r->status == MPC_TASK_ERROR)
    return add_failure(s, r->key, r->output, r->output_len);
  char msg[160];
  snprintf(msg, sizeof msg, "file %s: %s (code %d)", r->key,
           status_name(r->status), r->code);
  return add_failure(s, r->key, msg, strlen(msg));
}

static int image_finish(void *state, const mpc_job_report_t *rep) {
  image_state_t *s = state;
  printf("image: %" PRIu64 " written, %" PRIu64 " already done (resumed), "
         "%zu failed, of %zu files in %s\n",
         s->ok, s->resumed, s->nfails - s->walk_errors, s->nfiles, s->in_dir);
  printf("image: read %" PRIu64 " bytes (%.1f MB), wrote %" PRIu64
         " bytes (%.1f MB) to %s\n",
         s->bytes_in, s->bytes_in / 1e6, s->bytes_out, s->bytes_out / 1e6,
         s->out_dir);
  if (s->nfails) {
    printf("image: failed:\n");
    for (size_t i = 0; i < s->nfails; i++)
      printf("  %s\n", s->fails[i].msg);
  }
  fflush(stdout);
  (void)rep;
  return s->walk_errors ? MPC_EIO : 0;
}

static void image_fini(void *state) { state_free(state); }

const mpc_job_t mpc_job_image = {
    .abi = MPC_JOB_ABI_VERSION,
    .flags = MPC_JOB_IDEMPOTENT | MPC_JOB_JOURNAL_OUTPUT,
    .name = "image",
    .brief = "resize and brighten every PNG/JPEG in a directory",
    .usage = g_usage,
    .init = image_init,
    .next = image_next,
    .run = image_run,
    .gather = image_gather,
    .finish = image_finish,
    .fini = image_fini,
};
MPC_JOB_BUILTIN(mpc_job_image);
