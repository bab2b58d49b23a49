#!/usr/bin/env bash
# cmd job end to end: replacement strings on awkward names (against GNU
# parallel), arguments from stdin / :::: / -a, --dry-run, --results, -k, and
# the same results in a singleton run and under mpirun -n 3.
set -u
RUN="${MPC_BUILD:?}/bin/mpc-run"
if [ ! -x "$RUN" ]; then echo "# SKIP cmd_basic: $RUN not built"; exit 0; fi
T=$(mktemp -d /tmp/mpc_e2e_cmd.XXXXXX)
trap 'rm -rf "$T"' EXIT
MPIRUN=(mpirun -n 3 --oversubscribe)
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; [ $# -gt 1 ] && printf '#   %s\n' "${@:2}"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got:  $(printf %q "$2")" "want: $(printf %q "$3")"; fi; }

# Awkward names: spaces, quotes, $, backticks, globs, a leading dash, dots.
cat > "$T/names" <<'NAMES'
a b/c d.txt
it's/"q".x
$HOME/`id`.sh
-n
*
back\slash.e
tab	here/x;y&z|w.tar.gz
.hidden
dir/
/abs/file.
NAMES
TPL='printf "<%s>" {} {.} {/} {//} {/.} {#}; echo'
got=$("$RUN" cmd -w 2 -k "$TPL" :::: "$T/names" 2>"$T/err")
want=$(parallel -k "$TPL" :::: "$T/names")
check "replacement strings {} {.} {/} {//} {/.} {#} on awkward names match GNU parallel" "$got" "$want"
got=$("${MPIRUN[@]}" "$RUN" cmd -w 2 -k "$TPL" :::: "$T/names" 2>"$T/err")
check "the same under mpirun -n 3" "$got" "$want"

# {%}: a worker slot, 1..workers.
got=$("$RUN" cmd -w 2 'echo {%}' ::: a b c d e f g h 2>/dev/null | sort -u | tr '\n' ' ')
case "$got" in "1 " | "1 2 " | "2 ") pass "{%} is a worker slot in 1..2" ;; *) fail "{%} is a worker slot in 1..2" "got $got" ;; esac

# After --, words like -n belong to the template, not to mpc-run.
got=$("$RUN" cmd -w 2 -k -- printf '%s' -n {} ::: a b 2>/dev/null)
check "-- protects template words from mpc-run's options" "$got" "-na-nb"

# Newlines in an argument stay one argument.
got=$("$RUN" cmd 'printf "[%s]" {}' ::: "$(printf 'two\nlines')" 2>/dev/null)
check "an argument with a newline is one argument" "$got" "$(printf '[two\nlines]')"

# Arguments from stdin (read by the master only), from :::: and -a.
got=$(seq 5 | "$RUN" cmd -k 'echo {}' 2>/dev/null | tr '\n' ' ')
check "arguments from stdin" "$got" "1 2 3 4 5 "
got=$(seq 5 | "${MPIRUN[@]}" "$RUN" cmd -k 'echo {}' 2>/dev/null | tr '\n' ' ')
check "arguments from stdin under mpirun" "$got" "1 2 3 4 5 "
printf 'echo one\n\necho two | tr o 0\n' > "$T/tasks"
got=$("$RUN" cmd -k -a "$T/tasks" 2>/dev/null | tr '\n' ' ')
check "-a TASKFILE runs every line as a command" "$got" "one tw0 "
got=$("$RUN" cmd -k 'echo {1}{2}' ::: a b ::: 1 2 2>/dev/null | tr '\n' ' ')
check "two ::: groups: every combination" "$got" "a1 a2 b1 b2 "

# --dry-run prints and runs nothing.
got=$("$RUN" cmd --dry-run "touch $T/made-{}" ::: 'x y' z 2>/dev/null)
check "--dry-run prints the commands" "$got" "touch $T/made-'x y'
touch $T/made-z"
[ ! -e "$T/made-z" ] && pass "--dry-run runs nothing" || fail "--dry-run runs nothing"

# --results DIR.
"$RUN" cmd --results "$T/res" 'echo out {}; echo err {} >&2' ::: 1 2 3 >"$T/out" 2>/dev/null
if [ "$(cat "$T/res/2/stdout")" = "out 2" ] && [ "$(cat "$T/res/3/stderr")" = "err 3" ] &&
   [ "$(cat "$T/res/1/cmd")" = "echo out 1; echo err 1 >&2" ] && [ ! -s "$T/out" ]; then
  pass "--results DIR/<seq>/{stdout,stderr,cmd}"
else fail "--results DIR/<seq>/{stdout,stderr,cmd}"; fi

# -k: input order even when later tasks finish first.
want=$(seq 20)
got=$("$RUN" cmd -w 2 -k 'sleep 0.$(( (21 - {}) % 4 )); echo {}' ::: $(seq 20) 2>/dev/null)
check "-k keeps input order" "$got" "$want"
got=$("${MPIRUN[@]}" "$RUN" cmd -w 2 -k 'sleep 0.$(( (21 - {}) % 4 )); echo {}' ::: $(seq 20) 2>/dev/null)
check "-k keeps input order under mpirun -n 3" "$got" "$want"
got=$("$RUN" cmd -w 2 'echo {}' ::: $(seq 20) 2>/dev/null | sort -n)
check "without -k every task's output arrives" "$got" "$want"

# Singleton and mpirun -n 3 give the same outputs and joblog (minus host/time).
T1=$(mktemp -d "$T/s.XXXX") T3=$(mktemp -d "$T/m.XXXX")
"$RUN" cmd -w 2 -k --joblog "$T1/log" 'echo o{}; echo e{} >&2; exit $(({} % 3))' ::: $(seq 30) >"$T1/out" 2>"$T1/err"
rc1=$?
"${MPIRUN[@]}" "$RUN" cmd -w 2 -k --joblog "$T3/log" 'echo o{}; echo e{} >&2; exit $(({} % 3))' ::: $(seq 30) >"$T3/out" 2>"$T3/err"
rc3=$?
strip() { cut -f1,5-9 "$1" | sort -n; }
grep -E '^e[0-9]+$' "$T1/err" > "$T1/e"; grep -E '^e[0-9]+$' "$T3/err" > "$T3/e"
if cmp -s "$T1/out" "$T3/out" && cmp -s "$T1/e" "$T3/e" && [ "$(strip "$T1/log")" = "$(strip "$T3/log")" ] &&
   [ $rc1 -eq 1 ] && [ $rc3 -eq 1 ] && [ "$(wc -l < "$T1/log")" -eq 31 ]; then
  pass "singleton and mpirun -n 3: same stdout, stderr, joblog, exit code 1"
else
  fail "singleton and mpirun -n 3: same stdout, stderr, joblog, exit code 1" "rc $rc1 / $rc3"
fi
got=$("${MPIRUN[@]}" "$RUN" cmd -w 1 'echo $MPC_RANK' ::: $(seq 12) 2>/dev/null | sort -u | tr -d '\n')
case "$got" in [012]*) pass "MPC_RANK is set (ranks seen: $got)" ;; *) fail "MPC_RANK is set" "got $got" ;; esac
