#!/usr/bin/env bash
# The kernels' cycle model (hls_kernels/krnl_cycles.c) predicts, beat for beat,
# what the accessor's meter counts on whole decode steps of the emulated card:
# bf16, int4 experts, the int4 plan, and tiny-a in f32.  Run by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
tool=build/tools/cycles
fail=0
check() {
	if out=$(timeout 300 "$tool" "$@" --check 4 2>&1); then
		echo "ok   cycles $*: $(tail -n 1 <<<"$out")"
	else
		echo "FAIL cycles $*:"
		sed 's/^/     /' <<<"$out"
		fail=1
	fi
}
check --model assets/fortune-13m
check --model assets/fortune-13m --quant experts=int4:64
check --model assets/fortune-13m --quant int4:64
check --model assets/tiny-a
[ $fail -eq 0 ] && echo "cycles: all checks passed"
exit $fail
