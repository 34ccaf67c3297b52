/* krnl_rmsnorm.c — RMSNorm over rows (batch rows, or heads of a row). */
#include "krnl_common.h"
#include "krnl_rmsnorm.h"

void krnl_rmsnorm(const krnl_word *x, const krnl_word *w, krnl_word *y, uint32_t rows,
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
	float wb[KRNL_MAX_HIDDEN], buf[KRNL_MAX_HIDDEN];

	krnl_rd_f32(wb, w, 0, dim);
weight:
	for (uint32_t i = 0; i < dim; i++) {
#pragma HLS loop_tripcount max=8192
#pragma HLS PIPELINE II=1
		wb[i] += woff;
	}
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=2048
		krnl_rd_f32(buf, x, (uint64_t)r * dim, dim);
		float ss = krnl_dot_f32(buf, buf, dim);
		float inv = 1.0f / sqrtf(ss / (float)dim + eps);
scale:
		for (uint32_t i = 0; i < dim; i++) {
#pragma HLS loop_tripcount max=8192
#pragma HLS PIPELINE II=1
			buf[i] = buf[i] * inv * wb[i];
		}
		krnl_wr_f32(y, (uint64_t)r * dim, buf, dim);
	}
}
