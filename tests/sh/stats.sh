#!/usr/bin/env bash
# generate --stats on fortune-13m: the bytes the kernels' accessor counted per
# decoded token stay within 1.05x of the floor for bf16, int8 and int4 — the
# active weights alone for bf16, the weights plus the recurrent state and KV
# cache a token must read for every format (fortune-13m's f32 state is 5% of
# its int4 weights; docs/performance.md).  Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
bin=build/nextcard
fail=0
ids=316,3545,289,1980,300

ratio() {	# $1: output, $2: which floor ("active-weight" or "step")
	sed -n "s/^stats: $2 floor per token .*ratio \([0-9.]*\)$/\1/p" <<<"$1"
}

for q in none int8:64 int4:64; do
	args=()
	[ "$q" = none ] || args=(--quant "$q")
	out=$(timeout 300 "$bin" generate --model assets/fortune-13m --ids $ids --max-new 24 --stats \
		"${args[@]}" 2>/dev/null)
	w=$(ratio "$out" active-weight)
	s=$(ratio "$out" step)
	if [ -z "$w" ] || [ -z "$s" ]; then
		echo "FAIL $q: no ratios in: $out"
		fail=1
		continue
	fi
	limit_w=1.05
	[ "$q" = none ] || limit_w=1.10	# the f32 state weighs more next to smaller weights
	if awk -v a="$s" 'BEGIN { exit !(a <= 1.05 && a >= 1.0) }' &&
	   awk -v a="$w" -v l="$limit_w" 'BEGIN { exit !(a <= l && a >= 1.0) }'; then
		echo "ok   $q: bytes/token vs weights $w, vs weights+state $s"
	else
		echo "FAIL $q: bytes/token vs weights $w (limit $limit_w), vs weights+state $s (limit 1.05)"
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "stats: all checks passed"
exit $fail
