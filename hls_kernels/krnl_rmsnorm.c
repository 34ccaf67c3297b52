/* krnl_rmsnorm.c — RMSNorm over rows (batch rows, or heads of a row). */
#include "krnl_common.h"
#include "krnl_rmsnorm.h"

void krnl_rmsnorm(const float *x, const float *w, float *y, uint32_t rows,
		  uint32_t dim, float eps, float woff)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1
#pragma HLS INTERFACE m_axi port=y bundle=gmem2
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=dim
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=woff
#pragma HLS INTERFACE s_axilite port=return
	float buf[KRNL_MAX_HIDDEN];

row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH * KRNL_MAX_HEADS; r++) {
		if (r >= rows)
			break;
		const float *xr = x + (uint64_t)r * dim;
		float *yr = y + (uint64_t)r * dim;
		float ss = 0.0f;
load:
		for (uint32_t i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
			if (i >= dim)
				break;
			buf[i] = xr[i];
			ss += buf[i] * buf[i];
		}
		float inv = 1.0f / sqrtf(ss / (float)dim + eps);
scale:
		for (uint32_t i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
			if (i >= dim)
				break;
			yr[i] = buf[i] * inv * (woff + w[i]);
		}
	}
}
