/* krnl_mem.h — the one door between a kernel and card memory.
 *
 * HBM pseudo-channels deliver their bandwidth only to wide bursts, so every
 * m_axi port of every kernel is a pointer to 512-bit words (krnl_word, an
 * aggregate of 16 x 32 bits that Vitis HLS maps onto a 512-bit port) and every
 * access goes through krnl_rd / krnl_wr / krnl_wr_lanes below or the stream
 * helpers built on them.  No kernel dereferences a port by itself (hls-lint
 * checks that).
 *
 * In C-simulation the same functions are the card's traffic meter: each beat
 * is counted against the port (kernel argument) and the HBM bank it falls in,
 * so the byte counters of the emulated card are what the kernels really moved.
 * Under synthesis (__SYNTHESIS__) the meter compiles away.
 */
#ifndef KRNL_MEM_H
#define KRNL_MEM_H

#include <stdint.h>
#include <string.h>
#include "krnl_common.h"
/* C-simulation on an x86 CPU with AVX2/F16C: the weight-row dot products run
 * on its vector unit (krnl_mem_x86.h: the same values as the HLS loop). */
#if defined(__F16C__) && defined(__AVX2__) && !defined(__SYNTHESIS__)
#define KRNL_X86_VEC 1
#include <immintrin.h>
/* Its 64-byte vectors pass in registers only with AVX-512; every function
 * using them is inlined, so gcc's note about that ABI (given at the end of
 * the file that includes this, past any push/pop) does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* Whoever includes this (firmware, shim, tests) need not know HLS pragmas. */
#if !defined(__SYNTHESIS__) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

/* One HBM beat. */
typedef struct {
	uint32_t u[KRNL_BEAT_BYTES / 4];
} krnl_word;

#define KRNL_F32_PER_BEAT (KRNL_BEAT_BYTES / 4)

/* sum a[i] * b[i], i < n, as KRNL_ACC_LANES partial sums (no carried add
 * under II=1), then those in order. */
static inline float krnl_dot_f32(const float *a, const float *b, uint32_t n)
{
	float part[KRNL_ACC_LANES];
#pragma HLS ARRAY_PARTITION variable=part complete
	float s = 0.0f;

	for (uint32_t l = 0; l < KRNL_ACC_LANES; l++)
		part[l] = 0.0f;
dot:
	for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=8192
#pragma HLS PIPELINE II=1
		part[i % KRNL_ACC_LANES] += a[i] * b[i];
	}
	for (uint32_t l = 0; l < KRNL_ACC_LANES; l++)
		s += part[l];
	return s;
}

/* sum a[i], i < n, the same way. */
static inline float krnl_sum_f32(const float *a, uint32_t n)
{
	float part[KRNL_ACC_LANES];
#pragma HLS ARRAY_PARTITION variable=part complete
	float s = 0.0f;

	for (uint32_t l = 0; l < KRNL_ACC_LANES; l++)
		part[l] = 0.0f;
sum:
	for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=8192
#pragma HLS PIPELINE II=1
		part[i % KRNL_ACC_LANES] += a[i];
	}
	for (uint32_t l = 0; l < KRNL_ACC_LANES; l++)
		s += part[l];
	return s;
}

/* ---- the meter (C-simulation only) -------------------------------------- */
#ifndef __SYNTHESIS__
#define KRNL_METER_PORTS 24	/* one per argument register (KRNL_MAX_ARGS) */
#define KRNL_METER_BANKS 64

/* A run of card memory that is one port and one bank. */
struct krnl_meter_span {
	uintptr_t lo, hi;
	uint16_t port, bank;
};

struct krnl_meter {
	/* set by whoever runs the kernel */
	struct krnl_meter_span port[KRNL_METER_PORTS];	/* host range of each port */
	uint32_t n_ports;
	uintptr_t bank_lo[KRNL_METER_BANKS], bank_hi[KRNL_METER_BANKS]; /* host range */
	uint32_t n_banks;				/* 0: count ports only */
	/* counted */
	uint64_t port_beats[KRNL_METER_PORTS][2];	/* [port][0 read, 1 write] */
	uint64_t bank_beats[KRNL_METER_BANKS][2];
	uint64_t stray_beats[2];	/* outside every port: a kernel bug */
	struct krnl_meter_span hit[2];	/* last span used, per direction */
};

/* The meter of the kernel running on this thread, or NULL. */
extern _Thread_local struct krnl_meter *krnl_meter_cur;

void krnl_meter_slow(struct krnl_meter *m, uintptr_t a, uint64_t beats, int wr);

static inline void krnl_meter_count(const void *p, uint64_t beats, int wr)
{
	struct krnl_meter *m = krnl_meter_cur;
	uintptr_t a = (uintptr_t)p;

	if (!m)
		return;
	if (a >= m->hit[wr].lo && a + beats * KRNL_BEAT_BYTES <= m->hit[wr].hi) {
		m->port_beats[m->hit[wr].port][wr] += beats;
		m->bank_beats[m->hit[wr].bank][wr] += beats;
		return;
	}
	krnl_meter_slow(m, a, beats, wr);
}
#define KRNL_METER(p, n, wr) krnl_meter_count((p), (n), (wr))
#else
#define KRNL_METER(p, n, wr) ((void)0)
#endif

/* ---- the accessor -------------------------------------------------------- */

/* Beat i of port p. */
static inline krnl_word krnl_rd(const krnl_word *p, uint64_t i)
{
	KRNL_METER(p + i, 1, 0);
	return p[i];
}

/* Write beat i of port p. */
static inline void krnl_wr(krnl_word *p, uint64_t i, krnl_word w)
{
	KRNL_METER(p + i, 1, 1);
	p[i] = w;
}

/* Write 32-bit lanes [l0, l1) of beat i (AXI write strobes: no read). */
static inline void krnl_wr_lanes(krnl_word *p, uint64_t i, krnl_word w, uint32_t l0,
				 uint32_t l1)
{
	KRNL_METER(p + i, 1, 1);
	for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++)
		if (j >= l0 && j < l1)
			p[i].u[j] = w.u[j];
}

static inline float krnl_lane_f32(const krnl_word *w, uint32_t j)
{
	union { uint32_t u; float f; } v = { .u = w->u[j] };
	return v.f;
}

static inline void krnl_set_lane_f32(krnl_word *w, uint32_t j, float f)
{
	union { float f; uint32_t u; } v = { .f = f };
	w->u[j] = v.u;
}

static inline int32_t krnl_lane_i32(const krnl_word *w, uint32_t j)
{
	return (int32_t)w->u[j];
}

/* dst[0..n) = 32-bit elements [off, off+n) of port p: each covering beat is
 * read once, a burst of ceil over the span. */
static inline void krnl_rd_f32(float *dst, const krnl_word *p, uint64_t off, uint32_t n)
{
	uint64_t b0 = off / KRNL_F32_PER_BEAT;
	uint64_t b1 = (off + n + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT;

rd_f32:
	for (uint64_t b = b0; b < b1; b++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
		krnl_word w = krnl_rd(p, b);
		uint64_t e0 = b * KRNL_F32_PER_BEAT;

		if (e0 >= off && e0 + KRNL_F32_PER_BEAT <= off + n) {
			memcpy(dst + (e0 - off), w.u, KRNL_BEAT_BYTES);
			continue;
		}
		for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++)
			if (e0 + j >= off && e0 + j < off + n)
				dst[e0 + j - off] = krnl_lane_f32(&w, j);
	}
}

static inline void krnl_rd_i32(int32_t *dst, const krnl_word *p, uint64_t off, uint32_t n)
{
	krnl_rd_f32((float *)(void *)dst, p, off, n);
}

/* 32-bit elements [off, off+n) of port p = src[0..n); edge beats are written
 * with strobes, so nothing else in them changes and nothing is read. */
static inline void krnl_wr_f32(krnl_word *p, uint64_t off, const float *src, uint32_t n)
{
	uint64_t b0 = off / KRNL_F32_PER_BEAT;
	uint64_t b1 = (off + n + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT;

wr_f32:
	for (uint64_t b = b0; b < b1; b++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
		krnl_word w;
		uint64_t e0 = b * KRNL_F32_PER_BEAT;
		uint32_t l0 = e0 < off ? (uint32_t)(off - e0) : 0;
		uint32_t l1 = e0 + KRNL_F32_PER_BEAT > off + n ? (uint32_t)(off + n - e0)
							       : KRNL_F32_PER_BEAT;

		if (l0 == 0 && l1 == KRNL_F32_PER_BEAT) {
			memcpy(w.u, src + (e0 - off), KRNL_BEAT_BYTES);
			krnl_wr(p, b, w);
			continue;
		}
		memset(&w, 0, sizeof(w));
		for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++)
			if (j >= l0 && j < l1)
				krnl_set_lane_f32(&w, j, src[e0 + j - off]);
		krnl_wr_lanes(p, b, w, l0, l1);
	}
}

static inline void krnl_wr_i32(krnl_word *p, uint64_t off, const int32_t *src, uint32_t n)
{
	krnl_wr_f32(p, off, (const float *)(const void *)src, n);
}

/* ---- 16-bit elements (bf16 KV pages) ------------------------------------- */

static inline float krnl_bf16_f32(uint16_t h)
{
	union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
	return v.f;
}

/* f32 to bf16, rounded to nearest even; a NaN stays a (quiet) NaN. */
static inline uint16_t krnl_f32_bf16(float f)
{
	union { float f; uint32_t u; } v = { .f = f };

	if ((v.u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((v.u >> 16) | 0x40u);
	return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

/* dst[0..n) = bf16 elements [off, off+n) of port p, widened; element 2k is the
 * low half of 32-bit lane k.  Each covering beat is read once. */
static inline void krnl_rd_bf16(float *dst, const krnl_word *p, uint64_t off, uint32_t n)
{
	uint64_t b0 = off / (2 * KRNL_F32_PER_BEAT);
	uint64_t b1 = (off + n + 2 * KRNL_F32_PER_BEAT - 1) / (2 * KRNL_F32_PER_BEAT);

rd_bf16:
	for (uint64_t b = b0; b < b1; b++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
		krnl_word w = krnl_rd(p, b);
		uint64_t e0 = b * 2 * KRNL_F32_PER_BEAT;

		if (e0 >= off && e0 + 2 * KRNL_F32_PER_BEAT <= off + n) {	/* a whole beat */
			float *d = dst + (e0 - off);

			for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++) {
				d[2 * j] = krnl_bf16_f32((uint16_t)w.u[j]);
				d[2 * j + 1] = krnl_bf16_f32((uint16_t)(w.u[j] >> 16));
			}
			continue;
		}
		for (uint32_t j = 0; j < 2 * KRNL_F32_PER_BEAT; j++)
			if (e0 + j >= off && e0 + j < off + n)
				dst[e0 + j - off] = krnl_bf16_f32((uint16_t)(w.u[j / 2] >> (16 * (j & 1))));
	}
}

/* bf16 elements [off, off+n) of port p = src[0..n) rounded; off and n even,
 * so whole 32-bit lanes are written (strobes at the edges, nothing read). */
static inline void krnl_wr_bf16(krnl_word *p, uint64_t off, const float *src, uint32_t n)
{
	uint64_t b0 = off / (2 * KRNL_F32_PER_BEAT);
	uint64_t b1 = (off + n + 2 * KRNL_F32_PER_BEAT - 1) / (2 * KRNL_F32_PER_BEAT);

wr_bf16:
	for (uint64_t b = b0; b < b1; b++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
		krnl_word w;
		uint64_t e0 = b * 2 * KRNL_F32_PER_BEAT;
		uint32_t l0 = e0 < off ? (uint32_t)(off - e0) / 2 : 0;
		uint32_t l1 = e0 + 2 * KRNL_F32_PER_BEAT > off + n ? (uint32_t)(off + n - e0) / 2
								   : KRNL_F32_PER_BEAT;

		for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++) {
			uint64_t e = e0 + 2 * j;

			w.u[j] = j >= l0 && j < l1 ?
				 krnl_f32_bf16(src[e - off]) |
				 (uint32_t)krnl_f32_bf16(src[e + 1 - off]) << 16 : 0;
		}
		krnl_wr_lanes(p, b, w, l0, l1);
	}
}

/* ---- weight rows --------------------------------------------------------- */

/* Scalar widenings: the kernels widen to f32 in registers as they stream
 * (krnl_bf16_f32 above). */
static inline float krnl_f16_f32(uint16_t h)
{
	/* exponent and mantissa moved into f32 position, rescaled by 2^112:
	 * exact for normals and subnormals alike, and branch-free */
	union { uint32_t u; float f; } v = { .u = (uint32_t)(h & 0x7fff) << 13 };
	union { uint32_t u; float f; } r;

	uint32_t special = 0u - (uint32_t)((h & 0x7c00) == 0x7c00);	/* inf / NaN */

	r.f = v.f * 0x1p112f;
	r.u = (r.u & ~special) | ((0x7f800000u | (uint32_t)(h & 0x3ff) << 13) & special);
	r.u |= (uint32_t)(h & 0x8000) << 16;
	return r.f;
}

/* Inlined at each call so a constant format specializes the datapath. */
#if defined(__GNUC__) && !defined(__SYNTHESIS__)
#define KRNL_ALWAYS __attribute__((always_inline))
#else
#define KRNL_ALWAYS
#endif

/* The epb values of one beat of a row in format fmt, widened (and, for the
 * integer formats, times the scale of their group: sc[] holds the row's
 * scales, c0 is the beat's first column, 2^gsh the group). */
static inline KRNL_ALWAYS void krnl_unpack(const krnl_word *w, uint32_t fmt, const float *sc, uint32_t c0,
			     uint32_t gsh, float *v)
{
#pragma HLS INLINE
	uint16_t h[32];
	int8_t q[64];
	uint8_t nib[64];

	switch (fmt) {
	case KRNL_FMT_F32:
		memcpy(v, w->u, KRNL_BEAT_BYTES);
		break;
	case KRNL_FMT_BF16:
		memcpy(h, w->u, KRNL_BEAT_BYTES);
		for (uint32_t j = 0; j < 32; j++)
			v[j] = krnl_bf16_f32(h[j]);
		break;
	case KRNL_FMT_F16:
		memcpy(h, w->u, KRNL_BEAT_BYTES);
		for (uint32_t j = 0; j < 32; j++)
			v[j] = krnl_f16_f32(h[j]);
		break;
	case KRNL_FMT_INT8:
		memcpy(q, w->u, KRNL_BEAT_BYTES);
		for (uint32_t j = 0; j < 64; j++)
			v[j] = (float)q[j] * sc[(c0 + j) >> gsh];
		break;
	default:	/* KRNL_FMT_INT4: element 2i low nibble of byte i */
		memcpy(nib, w->u, KRNL_BEAT_BYTES);
		for (uint32_t j = 0; j < 64; j++) {
			int32_t lo = nib[j] & 0xf, hi = nib[j] >> 4;
			v[2 * j] = (float)(lo - ((lo & 8) << 1)) * sc[(c0 + 2 * j) >> gsh];
			v[2 * j + 1] = (float)(hi - ((hi & 8) << 1)) * sc[(c0 + 2 * j + 1) >> gsh];
		}
		break;
	}
}

/* log2 of a group of 32, 64 or 128 (0 for the float formats). */
static inline uint32_t krnl_group_shift(uint32_t dt)
{
	uint32_t g = KRNL_DT_GROUP(dt);

	return g == 32 ? 5 : g == 64 ? 6 : g == 128 ? 7 : 0;
}

/* The group scales that open a quantized row at beat wb into sc[]; scales of
 * the padded tail of the row read as 0.  Returns the beats they took. */
static inline uint32_t krnl_wrow_scales(const krnl_word *w, uint64_t wb, uint32_t dt,
					uint32_t cols, float *sc)
{
	uint32_t group = KRNL_DT_GROUP(dt);
	uint32_t ng, sb;

	if (!krnl_fmt_quant(KRNL_DT_FMT(dt)))
		return 0;
	ng = (cols + group - 1) / group;
	sb = krnl_scale_beats(dt, cols);
scales:
	for (uint32_t b = 0; b < sb; b++) {
#pragma HLS loop_tripcount max=16
#pragma HLS PIPELINE II=1
		krnl_word s = krnl_rd(w, wb + b);
		for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++)
			sc[b * KRNL_F32_PER_BEAT + j] = krnl_lane_f32(&s, j);
	}
	for (uint32_t j = 0; j < KRNL_MAX_EPB / KRNL_MIN_GROUP; j++)
		sc[ng + j] = 0.0f;
	return sb;
}

#ifdef KRNL_X86_VEC
#include "krnl_mem_x86.h"
#endif

/* DO(format, elements per beat) with both constants, for the format fmt:
 * each format is its own datapath (and its own specialized code on a CPU). */
#define KRNL_BY_FMT(fmt, DO) do { \
	switch (fmt) { \
	case KRNL_FMT_F32:  DO(KRNL_FMT_F32, 16); break; \
	case KRNL_FMT_BF16: DO(KRNL_FMT_BF16, 32); break; \
	case KRNL_FMT_F16:  DO(KRNL_FMT_F16, 32); break; \
	case KRNL_FMT_INT8: DO(KRNL_FMT_INT8, 64); break; \
	default:            DO(KRNL_FMT_INT4, 128); break; \
	} \
} while (0)

/* One format's dot products: epb a constant at each call site, so each
 * format is its own datapath (and its own vectorized loop on a CPU).  Per
 * beat the epb products of a row fold by a fixed tree onto 16 lanes, which
 * add into partial sums acc[r][b % KRNL_ACC_LANES][lane]: no lane sees a
 * carried addition closer than KRNL_ACC_LANES beats apart. */
static inline KRNL_ALWAYS void krnl_dot_beats_hls(const krnl_word *w, uint64_t wb, uint32_t nb, const uint32_t fmt,
				const uint32_t epb, const float *sc, uint32_t gsh, const float *x,
				uint32_t xs, uint32_t nr,
				float acc[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT])
{
#pragma HLS INLINE
	float v[KRNL_MAX_EPB], p[KRNL_MAX_EPB];

beats:
	for (uint32_t b = 0; b < nb; b++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
		krnl_word q = krnl_rd(w, wb + b);
		uint32_t c0 = b * epb;

		krnl_unpack(&q, fmt, sc, c0, gsh, v);
rows:
		for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
			if (r >= nr)
				break;
			const float *xr = x + (uint64_t)r * xs + c0;
			float *a = acc[r][b % KRNL_ACC_LANES];

			for (uint32_t j = 0; j < epb; j++) {
#pragma HLS loop_tripcount max=128
				p[j] = v[j] * xr[j];
			}
			for (uint32_t lv = 1; lv < 4; lv++) {	/* epb/2 .. 16 */
				uint32_t n = epb >> lv;

				if (n < KRNL_F32_PER_BEAT)
					break;
				for (uint32_t j = 0; j < n; j++) {
#pragma HLS loop_tripcount max=64
					p[j] += p[j + n];
				}
			}
			for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++)
				a[j] += p[j];
		}
	}
}

/* The dot products as the card computes them: the HLS loop above, or on a
 * CPU the same arithmetic scheduled for its vector unit (krnl_mem_x86.h). */
static inline KRNL_ALWAYS void krnl_dot_beats(const krnl_word *w, uint64_t wb, uint32_t nb, const uint32_t fmt,
				const uint32_t epb, const float *sc, uint32_t gsh, const float *x,
				uint32_t xs, uint32_t nr,
				float acc[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT])
{
#pragma HLS INLINE
#ifdef KRNL_X86_VEC
	krnl_dot_beats_x86(w, wb, nb, fmt, epb, sc, gsh, x, xs, nr, 1, acc);
#else
	krnl_dot_beats_hls(w, wb, nb, fmt, epb, sc, gsh, x, xs, nr, acc);
#endif
}

/* out[r] = the sum of row r's partial sums: the eight sums, then the lanes,
 * as fixed trees. */
static inline void krnl_acc_sum(float acc[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT], uint32_t nr,
				float *out)
{
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= nr)
			break;
		float l[KRNL_F32_PER_BEAT];

		for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++)
			l[j] = ((acc[r][0][j] + acc[r][4][j]) + (acc[r][2][j] + acc[r][6][j])) +
			       ((acc[r][1][j] + acc[r][5][j]) + (acc[r][3][j] + acc[r][7][j]));
		for (uint32_t j = 0; j < 8; j++)
			l[j] += l[j + 8];
		for (uint32_t j = 0; j < 4; j++)
			l[j] += l[j + 4];
		out[r] = (l[0] + l[2]) + (l[1] + l[3]);
	}
}

/*
 * out[r] = sum_c W[c] * x[r * xs + c], c < cols, for r < nr, where W is the
 * row of a weight matrix in format dt starting at beat wb of port w.
 * x must hold zeros from cols up to a whole beat of the format, so the padded
 * tail of the row adds nothing.  One weight beat feeds every row.
 */
static inline void krnl_wrow_dot(const krnl_word *w, uint64_t wb, uint32_t dt, uint32_t cols,
				 const float *x, uint32_t xs, uint32_t nr, float *out)
{
	uint32_t fmt = KRNL_DT_FMT(dt), epb = krnl_fmt_epb(fmt), gsh = krnl_group_shift(dt);
	uint32_t nb = (cols + epb - 1) / epb;
	float sc[KRNL_MAX_SCALES];
	float acc[KRNL_MAX_BATCH][KRNL_ACC_LANES][KRNL_F32_PER_BEAT];

	wb += krnl_wrow_scales(w, wb, dt, cols, sc);
#ifndef KRNL_X86_VEC	/* the vector path starts its sums at zero itself */
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= nr)
			break;
		memset(acc[r], 0, sizeof(acc[r]));
	}
#endif
#define KRNL_DOT_FMT(F, E) krnl_dot_beats(w, wb, nb, F, E, sc, gsh, x, xs, nr, acc)
	KRNL_BY_FMT(fmt, KRNL_DOT_FMT);
#undef KRNL_DOT_FMT
	krnl_acc_sum(acc, nr, out);
}

#ifndef __SYNTHESIS__
#ifdef KRNL_X86_VEC
/* out[k][j][r0 + r] = the dot products of the folded sums fv[k][r][j]: the
 * 16 weight rows of a block reduced at once (krnl_v16_hsum16). */
static inline KRNL_ALWAYS void krnl_x86_hsum_out(krnl_v16 fv[][2][KRNL_F32_PER_BEAT], uint32_t nm,
						 uint32_t nrow, uint32_t r0, uint32_t nr,
						 float out[][KRNL_F32_PER_BEAT][KRNL_MAX_BATCH])
{
	for (uint32_t k = 0; k < nm; k++)
		for (uint32_t r = 0; r < nr; r++) {
			float o[KRNL_F32_PER_BEAT];
			krnl_v16 z = krnl_v16_hsum16(fv[k][r]);

			memcpy(o, &z, sizeof(o));
			for (uint32_t j = 0; j < nrow; j++)
				out[k][j][r0 + r] = o[j];
		}
}

/* One or two batch rows against nm blocks of weight rows, each row streamed
 * start to end, the blocks' rows interleaved; one format, so no dispatch per
 * row.  A quantized row's scales are used where they lie in the row when
 * every group its beats touch is a real one (the HLS loop reads them into
 * sc[] and zeroes the groups past the row; those are then never read). */
static inline KRNL_ALWAYS void krnl_x86_short(const krnl_word *w, const uint64_t *wb, uint32_t nm,
					      uint64_t rb, uint32_t nrow, const uint32_t fmt,
					      const uint32_t epb, uint32_t dt, uint32_t cols,
					      const float *x, uint32_t xs, uint32_t nr,
					      float out[][KRNL_F32_PER_BEAT][KRNL_MAX_BATCH])
{
	uint32_t gsh = krnl_group_shift(dt), nb = (cols + epb - 1) / epb;
	uint32_t sb = krnl_scale_beats(dt, cols);
	int direct = krnl_fmt_quant(fmt) &&
		     ((nb * epb - 1) >> gsh) < (cols + KRNL_DT_GROUP(dt) - 1) / KRNL_DT_GROUP(dt);
	float sc[KRNL_MAX_SCALES];
	krnl_v16 fv[2][2][KRNL_F32_PER_BEAT];	/* [block][batch row][weight row] */

	if (nrow < KRNL_F32_PER_BEAT)
		memset(fv, 0, sizeof(fv));
	for (uint32_t j = 0; j < nrow; j++)
		for (uint32_t k = 0; k < nm; k++) {
			const krnl_word *row = w + wb[k] + j * rb;
			const float *s = sc;
			krnl_v16 f[2];

			KRNL_METER(row, sb + nb, 0);
			if (direct) {
				s = (const float *)(const void *)row->u;
			} else if (krnl_fmt_quant(fmt)) {
				struct krnl_meter *m = krnl_meter_cur;

				krnl_meter_cur = NULL;	/* counted with the row above */
				krnl_wrow_scales(w, wb[k] + j * rb, dt, cols, sc);
				krnl_meter_cur = m;
			}
			if (nr == 2)
				krnl_x86_rows(row + sb, nb, fmt, epb / 16, epb, s, gsh, x, xs, 2, 1,
					      NULL, f);
			else
				krnl_x86_rows(row + sb, nb, fmt, epb / 16, epb, s, gsh, x, xs, 1, 1,
					      NULL, f);
			for (uint32_t r = 0; r < nr; r++)
				fv[k][r][j] = f[r];
		}
	krnl_x86_hsum_out(fv, nm, nrow, 0, nr, out);
}

/* On a CPU, for nm (1 or 2) blocks of weight rows starting at beats wb[m]:
 * one or two batch rows stream each weight row start to end, the blocks'
 * rows interleaved (two matrices read side by side, as gate and up are);
 * more batch rows go two at a time over the whole blocks, so their x stays
 * in the first-level cache while the blocks' rows come from the second.
 * Each weight row is metered once, as the card reads it once. */
static inline void krnl_wrows_dot_x86(const krnl_word *w, const uint64_t *wb, uint32_t nm,
				      uint64_t rb, uint32_t nrow, uint32_t dt, uint32_t cols,
				      const float *x, uint32_t xs, uint32_t nr,
				      float out[][KRNL_F32_PER_BEAT][KRNL_MAX_BATCH])
{
	uint32_t fmt = KRNL_DT_FMT(dt), epb = krnl_fmt_epb(fmt), gsh = krnl_group_shift(dt);
	uint32_t nb = (cols + epb - 1) / epb, sb = 0;
	static _Thread_local float sc[2][KRNL_F32_PER_BEAT][KRNL_MAX_SCALES];
	struct krnl_meter *m = krnl_meter_cur;

	if (nr <= 2) {
#define KRNL_SHORT_FMT(F, E) krnl_x86_short(w, wb, nm, rb, nrow, F, E, dt, cols, x, xs, nr, out)
		KRNL_BY_FMT(fmt, KRNL_SHORT_FMT);
#undef KRNL_SHORT_FMT
		return;
	}
	krnl_meter_cur = NULL;	/* the scales are counted with their row below */
	for (uint32_t k = 0; k < nm; k++)
		for (uint32_t j = 0; j < nrow; j++)
			sb = krnl_wrow_scales(w, wb[k] + j * rb, dt, cols, sc[k][j]);
	krnl_meter_cur = m;
	for (uint32_t k = 0; k < nm; k++)
		for (uint32_t j = 0; j < nrow; j++)
			KRNL_METER(w + wb[k] + j * rb, sb + nb, 0);
	krnl_v16 fv[2][2][KRNL_F32_PER_BEAT];	/* [block][batch row][weight row] */

	if (nrow < KRNL_F32_PER_BEAT)
		memset(fv, 0, sizeof(fv));
	for (uint32_t r = 0; r < nr; r += 2) {
		uint32_t two = nr - r >= 2;

		for (uint32_t j = 0; j < nrow; j++)
			for (uint32_t k = 0; k < nm; k++) {
				const krnl_word *q = w + wb[k] + j * rb + sb;
				const float *xr = x + (uint64_t)r * xs;
				const float *s = sc[k][j];
				krnl_v16 f[2];

#define KRNL_ROWS_FMT(F, E) do { \
	if (two) \
		krnl_x86_rows(q, nb, F, E / 16, E, s, gsh, xr, xs, 2, 1, NULL, f); \
	else \
		krnl_x86_rows(q, nb, F, E / 16, E, s, gsh, xr, xs, 1, 1, NULL, f); \
} while (0)
				KRNL_BY_FMT(fmt, KRNL_ROWS_FMT);
#undef KRNL_ROWS_FMT
				fv[k][0][j] = f[0];
				fv[k][1][j] = two ? f[1] : f[0];
			}
		krnl_x86_hsum_out(fv, nm, nrow, r, two ? 2 : 1, out);
	}
}
#endif
#endif

/*
 * out[j][r] = krnl_wrow_dot of weight row j < nrow of a block (rows rb beats
 * apart from beat wb) with batch row r < nr: an output beat's 16 rows.
 */
static inline void krnl_wrows_dot(const krnl_word *w, uint64_t wb, uint64_t rb, uint32_t nrow,
				  uint32_t dt, uint32_t cols, const float *x, uint32_t xs,
				  uint32_t nr, float out[][KRNL_MAX_BATCH])
{
#ifdef KRNL_X86_VEC
	krnl_wrows_dot_x86(w, &wb, 1, rb, nrow, dt, cols, x, xs, nr,
			   (float (*)[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH])out);
#else
wrows:
	for (uint32_t j = 0; j < nrow; j++) {
#pragma HLS loop_tripcount max=16
		krnl_wrow_dot(w, wb + j * rb, dt, cols, x, xs, nr, out[j]);
	}
#endif
}

/* The same for two blocks of one layout read side by side (an expert's gate
 * and up rows): a[j][r] from the block at wa, b[j][r] from the one at wb2. */
static inline void krnl_wrows_dot2(const krnl_word *w, uint64_t wa, uint64_t wb2, uint64_t rb,
				   uint32_t nrow, uint32_t dt, uint32_t cols, const float *x,
				   uint32_t xs, uint32_t nr, float a[][KRNL_MAX_BATCH],
				   float b[][KRNL_MAX_BATCH])
{
#ifdef KRNL_X86_VEC
	const uint64_t at[2] = { wa, wb2 };
	float o[2][KRNL_F32_PER_BEAT][KRNL_MAX_BATCH];

	krnl_wrows_dot_x86(w, at, 2, rb, nrow, dt, cols, x, xs, nr, o);
	memcpy(a, o[0], sizeof(float) * KRNL_MAX_BATCH * nrow);
	memcpy(b, o[1], sizeof(float) * KRNL_MAX_BATCH * nrow);
#else
wrows2:
	for (uint32_t j = 0; j < nrow; j++) {
#pragma HLS loop_tripcount max=16
		krnl_wrow_dot(w, wa + j * rb, dt, cols, x, xs, nr, a[j]);
		krnl_wrow_dot(w, wb2 + j * rb, dt, cols, x, xs, nr, b[j]);
	}
#endif
}

/* dst[0..cols) = row of a weight matrix in format dt from beat wb (embedding
 * lookups); dst must have room up to a whole beat of the format. */
static inline void krnl_wrow_load(const krnl_word *w, uint64_t wb, uint32_t dt, uint32_t cols,
				  float *dst)
{
	uint32_t fmt = KRNL_DT_FMT(dt), epb = krnl_fmt_epb(fmt), gsh = krnl_group_shift(dt);
	uint32_t nb = (cols + epb - 1) / epb;
	float sc[KRNL_MAX_SCALES];

	wb += krnl_wrow_scales(w, wb, dt, cols, sc);
	for (uint32_t b = 0; b < nb; b++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
		krnl_word q = krnl_rd(w, wb + b);
		krnl_unpack(&q, fmt, sc, b * epb, gsh, dst + (uint64_t)b * epb);
	}
}

#if !defined(__SYNTHESIS__) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif
