#!/usr/bin/env bash
# `make demo`: the appliance end to end on this machine.  nextcard serve
# runs the bundled fortune-13m model on the emulated card behind a DPDK
# net_af_packet port (one end of a veth pair in a network namespace this
# script creates); nextcard-cli sends a text prompt from a second namespace
# and streams the text; then the appliance stops and prints the per-token
# latency it measured at the NIC: TTFT, inter-token p50/p90/p99, card
# compute and appliance overhead.  Namespaces are removed on exit.
# Without root or AF_PACKET it says so and falls back to the HTTP API
# (`nextcard http` + curl), else to `nextcard generate`.
set -uo pipefail
cd "$(dirname "$0")/.."
NC=build/nextcard
MODEL=assets/fortune-13m
PROMPT=${DEMO_PROMPT:-"Q: Why did the chicken cross the road?
A:"}
MAXTOK=${DEMO_TOKENS:-48}
TAG=demo$$
. tests/data/net/veth.sh
tmp=$(mktemp -d /tmp/nextcard-demo.XXXXXX)
trap 'veth_down; rm -rf "$tmp"' EXIT

fallback() {
	echo "demo: $1"
	local help
	help=$($NC http --help 2>&1)
	if [[ $help == *--port* ]] && command -v curl >/dev/null; then
		echo "demo: falling back to the HTTP API: nextcard http + curl /v1/completions"
		$NC http --model "$MODEL" --name fortune-13m --port 18437 --exit-after-ms 60000 \
			>"$tmp/http.log" 2>&1 &
		local pid=$! p
		for _ in $(seq 100); do
			curl -s http://127.0.0.1:18437/health >/dev/null 2>&1 && break
			sleep 0.1
		done
		p=$(printf '%s' "$PROMPT" | sed ':a;N;$!ba;s/\\/\\\\/g;s/"/\\"/g;s/\n/\\n/g')
		curl -s http://127.0.0.1:18437/v1/completions -H 'Content-Type: application/json' \
			-d "{\"model\": \"fortune-13m\", \"prompt\": \"$p\", \"max_tokens\": $MAXTOK}"
		echo
		kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null
		return 0
	fi
	echo "demo: falling back to nextcard generate with the prompt's ids"
	local ids
	ids=$(printf '%s' "$PROMPT" | $NC tokenize --model "$MODEL")
	$NC generate --model "$MODEL" --ids "$ids" --max-new "$MAXTOK" | $NC detokenize --model "$MODEL" --ids "$(cat)"
	echo
}

[ -x "$NC" ] && [ -x build/nextcard-cli ] || { echo "demo: build first (make all)"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
	fallback "not root: no network namespaces or AF_PACKET for a DPDK port here"
	exit $?
fi
if ! veth_up; then
	fallback "cannot create network namespaces/veth here"
	exit $?
fi
if ! serve_start "$tmp/serve.log" "$NC" "$MODEL"; then
	cat "$tmp/serve.log"
	fallback "nextcard serve did not come up on net_af_packet (see above)"
	exit $?
fi
echo "demo: $(grep '; ready$' "$tmp/serve.log")"
echo "demo: appliance in netns $NS_S on $IF_S (DPDK net_af_packet), client in $NS_C (10.77.0.1)"
echo "demo: prompt: $PROMPT"
echo "----"
printf '%s' "$PROMPT"
client "$PROMPT" --max-tokens "$MAXTOK" 2>"$tmp/cli.err"
rc=$?
echo "----"
sed 's/^/client: /' "$tmp/cli.err"
# a second, longer run so the percentiles have something to chew on
client "Q: What is the best thing about Unix?
A:" --max-tokens 96 >/dev/null 2>&1
serve_stop
echo "appliance (measured at the NIC: rx_burst return -> just before tx_burst):"
grep -E '^(latency|stats (rx_packets|requests|stream))' "$tmp/serve.log" | sed 's/^/  /'
cat <<'NOTE'
  ttft: request rx -> first token tx; itl: token tx -> next token tx;
  card: card compute of the step behind each token; overhead: latency - card;
  event_tx: card result seen by the scheduler poll -> its packet at tx_burst.
NOTE
exit $rc
