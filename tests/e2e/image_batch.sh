#!/usr/bin/env bash
# End to end: `mpc-run image` over a directory with good, odd-named and bad
# files, singleton and under mpirun -n 2; exit codes, outputs, the report,
# no temporary files left, --resume with a journal.
# Inputs are made by `mpc-run mandel --frames` (no other tools needed);
# sizes are checked with build/bin/imgtool (libpng's own decoder).
set -u
B=${MPC_BUILD:?MPC_BUILD must point at the build directory}
RUN="$B/bin/mpc-run"
TOOL="$B/bin/imgtool"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun -n 2 --oversubscribe --mca btl self,tcp)

if [ ! -x "$RUN" ] || [ ! -x "$TOOL" ]; then
  echo "# SKIP image_batch: $RUN or $TOOL not built"
  exit 0
fi

T=$(mktemp -d /tmp/mpc-e2e-image-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

# Inputs: 4 mandel frames, copies under awkward names, and bad files.
"$RUN" -q mandel --size 320x240 --iter 200 --frames 4 --out "$T/in" >"$T/m.out" 2>"$T/m.err"
check "mandel --frames made 4 input frames" test -f "$T/in/frame_003.png"
cp "$T/in/frame_000.png" "$T/in/a b c.png"
cp "$T/in/frame_001.png" "$T/in/-leading-dash.png"
cp "$T/in/frame_002.png" "$T/in/ünïcødé ✓.png"
mkdir -p "$T/in/sub dir"
cp "$T/in/frame_003.png" "$T/in/sub dir/--deep.png"
head -c 1000 "$T/in/frame_000.png" >"$T/in/truncated.png"
: >"$T/in/empty.png"
echo "not a picture" >"$T/in/text.png"
echo "ignored" >"$T/in/notes.txt"
GOOD=("frame_000.png" "frame_001.png" "frame_002.png" "frame_003.png"
      "a b c.png" "-leading-dash.png" "ünïcødé ✓.png" "sub dir/--deep.png")
BAD=("truncated.png" "empty.png" "text.png")

# 1. Singleton, 2 workers, recursive.
"$RUN" -w 2 image "$T/in" "$T/out1" --size 160x100 --recursive >"$T/r1.out" 2>"$T/r1.err"
rc=$?
check "singleton: exit code 1 when some files fail (got $rc)" test "$rc" -eq 1
all=1
for f in "${GOOD[@]}"; do
  [ "$("$TOOL" info "$T/out1/$f" 2>/dev/null)" = "160 100 3 8" ] || { all=0; echo "# bad or missing: $f"; }
done
check "singleton: every good file written at 160x100, same relative name" test $all -eq 1
none=1
for f in "${BAD[@]}"; do [ -e "$T/out1/$f" ] && none=0; done
check "singleton: nothing written for bad files" test $none -eq 1
check "singleton: no .txt output" test ! -e "$T/out1/notes.txt"
listed=1
for f in "${BAD[@]}"; do grep -qF "$f" "$T/r1.out" || listed=0; done
check "singleton: the report lists every failed file" test $listed -eq 1
check "singleton: the report gives reasons" grep -q "empty file" "$T/r1.out"
check "singleton: no temporary files left" test -z "$(find "$T/out1" -name '.mpc-*')"

# 2. mpirun -n 2, default options (800x600 exact, bicubic, brightness 1.2).
"${MPIRUN[@]}" "$RUN" image "$T/in" "$T/out2" >"$T/r2.out" 2>"$T/r2.err"
rc=$?
check "mpirun -n 2: exit code 1 (got $rc)" test "$rc" -eq 1
check "mpirun -n 2: default size 800x600" test "$("$TOOL" info "$T/out2/frame_000.png")" = "800 600 3 8"
check "mpirun -n 2: non-recursive skips sub dir" test ! -e "$T/out2/sub dir"
check "mpirun -n 2: 7 written" grep -q "^image: 7 written" "$T/r2.out"

# 3. Same picture whatever the number of ranks and workers.
"$RUN" -w 1 image "$T/in" "$T/out3" --size 160x100 --recursive >/dev/null 2>&1
same=1
for f in "${GOOD[@]}"; do cmp -s "$T/out1/$f" "$T/out3/$f" || same=0; done
check "outputs identical with 1 and 2 workers" test $same -eq 1

# 4. --resume with a journal skips the files already done.
"$RUN" --journal "$T/j" image "$T/in" "$T/out4" --size 64x48 >/dev/null 2>&1
"$RUN" --journal "$T/j" --resume image "$T/in" "$T/out4" --size 64x48 >"$T/r4.out" 2>"$T/r4.err"
check "--resume: good files reported as already done" grep -q "0 written, 7 already done" "$T/r4.out"

# 5. Usage error: exit 2.
"$RUN" image "$T/in" >/dev/null 2>&1
rc=$?
check "missing OUT_DIR is a usage error (exit 2, got $rc)" test "$rc" -eq 2

# 6. JPEG in, JPEG out.
if command -v convert >/dev/null; then
  mkdir -p "$T/jin"
  convert "$T/in/frame_000.png" -quality 90 "$T/jin/photo.jpg"
  "$RUN" image "$T/jin" "$T/jout" --size 100x75 --quality 80 >/dev/null 2>&1
  check "JPEG written as JPEG" sh -c "file '$T/jout/photo.jpg' | grep -q JPEG"
  check "JPEG has the requested size" sh -c "identify -format '%wx%h' '$T/jout/photo.jpg' | grep -qx 100x75"
fi

exit $((fails > 0))
