/* krnl_expert_ffn.c — SwiGLU experts (routed and shared) over a batch. */
#include "krnl_common.h"
#include "krnl_expert_ffn.h"

#define XW (KRNL_MAX_HIDDEN + KRNL_MAX_EPB)	/* x row with its zero tail */
#define AW (KRNL_MAX_INTER + KRNL_MAX_EPB)	/* activation row likewise */

KRNL_LOCAL float xb[KRNL_MAX_BATCH][XW];		/* the batch's inputs */
KRNL_LOCAL float yb[KRNL_MAX_BATCH][KRNL_MAX_HIDDEN];	/* the residual stream */
KRNL_LOCAL float xg[KRNL_MAX_BATCH][XW];		/* rows of one expert, gathered */
KRNL_LOCAL float act[KRNL_MAX_BATCH][AW];

/* One SwiGLU expert (block at we) for n rows: rws[] into the batch, scale[]. */
static void swiglu(const krnl_word *we, uint32_t h, uint32_t ni, uint32_t dt,
		   const int32_t *rws, const float *scale, uint32_t n)
{
	uint32_t rbh = krnl_row_beats(dt, h), rbi = krnl_row_beats(dt, ni);
	uint64_t up = (uint64_t)ni * rbh, down = 2ull * ni * rbh;
	float g[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH], u[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH];
	float d[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH];

gather:
	for (uint32_t j = 0; j < n; j++) {
#pragma HLS loop_tripcount max=16
		for (uint32_t c = 0; c < h + KRNL_MAX_EPB; c++) {
#pragma HLS loop_tripcount max=8320
			xg[j][c] = xb[rws[j]][c];
		}
	}
	/* gate and up, 16 intermediate rows at a time */
inter:
	for (uint32_t i0 = 0; i0 < ni; i0 += KRNL_F32_PER_BEAT) {
#pragma HLS loop_tripcount max=256
		uint32_t nb = ni - i0 < KRNL_F32_PER_BEAT ? ni - i0 : KRNL_F32_PER_BEAT;

		krnl_wrows_dot2(we, (uint64_t)i0 * rbh, up + (uint64_t)i0 * rbh, rbh, nb, dt, h,
				xg[0], XW, n, g, u);
		for (uint32_t i = 0; i < nb; i++) {
#pragma HLS loop_tripcount max=16
			for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
				if (j >= n)
					break;
				act[j][i0 + i] = krnl_silu(g[i][j]) * u[i][j];
			}
		}
	}
	for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
		if (j >= n)
			break;
		for (uint32_t i = 0; i < KRNL_MAX_EPB; i++)
			act[j][ni + i] = 0.0f;
	}
down:
	for (uint32_t o0 = 0; o0 < h; o0 += KRNL_F32_PER_BEAT) {
#pragma HLS loop_tripcount max=512
		uint32_t nb = h - o0 < KRNL_F32_PER_BEAT ? h - o0 : KRNL_F32_PER_BEAT;

		krnl_wrows_dot(we, down + (uint64_t)o0 * rbi, rbi, nb, dt, ni, act[0], AW, n, d);
		for (uint32_t o = 0; o < nb; o++) {
#pragma HLS loop_tripcount max=16
			for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
				if (j >= n)
					break;
				yb[rws[j]][o0 + o] += scale[j] * d[o][j];
			}
		}
	}
}

void krnl_expert_ffn(const krnl_word *x, const krnl_word *w, const krnl_word *count,
		     const krnl_word *list, const krnl_word *listw, const krnl_word *sw,
		     const krnl_word *sgate, krnl_word *y, uint32_t rows, uint32_t h,
		     uint32_t ni, uint32_t ne, uint32_t si, uint32_t dt, uint32_t sdt)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=count bundle=gmem2
#pragma HLS INTERFACE m_axi port=list bundle=gmem3
#pragma HLS INTERFACE m_axi port=listw bundle=gmem4
#pragma HLS INTERFACE m_axi port=sw bundle=gmem5 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=sgate bundle=gmem6
#pragma HLS INTERFACE m_axi port=y bundle=gmem7
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=h
#pragma HLS INTERFACE s_axilite port=ni
#pragma HLS INTERFACE s_axilite port=ne
#pragma HLS INTERFACE s_axilite port=si
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=sdt
#pragma HLS INTERFACE s_axilite port=return
	KRNL_LOCAL int32_t cnt[KRNL_MAX_EXPERTS];
	int32_t rws[KRNL_MAX_BATCH];
	float scale[KRNL_MAX_BATCH], sg[KRNL_MAX_HIDDEN];
	uint64_t eb = krnl_expert_bytes(dt, h, ni) / KRNL_BEAT_BYTES;

load:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		krnl_rd_f32(xb[r], x, (uint64_t)r * h, h);
		for (uint32_t c = 0; c < KRNL_MAX_EPB; c++)
			xb[r][h + c] = 0.0f;
		krnl_rd_f32(yb[r], y, (uint64_t)r * h, h);
	}
	krnl_rd_i32(cnt, count, 0, ne);
expert:
	for (uint32_t e = 0; e < ne; e++) {
#pragma HLS loop_tripcount max=1024
		uint32_t n = (uint32_t)cnt[e];

		if (n == 0)
			continue;	/* not selected: its weights are never fetched */
		krnl_rd_i32(rws, list, (uint64_t)e * KRNL_MAX_BATCH, n);
		krnl_rd_f32(scale, listw, (uint64_t)e * KRNL_MAX_BATCH, n);
		swiglu(w + e * eb, h, ni, dt, rws, scale, n);
	}
	if (si) {
		krnl_rd_f32(sg, sgate, 0, h);
shared_gate:
		for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
			float s = krnl_dot_f32(sg, xb[r], h);
			rws[r] = (int32_t)r;
			scale[r] = krnl_sigmoid(s);
		}
		swiglu(sw, h, si, sdt, rws, scale, rows);
	}
store:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		krnl_wr_f32(y, (uint64_t)r * h, yb[r], h);
	}
}
