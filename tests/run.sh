#!/usr/bin/env bash
# The test suite after `make unit fuzz`: every cmocka binary (optimised and
# ASan+UBSan), the CLI checks, and a short libFuzzer run of every target.
# Ends with one "N passed, N failed" line; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-15}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0
fail=0
failed=()
log=$(mktemp -d /tmp/nextcard-tests.XXXXXX)
trap 'rm -rf "$log"' EXIT

run() {
	local name=$1; shift
	local out="$log/$(echo "$name" | tr '/ ' '__').log"
	local t0=$SECONDS
	if timeout 900 "$@" >"$out" 2>&1; then
		pass=$((pass + 1))
		printf 'PASS  %-40s %3ss\n' "$name" $((SECONDS - t0))
	else
		fail=$((fail + 1))
		failed+=("$name")
		printf 'FAIL  %-40s %3ss\n' "$name" $((SECONDS - t0))
		tail -n 40 "$out" | sed 's/^/      | /'
	fi
	grep -h '^\[  PASSED  \]\|^\[  FAILED  \]' "$out" | sed 's/^/      /'
}

for variant in rel asan; do
	for t in build/$variant/tests/test_*; do
		[ -x "$t" ] || continue
		run "$variant/$(basename "$t")" "$t"
	done
done

for s in tests/sh/*.sh; do
	[ -f "$s" ] || continue
	run "sh/$(basename "$s" .sh)" bash "$s"
done

for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus="tests/fuzz/corpus/${name#fuzz_}"
	work="$log/corpus-$name"
	mkdir -p "$work"
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
	run "fuzz/$name (${FUZZ_SECONDS}s)" "$f" -max_total_time="$FUZZ_SECONDS" \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=0 "$work"
done

echo
[ ${#failed[@]} -eq 0 ] || printf 'failed: %s\n' "${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
