#!/usr/bin/env bash
# End-to-end test of `edgelm serve` with clients nobody here wrote: curl --unix-socket and the
# official OpenAI and Ollama Node.js clients. Builds edgelm, serves the small shared model on a temporary
# socket (with --chat-template chatml, as the model has no chat template), checks completions and
# chat, streamed and not, and exits non-zero on any failure.
#
# Needs go, curl, node and npm (for `npm ci` of scripts/e2e/package.json in a temporary directory).
# The model is found at $EDGELM_SHARED/models or ../shared/models; when it is absent the script
# skips (exit 0), unless EDGELM_REQUIRE_SHARED=1. EDGELM_E2E_SKIP_NODE=1 skips the Node part.
set -euo pipefail
shopt -s lastpipe # pipelines ending in a check count failures in this shell

root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${EDGELM_SHARED:-$root/../shared}"
model="$shared/models/aidreams260K-q8_0.gguf"
if [[ ! -f "$model" ]]; then
  if [[ "${EDGELM_REQUIRE_SHARED:-}" == 1 ]]; then
    echo "e2e: FAIL: $model not found and EDGELM_REQUIRE_SHARED=1" >&2
    exit 1
  fi
  echo "e2e: SKIP: $model not found (set EDGELM_SHARED)"
  exit 0
fi

tmp="$(mktemp -d /tmp/edgelm-e2e.XXXXXX)"
sock="$tmp/edgelm.sock"
pid=""
plain=""
cleanup() {
  local status=$?
  if ((status != 0)) && [[ -f "$tmp/serve.log" ]]; then
    echo "e2e: failed (status $status); daemon log:"
    tail -50 "$tmp/serve.log"
  fi
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [[ -n "$plain" ]]; then kill -TERM "$plain" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fails=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
# jcheck NAME JS-EXPRESSION: evaluates the expression with `j` bound to the JSON on stdin.
jcheck() {
  local name="$1" expr="$2" input
  input="$(cat)"
  if node -e "const j = JSON.parse(require('fs').readFileSync(0, 'utf8')); if (!($expr)) process.exit(1)" <<<"$input"; then
    ok "$name"
  else
    fail "$name: $input"
  fi
}
api() { curl -sS --max-time 60 --unix-socket "$sock" "$@"; }

echo "e2e: building edgelm"
(cd "$root" && go build -o "$tmp/edgelm" ./cmd/edgelm)

echo "e2e: serving $model on $sock"
"$tmp/edgelm" serve --model "$model" --socket "$sock" --chat-template chatml --log-level debug >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  if api -o /dev/null -w '%{http_code}' http://localhost/health 2>/dev/null | grep -q 200; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "e2e: FAIL: the daemon exited:"; cat "$tmp/serve.log"; exit 1
  fi
  sleep 0.2
done

# Socket file: mode 0660.
mode="$(stat -c %a "$sock")"
[[ "$mode" == 660 ]] && ok "socket mode 0660" || fail "socket mode is $mode"

api http://localhost/health | jcheck "GET /health is ok" 'j.status === "ok" && j.model.endsWith(".gguf") && j.architecture && j.kernels && j.kv'
api http://localhost/v1/models | jcheck "GET /v1/models" 'j.object === "list" && j.data.length === 1 && j.data[0].object === "model"'

api http://localhost/v1/completions -H 'Content-Type: application/json' \
  -d '{"prompt":"Once upon a time","max_tokens":16,"temperature":0}' |
  jcheck "POST /v1/completions" 'j.object === "text_completion" && j.choices[0].text.length > 0 && j.usage.completion_tokens > 0 && ["stop","length"].includes(j.choices[0].finish_reason)'

api http://localhost/v1/completions -H 'Content-Type: application/json' \
  -d '{"prompt":"Once upon a time","max_tokens":0,"echo":true,"logprobs":1}' |
  jcheck "echo+logprobs+max_tokens 0 gives prompt logprobs" 'j.choices[0].logprobs.tokens.length === j.usage.prompt_tokens && j.choices[0].logprobs.token_logprobs[0] === null && j.choices[0].logprobs.token_logprobs.slice(1).every(x => x === null || x <= 0)'

api http://localhost/v1/completions -H 'Content-Type: application/json' \
  -d '{"prompt":"Once upon a time","max_tokens":4,"trace":true}' |
  jcheck "trace: per-step kinds and KV length" 'Array.isArray(j.trace) && j.trace.length > 0 && j.trace.some(s => s.kind === "prefill") && j.trace.every(s => s.kv_len > 0)'

# Streams: every event is "data: ..." then a blank line, the last "data: [DONE]".
check_sse() {
  local name="$1" object="$2" file="$tmp/sse"
  cat >"$file"
  if node -e '
    const t = require("fs").readFileSync(process.argv[1], "utf8");
    if (!t.endsWith("data: [DONE]\n\n")) throw new Error("no [DONE] at the end");
    const events = t.split("\n\n"); events.pop();
    const chunks = events.slice(0, -1).map(e => {
      if (!e.startsWith("data: ") || e.includes("\n")) throw new Error("bad event " + JSON.stringify(e));
      return JSON.parse(e.slice(6));
    });
    if (chunks.length < 2) throw new Error("only " + chunks.length + " chunks");
    if (!chunks.every(c => c.object === process.argv[2] && c.id === chunks[0].id)) throw new Error("object/id");
    if (!chunks.some(c => c.choices[0] && c.choices[0].finish_reason)) throw new Error("no finish_reason");
  ' "$file" "$object"; then ok "$name"; else fail "$name: $(head -c 600 "$file")"; fi
}
api -N http://localhost/v1/completions -H 'Content-Type: application/json' \
  -d '{"prompt":"Once upon a time","max_tokens":16,"stream":true}' | check_sse "POST /v1/completions stream (SSE)" text_completion
api http://localhost/v1/chat/completions -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":16,"temperature":0}' |
  jcheck "POST /v1/chat/completions" 'j.object === "chat.completion" && j.choices[0].message.role === "assistant" && typeof j.choices[0].message.content === "string" && j.usage.prompt_tokens > 0'
api -N http://localhost/v1/chat/completions -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":16,"stream":true}' | check_sse "POST /v1/chat/completions stream (SSE)" chat.completion.chunk

api http://localhost/v1/tokenize -H 'Content-Type: application/json' -d '{"content":"Once upon a time"}' |
  jcheck "POST /v1/tokenize" 'j.tokens.length > 1'
api http://localhost/v1/completions -H 'Content-Type: application/json' -d '{"model":"nope","prompt":"x"}' -w '\n%{http_code}' |
  tail -1 | grep -qx 404 && ok "unknown model is 404" || fail "unknown model is not 404"
api http://localhost/v1/completions -H 'Content-Type: application/json' -d '{"prompt":' -w '\n%{http_code}' |
  tail -1 | grep -qx 400 && ok "bad JSON is 400" || fail "bad JSON is not 400"
# ---- embeddings and Ollama's API (issue 16) ----
api http://localhost/v1/embeddings -H 'Content-Type: application/json' -d '{"input":["The cat sat.","A dog ran."]}' |
  jcheck "POST /v1/embeddings" 'j.object === "list" && j.data.length === 2 && j.data.every(d => Math.abs(Math.hypot(...d.embedding) - 1) < 1e-4) && j.usage.prompt_tokens > 0'
api http://localhost/api/version | jcheck "GET /api/version" 'typeof j.version === "string"'
api http://localhost/api/tags | jcheck "GET /api/tags" 'j.models.length === 1 && j.models[0].name.endsWith(":latest") && j.models[0].details.format === "gguf"'
api http://localhost/api/ps | jcheck "GET /api/ps" 'j.models.length === 1 && j.models[0].size_vram === 0 && j.models[0].expires_at'
api http://localhost/api/show -d '{"model":"aidreams260K-q8_0"}' | jcheck "POST /api/show" 'j.capabilities.includes("completion") && j.model_info["general.architecture"] === "llama"'
api http://localhost/api/generate -d '{"model":"aidreams260K-q8_0:latest","prompt":"Once upon a time","raw":true,"stream":false,"options":{"num_predict":8,"temperature":0}}' |
  jcheck "POST /api/generate stream:false" 'j.done === true && j.response.length > 0 && j.eval_count > 0 && j.prompt_eval_count > 0 && j.total_duration > 0 && "load_duration" in j && j.done_reason'
out="$(api -N http://localhost/api/chat -d '{"messages":[{"role":"user","content":"Hello"}],"options":{"num_predict":8}}' -D "$tmp/ndjson.h")"
node -e '
  const lines = process.argv[1].trim().split(/\n/).map(l => JSON.parse(l));
  const last = lines[lines.length - 1];
  if (lines.length < 2 || !last.done || !lines.slice(0, -1).every(l => l.done === false && l.message.role === "assistant")) process.exit(1);
  if (!(last.eval_count > 0 && last.eval_duration >= 0 && last.created_at)) process.exit(1);
' "$out" && grep -qi '^content-type: application/x-ndjson' "$tmp/ndjson.h" &&
  ok "POST /api/chat streams NDJSON" || fail "POST /api/chat stream: $out"
api http://localhost/api/embed -d '{"input":"The cat sat."}' | jcheck "POST /api/embed" 'j.embeddings.length === 1 && j.embeddings[0].length > 0'
api http://localhost/api/embeddings -d '{"prompt":"The cat sat."}' | jcheck "POST /api/embeddings (legacy)" 'j.embedding.length > 0'
api http://localhost/api/chat -d '{"messages":[{"role":"user","content":"Hi"}],"format":{"type":"string","pattern":"a+"}}' -w '\n%{http_code}' | tail -1 | grep -qx 400 &&
  ok "format with an unsupported schema keyword is a 400" || fail "format with pattern not refused"
# ---- end of embeddings and Ollama's API ----

# Whole outputs first: grep -q closing the pipe early would fail the writer under pipefail.
out="$(api http://localhost/metrics)"
grep -q '^edgelm_decode_tokens_per_second ' <<<"$out" && ok "GET /metrics" || fail "GET /metrics: $out"
out="$("$tmp/edgelm" status --socket "$sock" 2>&1)" || true
grep -q '^model' <<<"$out" && ok "edgelm status" || fail "edgelm status: $out"
out="$(printf 'Hello\n/stats\n/quit\n' | "$tmp/edgelm" chat --socket "$sock" --max-tokens 8 2>&1)" || true
grep -q 'conversation: 2 messages' <<<"$out" && ok "edgelm chat" || fail "edgelm chat: $out"

# Without a chat format: the chat endpoint says how to configure one, edgelm chat falls back to
# plain completions of the transcript and says so.
"$tmp/edgelm" serve --model "$model" --socket "$tmp/plain.sock" >"$tmp/plain.log" 2>&1 &
plain=$!
for _ in $(seq 1 300); do
  curl -s --unix-socket "$tmp/plain.sock" -o /dev/null -w '%{http_code}' http://localhost/health 2>/dev/null | grep -q 200 && break
  sleep 0.2
done
out="$(curl -sS --unix-socket "$tmp/plain.sock" http://localhost/v1/chat/completions -d '{"messages":[{"role":"user","content":"Hi"}]}' -w '\n%{http_code}')"
grep -q chat_template_unavailable <<<"$out" && [[ "$(tail -1 <<<"$out")" == 400 ]] &&
  ok "chat without a template: 400 chat_template_unavailable" || fail "chat without a template: $out"
out="$(printf 'Hello\n/quit\n' | "$tmp/edgelm" chat --socket "$tmp/plain.sock" --max-tokens 8 2>&1)" || true
grep -q 'no chat template' <<<"$out" && ok "edgelm chat falls back to completions" || fail "edgelm chat fallback: $out"
kill -TERM "$plain" && wait "$plain" || fail "second daemon did not exit cleanly"
plain=""

if [[ "${EDGELM_E2E_SKIP_NODE:-}" == 1 ]]; then
  echo "e2e: skipping the OpenAI Node.js client (EDGELM_E2E_SKIP_NODE=1)"
else
  echo "e2e: installing the OpenAI and Ollama Node.js clients (versions pinned in scripts/e2e/package-lock.json)"
  mkdir -p "$tmp/node"
  cp "$root"/scripts/e2e/{package.json,package-lock.json,*.mjs} "$tmp/node/"
  # undici 6, not 7: 7 needs Node >= 20.18.1, and Debian 12's nodejs (what .ci/run installs where
  # Node is missing) is 18.19. openai@6 with undici@6 passes this client on Node 18.20 and 20.20.
  (cd "$tmp/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  # Structured output (json_schema, tool calls) on tinydoc, whose 32,000-token vocabulary is
  # a real test of the grammar's masks.
  tiny="$shared/models/tinydoc-q8_0.gguf" tinypid="" structured=""
  if [[ -f "$tiny" ]]; then
    "$tmp/edgelm" serve --model "$tiny" --socket "$tmp/tiny.sock" --chat-template chatml >"$tmp/tiny.log" 2>&1 &
    tinypid=$!
    for _ in $(seq 1 300); do
      curl -s --unix-socket "$tmp/tiny.sock" -o /dev/null -w '%{http_code}' http://localhost/health 2>/dev/null | grep -q 200 && break
      sleep 0.2
    done
    structured="$tmp/tiny.sock"
  elif [[ "${EDGELM_REQUIRE_SHARED:-}" == 1 ]]; then
    fail "$tiny not found"
  fi
  if EDGELM_SOCKET="$sock" EDGELM_STRUCTURED_SOCKET="$structured" node "$tmp/node/openai_client.mjs"; then ok "OpenAI Node.js client"; else fail "OpenAI Node.js client"; fi
  if EDGELM_SOCKET="$sock" EDGELM_STRUCTURED_SOCKET="$structured" node "$tmp/node/ollama_client.mjs"; then ok "Ollama Node.js client"; else fail "Ollama Node.js client"; fi
  if [[ -n "$tinypid" ]]; then kill -TERM "$tinypid" && wait "$tinypid" || fail "tinydoc daemon did not exit cleanly"; fi
fi

# Graceful shutdown: SIGTERM, exit status 0, socket removed.
kill -TERM "$pid"
if wait "$pid"; then ok "SIGTERM: clean exit"; else fail "SIGTERM: exit status $?"; fi
pid=""
[[ ! -e "$sock" ]] && ok "socket removed on exit" || fail "socket left behind"

if ((fails > 0)); then
  echo "e2e: $fails check(s) failed"
  exit 1
fi
echo "e2e: all checks passed"
