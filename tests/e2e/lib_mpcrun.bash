# Shared helpers for the mpc-run end-to-end drivers (sourced, not run).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${MPC_BUILD:=$ROOT/build}"
RUN="$MPC_BUILD/bin/mpc-run"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Quiet Open MPI about oversubscription and forked children.
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_warn_on_fork=0
TMP=$(mktemp -d /tmp/mpc-e2e.XXXXXX)
# Open MPI's session directory goes in TMP too: a killed mpirun (or one
# whose rank died) leaves it behind, and it goes with TMP.
export OMPI_MCA_orte_tmpdir_base="$TMP"
NFAIL=0
cleanup() {
  # Anything of ours still alive is a failure of the test, and must not stay.
  local left
  left=$(pgrep -f "$RUN" || true)
  if [ -n "$left" ]; then
    echo "not ok - processes left behind: $left"
    kill -9 $left 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT; [ -n "${KEEP_TMP:-}" ] && trap - EXIT

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; NFAIL=$((NFAIL + 1)); }
check() { # check "description" command...
  local d=$1; shift
  if "$@"; then ok "$d"; else notok "$d"; fi
}

# run NAME TIMEOUT cmd...: stdout to $TMP/NAME.out, stderr to $TMP/NAME.err,
# exit code to $TMP/NAME.rc (124 when it had to be killed).
run() {
  local name=$1 to=$2; shift 2
  timeout -k 5 "$to" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  echo $? >"$TMP/$name.rc"
}
rc_of() { cat "$TMP/$1.rc"; }
field() { # field NAME key: value of key=... in chaos's report
  grep -o "$2=[0-9a-f]*" "$TMP/$1.out" | head -n1 | cut -d= -f2
}
# Wait until no mpc-run process is left (at most $1 seconds).
wait_gone() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    pgrep -f "$RUN" >/dev/null || return 0
    sleep 0.1
  done
  return 1
}
# Last status of every key in a journal: "key status" lines.
journal_last() {
  awk -F'\t' '!/^#/ && NF == 11 { last[$1] = $2 } END { for (k in last) print k, last[k] }' "$1"
}
not() { ! "$@"; }
# Tasks generated, from the summary line in stderr file $1.
summary_tasks() {
  grep -o '^mpc-run chaos: [0-9]* tasks' "$1" | grep -o '[0-9]* tasks' | cut -d' ' -f1
}

# signal_run NAME SIG JOURNAL LINES DELAY cmd...: run cmd in the background
# (output to $TMP/NAME.out and .err), send it SIG once JOURNAL has LINES
# result lines and DELAY more seconds passed, wait; its exit code in RC.
signal_run() {
  local name=$1 sig=$2 journal=$3 lines=$4 delay=$5
  shift 5
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  local pid=$!
  watchdog 90 $pid
  wait_lines "$journal" "$lines"
  sleep "$delay"
  kill "-$sig" $pid
  wait $pid
  RC=$?
  unwatch
}

# Wait until journal $1 has at least $2 lines of results (at most 60 s).
wait_lines() {
  local i
  for ((i = 0; i < 600; i++)); do
    [ -f "$1" ] && [ "$(grep -vc '^#' "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# watchdog SECS PID: SIGKILL PID after SECS unless unwatch is called first.
# (Its own output is closed so that it never holds the test's pipes open.)
watchdog() {
  ( exec >/dev/null 2>&1; sleep "$1" & s=$!; trap 'kill $s; exit 0' TERM; wait $s; kill -9 "$2" ) &
  DOG=$!
}
unwatch() { kill "$DOG" 2>/dev/null; wait "$DOG" 2>/dev/null; }
