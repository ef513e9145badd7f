#!/bin/bash
# Alternating single runs of llama-bench and edgelm bench (-r 1 each, ROUNDS rounds, the first engine
# changing every round) on the same files and 2 threads, with the best and the median of each engine.
# Single runs of one engine against the other mislead here: the machine's memory bandwidth moves from
# minute to minute and llama.cpp's decode is bimodal (docs/performance.md). Each edgelm decode run
# also prints the plain read of the weights of the same minute.
#   ROUNDS   rounds per test (default 5)
#   TYPES    which bench-1b files (default "q4_0 q8_0")
#   TESTS    llama-bench test flags, ';'-separated (default "-p 512 -n 0;-p 0 -n 64")
#   KV       edgelm's cache type (default f16, llama-bench's)
#   KERNELS  hold edgelm to these CPU features (e.g. avx2,fma), to pair with a llama.cpp built
#            without AVX-512 in LLAMA_BIN (docs/performance.md, "Reference build")
set -u
. "$(dirname "$0")/common.sh"
need llama-bench
ROUNDS=${ROUNDS:-5}
TYPES=${TYPES:-q4_0 q8_0}
TESTS=${TESTS:--p 512 -n 0;-p 0 -n 64}
KV=${KV:-f16}
KERNELS=${KERNELS:-}
log_to "${OUT:-compare-alternate-$(date -u +%H%M).log}"
echo "# $(date -u) $(nproc) cpus; $(load)"
grep -m1 "model name" /proc/cpuinfo
echo "edgelm: $EDGELM ${KERNELS:+--kernels $KERNELS}; llama.cpp: $LLAMA_BIN"
ERR=$(mktemp); trap 'rm -f "$ERR"' EXIT

# tps: the t/s of the first test row of a markdown table (llama-bench -o md and edgelm bench agree).
tps() { awk -F'|' '$0 ~ /\| *(pp|tg)[0-9]/ { split($(NF-1), a, " "); print a[1]; exit }'; }
# stats: "best B median M" of the numbers on stdin.
stats() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "best %.2f median %.2f", v[NR], m }'; }

IFS=';' read -r -a tests <<< "$TESTS"
for T in $TYPES; do
  F=$MODELS/bench-1b-$T.gguf
  for test in "${tests[@]}"; do
    echo; echo "## $T $test: llama-bench -m $F -t 2 $test -r 1 | edgelm bench --model $F $test -t 2 -r 1 --kv-type $KV ${KERNELS:+--kernels $KERNELS}"
    L=(); E=()
    for r in $(seq "$ROUNDS"); do
      runL() { L+=("$("$LLAMA_BIN/llama-bench" -m "$F" -t 2 $test -r 1 -o md 2>/dev/null | tps)"); }
      runE() {
        # shellcheck disable=SC2086
        E+=("$("$EDGELM" bench --model "$F" $test -t 2 -r 1 --kv-type "$KV" ${KERNELS:+--kernels "$KERNELS"} 2>"$ERR" | tps)")
      }
      if [ $((r % 2)) = 1 ]; then runL; runE; else runE; runL; fi
      read=$(grep -o "plain read[^:]*: [0-9.]* GB/s" "$ERR" | grep -o "[0-9.]* GB/s")
      echo "round $r: llama.cpp ${L[-1]} t/s, edgelm ${E[-1]} t/s${read:+ (plain read $read)}; $(load)"
    done
    sl=$(printf '%s\n' "${L[@]}" | stats); se=$(printf '%s\n' "${E[@]}" | stats)
    echo "llama.cpp: $sl"; echo "edgelm:    $se"
    echo "$sl $se" | awk '{ if ($2 > 0 && $4 > 0) printf "edgelm / llama.cpp: best %.2fx, median %.2fx\n", $6 / $2, $8 / $4 }'
  done
done
