/* krnl_conv1d_step.c — short causal conv with carried state (decode form). */
#include "krnl_common.h"
#include "krnl_conv1d_step.h"

void krnl_conv1d_step(float *x, const float *w, float *state, const int32_t *slots,
		      uint32_t rows, uint32_t ch, uint32_t k, uint32_t xstride)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1
#pragma HLS INTERFACE m_axi port=state bundle=gmem2
#pragma HLS INTERFACE m_axi port=slots bundle=gmem3
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=ch
#pragma HLS INTERFACE s_axilite port=k
#pragma HLS INTERFACE s_axilite port=xstride
#pragma HLS INTERFACE s_axilite port=return
	float win[KRNL_MAX_CONV_K];

row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		float *xr = x + (uint64_t)r * xstride;
		float *st = state + (uint64_t)(uint32_t)slots[r] * ch * (k - 1);
chan:
		for (uint32_t c = 0; c < KRNL_MAX_CHAN; c++) {
#pragma HLS PIPELINE II=1
			if (c >= ch)
				break;
			float *sc = st + (uint64_t)c * (k - 1);
			const float *wc = w + (uint64_t)c * k;
			float acc = 0.0f;
tap:
			for (uint32_t j = 0; j < KRNL_MAX_CONV_K; j++) {
				if (j >= k)
					break;
				win[j] = j + 1 < k ? sc[j] : xr[c];
				acc += wc[j] * win[j];
			}
shift:
			for (uint32_t j = 0; j + 1 < KRNL_MAX_CONV_K; j++) {
				if (j + 1 >= k)
					break;
				sc[j] = win[j + 1];
			}
			xr[c] = krnl_silu(acc);
		}
	}
}
