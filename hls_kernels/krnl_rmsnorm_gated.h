#ifndef KRNL_RMSNORM_GATED_H
#define KRNL_RMSNORM_GATED_H
#include <stdint.h>
/* Gated RMSNorm of the linear-attention output, per value head of width dim:
 *   y = x / sqrt(mean(x^2) + eps) * w * silu(z)       (w, not 1 + w)
 * x, y: [rows][heads*dim]; z: row r at z + r*zstride, head h at + h*dim. */
void krnl_rmsnorm_gated(const float *x, const float *z, const float *w, float *y,
			uint32_t rows, uint32_t heads, uint32_t dim,
			uint32_t zstride, float eps);
#endif
