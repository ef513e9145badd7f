#!/bin/sh
# count.sh: executed arm64 instructions per prompt token and per generated
# token, edgelm against llama.cpp, on the same GGUF files under qemu-user.
#
#   scripts/arm64/count.sh [MODEL.gguf ...]     (default: tinydoc q4_0, q8_0, q4_k_m)
#
# Environment: CPUS (qemu CPU models, default "cortex-a72 max"), N (decode
# tokens, default 4), P (prompt tokens, default 8), LLAMA_BUILD (llama.cpp
# built for arm64, default /work/ref/build-arm64-a72; see docs/arm64.md),
# OUT (results, default /tmp/edgelm-count.tsv), ENGINES (default
# "edgelm llama").
#
# Method: qemu's -d in_asm,exec,nochain log names every translated block
# with its instructions and every execution of a block (chaining off, so
# none is missed); tbcount sums sizes over executions. Each figure is the
# difference between a run with 2k and one with k tokens, divided by k, so
# start-up, loading and warm-up cancel. GOMAXPROCS=1 keeps Go's idle
# workers from spinning (the count of a run then varies by ~0.1%).
set -eu
cd "$(dirname "$0")/../.."
CPUS=${CPUS:-"cortex-a72 max"}
N=${N:-4}
P=${P:-8}
LLAMA_BUILD=${LLAMA_BUILD:-/work/ref/build-arm64-a72}
OUT=${OUT:-/tmp/edgelm-count.tsv}
ENGINES=${ENGINES:-"edgelm llama"}
SHARED=${EDGELM_SHARED:-../shared}
[ $# -gt 0 ] || set -- "$SHARED/models/tinydoc-q4_0.gguf" "$SHARED/models/tinydoc-q8_0.gguf" "$SHARED/models/tinydoc-q4_k_m.gguf"

# No EXIT trap: dash runs it in every $(...) subshell, which would remove
# the binaries after the first count.
tmp=$(mktemp -d)
GOARCH=arm64 go build -o "$tmp/edgelm" ./cmd/edgelm
go build -o "$tmp/tbcount" ./scripts/arm64/tbcount

# count CPU CMD...: the instructions CMD executes on qemu's CPU model.
# A failed run counts as NA.
count() {
	cpu=$1
	shift
	n=$({
		# (an && || list, so that set -e lets a failure reach rc)
		GOMAXPROCS=1 QEMU_CPU=$cpu nice -n 19 qemu-aarch64-static -d in_asm,exec,nochain -D /dev/stderr "$@" 2>&1 >"$tmp/out" &&
			echo 0 >"$tmp/rc" || echo $? >"$tmp/rc"
	} | "$tmp/tbcount" | awk '{print $1}')
	if [ "$(cat "$tmp/rc")" != 0 ]; then
		echo "count.sh: failed on $cpu: $*" >&2
		n=NA
	fi
	echo "$n"
}

want() { case " $ENGINES " in *" $1 "*) return 0 ;; esac; return 1; }

# per K A B: (B - A) / K, rounded; NA if either is.
per() { awk -v k="$1" -v a="$2" -v b="$3" 'BEGIN { if (a == "NA" || b == "NA") print "NA"; else printf "%.0f", (b - a) / k }'; }

# llama-matmul (scripts/arm64/llama-matmul.c) against llama.cpp's static
# ggml libraries, when they are built.
lm=""
if [ -f "$LLAMA_BUILD/ggml/src/libggml-cpu.a" ] && [ -f "$LLAMA_BUILD/ggml/src/libggml-base.a" ]; then
	lm=$tmp/llama-matmul
	src=${LLAMA_SRC:-/work/ref/llama.cpp}
	aarch64-linux-gnu-g++ -O2 -static -x c scripts/arm64/llama-matmul.c -x none -I"$src/ggml/include" \
		"$LLAMA_BUILD/ggml/src/libggml-cpu.a" "$LLAMA_BUILD/ggml/src/libggml-base.a" -lpthread -lm -o "$lm"
fi
bench="$LLAMA_BUILD/bin/llama-bench"

printf 'model\tcpu\tengine\tprompt_insn_per_token\tdecode_insn_per_token\n' | tee "$OUT"
for m in "$@"; do
	name=$(basename "$m" .gguf)
	for cpu in $CPUS; do
		if want edgelm; then
			# edgelm bench warms up with a prefill as long as the test and one generated token.
			a=$(count "$cpu" "$tmp/edgelm" bench --model "$m" -p "$P" -n 0 -r 1 -t 1 --no-read)
			b=$(count "$cpu" "$tmp/edgelm" bench --model "$m" -p "$((2 * P))" -n 0 -r 1 -t 1 --no-read)
			c=$(count "$cpu" "$tmp/edgelm" bench --model "$m" -p 0 -n "$N" -r 1 -t 1 --no-read)
			d=$(count "$cpu" "$tmp/edgelm" bench --model "$m" -p 0 -n "$((2 * N))" -r 1 -t 1 --no-read)
			printf '%s\t%s\tedgelm\t%s\t%s\n' "$name" "$cpu" "$(per $((2 * P)) "$a" "$b")" "$(per "$N" "$c" "$d")" | tee -a "$OUT"
		fi
		want llama || continue
		if [ -x "$bench" ]; then
			a=$(count "$cpu" "$bench" -m "$m" -p "$P" -n 0 -r 1 -t 1 --no-warmup)
			b=$(count "$cpu" "$bench" -m "$m" -p "$((2 * P))" -n 0 -r 1 -t 1 --no-warmup)
			c=$(count "$cpu" "$bench" -m "$m" -p 0 -n "$N" -r 1 -t 1 --no-warmup)
			d=$(count "$cpu" "$bench" -m "$m" -p 0 -n "$((2 * N))" -r 1 -t 1 --no-warmup)
			printf '%s\t%s\tllama-bench\t%s\t%s\n' "$name" "$cpu" "$(per "$P" "$a" "$b")" "$(per "$N" "$c" "$d")" | tee -a "$OUT"
		fi
		if [ -n "$lm" ]; then
			a=$(count "$cpu" "$lm" "$m" "$P" 1)
			b=$(count "$cpu" "$lm" "$m" "$((2 * P))" 1)
			c=$(count "$cpu" "$lm" "$m" 1 "$N")
			d=$(count "$cpu" "$lm" "$m" 1 "$((2 * N))")
			printf '%s\t%s\tllama.cpp-matmul-only\t%s\t%s\n' "$name" "$cpu" "$(per "$P" "$a" "$b")" "$(per "$N" "$c" "$d")" | tee -a "$OUT"
		fi
	done
done
rm -rf "$tmp"
