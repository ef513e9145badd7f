#!/usr/bin/env bash
# The README's "run" command: builds edgelm, starts the daemon on the committed demo model
# (models/stories260K.gguf, or the model given as $1), sends it one completion request with curl
# over the Unix socket, prints the answer, and keeps serving in the foreground until Ctrl-C, which
# shuts the daemon down gracefully.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$PATH:/usr/local/go/bin"
model="${1:-$root/models/stories260K.gguf}"
sock="${EDGELM_SOCKET:-${XDG_RUNTIME_DIR:-/tmp}/edgelm-demo.sock}"
[[ -f "$model" ]] || { echo "demo: model $model not found; pass a GGUF file: scripts/demo.sh MODEL.gguf" >&2; exit 1; }

go build -o edgelm ./cmd/edgelm
# Job control puts the daemon in its own process group, so Ctrl-C reaches this script alone and
# the daemon gets one SIGTERM from stop; a second signal would make it exit at once.
set -m
./edgelm serve --model "$model" --socket "$sock" --chat-template chatml &
pid=$!
set +m
stop() {
	trap - EXIT INT TERM
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
for _ in $(seq 100); do
	curl -sf --unix-socket "$sock" http://edgelm/health >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "demo: the daemon exited" >&2; exit 1; }
	sleep 0.1
done
echo "+ curl --unix-socket $sock http://edgelm/v1/completions -d '{\"prompt\":\"Once upon a time\",\"max_tokens\":48,\"temperature\":0}'"
curl -sS --unix-socket "$sock" http://edgelm/v1/completions \
	-H 'Content-Type: application/json' \
	-d '{"prompt":"Once upon a time","max_tokens":48,"temperature":0}'
echo
echo "edgelm is serving $model on $sock (Ctrl-C to stop). Try: ./edgelm chat --socket $sock"
wait "$pid"
