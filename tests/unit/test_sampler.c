/* test_sampler.c — krnl_sampler against a plain double-precision reference:
 * greedy picks, logprobs, the top-k / top-p candidate sets, the empirical
 * distribution of draws, and seed / position determinism.  The kernel sees
 * card memory as 64-byte beats: every buffer it gets is 64-byte aligned. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "krnl_sampler.h"

#define KW(p) ((krnl_word *)(void *)(p))
#define ALIGNED _Alignas(KRNL_BEAT_BYTES)

static float frand(unsigned *s, float lo, float hi)
{
	*s = *s * 1103515245u + 12345u;
	return lo + (hi - lo) * (float)((*s >> 8) & 0xffffff) / 16777216.0f;
}

/* Reference: probabilities after temperature, top-k and top-p, renormalised. */
static void ref_probs(const float *lg, uint32_t v, float t, uint32_t k, float p, double *out)
{
	double mx = -INFINITY, z = 0;
	uint32_t *ord = malloc(v * sizeof(*ord));

	for (uint32_t i = 0; i < v; i++)
		mx = lg[i] > mx ? lg[i] : mx;
	for (uint32_t i = 0; i < v; i++)
		z += exp((lg[i] - mx) / t);
	for (uint32_t i = 0; i < v; i++)
		ord[i] = i;
	/* stable selection sort by logit, descending (ties: lower index first) */
	for (uint32_t i = 0; i < v; i++)
		for (uint32_t j = i + 1; j < v; j++)
			if (lg[ord[j]] > lg[ord[i]]) {
				uint32_t tmp = ord[i];
				ord[i] = ord[j];
				ord[j] = tmp;
			}
	uint32_t keep = k ? k : v;
	double mass = 0;
	memset(out, 0, v * sizeof(*out));
	for (uint32_t j = 0; j < keep && j < v; j++) {
		out[ord[j]] = exp((lg[ord[j]] - mx) / t) / z;
		mass += out[ord[j]];
		if (p < 1.0f && mass >= p)
			break;
	}
	for (uint32_t i = 0; i < v; i++)
		out[i] /= mass;
	free(ord);
}

static double ref_logprob(const float *lg, uint32_t v, float t, uint32_t tok)
{
	double mx = -INFINITY, z = 0;

	for (uint32_t i = 0; i < v; i++)
		mx = lg[i] > mx ? lg[i] : mx;
	for (uint32_t i = 0; i < v; i++)
		z += exp((lg[i] - mx) / t);
	return (lg[tok] - mx) / t - log(z);
}

static void greedy(void **state)
{
	enum { R = 16, V = 3000 };
	static ALIGNED float lg[R * V];
	ALIGNED struct krnl_sample_params sp[R];
	ALIGNED int32_t tok[R];
	ALIGNED float lp[R];
	unsigned s = 7;

	for (uint32_t i = 0; i < R * V; i++)
		lg[i] = frand(&s, -8, 8);
	for (uint32_t r = 0; r < R; r++) {
		/* a planted exact tie: the lower index must win */
		lg[r * V + 100 + r] = 9.5f;
		lg[r * V + 2000 + r] = 9.5f;
		sp[r] = (struct krnl_sample_params){ .temperature = 0, .top_p = 1,
						     .src_row = R - 1 - r };
	}
	krnl_sampler(KW(lg), KW(sp), KW(tok), KW(lp), R, V);
	for (uint32_t r = 0; r < R; r++) {
		uint32_t src = R - 1 - r;
		assert_int_equal(tok[r], 100 + src);
		assert_true(fabs(lp[r] - ref_logprob(lg + src * V, V, 1.0f, tok[r])) < 1e-5);
	}
}

/* Draws follow the reference distribution (top-k, top-p, temperature). */
static void distribution(void **state)
{
	enum { V = 12, DRAWS = 40000, R = 16 };
	static const struct { float t; uint32_t k; float p; } cases[] = {
		{ 1.0f, 0, 1.0f }, { 0.7f, 5, 1.0f }, { 1.5f, 0, 0.8f }, { 1.0f, 3, 0.5f },
	};
	ALIGNED float lg[R * V];
	unsigned s = 99;

	for (uint32_t i = 0; i < V; i++)
		lg[i] = frand(&s, -2, 2);
	for (uint32_t r = 1; r < R; r++)
		memcpy(lg + r * V, lg, sizeof(float) * V);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		double want[V], cnt[V] = { 0 };
		ALIGNED struct krnl_sample_params sp[R];
		ALIGNED int32_t tok[R];
		ALIGNED float lp[R];

		ref_probs(lg, V, cases[c].t, cases[c].k, cases[c].p, want);
		for (uint32_t d = 0; d < DRAWS; d += R) {
			for (uint32_t r = 0; r < R; r++)
				sp[r] = (struct krnl_sample_params){
					.temperature = cases[c].t, .top_k = cases[c].k, .top_p = cases[c].p,
					.seed_lo = 12345, .seed_hi = 678, .counter = d + r, .src_row = r };
			krnl_sampler(KW(lg), KW(sp), KW(tok), KW(lp), R, V);
			for (uint32_t r = 0; r < R; r++) {
				assert_true(tok[r] >= 0 && tok[r] < V);
				assert_true(want[tok[r]] > 0);	/* never outside the kept set */
				assert_true(fabs(lp[r] - ref_logprob(lg, V, cases[c].t, tok[r])) < 1e-4);
				cnt[tok[r]]++;
			}
		}
		for (uint32_t i = 0; i < V; i++) {
			double f = cnt[i] / DRAWS, sd = sqrt(want[i] * (1 - want[i]) / DRAWS);
			if (fabs(f - want[i]) > 5 * sd + 1e-9)
				fail_msg("case %zu token %u: frequency %.4f, expected %.4f", c, i, f, want[i]);
		}
	}
}

/* The draw depends on seed and position only, not on the row or batch. */
static void determinism(void **state)
{
	enum { V = 500, R = 16 };
	static ALIGNED float lg[R * V];
	ALIGNED struct krnl_sample_params sp[R], one[2];	/* one beat */
	ALIGNED int32_t a[R];
	ALIGNED int32_t b[R];
	ALIGNED int32_t solo;
	ALIGNED float lp[R];
	ALIGNED float lps;
	unsigned s = 5;
	int differ = 0;

	for (uint32_t i = 0; i < V; i++)
		lg[i] = frand(&s, -1, 1);
	for (uint32_t r = 1; r < R; r++)
		memcpy(lg + r * V, lg, sizeof(float) * V);
	for (uint32_t r = 0; r < R; r++)
		sp[r] = (struct krnl_sample_params){ .temperature = 1.0f, .top_p = 1.0f,
						     .seed_lo = 42, .counter = 7, .src_row = r };
	krnl_sampler(KW(lg), KW(sp), KW(a), KW(lp), R, V);
	for (uint32_t r = 1; r < R; r++)
		assert_int_equal(a[r], a[0]);
	one[0] = sp[3];
	krnl_sampler(KW(lg), KW(one), KW(&solo), KW(&lps), 1, V);
	assert_int_equal(solo, a[0]);
	for (uint32_t r = 0; r < R; r++)
		sp[r].seed_lo = 1000 + r;
	krnl_sampler(KW(lg), KW(sp), KW(b), KW(lp), R, V);
	for (uint32_t r = 1; r < R; r++)
		differ |= b[r] != b[0];
	assert_true(differ);	/* other seeds, other draws */
}

/* A vocabulary of Qwen's size, read in many chunks, whose running max keeps
 * growing (the online normaliser is rescaled again and again): greedy picks
 * the first maximum, and every logprob matches the double reference. */
static void long_vocab(void **state)
{
	enum { R = 4, V = 151936 };
	static ALIGNED float lg[R * V];
	ALIGNED struct krnl_sample_params sp[R];
	ALIGNED int32_t tok[R];
	ALIGNED float lp[R];
	static const struct { float t; uint32_t k; float p; } rc[R] = {
		{ 0.0f, 0, 1.0f }, { 0.7f, 50, 1.0f }, { 1.0f, 0, 0.9f }, { 1.3f, 0, 1.0f },
	};
	unsigned s = 11;

	for (uint32_t r = 0; r < R; r++)
		for (uint32_t i = 0; i < V; i++)
			lg[r * V + i] = frand(&s, -10, 10) + 1e-4f * (float)i;
	for (uint32_t r = 0; r < R; r++)
		sp[r] = (struct krnl_sample_params){ .temperature = rc[r].t, .top_k = rc[r].k,
						     .top_p = rc[r].p, .seed_lo = 3, .counter = r,
						     .src_row = r };
	krnl_sampler(KW(lg), KW(sp), KW(tok), KW(lp), R, V);
	for (uint32_t r = 0; r < R; r++) {
		const float *l = lg + (size_t)r * V;
		uint32_t best = 0;
		float t = rc[r].t > 0 ? rc[r].t : 1.0f;

		for (uint32_t i = 1; i < V; i++)
			best = l[i] > l[best] ? i : best;
		assert_true(tok[r] >= 0 && tok[r] < V);
		if (rc[r].t == 0)
			assert_int_equal(tok[r], best);
		double want = ref_logprob(l, V, t, (uint32_t)tok[r]);
		if (fabs(lp[r] - want) > 2e-5)
			fail_msg("row %u: logprob %.9g, want %.9g", r, lp[r], want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(greedy),
		cmocka_unit_test(distribution),
		cmocka_unit_test(determinism),
		cmocka_unit_test(long_vocab),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
