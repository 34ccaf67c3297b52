#ifndef KRNL_DELTANET_STEP_H
#define KRNL_DELTANET_STEP_H
#include <stdint.h>
/* One token of the gated delta rule for every value head of every row.
 *   qkv row r (at qkv + r*xstride): [q (nk*dk) | k (nk*dk) | v (nv*dv)], after conv
 *   ba  row r: [b (nv) | a (nv)]
 *   state of row r at state + slots[r]*nv*dk*dv, per head [dk][dv]
 *   out row r: [nv*dv]
 * Value head j reads key head j / (nv/nk); dk, dv <= 256.  Per head:
 *   q,k L2-normalised (eps 1e-6 inside the sqrt), q /= sqrt(dk)
 *   beta = sigmoid(b_j), g = -exp(A_log_j) * softplus(a_j + dt_bias_j)
 *   S <- exp(g) S;  u = beta (v - S^T k);  S <- S + k u^T;  o = S^T q */
void krnl_deltanet_step(const float *qkv, const float *ba, const float *a_log,
			const float *dt_bias, float *state, const int32_t *slots,
			float *out, uint32_t rows, uint32_t nk, uint32_t nv,
			uint32_t dk, uint32_t dv, uint32_t xstride);
#endif
