#!/usr/bin/env bash
# cmd job: each task's stdout and stderr arrive whole, never interleaved with
# another task's, under load (many tasks writing large outputs in many small
# writes), singleton and under mpirun -n 3.
set -u
RUN="${MPC_BUILD:?}/bin/mpc-run"
if [ ! -x "$RUN" ]; then echo "# SKIP cmd_output: $RUN not built"; exit 0; fi
T=$(mktemp -d /tmp/mpc_e2e_cmd.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; [ $# -gt 1 ] && printf '#   %s\n' "${@:2}"; }

# Task k writes 4000 lines "k" to stdout and 1000 lines "k" to stderr,
# alternating, each line its own write(2) (so tasks really overlap).
TPL='i=0; while [ $i -lt 1000 ]; do echo {}; echo {}; echo {} >&2; echo {}; echo {}; i=$((i+1)); done'
blocks() { # number of runs of equal lines, lines per run must be $2
  awk -v per="$2" 'NR == 1 || $0 != prev { if (NR > 1 && n != per) bad = 1; runs++; n = 0 }
       { prev = $0; n++ } END { if (n != per) bad = 1; print (bad ? "bad" : runs) }' "$1"
}
for mode in singleton mpirun; do
  if [ $mode = singleton ]; then pre=(); else pre=(mpirun -n 3 --oversubscribe); fi
  "${pre[@]}" "$RUN" cmd -w 2 "$TPL" ::: $(seq 24) >"$T/out" 2>"$T/err.all"
  rc=$?
  grep -E '^[0-9]+$' "$T/err.all" > "$T/err"
  o=$(blocks "$T/out" 4000); e=$(blocks "$T/err" 1000)
  if [ $rc -eq 0 ] && [ "$o" = 24 ] && [ "$e" = 24 ]; then
    pass "$mode: 24 tasks x 4000 lines, stdout and stderr each in 24 whole blocks"
  else
    fail "$mode: 24 tasks x 4000 lines, stdout and stderr each in 24 whole blocks" "rc=$rc stdout=$o stderr=$e"
  fi
  # The same order on both streams: a task's stdout block and stderr block.
  if [ "$(uniq "$T/out")" = "$(uniq "$T/err")" ]; then pass "$mode: stdout and stderr blocks in the same task order"
  else fail "$mode: stdout and stderr blocks in the same task order"; fi
done

# One big output (16 MiB) through the whole path.
"$RUN" cmd 'head -c 16777216 /dev/zero | tr "\0" {}' ::: x >"$T/big" 2>/dev/null
if [ "$(wc -c < "$T/big")" -eq 16777216 ] && [ -z "$(tr -d x < "$T/big" | head -c 1)" ]; then
  pass "a 16 MiB output arrives complete"
else fail "a 16 MiB output arrives complete" "size $(wc -c < "$T/big")"; fi
