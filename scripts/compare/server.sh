#!/bin/bash
# Daemon throughput: llama-server -np 4 and edgelm serve on the same file and 2 threads, each on a
# Unix socket, measured by the same client (edgelm bench --socket): one client, then RUNS runs of
# four concurrent streamed completions of N tokens. Requests are greedy (temperature 0), so both
# servers get the same requests and produce the same text; PROMPT is one whose greedy completions
# on the random bench-1b model llama-server can stream (with others it stops with "Failed to parse
# input", see docs/performance.md).
set -u
. "$(dirname "$0")/common.sh"
need llama-server
F=${F:-$MODELS/bench-1b-q4_0.gguf}
N=${N:-64}
RUNS=${RUNS:-2}
PROMPT=${PROMPT:-The quick brown fox}
LOG=${OUT:-compare-server-$(date -u +%H%M).log}
log_to "$LOG"
echo "# $(date -u); $(load)"
clients() { echo 1; for _ in $(seq "$RUNS"); do echo 4; done; }
measure() {
  for c in $(clients); do echo "clients $c:"; "$EDGELM" bench --socket "$1" --clients "$c" -n "$N" -r 1 --temperature 0 --prompt "$PROMPT"; done
}
wait_socket() { for _ in $(seq 120); do [ -S "$1" ] && return; sleep 1; done; }

# The servers' own logs go beside the run's log: ${OUT%.log}-llama-server.log and -edgelm-serve.log.
SL=${LOG%.log}
S=/tmp/compare-llama.sock; rm -f $S
"$LLAMA_BIN/llama-server" -m "$F" -t 2 -np 4 -c 4096 --host $S > "$SL-llama-server.log" 2>&1 &
LP=$!
wait_socket $S
for _ in $(seq 120); do grep -q "listening" "$SL-llama-server.log" && break; sleep 1; done
sleep 2
echo "## llama-server -m $F -t 2 -np 4 -c 4096 --host $S"
measure $S
kill $LP; wait $LP 2>/dev/null

S=/tmp/compare-edgelm.sock; rm -f $S
"$EDGELM" serve --model "$F" --socket $S --threads 2 --max-sequences 4 > "$SL-edgelm-serve.log" 2>&1 &
EP=$!
wait_socket $S; sleep 2
echo "## edgelm serve --model $F --socket $S --threads 2 --max-sequences 4"
measure $S
kill $EP; wait $EP 2>/dev/null
load
