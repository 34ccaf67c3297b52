#ifndef KRNL_GEMV_H
#define KRNL_GEMV_H
#include <stdint.h>
#include "krnl_mem.h"
/* Batched GEMV, W [out][in] in format dt (row layout of krnl_types.h), f32
 * accumulate:
 *   y[r][o] (+)= sum_i W[o][i] * x[r][i]      for r < rows
 * x row r at element r*xstride, y row r at element r*ystride; acc != 0 adds
 * into y (residual connections).  Each weight row is read once for the whole
 * batch; y is written a beat (16 outputs) at a time. */
void krnl_gemv(const krnl_word *x, const krnl_word *w, krnl_word *y, uint32_t rows,
	       uint32_t in, uint32_t out, uint32_t xstride, uint32_t ystride,
	       uint32_t dt, uint32_t acc);
#endif
