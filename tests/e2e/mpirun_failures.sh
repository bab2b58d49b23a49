#!/usr/bin/env bash
# Failures under mpirun: crashes, exits, errors and hangs (timeouts) are
# retried on another rank, then recorded; every task is accounted for exactly
# once in the journal and the summary; --halt now stops early.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

# --- crashes, exits, errors, hangs; one retry each, on another rank --------
ARGS=(chaos --tasks 60 --seed 5 --fail 0.08 --segv 0.08 --exit 0.05 --hang 0.04 --size 24)
"$RUN" "${ARGS[@]}" --list-fates >"$TMP/fates" 2>/dev/null
n_fail=$(grep -c ' fail$' "$TMP/fates"); n_segv=$(grep -c ' segv$' "$TMP/fates")
n_exit=$(grep -c ' exit$' "$TMP/fates"); n_hang=$(grep -c ' hang$' "$TMP/fates")
n_bad=$((n_fail + n_segv + n_exit + n_hang))
check "the seed gives every kind of failure ($n_fail/$n_segv/$n_exit/$n_hang)" \
  [ "$n_fail" -gt 0 -a "$n_segv" -gt 0 -a "$n_exit" -gt 0 -a "$n_hang" -gt 0 ]
run f1 180 mpirun --oversubscribe -n 3 "$RUN" "${ARGS[@]}" -w 1 --timeout 1 --retries 1 --no-speculate --journal "$TMP/j1"
check "exit code 1 when tasks fail" [ "$(rc_of f1)" = 1 ]
check "job saw the predicted outcomes" grep -q "ok=$((60 - n_bad)) error=$n_fail crashed=$n_segv exited=$n_exit timeout=$n_hang canceled=0 .*missing=0 duplicates=0 bad_output=0" "$TMP/f1.out"
check "summary counts" grep -q "60 tasks: $((60 - n_bad)) ok, $n_bad failed, $n_bad retried, 0 resumed, 0 canceled" "$TMP/f1.err"
check "summary lists failures with reason, rank, host, pid" grep -Eq "crashed \(signal 11, SIGSEGV\) on rank [0-2] \(.+\) pid [0-9]+" "$TMP/f1.err"
check "summary names timeouts" grep -q "timeout (killed) on rank" "$TMP/f1.err"
check "summary names exits" grep -q "exited (code 3) on rank" "$TMP/f1.err"
journal_last "$TMP/j1" >"$TMP/last1"
check "journal: every task has one final line (60 keys)" [ "$(wc -l <"$TMP/last1")" = 60 ]
check "journal: final statuses match the fates" [ "$(grep -c ' ok$' "$TMP/last1")" = $((60 - n_bad)) -a \
  "$(grep -c ' error$' "$TMP/last1")" = "$n_fail" -a "$(grep -c ' crashed$' "$TMP/last1")" = "$n_segv" -a \
  "$(grep -c ' exited$' "$TMP/last1")" = "$n_exit" -a "$(grep -c ' timeout$' "$TMP/last1")" = "$n_hang" ]
check "journal: one line per attempt (ok once, failed twice)" \
  [ "$(grep -vc '^#' "$TMP/j1")" = $((60 - n_bad + 2 * n_bad)) ]
# The retry of each failed task ran on a different rank than its first attempt.
awk -F'\t' '!/^#/ && $2 != "ok" { if ($3 == 1) r1[$1] = $4; else if ($3 == 2) r2[$1] = $4 }
  END { bad = 0; n = 0; for (k in r2) { n++; if (r1[k] == r2[k]) bad++ } print n, bad }' "$TMP/j1" >"$TMP/retry_ranks"
check "retries ran on another rank ($(cat "$TMP/retry_ranks"): retried, same rank)" [ "$(cat "$TMP/retry_ranks")" = "$n_bad 0" ]
check "journal: error message tail kept" grep -q "fails by design" "$TMP/j1"

# --- flaky tasks: the retry succeeds --------------------------------------
mkdir -p "$TMP/mark"
FL=(chaos --tasks 40 --seed 9 --flaky 0.25 --mark "$TMP/mark")
n_flaky=$("$RUN" "${FL[@]}" --list-fates 2>/dev/null | grep -c flaky)
rm -f "$TMP/mark"/*
run f2 120 mpirun --oversubscribe -n 2 "$RUN" "${FL[@]}" -w 1 --journal "$TMP/j2"
check "flaky: exit 0, all tasks ok after retries" [ "$(rc_of f2)" = 0 ]
check "flaky: $n_flaky retried" grep -q "40 tasks: 40 ok, 0 failed, $n_flaky retried" "$TMP/f2.err"
check "flaky: same checksum as a clean run" [ "$(field f2 checksum)" = "$("$RUN" chaos --tasks 40 --seed 9 2>/dev/null | grep -o 'checksum=.*' | cut -d= -f2)" ]
check "flaky: journal has crashed attempt 1 then ok attempt 2" \
  [ "$(awk -F'\t' '$2 == "crashed" && $3 == 1' "$TMP/j2" | wc -l)" = "$n_flaky" ]

# --- no retries: failures are final at once ---------------------------------
run f3 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 30 --seed 5 --fail 0.2 --retries 0 -w 1
n3=$("$RUN" chaos --tasks 30 --seed 5 --fail 0.2 --list-fates 2>/dev/null | grep -c ' fail$')
check "--retries 0: $n3 failed, 0 retried" grep -q "30 tasks: $((30 - n3)) ok, $n3 failed, 0 retried" "$TMP/f3.err"

# --- --halt now,fail=1 stops early ------------------------------------------
run h1 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 400 --seed 5 --sleep 30 --fail 0.05 --retries 0 -w 1 --halt now,fail=1 --journal "$TMP/jh"
check "--halt now: exit 1" [ "$(rc_of h1)" = 1 ]
check "--halt now: says why it stopped" grep -q "stopped early: --halt now: 1 task failed" "$TMP/h1.err"
check "--halt now: most tasks canceled" grep -Eq "400 tasks: [0-9]+ ok, 1 failed, 0 retried, 0 resumed, [1-9][0-9][0-9] canceled" "$TMP/h1.err"
journal_last "$TMP/jh" >"$TMP/lasth"
check "--halt now: journal accounts for all 400 tasks" [ "$(wc -l <"$TMP/lasth")" = 400 ]
run h2 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 200 --seed 5 --sleep 10 --fail 0.05 --retries 0 -w 1 --halt soon,fail=2
check "--halt soon,fail=2: exit 1 and reason" grep -q "stopped early: --halt soon: 2 tasks failed" "$TMP/h2.err"
check "--halt soon,fail=2: at least 2 failed" grep -Eq "200 tasks: [0-9]+ ok, [2-9][0-9]* failed" "$TMP/h2.err"
# --halt soon while retries are queued: they are canceled, the run ends.
run h4 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 200 --seed 5 --sleep 20 --fail 0.1 --segv 0.05 -w 1 --halt soon,fail=3 --journal "$TMP/jh4"
check "--halt soon with retries queued: ends, says why" grep -q "stopped early: --halt soon: 3 tasks failed" "$TMP/h4.err"
check "--halt soon with retries queued: journal accounts for all 200 tasks" [ "$(journal_last "$TMP/jh4" | wc -l)" = 200 ]
n4=$("$RUN" chaos --tasks 200 --seed 5 --fail 0.3 --list-fates 2>/dev/null | grep -c ' fail$')
run h3 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 200 --seed 5 --fail 0.3 --sleep 5 --retries 0 -w 1 --halt now,fail=20%
check "--halt now,fail=20% ($n4 of 200 would fail): stops at the 40th failure" grep -q "stopped early: --halt now: 40 tasks failed" "$TMP/h3.err"
check "no process left" wait_gone 20
exit 0
