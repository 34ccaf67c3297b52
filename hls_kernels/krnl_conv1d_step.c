/* krnl_conv1d_step.c — short causal conv with carried state (decode form). */
#include "krnl_common.h"
#include "krnl_conv1d_step.h"
#include "krnl_state.h"

#define CONV_CHUNK 256	/* channels on chip at once */

void krnl_conv1d_step(krnl_word *x, const krnl_word *w, krnl_word *state,
		      const krnl_word *blocks, uint32_t rows, uint32_t ch, uint32_t k,
		      uint32_t xstride, uint32_t nblk)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1
#pragma HLS INTERFACE m_axi port=state bundle=gmem2
#pragma HLS INTERFACE m_axi port=blocks bundle=gmem3
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=ch
#pragma HLS INTERFACE s_axilite port=k
#pragma HLS INTERFACE s_axilite port=xstride
#pragma HLS INTERFACE s_axilite port=nblk
#pragma HLS INTERFACE s_axilite port=return
	int32_t sl[2 * KRNL_MAX_BATCH];	/* handles: rows' state in, then out */
	float wb[CONV_CHUNK * KRNL_MAX_CONV_K];
	float sb[CONV_CHUNK * (KRNL_MAX_CONV_K - 1)];
	float xb[CONV_CHUNK];
	uint32_t km = k - 1;			/* state taps per channel */
	uint64_t per = krnl_conv_block(ch, k);	/* one handle's state */

	krnl_rd_i32(sl, blocks, 0, 2 * rows);
chunk:
	for (uint32_t c0 = 0; c0 < ch; c0 += CONV_CHUNK) {
#pragma HLS loop_tripcount max=64
		uint32_t n = ch - c0 < CONV_CHUNK ? ch - c0 : CONV_CHUNK;

		krnl_rd_f32(wb, w, (uint64_t)c0 * k, n * k);
row:
		for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
			uint32_t b = (uint32_t)sl[r] < nblk ? (uint32_t)sl[r] : 0;
			uint32_t bo = (uint32_t)sl[rows + r] < nblk ? (uint32_t)sl[rows + r] : 0;
			uint64_t so = (uint64_t)b * per + (uint64_t)c0 * km;
			uint64_t sw = (uint64_t)bo * per + (uint64_t)c0 * km;
			uint64_t xo = (uint64_t)r * xstride + c0;

			krnl_rd_f32(xb, x, xo, n);
			krnl_rd_f32(sb, state, so, n * km);
chan:
			for (uint32_t c = 0; c < n; c++) {
#pragma HLS loop_tripcount max=256
#pragma HLS PIPELINE II=1
				float *sc = sb + c * km;
				const float *wc = wb + c * k;
				float in = xb[c];
				float acc = 0.0f;
tap:
				for (uint32_t j = 0; j + 1 < KRNL_MAX_CONV_K; j++) {
					if (j >= km)
						break;
					acc += wc[j] * sc[j];
				}
				acc += wc[km] * in;
shift:
				for (uint32_t j = 0; j + 1 < KRNL_MAX_CONV_K; j++) {
					if (j >= km)
						break;
					sc[j] = j + 1 < km ? sc[j + 1] : in;
				}
				xb[c] = krnl_silu(acc);
			}
			krnl_wr_f32(state, sw, sb, n * km);
			krnl_wr_f32(x, xo, xb, n);
		}
	}
}
