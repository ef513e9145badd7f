#!/bin/bash
# Thread scaling, Q4_0: 1 then 2 threads, edgelm then llama-bench.
set -u
. "$(dirname "$0")/common.sh"
need llama-bench
log_to "${OUT:-compare-scaling-$(date -u +%H%M).log}"
F=$MODELS/bench-1b-q4_0.gguf
echo "# $(date -u); $(load)"
for T in 1 2; do
  echo "## edgelm -t $T"; "$EDGELM" bench --model "$F" -p 128 -n 64 -r 3 -t $T | grep '^| llama'
  echo "## llama-bench -t $T"; "$LLAMA_BIN/llama-bench" -m "$F" -p 128 -n 64 -r 3 -t $T 2>/dev/null | grep '^| llama'
done
load
