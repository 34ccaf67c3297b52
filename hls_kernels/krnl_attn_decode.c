/* krnl_attn_decode.c — gated attention decode over the paged KV cache.
 * One pass over each kv head's pages with a running max (online softmax) for
 * its whole query group: a page of keys and values comes on chip in one burst
 * each and is folded in with one max per page, so no score buffer of context
 * length is needed on chip and no cache row is read twice.
 *
 * Split-K: the positions go in blocks of KRNL_KV_SPLIT pages, each folded from
 * scratch into a block partial (max, sum, accumulators) that is then merged
 * into the row's total in block order.  Run whole, the kernel does exactly
 * that; run split, calls compute disjoint block ranges into `part` and a last
 * call merges them in the same order, so the result is the same bits however
 * the blocks were spread over compute units. */
#include "krnl_common.h"
#include "krnl_attn_decode.h"
#include "krnl_state.h"

#define ATT_MAX_GROUP 16	/* query heads per kv head */


/* x = rope(rmsnorm(x) * (1 + w)), in place; w holds 1 + weight already. */
static void norm_rope(float *x, const float *w1, uint32_t hd, uint32_t rd, float eps,
		      const float *cs, const float *sn)
{
	float t[KRNL_MAX_HEAD_DIM];
	float inv = 1.0f / sqrtf(krnl_dot_f32(x, x, hd) / (float)hd + eps);
	uint32_t half = rd / 2;

norm:
	for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
		t[i] = x[i] * inv * w1[i];
	}
rope:
	for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
		if (i < half)
			x[i] = t[i] * cs[i] - t[i + half] * sn[i];
		else if (i < rd)
			x[i] = t[i] * cs[i - half] + t[i - half] * sn[i - half];
		else
			x[i] = t[i];
	}
}

/* One page of cached keys and values on chip (URAM under HLS). */
KRNL_LOCAL float kp[KRNL_KV_PAGE * KRNL_MAX_HEAD_DIM], vp[KRNL_KV_PAGE * KRNL_MAX_HEAD_DIM];

/* Fold positions [0, n) of a segment (keys kb, values vb: rows of hd) into the
 * group's running max m, sum l and accumulators acc (online softmax).  One max
 * per segment and head: the old sum and acc are rescaled once per page, and
 * each score is exponentiated once. */
static void fold(const float *q, const float *kb, const float *vb, uint32_t n,
		 uint32_t group, uint32_t hd, float scale, float *m, float *l, float *acc)
{
	float s[KRNL_KV_PAGE];

fold_head:
	for (uint32_t j = 0; j < group; j++) {
#pragma HLS loop_tripcount max=16
		const float *qj = q + j * hd;
		float *aj = acc + j * hd;
		float mx = m[j], sum, corr;

score:
		for (uint32_t u = 0; u < n; u++) {
#pragma HLS loop_tripcount max=64
			s[u] = krnl_dot_f32(qj, kb + u * hd, hd) * scale;
			mx = s[u] > mx ? s[u] : mx;
		}
		corr = expf(m[j] - mx);
weight:
		for (uint32_t u = 0; u < n; u++) {
#pragma HLS loop_tripcount max=64
#pragma HLS PIPELINE II=1
			s[u] = expf(s[u] - mx);
		}
		sum = krnl_sum_f32(s, n);
		l[j] = l[j] * corr + sum;
		m[j] = mx;
rescale:
		for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
			aj[i] *= corr;
		}
mix:
		for (uint32_t u = 0; u < n; u++) {
#pragma HLS loop_tripcount max=64
			const float *vu = vb + u * hd;
			float e = s[u];
mix_lane:
			for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
				aj[i] += e * vu[i];
			}
		}
	}
}

/* The page of position t in the block-table row at element tab. */
static uint32_t page_of(const krnl_word *bt, uint64_t tab, uint32_t t, uint32_t npages)
{
	uint64_t at = tab + t / KRNL_KV_PAGE;
	krnl_word w = krnl_rd(bt, at / KRNL_F32_PER_BEAT);
	uint32_t pg = (uint32_t)krnl_lane_i32(&w, (uint32_t)(at % KRNL_F32_PER_BEAT));

	return pg < npages ? pg : 0;
}

/* An empty softmax state: max -inf, sum 0, accumulators 0. */
static void empty(float *m, float *l, float *a, uint32_t group, uint32_t gw)
{
	for (uint32_t j = 0; j < group; j++) {
#pragma HLS loop_tripcount max=16
		m[j] = -INFINITY;
		l[j] = 0.0f;
	}
	for (uint32_t i = 0; i < gw; i++) {
#pragma HLS loop_tripcount max=8192
#pragma HLS PIPELINE II=1
		a[i] = 0.0f;
	}
}

/* Merge a block partial (mb, lb, ab) into the running total (m, l, a) of the
 * group's heads, in block order. */
static void merge(float *m, float *l, float *a, const float *mb, const float *lb,
		  const float *ab, uint32_t group, uint32_t hd)
{
merge_head:
	for (uint32_t j = 0; j < group; j++) {
#pragma HLS loop_tripcount max=16
		float mn = mb[j] > m[j] ? mb[j] : m[j];
		float ca = expf(m[j] - mn), cb = expf(mb[j] - mn);
		float *aj = a + j * hd;
		const float *bj = ab + j * hd;

		l[j] = l[j] * ca + lb[j] * cb;
		m[j] = mn;
merge_lane:
		for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
			aj[i] = aj[i] * ca + bj[i] * cb;
		}
	}
}

/* out = a / l * sigmoid(gate), the group's heads in place. */
static void gate(float *a, const float *l, const float *gt, uint32_t group, uint32_t hd)
{
	for (uint32_t j = 0; j < group; j++) {
#pragma HLS loop_tripcount max=16
		float il = 1.0f / l[j];
		float *aj = a + j * hd;
		const float *gj = gt + j * hd;
gate:
		for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
			aj[i] = aj[i] * il * krnl_sigmoid(gj[i]);
		}
	}
}

void krnl_attn_decode(const krnl_word *qg, const krnl_word *k, const krnl_word *v,
		      const krnl_word *qnw, const krnl_word *knw, krnl_word *kc,
		      krnl_word *vc, const krnl_word *blocks, const krnl_word *pos,
		      const krnl_word *rope, const krnl_word *bt, krnl_word *out,
		      krnl_word *part, uint32_t rows, uint32_t nh, uint32_t nkv, uint32_t hd,
		      uint32_t rd, float eps, uint32_t tabw, uint32_t npages, uint32_t nblk,
		      uint32_t kvdt, uint32_t split)
{
#pragma HLS INTERFACE m_axi port=qg bundle=gmem0
#pragma HLS INTERFACE m_axi port=k bundle=gmem1
#pragma HLS INTERFACE m_axi port=v bundle=gmem2
#pragma HLS INTERFACE m_axi port=qnw bundle=gmem3
#pragma HLS INTERFACE m_axi port=knw bundle=gmem4
#pragma HLS INTERFACE m_axi port=kc bundle=gmem5
#pragma HLS INTERFACE m_axi port=vc bundle=gmem6
#pragma HLS INTERFACE m_axi port=blocks bundle=gmem7
#pragma HLS INTERFACE m_axi port=pos bundle=gmem8
#pragma HLS INTERFACE m_axi port=rope bundle=gmem9
#pragma HLS INTERFACE m_axi port=bt bundle=gmem11
#pragma HLS INTERFACE m_axi port=out bundle=gmem10
#pragma HLS INTERFACE m_axi port=part bundle=gmem12
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=nh
#pragma HLS INTERFACE s_axilite port=nkv
#pragma HLS INTERFACE s_axilite port=hd
#pragma HLS INTERFACE s_axilite port=rd
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=tabw
#pragma HLS INTERFACE s_axilite port=npages
#pragma HLS INTERFACE s_axilite port=nblk
#pragma HLS INTERFACE s_axilite port=kvdt
#pragma HLS INTERFACE s_axilite port=split
#pragma HLS INTERFACE s_axilite port=return
	float q[ATT_MAX_GROUP * KRNL_MAX_HEAD_DIM];	/* the group's queries */
	float acc[ATT_MAX_GROUP * KRNL_MAX_HEAD_DIM];	/* the row's total, then its outputs */
	float gt[ATT_MAX_GROUP * KRNL_MAX_HEAD_DIM];	/* the group's gates */
	float qw1[KRNL_MAX_HEAD_DIM], kw1[KRNL_MAX_HEAD_DIM];
	float kn[KRNL_MAX_HEAD_DIM], vn[KRNL_MAX_HEAD_DIM];	/* the new entry */
	float rb[KRNL_MAX_HEAD_DIM];				/* cos | sin */
	float m[ATT_MAX_GROUP], l[ATT_MAX_GROUP];		/* the row's total */
	float bm[KRNL_ATTN_PART_MAX];	/* a block partial: max[group] | sum[group] | acc */
	int32_t sl[KRNL_MAX_BATCH], ps[KRNL_MAX_BATCH];
	uint32_t group = nh / nkv, gw = group * hd, pw = krnl_attn_part_w(nh, nkv, hd);
	uint32_t nbw = krnl_attn_blocks(tabw);
	uint32_t mode = split & 3u, b_lo = split >> 2 & 0x7fffu, b_hi = split >> 17;
	float scale = 1.0f / sqrtf((float)hd);
	float *mb = bm, *lb = bm + group, *ab = bm + 2 * group;

	krnl_rd_i32(sl, blocks, 0, rows);
	krnl_rd_i32(ps, pos, 0, rows);
	if (mode != KRNL_ATTN_MERGE) {
		krnl_rd_f32(qw1, qnw, 0, hd);
		krnl_rd_f32(kw1, knw, 0, hd);
		for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
			qw1[i] += 1.0f;
			kw1[i] += 1.0f;
		}
	}
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		uint32_t p = (uint32_t)ps[r];
		/* a handle or page the pool does not have falls back to entry 0: the
		 * firmware owns the tables, this only keeps the ports in bounds */
		uint32_t b = (uint32_t)sl[r] < nblk ? (uint32_t)sl[r] : 0;
		uint64_t tab = (uint64_t)b * tabw;
		uint64_t qrow = (uint64_t)r * 2 * nh * hd;
		uint32_t nb = krnl_attn_blocks(p / KRNL_KV_PAGE + 1);	/* p in block nb-1 */
		uint32_t lo = mode == KRNL_ATTN_PART ? b_lo : 0;
		uint32_t hi = mode == KRNL_ATTN_PART && b_hi < nb ? b_hi : nb;
		int mine = nb - 1 >= lo && nb - 1 < hi;	/* its block has the new entry */
		const float *cs = rb, *sn = rb + rd / 2;
		uint32_t pnew = 0;

		if (mode != KRNL_ATTN_MERGE) {
			krnl_rd_f32(rb, rope, (uint64_t)r * rd, rd);
			if (mine)
				pnew = page_of(bt, tab, p, npages);
		}
kv_head:
		for (uint32_t g = 0; g < nkv; g++) {
#pragma HLS loop_tripcount max=128
			uint64_t po = ((uint64_t)r * nkv + g) * nbw * pw;	/* its partials */

			empty(m, l, acc, group, gw);
			if (mode != KRNL_ATTN_PART)	/* the group's gates */
				krnl_rd_f32(gt, qg, qrow + (uint64_t)nh * hd + (uint64_t)g * gw, gw);
			if (mode == KRNL_ATTN_MERGE) {
merge_block:
				for (uint32_t bi = 0; bi < nb; bi++) {
#pragma HLS loop_tripcount max=1024
					krnl_rd_f32(bm, part, po + (uint64_t)bi * pw, 2 * group + gw);
					merge(m, l, acc, mb, lb, ab, group, hd);
				}
				gate(acc, l, gt, group, hd);
				krnl_wr_f32(out, ((uint64_t)r * nh + (uint64_t)g * group) * hd, acc, gw);
				continue;
			}
			if (mine) {
				/* the new token's key and value: into the cache, and kept */
				uint64_t at = krnl_kv_at(pnew, g, p, nkv, hd);
				uint64_t kvo = ((uint64_t)r * nkv + g) * hd;

				krnl_rd_f32(kn, k, kvo, hd);
				krnl_rd_f32(vn, v, kvo, hd);
				norm_rope(kn, kw1, hd, rd, eps, cs, sn);
				if (kvdt == KRNL_FMT_BF16) {
					/* stored rounded, and used as stored, as later tokens will */
					krnl_wr_bf16(kc, at, kn, hd);
					krnl_wr_bf16(vc, at, vn, hd);
					for (uint32_t i = 0; i < hd; i++) {
#pragma HLS loop_tripcount max=512
#pragma HLS PIPELINE II=1
						kn[i] = krnl_bf16_f32(krnl_f32_bf16(kn[i]));
						vn[i] = krnl_bf16_f32(krnl_f32_bf16(vn[i]));
					}
				} else {
					krnl_wr_f32(kc, at, kn, hd);
					krnl_wr_f32(vc, at, vn, hd);
				}
			}
			/* the group's queries */
			krnl_rd_f32(q, qg, qrow + (uint64_t)g * gw, gw);
			for (uint32_t j = 0; j < group; j++) {
#pragma HLS loop_tripcount max=16
				norm_rope(q + j * hd, qw1, hd, rd, eps, cs, sn);
			}
block:
			for (uint32_t bi = lo; bi < hi; bi++) {
#pragma HLS loop_tripcount max=1024
				uint32_t t1 = (bi + 1) * KRNL_KV_SPLIT * KRNL_KV_PAGE;

				empty(mb, lb, ab, group, gw);
				/* positions of the block below p from the cache a page at
				 * a time, each page once for the group; p from chip */
page:
				for (uint32_t t0 = bi * KRNL_KV_SPLIT * KRNL_KV_PAGE;
				     t0 < p && t0 < t1; t0 += KRNL_KV_PAGE) {
#pragma HLS loop_tripcount max=16
					uint32_t n = p - t0 < KRNL_KV_PAGE ? p - t0 : KRNL_KV_PAGE;
					uint64_t c0 = krnl_kv_at(page_of(bt, tab, t0, npages), g, t0,
								 nkv, hd);

					if (kvdt == KRNL_FMT_BF16) {
						krnl_rd_bf16(kp, kc, c0, n * hd);
						krnl_rd_bf16(vp, vc, c0, n * hd);
					} else {
						krnl_rd_f32(kp, kc, c0, n * hd);
						krnl_rd_f32(vp, vc, c0, n * hd);
					}
					fold(q, kp, vp, n, group, hd, scale, mb, lb, ab);
				}
				if (bi == nb - 1)
					fold(q, kn, vn, 1, group, hd, scale, mb, lb, ab);
				if (mode == KRNL_ATTN_PART)
					krnl_wr_f32(part, po + (uint64_t)bi * pw, bm, 2 * group + gw);
				else
					merge(m, l, acc, mb, lb, ab, group, hd);
			}
			if (mode == KRNL_ATTN_PART)
				continue;
			gate(acc, l, gt, group, hd);
			krnl_wr_f32(out, ((uint64_t)r * nh + (uint64_t)g * group) * hd, acc, gw);
		}
	}
}
