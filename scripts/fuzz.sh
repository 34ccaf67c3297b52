#!/usr/bin/env bash
# Run every libFuzzer target for a while and say what it did (make fuzz FUZZ_TIME=S).
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# Each target starts from its corpus in tests/fuzz/corpus/NAME, runs SECONDS
# under ASan/UBSan, and the inputs that found new coverage are merged back into
# that corpus (libFuzzer -merge=1 keeps only inputs that add coverage), so the
# repository's corpora grow with every long run.  One line per target:
# executions, executions per second, edges (cov) and features (ft) covered at
# the end, corpus files before and after, and whether it crashed (the crash
# input is kept in build/fuzz/crash-NAME-*).  Exits non-zero on a crash.
set -u
cd "$(dirname "$0")/.."

secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
case $secs in ''|*[!0-9]*) echo "fuzz: SECONDS must be a number" >&2; exit 2 ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || for f in build/fuzz/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f")"); done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
tmp=$(mktemp -d /tmp/nextcard-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
crashed=0

printf '%-18s %6s %14s %10s %8s %8s %15s  %s\n' target secs executions exec/s cov ft "corpus" result
for t in "${targets[@]}"; do
	f=build/fuzz/$t
	name=${t#fuzz_}
	corpus=tests/fuzz/corpus/$name
	[ -x "$f" ] || { echo "fuzz: $f is not built (make fuzz)" >&2; exit 2; }
	mkdir -p "$corpus" "$tmp/$name"
	before=$(find "$corpus" -type f | wc -l)
	log=$tmp/$name.log
	result=ok
	"$f" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
		-artifact_prefix="build/fuzz/crash-$name-" "$tmp/$name" "$corpus" >"$log" 2>&1 ||
		{ result="CRASH (build/fuzz/crash-$name-*)"; crashed=1; }
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	# keep what found new coverage (minimised against what the corpus has)
	"$f" -merge=1 -rss_limit_mb=2048 -timeout=10 "$corpus" "$tmp/$name" >"$tmp/$name.merge" 2>&1 ||
		result="$result, merge failed"
	after=$(find "$corpus" -type f | wc -l)
	printf '%-18s %6s %14s %10s %8s %8s %15s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
		"${cov:-?}" "${ft:-?}" "$before -> $after" "$result"
	[ "$result" = ok ] || tail -n 30 "$log" | sed 's/^/    | /'
done
exit $crashed
