#!/usr/bin/env bash
# stats: malformed input gives an error naming file and line, and exit 1,
# whatever the number of ranks and ranges.  Usage errors exit 2.
set -u
RUN="$MPC_BUILD/bin/mpc-run"
[ -x "$RUN" ] || { echo "not ok - stats_errors: $RUN missing"; exit 1; }
T=$(mktemp -d /tmp/mpc-e2e-stats-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
printf 'a,b\n1,2\n3,4\n5,6,7\n8,9\n' > "$T/ragged.csv"
printf 'a,b\n1,2\n"x\ny",4\n5\n' > "$T/short.csv"
printf 'a,b\n1,2\n3,"oops\n4,5\n6,7\n' > "$T/unterm.csv"
printf 'a,b\n1,2\n3,4\n5,\0006\n' > "$T/nul.csv"
printf 'a,b\n1,2\n3,4\n5,\377\n' > "$T/badutf.csv"
expect() { # file line-and-message launcher...
  local f=$1 want=$2; shift 2
  "$@" "$RUN" stats "$T/$f" --tasks 3 > /dev/null 2> "$T/err"; local rc=$?
  if [ $rc -eq 1 ] && grep -qF "$T/$f:$want" "$T/err"; then echo "ok - stats $f ($*): exit 1, '$want'"
  else echo "not ok - stats $f ($*): exit $rc, stderr: $(head -3 "$T/err")"; fail=1; fi
}
for l in env "mpirun --oversubscribe -n 2"; do
  expect ragged.csv "4: row has 3 fields, header has 2" $l
  expect short.csv "5: row has 1 field, header has 2" $l
  expect unterm.csv "3: unterminated quoted field" $l
  expect nul.csv "4: NUL byte" $l
  expect badutf.csv "4: invalid UTF-8" $l
done
"$RUN" stats "$T/ragged.csv" --columns nope > /dev/null 2> "$T/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "nope" "$T/err"; then echo "ok - stats unknown column: exit 2"
else echo "not ok - stats unknown column: exit $rc"; fail=1; fi
"$RUN" stats "$T/missing.csv" > /dev/null 2>&1; rc=$?
if [ $rc -eq 2 ]; then echo "ok - stats missing file: exit 2"; else echo "not ok - stats missing file: exit $rc"; fail=1; fi
exit $fail
