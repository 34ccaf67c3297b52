#!/usr/bin/env bash
# Speculative decoding with fortune-13m's MTP head through every door: the
# CLI, the HTTP API (127.0.0.1) and the UDP data plane (net_pcap, no network).
# Greedy output with --speculative mtp is the reference continuation itself,
# token for token, exactly as without it; the counters say drafts were both
# accepted and rejected; --mtp-logits-out writes the head's rows; a checkpoint
# without mtp.* and an unbuilt draft count are refused with a clear message.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
PCAP=build/tools/ncpcap
MODEL=assets/fortune-13m
REF=$MODEL/reference/reference.json
tmp=$(mktemp -d /tmp/nextcard-spec.XXXXXX)
fails=0
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
check() { # name, command...
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
command -v jq >/dev/null || { echo "FAIL jq is not installed (scripts/deps.sh core)"; exit 1; }

# --- CLI: greedy = the reference, with and without drafts
n=$(jq '.samples | length' $REF)
for i in $(seq 0 $((n - 1))); do
	ids=$(jq -r ".samples[$i].prompt_ids | join(\",\")" $REF)
	want=$(jq -r ".samples[$i].greedy_ids | join(\",\")" $REF)
	plain=$($NC generate --model $MODEL --ids "$ids" --max-new 40 2>/dev/null)
	$NC generate --model $MODEL --ids "$ids" --max-new 40 --speculative mtp --stats \
		>"$tmp/gen$i" 2>&1
	spec=$(head -1 "$tmp/gen$i")
	check "sample $i: generate --speculative mtp = plain = reference" \
		[ "$spec" = "$plain" -a "$spec" = "$want" ]
	sed -n 's/^stats: speculative (MTP, 1 draft a step): \([0-9]*\) drafts verified, \([0-9]*\) accepted.*/\1 \2/p' \
		"$tmp/gen$i" >"$tmp/acc$i"
	read -r dr ac <"$tmp/acc$i"
	check "sample $i: --stats counts drafts ($ac of $dr accepted)" [ "${dr:-0}" -gt "${ac:-0}" ]
done
long=$MODEL/reference/fortune-long.json
lids=$(jq -r '.tokens[:.prompt_len] | join(",")' $long)
lwant=$(jq -r '.tokens[.prompt_len:] | join(",")' $long)
lgot=$($NC generate --model $MODEL --ids "$lids" --max-new 32 --speculative mtp 2>/dev/null)
check "long prompt (700 + 32): generate --speculative mtp = reference" [ "$lgot" = "$lwant" ]
acc=$(cat "$tmp"/acc* | awk '{a += $2} END {print a + 0}')
check "drafts accepted over the samples ($acc)" [ "$acc" -gt 0 ]

toks=$(jq -r '.samples[2].prompt_ids + .samples[2].greedy_ids | join(",")' $REF)
T=$(jq '.samples[2].prompt_ids + .samples[2].greedy_ids | length' $REF)
$NC score --model $MODEL --ids "$toks" --mtp-logits-out "$tmp/mtp.bin" --logits-out "$tmp/main.bin" \
	2>"$tmp/score.err"
check "score --mtp-logits-out: $((T - 1)) rows of 4096 f32" \
	[ "$(stat -c %s "$tmp/mtp.bin" 2>/dev/null)" = $(((T - 1) * 4096 * 4)) ]
check "score --logits-out beside it: $T rows" [ "$(stat -c %s "$tmp/main.bin" 2>/dev/null)" = $((T * 4096 * 4)) ]

$NC generate --model assets/tiny-a --ids 1,2,3 --max-new 4 --speculative mtp >/dev/null 2>"$tmp/e1"
check "a checkpoint without mtp.* refuses --speculative mtp" \
	grep -q 'no multi-token-prediction head (no mtp.\* tensors), so --speculative mtp cannot be used' "$tmp/e1"
$NC score --model assets/tiny-a --ids 1,2,3 --mtp-logits-out "$tmp/x" >/dev/null 2>"$tmp/e2"
check "... and --mtp-logits-out" grep -q 'no multi-token-prediction head' "$tmp/e2"
$NC generate --model $MODEL --ids 1,2,3 --max-new 4 --speculative mtp:2 >/dev/null 2>"$tmp/e3"
check "--speculative mtp:2: only K = 1 is built" grep -q 'only K = 1 is built' "$tmp/e3"
$NC generate --model $MODEL --ids 1,2,3 --max-new 4 --speculative eagle >/dev/null 2>"$tmp/e4"
check "--speculative eagle: refused" grep -q -- '--speculative wants mtp or mtp:1' "$tmp/e4"

# --- HTTP: greedy text = the reference, plain and streamed; counters in /metrics
. tests/data/http/server.sh
if http_start "$tmp" --model $MODEL --speculative mtp; then
	B=http://127.0.0.1:$port
	for i in $(seq 0 $((n - 1))); do
		prompt=$(jq -r ".samples[$i].prompt" $REF)
		jq -j ".samples[$i].greedy_text" $REF >"$tmp/want"
		body=$(jq -nc --arg p "$prompt" '{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:40}')
		curl -s -m 120 -H 'Content-Type: application/json' --data-binary "$body" \
			"$B/v1/completions" | jq -j '.choices[0].text' >"$tmp/got"
		check "http sample $i: greedy text = reference" cmp -s "$tmp/got" "$tmp/want"
		curl -sN -m 120 -H 'Content-Type: application/json' \
			--data-binary "$(echo "$body" | jq -c '.stream=true')" "$B/v1/completions" |
			sed -n 's/^data: //p' | grep -v '^\[DONE\]$' | jq -j '.choices[0].text' >"$tmp/s"
		check "http sample $i: streamed = reference" cmp -s "$tmp/s" "$tmp/want"
	done
	curl -s -m 10 "$B/metrics" >"$tmp/metrics"
	check "/metrics: nextcard_spec_drafts_per_step 1" grep -q '^nextcard_spec_drafts_per_step 1$' "$tmp/metrics"
	check "/metrics: drafts accepted" \
		awk '/^nextcard_spec_accepted_total /{a=$2} /^nextcard_spec_drafted_total /{d=$2} END{exit !(a > 0 && d > a)}' \
		"$tmp/metrics"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
else
	fails=$((fails + 1))
fi

# --- UDP: the data plane streams the same ids, and reports the drafts
ids=$(jq -r '.samples[2].prompt_ids | join(",")' $REF)
want=$(jq -r '.samples[2].greedy_ids[:24] | join(",")' $REF)
$PCAP gen basic "$tmp/in.pcap" --ids "$ids" --max-tokens 24 2>/dev/null
timeout 120 $NC serve -l 1 --no-pci --no-huge -m 128 --no-shconf --no-telemetry \
	--log-level='*:warning' --file-prefix "ncspec$$" \
	--vdev="net_pcap0,rx_pcap=$tmp/in.pcap,tx_pcap=$tmp/out.pcap" \
	-- --model $MODEL --ip 10.77.0.2 --speculative mtp --exit-after-idle-ms 400 \
	>"$tmp/serve.log" 2>&1
rc=$?
check "serve --speculative mtp exits by itself (rc=$rc)" [ "$rc" -eq 0 ]
$PCAP dump "$tmp/out.pcap" >"$tmp/out.txt" || true
got=$(grep " nc TOKEN rid=0x1111 " "$tmp/out.txt" | grep 'retrans=0' |
	sed 's/.* seq=\([0-9]*\) .* ids=\([0-9,]*\) .*/\1 \2/' | sort -n | cut -d' ' -f2 | paste -sd,)
check "udp: token packets = reference ($want)" [ "$got" = "$want" ]
check "udp: serve reports the drafts" \
	grep -Eq '^stats speculative drafts_per_step=1 drafted=[1-9][0-9]* accepted=[1-9]' "$tmp/serve.log"
[ "$fails" -ne 0 ] && { echo "--- serve log"; cat "$tmp/serve.log"; }
echo "speculative: $fails failed"
[ "$fails" -eq 0 ]
