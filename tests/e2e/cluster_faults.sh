#!/usr/bin/env bash
# MPC_FAULT: every kind of injected failure, under mpirun over TCP.
#   task faults  segv abort exit fail hang oom (each reported as what it is,
#                the run goes on), a crash on one rank retried on another,
#                delay (a slow rank: its tasks are copied and the copies win)
#   rank faults  stop (detected by --heartbeat, its tasks finish elsewhere)
#                kill (Open MPI ends the job; --resume finishes the rest)
set -u
. "$(dirname "$0")/lib_mpcrun.bash"
MPI=(mpirun --oversubscribe --mca btl self,tcp)

# Final status per task number, from the text timeline (seq key ... status)
# and the journal (key status ...): "seq status" lines.
final_by_seq() { # TIMELINE JOURNAL
  awk -F'\t' 'NR == FNR { if (FNR > 1) key[$1] = $2; next }
              !/^#/ { last[$1] = $2 }
              END { for (s in key) print s, last[key[s]] }' "$1" "$2" | sort -n
}

# --- task faults, each kind once; no retries so that each shows ----------
export MPC_FAULT="segv:task=3,abort:task=4,exit:task=5:code=7,fail:task=6,hang:task=7,oom:task=8"
run f1 120 "${MPI[@]}" -n 2 "$RUN" chaos --tasks 30 -w 1 --timeout 2 --mem-limit 256M \
  --retries 0 --no-speculate --journal "$TMP/j1" --timeline "$TMP/t1.tsv"
unset MPC_FAULT
check "task faults: exit 1" [ "$(rc_of f1)" = 1 ]
check "task faults: 24 ok, 6 failed" grep -q "30 tasks: 24 ok, 6 failed" "$TMP/f1.err"
final_by_seq "$TMP/t1.tsv" "$TMP/j1" >"$TMP/fin1"
want() { grep -qx "$1 $2" "$TMP/fin1"; }
check "segv:task=3 -> crashed" want 3 crashed
check "abort:task=4 -> crashed" want 4 crashed
check "exit:task=5:code=7 -> exited" want 5 exited
check "fail:task=6 -> error" want 6 error
check "hang:task=7 -> timeout" want 7 timeout
check "oom:task=8 -> oom (past --mem-limit)" want 8 oom
check "every other task ok" [ "$(grep -c ' ok$' "$TMP/fin1")" = 24 ]
check "summary: SIGSEGV and SIGABRT named" grep -q "signal 11, SIGSEGV" "$TMP/f1.err"
check "summary: abort" grep -q "signal 6, SIGABRT" "$TMP/f1.err"
check "summary: exit code 7" grep -q "exited (code 7)" "$TMP/f1.err"
check "summary: the fail fault's message" grep -q "MPC_FAULT: task 6 fails on purpose" "$TMP/f1.err"
check "summary: out of memory with the limit" grep -q "out of memory (limit 268435456 bytes" "$TMP/f1.err"
check "job saw every outcome once" grep -q "gathered=30 ok=24 .*missing=0 duplicates=0 bad_output=0" "$TMP/f1.out"

# --- a crash on rank 0 only: the retry on rank 1 succeeds -------------------
# Every task crashes on rank 0, so whichever tasks rank 0 is given (that is
# the scheduler's choice) must be retried on rank 1, never on rank 0 again.
MPC_FAULT="segv:rank=0" run f2 120 "${MPI[@]}" -n 2 "$RUN" chaos --tasks 12 -w 1 \
  --journal "$TMP/j2" --no-speculate
awk -F'\t' '!/^#/ { s[$1] = s[$1] $2 "/" $3 "/" $4 " " } END { for (k in s) print s[k] }' \
  "$TMP/j2" | sort | uniq -c >"$TMP/j2.hist"
check "rank-selected fault: exit 0 after the retries" [ "$(rc_of f2)" = 0 ]
check "rank-selected fault: crashed on rank 0, then ok on rank 1, for each task rank 0 got" \
  grep -q ' crashed/1/0 ok/2/1 $' "$TMP/j2.hist"
check "rank-selected fault: no other history (first tries on rank 1 ok at once)" \
  [ "$(grep -cv -e ' crashed/1/0 ok/2/1 $' -e ' ok/1/1 $' "$TMP/j2.hist")" = 0 ]
check "rank-selected fault: all 12 tasks in the journal" \
  [ "$(awk '{ n += $1 } END { print n }' "$TMP/j2.hist")" = 12 ]

# --- delay: one slow worker (rank 1, worker 0); once nothing else is left
# its tasks are copied to idle workers and the copies win -----------------
MPC_FAULT="delay:rank=1:worker=0@4s" run f3 120 "${MPI[@]}" -n 3 "$RUN" chaos --tasks 30 --sleep 100 \
  -w 1 --journal "$TMP/j3" --json "$TMP/s3.json"
check "slow rank: exit 0" [ "$(rc_of f3)" = 0 ]
check "slow rank: every task once" grep -q "gathered=30 ok=30 .*missing=0 duplicates=0 bad_output=0" "$TMP/f3.out"
check "slow rank: copies started and won (summary)" grep -Eq "stragglers: [1-9][0-9]* speculative cop(y|ies) started, [1-9][0-9]* won" "$TMP/f3.err"
check "slow rank: JSON counts agree, and copies won no more than started" /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["speculative"]
assert 1 <= s["won"] <= s["started"], s' "$TMP/s3.json"
# Which attempt won: for every key whose attempt on rank 1 was canceled
# because another finished first, the winner is attempt 2, not on rank 1,
# and it is the key's last line.
check "slow rank: the losers were rank 1's attempts, the copies (attempt 2) won" /usr/bin/python3 -c '
import sys
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
by = {}
for f in lines: by.setdefault(f[0], []).append(f)
lost = [k for k, v in by.items() if any("finished first" in f[9] for f in v)]
assert lost, "no speculation in the journal"
for k in lost:
    v = by[k]
    loser = [f for f in v if "finished first" in f[9]]
    assert len(loser) == 1 and loser[0][1] == "canceled" and loser[0][3] == "1", v
    assert v[-1][1] == "ok" and v[-1][2] == "2" and v[-1][3] != "1", v
    assert sum(f[1] == "ok" for f in v) == 1, v
' "$TMP/j3"

# --- stop: rank 2 freezes; the heartbeat finds it; its tasks run elsewhere --
MPC_FAULT="stop:rank=2@1s" run f4 120 "${MPI[@]}" -n 3 "$RUN" chaos --tasks 40 --sleep 100 \
  -w 1 --heartbeat 2 --journal "$TMP/j4"
check "stop fault: exit 0 (all tasks done)" [ "$(rc_of f4)" = 0 ]
check "stop fault: every task once" grep -q "gathered=40 ok=40 .*missing=0 duplicates=0" "$TMP/f4.out"
check "stop fault: summary names rank 2 as lost" grep -q "rank 2 (.*LOST: silent for" "$TMP/f4.err"
check "stop fault: one ok line per task in the journal" \
  [ "$(awk -F'\t' '!/^#/ && $2 == "ok"' "$TMP/j4" | cut -f1 | sort -u | wc -l)" = 40 -a \
    "$(awk -F'\t' '!/^#/ && $2 == "ok"' "$TMP/j4" | wc -l)" = 40 ]
check "stop fault: no process left" wait_gone 20

# --- kill: rank 1 dies; Open MPI ends the job; --resume does the rest -------
MPC_FAULT="kill:rank=1@1s" run f5 120 "${MPI[@]}" -n 2 "$RUN" chaos --tasks 200 --sleep 20 \
  -w 1 --journal "$TMP/j5"
check "kill fault: the job ends, not 0" [ "$(rc_of f5)" != 0 -a "$(rc_of f5)" != 124 ]
check "kill fault: no process left" wait_gone 20
check "kill fault: journal lines well formed" [ "$(awk -F'\t' '!/^#/ && NF != 11' "$TMP/j5" | wc -l)" = 0 ]
n_ok=$(awk -F'\t' '!/^#/ && $2 == "ok"' "$TMP/j5" | cut -f1 | sort -u | wc -l)
check "kill fault: some but not all tasks done ($n_ok)" [ "$n_ok" -gt 0 -a "$n_ok" -lt 200 ]
run f5r 120 "${MPI[@]}" -n 2 "$RUN" chaos --tasks 200 --sleep 20 -w 1 --journal "$TMP/j5" --resume
check "kill fault: --resume completes, exit 0" [ "$(rc_of f5r)" = 0 ]
check "kill fault: $n_ok resumed, the rest run once" grep -q "200 tasks: 200 ok, 0 failed, 0 retried, $n_ok resumed" "$TMP/f5r.err"
check "kill fault: resumed run gathers each task once" grep -q "gathered=200 ok=200 .*missing=0 duplicates=0 bad_output=0" "$TMP/f5r.out"

# --- a malformed MPC_FAULT is a usage error ----------------------------------
MPC_FAULT="segv:tsk=3" run f6 30 "$RUN" chaos --tasks 3
check "bad MPC_FAULT: exit 2" [ "$(rc_of f6)" = 2 ]
check "bad MPC_FAULT: names the item" grep -q "MPC_FAULT item 'segv:tsk=3'" "$TMP/f6.err"
exit 0
