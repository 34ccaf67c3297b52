#!/usr/bin/env bash
# The emulated card is only as fast as its inner loop: gcc must vectorize the
# per-beat dot product (krnl_dot_beats in hls_kernels/krnl_mem.h: products,
# the fold onto 16 lanes, the partial sums) in every weight-streaming kernel,
# with the flags the Makefile builds them with.  A loop form that stops
# vectorizing (HLS-style `if (i >= n) break;`, a carried scalar sum) fails
# here.  Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
cc=${CC:-gcc}
flags="-std=c11 -D_GNU_SOURCE -O2 -fvect-cost-model=dynamic -Wno-unknown-pragmas -I. -Ihls_kernels"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
	flags="$flags -mavx2 -mfma -mf16c"
fi
hdr=hls_kernels/krnl_mem.h
# the lines of krnl_dot_beats: from its name to the closing brace at column 0
lo=$(grep -n 'krnl_dot_beats(const krnl_word' "$hdr" | head -n 1 | cut -d: -f1)
hi=$(awk -v lo="$lo" 'NR > lo && /^}/ { print NR; exit }' "$hdr")
fail=0
if [ -z "$lo" ] || [ -z "$hi" ]; then
	echo "FAIL cannot find krnl_dot_beats in $hdr"
	exit 1
fi
for k in krnl_gemv krnl_expert_ffn krnl_lm_head_argmax; do
	loops=$($cc $flags -c hls_kernels/$k.c -o /dev/null -fopt-info-vec-optimized 2>&1 |
		awk -F: -v h="$hdr" -v lo="$lo" -v hi="$hi" \
		'$1 == h && $2 >= lo && $2 <= hi && /loop vectorized/ { print $2 }' | sort -u | wc -l)
	if [ "$loops" -ge 3 ]; then
		echo "ok   $k: $loops loops of krnl_dot_beats vectorized ($flags)"
	else
		echo "FAIL $k: only $loops loops of krnl_dot_beats (lines $lo-$hi) vectorized"
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "vectorized: all checks passed"
exit $fail
