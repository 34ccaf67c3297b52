# tests/data/net/veth.sh — sourced by the dp_* tests and scripts/demo.sh.
# Two network namespaces joined by a veth pair: the appliance's end (no IP:
# DPDK's net_af_packet owns it) in $NS_S, the client's end (10.77.0.1/24) in
# $NS_C.  Nothing touches the root namespace.  Caller sets TAG.
NS_S=ncs-$TAG; NS_C=ncc-$TAG; IF_S=vs-$TAG; IF_C=vc-$TAG
SRV_IP=10.77.0.2
SERVE_PID=

veth_down() {
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -INT "$SERVE_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SERVE_PID" 2>/dev/null
	fi
	ip netns del "$NS_S" 2>/dev/null
	ip netns del "$NS_C" 2>/dev/null
	return 0
}

# 1 if this kernel has netem (tc qdisc ... netem), probed in a throwaway namespace.
have_netem() {
	local ns=ncprobe-$TAG rc=1
	ip netns add "$ns" 2>/dev/null || return 1
	ip -n "$ns" link add pa type veth peer name pb 2>/dev/null &&
		ip netns exec "$ns" tc qdisc add dev pa root netem loss 1% 2>/dev/null && rc=0
	ip netns del "$ns" 2>/dev/null
	return $rc
}

# veth_up [loss%]: namespaces, pair, addresses; netem loss on both ends.
veth_up() {
	veth_down
	ip netns add "$NS_S" && ip netns add "$NS_C" &&
	ip link add "$IF_S" netns "$NS_S" type veth peer name "$IF_C" netns "$NS_C" &&
	ip -n "$NS_S" link set lo up && ip -n "$NS_C" link set lo up &&
	ip -n "$NS_S" link set "$IF_S" up && ip -n "$NS_C" link set "$IF_C" up &&
	ip -n "$NS_C" addr add 10.77.0.1/24 dev "$IF_C" || return 1
	# the appliance's end carries no IP: the kernel there stays quiet
	ip netns exec "$NS_S" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
	ip netns exec "$NS_C" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
	if [ -n "${1:-}" ]; then
		ip netns exec "$NS_S" tc qdisc add dev "$IF_S" root netem loss "$1%" &&
		ip netns exec "$NS_C" tc qdisc add dev "$IF_C" root netem loss "$1%" || return 1
	fi
}

# veth_pin_neigh: a permanent neighbour entry for the appliance in $NS_C.
# Under injected or netem loss the client kernel's own ARP is lossy too, and
# Linux resolves slowly (a probe a second, 3 probes, then FAILED: the queued
# REQUESTs are dropped), which costs seconds before any protocol packet flows
# and can outlast the client's request timer.  The loss tests pin the entry:
# they test protocol v1, not ARP (the lossless case and dp_pcap test ARP).
veth_pin_neigh() {
	local mac
	mac=$(ip -n "$NS_S" -o link show "$IF_S" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	[ -n "$mac" ] && ip -n "$NS_C" neigh replace "$SRV_IP" lladdr "$mac" dev "$IF_C" nud permanent
}

# serve_start LOG NC_BINARY MODEL [app args...]: start the appliance in $NS_S,
# wait for its "ready" line (20 s at most).
serve_start() {
	local log=$1 bin=$2 model=$3; shift 3
	ip netns exec "$NS_S" timeout 300 "$bin" serve -l 1 --no-pci --no-huge -m 128 \
		--no-shconf --no-telemetry --log-level='*:warning' --file-prefix "nc$TAG" \
		--vdev="net_af_packet0,iface=$IF_S,qdisc_bypass=0" \
		-- --model "$model" --ip "$SRV_IP" "$@" >"$log" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 200); do
		grep -q '; ready$' "$log" 2>/dev/null && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# serve_stop: SIGINT, wait for the summary (10 s at most).  Returns its status.
serve_stop() {
	local rc=0
	kill -INT "$SERVE_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
	wait "$SERVE_PID" 2>/dev/null || rc=$?
	SERVE_PID=
	return $rc
}

client() { # nextcard-cli in the client namespace
	ip netns exec "$NS_C" timeout 60 build/nextcard-cli --host "$SRV_IP" "$@"
}
