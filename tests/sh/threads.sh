#!/usr/bin/env bash
# Compute units as threads (driver_shim/shim_emu.c): the emulated card split
# across 2 and 3 CU threads must give the logits of one thread bit for bit,
# and the same HBM counters, in every weight format path.  Splitting is
# forced on fortune-13m's small matrices (NEXTCARD_SPLIT_MIN=0), and --stats
# must show that calls really were split (else this test proves nothing).
# The ASan/UBSan build runs the split paths too.
# Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
bin=build/nextcard
m=assets/fortune-13m
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ids=$(seq -s, 300 17 3700)	# 201 positions: prefill chunks and decode-sized steps

for q in none int8:64 int4:64; do
	args=()
	[ "$q" = none ] || args=(--quant "$q")
	for t in 1 2 3; do
		NEXTCARD_SPLIT_MIN=0 timeout 300 "$bin" score --model $m --ids "$ids" --threads $t \
			--logits-out "$tmp/l$t.bin" "${args[@]}" 2>"$tmp/err" ||
			{ echo "FAIL $q threads $t: score failed: $(cat "$tmp/err")"; fail=1; }
		NEXTCARD_SPLIT_MIN=0 timeout 300 "$bin" generate --model $m --ids 316,3545,289,1980,300 \
			--max-new 12 --stats --threads $t "${args[@]}" >"$tmp/g$t.txt" 2>&1 ||
			{ echo "FAIL $q threads $t: generate failed"; fail=1; }
	done
	for t in 2 3; do
		if ! cmp -s "$tmp/l1.bin" "$tmp/l$t.bin" || [ ! -s "$tmp/l1.bin" ]; then
			echo "FAIL $q: logits with $t CU threads differ from one thread"
			fail=1
		fi
		# the ids and each kernel's bytes and calls per token (not its time; not attention's:
		# how many decode steps the snapshot catches, so which positions,
		# varies from run to run)
		keep='^[0-9]|^stats:   krnl_|^stats: expert weight'
		# (the decode window's lines: the prefill's follow "stats: prefill (")
		dec='/^stats: prefill (/q'
		if ! diff <(sed "$dec" "$tmp/g1.txt" | grep -E "$keep" | grep -v krnl_attn_decode | sed 's/ *[0-9.]* us$//') \
			<(sed "$dec" "$tmp/g$t.txt" | grep -E "$keep" | grep -v krnl_attn_decode | sed 's/ *[0-9.]* us$//') \
			>/dev/null; then
			echo "FAIL $q: generate --stats with $t CU threads differs from one thread"
			fail=1
		fi
	done
	split=$(sed -n 's/^stats: emulated card on 2 CU threads, \([0-9.]*\) kernel calls.*/\1/p' "$tmp/g2.txt")
	if awk -v s="${split:-0}" 'BEGIN { exit !(s >= 1) }'; then
		echo "ok   $q: 1, 2 and 3 CU threads bit-identical ($split calls per token split)"
	else
		echo "FAIL $q: no call was split across 2 CU threads: $(grep 'CU thread' "$tmp/g2.txt")"
		fail=1
	fi
done
# split-K attention: past 1,024 positions a decode step's attention runs in
# blocks spread over the CU threads (2 attention layers: 2 split calls per
# token); the tokens must be those of one thread
long=$(seq -s, 7 3 3306)	# 1,100 positions
for t in 1 2; do
	timeout 300 "$bin" generate --model $m --ids "$long" --max-new 8 --stats --threads $t \
		>"$tmp/k$t.txt" 2>&1 || { echo "FAIL split-K: generate with $t threads failed"; fail=1; }
done
ksplit=$(sed -n 's/^stats: emulated card on 2 CU threads, \([0-9.]*\) kernel calls.*/\1/p' "$tmp/k2.txt")
if [ "$(head -1 "$tmp/k1.txt")" = "$(head -1 "$tmp/k2.txt")" ] && [ -s "$tmp/k1.txt" ] &&
   awk -v s="${ksplit:-0}" 'BEGIN { exit !(s >= 2) }'; then
	echo "ok   split-K attention at 1,100 positions: 1 and 2 CU threads say the same ($ksplit calls per token split)"
else
	echo "FAIL split-K attention: $(head -1 "$tmp/k1.txt") vs $(head -1 "$tmp/k2.txt"), $ksplit calls per token split"
	fail=1
fi
# the split paths under ASan/UBSan (build/asan/nextcard), same logits again
if [ -x build/asan/nextcard ]; then
	for q in none int4:64; do
		args=()
		[ "$q" = none ] || args=(--quant "$q")
		NEXTCARD_SPLIT_MIN=0 timeout 300 "$bin" score --model $m --ids "$ids" --threads 1 \
			--logits-out "$tmp/r.bin" "${args[@]}" 2>/dev/null
		if NEXTCARD_SPLIT_MIN=0 timeout 600 build/asan/nextcard score --model $m --ids "$ids" \
			--threads 2 --logits-out "$tmp/a.bin" "${args[@]}" 2>"$tmp/err" &&
		   cmp -s "$tmp/r.bin" "$tmp/a.bin"; then
			echo "ok   $q: split across 2 CU threads under ASan/UBSan, same logits"
		else
			echo "FAIL $q: ASan/UBSan run with 2 CU threads: $(tail -n 3 "$tmp/err")"
			fail=1
		fi
	done
	if timeout 600 build/asan/nextcard generate --model $m --ids "$long" --max-new 8 \
		--threads 2 >"$tmp/ka.txt" 2>"$tmp/err" &&
	   [ "$(head -1 "$tmp/ka.txt")" = "$(head -1 "$tmp/k1.txt")" ]; then
		echo "ok   split-K attention under ASan/UBSan, same tokens"
	else
		echo "FAIL split-K attention under ASan/UBSan: $(tail -n 3 "$tmp/err")"
		fail=1
	fi
fi
[ $fail -eq 0 ] && echo "threads: all checks passed"
exit $fail
