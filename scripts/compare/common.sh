# Shared settings of the side-by-side scripts; every path can be overridden from the environment.
#   EDGELM     the edgelm binary to measure (build it from a committed tree: git archive HEAD | tar -x)
#   LLAMA_BIN  the directory holding llama.cpp's llama-bench and llama-server
#   MODELS     the directory holding bench-1b-q4_0.gguf and bench-1b-q8_0.gguf (edgelm synth)
#   OUT        the log file (default: compare-<script>-HHMM.log in the current directory)
EDGELM=${EDGELM:-edgelm}
LLAMA_BIN=${LLAMA_BIN:-/work/llama.cpp/build/bin}
MODELS=${MODELS:-/work/models}
log_to() { exec > >(tee "$1") 2>&1; }
load() { echo "load: $(cat /proc/loadavg)"; }
