#!/usr/bin/env bash
# hls-lint: the real kernels and their headers pass; each small good kernel
# passes without a finding; each small bad kernel is rejected with exactly one
# finding, the reason it should be.  Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
lint=build/tools/hls_lint
make -s --no-print-directory "$lint" || exit 1
dir=$(mktemp -d /tmp/nextcard-hlslint.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0

"$lint" hls_kernels/*.c hls_kernels/*.h || { echo "FAIL: real kernels rejected"; fail=1; }

# The file of a case: NAME.c unless NAME has its own extension (x.h).
file() {
	case $1 in
	*.*) echo "$dir/$1" ;;
	*) echo "$dir/$1.c" ;;
	esac
}

# name | body
good() {
	local f out rc
	f=$(file "$1")
	printf '%s\n' "$2" >"$f"
	out=$("$lint" "$f" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		echo "FAIL: $1: rc=$rc, want a pass, got: $out"
		fail=1
	else
		echo "ok: $1 passes"
	fi
}

# name | expected message | body
bad() {
	local f out rc
	f=$(file "$1")
	printf '%s\n' "$3" >"$f"
	out=$("$lint" "$f" 2>&1)
	rc=$?
	if [ $rc -ne 1 ] || ! grep -q -F -- "$2" <<<"$out" || [ "$(wc -l <<<"$out")" -ne 1 ]; then
		echo "FAIL: $1: rc=$rc, want exactly '$2', got: $out"
		fail=1
	else
		echo "ok: $1 rejected: $out"
	fi
}

# A good kernel: the shape every kernel follows.
good ok 'void krnl_ok(const krnl_word *x, krnl_word *y, unsigned n)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=y bundle=gmem1
#pragma HLS INTERFACE s_axilite port=n
	for (unsigned i = 0; i < KRNL_MAX_HIDDEN * 2; i++) {
		if (i >= n)
			break;
		krnl_wr(y, i, krnl_rd(x, i));	/* while (1) in a comment is fine */
	}
}'

# ---- the old rules ----------------------------------------------------------
bad malloc 'dynamic memory (malloc)' 'void krnl_m(krnl_word *x)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
	krnl_word *t = malloc(sizeof(*t));
	krnl_wr(x, 0, *t);
}'
bad free 'dynamic memory (free)' 'static void h(float *p) { free(p); }'
bad recursion 'fact: recursion' 'static unsigned fact(unsigned n)
{
	return n ? n * fact(n - 1) : 1;
}'
bad fnptr "function pointer 'op'" 'static float apply(float (*op)(float), float v)
{
	return op(v);
}'
bad while 'while loop' 'void krnl_w(krnl_word *x, unsigned n)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
	unsigned i = 0;
	while (i < n)
		krnl_wr(x, i++, krnl_zero);
}'
bad do 'do loop' 'static void d(float *x) { int i = 0; do { x[i] = 0; } while (++i < 4); }'
bad no_pragma "pointer argument 'y' has no" 'void krnl_p(const krnl_word *x, krnl_word *y)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
	krnl_wr(y, 0, krnl_rd(x, 0));
}'
bad axilite_ptr "pointer argument 'x' has no" 'void krnl_s(krnl_word *x)
{
#pragma HLS INTERFACE s_axilite port=x
	krnl_wr(x, 0, krnl_zero);
}'

# ---- 1. loop bounds: static, or runtime with a loop_tripcount --------------
nolt='bound is not a compile-time constant and the loop has no loop_tripcount'
bad runtime_bound "$nolt" 'static void r(float *x, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		x[i] = 0;
}'
bad mixed_bound "$nolt" 'static void m(float *x, unsigned n)
{
	for (unsigned i = 0; i < KRNL_MAX_HIDDEN + n; i++)
		x[i] = 0;
}'
bad down_bound "$nolt" 'static void h(float *p)
{
	for (unsigned s = 64; s >= 1; s /= 2)
		p[s] = 0;
}'
bad no_cond 'for loop without a condition' 'static void f(float *x)
{
	for (unsigned i = 0;; i++) {
#pragma HLS loop_tripcount max=16
		x[i] = 0;
	}
}'
bad tripcount_nested "$nolt" 'static void t(float *x, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < 4; j++) {
#pragma HLS loop_tripcount max=16
			x[i * 4 + j] = 0;
		}
	}
}'
bad tripcount_after_loop "$nolt" 'static void t(float *x, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < 4; j++)
			x[i * 4 + j] = 0;
#pragma HLS loop_tripcount max=16
	}
}'
bad tripcount_var 'loop_tripcount max=n is not a number or UPPER_CASE macro' 'static void t(float *x, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=n
		x[i] = 0;
	}
}'
bad tripcount_nomax 'loop_tripcount has no max=' 'static void t(float *x, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
#pragma HLS loop_tripcount min=1
		x[i] = 0;
	}
}'
good tripcount 'static void t(float *x, uint64_t b0, uint64_t b1, unsigned n)
{
rows:
	for (unsigned r = 0; r < n; r++) {
#pragma HLS loop_tripcount max=16
		x[r] = 0;
	}
	for (uint64_t b = b0; b < b1; b++) {
#pragma HLS loop_tripcount min=1 max=(KRNL_MAX_HIDDEN / 16 + 1) avg=64
#pragma HLS PIPELINE II=1
		for (unsigned j = 0; j < 16; j++)
			x[b * 16 + j] = 1;
	}
	for (unsigned s = 64; s >= 1; s /= 2) {
#pragma HLS loop_tripcount max=7
		x[s] = 2;
	}
	for (unsigned i = 0; i <= KRNL_MAX_HIDDEN - 1; i++) {
		if (i >= n)
			break;
		x[i] = 3;
	}
}'

# ---- 2. loop-carried float accumulation under PIPELINE II=1 ----------------
fsum="loop-carried float accumulation 's' under PIPELINE II=1"
bad fsum_pluseq "$fsum" 'static float dot(const float *a, const float *b, unsigned n)
{
	float s = 0.0f;

	for (unsigned i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
		if (i >= n)
			break;
		s += a[i] * b[i];
	}
	return s;
}'
bad fsum_assign "$fsum" 'static void dot(const float *a, float *out, unsigned n)
{
	for (unsigned r = 0; r < 4; r++) {
		float s = 0.0f;
		for (unsigned i = 0; i < 64; i++) {
#pragma HLS pipeline
			s = s + a[r * 64 + i];
		}
		out[r] = s;
	}
}'
bad fsum_inner "$fsum" 'static float dot(const float *a)
{
	float s = 0.0f;

	for (unsigned i = 0; i < 64; i++) {
#pragma HLS PIPELINE II=1
		for (unsigned j = 0; j < 4; j++)
			s -= a[i * 4 + j];
	}
	return s;
}'
good fsum_ok 'static float dot(const float *a, const float *b, unsigned n, float *p)
{
	float acc[8], s = 0.0f, t = 0.0f;
	uint32_t cnt = 0;

	for (unsigned j = 0; j < 8; j++)
		acc[j] = 0.0f;
	for (unsigned i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
		if (i >= n)
			break;
		float q = 0.0f;
		for (unsigned j = 0; j < 4; j++)
			q += a[i * 4 + j];
		acc[i % 8] += q * b[i];
		cnt += 1;
		p[i] += q;
	}
	for (unsigned s2 = 64; s2 >= 1; s2 /= 2) {
#pragma HLS loop_tripcount max=7
		for (unsigned j = 0; j < 64; j++) {
			if (j >= s2)
				break;
			p[j] += p[j + s2];
		}
	}
	for (unsigned j = 0; j < 8; j++)
		s += acc[j];
	for (unsigned j = 0; j < 8; j++) {
#pragma HLS PIPELINE II=2
		t += acc[j];
	}
	return s + t + (float)cnt;
}'

# ---- 3. m_axi bundles --------------------------------------------------------
bad no_bundle "krnl_b: m_axi port 'y' has no bundle=" 'void krnl_b(const krnl_word *x, krnl_word *y)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=y
	krnl_wr(y, 0, krnl_rd(x, 0));
}'
bad shared_bundle "m_axi ports 'x' and 'y' share bundle 'gmem0' (one bundle per concurrent stream)" 'void krnl_b(const krnl_word *x, krnl_word *y)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0
	krnl_wr(y, 0, krnl_rd(x, 0));
}'
good bundles 'void krnl_b(const krnl_word *x, krnl_word *y, uint32_t n)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem1
#pragma HLS INTERFACE s_axilite port=n bundle=control
#pragma HLS INTERFACE s_axilite port=return bundle=control
	krnl_wr(y, 0, krnl_rd(x, n));
}'

# ---- 4. no double precision ---------------------------------------------------
bad double_kw "double precision 'double' (use float)" 'static float h(float x)
{
	double y = x;
	return (float)y;
}'
bad double_fn "double precision 'sqrt' (use float)" 'static float h(float x)
{
	return sqrtf(x) + (float)sqrt(x);
}'
bad double_exp "double precision 'exp' (use float)" 'static float h(float x)
{
	return 1.0f / (1.0f + exp(-x));
}'
good float_math 'static float h(float x, float y)
{
	float r = sqrtf(x) + expf(y) + logf(x) + powf(x, y) + fabsf(y) + tanhf(x);
	return r * 1.0 + log1pf(expf(x)) + floorf(y);
}'

# ---- 5. HBM only through the accessor ---------------------------------------
acc="m_axi port 'w' accessed outside the accessor (krnl_rd/krnl_wr in krnl_mem.h)"
bad port_index "$acc" 'void krnl_a(const krnl_word *w, float *o)
{
#pragma HLS INTERFACE m_axi port=w bundle=gmem0
#pragma HLS INTERFACE m_axi port=o bundle=gmem1
	krnl_wr_f32(o, 0, (const float *)w[3].u, 16);
}'
bad port_deref "$acc" 'void krnl_a(const krnl_word *w, krnl_word *o)
{
#pragma HLS INTERFACE m_axi port=w bundle=gmem0
#pragma HLS INTERFACE m_axi port=o bundle=gmem1
	krnl_word v = *w;
	krnl_wr(o, 0, v);
}'
bad port_arrow "$acc" 'void krnl_a(const krnl_word *w, krnl_word *o)
{
#pragma HLS INTERFACE m_axi port=w bundle=gmem0
#pragma HLS INTERFACE m_axi port=o bundle=gmem1
	krnl_wr(o, 0, krnl_rd(o, w->u[0]));
}'
good port_calls 'static float helper(const krnl_word *p, uint32_t i)
{
	return krnl_lane_f32(&p[i], 0) + (float)p->u[1] + (float)(*p).u[2];
}
void krnl_a(const krnl_word *w, krnl_word *o, const krnl_word *x, uint64_t off, uint32_t n)
{
#pragma HLS INTERFACE m_axi port=w bundle=gmem0
#pragma HLS INTERFACE m_axi port=o bundle=gmem1
#pragma HLS INTERFACE m_axi port=x bundle=gmem2
	float buf[KRNL_MAX_HIDDEN], d[KRNL_MAX_BATCH];
	krnl_word v = krnl_rd(w, 0);

	krnl_rd_f32(buf, x + off, 0, n);
	krnl_wrow_dot(w, off, 0, n, buf, 0, 1, d);
	buf[0] += helper(w, 1) + (float)sizeof(*w) + (float)sizeof(w[0]);
	krnl_wr(o, 0, v);
	krnl_wr_f32(o, 1, buf, n);
}'

# ---- 6. C-simulation-only code is not linted ---------------------------------
good csim_only 'void krnl_c(krnl_word *x)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#ifndef __SYNTHESIS__
	double t = sqrt(2.0);
	float *dbg = malloc(16);
#if DEBUG_WIDE
	while (t > 0)
		t -= 1;
#else
	free(dbg);
#endif
	printf("%g %f\n", t, x[0].u[0]);
#endif
	krnl_wr(x, 0, krnl_rd(x, 1));
#ifdef __SYNTHESIS__
	krnl_wr(x, 2, krnl_rd(x, 3));
#else
	x[2] = x[3];	/* C-sim: straight through */
#endif
#if !defined(__SYNTHESIS__)
	x[4] = x[5];
#endif
}
#ifndef __SYNTHESIS__
static double ref(double v) { return exp(v); }
#endif'
bad synth_ifdef "double precision 'double' (use float)" 'static float h(float x)
{
#ifdef __SYNTHESIS__
	double y = x;
#else
	float y = x;
#endif
	return (float)y;
}'
bad csim_else "double precision 'exp' (use float)" 'static float h(float x)
{
#ifndef __SYNTHESIS__	/* C-sim: the libm reference */
	return expf(x) + (float)exp(0.0);
#else
	return expf(x) + (float)exp(1.0);
#endif
}'
bad other_ifndef 'dynamic memory (malloc)' 'static float *h(void)
{
#ifndef KRNL_NO_DEBUG
	return malloc(4);
#else
	return 0;
#endif
}'

# ---- 7. headers ----------------------------------------------------------------
good helpers.h '#ifndef HELPERS_H
#define HELPERS_H
#include "krnl_common.h"
#ifdef __cplusplus
extern "C" {
#endif
void krnl_gemv(const krnl_word *x, const krnl_word *w, krnl_word *y, uint32_t rows);
static inline krnl_word krnl_rd2(const krnl_word *p, uint64_t i)
{
	return p[i];
}
static inline void krnl_zero(float *v, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++) {
#pragma HLS loop_tripcount max=KRNL_MAX_EPB
		v[j] = 0.0f;
	}
}
#ifdef __cplusplus
}
#endif
#endif'
bad bad_helper.h 'krnl_skip: while loop' '#ifndef BAD_HELPER_H
#define BAD_HELPER_H
#ifdef __cplusplus
extern "C" {
#endif
static inline void krnl_skip(const float *v, uint32_t *i)
{
	while (v[*i] == 0.0f)
		(*i)++;
}
#ifdef __cplusplus
}
#endif
#endif'
bad kernel_in_header.h "krnl_h: m_axi port 'x' accessed outside the accessor" '#ifndef KH_H
#define KH_H
void krnl_h(krnl_word *x)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
	x[0] = krnl_rd(x, 1);
}
#endif'

[ $fail -eq 0 ] && echo "hls_lint: all checks passed"
exit $fail
