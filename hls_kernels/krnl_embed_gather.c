/* krnl_embed_gather.c — token embedding lookup for a batch. */
#include "krnl_common.h"
#include "krnl_embed_gather.h"

void krnl_embed_gather(const int32_t *ids, const uint16_t *table, float *out,
		       uint32_t rows, uint32_t dim, uint32_t dt)
{
#pragma HLS INTERFACE m_axi port=ids bundle=gmem0
#pragma HLS INTERFACE m_axi port=table bundle=gmem1
#pragma HLS INTERFACE m_axi port=out bundle=gmem2
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=dim
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=return
row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		uint64_t base = (uint64_t)(uint32_t)ids[r] * dim;
col:
		for (uint32_t i = 0; i < KRNL_MAX_HIDDEN; i++) {
#pragma HLS PIPELINE II=1
			if (i >= dim)
				break;
			out[(uint64_t)r * dim + i] = krnl_wload(table, base + i, dt);
		}
	}
}
