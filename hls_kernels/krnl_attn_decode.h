#ifndef KRNL_ATTN_DECODE_H
#define KRNL_ATTN_DECODE_H
#include <stdint.h>
/* Gated full attention for one new token per row.
 *   qg row r: [query (nh*hd) | gate (nh*hd)] (q_proj rows regrouped at load)
 *   k, v row r: [nkv*hd];  qnw, knw: zero-centred RMSNorm weights [hd]
 *   kc, vc: cache of row r at + slots[r]*nkv*maxctx*hd, laid out [nkv][maxctx][hd]
 *   pos[r]: position of the token; it is written to the cache, then attends 0..pos
 *   out row r: [nh*hd] = softmax(q k^T / sqrt(hd)) v * sigmoid(gate)
 * RoPE (rotate-half) on the first rd dims with base theta; query head h reads
 * kv head h / (nh/nkv), at most 16 query heads per kv head. */
void krnl_attn_decode(const float *qg, const float *k, const float *v,
		      const float *qnw, const float *knw, float *kc, float *vc,
		      const int32_t *slots, const int32_t *pos, float *out,
		      uint32_t rows, uint32_t nh, uint32_t nkv, uint32_t hd,
		      uint32_t rd, float theta, float eps, uint32_t maxctx);
#endif
