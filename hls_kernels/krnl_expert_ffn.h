#ifndef KRNL_EXPERT_FFN_H
#define KRNL_EXPERT_FFN_H
#include <stdint.h>
/* The MoE block of one layer for a batch, added into y (the residual stream):
 *   y[r] += sum_{e: r in list[e]} listw[e][.] * down_e(silu(gate_e x[r]) * up_e x[r])
 *         + sigmoid(sgate . x[r]) * down_s(silu(gate_s x[r]) * up_s x[r])
 * w: the layer's experts back to back, expert e at element e*3*ni*h, each
 *   [gate (ni x h) | up (ni x h) | down (h x ni)] in format dt.
 * sw: shared expert in the same form with width si (si = 0: none);
 * sgate: shared_expert_gate [h] (f32).  count/list/listw from krnl_moe_router.
 * Experts run in ascending order and each selected expert's weights are read
 * once, whatever number of rows chose it. */
void krnl_expert_ffn(const float *x, const uint16_t *w, const uint32_t *count,
		     const int32_t *list, const float *listw, const uint16_t *sw,
		     const float *sgate, float *y, uint32_t rows, uint32_t h,
		     uint32_t ni, uint32_t ne, uint32_t si, uint32_t dt);
#endif
