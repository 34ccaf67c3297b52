#ifndef KRNL_CONV1D_STEP_H
#define KRNL_CONV1D_STEP_H
#include <stdint.h>
#include "krnl_mem.h"
/* One token of the causal depthwise conv of Gated DeltaNet, in place:
 *   x[r][c] <- silu(sum_j w[c][j] * win[j]),  win = (state[c][0..k-2], x[r][c])
 * then state[c] keeps the last k-1 inputs.  w: [ch][k] f32; blocks: [2][rows]
 * int32 state handles (< nblk): row r reads the state of handle blocks[r] and
 * writes it to handle blocks[rows + r] (the same one, or a spare where a
 * speculative row must not overwrite the state it may be rolled back to);
 * a handle's state at element b * ch*(k-1), laid out [ch][k-1] (oldest
 * first; krnl_state.h);
 * x row r at element r*xstride.  2 <= k <= KRNL_MAX_CONV_K.
 * Channels go in chunks: the taps of a chunk are read once for all rows, and
 * per row the chunk of x and of the state are read once and written once. */
void krnl_conv1d_step(krnl_word *x, const krnl_word *w, krnl_word *state,
		      const krnl_word *blocks, uint32_t rows, uint32_t ch, uint32_t k,
		      uint32_t xstride, uint32_t nblk);
#endif
