#!/usr/bin/env bash
# stats: the same answer at 1, 2 and 4 ranks (bit-identical for a given
# --tasks) and for 1..100 ranges (mean/std within 1e-12, the rest exact with
# --exact), with range cuts landing inside quoted newlines.  Sketch quantiles
# (default) are checked against the 0.5% rank-error bound.
set -u
RUN="$MPC_BUILD/bin/mpc-run"
PY=/usr/bin/python3
[ -x "$RUN" ] || { echo "not ok - stats_ranks: $RUN missing"; exit 1; }
T=$(mktemp -d /tmp/mpc-e2e-stats-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
$PY - "$T/q.csv" <<'PYEOF'
import random, sys
random.seed(9)
with open(sys.argv[1], "w") as f:
    f.write('a,"b\nb",c\n')
    for i in range(30000):
        f.write('%d,"%s",%r\n' % (random.randint(-99, 99), "x\n1,2,3\n" * random.randint(0, 3), random.random()))
PYEOF
run() { local n=$1; shift
  if [ "$n" = 1 ]; then "$RUN" stats "$T/q.csv" --format json "$@"
  else mpirun --oversubscribe -n "$n" "$RUN" stats "$T/q.csv" --format json "$@"; fi; }
run 1 --tasks 1 --exact > "$T/ref.json" 2>/dev/null || { echo "not ok - stats baseline run failed"; exit 1; }
for n in 1 2 4; do
  for t in 1 3 17 100; do
    if ! run "$n" --tasks "$t" > "$T/r$n-t$t.json" 2> "$T/err"; then
      echo "not ok - stats $n ranks $t tasks: exit $? $(head -2 "$T/err")"; fail=1; continue; fi
    if ! run "$n" --tasks "$t" --exact > "$T/o.json" 2> "$T/err"; then
      echo "not ok - stats --exact $n ranks $t tasks: exit $? $(head -2 "$T/err")"; fail=1; continue; fi
    if $PY - "$T/ref.json" "$T/o.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p))["columns"] for p in sys.argv[1:3])
assert list(a) == list(b), (list(a), list(b))
for c in a:
    for k in a[c]:
        x, y = a[c][k], b[c][k]
        if k in ("mean", "std"):
            assert abs(x - y) <= 1e-12 * abs(x), (c, k, x, y)
        else:
            assert x == y, (c, k, x, y)
PYEOF
    then echo "ok - stats $n ranks, $t tasks: same answer as 1 rank 1 task"
    else echo "not ok - stats $n ranks, $t tasks differs"; fail=1; fi
  done
done
for t in 1 3 17 100; do
  if cmp -s "$T/r1-t$t.json" "$T/r2-t$t.json" && cmp -s "$T/r1-t$t.json" "$T/r4-t$t.json"; then
    echo "ok - stats $t tasks: bit-identical output at 1, 2, 4 ranks"
  else echo "not ok - stats $t tasks: output differs between rank counts"; fail=1; fi
done
# sketch quantiles: the true rank of each answer within 0.5% of n of q*(n-1)
if /usr/bin/python3 - "$T/q.csv" "$T"/r*-t*.json <<'PYEOF'
import bisect, json, sys
import pandas as pd
d = pd.read_csv(sys.argv[1], float_precision="round_trip")
for path in sys.argv[2:]:
    m = json.load(open(path))["columns"]
    for c in m:
        v = sorted(d[c].dropna().tolist()); n = len(v)
        for q in (0.25, 0.5, 0.75):
            x = m[c]["%d%%" % int(q * 100)]
            lo, hi = bisect.bisect_left(v, x), bisect.bisect_right(v, x)
            t = q * (n - 1)
            dist = 0 if lo - 1 <= t <= hi else min(abs(lo - 1 - t), abs(t - hi))
            assert dist <= 0.005 * n, (path, c, q, x, dist, n)
PYEOF
then echo "ok - stats sketch quantiles within 0.5% rank error at every rank/task count"
else echo "not ok - stats sketch quantile rank error"; fail=1; fi
# Default ranges (no --tasks): 16 MiB, then an eighth of what is left down
# to 1 MiB at the end.  The cuts depend on the file only, so the output is
# bit-identical at 1 and 2 ranks, and the --exact answer is the one-task one.
$PY - "$T/big.csv" <<'PYEOF'
import random, sys
random.seed(5)
with open(sys.argv[1], "w") as f:
    f.write("x,y\n")
    for i in range(400000):
        f.write("%d,%.4f\n" % (random.randint(-10**6, 10**6), random.random()))
PYEOF
want=$($PY -c '
import os, sys
size = os.path.getsize(sys.argv[1]); off = len(open(sys.argv[1], "rb").readline()); n = 0
while off < size:
    off += min(16 << 20, max((size - off) // 8, 1 << 20)); n += 1
print(n)' "$T/big.csv")
"$RUN" stats "$T/big.csv" --format json --exact > "$T/g1.json" 2> "$T/g1.err"; r1=$?
mpirun --oversubscribe -n 2 "$RUN" stats "$T/big.csv" --format json --exact > "$T/g2.json" 2> "$T/g2.err"; r2=$?
"$RUN" stats "$T/big.csv" --format json --exact --tasks 1 > "$T/g0.json" 2>/dev/null
got=$(grep -o '^mpc-run stats: [0-9]* tasks' "$T/g2.err" | grep -o '[0-9]*')
if [ $r1 = 0 ] && [ $r2 = 0 ] && [ "$got" = "$want" ] && [ "$want" -gt 1 ] && cmp -s "$T/g1.json" "$T/g2.json" &&
   $PY - "$T/g0.json" "$T/g1.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p))["columns"] for p in sys.argv[1:3])
for c in a:
    for k in a[c]:
        x, y = a[c][k], b[c][k]
        assert (abs(x - y) <= 1e-12 * abs(x)) if k in ("mean", "std") else x == y, (c, k, x, y)
PYEOF
then echo "ok - stats default ranges: $got shrinking ranges, same output at 1 and 2 ranks, exact answer as one task"
else echo "not ok - stats default ranges: exit $r1/$r2, $got tasks (want $want)"; fail=1; fi
exit $fail
