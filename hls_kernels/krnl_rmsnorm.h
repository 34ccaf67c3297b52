#ifndef KRNL_RMSNORM_H
#define KRNL_RMSNORM_H
#include <stdint.h>
#include "krnl_mem.h"
/* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * (woff + w), per row of width dim
 * (rows at element r*dim of x and y; w: [dim] f32).  woff = 1 gives
 * Qwen3-Next's zero-centred norm, 0 the plain one.  y may be x.
 * w is read once for all rows, each x row once, each y row written once. */
void krnl_rmsnorm(const krnl_word *x, const krnl_word *w, krnl_word *y, uint32_t rows,
		  uint32_t dim, float eps, float woff);
#endif
