#!/usr/bin/env bash
# nextcard serve replayed from a crafted pcap through DPDK's net_pcap (no
# root, no network): ARP and ICMP echo answered, requests (single packet,
# fragmented, UDP checksum 0, duplicate) streamed with the ids
# `nextcard generate` gives, PING answered, ERRORs for malformed, wrong
# version and text-without-tokenizer packets; every checksum checked.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
PCAP=build/tools/ncpcap
tmp=$(mktemp -d /tmp/nextcard-dp-pcap.XXXXXX)
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
timeout 60 $NC serve -l 1 --no-pci --no-huge -m 128 --no-shconf --no-telemetry \
	--log-level='*:warning' --file-prefix "ncpcap$$" \
	--vdev="net_pcap0,rx_pcap=$tmp/in.pcap,tx_pcap=$tmp/out.pcap" \
	-- --model assets/tiny-a --ip 10.77.0.2 --exit-after-idle-ms 400 >"$tmp/serve.log" 2>&1
rc=$?
check "serve exits by itself (rc=$rc)" [ "$rc" -eq 0 ]
$PCAP dump "$tmp/out.pcap" >"$tmp/out.txt" || true
d=$tmp/out.txt

stream() { # rid -> ids of its first-sent TOKEN packets in seq order
	grep " nc TOKEN rid=$1 " "$d" | grep 'retrans=0' |
		sed 's/.* seq=\([0-9]*\) .* ids=\([0-9,]*\) .*/\1 \2/' | sort -n | cut -d' ' -f2 | paste -sd,
}

check "ARP reply for 10.77.0.2" grep -q '^arp op=2 sha=02:70:63:61:70:00 sip=10.77.0.2 tip=10.77.0.1 tha=02:00:00:00:00:01$' "$d"
check "ICMP echo reply" grep -q '^icmp type=0 id=0x1234 seq=1 src=10.77.0.2 dst=10.77.0.1 ipsum=ok icmpsum=ok data=nextcard$' "$d"
check "every checksum right" bash -c "! grep -q 'sum=BAD' '$d'"
check "ACCEPTED (10 prompt tokens, window 64)" grep -q 'nc ACCEPTED rid=0x1111 seq=0 dport=40001 retrans=0 queue_pos=0 prompt_tokens=10 window=64' "$d"
check "tokens = nextcard generate ($want)" [ "$(stream 0x1111)" = "$want" ]
check "fragmented request: same tokens" [ "$(stream 0x4444)" = "$want" ]
check "UDP checksum 0: same tokens" [ "$(stream 0x6666)" = "$want" ]
check "FINAL length, usage 10+12" grep -q 'nc FINAL rid=0x1111 seq=12 dport=40001 retrans=0 reason=length err=0 prompt_tokens=10 completion_tokens=12' "$d"

# a prompt as long as the context (--ctx 64): accepted, one token, then FINAL
# length; one id longer: TOO_LONG with the longest prompt taken (64)
for n in 64 65; do
	long=$(echo "$toks" | cut -d, -f1-64)	# the reference holds 64 ids
	[ $n = 65 ] && long="$long,7"
	$PCAP gen basic "$tmp/ctx$n.pcap" --ids "$long" --max-tokens 12 2>/dev/null
	timeout 60 $NC serve -l 1 --no-pci --no-huge -m 128 --no-shconf --no-telemetry \
		--log-level='*:warning' --file-prefix "ncpcapc$n$$" \
		--vdev="net_pcap0,rx_pcap=$tmp/ctx$n.pcap,tx_pcap=$tmp/ctxo$n.pcap" \
		-- --model assets/tiny-a --ctx 64 --ip 10.77.0.2 --exit-after-idle-ms 400 >/dev/null 2>&1
	$PCAP dump "$tmp/ctxo$n.pcap" >"$tmp/ctx$n.txt" || true
done
check "a prompt of the whole context: one token, FINAL length" \
	grep -q 'nc FINAL rid=0x1111 seq=1 dport=40001 retrans=0 reason=length err=0 prompt_tokens=64 completion_tokens=1' "$tmp/ctx64.txt"
check "one id past it: TOO_LONG, detail 64" \
	grep -q 'nc ERROR rid=0x1111 .*code=too long .*detail=64 ' "$tmp/ctx65.txt"
check "duplicate request: one stream" [ "$(grep -c 'nc TOKEN rid=0x1111 seq=0 .*retrans=0' "$d")" -eq 1 ]
check "duplicate request: ACCEPTED again" [ "$(grep -c 'nc ACCEPTED rid=0x1111' "$d")" -eq 2 ]
check "token packet timestamps: tx after rx" bash -c "! grep 'nc TOKEN' '$d' | grep -q 'tx_after_rx_ns=0 '"
check "retransmissions are the same tokens" bash -c "
	grep ' nc TOKEN ' '$d' | sed 's/.*rid=\([^ ]*\) seq=\([0-9]*\) .*retrans=\([01]\) .*ids=\([0-9,]*\) .*/\1 \2 \4/' |
	sort -u | awk '{k=\$1\" \"\$2; if (k in s && s[k]!=\$3) bad=1; s[k]=\$3} END{exit bad}'"
check "PONG (256 sequences, queue 64)" grep -q 'nc PONG rid=0x0 seq=77 dport=40002 retrans=0 client_ns=12345 slots_total=256 .* queue_max=64' "$d"
check "ERROR malformed (reserved field)" grep -q 'nc ERROR rid=0x2222 seq=0 dport=40003 retrans=0 code=malformed' "$d"
check "ERROR unsupported version, max_version 1" grep -q 'nc ERROR rid=0x0 seq=0 dport=40004 retrans=0 code=unsupported version bad_type=1 max_version=1' "$d"
check "ERROR text prompt without tokenizer" grep -q 'nc ERROR rid=0x5555 .*code=malformed .*msg="text prompts not supported"' "$d"
check "server never answered twice the same ERROR" [ "$(grep -c 'nc ERROR' "$d")" -eq 3 ]
check "zero copy: prompt ids not copied (3 requests in place)" grep -q 'ids_zero_copy=3 ids_realigned=0' "$tmp/serve.log"
check "only the reassembly copies (80 bytes)" grep -q 'payload_copied_bytes=80 ' "$tmp/serve.log"
if [ "$fails" -ne 0 ]; then
	echo "--- serve log"; cat "$tmp/serve.log"; echo "--- out.pcap"; head -40 "$d"
fi

# Stop strings (protocol 5, flag STOP_TEXT) on fortune-13m, which has a
# tokenizer: the greedy continuation is "\tTo see his friend Gregory peck.\n\nQ:..."
sf=$fails
$PCAP gen stop "$tmp/stop.pcap" --text $'Q: Why did the chicken cross the road?\nA:' \
	--stop friend --max-tokens 24 2>/dev/null
timeout 60 $NC serve -l 1 --no-pci --no-huge -m 128 --no-shconf --no-telemetry \
	--log-level='*:warning' --file-prefix "ncstop$$" \
	--vdev="net_pcap0,rx_pcap=$tmp/stop.pcap,tx_pcap=$tmp/stop-out.pcap" \
	-- --model assets/fortune-13m --ip 10.77.0.2 --exit-after-idle-ms 400 >"$tmp/stop.log" 2>&1
rc=$?
check "stop: serve exits by itself (rc=$rc)" [ "$rc" -eq 0 ]
$PCAP dump "$tmp/stop-out.pcap" >"$tmp/stop.txt" || true
d=$tmp/stop.txt
text() { # rid -> its text pieces (C-escaped) in seq order, first sends only
	grep " nc TOKEN rid=$1 " "$d" | grep 'retrans=0' | sed -n 's/.* seq=\([0-9]*\) .*/\1 &/p' |
		sort -n | sed -n 's/.* text="\(.*\)"$/\1/p' | tr -d '\n'
}
full=$(stream 0x7773)
check "stop: text cut at the match" [ "$(text 0x7771)" = '\tTo see his ' ]
check "stop: FINAL stop, usage 13+4" grep -q 'nc FINAL rid=0x7771 seq=4 .*retrans=0 reason=stop err=0 prompt_tokens=13 completion_tokens=4$' "$d"
check "stop: ids up to the matching token (no TEXT_OUT)" [ "$(stream 0x7772)" = "$(echo "$full" | cut -d, -f1-4)" ]
check "stop: no text without TEXT_OUT" bash -c "! grep ' nc TOKEN rid=0x7772 ' '$d' | grep -q 'text='"
check "stop: FINAL stop without TEXT_OUT" grep -q 'nc FINAL rid=0x7772 seq=4 .*reason=stop err=0 prompt_tokens=13 completion_tokens=4$' "$d"
check "no stop string: the whole continuation" [ "$(text 0x7773)" = '\tTo see his friend Gregory peck.\n\nQ:\tWhy did the chicken cross the playground?\nA' ]
check "unmatched stop strings: same text (held pieces released)" [ "$(text 0x7774)" = "$(text 0x7773)" ]
check "unmatched stop strings: same ids, FINAL length" bash -c "[ '$(stream 0x7774)' = '$full' ] && grep -q 'nc FINAL rid=0x7774 seq=24 .*reason=length' '$d'"
check "unmatched stop strings: a piece held back (empty) then released" grep -q 'nc TOKEN rid=0x7774 seq=4 .*text_len=0$' "$d"
check "malformed stop section: ERROR" grep -q 'nc ERROR rid=0x7775 .*code=malformed' "$d"
check "stop: 2 hits counted" grep -q 'stop_text_hits=2' "$tmp/stop.log"
if [ "$fails" -ne "$sf" ]; then
	echo "--- stop serve log"; cat "$tmp/stop.log"; echo "--- stop out.pcap"; grep -v retrans=1 "$d" | head -60
fi
echo "dp_pcap: $fails failed"
[ "$fails" -eq 0 ]
