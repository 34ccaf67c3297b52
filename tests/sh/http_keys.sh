#!/usr/bin/env bash
# API keys and quotas on the HTTP port (127.0.0.1 only): 401 without a valid
# key (curl and the openai SDK), 429 with Retry-After over a key's quota,
# usage by key name in /metrics and never the key itself, SIGHUP reloads the
# file (a bad file keeps the old keys), /health and /ready stay open, and a
# public bind without keys is refused.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
tmp=$(mktemp -d /tmp/nextcard-keys.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
check() { # name, command...
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
A=sk-alice-0123456789abcdef
B=sk-bob-fedcba9876543210
C=sk-carol-00000000000000
cat >"$tmp/keys" <<EOK
# key            name        limits
$A name=alice rpm=2
$B name=bob concurrent=4 tpm=100000
EOK

. tests/data/http/server.sh
http_start "$tmp" --model assets/fortune-13m --keys "$tmp/keys" || exit 1
B_=http://127.0.0.1:$port
check "start says where the keys come from" grep -q "API keys from $tmp/keys" "$tmp/server.out"
body='{"model":"fortune-13m","messages":[{"role":"user","content":"Hi"}],"max_tokens":3}'
req() { # key or "" -> status in $code, body in $tmp/r, headers in $tmp/h
	local auth=()
	[ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
	code=$(curl -s -m 60 -D "$tmp/h" -o "$tmp/r" -w '%{http_code}' "${auth[@]}" \
		-H 'Content-Type: application/json' --data-binary "$body" "$B_/v1/chat/completions")
}
req ""
check "no key: 401, OpenAI error invalid_api_key" [ "$code" = 401 -a "$(jq -r .error.code "$tmp/r")" = invalid_api_key ]
req sk-nobody-000000000000000
check "unknown key: 401" [ "$code" = 401 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$B_/v1/models")
check "GET /v1/models without a key: 401" [ "$code" = 401 ]
req "$A"
check "alice: 200" [ "$code" = 200 ]
req "$A"
check "alice again: 200 (rpm=2)" [ "$code" = 200 ]
req "$A"
retry=$(sed -n 's/^Retry-After: *\([0-9]*\).*/\1/ip' "$tmp/h" | tr -d '\r')
check "alice a third time in the minute: 429 rate_limit_exceeded, Retry-After ${retry:-none} s" \
	[ "$code" = 429 -a "$(jq -r .error.code "$tmp/r")" = rate_limit_exceeded -a "${retry:-0}" -ge 1 ]
req "$B"
check "bob is not held by alice's quota: 200" [ "$code" = 200 ]
for p in /health /ready /metrics; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$B_$p")
	check "GET $p without a key: 200" [ "$code" = 200 ]
done
curl -s "$B_/metrics" >"$tmp/m"
check "/metrics: requests by key name" grep -q '^nextcard_key_requests_total{key="alice"} 2$' "$tmp/m"
check "/metrics: alice's refusal" grep -q '^nextcard_key_refused_total{key="alice"} 1$' "$tmp/m"
check "/metrics: bob's tokens" awk '/^nextcard_key_tokens_total\{key="bob"\}/{ok = $2 > 0} END{exit !ok}' "$tmp/m"
check "/metrics: 401s counted" grep -q '^nextcard_requests_unauthorized_total 3$' "$tmp/m"
check "no key appears in /metrics or the server's output" \
	bash -c "! grep -q -e '$A' -e '$B' '$tmp/m' '$tmp/server.out' '$tmp/server.err'"

# SIGHUP: a bad file keeps the old keys; a good one brings carol in (to the
# server itself: timeout(1) forwards the first SIGHUP only)
srv=$(cat /proc/$pid/task/$pid/children 2>/dev/null | awk '{print $1}')
srv=${srv:-$pid}
echo "short name=x" >"$tmp/keys2"
cp "$tmp/keys" "$tmp/keys.good"
cp "$tmp/keys2" "$tmp/keys"
kill -HUP "$srv"
sleep 0.5
req "$B"
check "SIGHUP with a bad file: old keys still work, the reason is said" \
	bash -c "[ $code = 200 ] && grep -q 'keys not reloaded: --keys .* line 1: a key is 16..256' '$tmp/server.err'"
{ cat "$tmp/keys.good"; echo "$C name=carol"; } >"$tmp/keys"
kill -HUP "$srv"
sleep 0.5
req "$C"
check "SIGHUP with carol added: carol gets 200" [ "$code" = 200 ]
req "$A"
check "alice's quota survives the reload: 429" [ "$code" = 429 ]

if ! command -v node >/dev/null; then
	echo "FAIL node is not installed (Node 20+ and npm)"; fails=$((fails + 1))
else
	if [ ! -d tests/npm/node_modules/openai ] &&
	   ! (cd tests/npm && timeout 300 npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1); then
		echo "FAIL npm ci in tests/npm"; tail -20 "$tmp/npm.log"; fails=$((fails + 1))
	fi
	(cd tests/npm && timeout 120 node keys_test.mjs "$port" "$B") || fails=$((fails + 1))
fi
kill "$pid"; wait "$pid" 2>/dev/null; pid=

timeout 60 $NC http --model assets/fortune-13m --bind 0.0.0.0 --port 0 >/dev/null 2>"$tmp/pub.err"
check "--bind 0.0.0.0 without --keys: refused ($(head -c 100 "$tmp/pub.err"))" \
	grep -q 'without --keys would open the port to anyone' "$tmp/pub.err"
printf 'sk-zzzzzzzzzzzzzzzzzzzz rpm=x\n' >"$tmp/bad"
timeout 60 $NC http --model assets/fortune-13m --keys "$tmp/bad" --port 0 >/dev/null 2>"$tmp/bad.err"
check "a bad keys file: refused with its line, not the key" \
	bash -c "grep -q 'line 1: .rpm. is not' '$tmp/bad.err' && ! grep -q zzzz '$tmp/bad.err'"

echo "http_keys: $fails failed"
[ "$fails" -eq 0 ]
