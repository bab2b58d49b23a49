#!/usr/bin/env bash
# End to end: `mpc-run mandel` writes the same file, byte for byte, at 1, 2
# and 4 ranks, with different worker counts, tilings and schedules.
set -u
B=${MPC_BUILD:?MPC_BUILD must point at the build directory}
RUN="$B/bin/mpc-run"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [ ! -x "$RUN" ]; then
  echo "# SKIP mandel_ranks: $RUN not built"
  exit 0
fi

T=$(mktemp -d /tmp/mpc-e2e-mandel-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

ARGS=(mandel --size 240x160 --iter 400 --center -0.75,0.05 --zoom 1.3)

"$RUN" -w 1 "${ARGS[@]}" --tile 8 --out "$T/single.png" >"$T/s.out" 2>"$T/s.err"
rc=$?
check "singleton run succeeds (exit $rc)" test "$rc" -eq 0
check "singleton wrote the picture" test -s "$T/single.png"
check "report names the file" grep -qF "$T/single.png" "$T/s.out"

for n in 1 2 4; do
  mpirun -n "$n" --oversubscribe --mca btl self,tcp "$RUN" -w 1 "${ARGS[@]}" --tile 8 \
    --out "$T/n$n.png" >"$T/n$n.out" 2>"$T/n$n.err"
  rc=$?
  check "mpirun -n $n succeeds (exit $rc)" test "$rc" -eq 0
  check "mpirun -n $n: identical to the singleton picture" cmp -s "$T/single.png" "$T/n$n.png"
done

"$RUN" -w 3 "${ARGS[@]}" --tile 1 --out "$T/w3.png" >/dev/null 2>&1
check "3 workers, 1-row tiles: identical" cmp -s "$T/single.png" "$T/w3.png"
mpirun -n 2 --oversubscribe --mca btl self,tcp "$RUN" -w 2 --schedule static "${ARGS[@]}" \
  --tile 13 --out "$T/static.png" >/dev/null 2>&1
check "2 ranks x 2 workers, static schedule, 13-row tiles: identical" cmp -s "$T/single.png" "$T/static.png"

# A zoom sequence: K frames, frame 0 equal to the single picture's view.
mpirun -n 2 --oversubscribe --mca btl self,tcp "$RUN" "${ARGS[@]}" --frames 3 --out "$T/seq" >/dev/null 2>&1
check "--frames 3 writes frame_000..002" test -s "$T/seq/frame_002.png" -a ! -e "$T/seq/frame_003.png"
check "frame_000 equals the single picture" cmp -s "$T/single.png" "$T/seq/frame_000.png"

exit $((fails > 0))
