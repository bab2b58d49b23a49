#!/usr/bin/env bash
# SIGUSR1 (what Slurm's --signal=USR1@T sends before the time limit) stops a
# run like SIGTERM: exit 3, a consistent journal, and --resume completes
# exactly the rest.  Singleton, and under mpirun (which forwards SIGUSR1 to
# every rank).
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

run full 120 "$RUN" chaos --tasks 300 --seed 6 -w 2

# $1: name, rest: launcher prefix (may be empty)
usr1_then_resume() {
  local name=$1; shift
  local j="$TMP/j$name" RC
  signal_run "$name" USR1 "$j" 10 0 "$@" "$RUN" chaos --tasks 300 --seed 6 --sleep 40 -w 1 --journal "$j"
  local rc=$RC
  check "$name SIGUSR1: exit 3" [ "$rc" = 3 ]
  check "$name SIGUSR1: summary says interrupted by signal 10" grep -q "stopped early: interrupted by signal 10" "$TMP/$name.err"
  check "$name SIGUSR1: the job's finish() still ran" grep -q "chaos: tasks=300" "$TMP/$name.out"
  check "$name SIGUSR1: journal lines all well formed" [ "$(awk -F'\t' '!/^#/ && NF != 11' "$j" | wc -l)" = 0 ]
  local gen
  gen=$(summary_tasks "$TMP/$name.err")
  check "$name SIGUSR1: one final journal line per generated task ($gen)" [ "$(journal_last "$j" | wc -l)" = "${gen:-x}" ]
  check "$name SIGUSR1: no task failed (killed workers count as canceled)" grep -q " 0 failed" "$TMP/$name.err"
  check "$name SIGUSR1: some canceled" grep -q ' canceled$' <(journal_last "$j")
  check "$name SIGUSR1: no process left" wait_gone 20
  local ok1 n_ok1 lines_before
  ok1=$(awk -F'\t' '$2 == "ok"' "$j" | cut -f1 | sort -u)
  n_ok1=$(printf '%s\n' "$ok1" | grep -c .)
  check "$name SIGUSR1: some but not all tasks done ($n_ok1)" [ "$n_ok1" -gt 0 -a "$n_ok1" -lt 300 ]
  lines_before=$(wc -l <"$j")
  run "${name}r" 180 "$@" "$RUN" chaos --tasks 300 --seed 6 -w 1 --journal "$j" --resume
  check "$name resume: exit 0" [ "$(rc_of "${name}r")" = 0 ]
  check "$name resume: $n_ok1 resumed" grep -q "300 tasks: 300 ok, 0 failed, 0 retried, $n_ok1 resumed" "$TMP/${name}r.err"
  check "$name resume: same checksum as an uninterrupted run" [ "$(field "${name}r" checksum)" = "$(field full checksum)" ]
  tail -n +"$((lines_before + 1))" "$j" | awk -F'\t' '!/^#/ {print $1}' | sort >"$TMP/ran$name"
  check "$name resume: ran exactly the $((300 - n_ok1)) missing tasks, each once" \
    [ "$(sort -u "$TMP/ran$name" | wc -l)" = $((300 - n_ok1)) -a \
      "$(wc -l <"$TMP/ran$name")" = $((300 - n_ok1)) -a \
      "$(comm -12 <(printf '%s\n' "$ok1") "$TMP/ran$name" | wc -l)" = 0 ]
}

usr1_then_resume single env
usr1_then_resume mpirun mpirun --oversubscribe -n 2

# SIGTERM with --grace: $1 name, $2 grace, $3 task ms, $4 journal lines to
# wait for (then 1 s more).  Long grace: the running tasks finish ok; short
# grace: they are cut (journaled canceled with the pid that ran them).
term_grace() {
  local name=$1 grace=$2 ms=$3 j="$TMP/jt$1" RC
  signal_run "$name" TERM "$j" "$4" 1 "$RUN" chaos --tasks 40 --seed 2 --sleep "$ms" -w 2 \
    --grace "$grace" --journal "$j"
  local rc=$RC
  check "$name SIGTERM: exit 3" [ "$rc" = 3 ]
  check "$name SIGTERM: interrupted by signal 15" grep -q "stopped early: interrupted by signal 15" "$TMP/$name.err"
  check "$name SIGTERM: one final journal line per generated task" \
    [ "$(journal_last "$j" | wc -l)" = "$(summary_tasks "$TMP/$name.err")" ]
  # canceled attempts that had started (pid != 0) were cut while running
  awk -F'\t' '!/^#/ && $2 == "canceled" && $6 != 0' "$j" >"$TMP/$name.cut"
}
term_grace tlong 20 400 2
check "tlong --grace 20: running tasks finished, none cut" [ ! -s "$TMP/tlong.cut" ]
check "tlong: the tasks running at the signal finished ok" [ "$(awk -F'\t' '!/^#/ && $2 == "ok"' "$TMP/jttlong" | wc -l)" -ge 4 ]
term_grace tshort 0.3 5000 0
check "tshort --grace 0.3: running tasks cut at the grace period" [ -s "$TMP/tshort.cut" ]
check "tshort: cut well before the tasks' 5 s" grep -Eq "; [0-3]\.[0-9]+ s," "$TMP/tshort.err"
run tres 120 "$RUN" chaos --tasks 40 --seed 2 -w 2 --journal "$TMP/jttshort" --resume
check "after SIGTERM: --resume completes, exit 0" [ "$(rc_of tres)" = 0 ]
check "after SIGTERM: nothing ran twice" [ "$(awk -F'\t' '!/^#/ && $2 == "ok"' "$TMP/jttshort" | cut -f1 | sort | uniq -d | wc -l)" = 0 ]
exit 0
