#ifndef KRNL_SAMPLER_H
#define KRNL_SAMPLER_H
#include <stdint.h>

/* Per-row sampling parameters, as the firmware writes them to HBM. */
struct krnl_sample_params {
	float temperature;	/* 0: greedy */
	float top_p;		/* (0, 1]; 1: off */
	uint32_t top_k;		/* 0: off (candidates capped at KRNL_SAMPLE_CAND) */
	uint32_t seed_lo, seed_hi;
	uint32_t counter;	/* position: the draw for a token depends on seed and position only */
	uint32_t src_row;	/* row of logits to read */
};

#define KRNL_SAMPLE_CAND 1024	/* most candidates kept for top-k / top-p */

/* Pick one token per row r from logits row params[r].src_row (rows of v floats).
 *   greedy (temperature 0): first index of the largest logit;
 *   else p = softmax(logits / T) over the whole vocabulary, keep the top_k
 *   (at most KRNL_SAMPLE_CAND) most likely, then the smallest prefix of them
 *   whose mass reaches top_p, renormalise, draw with a counter-based RNG of
 *   (seed, counter).  Same seed and position, same token, whatever the batch.
 * token[r], logprob[r]: the pick and its log-probability under softmax(logits / T)
 * (T = 1 for greedy) over the whole vocabulary. */
void krnl_sampler(const float *logits, const struct krnl_sample_params *params,
		  int32_t *token, float *logprob, uint32_t rows, uint32_t v);
#endif
