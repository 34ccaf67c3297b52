#!/usr/bin/env bash
# hls-lint: the real kernels pass; each small bad kernel is rejected with the
# reason it should be.  Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
lint=build/tools/hls_lint
make -s --no-print-directory "$lint" || exit 1
dir=$(mktemp -d /tmp/nextcard-hlslint.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0

"$lint" hls_kernels/*.c || { echo "FAIL: real kernels rejected"; fail=1; }

# A good kernel: the shape every kernel follows.
ok='void krnl_ok(const float *x, float *y, unsigned n)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=y bundle=gmem1
	for (unsigned i = 0; i < KRNL_MAX_HIDDEN * 2; i++) {
		if (i >= n)
			break;
		y[i] = x[i];	/* while (1) in a comment is fine */
	}
}'

# name | expected message | body
bad() {
	printf '%s\n' "$3" >"$dir/$1.c"
	out=$("$lint" "$dir/$1.c" 2>&1)
	rc=$?
	if [ $rc -ne 1 ] || ! grep -q -- "$2" <<<"$out"; then
		echo "FAIL: $1: rc=$rc, want '$2', got: $out"
		fail=1
	else
		echo "ok: $1 rejected: $out"
	fi
}

printf '%s\n' "$ok" >"$dir/good.c"
"$lint" "$dir/good.c" || { echo "FAIL: good kernel rejected"; fail=1; }

bad malloc 'dynamic memory (malloc)' 'void krnl_m(float *x)
{
#pragma HLS INTERFACE m_axi port=x
	float *t = malloc(4);
	x[0] = t[0];
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
bad while 'while loop' 'void krnl_w(float *x, unsigned n)
{
#pragma HLS INTERFACE m_axi port=x
	unsigned i = 0;
	while (i < n)
		x[i++] = 0;
}'
bad do 'do loop' 'static void d(float *x) { int i = 0; do { x[i] = 0; } while (++i < 4); }'
bad runtime_bound 'bound is not a compile-time constant' 'void krnl_r(float *x, unsigned n)
{
#pragma HLS INTERFACE m_axi port=x
	for (unsigned i = 0; i < n; i++)
		x[i] = 0;
}'
bad mixed_bound 'bound is not a compile-time constant' 'static void m(float *x, unsigned n)
{
	for (unsigned i = 0; i < KRNL_MAX_HIDDEN + n; i++)
		x[i] = 0;
}'
bad no_cond 'bound is not a compile-time constant' 'static void f(float *x)
{
	for (unsigned i = 0;; i++)
		x[i] = 0;
}'
bad no_pragma "pointer argument 'y' has no" 'void krnl_p(const float *x, float *y)
{
#pragma HLS INTERFACE m_axi port=x
	y[0] = x[0];
}'
bad axilite_ptr "pointer argument 'x' has no" 'void krnl_s(float *x)
{
#pragma HLS INTERFACE s_axilite port=x
	x[0] = 1;
}'

[ $fail -eq 0 ] && echo "hls_lint: all checks passed"
exit $fail
