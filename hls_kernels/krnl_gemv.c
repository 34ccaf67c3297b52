/* krnl_gemv.c — the projection workhorse: batch of activations times a weight
 * matrix streamed from HBM once. */
#include "krnl_common.h"
#include "krnl_gemv.h"

void krnl_gemv(const float *x, const uint16_t *w, float *y, uint32_t rows,
	       uint32_t in, uint32_t out, uint32_t xstride, uint32_t ystride,
	       uint32_t dt, uint32_t acc)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1
#pragma HLS INTERFACE m_axi port=y bundle=gmem2
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=in
#pragma HLS INTERFACE s_axilite port=out
#pragma HLS INTERFACE s_axilite port=xstride
#pragma HLS INTERFACE s_axilite port=ystride
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=acc
#pragma HLS INTERFACE s_axilite port=return
	static float xb[KRNL_MAX_BATCH][KRNL_MAX_HIDDEN];
	float wrow[KRNL_MAX_HIDDEN];

	/* Activations stay on chip for the whole pass over W. */
load_x:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		for (uint32_t i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
			if (i >= in)
				break;
			xb[r][i] = x[(uint64_t)r * xstride + i];
		}
	}
out_row:
	for (uint32_t o = 0; o < KRNL_MAX_OUT; o++) {
		if (o >= out)
			break;
load_w:
		for (uint32_t i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
			if (i >= in)
				break;
			wrow[i] = krnl_wload(w, (uint64_t)o * in + i, dt);
		}
batch:
		for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
			if (r >= rows)
				break;
			float s = 0.0f;
dot:
			for (uint32_t i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
				if (i >= in)
					break;
				s += wrow[i] * xb[r][i];
			}
			float *yo = y + (uint64_t)r * ystride + o;
			*yo = acc ? *yo + s : s;
		}
	}
}
