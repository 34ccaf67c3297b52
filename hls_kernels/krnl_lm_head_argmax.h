#ifndef KRNL_LM_HEAD_ARGMAX_H
#define KRNL_LM_HEAD_ARGMAX_H
#include <stdint.h>
#include "krnl_mem.h"
/* Final zero-centred RMSNorm, lm_head and greedy pick for a batch.
 *   x: [rows][h] residual stream; nw: model.norm weight [h] (f32);
 *   w: lm_head [v][h] in format dt (row layout of krnl_types.h)
 *   argmax[r] = first index of the largest logit of row r
 *   dst[r] >= 0: also write row r's logits to element dst[r]*ls of logits
 *   (ls >= v: the logits row stride; a compute unit given a slice of the
 *   vocabulary gets w, logits and v of its slice and the full row stride)
 * The vocabulary streams once for the whole batch; logits leave a beat
 * (16 values) at a time. */
void krnl_lm_head_argmax(const krnl_word *x, const krnl_word *nw, const krnl_word *w,
			 krnl_word *logits, const krnl_word *dst, krnl_word *argmax,
			 uint32_t rows, uint32_t h, uint32_t v, float eps, uint32_t dt,
			 uint32_t ls);
#endif
