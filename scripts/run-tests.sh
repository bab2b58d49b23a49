#!/usr/bin/env bash
# Run every test: each CUnit suite in its own process under a timeout, then
# every end-to-end driver in tests/e2e/.  Ends with "N passed, N failed".
#   scripts/run-tests.sh BUILD_DIR [--unit-only]
set -u
B=${1:-build}
MODE=${2:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
UT="$B/bin/unit_tests"
SUITE_TIMEOUT=${MPC_SUITE_TIMEOUT:-300}
E2E_TIMEOUT=${MPC_E2E_TIMEOUT:-600}
passed=0
failed=0
failures=()

# Every /dev/shm entry counts: ours (/mpc-*) and Open MPI's, which a killed
# mpirun can strand.
shm_list() { ls /dev/shm 2>/dev/null | sort; }
shm_before=$(shm_list)
# Open MPI's session directories (TMPDIR/ompi.HOST.UID/pid.N) of mpiruns no
# longer running: a killed mpirun strands one (~6 MB); tests keep theirs in
# their own temporary directory.
stale_sessions() {
  local d
  for d in "${TMPDIR:-/tmp}"/ompi.*/pid.*; do
    [ -d "$d" ] && ! kill -0 "${d##*/pid.}" 2>/dev/null && echo "$d"
  done | sort
}
sess_before=$(stale_sessions)

while read -r suite ntests; do
  [ -n "$suite" ] || continue
  out=$(mktemp)
  timeout -k 5 "$SUITE_TIMEOUT" "$UT" --suite "$suite" >"$out" 2>&1
  rc=$?
  cat "$out"
  line=$(grep '^MPC-RESULT ' "$out" | tail -n 1)
  rm -f "$out"
  if [ -n "$line" ]; then
    p=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' <<<"$line")
    f=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -gt 0 ] && failures+=("unit suite $suite: $f failed")
  else
    # The suite crashed or timed out: all of its tests count as failed.
    echo "!! suite $suite did not finish (exit $rc): counting its $ntests tests as failed"
    failed=$((failed + ntests)); failures+=("unit suite $suite: crashed/timed out (exit $rc)")
  fi
done < <("$UT" --list)

if [ "$MODE" != "--unit-only" ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export MPC_BUILD="$ROOT/$B"
  [ -d "$B" ] && MPC_BUILD=$(cd "$B" && pwd)
  for t in "$ROOT"/tests/e2e/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t")
    echo
    echo "== e2e: $name"
    out=$(mktemp)
    timeout -k 5 "$E2E_TIMEOUT" bash "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    # Drivers print TAP-style lines: "ok - what" / "not ok - what".
    p=$(grep -c '^ok ' "$out" || true)
    f=$(grep -c '^not ok ' "$out" || true)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1; echo "not ok - $name exited $rc"
    fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -gt 0 ] && failures+=("e2e $name: $f failed")
    rm -f "$out"
  done
fi

# Nothing may be left behind by any test: compare a list taken before.
# left_behind WHAT BEFORE LISTING-COMMAND
left_behind() {
  local new
  new=$(comm -13 <(echo "$2") <($3) | head -5)
  if [ -n "$new" ]; then
    echo "not ok - $1 left behind: $new"
    failed=$((failed + 1)); failures+=("$1 left behind")
  else
    echo "ok - no $1 left behind"
    passed=$((passed + 1))
  fi
}
left_behind "/dev/shm objects" "$shm_before" shm_list
left_behind "Open MPI session directories" "$sess_before" stale_sessions

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "Failures:"; printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
