/* krnl_gemv.c — the projection workhorse: batch of activations times a weight
 * matrix streamed from HBM once. */
#include "krnl_common.h"
#include "krnl_gemv.h"

#define XW (KRNL_MAX_HIDDEN + KRNL_MAX_EPB)	/* x row with its zero tail */

void krnl_gemv(const krnl_word *x, const krnl_word *w, krnl_word *y, uint32_t rows,
	       uint32_t in, uint32_t out, uint32_t xstride, uint32_t ystride,
	       uint32_t dt, uint32_t acc)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=y bundle=gmem2
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=in
#pragma HLS INTERFACE s_axilite port=out
#pragma HLS INTERFACE s_axilite port=xstride
#pragma HLS INTERFACE s_axilite port=ystride
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=acc
#pragma HLS INTERFACE s_axilite port=return
	KRNL_LOCAL float xb[KRNL_MAX_BATCH][XW];
	float yb[KRNL_MAX_BATCH][KRNL_F32_PER_BEAT], prev[KRNL_F32_PER_BEAT];
	float d[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH];
	uint32_t rb = krnl_row_beats(dt, in);

	/* Activations stay on chip for the whole pass over W. */
load_x:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		krnl_rd_f32(xb[r], x, (uint64_t)r * xstride, in);
		for (uint32_t j = 0; j < KRNL_MAX_EPB; j++)
			xb[r][in + j] = 0.0f;
	}
	/* Outputs a beat at a time: 16 weight rows, then one write per row. */
out_beat:
	for (uint32_t o0 = 0; o0 < out; o0 += KRNL_F32_PER_BEAT) {
#pragma HLS loop_tripcount max=65536
		uint32_t nb = out - o0 < KRNL_F32_PER_BEAT ? out - o0 : KRNL_F32_PER_BEAT;

		krnl_wrows_dot(w, (uint64_t)o0 * rb, rb, nb, dt, in, xb[0], XW, rows, d);
out_row:
		for (uint32_t j = 0; j < nb; j++) {
#pragma HLS loop_tripcount max=16
			for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
				if (r >= rows)
					break;
				yb[r][j] = d[j][r];
			}
		}
store_y:
		for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
			uint64_t at = (uint64_t)r * ystride + o0;

			if (acc) {
				krnl_rd_f32(prev, y, at, nb);
				for (uint32_t j = 0; j < KRNL_F32_PER_BEAT; j++) {
					if (j >= nb)
						break;
					yb[r][j] += prev[j];
				}
			}
			krnl_wr_f32(y, at, yb[r], nb);
		}
	}
}
