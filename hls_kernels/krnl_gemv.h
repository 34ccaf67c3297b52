#ifndef KRNL_GEMV_H
#define KRNL_GEMV_H
#include <stdint.h>
/* Batched GEMV, W [out][in] in format dt, f32 accumulate:
 *   y[r][o] (+)= sum_i W[o][i] * x[r][i]      for r < rows
 * x row r at x + r*xstride, y row r at y + r*ystride; acc != 0 adds into y
 * (residual connections).  Each weight row is read once for the whole batch. */
void krnl_gemv(const float *x, const uint16_t *w, float *y, uint32_t rows,
	       uint32_t in, uint32_t out, uint32_t xstride, uint32_t ystride,
	       uint32_t dt, uint32_t acc);
#endif
