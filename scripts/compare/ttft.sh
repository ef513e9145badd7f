#!/bin/bash
# Time to first token of a long prompt (about 512 tokens) through each server on the same file and 2
# threads, one request at a time, measured by the same client (edgelm bench --socket --json): the
# prefill as a user of the daemon sees it, HTTP and tokenizing included. Every request's prompt starts
# differently, so neither server can reuse a cached prefix.
#   F       the model (default $MODELS/bench-1b-q4_0.gguf)
#   ROUNDS  requests per server (default 5)
#   WORDS   repetitions of the 12-token sentence (default 42: about 512 tokens with the prefix)
set -u
. "$(dirname "$0")/common.sh"
need llama-server
F=${F:-$MODELS/bench-1b-q4_0.gguf}
ROUNDS=${ROUNDS:-5}
WORDS=${WORDS:-42}
LOG=${OUT:-compare-ttft-$(date -u +%H%M).log}
log_to "$LOG"
echo "# $(date -u); $(load)"
BODY=$(for _ in $(seq "$WORDS"); do printf 'The quick brown fox jumps over the lazy dog. '; done)
wait_socket() { for _ in $(seq 120); do [ -S "$1" ] && return; sleep 1; done; }
measure() {
  local r out
  for r in $(seq "$ROUNDS"); do
    out=$("$EDGELM" bench --socket "$1" --clients 1 -n 4 -r 1 --temperature 0 --prompt "Request $r of $$. $BODY" --json)
    echo "$out" | awk -v r="$r" '{ match($0, /"prompt_tokens":[0-9]+/); p = substr($0, RSTART + 16, RLENGTH - 16);
      match($0, /"ttft_s":[0-9.e-]+/); t = substr($0, RSTART + 9, RLENGTH - 9);
      printf "request %d: %s prompt tokens, TTFT %.3f s (%.1f prompt t/s)\n", r, p, t, p / t }'
  done
}
SL=${LOG%.log}
S=/tmp/compare-llama-ttft.sock; rm -f $S
"$LLAMA_BIN/llama-server" -m "$F" -t 2 -np 1 -c 4096 --host $S > "$SL-llama-server.log" 2>&1 &
LP=$!
wait_socket $S
for _ in $(seq 120); do grep -q "listening" "$SL-llama-server.log" && break; sleep 1; done
sleep 2
echo "## llama-server -m $F -t 2 -np 1 -c 4096 --host $S"
measure $S
kill $LP; wait $LP 2>/dev/null

S=/tmp/compare-edgelm-ttft.sock; rm -f $S
"$EDGELM" serve --model "$F" --socket $S --threads 2 --max-sequences 1 > "$SL-edgelm-serve.log" 2>&1 &
EP=$!
wait_socket $S; sleep 2
echo "## edgelm serve --model $F --socket $S --threads 2 --max-sequences 1"
measure $S
kill $EP; wait $EP 2>/dev/null
load
