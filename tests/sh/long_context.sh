#!/usr/bin/env bash
# Long context on the emulated card: a random model of the real layer mix
# (tests/data/long/config.json, max_position_embeddings 262144) decodes at
# position 32,800 with its KV cache in pages.  The pool must give one
# sequence every page its context needs and the card must not fail.  (The
# paged kernel is checked against the scalar reference across pages in
# test_kernels; bench_ctx measures decode time against context.)
set -u
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
tmp=$(mktemp -d /tmp/nextcard-long.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

$NC synth --config tests/data/long/config.json --out "$tmp/m" --seed 3 >/dev/null 2>&1 ||
	{ echo "FAIL synth"; exit 1; }
# 32,800 prompt ids below 100 (short on the command line), seeded
ids=$(awk 'BEGIN { srand(7); s = ""; for (i = 0; i < 32800; i++) s = s (i ? "," : "") int(rand() * 100); print s }')
$NC info --model "$tmp/m" --ctx 33024 >"$tmp/info" 2>&1
grep '^state pool' "$tmp/info"
pages=$(sed -n 's/.* \([0-9]*\) KV pages of 64 positions.*/\1/p' "$tmp/info")
check "pool holds a 33,024-position sequence in pages (${pages:-none} pages of 64)" \
	[ "${pages:-0}" -ge 516 ]
$NC generate --model "$tmp/m" --ctx 33024 --ids "$ids" --max-new 8 --stats >"$tmp/out" 2>&1
rc=$?
check "decode at 32,800 positions (rc=$rc)" [ "$rc" -eq 0 ]
toks=$(head -1 "$tmp/out")
check "8 tokens: $toks" [ "$(echo "$toks" | tr ',' '\n' | grep -c '^[0-9][0-9]*$')" -eq 8 ]
# (how many decode steps the stats window catches varies from run to run)
steps=$(sed -n 's/^stats: \([0-9]*\) decode steps measured.*/\1/p' "$tmp/out")
check "decode steps measured past 32K (${steps:-none})" [ "${steps:-0}" -ge 1 ]
grep -E '^stats: (prefill|state pool)|krnl_attn_decode' "$tmp/out"
$NC generate --model "$tmp/m" --ctx 32768 --ids "$ids" --max-new 8 >"$tmp/o2" 2>&1
check "a prompt past --ctx is refused ($(head -c 120 "$tmp/o2"))" grep -qi 'prompt\|context' "$tmp/o2"
[ "$fails" -eq 0 ] && echo "long_context: all checks passed" || { echo "long_context: $fails failed"; exit 1; }
