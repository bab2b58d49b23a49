/* Levelled logging.  One write(2) per line so lines from many processes do not
 * interleave mid-line. */
#include "mpc/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int g_level = -1;
static int g_rank = -1;

static int level_from_env(void) {
  const char *e = getenv("MPC_LOG");
  static const char *names[] = {"error", "warn", "info", "debug", "trace"};
  if (e)
    for (int i = 0; i < 5; i++)
      if (strcasecmp(e, names[i]) == 0)
        return i;
  return MPC_LOG_WARN;
}

void mpc_log_set_level(mpc_log_level_t level) { g_level = (int)level; }

mpc_log_level_t mpc_log_level(void) {
  if (g_level < 0)
    g_level = level_from_env();
  return (mpc_log_level_t)g_level;
}

void mpc_log_set_rank(int rank) { g_rank = rank; }

void mpc_log_write(mpc_log_level_t level, const char *fmt, ...) {
  static const char *tags[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
  char host[64] = "?";
  char line[2048];
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = 0;
  int n;
  if (g_rank >= 0)
    n = snprintf(line, sizeof line, "[mpc %d:%s:%d %s] ", g_rank, host,
                 (int)getpid(), tags[level]);
  else
    n = snprintf(line, sizeof line, "[mpc -:%s:%d %s] ", host, (int)getpid(),
                 tags[level]);
  if (n < 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  size_t len = strlen(line);
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
