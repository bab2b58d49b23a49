#!/usr/bin/env bash
# stats: results equal pandas describe() (read with float_precision="round_trip",
# i.e. correctly rounded like mpc) on hand-made and generated CSVs, singleton
# and under mpirun.  Prints TAP-style lines.
set -u
RUN="$MPC_BUILD/bin/mpc-run"
PY=/usr/bin/python3
[ -x "$RUN" ] || { echo "not ok - stats_pandas: $RUN missing"; exit 1; }
T=$(mktemp -d /tmp/mpc-e2e-stats-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fail=1; }

# hand-made: BOM, CRLF, blank and whitespace lines, quoted commas/newlines/doubled
# quotes, ints, floats, scientific, negatives, every missing token pandas 1.5 knows,
# quoted numbers, a text column, no final newline
printf '\xef\xbb\xbfid,int,"flt, x",sci,neg,miss,text,qnum\r\n\r\n1,10,1.5,1e3,-1,NA,hello,"7"\r\n2,-20,2.25,2.5E-2,-2.5,,"with, comma","8.5"\r\n   \r\n3,30,-0.125,-3.75e+01,-3,NaN,"multi\r\nline",9\r\n4,40,1e-3,4e0,-4.0,null,"q ""x"" y","-1"\r\n5,50,7,5.5e1,-5,N/A,plain,10\r\n6,60,  8.5,6e-1,-6,n/a,"a\nb\nc",11\r\n7,70,9.75,7.25e2,-7,#N/A,x,""\r\n8,,10,8e2,-8,<NA>,y,12\r\n9,90,11.5,9e-9,-9,NULL,z,13\r\n10,100,12,1.5e1,-10,-nan,w,14' > "$T/mixed.csv"
printf 'v\n3\n1\n2\n' > "$T/one.csv"
printf 'a,b\n9007199254740993,1e308\n-1e-300,0.1\n0.30000000000000004,2\n' > "$T/extreme.csv"
$PY - "$T/gen.csv" <<'PYEOF'
import random, sys
random.seed(5)
with open(sys.argv[1], "w", newline="") as f:
    f.write('x,note,y,z\n')
    for i in range(20000):
        note = random.choice(['plain', '"1,2,3\n4,5,6"', '"""\n"",""\n"', '"a""b"', '"\n\n"', ''])
        y = random.choice(['NA', '', '%de%d' % (random.randint(0, 999), random.randint(-3, 3))])
        f.write('%r,%s,%s,"%d"\n' % (random.uniform(-1e4, 1e4), note, y, random.randint(0, 9)))
PYEOF

cat > "$T/cmp.py" <<'PYEOF'
import json, math, sys
import pandas as pd
csv, mine = sys.argv[1], json.load(open(sys.argv[2]))["columns"]
d = pd.read_csv(csv, float_precision="round_trip").describe()
bad = []
if list(d.columns) != list(mine):
    bad.append("columns %s vs %s" % (list(d.columns), list(mine)))
for c in d.columns:
    for k, v in d[c].items():
        m = mine.get(c, {}).get(k)
        v = None if (v != v or math.isinf(v)) else float(v)
        if v is None or m is None:
            if v != m: bad.append("%s %s pandas %r mpc %r" % (c, k, v, m))
        elif k in ("mean", "std"):
            if abs(v - m) > 1e-12 * abs(v): bad.append("%s %s pandas %r mpc %r" % (c, k, v, m))
        elif v != m:
            bad.append("%s %s pandas %r mpc %r" % (c, k, v, m))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF

check() { # name csv launcher-args... -- job-args...
  local name=$1 csv=$2; shift 2
  local launch=() ; while [ "$1" != "--" ]; do launch+=("$1"); shift; done; shift
  if "${launch[@]}" "$RUN" stats "$csv" --format json "$@" > "$T/out.json" 2> "$T/err"; then
    if $PY "$T/cmp.py" "$csv" "$T/out.json" > "$T/diff"; then ok "$name"
    else nok "$name: $(head -3 "$T/diff")"; fi
  else nok "$name: exit $? $(head -3 "$T/err")"; fi
}
MPI=(mpirun --oversubscribe -n)
for f in mixed one extreme gen; do
  check "stats $f.csv singleton equals pandas (exact quantiles)" "$T/$f.csv" env -- --exact
  check "stats $f.csv 2 ranks, 7 tasks equals pandas" "$T/$f.csv" "${MPI[@]}" 2 -- --exact --tasks 7
done
check "stats gen.csv 4 ranks, 100 tasks equals pandas" "$T/gen.csv" "${MPI[@]}" 4 -- --exact --tasks 100
check "stats gen.csv 2 ranks over tcp" "$T/gen.csv" "${MPI[@]}" 2 --mca btl self,tcp -- --exact --tasks 13
exit $fail
