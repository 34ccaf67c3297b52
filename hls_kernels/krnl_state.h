/* krnl_state.h — how sequence state lies in HBM, stated once for the kernels,
 * the firmware's placement and the state pool.
 *
 * A sequence (or a snapshot of one) is a state handle b, 0 <= b < nblk:
 *   - per Gated DeltaNet layer, a conv block and a delta-rule block:
 *       conv  at element b * KRNL_CONV_BLOCK(ch, k)   laid out [ch][k-1]
 *       delta at element b * KRNL_DN_BLOCK(nv, dk, dv) laid out [nv][dk][dv]
 *   - one row of the block table, shared by every attention layer:
 *       page of position t = bt[b * tabw + t / KRNL_KV_PAGE]
 * Each attention layer has a K pool and a V pool of npages pages; page p holds
 * KRNL_KV_PAGE positions of every kv head:
 *       element ((p * nkv + g) * KRNL_KV_PAGE + t % KRNL_KV_PAGE) * hd of head g
 * A page id names the same page in every attention layer, so one table serves
 * them all.  Conv and delta blocks are f32; KV pages are f32 or bf16 (dt_kv of
 * the model config; elements counted in that type, head_dim even for bf16).
 */
#ifndef KRNL_STATE_H
#define KRNL_STATE_H

#include <stdint.h>

#define KRNL_KV_PAGE 64u	/* positions per KV page */

static inline uint64_t krnl_conv_block(uint32_t ch, uint32_t k)
{
	return (uint64_t)ch * (k - 1);
}

static inline uint64_t krnl_dn_block(uint32_t nv, uint32_t dk, uint32_t dv)
{
	return (uint64_t)nv * dk * dv;
}

/* Bytes of one KV element in format fmt (KRNL_FMT_F32 or KRNL_FMT_BF16). */
static inline uint32_t krnl_kv_es(uint32_t fmt)
{
	return fmt == 1u /* KRNL_FMT_BF16 */ ? 2u : 4u;
}

/* Elements of one page of one kv pool (K or V of one layer). */
static inline uint64_t krnl_kv_page(uint32_t nkv, uint32_t hd)
{
	return (uint64_t)nkv * KRNL_KV_PAGE * hd;
}

/* Element of position t (within its page pg) of kv head g. */
static inline uint64_t krnl_kv_at(uint32_t pg, uint32_t g, uint32_t t, uint32_t nkv, uint32_t hd)
{
	return (((uint64_t)pg * nkv + g) * KRNL_KV_PAGE + t % KRNL_KV_PAGE) * hd;
}

/* Split-K of attention (krnl_attn_decode): positions go in blocks of
 * KRNL_KV_SPLIT pages, each folded into a partial of its own and merged into
 * the total in block order.  A partial of one (row, kv head, block) is
 * [max (group) | sum (group) | acc (group x hd)] f32, padded to whole beats. */
#define KRNL_KV_SPLIT 16u
#define KRNL_ATTN_PART_MAX (2u * 16u + 16u * 512u)	/* group <= 16, hd <= 512 */

enum { KRNL_ATTN_WHOLE = 0, KRNL_ATTN_PART = 1, KRNL_ATTN_MERGE = 2 };

/* The split register: mode, then the block range [lo, hi) (15 bits each). */
static inline uint32_t krnl_attn_split(uint32_t mode, uint32_t lo, uint32_t hi)
{
	return (mode & 3u) | (lo & 0x7fffu) << 2 | (hi & 0x7fffu) << 17;
}

/* Split blocks covering npg pages. */
static inline uint32_t krnl_attn_blocks(uint32_t npg)
{
	return (npg + KRNL_KV_SPLIT - 1) / KRNL_KV_SPLIT;
}

/* Floats of one partial, a whole number of beats. */
static inline uint32_t krnl_attn_part_w(uint32_t nh, uint32_t nkv, uint32_t hd)
{
	uint32_t g = nkv ? nh / nkv : 0;

	return (2 * g + g * hd + 15u) / 16u * 16u;
}

/* Block-table entries for ctx positions. */
static inline uint32_t krnl_kv_pages(uint32_t ctx)
{
	return (ctx + KRNL_KV_PAGE - 1) / KRNL_KV_PAGE;
}

#endif
