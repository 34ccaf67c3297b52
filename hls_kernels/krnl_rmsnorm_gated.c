/* krnl_rmsnorm_gated.c — the per-head gated norm inside Gated DeltaNet. */
#include "krnl_common.h"
#include "krnl_rmsnorm_gated.h"

/* Floats of x and z on chip at once: whole heads, at least 8 of the widest. */
#define RMG_CHUNK 4096

void krnl_rmsnorm_gated(const krnl_word *x, const krnl_word *z, const krnl_word *w,
			krnl_word *y, uint32_t rows, uint32_t heads, uint32_t dim,
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
	float wb[KRNL_MAX_HEAD_DIM], xb[RMG_CHUNK], zb[RMG_CHUNK];
	uint32_t hpc = dim ? RMG_CHUNK / dim : 1;	/* heads per chunk */
	uint64_t width = (uint64_t)heads * dim;

	krnl_rd_f32(wb, w, 0, dim);
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
chunk:
		for (uint32_t h0 = 0; h0 < heads; h0 += hpc) {
#pragma HLS loop_tripcount max=16
			uint32_t nh = heads - h0 < hpc ? heads - h0 : hpc;
			uint64_t xo = (uint64_t)r * width + (uint64_t)h0 * dim;

			krnl_rd_f32(xb, x, xo, nh * dim);
			krnl_rd_f32(zb, z, (uint64_t)r * zstride + (uint64_t)h0 * dim, nh * dim);
head:
			for (uint32_t h = 0; h < nh; h++) {
#pragma HLS loop_tripcount max=8
				float *xh = xb + h * dim;
				const float *zh = zb + h * dim;

				float ss = krnl_dot_f32(xh, xh, dim);
				float inv = 1.0f / sqrtf(ss / (float)dim + eps);
gate:
				for (uint32_t i = 0; i < dim; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
					xh[i] = xh[i] * inv * wb[i] * krnl_silu(zh[i]);
				}
			}
			krnl_wr_f32(y, xo, xb, nh * dim);
		}
	}
}
