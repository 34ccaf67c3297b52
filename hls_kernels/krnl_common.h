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
#include "krnl_types.h"

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

/* Group scales of one weight row on chip, with room for the padded tail. */
#define KRNL_MAX_SCALES   (KRNL_MAX_HIDDEN / KRNL_MIN_GROUP + KRNL_MAX_EPB / KRNL_MIN_GROUP + 16)

/* A kernel's on-chip buffer that outlives one call (BRAM/URAM under HLS).  In
 * C-simulation each compute unit is a thread with its own copy, aligned to a
 * cache line (a vector load of a row must not straddle two). */
#ifdef __SYNTHESIS__
#define KRNL_LOCAL static
#else
#define KRNL_LOCAL static _Thread_local _Alignas(64)
#endif

/* How many on-chip partial sums per lane break a carried f32 addition: at
 * least the latency of the f32 adder at the kernel clock. */
#define KRNL_ACC_LANES 8

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
