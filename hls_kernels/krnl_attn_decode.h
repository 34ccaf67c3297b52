#ifndef KRNL_ATTN_DECODE_H
#define KRNL_ATTN_DECODE_H
#include <stdint.h>
#include "krnl_mem.h"
/* Gated full attention for one new token per row.
 *   qg row r (at element r*2*nh*hd): [query (nh*hd) | gate (nh*hd)]
 *     (q_proj rows regrouped at load)
 *   k, v row r (at element r*nkv*hd): [nkv*hd];  qnw, knw: zero-centred RMSNorm weights [hd]
 *   kc, vc: this layer's K and V page pools of npages pages (krnl_state.h), of
 *     f32 or, with kvdt = KRNL_FMT_BF16, bf16 elements (hd even); a bf16 entry
 *     is rounded as it is written and the new token attends to it rounded
 *   blocks, pos: [rows] int32; blocks[r] is the row's state handle (< nblk), whose
 *     block-table row bt[blocks[r]*tabw ..] names the page of every position;
 *     pos[r] is the position of the token: it is written to its page, then
 *     attends 0..pos
 *   rope row r (at element r*rd): cos[0..rd/2) then sin[0..rd/2) of the angles
 *     pos[r] * theta^(-2i/rd) (computed by the firmware, in double)
 *   out row r (at element r*nh*hd): [nh*hd] = softmax(q k^T / sqrt(hd)) v * sigmoid(gate)
 * RoPE (rotate-half) on the first rd dims (rd even, rd <= hd); query head h
 * reads kv head h / (nh/nkv), at most 16 query heads per kv head.
 * Each kv head's cache prefix 0..pos-1 is read once for its whole query group
 * (the new entry is used from chip, never read back); the new k and v rows are
 * written once each; the block table is read once per page.
 * split = krnl_attn_split(mode, b_lo, b_hi) (krnl_state.h):
 * KRNL_ATTN_WHOLE does all of it (part unused).
 * KRNL_ATTN_PART does, for every row, only its split blocks [b_lo, b_hi) and
 * writes their partials to part (row r, kv head g, block b at element
 * ((r*nkv + g) * krnl_attn_blocks(tabw) + b) * krnl_attn_part_w()), the new
 * entry written by the call that has its block, out untouched; the rows must
 * be of different sequences (no row reads what another writes).
 * KRNL_ATTN_MERGE merges each row's partials in block order into out (reads
 * part, blocks, pos and the gates in qg only).  WHOLE and PART + MERGE give the
 * same bits. */
void krnl_attn_decode(const krnl_word *qg, const krnl_word *k, const krnl_word *v,
		      const krnl_word *qnw, const krnl_word *knw, krnl_word *kc,
		      krnl_word *vc, const krnl_word *blocks, const krnl_word *pos,
		      const krnl_word *rope, const krnl_word *bt, krnl_word *out,
		      krnl_word *part, uint32_t rows, uint32_t nh, uint32_t nkv, uint32_t hd,
		      uint32_t rd, float eps, uint32_t tabw, uint32_t npages, uint32_t nblk,
		      uint32_t kvdt, uint32_t split);
#endif
