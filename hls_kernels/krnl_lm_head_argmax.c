/* krnl_lm_head_argmax.c — the last op of a token step. */
#include "krnl_common.h"
#include "krnl_lm_head_argmax.h"

void krnl_lm_head_argmax(const float *x, const float *nw, const uint16_t *w,
			 float *logits, const int32_t *dst, int32_t *argmax,
			 uint32_t rows, uint32_t h, uint32_t v, float eps,
			 uint32_t dt)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=nw bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1
#pragma HLS INTERFACE m_axi port=logits bundle=gmem2
#pragma HLS INTERFACE m_axi port=dst bundle=gmem3
#pragma HLS INTERFACE m_axi port=argmax bundle=gmem3
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=h
#pragma HLS INTERFACE s_axilite port=v
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=return
	static float xn[KRNL_MAX_BATCH][KRNL_MAX_HIDDEN];
	float wrow[KRNL_MAX_HIDDEN], best[KRNL_MAX_BATCH];
	int32_t bi[KRNL_MAX_BATCH];

norm:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		float ss = 0.0f;
		for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
			if (c >= h)
				break;
			ss += x[(uint64_t)r * h + c] * x[(uint64_t)r * h + c];
		}
		float inv = 1.0f / sqrtf(ss / (float)h + eps);
		for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
			if (c >= h)
				break;
			xn[r][c] = x[(uint64_t)r * h + c] * inv * (1.0f + nw[c]);
		}
		best[r] = -INFINITY;
		bi[r] = 0;
	}
vocab:
	for (uint32_t o = 0; o < KRNL_MAX_VOCAB; o++) {
		if (o >= v)
			break;
		for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
#pragma HLS PIPELINE II=1
			if (c >= h)
				break;
			wrow[c] = krnl_wload(w, (uint64_t)o * h + c, dt);
		}
		for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
			if (r >= rows)
				break;
			float s = 0.0f;
			for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
#pragma HLS PIPELINE II=1
				if (c >= h)
					break;
				s += wrow[c] * xn[r][c];
			}
			if (dst[r] >= 0)
				logits[(uint64_t)dst[r] * v + o] = s;
			if (s > best[r]) {
				best[r] = s;
				bi[r] = (int32_t)o;
			}
		}
	}
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		argmax[r] = bi[r];
	}
}
