#!/usr/bin/env bash
# --walltime shorter than the work: tasks that would not finish in time (by
# the durations of finished tasks) are not started; the run says so, exits 3
# with nothing cut mid-run, and --resume finishes exactly the rest.  The same
# from Slurm's SLURM_JOB_END_TIME.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

J="$TMP/j"
run w1 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 40 --sleep 300 -w 1 \
  --walltime 0:00:02 --journal "$J"
check "--walltime: exit 3" [ "$(rc_of w1)" = 3 ]
check "--walltime: says why, and what was not started" \
  grep -Eq "stopped early: --walltime 2 s: [0-9.]+ s left, tasks take about 0\.[0-9]+ s: [0-9]+ tasks not started" "$TMP/w1.err"
check "--walltime: no task cut while running (every canceled one never started)" \
  [ "$(awk -F'\t' '!/^#/ && $2 == "canceled" && $6 != 0' "$J" | wc -l)" = 0 ]
n_ok=$(awk -F'\t' '!/^#/ && $2 == "ok"' "$J" | cut -f1 | sort -u | wc -l)
check "--walltime: some done, not all ($n_ok)" [ "$n_ok" -gt 0 -a "$n_ok" -lt 40 ]
check "--walltime: every task accounted for in the journal" [ "$(journal_last "$J" | wc -l)" = 40 ]
before=$(wc -l <"$J")
run w2 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 40 --sleep 300 -w 1 --journal "$J" --resume
check "resume: exit 0" [ "$(rc_of w2)" = 0 ]
check "resume: $n_ok resumed" grep -q "40 tasks: 40 ok, 0 failed, 0 retried, $n_ok resumed" "$TMP/w2.err"
# Each of the others gets one ok line; a straggler's copy may add a canceled
# line for its loser ("finished first"), nothing else may appear.
tail -n +"$((before + 1))" "$J" | awk -F'\t' '!/^#/ && $2 == "ok" {print $1}' | sort >"$TMP/ran"
check "resume: ran exactly the $((40 - n_ok)) others, once each" \
  [ "$(wc -l <"$TMP/ran")" = $((40 - n_ok)) -a "$(sort -u "$TMP/ran" | wc -l)" = $((40 - n_ok)) ]
check "resume: no task done before ran again" \
  [ -z "$(head -n "$before" "$J" | awk -F'\t' '!/^#/ && $2 == "ok" {print $1}' | sort -u | comm -12 - "$TMP/ran")" ]
check "resume: every other line is a copy's loser" \
  [ "$(tail -n +"$((before + 1))" "$J" | awk -F'\t' '!/^#/ && $2 != "ok" && $10 !~ /finished first/' | wc -l)" = 0 ]

# Slurm's end time instead of --walltime (singleton, 2 workers).
SLURM_JOB_END_TIME=$(($(date +%s) + 3)) run s1 120 "$RUN" chaos --tasks 40 --sleep 300 -w 2
check "SLURM_JOB_END_TIME: exit 3" [ "$(rc_of s1)" = 3 ]
check "SLURM_JOB_END_TIME: stopped before starting what would not finish" \
  grep -q "tasks not started (--resume runs them)" "$TMP/s1.err"

run b1 30 "$RUN" chaos --tasks 3 --walltime 1:xx
check "--walltime 1:xx: usage error" [ "$(rc_of b1)" = 2 ]
check "--walltime 1:xx: message" grep -q -- "--walltime: expected a time" "$TMP/b1.err"
exit 0
