#!/usr/bin/env bash
# wordcount: equal to the C-locale tr/sort/uniq pipeline on test corpora, at
# 1, 2 and 4 ranks and with big files split into many ranges; an unreadable
# file fails alone with a clear message (exit 1, other counts still written).
set -u
RUN="$MPC_BUILD/bin/mpc-run"
[ -x "$RUN" ] || { echo "not ok - wordcount_reference: $RUN missing"; exit 1; }
T=$(mktemp -d /tmp/mpc-e2e-wc-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
mkdir -p "$T/c/sub/deep"
printf 'The cat sat on the mat.\r\nThe END\n' > "$T/c/a.txt"
printf 'caf\303\251 CAF\303\211 na\303\257ve x-y_z 3.14 \316\261\316\262\316\263\n' > "$T/c/sub/b.txt"
: > "$T/c/sub/empty.txt"
for i in $(seq 1 20000); do echo "word$((i % 101)) Alpha beta, GAMMA; $i"; done > "$T/c/sub/deep/big.txt"
cp /usr/share/common-licenses/GPL-3 "$T/c/gpl.txt" 2>/dev/null || true
ref() { # files... -> word<TAB>count sorted by count desc, word asc (bytes)
  cat "$@" | LC_ALL=C tr -cs 'A-Za-z0-9\200-\377' '\n' | LC_ALL=C grep -av '^$' | LC_ALL=C sort | LC_ALL=C uniq -c \
    | awk '{print $2"\t"$1}' | LC_ALL=C sort -t"$(printf '\t')" -k2,2nr -k1,1
}
ref $(find "$T/c" -type f | sort) > "$T/ref.tsv"
for n in 1 2 4; do
  for chunk in 64K 1K; do
    if [ $n = 1 ]; then L=(); else L=(mpirun --oversubscribe -n $n); fi
    if "${L[@]}" "$RUN" wordcount "$T/c" --out "$T/o.tsv" --chunk-size $chunk --top 3 > "$T/top" 2> "$T/err" \
       && cmp -s "$T/ref.tsv" "$T/o.tsv"; then
      echo "ok - wordcount $n ranks, chunk $chunk: equals tr|sort|uniq"
    else echo "not ok - wordcount $n ranks, chunk $chunk: $(head -2 "$T/err")"; fail=1; fi
  done
done
head -3 "$T/ref.tsv" | awk -F'\t' '{print $2"\t"$1}' > "$T/reftop"
cmp -s "$T/reftop" "$T/top" && echo "ok - wordcount --top 3 prints count<TAB>word" || { echo "not ok - --top output"; fail=1; }
# --lower (ASCII) against tr A-Z a-z
LC_ALL=C tr 'A-Z' 'a-z' < "$T/c/a.txt" > "$T/lower.txt"
"$RUN" wordcount "$T/c/a.txt" --lower --out "$T/l.tsv" > /dev/null 2>&1
ref "$T/lower.txt" > "$T/lref.tsv"
cmp -s "$T/l.tsv" "$T/lref.tsv" && echo "ok - wordcount --lower equals tr A-Z a-z first" || { echo "not ok - --lower"; fail=1; }
# an unreadable file (dangling link) fails alone
ln -s nowhere "$T/c/dangling.txt"
mpirun --oversubscribe -n 2 "$RUN" wordcount "$T/c" --out "$T/o.tsv" > /dev/null 2> "$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "dangling.txt: No such file or directory" "$T/err" && cmp -s "$T/ref.tsv" "$T/o.tsv"; then
  echo "ok - wordcount: unreadable file fails alone (exit 1, message, other counts intact)"
else echo "not ok - wordcount unreadable file: exit $rc $(head -3 "$T/err")"; fail=1; fi
exit $fail
