/* krnl_moe_router.c — softmax, top-k and per-expert grouping.
 * Grouping on the card lets the expert kernel fetch each selected expert once
 * per step however many rows chose it. */
#include "krnl_common.h"
#include "krnl_moe_router.h"

void krnl_moe_router(const float *logits, uint32_t *count, int32_t *list,
		     float *listw, uint32_t rows, uint32_t ne, uint32_t topk,
		     uint32_t norm)
{
#pragma HLS INTERFACE m_axi port=logits bundle=gmem0
#pragma HLS INTERFACE m_axi port=count bundle=gmem1
#pragma HLS INTERFACE m_axi port=list bundle=gmem1
#pragma HLS INTERFACE m_axi port=listw bundle=gmem1
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=ne
#pragma HLS INTERFACE s_axilite port=topk
#pragma HLS INTERFACE s_axilite port=norm
#pragma HLS INTERFACE s_axilite port=return
	float p[KRNL_MAX_EXPERTS];
	int32_t sel[KRNL_MAX_TOPK];
	float sw[KRNL_MAX_TOPK];

clear:
	for (uint32_t e = 0; e < KRNL_MAX_EXPERTS; e++) {
		if (e >= ne)
			break;
		count[e] = 0;
	}
row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		const float *lr = logits + (uint64_t)r * ne;
		float mx = -INFINITY, sum = 0.0f;

		for (uint32_t e = 0; e < KRNL_MAX_EXPERTS; e++) {
			if (e >= ne)
				break;
			mx = lr[e] > mx ? lr[e] : mx;
		}
		for (uint32_t e = 0; e < KRNL_MAX_EXPERTS; e++) {
			if (e >= ne)
				break;
			p[e] = expf(lr[e] - mx);
			sum += p[e];
		}
		/* selection by repeated max; strict > keeps the lower index on ties */
		float tot = 0.0f;
pick:
		for (uint32_t j = 0; j < KRNL_MAX_TOPK; j++) {
			if (j >= topk)
				break;
			int32_t best = -1;
			for (uint32_t e = 0; e < KRNL_MAX_EXPERTS; e++) {
				if (e >= ne)
					break;
				if (p[e] >= 0.0f && (best < 0 || p[e] > p[best]))
					best = (int32_t)e;
			}
			sel[j] = best;
			sw[j] = p[best] / sum;
			tot += sw[j];
			p[best] = -1.0f;	/* taken */
		}
group:
		for (uint32_t j = 0; j < KRNL_MAX_TOPK; j++) {
			if (j >= topk)
				break;
			uint32_t e = (uint32_t)sel[j];
			uint32_t c = count[e];
			list[(uint64_t)e * KRNL_MAX_BATCH + c] = (int32_t)r;
			listw[(uint64_t)e * KRNL_MAX_BATCH + c] = norm ? sw[j] / tot : sw[j];
			count[e] = c + 1;
		}
	}
}
