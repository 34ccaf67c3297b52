/* krnl_lm_head_argmax.c — the last op of a token step. */
#include "krnl_common.h"
#include "krnl_lm_head_argmax.h"

#define XW (KRNL_MAX_HIDDEN + KRNL_MAX_EPB)	/* x row with its zero tail */

void krnl_lm_head_argmax(const krnl_word *x, const krnl_word *nw, const krnl_word *w,
			 krnl_word *logits, const krnl_word *dst, krnl_word *argmax,
			 uint32_t rows, uint32_t h, uint32_t v, float eps, uint32_t dt,
			 uint32_t ls)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=nw bundle=gmem1
#pragma HLS INTERFACE m_axi port=w bundle=gmem2 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=logits bundle=gmem3
#pragma HLS INTERFACE m_axi port=dst bundle=gmem4
#pragma HLS INTERFACE m_axi port=argmax bundle=gmem5
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=h
#pragma HLS INTERFACE s_axilite port=v
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=ls
#pragma HLS INTERFACE s_axilite port=return
	KRNL_LOCAL float xn[KRNL_MAX_BATCH][XW];
	float wn[KRNL_MAX_HIDDEN];
	float lb[KRNL_MAX_BATCH][KRNL_F32_PER_BEAT], d[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH];
	float best[KRNL_MAX_BATCH];
	int32_t ds[KRNL_MAX_BATCH], bi[KRNL_MAX_BATCH];
	uint32_t rb = krnl_row_beats(dt, h);

	krnl_rd_f32(wn, nw, 0, h);
	krnl_rd_i32(ds, dst, 0, rows);
norm:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		float *xr = xn[r];

		krnl_rd_f32(xr, x, (uint64_t)r * h, h);
		float ss = krnl_dot_f32(xr, xr, h);
		float inv = 1.0f / sqrtf(ss / (float)h + eps);
		for (uint32_t c = 0; c < h; c++) {
#pragma HLS loop_tripcount max=8192
			xr[c] = xr[c] * inv * (1.0f + wn[c]);
		}
		for (uint32_t j = 0; j < KRNL_MAX_EPB; j++)
			xr[h + j] = 0.0f;
		best[r] = -INFINITY;
		bi[r] = 0;
	}
vocab_beat:
	for (uint32_t o0 = 0; o0 < v; o0 += KRNL_F32_PER_BEAT) {
#pragma HLS loop_tripcount max=65536
		uint32_t nb = v - o0 < KRNL_F32_PER_BEAT ? v - o0 : KRNL_F32_PER_BEAT;

		krnl_wrows_dot(w, (uint64_t)o0 * rb, rb, nb, dt, h, xn[0], XW, rows, d);
vocab_row:
		for (uint32_t j = 0; j < nb; j++) {
#pragma HLS loop_tripcount max=16
			for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
				if (r >= rows)
					break;
				lb[r][j] = d[j][r];
				if (d[j][r] > best[r]) {	/* strict: the first index wins ties */
					best[r] = d[j][r];
					bi[r] = (int32_t)(o0 + j);
				}
			}
		}
store_logits:
		for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
			if (ds[r] >= 0)
				krnl_wr_f32(logits, (uint64_t)ds[r] * ls + o0, lb[r], nb);
		}
	}
	krnl_wr_i32(argmax, 0, bi, rows);
}
