#ifndef KRNL_DELTANET_STEP_H
#define KRNL_DELTANET_STEP_H
#include <stdint.h>
#include "krnl_mem.h"
/* One token of the gated delta rule for every value head of every row.
 *   qkv row r (at element r*xstride): [q (nk*dk) | k (nk*dk) | v (nv*dv)], after conv
 *   ba  row r (at element r*2*nv): [b (nv) | a (nv)];  a_log, dt_bias: [nv] f32
 *   state of handle b at element b*nv*dk*dv, per head [dk][dv] f32 (krnl_state.h);
 *   blocks: [2][rows] int32 handles < nblk: row r reads the state of blocks[r]
 *   and writes it to blocks[rows + r] (the same handle, or a spare for a
 *   speculative row whose input state must survive its rejection)
 *   out row r (at element r*nv*dv): [nv*dv]
 * Value head j reads key head j / (nv/nk); dk, dv <= 256 and
 * 2*nk*dk + nv*dv <= KRNL_MAX_CHAN.  Per head:
 *   q,k L2-normalised (eps 1e-6 inside the sqrt), q /= sqrt(dk)
 *   beta = sigmoid(b_j), g = -exp(A_log_j) * softplus(a_j + dt_bias_j)
 *   S <- exp(g) S;  u = beta (v - S^T k);  S <- S + k u^T;  o = S^T q
 * ba, a_log and dt_bias are read once; each qkv row once; each head's state
 * tile is read once, updated on chip and written once; each out row is
 * written once. */
void krnl_deltanet_step(const krnl_word *qkv, const krnl_word *ba, const krnl_word *a_log,
			const krnl_word *dt_bias, krnl_word *state, const krnl_word *blocks,
			krnl_word *out, uint32_t rows, uint32_t nk, uint32_t nv,
			uint32_t dk, uint32_t dv, uint32_t xstride, uint32_t nblk);
#endif
