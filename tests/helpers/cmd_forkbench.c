/* Raw fork+exec baseline for scripts/bench/cmd: run `/bin/sh -c CMD` N times,
 * P at a time, with plain fork() + execv() and nothing else (no capture).
 *
 *   cmd_forkbench N P CMD      prints "raw tasks=N seconds=S tps=R"
 *
 * Exit status 1 if any command failed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: cmd_forkbench N P CMD\n");
    return 2;
  }
  long n = atol(argv[1]), p = atol(argv[2]), started = 0, running = 0, bad = 0;
  if (n <= 0 || p <= 0) {
    fprintf(stderr, "cmd_forkbench: N and P must be > 0\n");
    return 2;
  }
  double t0 = now();
  while (started < n || running > 0) {
    while (running < p && started < n) {
      pid_t pid = fork();
      if (pid < 0) {
        perror("fork");
        return 2;
      }
      if (pid == 0) {
        char *av[] = {"sh", "-c", argv[3], NULL};
        execv("/bin/sh", av);
        _exit(127);
      }
      started++;
      running++;
    }
    int st;
    pid_t w = wait(&st);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      perror("wait");
      return 2;
    }
    running--;
    bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  double s = now() - t0;
  printf("raw tasks=%ld seconds=%.3f tps=%.1f\n", n, s, n / s);
  return bad ? 1 : 0;
}
