#ifndef KRNL_RMSNORM_GATED_H
#define KRNL_RMSNORM_GATED_H
#include <stdint.h>
#include "krnl_mem.h"
/* Gated RMSNorm of the linear-attention output, per value head of width dim:
 *   y = x / sqrt(mean(x^2) + eps) * w * silu(z)       (w, not 1 + w)
 * x, y: [rows][heads*dim]; z: row r at element r*zstride, head h at + h*dim;
 * w: [dim] f32.  dim <= KRNL_MAX_HEAD_DIM.  Each row of x and z is read in
 * bursts of whole heads, y written likewise; w is read once. */
void krnl_rmsnorm_gated(const krnl_word *x, const krnl_word *z, const krnl_word *w,
			krnl_word *y, uint32_t rows, uint32_t heads, uint32_t dim,
			uint32_t zstride, float eps);
#endif
