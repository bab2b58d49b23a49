#!/usr/bin/env bash
# cmd job: failing, crashing and hanging commands are accounted for (exit
# code, joblog, output), hung commands' process groups are killed, --retries
# re-runs failed commands, and the joblog reads back as GNU parallel's format.
set -u
RUN="${MPC_BUILD:?}/bin/mpc-run"
if [ ! -x "$RUN" ]; then echo "# SKIP cmd_failures: $RUN not built"; exit 0; fi
T=$(mktemp -d /tmp/mpc_e2e_cmd.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; [ $# -gt 1 ] && printf '#   %s\n' "${@:2}"; }
field() { awk -F'\t' -v c="$2" -v k="$3" 'NR > 1 && $1 == k { print $c }' "$1"; } # log col seq
no_leftover() { # $1: a pattern for the whole command line of processes that must be gone
  # (anchored: a launcher whose arguments mention the command must not match)
  local i
  for i in $(seq 30); do pgrep -f "$1" >/dev/null || return 0; sleep 0.1; done
  local p; for p in $(pgrep -f "$1"); do kill -9 "$p" 2>/dev/null; done
  return 1
}

CASES='case {} in ok) echo fine;; fail) echo bad >&2; exit 3;; crash) echo pre-crash; kill -SEGV $$;; hang) echo hanging; exec sleep 31.7;; esac'
for mode in singleton mpirun; do
  if [ $mode = singleton ]; then pre=(); else pre=(mpirun -n 3 --oversubscribe); fi
  rm -f "$T/log"
  "${pre[@]}" "$RUN" cmd -w 2 --timeout 3 --joblog "$T/log" "$CASES" ::: ok fail crash hang >"$T/out" 2>"$T/err"
  rc=$?
  [ $rc -eq 1 ] && pass "$mode: exit code 1 when tasks fail" || fail "$mode: exit code 1 when tasks fail" "rc=$rc"
  got="$(field "$T/log" 7 1)/$(field "$T/log" 8 1) $(field "$T/log" 7 2)/$(field "$T/log" 8 2) $(field "$T/log" 7 3)/$(field "$T/log" 8 3) $(field "$T/log" 7 4)/$(field "$T/log" 8 4)"
  if [ "$got" = "0/0 3/0 0/11 -1/9" ]; then pass "$mode: joblog Exitval/Signal for ok, exit 3, SIGSEGV, --timeout"
  else fail "$mode: joblog Exitval/Signal for ok, exit 3, SIGSEGV, --timeout" "got $got, want 0/0 3/0 0/11 -1/9"; fi
  if grep -qx fine "$T/out" && grep -qx pre-crash "$T/out" && grep -qx bad "$T/err"; then
    pass "$mode: output of failed and crashed commands is delivered"
  else fail "$mode: output of failed and crashed commands is delivered"; fi
  no_leftover '^sleep 31[.]7$' && pass "$mode: the hung command's process group was killed" ||
    fail "$mode: the hung command's process group was killed"
done

# --task-timeout: the job kills the group itself and keeps the output.
"$RUN" cmd --task-timeout 1 --joblog "$T/log" 'echo start; sleep 32.3 & sleep 32.3' ::: x >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(cat "$T/out")" = start ] && [ "$(field "$T/log" 7 1)/$(field "$T/log" 8 1)" = -1/15 ]; then
  pass "--task-timeout: output kept, joblog -1/15"
else fail "--task-timeout: output kept, joblog -1/15" "rc=$rc"; fi
no_leftover '^sleep 32[.]3$' && pass "--task-timeout: background children killed too" ||
  fail "--task-timeout: background children killed too"

# --retries: a command that fails once, then succeeds.
"$RUN" cmd -w 2 --retries 2 --joblog "$T/log" \
  "n=\$(cat $T/count.{} 2>/dev/null || echo 0); echo \$((n+1)) > $T/count.{}; [ \$n -ge 1 ]" ::: a b >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$T/count.a")" = 2 ] && [ "$(field "$T/log" 7 1)" = 0 ]; then
  pass "--retries re-runs a failed command"
else fail "--retries re-runs a failed command" "rc=$rc count=$(cat "$T/count.a" 2>/dev/null)"; fi

# The joblog in GNU parallel's format, read back by a separate parser.
"$RUN" cmd -w 2 --joblog "$T/log" 'printf "%s\n" {}; exit $(({} % 2))' ::: $(seq 25) >/dev/null 2>&1
if /usr/bin/python3 - "$T/log" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "log must end with a newline"
assert lines[0] == "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand", lines[0]
seen = {}
for l in lines[1:-1]:
    f = l.split("\t", 8)
    assert len(f) == 9, l
    seq = int(f[0])
    assert re.fullmatch(r"\d+\.\d{3}", f[2]) and re.fullmatch(r" *\d+\.\d{3}", f[3]), l
    assert f[4] == "0" and int(f[5]) == len(str(seq)) + 1, l
    assert int(f[6]) == seq % 2 and f[7] == "0", l
    assert f[8] == 'printf "%%s\\n" %d; exit $((%d %% 2))' % (seq, seq), l
    seen[seq] = 1
assert sorted(seen) == list(range(1, 26)), sorted(seen)
PY
then pass "joblog parses back: header, 9 fields, 3-decimal times, Receive, Exitval, Command"
else fail "joblog parses back: header, 9 fields, 3-decimal times, Receive, Exitval, Command"; fi
