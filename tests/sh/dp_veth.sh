#!/usr/bin/env bash
# nextcard serve on a DPDK net_af_packet port over a veth pair between two
# network namespaces the test creates; nextcard-cli streams from the other
# namespace.  Then the same with 10% random loss in both directions (tc
# netem on both veth ends, else the appliance's --inject-loss-pct), with the
# client's neighbour entry pinned (veth_pin_neigh: lossy ARP is not the
# protocol).  Every stream must complete with the tokens of `nextcard
# generate`, and no client may be declared dead.  DP_VETH_LOSS=30 stresses
# it; DP_VETH_VERBOSE=1 prints every client's stats.
# Needs root (namespaces, AF_PACKET); skips with one line otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
TAG=v$$
LOSS=${DP_VETH_LOSS:-10}	# percent, both directions (raise it to stress the protocol)
. tests/data/net/veth.sh
tmp=$(mktemp -d /tmp/nextcard-dp-veth.XXXXXX)
trap 'veth_down; rm -rf "$tmp"' EXIT
fails=0
check() {
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
	echo "skip dp_veth: needs root, ip and tc (network namespaces, AF_PACKET, netem)"
	exit 0
fi

toks=$(tr -d ' \n' <assets/tiny-a/reference.json | sed 's/.*"tokens":\[\([0-9,]*\)\].*/\1/')
prompts=("$(echo "$toks" | cut -d, -f1-10)" "$(echo "$toks" | cut -d, -f5-30)" "7,8,9")

run_case() { # name netem-loss% streams arp|pinned [serve args]
	local name=$1 loss=$2 n=$3 arp=$4; shift 4
	veth_up "$loss" || { echo "FAIL $name: namespace setup"; fails=$((fails + 1)); return; }
	if [ "$arp" = pinned ] && ! veth_pin_neigh; then
		echo "FAIL $name: static neighbour entry"; fails=$((fails + 1)); return
	fi
	if ! serve_start "$tmp/serve-$name.log" "$NC" assets/tiny-a "$@"; then
		echo "FAIL $name: serve did not come up"; cat "$tmp/serve-$name.log"
		fails=$((fails + 1)); return
	fi
	local pids=() i
	for i in $(seq 0 $((n - 1))); do
		local p=${prompts[$((i % 3))]}
		$NC generate --model assets/tiny-a --ids "$p" --max-new 24 >"$tmp/want-$name-$i"
		client --ids "$p" --max-tokens 24 >"$tmp/got-$name-$i" 2>"$tmp/err-$name-$i" &
		pids+=($!)
	done
	local ok=0
	for i in $(seq 0 $((n - 1))); do
		wait "${pids[$i]}" && cmp -s "$tmp/want-$name-$i" "$tmp/got-$name-$i" && ok=$((ok + 1))
	done
	check "$name: $ok/$n streams complete with the tokens of nextcard generate" [ "$ok" -eq "$n" ]
	[ "$ok" -eq "$n" ] && [ -z "${DP_VETH_VERBOSE:-}" ] || head -3 "$tmp"/err-"$name"-*
	# a text prompt: tiny-a has no tokenizer.json -> one-line server error
	client "hello" --max-tokens 4 >/dev/null 2>"$tmp/text-$name"
	check "$name: text prompt refused (no tokenizer)" grep -q 'text prompts not supported' "$tmp/text-$name"
	serve_stop
	check "$name: clean stop (summary printed)" grep -q '^latency ttft' "$tmp/serve-$name.log"
	check "$name: prompt ids zero copy" grep -q 'payload_copied_bytes=0 ' "$tmp/serve-$name.log"
	check "$name: no client declared dead" grep -q ' dead_clients=0 ' "$tmp/serve-$name.log"
	grep -E '^(stats stream|latency (ttft|itl))' "$tmp/serve-$name.log" | sed "s/^/     $name: /"
}

run_case lossless "" 4 arp
# 10% loss both ways: tc netem on both veth ends where the kernel has
# netem; else (e.g. a Firecracker kernel without sch_netem) the appliance's
# own loss hook drops 10% of the frames it receives and of those it sends.
if have_netem; then
	echo "     loss$LOSS: tc netem loss $LOSS% on both veth ends"
	run_case "loss$LOSS" "$LOSS" 6 pinned
else
	echo "     loss$LOSS: this kernel has no netem: --inject-loss-pct $LOSS at the DPDK port (rx and tx)"
	run_case "loss$LOSS" "" 6 pinned --inject-loss-pct "$LOSS"
fi
echo "dp_veth: $fails failed"
[ "$fails" -eq 0 ]
