#!/usr/bin/env bash
# Interruptions: SIGINT gives exit 3 and a consistent journal; kill -9 of
# mpirun mid-run, then --resume, completes exactly the missing tasks; bad
# options and unknown jobs exit 2 with one clear message.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

# --- SIGINT to a singleton run ------------------------------------------------
timeout -k 5 120 "$RUN" chaos --tasks 300 --seed 2 --sleep 40 -w 2 --journal "$TMP/js" \
  >"$TMP/s.out" 2>"$TMP/s.err" &
pid=$!
wait_lines "$TMP/js" 10
kill -INT $pid
wait $pid
rc=$?
check "SIGINT: exit 3" [ "$rc" = 3 ]
check "SIGINT: summary says interrupted" grep -q "stopped early: interrupted by signal 2" "$TMP/s.err"
check "SIGINT: the job's finish() still ran" grep -q "chaos: tasks=300" "$TMP/s.out"
check "SIGINT: journal lines all well formed" [ "$(awk -F'\t' '!/^#/ && NF != 11' "$TMP/js" | wc -l)" = 0 ]
journal_last "$TMP/js" >"$TMP/lasts"
gen=$(summary_tasks "$TMP/s.err")
check "SIGINT: journal has one final line per generated task ($gen)" [ "$(wc -l <"$TMP/lasts")" = "${gen:-x}" ]
check "SIGINT: no task ok twice" [ "$(awk -F'\t' '$2 == "ok"' "$TMP/js" | cut -f1 | sort | uniq -d | wc -l)" = 0 ]
check "SIGINT: some canceled" grep -q ' canceled$' "$TMP/lasts"
check "SIGINT: no process left" wait_gone 20

# Resume after SIGINT finishes the rest and gives the full result.
run full 120 "$RUN" chaos --tasks 300 --seed 2 -w 2
run s2 120 "$RUN" chaos --tasks 300 --seed 2 -w 2 --journal "$TMP/js" --resume
done1=$(awk -F'\t' '$2 == "ok"' "$TMP/js" | cut -f1 | sort -u | wc -l)
check "resume after SIGINT: exit 0" [ "$(rc_of s2)" = 0 ]
check "resume after SIGINT: same checksum as an uninterrupted run" [ "$(field s2 checksum)" = "$(field full checksum)" ]
check "resume after SIGINT: all 300 ok once in the journal" [ "$done1" = 300 ]

# --- SIGINT to mpirun: it signals every rank; the master still writes it all up.
mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 300 --seed 2 --sleep 40 -w 1 --journal "$TMP/jm" \
  >"$TMP/m.out" 2>"$TMP/m.err" &
pid=$!
watchdog 60 $pid
wait_lines "$TMP/jm" 10
kill -INT $pid
wait $pid
unwatch
check "SIGINT to mpirun: summary says interrupted" grep -q "stopped early: interrupted by signal" "$TMP/m.err"
gen=$(summary_tasks "$TMP/m.err")
check "SIGINT to mpirun: journal has one final line per generated task ($gen)" [ "$(journal_last "$TMP/jm" | wc -l)" = "${gen:-x}" ]
check "SIGINT to mpirun: journal lines all well formed" [ "$(awk -F'\t' '!/^#/ && NF != 11' "$TMP/jm" | wc -l)" = 0 ]
check "SIGINT to mpirun: no task failed (killed workers count as canceled)" grep -q " 0 failed" "$TMP/m.err"
check "SIGINT to mpirun: no process left" wait_gone 20

# --- kill -9 of mpirun mid-run, then --resume ---------------------------------
# Over TCP: Open MPI's shared-memory transport leaves its segments in
# /dev/shm when mpirun is killed with -9 (ours are checked below).
shm_before=$(ls /dev/shm | grep -c '^mpc' || true)
mpirun --oversubscribe --mca btl self,tcp -n 2 "$RUN" chaos --tasks 400 --seed 4 --sleep 25 -w 1 \
  --journal "$TMP/jk" >"$TMP/k.out" 2>"$TMP/k.err" &
pid=$!
wait_lines "$TMP/jk" 30
kill -9 $pid
wait $pid 2>/dev/null
check "after kill -9 of mpirun every rank and worker goes away" wait_gone 30
check "after kill -9 of mpirun no mpc object is left in /dev/shm" [ "$(ls /dev/shm | grep -c '^mpc' || true)" -le "$shm_before" ]
ok1=$(awk -F'\t' '$2 == "ok"' "$TMP/jk" | cut -f1 | sort -u)
n_ok1=$(printf '%s\n' "$ok1" | grep -c .)
check "the killed run journaled some but not all tasks ($n_ok1)" [ "$n_ok1" -gt 0 -a "$n_ok1" -lt 400 ]
lines_before=$(wc -l <"$TMP/jk")
run k2 180 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 400 --seed 4 -w 1 --journal "$TMP/jk" --resume
run kfull 120 "$RUN" chaos --tasks 400 --seed 4 -w 2
check "resume: exit 0" [ "$(rc_of k2)" = 0 ]
check "resume: $n_ok1 tasks resumed" grep -q "400 tasks: 400 ok, 0 failed, 0 retried, $n_ok1 resumed" "$TMP/k2.err"
check "resume: the job re-gathered the journaled outputs" grep -q "resumed=$n_ok1 .*missing=0 duplicates=0 bad_output=0" "$TMP/k2.out"
check "resume: same checksum as an uninterrupted run" [ "$(field k2 checksum)" = "$(field kfull checksum)" ]
# Exactly the missing tasks ran: none of the second run's lines is a task the
# first run had finished, and together they cover all 400 once.
tail -n +"$((lines_before + 1))" "$TMP/jk" | awk -F'\t' '!/^#/ {print $1}' | sort >"$TMP/ran2"
check "resume: ran exactly the $((400 - n_ok1)) missing tasks" [ "$(sort -u "$TMP/ran2" | wc -l)" = $((400 - n_ok1)) -a \
  "$(comm -12 <(printf '%s\n' "$ok1") <(sort -u "$TMP/ran2") | wc -l)" = 0 ]
check "resume: the resumed run ran each task once" [ "$(uniq -d "$TMP/ran2" | wc -l)" = 0 ]

# --- usage errors -------------------------------------------------------------
run u1 60 "$RUN" nosuchjob
check "unknown job: exit 2" [ "$(rc_of u1)" = 2 ]
check "unknown job: named" grep -q "unknown job 'nosuchjob'" "$TMP/u1.err"
run u2 60 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 5 --bogus
check "bad job option under mpirun: exit 2" [ "$(rc_of u2)" = 2 ]
check "bad job option: named once (not once per rank)" [ "$(grep -c "unknown argument '--bogus'" "$TMP/u2.err")" = 1 ]
run u3 60 mpirun --oversubscribe -n 2 "$RUN" --timeout chaos
check "bad global option value under mpirun: exit 2" [ "$(rc_of u3)" = 2 ]
check "bad global option value: named" grep -q -- "--timeout: expected seconds" "$TMP/u3.err"
run u4 60 "$RUN" chaos --workers
check "missing value: exit 2 and named" [ "$(rc_of u4)" = 2 ] 
check "missing value: message" grep -q -- "--workers: missing value" "$TMP/u4.err"
run u6 60 "$RUN" --list
check "--list shows chaos" grep -q "^  chaos " "$TMP/u6.out"
run u7 60 "$RUN" chaos --help
check "JOB --help prints the job's usage" grep -q -- "--tasks N" "$TMP/u7.out"
check "JOB --help exits 0" [ "$(rc_of u7)" = 0 ]
run u8 60 "$RUN" ./nonexistent-job.so
check "missing job .so: exit 2 and named" grep -q "cannot load job './nonexistent-job.so'" "$TMP/u8.err"
check "no process left" wait_gone 20
exit 0
