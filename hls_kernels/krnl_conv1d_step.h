#ifndef KRNL_CONV1D_STEP_H
#define KRNL_CONV1D_STEP_H
#include <stdint.h>
/* One token of the causal depthwise conv of Gated DeltaNet, in place:
 *   x[r][c] <- silu(sum_j w[c][j] * win[j]),  win = (state[c][0..k-2], x[r][c])
 * then state[c] keeps the last k-1 inputs.  w: [ch][k]; state of row r at
 * state + slots[r] * ch*(k-1), laid out [ch][k-1] (oldest first); x row r at
 * x + r*xstride. */
void krnl_conv1d_step(float *x, const float *w, float *state, const int32_t *slots,
		      uint32_t rows, uint32_t ch, uint32_t k, uint32_t xstride);
#endif
