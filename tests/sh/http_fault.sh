#!/usr/bin/env bash
# Card faults seen through the HTTP port (loopback): a kernel that returns an
# error, and one that never returns (caught by the step watchdog), injected on
# the emulated card with --inject-fault.  The request in flight fails with a
# 5xx and an OpenAI error object naming the card, within a bound; /ready turns
# 503 with the card's state and error while it is down, /health stays 200
# (the process lives); the card is reset (boot, configure, weights read
# again from the checkpoint into card memory that the reset cleared) and
# the same request is then answered, with the text a server that never
# failed gives; /ready and /metrics count the fault and the reset.  With
# --no-card-reset the card stays failed.  Run from the repo root by
# tests/run.sh.
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

ready_again() { # wait (10 s at most) for /ready 200
	for _ in $(seq 100); do
		[ "$(curl -s -m 2 -o "$tmp/r" -w '%{http_code}' "$B/ready")" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}
http_start "$tmp" --model $MODEL || exit 1
B=http://127.0.0.1:$port
curl -s -m 30 -o "$tmp/clean" -H 'Content-Type: application/json' -d "$body" "$B/v1/completions"
want=$(jq -r '.choices[0].text' "$tmp/clean")
kill "$pid"; wait "$pid" 2>/dev/null; pid=

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
	check "$kind: the card is back (/ready 200) within 10 s" ready_again
	check "$kind: /ready counts the fault and the reset: $(j .last_fault)" \
		[ "$(j .card_faults)" = 1 ] && [ "$(j .card_resets)" = 1 ] && j .last_fault | grep -q .
	[ $kind = hang ] && check "hang: the last fault names the watchdog" j .last_fault | grep -q watchdog
	code=$(curl -s -m 30 -o "$tmp/r" -w '%{http_code}' -H 'Content-Type: application/json' \
		-d "$body" "$B/v1/completions")
	check "$kind: after the reset the request is served ($code), as a card that never failed" \
		[ "$code" = 200 ] && [ "$(j '.choices[0].text')" = "$want" ]
	code=$(curl -s -m 10 -o "$tmp/r" -w '%{http_code}' "$B/health")
	check "$kind: /health 200 (alive), card_state running" [ "$code" = 200 ] && [ "$(j .card_state)" = running ]
	curl -s -m 10 -o "$tmp/m" "$B/metrics"
	check "$kind: /metrics faults 1, resets 1, ready 1" \
		grep -q '^nextcard_card_faults_total 1$' "$tmp/m" && grep -q '^nextcard_card_resets_total 1$' "$tmp/m" &&
		grep -q '^nextcard_card_ready 1$' "$tmp/m"
	check "$kind: the server says it reset the card" grep -q 'reset in [0-9.]* s, serving again' "$tmp/server.err"
	kill "$pid"; wait "$pid" 2>/dev/null; pid=
done

# without resets the card stays failed: /ready 503 names the error, /health 200
http_start "$tmp" --model $MODEL --inject-fault error@300 --no-card-reset || exit 1
B=http://127.0.0.1:$port
code=$(curl -s -m 30 -o "$tmp/r" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$B/v1/completions")
check "--no-card-reset: the request fails ($code)" [ "${code:0:1}" = 5 ]
sleep 0.3
code=$(curl -s -m 10 -o "$tmp/r" -w '%{http_code}' "$B/ready")
check "--no-card-reset: /ready 503, card failed: $(j .error)" \
	[ "$code" = 503 ] && [ "$(j .ready)" = false ] && [ "$(j .card_state)" = failed ]
code=$(curl -s -m 10 -o "$tmp/r" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$B/v1/completions")
check "--no-card-reset: the next request gets $code: $(j .error.message)" \
	[ "${code:0:1}" = 5 ] && j .error.message | grep -qi card
curl -s -m 10 -o "$tmp/m" "$B/metrics"
check "--no-card-reset: /metrics nextcard_card_ready 0, state 4" \
	grep -q '^nextcard_card_ready 0$' "$tmp/m" && grep -q '^nextcard_card_state 4$' "$tmp/m"
kill "$pid"; wait "$pid" 2>/dev/null; pid=
out=$($NC http --model $MODEL --inject-fault boom@1 --port 0 2>&1 >/dev/null); rc=$?
check "a bad fault spec is refused ($out)" [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
[ "$fails" -eq 0 ] && echo "http_fault: all checks passed" || { echo "http_fault: $fails failed"; exit 1; }
