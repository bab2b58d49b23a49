#!/usr/bin/env bash
# make bench: every benchmark in scripts/bench/, competitors installed first.
# Each prints its figures and ends with a "BENCH name key=value ..." line;
# this collects those lines at the end.
set -u
B=$(cd "${1:-build}" && pwd)
export MPC_BUILD="$B"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
bash "$ROOT/scripts/bench/install-competitors.sh" || exit 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
summary=()
rc=0
for b in pool-tiny mpi-tiny scaling mandel-scaling image stats wordcount cmd; do
  f="$ROOT/scripts/bench/$b"
  [ -x "$f" ] || continue
  echo; echo "######## $b"
  out=$(mktemp)
  "$f" 2>&1 | tee "$out"  # each finds the build in MPC_BUILD; $1 is its size
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  summary+=("$(grep '^BENCH ' "$out" | tail -n 1)")
  rm -f "$out"
done
echo; echo "######## summary"
printf '%s\n' "${summary[@]}"
exit $rc
