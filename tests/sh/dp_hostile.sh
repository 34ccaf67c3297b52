#!/usr/bin/env bash
# Hostile input against the ASan+UBSan build of nextcard serve, replayed
# from a crafted pcap (net_pcap: no root): three well-formed requests, then
# truncated, oversized, bad-checksum, IP-fragment, wrong-version, unknown-type
# and garbage packets, a server-type packet, ACKs/CANCELs for unknown
# requests, reassembly that never completes, a fragment flood from 1100
# addresses, a conflicting fragment, and 1000 clients at once.  The daemon
# must serve the good requests with the right tokens, answer every one of
# the 1000 clients (stream or BUSY, never silence), count each kind of drop,
# give back every mbuf and leak nothing (LeakSanitizer at exit).
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/asan/nextcard}
PCAP=build/tools/ncpcap
tmp=$(mktemp -d /tmp/nextcard-dp-hostile.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
ids=452,188,221,90,170
want=$(build/nextcard generate --model assets/tiny-a --ids "$ids" --max-new 8)
$PCAP gen hostile "$tmp/in.pcap" --ids "$ids" --max-tokens 8 2>/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
timeout 120 $NC serve -l 1 --no-pci --no-huge -m 256 --no-shconf --no-telemetry \
	--log-level='*:warning' --file-prefix "nchostile$$" \
	--vdev="net_pcap0,rx_pcap=$tmp/in.pcap,tx_pcap=$tmp/out.pcap" \
	-- --model assets/tiny-a --seqs 16 --ip 10.77.0.2 --exit-after-idle-ms 800 >"$tmp/serve.log" 2>&1
rc=$?
log=$tmp/serve.log
check "serve (ASan+UBSan) exits 0 by itself (rc=$rc)" [ "$rc" -eq 0 ]
check "no sanitizer report" bash -c "! grep -q 'Sanitizer\|runtime error' '$log'"
check "every mbuf back after close" grep -q '^stats mbufs_in_use_after_close=0$' "$log"
$PCAP dump "$tmp/out.pcap" >"$tmp/out.txt" || true
d=$tmp/out.txt
stream() {
	grep " nc TOKEN rid=$1 " "$d" | grep 'retrans=0' |
		sed 's/.* seq=\([0-9]*\) .* ids=\([0-9,]*\) .*/\1 \2/' | sort -n | cut -d' ' -f2 | paste -sd,
}
for r in 0xa001 0xa002 0xa003; do
	check "good request $r: tokens = nextcard generate" [ "$(stream $r)" = "$want" ]
done
answered=$(grep -E 'nc (FINAL|ERROR) rid=0xf0[0-3][0-9a-f]{2} ' "$d" |
	grep -E 'nc FINAL|code=busy' | sed 's/.*rid=\(0x[0-9a-f]*\).*/\1/' | sort -u | wc -l)
check "1000 clients: each streamed or refused BUSY ($answered)" [ "$answered" -eq 1000 ]
busy=$(grep -cE 'nc ERROR rid=0xf0[0-9a-f]+ .*code=busy' "$d")
check "1000 clients: some refused BUSY, not dropped ($busy)" [ "$busy" -gt 0 ]
check "server-type packet never answered" bash -c "! grep -q 'dport=42030' '$d'"
check "unknown type 200: ERROR names it (bad_type=200)" grep -q 'dport=42020 .*bad_type=200 ' "$d"
check "a body past the limit: TOO_LONG with the limit (detail=262144)" \
	grep -q 'dport=42021 .*code=too long bad_type=1 max_version=1 detail=262144 ' "$d"
check "every checksum right" bash -c "! grep -q 'sum=BAD' '$d'"
counter() { grep -o " $1=[0-9]*" "$log" | head -1 | cut -d= -f2; }
for c in ip_hdr ip_csum udp_csum ip_frag bad_magic malformed version server_type \
	 unknown_request rate_limited client_limit pool_full timeout conflict; do
	v=$(counter $c)
	check "counted: $c=${v:-none}" [ "${v:-0}" -gt 0 ]
done
check "version errors: 4 wrong-version packets" [ "$(counter version)" -eq 4 ]
check "malformed answers rate-limited to 100/s per address" [ "$(grep -c 'dport=43[0-9]* .*code=malformed' "$d")" -le 100 ]
check "UNKNOWN_REQUEST for ACK/CANCEL of unknown ids" grep -q 'code=unknown request' "$d"
if [ "$fails" -ne 0 ]; then echo "--- serve log"; tail -30 "$log"; fi
grep '^stats' "$log" | sed 's/^/     /'
echo "dp_hostile: $fails failed"
[ "$fails" -eq 0 ]
