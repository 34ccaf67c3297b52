/* krnl_rmsnorm_gated.c — the per-head gated norm inside Gated DeltaNet. */
#include "krnl_common.h"
#include "krnl_rmsnorm_gated.h"

void krnl_rmsnorm_gated(const float *x, const float *z, const float *w, float *y,
			uint32_t rows, uint32_t heads, uint32_t dim,
			uint32_t zstride, float eps)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=z bundle=gmem1
#pragma HLS INTERFACE m_axi port=w bundle=gmem2
#pragma HLS INTERFACE m_axi port=y bundle=gmem3
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=heads
#pragma HLS INTERFACE s_axilite port=dim
#pragma HLS INTERFACE s_axilite port=zstride
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=return
row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
head:
		for (uint32_t h = 0; h < KRNL_MAX_HEADS; h++) {
			if (h >= heads)
				break;
			const float *xh = x + ((uint64_t)r * heads + h) * dim;
			const float *zh = z + (uint64_t)r * zstride + (uint64_t)h * dim;
			float *yh = y + ((uint64_t)r * heads + h) * dim;
			float ss = 0.0f;
sum:
			for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
				if (i >= dim)
					break;
				ss += xh[i] * xh[i];
			}
			float inv = 1.0f / sqrtf(ss / (float)dim + eps);
gate:
			for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
#pragma HLS PIPELINE II=1
				if (i >= dim)
					break;
				yh[i] = xh[i] * inv * w[i] * krnl_silu(zh[i]);
			}
		}
	}
}
