/* krnl_common.h — shared limits and scalar helpers of the HLS kernels.
 *
 * Every loop in a kernel runs to one of these compile-time maxima and breaks at
 * the runtime size, so Vitis HLS sees a static trip count and C-sim sees the
 * real one.  Sizes of Qwen3-Next-80B-A3B fit with room to spare.
 */
#ifndef KRNL_COMMON_H
#define KRNL_COMMON_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#define KRNL_MAX_BATCH    16		/* sequences in one token step */
#define KRNL_MAX_HIDDEN   8192
#define KRNL_MAX_OUT      (1u << 20)	/* GEMV output rows (vocab-sized) */
#define KRNL_MAX_INTER    4096		/* expert / shared-expert intermediate */
#define KRNL_MAX_EXPERTS  1024
#define KRNL_MAX_TOPK     32
#define KRNL_MAX_HEADS    128
#define KRNL_MAX_HEAD_DIM 512
#define KRNL_MAX_CHAN     16384		/* conv channels: 2*nk*dk + nv*dv */
#define KRNL_MAX_CONV_K   8
#define KRNL_MAX_CTX      (1u << 20)
#define KRNL_MAX_VOCAB    (1u << 20)

/* Weight storage formats in HBM. */
#define KRNL_DT_F32  0
#define KRNL_DT_BF16 1

/* One weight element.  HBM is little-endian 16-bit words: a bf16 is one word,
 * an f32 two (low word first).  Reading through one word pointer keeps a
 * single m_axi port per weight stream whatever the format. */
static inline float krnl_wload(const uint16_t *w, uint64_t i, uint32_t dt)
{
	union { uint32_t u; float f; } v;

	if (dt == KRNL_DT_BF16)
		v.u = (uint32_t)w[i] << 16;
	else
		v.u = (uint32_t)w[2 * i] | ((uint32_t)w[2 * i + 1] << 16);
	return v.f;
}

static inline float krnl_sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

static inline float krnl_silu(float x)
{
	return x * krnl_sigmoid(x);
}

/* log(1 + e^x) without overflow for large x. */
static inline float krnl_softplus(float x)
{
	if (x > 20.0f)
		return x;
	return log1pf(expf(x));
}

#endif
