#!/usr/bin/env bash
# scripts/slurm/mpc-run.sbatch without Slurm: fake srun (mpirun -n 2) and
# scontrol on PATH.  The time-limit warning (SIGUSR1 to the batch shell) is
# forwarded, mpc-run exits 3, the script requeues the job; the requeued run
# resumes from the journal and completes exactly the rest.  SIGTERM (scancel)
# stops it without requeueing.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

SB="$ROOT/scripts/slurm/mpc-run.sbatch"
mkdir -p "$TMP/bin"
cat >"$TMP/bin/srun" <<'SH'
#!/bin/bash
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec mpirun --oversubscribe -n 2 "$@"
SH
cat >"$TMP/bin/scontrol" <<SH
#!/bin/bash
echo "\$*" >>"$TMP/scontrol.log"
SH
chmod +x "$TMP/bin/srun" "$TMP/bin/scontrol"
export PATH="$TMP/bin:$PATH" MPC_RUN="$RUN" MPC_GRACE=0 SLURM_SUBMIT_DIR="$TMP" SLURM_CPUS_PER_TASK=1

run full 120 "$RUN" chaos --tasks 200 --seed 8 -w 2

# Run 1: the time-limit warning.
J="$TMP/mpc-run-4242.journal"
SLURM_JOB_ID=4242 bash "$SB" chaos --tasks 200 --seed 8 --sleep 40 >"$TMP/b1.out" 2>"$TMP/b1.err" &
pid=$!
watchdog 90 $pid
wait_lines "$J" 10
kill -USR1 $pid
wait $pid
rc=$?
unwatch
check "sbatch script: SIGUSR1 gives exit 3" [ "$rc" = 3 ]
check "sbatch script: mpc-run said it was interrupted by signal 10" grep -q "interrupted by signal 10" "$TMP/b1.err"
check "sbatch script: the job was requeued" grep -qx "requeue 4242" "$TMP/scontrol.log"
check "sbatch script: journal lines all well formed" [ "$(awk -F'\t' '!/^#/ && NF != 11' "$J" | wc -l)" = 0 ]
n_ok1=$(awk -F'\t' '$2 == "ok"' "$J" | cut -f1 | sort -u | wc -l)
check "sbatch script: some but not all done ($n_ok1)" [ "$n_ok1" -gt 0 -a "$n_ok1" -lt 200 ]
check "no process left" wait_gone 20

# Run 2: the requeued job (same job id) resumes.
lines_before=$(wc -l <"$J")
SLURM_JOB_ID=4242 SLURM_RESTART_COUNT=1 run b2 180 bash "$SB" chaos --tasks 200 --seed 8
check "requeued run: exit 0" [ "$(rc_of b2)" = 0 ]
check "requeued run: $n_ok1 resumed" grep -q "200 tasks: 200 ok, 0 failed, 0 retried, $n_ok1 resumed" "$TMP/b2.err"
check "requeued run: same checksum as an uninterrupted run" [ "$(field b2 checksum)" = "$(field full checksum)" ]
check "requeued run: ran the other $((200 - n_ok1)) tasks, each once" \
  [ "$(tail -n +"$((lines_before + 1))" "$J" | grep -vc '^#')" = $((200 - n_ok1)) ]
check "requeued run: not requeued again" [ "$(grep -c requeue "$TMP/scontrol.log")" = 1 ]

# scancel: SIGTERM stops without a requeue.
SLURM_JOB_ID=4343 bash "$SB" chaos --tasks 200 --seed 8 --sleep 40 >"$TMP/b3.out" 2>"$TMP/b3.err" &
pid=$!
watchdog 90 $pid
wait_lines "$TMP/mpc-run-4343.journal" 10
kill -TERM $pid
wait $pid
rc=$?
unwatch
# (The fake srun is mpirun, whose own exit status after SIGTERM is Open MPI's
# choice; it passes SIGTERM on to the ranks as srun does.)
check "SIGTERM to the batch script: stopped, not 0 ($rc)" [ "$rc" != 0 ]
check "SIGTERM to the batch script: mpc-run interrupted by signal 15" grep -q "interrupted by signal 15" "$TMP/b3.err"
check "SIGTERM to the batch script: no requeue" not grep -q 4343 "$TMP/scontrol.log"
run b4 30 bash "$SB"
check "sbatch script without a JOB: usage, exit 2" [ "$(rc_of b4)" = 2 ]
check "no process left" wait_gone 20
exit 0
