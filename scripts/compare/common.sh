# Shared settings of the side-by-side scripts; every path can be overridden from the environment.
#   EDGELM     the edgelm binary to measure (build it from a committed tree: git archive HEAD | tar -x)
#   LLAMA_BIN  the directory holding llama.cpp's llama-bench and llama-server
#   MODELS     the directory holding bench-1b-q4_0.gguf and bench-1b-q8_0.gguf (edgelm synth), and
#              for GEMMA2=1 bench-gemma2-q4_0.gguf
#   OUT        the log file (default: compare-<script>-HHMM.log in the current directory)
EDGELM=${EDGELM:-edgelm}
LLAMA_BIN=${LLAMA_BIN:-/work/llama.cpp/build/bin}
MODELS=${MODELS:-/work/models}
log_to() { exec > >(tee "$1") 2>&1; }
load() { echo "load: $(cat /proc/loadavg)"; }

# Both engines must be there before anything is timed: a run with one side missing is no comparison.
need() {
  local e
  e=$(command -v "$EDGELM" 2>/dev/null)
  if [ -z "$e" ] || [ ! -f "$e" ] || [ ! -x "$e" ]; then
    echo "compare: EDGELM=$EDGELM is not an executable file (build one: go build -o /tmp/el ./cmd/edgelm; EDGELM=/tmp/el)" >&2
    exit 2
  fi
  for b in "$@"; do
    if [ ! -x "$LLAMA_BIN/$b" ]; then
      echo "compare: $LLAMA_BIN/$b not found (LLAMA_BIN: llama.cpp's build/bin)" >&2
      exit 2
    fi
  done
}
