#!/usr/bin/env bash
# Per-token latency of nextcard serve at the NIC, for docs/dataplane.md:
# tiny-a on the emulated card behind net_af_packet on a veth pair, N
# sequential nextcard-cli requests (greedy, 64 tokens) from the client
# namespace, then the appliance's own summary.  Root only.
#   bash tests/data/net/bench.sh [N]
set -uo pipefail
cd "$(dirname "$0")/../../.."
N=${1:-20}
TAG=bench$$
. tests/data/net/veth.sh
tmp=$(mktemp -d /tmp/nextcard-bench.XXXXXX)
trap 'veth_down; rm -rf "$tmp"' EXIT
veth_up || exit 1
serve_start "$tmp/serve.log" build/nextcard assets/tiny-a || { cat "$tmp/serve.log"; exit 1; }
for i in $(seq "$N"); do
	client --ids 452,188,221,90,170 --max-tokens 64 >/dev/null 2>>"$tmp/cli.log" || echo "bench: request $i failed"
done
serve_stop
echo "host: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); $N requests x 64 tokens, tiny-a, emu card"
grep -E '^(latency|stats stream)' "$tmp/serve.log"
grep '^ttft' "$tmp/cli.log" | tail -1 | sed 's/^/client (last request): /'
