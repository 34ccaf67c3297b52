#ifndef KRNL_EXPERT_FFN_H
#define KRNL_EXPERT_FFN_H
#include <stdint.h>
#include "krnl_mem.h"
/* The MoE block of one layer for a batch, added into y (the residual stream):
 *   y[r] += sum_{e: r in list[e]} listw[e][.] * down_e(silu(gate_e x[r]) * up_e x[r])
 *         + sigmoid(sgate . x[r]) * down_s(silu(gate_s x[r]) * up_s x[r])
 * w: the layer's experts back to back, expert e at byte
 *   e * krnl_expert_bytes(dt, h, ni), each [gate (ni x h) | up (ni x h) |
 *   down (h x ni)] in format dt (row layout of krnl_types.h).
 * sw: the shared expert in the same form with width si in format sdt
 *   (si = 0: none); sgate: shared_expert_gate [h] (f32).
 * count/list/listw from krnl_moe_router.  Experts run in ascending order and
 * each selected expert's weights are read once, whatever number of rows
 * chose it; y is read once and written once. */
void krnl_expert_ffn(const krnl_word *x, const krnl_word *w, const krnl_word *count,
		     const krnl_word *list, const krnl_word *listw, const krnl_word *sw,
		     const krnl_word *sgate, krnl_word *y, uint32_t rows, uint32_t h,
		     uint32_t ni, uint32_t ne, uint32_t si, uint32_t dt, uint32_t sdt);
#endif
