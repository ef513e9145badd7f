#!/usr/bin/env bash
# Runs every fuzz target in turn for DURATION each (default 10m; any `go test -fuzztime` value,
# e.g. 30s, 10m, 50000x), one worker at a time (-parallel 1) so the host stays usable, and prints
# a Markdown table: target, fuzzing time, execs, new corpus entries, findings.
#
#   scripts/fuzz.sh [DURATION] [TARGET...]     TARGET is pkg:FuzzName, e.g. ./gguf:FuzzParse
#
# Logs go to $FUZZ_LOG_DIR (default /tmp/edgelm-fuzz-YYYYmmdd-HHMMSS). A crash is written by Go to
# PKG/testdata/fuzz/FUZZNAME/HASH: commit it as a regression seed with the fix. The exit status is
# 1 when any target found something or failed to run. CI runs only the seed corpora (go test).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

dur=${1:-10m}
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
	targets=(./gguf:FuzzParse ./model:FuzzLoad ./tokenizer:FuzzEncodeDecode ./daemon:FuzzRequests ./daemon:FuzzOllamaRequests ./chat:FuzzRender ./config:FuzzParse ./grammar:FuzzFromJSONSchema)
fi
logdir=${FUZZ_LOG_DIR:-/tmp/edgelm-fuzz-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$logdir"
# Minimising a crasher re-runs it many times; FuzzEncodeDecode runs ten tokenizers per input, so
# Go's default (60s) would stall the run.
minimize=${FUZZ_MINIMIZE_TIME:-10s}

rows=()
status=0
for t in "${targets[@]}"; do
	pkg=${t%%:*}
	name=${t##*:}
	log="$logdir/$(echo "${pkg#./}" | tr / _)-$name.log"
	echo "fuzz.sh: $pkg $name for $dur (log $log)" >&2
	start=$(date +%s)
	go test -run XXX_no_tests -fuzz "^$name\$" -fuzztime "$dur" -fuzzminimizetime "$minimize" \
		-parallel 1 "$pkg" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	# Progress lines: "fuzz: elapsed: 10m0s, execs: 1234567 (2057/sec), new interesting: 12 (total: 40)".
	last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1)
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([^,]+),.*/\1/p' <<<"$last")
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	# The last line's rate is often 0 (workers report in batches), so average over the run.
	secs_fuzzed=$(awk '{ t = 0; s = $0
		if (match(s, /[0-9]+h/)) t += 3600 * substr(s, RSTART, RLENGTH - 1)
		if (match(s, /[0-9]+m/)) t += 60 * substr(s, RSTART, RLENGTH - 1)
		if (match(s, /[0-9.]+s/)) t += substr(s, RSTART, RLENGTH - 1)
		print t }' <<<"${elapsed:-0s}")
	rate=$(awk -v e="${execs:-0}" -v t="$secs_fuzzed" 'BEGIN { if (t > 0) printf "%.0f", e / t; else print "?" }')
	newc=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
	crashers=$(sed -nE 's/.*Failing input written to (.*)$/\1/p' "$log" | tr '\n' ' ')
	if [[ $rc -eq 0 ]] && grep -q '^PASS' "$log" && [[ -n "$execs" ]]; then
		finding="none"
	elif [[ -n "$crashers" ]]; then
		finding="CRASH: $crashers($(grep -m1 -E '^\s+[a-z_]+_test\.go:[0-9]+:|panic:' "$log" | sed 's/^[[:space:]]*//' | cut -c1-120))"
		status=1
	else
		finding="run failed (exit $rc, see log)"
		status=1
	fi
	rows+=("| \`$name\` (${pkg#./}) | ${elapsed:-?} (wall ${secs}s) | ${execs:-?} | ${rate:-?} | ${newc:-?} (corpus ${total:-?}) | $finding |")
done

echo
echo "Fuzzing, $(date -u '+%Y-%m-%d %H:%M UTC'), $(go version | cut -d' ' -f3), $(nproc) cores, -fuzztime $dur -parallel 1"
echo
echo "| Target | Fuzzing time | Execs | Execs/s (mean) | New corpus entries | Findings |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Logs: $logdir"
exit $status
