#!/usr/bin/env bash
# The UDP door when the card fails (net_pcap, no root, no network): with
# --inject-fault the card fails before the first token or mid-stream; every
# stream in flight ends at once with an ERROR (code internal, naming the
# card) or a FINAL with reason error after the tokens it had, the tokens
# sent are the ones `nextcard generate` gives; serve resets the card (boot,
# weights loaded again) and goes on answering until idle, then exits
# non-zero (a fault happened).  tests/sh/http_fault.sh shows the next request
# served after a reset.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
PCAP=build/tools/ncpcap
tmp=$(mktemp -d /tmp/nextcard-dp-fault.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name, command...
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
toks=$(tr -d ' \n' <assets/tiny-a/reference.json | sed 's/.*"tokens":\[\([0-9,]*\)\].*/\1/')
ids=$(echo "$toks" | cut -d, -f1-10)
want=$($NC generate --model assets/tiny-a --ids "$ids" --max-new 12)
$PCAP gen basic "$tmp/in.pcap" --ids "$ids" --max-tokens 12 2>/dev/null
run() { # fault spec -> $tmp/out-SPEC.txt, rc in $rc
	timeout 60 $NC serve -l 1 --no-pci --no-huge -m 128 --no-shconf --no-telemetry \
		--log-level='*:warning' --file-prefix "ncfault$$${1//[^0-9]/}" \
		--vdev="net_pcap0,rx_pcap=$tmp/in.pcap,tx_pcap=$tmp/out.pcap" \
		-- --model assets/tiny-a --ip 10.77.0.2 --exit-after-idle-ms 400 \
		--inject-fault "$1" >"$tmp/log-$1" 2>&1
	rc=$?
	$PCAP dump "$tmp/out.pcap" | grep -v 'retrans=1' >"$tmp/out-$1.txt" || true
}
stream() { # file rid -> token ids in seq order
	grep " nc TOKEN rid=$2 " "$1" | sed 's/.* seq=\([0-9]*\) .* ids=\([0-9,]*\) .*/\1 \2/' |
		sort -n | cut -d' ' -f2 | paste -sd,
}

run error@60
d=$tmp/out-error@60.txt
check "before the first token: serve exits by itself, rc 1 ($rc)" [ "$rc" -eq 1 ]
for rid in 0x1111 0x4444 0x6666; do
	check "before the first token: $rid gets ERROR internal naming the card" \
		grep -q "nc ERROR rid=$rid .*code=internal .*msg=\"the card failed: token step:" "$d"
done
check "serve says so, and that it reset the card" \
	grep -q 'the card failed (token step: .*); reset in [0-9.]* s, serving again' "$tmp/log-error@60"

run error@250
d=$tmp/out-error@250.txt
got=$(stream "$d" 0x1111)
check "mid-stream: serve exits by itself, rc 1 ($rc)" [ "$rc" -eq 1 ]
check "mid-stream: tokens before the fault are generate's ($got)" \
	[ -n "$got" -a "${want#"$got"}" != "$want" ]
check "mid-stream: FINAL reason error with the tokens counted" \
	grep -q "nc FINAL rid=0x1111 .*reason=error .*completion_tokens=$(echo "$got" | tr ',' '\n' | wc -l)" "$d"
check "mid-stream: the other streams end too" \
	bash -c "grep -q 'nc FINAL rid=0x4444 .*reason=error' '$d' && grep -q 'nc FINAL rid=0x6666 .*reason=error' '$d'"
[ "$fails" -ne 0 ] && { cat "$tmp/log-error@250"; head -30 "$d"; }
echo "dp_fault: $fails failed"
[ "$fails" -eq 0 ]
