#!/bin/bash
# One side-by-side run of docs/performance.md: llama-bench and edgelm bench on the same files, the
# same 2 threads, back to back; then edgelm's prefill with llama-bench's f16 cache.
set -u
. "$(dirname "$0")/common.sh"
need llama-bench
log_to "${OUT:-compare-run-$(date -u +%H%M).log}"
echo "# $(date -u) $(uname -r) $(nproc) cpus; $(load)"
grep -m1 "model name" /proc/cpuinfo
echo "edgelm: $($EDGELM version 2>/dev/null || echo "$EDGELM")"
for T in q4_0 q8_0; do
  F=$MODELS/bench-1b-$T.gguf
  echo; echo "## $T: llama-bench -m $F -t 2 -p 512 -n 128 -r 3"
  "$LLAMA_BIN/llama-bench" -m "$F" -t 2 -p 512 -n 128 -r 3 -o md 2>/dev/null
  load
  echo; echo "## $T: edgelm bench --model $F -p 512 -n 128 -t 2 -r 3"
  "$EDGELM" bench --model "$F" -p 512 -n 128 -t 2 -r 3
  load
done
F=$MODELS/bench-1b-q4_0.gguf
echo; echo "## q4_0, llama-bench's cache type: edgelm bench --model $F -p 512 -n 0 -t 2 -r 3 --kv-type f16"
"$EDGELM" bench --model "$F" -p 512 -n 0 -t 2 -r 3 --kv-type f16
load
echo; echo "## q4_0 at depth 2048, llama-bench's f16 cache: llama-bench -m $F -t 2 -p 0 -n 32 -d 2048 -r 3"
"$LLAMA_BIN/llama-bench" -m "$F" -t 2 -p 0 -n 32 -d 2048 -r 3 -o md 2>/dev/null
load
echo; echo "## edgelm bench --model $F -p 0 -n 32 -d 2048 -t 2 -r 3 --kv-type f16, then f32"
"$EDGELM" bench --model "$F" -p 0 -n 32 -d 2048 -t 2 -r 3 --kv-type f16
"$EDGELM" bench --model "$F" -p 0 -n 32 -d 2048 -t 2 -r 3 --kv-type f32
load
# GEMMA2=1 adds the gemma2 shape (bench-gemma2-q4_0.gguf: edgelm synth --shape bench-gemma2): two
# query heads to a key head, head size 256, soft-capping; both engines with the f16 cache.
if [ "${GEMMA2:-}" = 1 ]; then
  F=$MODELS/bench-gemma2-q4_0.gguf
  echo; echo "## gemma2: llama-bench -m $F -t 2 -p 512 -n 128 -r 2, then -p 0 -n 32 -d 2048 -r 2"
  "$LLAMA_BIN/llama-bench" -m "$F" -t 2 -p 512 -n 128 -r 2 -o md 2>/dev/null
  "$LLAMA_BIN/llama-bench" -m "$F" -t 2 -p 0 -n 32 -d 2048 -r 2 -o md 2>/dev/null
  load
  echo; echo "## gemma2: edgelm bench --model $F -p 512 -n 128 -t 2 -r 2 --kv-type f16, then -p 0 -n 32 -d 2048"
  "$EDGELM" bench --model "$F" -p 512 -n 128 -t 2 -r 2 --kv-type f16
  "$EDGELM" bench --model "$F" -p 0 -n 32 -d 2048 -t 2 -r 2 --kv-type f16
  load
fi
