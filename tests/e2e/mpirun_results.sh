#!/usr/bin/env bash
# mpc-run gives the same gathered results whatever the launch: singleton,
# -n 1, -n 2, -n 4, and -n 3 over TCP; with the guided, dynamic and static
# schedules; with --ordered.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

ARGS=(chaos --tasks 300 --seed 11 --fail 0.05 --size 40 --retries 1)
run ref 120 "$RUN" "${ARGS[@]}" -w 2
REF=$(field ref checksum)
check "singleton run prints a checksum" [ -n "$REF" ]
check "singleton run: exit 1 (some tasks fail by design)" [ "$(rc_of ref)" = 1 ]
check "singleton run gathers every task once" grep -q "gathered=300 .*missing=0 duplicates=0 bad_output=0" "$TMP/ref.out"
NFAIL_EXPECT=$("$RUN" "${ARGS[@]}" --list-fates 2>/dev/null | grep -c ' fail$')
check "failed count is the predicted one ($NFAIL_EXPECT)" grep -q "error=$NFAIL_EXPECT " "$TMP/ref.out"
check "summary on stderr counts tasks" grep -q "300 tasks: $((300 - NFAIL_EXPECT)) ok, $NFAIL_EXPECT failed, $NFAIL_EXPECT retried" "$TMP/ref.err"

i=0
for launch in "-n 1" "-n 2" "-n 4" "-n 3 --mca btl self,tcp" "-n 2 :dynamic" "-n 3 :static" "-n 2 :ordered"; do
  i=$((i + 1))
  extra=()
  case $launch in
  *:dynamic) extra=(--schedule dynamic) ;;
  *:static) extra=(--schedule static) ;;
  *:ordered) extra=(--ordered) ;;
  esac
  mpiargs=${launch%%:*}
  # shellcheck disable=SC2086
  run "r$i" 180 mpirun --oversubscribe $mpiargs "$RUN" "${ARGS[@]}" -w 1 "${extra[@]}"
  sum=$(field "r$i" checksum)
  check "mpirun $launch: same checksum as singleton ($sum)" [ "${sum:-none}" = "$REF" ]
  check "mpirun $launch: exit 1" [ "$(rc_of "r$i")" = 1 ]
  check "mpirun $launch: every task once" grep -q "gathered=300 .*missing=0 duplicates=0 bad_output=0" "$TMP/r$i.out"
done
check "--ordered: gather saw task order" grep -q "in_order=yes" "$TMP/r7.out"
# Work was spread: with 4 ranks every rank ran tasks.
for r in 0 1 2 3; do
  check "-n 4: rank $r ran tasks" grep -Eq "rank $r \(.*\): [1-9][0-9]* tasks" "$TMP/r3.err"
done
# Default keys are FNV-1a-64 of each task's input (chaos: its index as 8
# little-endian bytes), made in groups on the master: every one must be right.
cat >"$TMP/chaoskey.py" <<'PYEOF'
import struct
def key(i):
    """The default key of chaos task i: FNV-1a-64 of its 8-byte index, in hex."""
    h = 0xcbf29ce484222325
    for c in struct.pack("<Q", i):
        h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
    return "%016x" % h
PYEOF
for launch in singleton mpirun; do
  pre=()
  [ "$launch" = mpirun ] && pre=(mpirun --oversubscribe -n 2)
  run "k$launch" 120 "${pre[@]}" "$RUN" chaos --tasks 1000 -w 1 --journal "$TMP/k$launch.j"
  check "$launch: every default key is the hash of its task's input" /usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[2])
from chaoskey import key
want = {key(i) for i in range(1000)}
got = [l.split("\t")[0] for l in open(sys.argv[1]) if not l.startswith("#")]
assert len(got) == 1000 and set(got) == want, (len(got), len(set(got) - want))
' "$TMP/k$launch.j" "$TMP"
done
# chaos reads no keys (MPC_JOB_KEYS_UNUSED): without a journal or trace the
# master makes a default key only for a failure's report.  Those must be the
# hashes of the failed tasks' inputs, as in a journaled run.
run klazy 120 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 300 --seed 5 --fail 0.1 \
  --retries 0 -w 1 --json "$TMP/klazy.json"
check "lazy keys: exit 1 (some tasks failed)" [ "$(rc_of klazy)" = 1 ]
# (inputs of up to 8 bytes live in the task record until a key is made: the
# failures' gather() must still see their own inputs)
check "lazy keys: every task gathered once, as itself" \
  grep -q "gathered=300 .* missing=0 duplicates=0 bad_output=0" "$TMP/klazy.out"
check "lazy keys: same checksum as singleton" [ "$(field klazy checksum)" = \
  "$("$RUN" chaos --tasks 300 --seed 5 --fail 0.1 --retries 0 2>/dev/null | grep -o 'checksum=.*' | cut -d= -f2)" ]
check "lazy keys: each failure's key is the hash of its task's input" /usr/bin/python3 -c '
import json, re, sys
sys.path.insert(0, sys.argv[2])
from chaoskey import key
s = json.load(open(sys.argv[1]))
assert s["failed"] > 0 and len(s["failures"]) == s["failed"], s
for f in s["failures"]:
    i = int(re.search(r"task (\d+) fails", f["message"]).group(1))
    assert f["key"] == key(i), (f, key(i))
' "$TMP/klazy.json" "$TMP"
check "no process left" wait_gone 20
exit 0
