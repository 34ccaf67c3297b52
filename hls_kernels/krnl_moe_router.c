/* krnl_moe_router.c — softmax, top-k and per-expert grouping.
 * Grouping on the card lets the expert kernel fetch each selected expert once
 * per step however many rows chose it. */
#include "krnl_common.h"
#include "krnl_moe_router.h"

_Static_assert(KRNL_MAX_BATCH * 4 == KRNL_BEAT_BYTES, "a list row is one beat");

void krnl_moe_router(const krnl_word *logits, krnl_word *count, krnl_word *list,
		     krnl_word *listw, uint32_t rows, uint32_t ne, uint32_t topk,
		     uint32_t norm)
{
#pragma HLS INTERFACE m_axi port=logits bundle=gmem0
#pragma HLS INTERFACE m_axi port=count bundle=gmem1
#pragma HLS INTERFACE m_axi port=list bundle=gmem2
#pragma HLS INTERFACE m_axi port=listw bundle=gmem3
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=ne
#pragma HLS INTERFACE s_axilite port=topk
#pragma HLS INTERFACE s_axilite port=norm
#pragma HLS INTERFACE s_axilite port=return
	int32_t cnt[KRNL_MAX_EXPERTS] = { 0 };
	int32_t lst[KRNL_MAX_EXPERTS][KRNL_MAX_BATCH];
	float lw[KRNL_MAX_EXPERTS][KRNL_MAX_BATCH];
#pragma HLS ARRAY_PARTITION variable=lst dim=2 complete
#pragma HLS ARRAY_PARTITION variable=lw dim=2 complete
	float p[KRNL_MAX_EXPERTS];
	float part[KRNL_ACC_LANES];
#pragma HLS ARRAY_PARTITION variable=part complete
	int32_t sel[KRNL_MAX_TOPK];
	float sw[KRNL_MAX_TOPK];

clear:
	for (uint32_t e = 0; e < ne; e++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
		for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
			lst[e][j] = -1;
			lw[e][j] = 0.0f;
		}
	}
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		float mx = -INFINITY, sum = 0.0f;

		krnl_rd_f32(p, logits, (uint64_t)r * ne, ne);
max:
		for (uint32_t e = 0; e < ne; e++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
			mx = p[e] > mx ? p[e] : mx;
		}
		for (uint32_t a = 0; a < KRNL_ACC_LANES; a++)
			part[a] = 0.0f;
exp:
		for (uint32_t e = 0; e < ne; e++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
			p[e] = expf(p[e] - mx);
			part[e % KRNL_ACC_LANES] += p[e];
		}
		for (uint32_t a = 0; a < KRNL_ACC_LANES; a++)
			sum += part[a];
		/* selection by repeated max; strict > keeps the lower index on ties */
		float tot = 0.0f;
pick:
		for (uint32_t j = 0; j < topk; j++) {
#pragma HLS loop_tripcount max=32
			int32_t best = -1;
			float bp = 0.0f;

scan:
			for (uint32_t e = 0; e < ne; e++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
				/* taken ones are -2; a NaN is picked rather than nothing */
				if (p[e] != -2.0f && (best < 0 || p[e] > bp)) {
					bp = p[e];
					best = (int32_t)e;
				}
			}
			sel[j] = best;
			sw[j] = bp / sum;
			tot += sw[j];
			p[best] = -2.0f;	/* taken */
		}
group:
		for (uint32_t j = 0; j < topk; j++) {
#pragma HLS loop_tripcount max=32
			uint32_t e = (uint32_t)sel[j];
			int32_t c = cnt[e];

			lst[e][c] = (int32_t)r;
			lw[e][c] = norm ? sw[j] / tot : sw[j];
			cnt[e] = c + 1;
		}
	}
	krnl_wr_i32(count, 0, cnt, ne);
store:
	for (uint32_t e = 0; e < ne; e++) {
#pragma HLS loop_tripcount max=1024
		if (cnt[e] == 0)
			continue;
		krnl_wr_i32(list, (uint64_t)e * KRNL_MAX_BATCH, lst[e], KRNL_MAX_BATCH);
		krnl_wr_f32(listw, (uint64_t)e * KRNL_MAX_BATCH, lw[e], KRNL_MAX_BATCH);
	}
}
