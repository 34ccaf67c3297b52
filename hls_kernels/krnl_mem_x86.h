/* krnl_mem_x86.h — the weight-row dot product of krnl_mem.h for C-simulation
 * on an x86 CPU (AVX2 + F16C, AVX-512 where the build has it).
 *
 * Never synthesized.  It computes exactly what krnl_dot_beats' HLS loop
 * computes, in the same order and with the same roundings (no fused
 * multiply-add: the kernels are compiled as ISO C, which does not contract),
 * so the emulated card's numbers do not depend on which path ran.  Seen as
 * 16-lane vectors V_k = products of elements [16k, 16k+16) of a beat, the
 * HLS fold of a beat onto 16 lanes is
 *   f32  V0                 bf16, f16  V0 + V1
 *   int8 (V0 + V2) + (V1 + V3)
 *   int4 ((V0 + V4) + (V2 + V6)) + ((V1 + V5) + (V3 + V7))
 * and beat b adds into partial sum b % 8 of its row (fresh: the sums start at
 * zero, as krnl_wrow_dot clears them, without reading acc).  What differs is the
 * schedule: the beats of a row are metered as one burst, and batch rows go
 * two at a time over the whole weight row (the second pass on a CPU reads it
 * from cache), their eight partial sums each held in registers.
 */
#ifndef KRNL_MEM_X86_H
#define KRNL_MEM_X86_H
#ifndef __SYNTHESIS__	/* C-simulation only (hls-lint skips it) */

#include <immintrin.h>

/* One beat of f32: 16 lanes (one AVX-512 register, or two AVX2 ones). */
typedef float krnl_v16 __attribute__((vector_size(64)));

static inline KRNL_ALWAYS krnl_v16 krnl_v16_load(const float *p)
{
	krnl_v16 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

#ifdef __AVX512F__
static inline KRNL_ALWAYS krnl_v16 krnl_v16_i32(__m512i i)
{
	return (krnl_v16)_mm512_cvtepi32_ps(i);
}
#else
static inline KRNL_ALWAYS krnl_v16 krnl_v16_pair(__m256 lo, __m256 hi)
{
	union { __m256 h[2]; krnl_v16 v; } u = { .h = { lo, hi } };

	return u.v;
}
#endif

/* 16 signed bytes to 16 floats. */
static inline KRNL_ALWAYS krnl_v16 krnl_v16_i8(__m128i b)
{
#ifdef __AVX512F__
	return krnl_v16_i32(_mm512_cvtepi8_epi32(b));
#else
	return krnl_v16_pair(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)),
			     _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))));
#endif
}

/* Elements [16k, 16k+16) of beat q widened to f32 (times s, the scale of
 * their group, for the integer formats: a group of 32 or more holds them). */
static inline KRNL_ALWAYS krnl_v16 krnl_v16_widen(const uint8_t *q, const uint32_t fmt,
						   const uint32_t k, float s)
{
	switch (fmt) {
	case KRNL_FMT_F32:
		return krnl_v16_load((const float *)(const void *)q);
	case KRNL_FMT_BF16: {
		__m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * k));
#ifdef __AVX512F__
		return (krnl_v16)_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
#else
		return krnl_v16_pair(
			_mm256_castsi256_ps(_mm256_slli_epi32(
				_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16)),
			_mm256_castsi256_ps(_mm256_slli_epi32(
				_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16)));
#endif
	}
	case KRNL_FMT_F16: {
		__m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * k));
#ifdef __AVX512F__
		return (krnl_v16)_mm512_cvtph_ps(h);
#else
		return krnl_v16_pair(_mm256_cvtph_ps(_mm256_castsi256_si128(h)),
				     _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
#endif
	}
	case KRNL_FMT_INT8:
		return krnl_v16_i8(_mm_loadu_si128((const __m128i *)(const void *)(q + 16 * k))) * s;
	default: {	/* int4: element 2i is the low nibble of byte i */
		__m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(q + 8 * k));
		__m128i m = _mm_set1_epi8(0x0f), e = _mm_set1_epi8(8);
		__m128i lo = _mm_and_si128(b, m);
		__m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
		__m128i n = _mm_unpacklo_epi8(lo, hi);	/* nibbles in element order */

		n = _mm_sub_epi8(_mm_xor_si128(n, e), e);	/* sign of bit 3 */
		return krnl_v16_i8(n) * s;
	}
	}
}

/* The products of beat q with x (the beat's columns of one batch row),
 * folded onto 16 lanes as the HLS datapath folds them. */
static inline KRNL_ALWAYS krnl_v16 krnl_v16_fold(const krnl_v16 *v, const uint32_t nv,
						 const float *x)
{
	krnl_v16 p[8];

	_Pragma("GCC unroll 8")
	for (uint32_t k = 0; k < nv; k++)
		p[k] = v[k] * krnl_v16_load(x + 16 * k);
	switch (nv) {
	case 1:
		return p[0];
	case 2:
		return p[0] + p[1];
	case 4:
		return (p[0] + p[2]) + (p[1] + p[3]);
	default:
		return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
	}
}

static inline KRNL_ALWAYS void krnl_v16_beat(const krnl_word *q, const uint32_t fmt,
					     const uint32_t nv, const float *sc, uint32_t c0,
					     uint32_t gsh, krnl_v16 *v)
{
	_Pragma("GCC unroll 8")
	for (uint32_t k = 0; k < nv; k++)
		v[k] = krnl_v16_widen((const uint8_t *)q->u, fmt, k,
				      krnl_fmt_quant(fmt) ? sc[(c0 + 16 * k) >> gsh] : 1.0f);
}

typedef int32_t krnl_i16 __attribute__((vector_size(64)));

/* The eight partial sums of a row folded lane by lane, as krnl_acc_sum's
 * first tree does: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). */
static inline KRNL_ALWAYS krnl_v16 krnl_v16_fold8(const krnl_v16 *a)
{
	return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* The rest of krnl_acc_sum for 16 rows at once: v[i] is row i's folded
 * lanes l; lane i of the result is (l0' + l2') + (l1' + l3') after l[j] +=
 * l[j + 8], then l[j] += l[j + 4], the same additions as the scalar trees,
 * done by pairing vectors (each step halves the vectors and the lanes a row
 * holds).  Rows past n must be given as any value; their lanes are unused. */
static inline KRNL_ALWAYS krnl_v16 krnl_v16_hsum16(const krnl_v16 *v)
{
	const krnl_i16 lo8 = { 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23 };
	const krnl_i16 hi8 = { 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31 };
	const krnl_i16 lo4 = { 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27 };
	const krnl_i16 hi4 = { 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31 };
	const krnl_i16 lo2 = { 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29 };
	const krnl_i16 hi2 = { 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31 };
	const krnl_i16 ev = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30 };
	const krnl_i16 od = { 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31 };
	krnl_v16 w[8], y[4], z[2];

	_Pragma("GCC unroll 8")
	for (int i = 0; i < 8; i++)	/* rows 2i, 2i+1: l[j] + l[j + 8] */
		w[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], lo8) +
		       __builtin_shuffle(v[2 * i], v[2 * i + 1], hi8);
	_Pragma("GCC unroll 4")
	for (int i = 0; i < 4; i++)	/* rows 4i..4i+3: l[j] + l[j + 4] */
		y[i] = __builtin_shuffle(w[2 * i], w[2 * i + 1], lo4) +
		       __builtin_shuffle(w[2 * i], w[2 * i + 1], hi4);
	_Pragma("GCC unroll 2")
	for (int i = 0; i < 2; i++)	/* rows 8i..8i+7: l0 + l2, l1 + l3 */
		z[i] = __builtin_shuffle(y[2 * i], y[2 * i + 1], lo2) +
		       __builtin_shuffle(y[2 * i], y[2 * i + 1], hi2);
	return __builtin_shuffle(z[0], z[1], ev) + __builtin_shuffle(z[0], z[1], od);
}

/* R (1 or 2) batch rows against all nb beats: each row's eight partial sums
 * stay in registers, and each widened beat feeds both rows.  With fold set,
 * each row's sums leave folded onto one vector (krnl_v16_fold8) in fold[r]
 * rather than in acc. */
static inline KRNL_ALWAYS void krnl_x86_rows(const krnl_word *q, uint32_t nb, const uint32_t fmt,
					     const uint32_t nv, const uint32_t epb, const float *sc,
					     uint32_t gsh, const float *x, uint32_t xs, const uint32_t R,
					     int fresh, float acc[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT],
					     krnl_v16 *fold)
{
	krnl_v16 a[2][KRNL_ACC_LANES], v[8];
	uint32_t b = 0;

	_Pragma("GCC unroll 2")
	for (uint32_t r = 0; r < R; r++)
		_Pragma("GCC unroll 8")
		for (uint32_t l = 0; l < KRNL_ACC_LANES; l++)
			a[r][l] = fresh ? (krnl_v16){ 0 } : krnl_v16_load(acc[r][l]);
	for (; b + KRNL_ACC_LANES <= nb; b += KRNL_ACC_LANES)
		_Pragma("GCC unroll 8")
		for (uint32_t l = 0; l < KRNL_ACC_LANES; l++) {
			krnl_v16_beat(q + b + l, fmt, nv, sc, (b + l) * epb, gsh, v);
			_Pragma("GCC unroll 2")
			for (uint32_t r = 0; r < R; r++)
				a[r][l] += krnl_v16_fold(v, nv, x + (uint64_t)r * xs + (b + l) * epb);
		}
	_Pragma("GCC unroll 8")
	for (uint32_t l = 0; l < KRNL_ACC_LANES - 1; l++) {
		if (b + l >= nb)
			break;
		krnl_v16_beat(q + b + l, fmt, nv, sc, (b + l) * epb, gsh, v);
		_Pragma("GCC unroll 2")
		for (uint32_t r = 0; r < R; r++)
			a[r][l] += krnl_v16_fold(v, nv, x + (uint64_t)r * xs + (b + l) * epb);
	}
	_Pragma("GCC unroll 2")
	for (uint32_t r = 0; r < R; r++) {
		if (fold) {
			fold[r] = krnl_v16_fold8(a[r]);
			continue;
		}
		_Pragma("GCC unroll 8")
		for (uint32_t l = 0; l < KRNL_ACC_LANES; l++)
			memcpy(acc[r][l], &a[r][l], sizeof(a[r][l]));
	}
}

static inline KRNL_ALWAYS void krnl_dot_beats_x86(const krnl_word *w, uint64_t wb, uint32_t nb,
						  const uint32_t fmt, const uint32_t epb,
						  const float *sc, uint32_t gsh, const float *x,
						  uint32_t xs, uint32_t nr, int fresh,
						  float acc[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT])
{
	const uint32_t nv = epb / 16;
	const krnl_word *q = w + wb;
	uint32_t r = 0;

	/* one burst on the card; on a CPU a batch re-reads the row from cache */
	KRNL_METER(q, nb, 0);
	for (; r + 2 <= nr; r += 2)
		krnl_x86_rows(q, nb, fmt, nv, epb, sc, gsh, x + (uint64_t)r * xs, xs, 2, fresh,
			      acc + r, NULL);
	if (r < nr)
		krnl_x86_rows(q, nb, fmt, nv, epb, sc, gsh, x + (uint64_t)r * xs, xs, 1, fresh,
			      acc + r, NULL);
}

#endif /* !__SYNTHESIS__ */
#endif
