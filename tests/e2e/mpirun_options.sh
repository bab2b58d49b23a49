#!/usr/bin/env bash
# The other global options: --json, --timeline, --progress, --walltime,
# --grace, --quiet, --heartbeat, options after JOB and after --.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

run o1 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 50 --seed 5 --fail 0.1 -w 1 \
  --json "$TMP/s.json" --timeline "$TMP/tl.tsv" --progress --heartbeat 0.2
check "--json: valid JSON with the counts" /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["job"] == "chaos" and s["tasks"] == 50 and s["ok"] + s["failed"] == 50, s
assert len(s["ranks"]) == 2 and sum(r["tasks"] for r in s["ranks"]) == 50 + s["retried"], s
assert len(s["failures"]) == s["failed"] and s["stopped"] is None, s
' "$TMP/s.json"
check "--timeline: header and one line per attempt" [ "$(($(wc -l <"$TMP/tl.tsv") - 1))" = "$(/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(50 + s["retried"])' "$TMP/s.json")" ]
check "--timeline: both ranks appear" [ "$(awk -F'\t' 'NR > 1 {print $3}' "$TMP/tl.tsv" | sort -u | tr -d '\n')" = 01 ]
check "--progress: bar drawn on stderr" grep -q '\[mpc\] [0-9]*/50 done' "$TMP/o1.err"
check "--heartbeat: no rank reported silent" not grep -q silent "$TMP/o1.err"

run o2 120 "$RUN" chaos --tasks 500 --sleep 50 -w 2 --walltime 1 --journal "$TMP/jw"
check "--walltime: exit 3" [ "$(rc_of o2)" = 3 ]
check "--walltime: reason given" grep -q "stopped early: --walltime 1 s" "$TMP/o2.err"
check "--walltime: every task accounted for in the journal" [ "$(journal_last "$TMP/jw" | wc -l)" = 500 ]

# --grace: SIGINT lets running tasks finish (none is killed), the rest is canceled.
# (No timeout(1) wrapper: it would signal the whole process group, workers
# included, like ^C in a terminal.  A watchdog instead.)
"$RUN" chaos --tasks 100 --sleep 300 -w 2 --grace 10 --journal "$TMP/jg" >"$TMP/g.out" 2>"$TMP/g.err" &
pid=$!
watchdog 60 $pid
for ((i = 0; i < 300; i++)); do [ -f "$TMP/jg" ] && [ "$(grep -vc '^#' "$TMP/jg")" -ge 4 ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
unwatch
check "--grace: exit 3" [ "$rc" = 3 ]
check "--grace: no running task was killed (canceled ones never ran)" \
  [ "$(awk -F'\t' '$2 == "canceled" && $6 != 0' "$TMP/jg" | wc -l)" = 0 ]
check "--grace: tasks were canceled" grep -Eq "[1-9][0-9]* canceled" "$TMP/g.err"

run o3 60 "$RUN" -q chaos --tasks 20 -w 2
check "--quiet: no summary when all is well" [ ! -s "$TMP/o3.err" ]
check "--quiet: the job's report still on stdout" grep -q "ok=20" "$TMP/o3.out"
run o4 60 "$RUN" chaos --tasks 20 -- --timeout 3
check "after --, a global option name goes to the job" grep -q "unknown argument '--timeout'" "$TMP/o4.err"
# Guided batches of long tasks hold no more than the rank asked for (here
# 2 per worker): tasks queued on one rank would leave the others idle at the
# end.  --debug-protocol logs every message.
run o5 60 mpirun --oversubscribe -n 3 "$RUN" -w 1 --debug-protocol chaos --tasks 24 --sleep 30
check "guided, long tasks: exit 0" [ "$(rc_of o5)" = 0 ]
check "guided, long tasks: batches logged" grep -q '<- master: kind 1, [0-9]* tasks' "$TMP/o5.err"
check "guided, long tasks: no batch beyond the ask" [ "$(grep -o '<- master: kind 1, [0-9]* tasks' "$TMP/o5.err" |
  awk '{print $(NF - 1)}' | sort -n | tail -n 1)" -le 2 ]
# A singleton does not initialise MPI at all: an MCA setting that would make
# MPI_Init fail does not concern it.
OMPI_MCA_pml=doesnotexist run o6 60 "$RUN" chaos --tasks 20 -w 2 --journal "$TMP/j6"
check "singleton without MPI: exit 0" [ "$(rc_of o6)" = 0 ]
check "singleton without MPI: 20 tasks ok" grep -q "20 tasks: 20 ok" "$TMP/o6.err"
check "singleton without MPI: journal complete" [ "$(journal_last "$TMP/j6" | wc -l)" = 20 ]
check "no process left" wait_gone 20
exit 0
