#!/usr/bin/env bash
# cmd job: --resume after kill -9 skips exactly the tasks the joblog lists as
# finished; --resume-failed re-runs exactly the failed ones.
set -u
RUN="${MPC_BUILD:?}/bin/mpc-run"
if [ ! -x "$RUN" ]; then echo "# SKIP cmd_resume: $RUN not built"; exit 0; fi
T=$(mktemp -d /tmp/mpc_e2e_cmd.XXXXXX)
trap 'rm -rf "$T"' EXIT
# A killed mpirun leaves Open MPI's session directory: it goes with T.
export OMPI_MCA_orte_tmpdir_base="$T"
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; [ $# -gt 1 ] && printf '#   %s\n' "${@:2}"; }
logged() { awk -F'\t' 'NR > 1 && NF >= 9 { print $1 }' "$1" | sort -n; }
lsort() { LC_ALL=C sort "$@"; } # for comm

for mode in singleton mpirun; do
  # Over TCP: kill -9 of mpirun must not strand Open MPI shared-memory segments.
  if [ $mode = singleton ]; then pre=(); else pre=(mpirun -n 3 --oversubscribe --mca btl self,tcp); fi
  D=$(mktemp -d "$T/$mode.XXXX")
  seq 60 > "$D/args"
  TPL="sleep 0.05; echo {} # $D"
  setsid "${pre[@]}" "$RUN" cmd -w 2 --joblog "$D/log" "$TPL" :::: "$D/args" >"$D/out1" 2>/dev/null &
  pid=$!
  for i in $(seq 200); do
    [ "$(logged "$D/log" 2>/dev/null | wc -l)" -ge 12 ] && break
    sleep 0.05
  done
  kill -9 -- -"$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  sleep 0.3
  # Nothing of the killed run may stay behind (workers, commands).
  left=$(pgrep -f "$D" || true)
  if [ -n "$left" ]; then
    for p in $left; do kill -9 "$p" 2>/dev/null; done
    fail "$mode: no process left after kill -9 of the run" "pids: $left"
  fi
  logged "$D/log" > "$D/done"
  ndone=$(wc -l < "$D/done")
  if [ "$ndone" -ge 1 ] && [ "$ndone" -lt 60 ]; then pass "$mode: killed mid-run with $ndone of 60 in the joblog"
  else fail "$mode: killed mid-run" "$ndone finished"; fi
  "${pre[@]}" "$RUN" cmd -w 2 --resume --joblog "$D/log" "$TPL" :::: "$D/args" >"$D/out2" 2>/dev/null
  rc=$?
  lsort "$D/out2" > "$D/ran"
  comm -23 <(lsort "$D/args") <(lsort "$D/done") > "$D/want"   # the arguments not in the joblog
  if [ $rc -eq 0 ] && cmp -s "$D/ran" "$D/want"; then
    pass "$mode: --resume after kill -9 runs exactly the $(wc -l < "$D/want") unfinished tasks"
  else fail "$mode: --resume after kill -9 runs exactly the unfinished tasks" "rc=$rc ran $(wc -l < "$D/ran") want $(wc -l < "$D/want")"; fi
  if [ "$(logged "$D/log" | tr '\n' ' ')" = "$(seq 60 | tr '\n' ' ')" ]; then
    pass "$mode: the joblog then lists every task exactly once"
  else fail "$mode: the joblog then lists every task exactly once"; fi
done

# --resume-failed: only the failed ones run again; --resume then runs nothing.
D=$(mktemp -d "$T/rf.XXXX")
for k in $(seq 12); do [ $((k % 4)) -ne 0 ] && touch "$D/ok-$k"; done
TPL="echo {}; test -e $D/ok-{}"
"$RUN" cmd -w 2 --joblog "$D/log" "$TPL" ::: $(seq 12) >/dev/null 2>&1
rc1=$?
touch "$D/ok-4" "$D/ok-8" "$D/ok-12"
got=$("$RUN" cmd -w 2 --resume-failed --joblog "$D/log" "$TPL" ::: $(seq 12) 2>/dev/null | sort -n | tr '\n' ' ')

if [ $rc1 -eq 1 ] && [ "$got" = "4 8 12 " ]; then pass "--resume-failed re-runs exactly the failed tasks"
else fail "--resume-failed re-runs exactly the failed tasks" "rc=$rc1 got '$got'"; fi
got=$("$RUN" cmd -w 2 --resume --joblog "$D/log" "$TPL" ::: $(seq 12) 2>/dev/null | wc -l)
[ "$got" -eq 0 ] && pass "--resume after a complete run runs nothing" || fail "--resume after a complete run runs nothing" "$got ran"
