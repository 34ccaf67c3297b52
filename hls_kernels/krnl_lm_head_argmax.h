#ifndef KRNL_LM_HEAD_ARGMAX_H
#define KRNL_LM_HEAD_ARGMAX_H
#include <stdint.h>
/* Final zero-centred RMSNorm, lm_head and greedy pick for a batch.
 *   x: [rows][h] residual stream; nw: model.norm weight [h]; w: lm_head [v][h]
 *   argmax[r] = first index of the largest logit of row r
 *   dst[r] >= 0: also write row r's logits to logits + dst[r]*v (score path) */
void krnl_lm_head_argmax(const float *x, const float *nw, const uint16_t *w,
			 float *logits, const int32_t *dst, int32_t *argmax,
			 uint32_t rows, uint32_t h, uint32_t v, float eps,
			 uint32_t dt);
#endif
