/* krnl_embed_gather.c — token embedding lookup for a batch. */
#include "krnl_common.h"
#include "krnl_embed_gather.h"

void krnl_embed_gather(const krnl_word *ids, const krnl_word *table, krnl_word *out,
		       uint32_t rows, uint32_t dim, uint32_t dt)
{
#pragma HLS INTERFACE m_axi port=ids bundle=gmem0
#pragma HLS INTERFACE m_axi port=table bundle=gmem1
#pragma HLS INTERFACE m_axi port=out bundle=gmem2
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=dim
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=return
	int32_t id[KRNL_MAX_BATCH];
	float row[KRNL_MAX_HIDDEN + KRNL_MAX_EPB];
	uint32_t rb = krnl_row_beats(dt, dim);

	krnl_rd_i32(id, ids, 0, rows);
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		krnl_wrow_load(table, (uint64_t)(uint32_t)id[r] * rb, dt, dim, row);
		krnl_wr_f32(out, (uint64_t)r * dim, row, dim);
	}
}
