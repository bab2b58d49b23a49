#!/usr/bin/env bash
# --trace FILE.json and --timeline FILE.png on 2 ranks x 2 workers with
# failures and retries: the trace is valid JSON with exactly one complete
# event per attempt in the journal (same keys, statuses, attempts, ranks,
# pids); the PNG has one row band per worker and every bar in its status
# colour where the trace puts it.
set -u
. "$(dirname "$0")/lib_mpcrun.bash"

mkdir -p "$TMP/mark"
run t1 180 mpirun --oversubscribe -n 2 "$RUN" --trace "$TMP/t.json" --timeline "$TMP/t.png" \
  --journal "$TMP/j" --json "$TMP/s.json" chaos --tasks 60 --seed 11 --sleep 10 \
  --fail 0.1 --segv 0.1 --flaky 0.2 --mark "$TMP/mark" -w 2 --retries 1
check "run with failures: exit 1" [ "$(rc_of t1)" = 1 ]
check "some tasks were retried" /usr/bin/python3 -c '
import json, sys; assert json.load(open(sys.argv[1]))["retried"] > 0' "$TMP/s.json"
check "no temporary file left" [ "$(ls "$TMP" | grep -c '\.tmp\.')" = 0 ]

check "--trace: valid JSON, one X event per journaled attempt, same attempts" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["displayTimeUnit"] == "ms"
ev = d["traceEvents"]
x = [e for e in ev if e["ph"] == "X"]
m = [e for e in ev if e["ph"] == "M"]
jl = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if not l.startswith("#")]
ran = [f for f in jl if f[5] != "0"]            # attempts that ran (pid != 0)
assert len(x) == len(ran) == len(jl), (len(x), len(ran), len(jl))
s = json.load(open(sys.argv[3]))
assert len(x) == s["tasks"] + s["retried"], (len(x), s)
tj = sorted((f[0], f[1], int(f[2]), int(f[3]), int(f[5])) for f in ran)
tt = sorted((e["name"], e["cat"], e["args"]["attempt"], e["pid"], e["args"]["worker_pid"]) for e in x)
assert tj == tt, (tj[:3], tt[:3])
assert {e["pid"] for e in x} == {0, 1}, "both ranks"
assert {(e["pid"], e["tid"]) for e in x} <= {(0, 0), (0, 1), (1, 0), (1, 1)}
assert all(e["ts"] >= 0 and e["dur"] > 0 for e in x)
assert any(e["args"]["attempt"] == 2 for e in x), "retries are separate events"
names = {(e["name"], e["pid"], e.get("tid")) for e in m}
assert ("process_name", 0, 0) in names and ("process_name", 1, 0) in names
assert sum(1 for e in m if e["name"] == "thread_name") == 4
# A worker runs one attempt at a time.
by = {}
for e in x:
    by.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
for v in by.values():
    v.sort()
    assert all(a[1] <= b[0] + 1 for a, b in zip(v, v[1:])), v
' "$TMP/t.json" "$TMP/j" "$TMP/s.json"

check "--timeline PNG: 1200 px wide, 4 row bands, bars in their status colours" /usr/bin/python3 -c '
import json, sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
W, H = im.size
assert W == 1200 and H == 16 + 3 * 2 + 4 * 14, im.size
px = im.load()
sep, white = (64, 64, 64), (255, 255, 255)
bands, prev, tops = 0, None, []
for y in range(16, H):
    p = px[2, y]
    if p not in (sep, white) and p != prev:
        bands += 1
        tops.append(y)
    prev = p
assert bands == 4, bands
col = {"ok": (44, 160, 44), "error": (255, 127, 14), "crashed": (214, 39, 40),
       "exited": (188, 189, 34), "timeout": (148, 103, 189), "oom": (140, 86, 75),
       "canceled": (127, 127, 127)}
wall = json.load(open(sys.argv[3]))["wall"]
x = [e for e in json.load(open(sys.argv[2]))["traceEvents"] if e["ph"] == "X"]
checked = 0
for e in x:
    s, t = e["ts"] / 1e6, (e["ts"] + e["dur"]) / 1e6
    x0, x1 = 10 + int(s / wall * 1190), 10 + int(t / wall * 1190)
    if x1 - x0 < 4:
        continue
    y = tops[e["pid"] * 2 + e["tid"]] + 7
    got = px[(x0 + x1) // 2, y]
    assert got == col[e["cat"]], (e, got)
    checked += 1
assert checked >= len(x) // 2, (checked, len(x))
' "$TMP/t.png" "$TMP/t.json" "$TMP/s.json"

# Keys with quotes, backslashes, tabs and bytes that are not UTF-8 (the cmd
# job's keys are its command lines) still give valid JSON with those names.
run c1 60 "$RUN" cmd -w 2 --trace "$TMP/c.json" 'echo {}' ::: 'a"q' 'b\s' $'c\xffd' $'t\tx'
check "--trace with awkward keys: valid JSON, names escaped" /usr/bin/python3 -c '
import json, sys
x = sorted(e["name"] for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X")
assert x == sorted(["echo '"'"'a\"q'"'"'", "echo '"'"'b\\s'"'"'", "echo '"'"'c\ufffdd'"'"'", "echo '"'"'t\tx'"'"'"]), x
' "$TMP/c.json"

# A text --timeline is unchanged; an unwritable --trace is a set-up error.
run c2 60 "$RUN" chaos --tasks 5 -w 1 --timeline "$TMP/tl.tsv"
check "--timeline FILE (not .png): text, header and one line per attempt" \
  [ "$(head -n1 "$TMP/tl.tsv" | cut -f1)" = seq -a "$(wc -l <"$TMP/tl.tsv")" = 6 ]
run c3 60 mpirun --oversubscribe -n 2 "$RUN" chaos --tasks 5 -w 1 --trace /nonexistent-dir/t.json
check "unwritable --trace: exit 2, named" [ "$(rc_of c3)" = 2 ] 
check "unwritable --trace: message" grep -q -- "--trace /nonexistent-dir/t.json" "$TMP/c3.err"
# --json too is checked before any task runs, not found out at the end.
run c5 60 "$RUN" chaos --tasks 5 -w 1 --json /nonexistent-dir/s.json
check "unwritable --json: exit 2, named before running" \
  [ "$(rc_of c5)" = 2 -a ! -s "$TMP/c5.out" ]
check "unwritable --json: message" grep -q -- "--json /nonexistent-dir/s.json" "$TMP/c5.err"
run c4 60 "$RUN" chaos --tasks 20 -w 2 --debug-protocol
check "--debug-protocol logs the protocol" grep -q "all done: STOP" "$TMP/c4.err"
check "no process left" wait_gone 20
exit 0
