#ifndef KRNL_EMBED_GATHER_H
#define KRNL_EMBED_GATHER_H
#include <stdint.h>
/* out[r][:] = table[ids[r]][:] as f32.  table: [vocab][dim] in format dt. */
void krnl_embed_gather(const int32_t *ids, const uint16_t *table, float *out,
		       uint32_t rows, uint32_t dim, uint32_t dt);
#endif
