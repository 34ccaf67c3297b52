#!/usr/bin/env bash
# Card faults seen through the HTTP port (loopback): a kernel that returns an
# error, and one that never returns (caught by the step watchdog), injected on
# the emulated card with --inject-fault.  The request in flight fails with a
# 5xx and an OpenAI error object naming the card, within a bound; /ready turns
# 503 with the card's state and error, /health stays 200 (the process lives),
# and /metrics says the card failed.  (Resetting the card and serving on is
# not built yet.)  Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
MODEL=assets/fortune-13m
tmp=$(mktemp -d /tmp/nextcard-http-fault.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
check() {
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
. tests/data/http/server.sh
j() { jq -r "$1" "$tmp/r"; }
body='{"model":"fortune-13m","prompt":"The secret of success is","temperature":0,"max_tokens":60}'

for kind in error hang; do
	http_start "$tmp" --model $MODEL --inject-fault "$kind@300" --watchdog-ms 800 || exit 1
	B=http://127.0.0.1:$port
	code=$(curl -s -m 10 -o "$tmp/r" -w '%{http_code}' "$B/ready")
	check "$kind: /ready 200 before the fault ($code)" [ "$code" = 200 ] && [ "$(j .ready)" = true ]
	t0=$(date +%s%N)
	code=$(curl -s -m 30 -o "$tmp/r" -w '%{http_code}' -H 'Content-Type: application/json' \
		-d "$body" "$B/v1/completions")
	t=$((($(date +%s%N) - t0) / 1000000))
	check "$kind: the request fails with $code in ${t} ms: $(j .error.message)" \
		[ "${code:0:1}" = 5 ] && [ "$t" -lt 10000 ] && j .error.message | grep -qi card
	code=$(curl -s -m 10 -o "$tmp/r" -w '%{http_code}' "$B/ready")
	check "$kind: /ready 503, card failed: $(j .error)" \
		[ "$code" = 503 ] && [ "$(j .ready)" = false ] && [ "$(j .card_state)" = failed ]
	[ $kind = hang ] && check "hang: the error names the watchdog" j .error | grep -q watchdog
	code=$(curl -s -m 10 -o "$tmp/r" -w '%{http_code}' "$B/health")
	check "$kind: /health 200 (alive), card_state failed" [ "$code" = 200 ] && [ "$(j .card_state)" = failed ]
	curl -s -m 10 -o "$tmp/m" "$B/metrics"
	check "$kind: /metrics nextcard_card_ready 0, state 4" \
		grep -q '^nextcard_card_ready 0$' "$tmp/m" && grep -q '^nextcard_card_state 4$' "$tmp/m"
	kill "$pid"; wait "$pid" 2>/dev/null; pid=
done
out=$($NC http --model $MODEL --inject-fault boom@1 --port 0 2>&1 >/dev/null); rc=$?
check "a bad fault spec is refused ($out)" [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
[ "$fails" -eq 0 ] && echo "http_fault: all checks passed" || { echo "http_fault: $fails failed"; exit 1; }
