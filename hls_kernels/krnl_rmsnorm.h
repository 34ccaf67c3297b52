#ifndef KRNL_RMSNORM_H
#define KRNL_RMSNORM_H
#include <stdint.h>
/* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * (woff + w), per row of width dim.
 * woff = 1 gives Qwen3-Next's zero-centred norm, 0 the plain one.  y may be x. */
void krnl_rmsnorm(const float *x, const float *w, float *y, uint32_t rows,
		  uint32_t dim, float eps, float woff);
#endif
