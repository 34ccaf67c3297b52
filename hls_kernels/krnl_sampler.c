/* krnl_sampler.c — temperature / top-k / top-p sampling on the card, so only
 * the chosen token and its logprob cross back to the host. */
#include "krnl_common.h"
#include "krnl_sampler.h"

#define SMP_CHUNK 1024	/* logits on chip at once */

/* splitmix64 finaliser: a counter-based generator, no state between calls. */
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* [0, 1) on a 2^-24 grid: every value exact in f32. */
static float uniform01(uint64_t seed, uint32_t counter)
{
	uint64_t r = mix64(seed ^ mix64((uint64_t)counter + 0x5851f42d4c957f2dull));

	return (float)(uint32_t)(r >> 40) * 0x1.0p-24f;
}

void krnl_sampler(const krnl_word *logits, const krnl_word *params, krnl_word *token,
		  krnl_word *logprob, uint32_t rows, uint32_t v)
{
#pragma HLS INTERFACE m_axi port=logits bundle=gmem0
#pragma HLS INTERFACE m_axi port=params bundle=gmem1
#pragma HLS INTERFACE m_axi port=token bundle=gmem2
#pragma HLS INTERFACE m_axi port=logprob bundle=gmem3
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=v
#pragma HLS INTERFACE s_axilite port=return
	float cl[KRNL_SAMPLE_CAND];	/* candidate logits, descending */
	int32_t ci[KRNL_SAMPLE_CAND];
	float lg[SMP_CHUNK];
	float part[KRNL_ACC_LANES];
#pragma HLS ARRAY_PARTITION variable=part complete
	int32_t pw[KRNL_MAX_BATCH * KRNL_SAMPLE_WORDS];
	int32_t tok[KRNL_MAX_BATCH];
	float lp[KRNL_MAX_BATCH];

	krnl_rd_i32(pw, params, 0, rows * (uint32_t)KRNL_SAMPLE_WORDS);
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		struct krnl_sample_params p;

		memcpy(&p, pw + r * KRNL_SAMPLE_WORDS, sizeof(p));
		int greedy = !(p.temperature > 0.0f);
		float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
		uint32_t k = p.top_k && p.top_k < KRNL_SAMPLE_CAND ? p.top_k : KRNL_SAMPLE_CAND;
		uint32_t n = 0;
		float mx = -INFINITY, z = 0.0f;
		int32_t best = 0;

		if (greedy)
			k = 1;
		/* one pass: max, the k largest logits by insertion (ties: lower index
		 * first), and the normaliser sum exp((x - max) / T), rescaled
		 * whenever the max grows */
chunk:
		for (uint32_t i0 = 0; i0 < v; i0 += SMP_CHUNK) {
#pragma HLS loop_tripcount max=1024
			uint32_t nc = v - i0 < SMP_CHUNK ? v - i0 : SMP_CHUNK;
			float m0 = mx;

			krnl_rd_f32(lg, logits, (uint64_t)p.src_row * v + i0, nc);
scan:
			for (uint32_t i = 0; i < nc; i++) {
#pragma HLS loop_tripcount max=1024
				float x = lg[i];
				if (x > mx) {
					mx = x;
					best = (int32_t)(i0 + i);
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
				ci[j] = (int32_t)(i0 + i);
			}
			for (uint32_t a = 0; a < KRNL_ACC_LANES; a++)
				part[a] = 0.0f;
norm:
			for (uint32_t i = 0; i < nc; i++) {
#pragma HLS loop_tripcount max=1024
#pragma HLS PIPELINE II=1
				part[i % KRNL_ACC_LANES] += expf((lg[i] - mx) * inv_t);
			}
			float cz = 0.0f;
			for (uint32_t a = 0; a < KRNL_ACC_LANES; a++)
				cz += part[a];
			z = (mx > m0 ? z * expf((m0 - mx) * inv_t) : z) + cz;
		}
		float logz = logf(z);
		if (greedy) {
			tok[r] = best;
			lp[r] = -logz;		/* the max itself: (mx - mx) / T - log z */
			continue;
		}
		/* top-p: the smallest prefix of candidates whose mass reaches top_p */
		float mass = 0.0f, keep = 0.0f;
		uint32_t m = 0;
mass:
		for (uint32_t j = 0; j < n; j++) {
#pragma HLS loop_tripcount max=1024
			mass += expf((cl[j] - mx) * inv_t) / z;
			m = j + 1;
			keep = mass;
			if (p.top_p > 0.0f && p.top_p < 1.0f && mass >= p.top_p)
				break;
		}
		float u = uniform01(((uint64_t)p.seed_hi << 32) | p.seed_lo, p.counter) * keep;
		float acc = 0.0f;
		uint32_t pick = m - 1;
draw:
		for (uint32_t j = 0; j < m; j++) {
#pragma HLS loop_tripcount max=1024
			acc += expf((cl[j] - mx) * inv_t) / z;
			if (u < acc) {
				pick = j;
				break;
			}
		}
		tok[r] = ci[pick];
		lp[r] = (cl[pick] - mx) * inv_t - logz;
	}
	krnl_wr_i32(token, 0, tok, rows);
	krnl_wr_f32(logprob, 0, lp, rows);
}
