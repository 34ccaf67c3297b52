/* model_ref.h — helpers for tests that run whole models against the
 * transformers references (static: each test binary includes this once). */
#ifndef TESTS_MODEL_REF_H
#define TESTS_MODEL_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/engine.h"
#include "model/safetensors.h"

/* Token ids of an I64 reference tensor, as int32. */
static inline int32_t *ref_tokens(const struct st_set *st, const char *name, uint32_t *n)
{
	const struct st_tensor *t = st_find(st, name);
	int32_t *v;

	if (!t || t->dtype != ST_I64)
		return NULL;
	*n = (uint32_t)t->shape[0];
	v = malloc(*n * sizeof(*v));
	for (uint32_t i = 0; v && i < *n; i++) {
		int64_t x;
		memcpy(&x, (const uint8_t *)t->data + 8 * i, 8);
		v[i] = (int32_t)x;
	}
	return v;
}

static inline float *ref_f32(const struct st_set *st, const char *name, uint64_t *n)
{
	const struct st_tensor *t = st_find(st, name);
	float *v;

	if (!t)
		return NULL;
	*n = st_numel(t);
	if (*n == 0)
		return NULL;
	v = malloc(*n * sizeof(*v));
	if (v && st_read_f32(t, 0, *n, v)) {
		free(v);
		return NULL;
	}
	return v;
}

/* First index of the largest of v[0..n). */
static inline uint32_t ref_argmax(const float *v, uint32_t n)
{
	uint32_t b = 0;

	for (uint32_t i = 1; i < n; i++)
		if (v[i] > v[b])
			b = i;
	return b;
}

static inline double rel_l2(const float *a, const float *b, uint64_t n)
{
	double num = 0, den = 0;

	for (uint64_t i = 0; i < n; i++) {
		double d = (double)a[i] - b[i];
		num += d * d;
		den += (double)b[i] * b[i];
	}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Wait for the next non-ACK result; fail the test on a refusal or timeout. */
static inline int next_result(struct nc_engine *e, struct fw_res *r)
{
	for (;;) {
		int w = nc_engine_wait(e, r, 120000);
		if (w <= 0) {
			fprintf(stderr, "card %s: %s\n", w ? "failed" : "timed out", e->ctrl->error);
			return -1;
		}
		if (r->kind == FW_RES_ACK) {
			if (r->status) {
				fprintf(stderr, "command refused: %s\n", e->ctrl->error);
				return -1;
			}
			continue;
		}
		return 0;
	}
}

/* Teacher-forced logits of ids[0..n) into out[n][vocab]. */
static inline int score_one(struct nc_engine *e, const int32_t *ids, uint32_t n, float *out)
{
	struct fw_res r;
	uint32_t slot, got = 0;
	char err[256];

	if (nc_engine_submit(e, ids, n, 1, FW_SUB_LOGITS, NULL, 0, 0, &slot, err, sizeof(err))) {
		fprintf(stderr, "submit: %s\n", err);
		return -1;
	}
	while (got < n) {
		if (next_result(e, &r))
			return -1;
		if (!(r.flags & FW_RF_LOGITS))
			continue;
		if (r.pos != got || nc_engine_take_logits(e, r.logits_row, out + (uint64_t)got * e->cfg.vocab))
			return -1;
		got++;
	}
	return 0;
}

/* Greedy continuation of ids: max_new tokens into out. */
static inline int generate_one(struct nc_engine *e, const int32_t *ids, uint32_t n, uint32_t max_new,
			int32_t *out)
{
	struct fw_res r;
	uint32_t slot, got = 0;
	char err[256];

	if (nc_engine_submit(e, ids, n, max_new, 0, NULL, 0, 0, &slot, err, sizeof(err))) {
		fprintf(stderr, "submit: %s\n", err);
		return -1;
	}
	for (;;) {
		if (next_result(e, &r))
			return -1;
		if (r.kind == FW_RES_TOKEN && got < max_new)
			out[got++] = r.token;
		if (r.flags & FW_RF_LAST)
			return got == max_new ? 0 : -1;
	}
}

#endif
