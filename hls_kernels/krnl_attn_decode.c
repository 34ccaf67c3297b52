/* krnl_attn_decode.c — gated attention decode over the KV cache.
 * One pass over the cache with a running max (online softmax), so no score
 * buffer of context length is needed on chip. */
#include "krnl_common.h"
#include "krnl_attn_decode.h"

#define ATT_MAX_GROUP 16	/* query heads per kv head */

static void norm_rope(float *x, const float *src, const float *w, uint32_t hd,
		      uint32_t rd, float eps, const float *cs, const float *sn)
{
	float ss = 0.0f;
	float t[KRNL_MAX_HEAD_DIM];

	for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
		if (i >= hd)
			break;
		ss += src[i] * src[i];
	}
	float inv = 1.0f / sqrtf(ss / (float)hd + eps);
	for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
		if (i >= hd)
			break;
		t[i] = src[i] * inv * (1.0f + w[i]);
	}
	uint32_t half = rd / 2;
	for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
		if (i >= hd)
			break;
		if (i < half)
			x[i] = t[i] * cs[i] - t[i + half] * sn[i];
		else if (i < rd)
			x[i] = t[i] * cs[i - half] + t[i - half] * sn[i - half];
		else
			x[i] = t[i];
	}
}

void krnl_attn_decode(const float *qg, const float *k, const float *v,
		      const float *qnw, const float *knw, float *kc, float *vc,
		      const int32_t *slots, const int32_t *pos, float *out,
		      uint32_t rows, uint32_t nh, uint32_t nkv, uint32_t hd,
		      uint32_t rd, float theta, float eps, uint32_t maxctx)
{
#pragma HLS INTERFACE m_axi port=qg bundle=gmem0
#pragma HLS INTERFACE m_axi port=k bundle=gmem0
#pragma HLS INTERFACE m_axi port=v bundle=gmem0
#pragma HLS INTERFACE m_axi port=qnw bundle=gmem1
#pragma HLS INTERFACE m_axi port=knw bundle=gmem1
#pragma HLS INTERFACE m_axi port=kc bundle=gmem2
#pragma HLS INTERFACE m_axi port=vc bundle=gmem3
#pragma HLS INTERFACE m_axi port=slots bundle=gmem4
#pragma HLS INTERFACE m_axi port=pos bundle=gmem4
#pragma HLS INTERFACE m_axi port=out bundle=gmem5
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=nh
#pragma HLS INTERFACE s_axilite port=nkv
#pragma HLS INTERFACE s_axilite port=hd
#pragma HLS INTERFACE s_axilite port=rd
#pragma HLS INTERFACE s_axilite port=theta
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=maxctx
#pragma HLS INTERFACE s_axilite port=return
	float cs[KRNL_MAX_HEAD_DIM / 2], sn[KRNL_MAX_HEAD_DIM / 2];
	float q[ATT_MAX_GROUP][KRNL_MAX_HEAD_DIM], acc[ATT_MAX_GROUP][KRNL_MAX_HEAD_DIM];
	float m[ATT_MAX_GROUP], l[ATT_MAX_GROUP];
	uint32_t group = nh / nkv;
	float scale = 1.0f / sqrtf((float)hd);

row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		uint32_t p = (uint32_t)pos[r];
		uint64_t cbase = (uint64_t)(uint32_t)slots[r] * nkv * maxctx * hd;

		/* angles in double: p * theta^(-2i/rd) loses digits in f32 at long context */
		for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM / 2; i++) {
			if (i >= rd / 2)
				break;
			double inv_f = pow((double)theta, -2.0 * i / (double)rd);
			double ang = (double)p * inv_f;
			cs[i] = (float)cos(ang);
			sn[i] = (float)sin(ang);
		}
		/* the new token's keys and values into the cache */
kv_in:
		for (uint32_t h = 0; h < KRNL_MAX_HEADS; h++) {
			if (h >= nkv)
				break;
			uint64_t at = cbase + ((uint64_t)h * maxctx + p) * hd;
			norm_rope(kc + at, k + ((uint64_t)r * nkv + h) * hd, knw, hd, rd,
				  eps, cs, sn);
			for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
				if (i >= hd)
					break;
				vc[at + i] = v[((uint64_t)r * nkv + h) * hd + i];
			}
		}
kv_head:
		/* each kv head's cache is streamed once for its whole query group */
		for (uint32_t g = 0; g < KRNL_MAX_HEADS; g++) {
			if (g >= nkv)
				break;
			const float *qr = qg + (uint64_t)r * 2 * nh * hd;
			uint64_t hb = cbase + (uint64_t)g * maxctx * hd;

			for (uint32_t j = 0; j < ATT_MAX_GROUP; j++) {
				if (j >= group)
					break;
				norm_rope(q[j], qr + (uint64_t)(g * group + j) * hd, qnw, hd,
					  rd, eps, cs, sn);
				m[j] = -INFINITY;
				l[j] = 0.0f;
				for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
					if (i >= hd)
						break;
					acc[j][i] = 0.0f;
				}
			}
ctx:
			for (uint32_t t = 0; t < KRNL_MAX_CTX; t++) {
				if (t > p)
					break;
				const float *kt = kc + hb + (uint64_t)t * hd;
				const float *vt = vc + hb + (uint64_t)t * hd;
				for (uint32_t j = 0; j < ATT_MAX_GROUP; j++) {
					if (j >= group)
						break;
					float sc = 0.0f;
					for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
#pragma HLS PIPELINE II=1
						if (i >= hd)
							break;
						sc += q[j][i] * kt[i];
					}
					sc *= scale;
					float mn = sc > m[j] ? sc : m[j];
					float corr = expf(m[j] - mn), e = expf(sc - mn);
					l[j] = l[j] * corr + e;
					for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
#pragma HLS PIPELINE II=1
						if (i >= hd)
							break;
						acc[j][i] = acc[j][i] * corr + e * vt[i];
					}
					m[j] = mn;
				}
			}
			for (uint32_t j = 0; j < ATT_MAX_GROUP; j++) {
				if (j >= group)
					break;
				uint32_t h = g * group + j;
				const float *gate = qr + (uint64_t)nh * hd + (uint64_t)h * hd;
				float *o = out + ((uint64_t)r * nh + h) * hd;
				for (uint32_t i = 0; i < KRNL_MAX_HEAD_DIM; i++) {
					if (i >= hd)
						break;
					o[i] = acc[j][i] / l[j] * krnl_sigmoid(gate[i]);
				}
			}
		}
	}
}
