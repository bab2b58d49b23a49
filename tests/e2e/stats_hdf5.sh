#!/usr/bin/env bash
# stats --out: an HDF5 file that h5dump and h5py read, written via a
# temporary name, with the same numbers as the json report.
set -u
RUN="$MPC_BUILD/bin/mpc-run"
[ -x "$RUN" ] || { echo "not ok - stats_hdf5: $RUN missing"; exit 1; }
T=$(mktemp -d /tmp/mpc-e2e-stats-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
printf 'a,b,t\n1,2,x\n3,4,y\n5,,z\n' > "$T/d.csv"
if mpirun --oversubscribe -n 2 "$RUN" stats "$T/d.csv" --out "$T/s.h5" > "$T/out" 2> "$T/err"; then
  echo "ok - stats --out at 2 ranks"; else echo "not ok - stats --out: $(head -2 "$T/err")"; fail=1; fi
if h5dump "$T/s.h5" > "$T/dump" 2>&1 && grep -q 'DATASET "mean"' "$T/dump" && grep -q '"a", "b"' "$T/dump" \
   && grep -q 'ATTRIBUTE "source"' "$T/dump" && grep -q 'ATTRIBUTE "rows"' "$T/dump" && grep -q 'ATTRIBUTE "created"' "$T/dump"; then
  echo "ok - h5dump shows datasets, column names and attributes"
else echo "not ok - h5dump output: $(head -5 "$T/dump")"; fail=1; fi
if /usr/bin/python3 - "$T/s.h5" <<'PYEOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
cols = [c.decode() if isinstance(c, bytes) else c for c in f["columns"][()]]
assert cols == ["a", "b"], cols
assert list(f["count"][()]) == [3.0, 2.0]
assert list(f["mean"][()]) == [3.0, 3.0]
assert f["std"][0] == 2.0 and f["25%"][1] == 2.5
assert int(f.attrs["rows"]) == 3
PYEOF
then echo "ok - h5py reads the values back"; else echo "not ok - h5py check"; fail=1; fi
ls "$T" | grep -q '\.tmp\.' && { echo "not ok - temporary file left behind"; fail=1; } || echo "ok - no temporary file left"
exit $fail
