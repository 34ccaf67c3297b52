#ifndef KRNL_SAMPLER_H
#define KRNL_SAMPLER_H
#include <stdint.h>
#include "krnl_mem.h"

/* Per-row sampling parameters, as the firmware writes them to HBM: 32 bytes,
 * two rows to a beat, the array read in one burst. */
struct krnl_sample_params {
	float temperature;	/* 0: greedy */
	float top_p;		/* (0, 1]; 1: off */
	uint32_t top_k;		/* 0: off (candidates capped at KRNL_SAMPLE_CAND) */
	uint32_t seed_lo, seed_hi;
	uint32_t counter;	/* position: the draw for a token depends on seed and position only */
	uint32_t src_row;	/* row of logits to read */
	uint32_t pad;		/* 0 */
};

_Static_assert(sizeof(struct krnl_sample_params) == 32 &&
	       KRNL_BEAT_BYTES % sizeof(struct krnl_sample_params) == 0,
	       "sample params: whole beats for any even number of rows");

#define KRNL_SAMPLE_WORDS (sizeof(struct krnl_sample_params) / 4)
#define KRNL_SAMPLE_CAND 1024	/* most candidates kept for top-k / top-p */

/* Pick one token per row r from logits row params[r].src_row (rows of v floats,
 * row s at element s*v).
 *   greedy (temperature 0): first index of the largest logit;
 *   else p = softmax(logits / T) over the whole vocabulary, keep the top_k
 *   (at most KRNL_SAMPLE_CAND) most likely, then the smallest prefix of them
 *   whose mass reaches top_p, renormalise, draw with a counter-based RNG of
 *   (seed, counter).  Same seed and position, same token, whatever the batch.
 * token[r] (int32), logprob[r] (f32): the pick and its log-probability under
 * softmax(logits / T) (T = 1 for greedy) over the whole vocabulary.
 * Each logits row is read once (the normaliser is kept online); params are
 * read in one burst, token and logprob written in one each.  All f32. */
void krnl_sampler(const krnl_word *logits, const krnl_word *params, krnl_word *token,
		  krnl_word *logprob, uint32_t rows, uint32_t v);
#endif
