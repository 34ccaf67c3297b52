#!/usr/bin/env bash
# The emulated card is only as fast as its inner loop.  On a CPU with
# AVX2/FMA/F16C the weight-row dot products of the weight-streaming kernels
# must take the vector path (hls_kernels/krnl_mem_x86.h, bit-identical to the
# HLS loop: test_wfmt checks that), built with the flags the Makefile gives
# the kernels.  A build that silently falls back to the scalar HLS loop (flags
# lost, the KRNL_X86_VEC switch broken) fails here.  Run from the repo root by
# tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
cc=${CC:-gcc}
base="-std=c11 -D_GNU_SOURCE -O2 -Wno-unknown-pragmas -I. -Ihls_kernels"
if ! { grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; }; then
	echo "skip: this CPU has no AVX2/FMA/F16C, the kernels run their HLS loops"
	exit 0
fi
# the Makefile's kernel flags, as make itself computes them
flags=$(make -s --no-print-directory -f Makefile -f - print-krnl-cpu <<'EOF'
print-krnl-cpu:
	@echo $(KRNL_CPU)
EOF
)
case "$flags" in
*-mf16c*) ;;
*) echo "FAIL the Makefile gives the kernels no vector flags on this CPU: '$flags'"; exit 1 ;;
esac
fail=0
# the f16 widening instruction of the vector path, in every streaming kernel
widen() { $cc $base $1 -c "hls_kernels/$2.c" -o /tmp/nc-vec.$$.o && objdump -d /tmp/nc-vec.$$.o | grep -c vcvtph2ps; }
for k in krnl_gemv krnl_expert_ffn krnl_lm_head_argmax; do
	n=$(widen "$flags" $k)
	if [ "${n:-0}" -ge 1 ]; then
		echo "ok   $k: vector path ($n f16 widenings, $flags)"
	else
		echo "FAIL $k: no vector widening with $flags: the kernel runs the scalar HLS loop"
		fail=1
	fi
done
# and the check itself can fail: without F16C the same kernel has none
n=$(widen "-mavx2 -mfma" krnl_gemv)
if [ "${n:-0}" -ne 0 ]; then
	echo "FAIL the check sees vector widening in a build without F16C"
	fail=1
fi
rm -f /tmp/nc-vec.$$.o
[ $fail -eq 0 ] && echo "vectorized: all checks passed"
exit $fail
