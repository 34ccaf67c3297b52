/* krnl_sampler.c — temperature / top-k / top-p sampling on the card, so only
 * the chosen token and its logprob cross back to the host. */
#include "krnl_common.h"
#include "krnl_sampler.h"

/* splitmix64 finaliser: a counter-based generator, no state between calls. */
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t seed, uint32_t counter)
{
	uint64_t r = mix64(seed ^ mix64((uint64_t)counter + 0x5851f42d4c957f2dull));

	return (double)(r >> 11) * (1.0 / 9007199254740992.0);	/* [0, 1) */
}

void krnl_sampler(const float *logits, const struct krnl_sample_params *params,
		  int32_t *token, float *logprob, uint32_t rows, uint32_t v)
{
#pragma HLS INTERFACE m_axi port=logits bundle=gmem0
#pragma HLS INTERFACE m_axi port=params bundle=gmem1
#pragma HLS INTERFACE m_axi port=token bundle=gmem2
#pragma HLS INTERFACE m_axi port=logprob bundle=gmem2
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=v
#pragma HLS INTERFACE s_axilite port=return
	static float cl[KRNL_SAMPLE_CAND];	/* candidate logits, descending */
	static int32_t ci[KRNL_SAMPLE_CAND];

row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		struct krnl_sample_params p = params[r];
		const float *lg = logits + (uint64_t)p.src_row * v;
		int greedy = !(p.temperature > 0.0f);
		float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
		uint32_t k = p.top_k && p.top_k < KRNL_SAMPLE_CAND ? p.top_k : KRNL_SAMPLE_CAND;
		uint32_t n = 0;
		float mx = -INFINITY;
		int32_t best = 0;

		if (greedy)
			k = 1;
		/* pass 1: max, and the k largest logits by insertion (ties: lower index first) */
scan:
		for (uint32_t i = 0; i < KRNL_MAX_VOCAB; i++) {
			if (i >= v)
				break;
			float x = lg[i];
			if (x > mx) {
				mx = x;
				best = (int32_t)i;
			}
			if (n == k && !(x > cl[n - 1]))
				continue;
			uint32_t j = n < k ? n++ : n - 1;
insert:
			for (uint32_t s = 0; s < KRNL_SAMPLE_CAND; s++) {
				if (j == 0 || !(x > cl[j - 1]))
					break;
				cl[j] = cl[j - 1];
				ci[j] = ci[j - 1];
				j--;
			}
			cl[j] = x;
			ci[j] = (int32_t)i;
		}
		/* pass 2: the softmax normaliser over the whole vocabulary */
		double z = 0.0;
norm:
		for (uint32_t i = 0; i < KRNL_MAX_VOCAB; i++) {
			if (i >= v)
				break;
			z += exp(((double)lg[i] - mx) * inv_t);
		}
		double logz = log(z);
		if (greedy) {
			token[r] = best;
			logprob[r] = (float)(((double)mx - mx) * inv_t - logz);
			continue;
		}
		/* top-p: the smallest prefix of candidates whose mass reaches top_p */
		double mass = 0.0, keep = 0.0;
		uint32_t m = 0;
		for (uint32_t j = 0; j < KRNL_SAMPLE_CAND; j++) {
			if (j >= n)
				break;
			mass += exp(((double)cl[j] - mx) * inv_t) / z;
			m = j + 1;
			keep = mass;
			if (p.top_p > 0.0f && p.top_p < 1.0f && mass >= p.top_p)
				break;
		}
		double u = uniform01(((uint64_t)p.seed_hi << 32) | p.seed_lo, p.counter) * keep;
		double acc = 0.0;
		uint32_t pick = m - 1;
draw:
		for (uint32_t j = 0; j < KRNL_SAMPLE_CAND; j++) {
			if (j >= m)
				break;
			acc += exp(((double)cl[j] - mx) * inv_t) / z;
			if (u < acc) {
				pick = j;
				break;
			}
		}
		token[r] = ci[pick];
		logprob[r] = (float)(((double)cl[pick] - mx) * inv_t - logz);
	}
}
