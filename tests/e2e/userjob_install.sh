#!/usr/bin/env bash
# The user-job example builds and runs from the installed tree:
# make install PREFIX=$tmp, cc with pkg-config, $tmp/bin/mpc-run ./job.so.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

PREFIX="$TMP/prefix"
if make -s -C "$ROOT" B="$MPC_BUILD" install PREFIX="$PREFIX" >"$TMP/install.log" 2>&1; then
  ok "make install PREFIX=$PREFIX"
else
  notok "make install"; cat "$TMP/install.log"; exit 0
fi
check "installed mpc-run, headers, library, pkg-config file" [ -x "$PREFIX/bin/mpc-run" -a -f "$PREFIX/include/mpc/job.h" \
  -a -f "$PREFIX/lib/libmpcrun.so" -a -f "$PREFIX/lib/pkgconfig/mpcrun.pc" ]
cp "$ROOT/examples/userjob/squares.c" "$TMP/job.c"
# docs/jobs.md shows this very file, and it stays a 30-line job
awk '/^```c$/ {on = 1; next} /^```$/ {on = 0} on && f {print} /^## A user job/ {f = 1} /^## Testing/ {f = 0}' \
  "$ROOT/docs/jobs.md" >"$TMP/doc.c"
check "docs/jobs.md shows examples/userjob/squares.c as it is" cmp -s "$TMP/doc.c" "$TMP/job.c"
check "the example is at most 30 lines" [ "$(wc -l <"$TMP/job.c")" -le 30 ]
flags=$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs mpcrun)
check "pkg-config knows mpcrun" [ -n "$flags" ]
# shellcheck disable=SC2086
if (cd "$TMP" && cc -Wall -Wextra -Werror -Wno-unused-parameter -shared -fPIC job.c -o job.so $flags) 2>"$TMP/cc.log"; then
  ok "the example job builds against the installed headers"
else
  notok "the example job builds"; cat "$TMP/cc.log"
fi
cd "$TMP" || exit 0
IRUN="$PREFIX/bin/mpc-run"
timeout -k 5 60 "$IRUN" ./job.so 1000 -w 2 >"$TMP/u1.out" 2>"$TMP/u1.err"
rc=$?
check "singleton: exit 0" [ "$rc" = 0 ]
check "singleton: sum of squares 1..1000" grep -q "squares: n=1000 sum=333833500" "$TMP/u1.out"
check "singleton: 1000 tasks ok" grep -q "1000 tasks: 1000 ok, 0 failed" "$TMP/u1.err"
timeout -k 5 120 mpirun --oversubscribe -n 2 "$IRUN" ./job.so 1000 -w 1 >"$TMP/u2.out" 2>"$TMP/u2.err"
rc=$?
check "mpirun -n 2: exit 0" [ "$rc" = 0 ]
check "mpirun -n 2: same sum" grep -q "squares: n=1000 sum=333833500" "$TMP/u2.out"
check "mpirun -n 2: both ranks worked" grep -Eq "rank 1 \(.*\): [1-9][0-9]* tasks" "$TMP/u2.err"
timeout -k 5 60 "$IRUN" ./job.so 0 >"$TMP/u3.out" 2>"$TMP/u3.err"
rc=$?
check "the job's usage error: exit 2" [ "$rc" = 2 ]
check "the job's usage error: message and usage" grep -q "N must be a positive integer" "$TMP/u3.err"
# A job built for another ABI is refused.
sed 's/\.abi = MPC_JOB_ABI_VERSION/.abi = MPC_JOB_ABI_VERSION + 1/' job.c >badabi.c
# shellcheck disable=SC2086
cc -shared -fPIC badabi.c -o badabi.so $flags 2>/dev/null
timeout -k 5 60 "$IRUN" ./badabi.so 10 >/dev/null 2>"$TMP/u4.err"
rc=$?
check "wrong ABI version: exit 2" [ "$rc" = 2 ]
check "wrong ABI version: explained" grep -q "job ABI version" "$TMP/u4.err"
# stats --out from the installed tree: its HDF5 plugin is found beside bin/.
printf 'x,y\n1,2\n3,5\n' >"$TMP/s.csv"
timeout -k 5 60 "$IRUN" stats "$TMP/s.csv" --out "$TMP/s.h5" >"$TMP/s.out" 2>"$TMP/s.err"
check "installed: stats --out exit 0 (HDF5 plugin in lib/mpcrun)" [ $? = 0 -a -f "$PREFIX/lib/mpcrun/stats-hdf5.so" ]
check "installed: stats --out wrote an HDF5 file" sh -c "h5dump -d /mean '$TMP/s.h5' | grep -q '2, 3.5'"
# mpc-run itself does not link HDF5 (it would load ~30 libraries at every start).
check "mpc-run does not link HDF5" sh -c "! ldd '$IRUN' | grep -q hdf5"
# Without the plugin, --out is refused at start, by name; other runs still work.
mkdir -p "$TMP/bare/bin" "$TMP/bare/lib"
cp "$IRUN" "$TMP/bare/bin/"; cp "$PREFIX/lib/libmpcrun.so" "$TMP/bare/lib/libmpcrun.so.0"
timeout -k 5 60 "$TMP/bare/bin/mpc-run" stats "$TMP/s.csv" --out "$TMP/s2.h5" >"$TMP/s2.out" 2>"$TMP/s2.err"
rc=$?
check "no plugin: stats --out exits 2" [ "$rc" = 2 ]
check "no plugin: the error names --out and the missing file" grep -q -- "--out needs HDF5 support.*stats-hdf5.so" "$TMP/s2.err"
check "no plugin: no output file" [ ! -e "$TMP/s2.h5" ]
timeout -k 5 60 "$TMP/bare/bin/mpc-run" stats "$TMP/s.csv" --format csv >"$TMP/s3.out" 2>"$TMP/s3.err"
check "no plugin: stats without --out works" [ $? = 0 ]
check "no process left" wait_gone 20
exit 0
