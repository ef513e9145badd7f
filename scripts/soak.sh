#!/usr/bin/env bash
# Soak test: builds edgelm, serves the shared small model on a Unix socket in a temp dir (never
# TCP), and runs 16 concurrent clients (scripts/soak) mixing completions, chat, streaming and
# cancellations for DURATION (default 10m). Prints requests, unexpected errors, p50/p99 latency,
# RSS over time, threads and open fds at start and end, and a PASS/FAIL verdict: zero unexpected
# errors, RSS and threads within 10% after warm-up, no fd growth. Exit status 0 on PASS.
#
#   scripts/soak.sh [DURATION]
#
# Environment: EDGELM_SHARED (default ../shared), SOAK_MODEL (default the shared
# aidreams260K-q8_0.gguf), SOAK_THREADS (daemon kernel threads, default 1), SOAK_CLIENTS (16),
# SOAK_PAUSE (pause between a client's requests, default 0s), SOAK_OUT (directory for the daemon
# log and the samples CSV; default a temp dir, kept).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

dur=${1:-10m}
shared=${EDGELM_SHARED:-../shared}
model=${SOAK_MODEL:-$shared/models/aidreams260K-q8_0.gguf}
[[ -f "$model" ]] || { echo "soak.sh: model $model not found (set EDGELM_SHARED or SOAK_MODEL)" >&2; exit 1; }
out=${SOAK_OUT:-$(mktemp -d /tmp/edgelm-soak.XXXXXX)}
mkdir -p "$out"
run=$(mktemp -d /tmp/edgelm-soak-run.XXXXXX)

go build -o "$run/edgelm" ./cmd/edgelm
go build -o "$run/soak" ./scripts/soak

sock=$run/edgelm.sock
"$run/edgelm" serve --model "$model" --socket "$sock" --chat-template chatml \
	--threads "${SOAK_THREADS:-1}" >"$out/daemon.log" 2>&1 &
pid=$!
cleanup() {
	if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
	rm -rf "$run"
}
trap cleanup EXIT

for _ in $(seq 100); do
	if curl -sf --unix-socket "$sock" http://edgelm/health >/dev/null 2>&1; then break; fi
	kill -0 "$pid" 2>/dev/null || { echo "soak.sh: daemon exited:" >&2; cat "$out/daemon.log" >&2; exit 1; }
	sleep 0.2
done

echo "soak.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "soak.sh: model $(basename "$model"), daemon pid $pid, threads ${SOAK_THREADS:-1}, $dur, ${SOAK_CLIENTS:-16} clients, output $out"
status=0
"$run/soak" -socket "$sock" -pid "$pid" -duration "$dur" -clients "${SOAK_CLIENTS:-16}" \
	-pause "${SOAK_PAUSE:-0s}" -csv "$out/samples.csv" || status=$?

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
if [[ $rc -ne 0 ]]; then echo "soak.sh: FAIL: daemon exited with status $rc on SIGTERM"; status=1; fi
if grep -qE 'panic|fatal error|SIGBUS|SIGSEGV' "$out/daemon.log"; then
	echo "soak.sh: FAIL: the daemon log shows a crash:"; grep -nE 'panic|fatal error|SIGBUS|SIGSEGV' "$out/daemon.log" | head
	status=1
fi
echo "soak.sh: daemon log lines by level: $(grep -oE 'level=[A-Z]+' "$out/daemon.log" | sort | uniq -c | xargs)"
exit $status
