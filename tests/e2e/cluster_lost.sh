#!/usr/bin/env bash
# A rank frozen from outside with SIGSTOP (as a hung node looks) is found by
# --heartbeat: the summary names it, the tasks it held run on other ranks,
# every task is done exactly once, and nothing is left behind (Open MPI
# cannot finish with a rank gone: mpc-run ends the job with MPI_Abort and
# the run's exit code).
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

# The pid of rank $2 among the children of mpirun $1.
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

J="$TMP/j"
mpirun --oversubscribe --mca btl self,tcp -n 3 "$RUN" chaos --tasks 60 --sleep 100 -w 1 \
  --heartbeat 2 --no-speculate --journal "$J" --json "$TMP/s.json" >"$TMP/o" 2>"$TMP/e" &
MP=$!
watchdog 120 $MP
victim=
for ((i = 0; i < 100; i++)); do
  victim=$(rank_pid $MP 1) && [ -f "$J" ] && [ "$(grep -vc '^#' "$J")" -ge 5 ] && break
  sleep 0.1
done
[ -n "$victim" ] && kill -STOP "$victim"
wait $MP
rc=$?
unwatch
check "found rank 1 ($victim) and froze it" [ -n "$victim" ]
check "exit 0: every task finished elsewhere" [ "$rc" = 0 ]
check "rank 1 named as lost in the summary" grep -q "rank 1 (.*LOST: silent for" "$TMP/e"
check "the log says its tasks go to other ranks" grep -q "rank 1 (.*) lost: silent for .* go to other ranks" "$TMP/e"
check "the job saw each task once" grep -q "gathered=60 ok=60 .*missing=0 duplicates=0 bad_output=0" "$TMP/o"
check "JSON marks rank 1 lost, the others not" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["ranks"]
assert [x["lost"] for x in r] == [False, True, False], r' "$TMP/s.json"
check "journal: one ok line per task" \
  [ "$(awk -F'\t' '!/^#/ && $2 == "ok"' "$J" | cut -f1 | sort -u | wc -l)" = 60 -a \
    "$(awk -F'\t' '!/^#/ && $2 == "ok"' "$J" | wc -l)" = 60 ]
# Tasks rank 1 held when it froze: a "lost" line on rank 1, then ok elsewhere.
check "journal: rank 1's held tasks were re-run on another rank" /usr/bin/python3 -c '
import sys
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
lost = [f for f in lines if f[1] == "canceled" and "rank 1 lost" in f[9]]
assert lost, "no lost-rank lines"
for f in lost:
    assert f[3] == "1", f
    after = [g for g in lines if g[0] == f[0]]
    assert after[-1][1] == "ok" and after[-1][3] != "1", after
' "$J"
check "the frozen rank and its workers are gone" wait_gone 20
exit 0
