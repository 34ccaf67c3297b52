#ifndef KRNL_EMBED_GATHER_H
#define KRNL_EMBED_GATHER_H
#include <stdint.h>
#include "krnl_mem.h"
/* out[r][0..dim) = table[ids[r]] widened to f32, for r < rows; the table is
 * [vocab][dim] in format dt (row layout of krnl_types.h). */
void krnl_embed_gather(const krnl_word *ids, const krnl_word *table, krnl_word *out,
		       uint32_t rows, uint32_t dim, uint32_t dt);
#endif
