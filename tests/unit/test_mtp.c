/* test_mtp.c — the multi-token-prediction head and speculative decoding on
 * the emulated card, against fortune-13m's MTP reference (float64 logits of
 * the head from the bf16 weights, assets/fortune-13m/reference/).
 *
 * Speculative decoding must not change a single token: the draft only decides
 * which positions a step runs, every token is still the main model's pick.
 * So the checks are exact: tokens and log-probabilities bit for bit equal to
 * plain decoding, greedy and sampled, alone and batched, with drafts both
 * accepted and rejected (a rejected draft's GDN state must vanish). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include "model_ref.h"
#include "fw.h"
#include "model/sched.h"

#define MODEL "assets/fortune-13m"
#define MTP_REF MODEL "/reference/mtp-reference.safetensors"
#define MTP_TRAIN MODEL "/reference/mtp-train.json"
#define TOL 1e-4

static struct nc_engine *open_fortune(uint32_t mtp, uint32_t spec, uint32_t prefix_every)
{
	struct nc_engine_opts o = { .model_dir = MODEL, .card = "emu", .kv = NC_KV_F32,
				    .mtp = mtp, .spec = spec, .prefix_every = prefix_every };
	struct nc_engine *e = NULL;
	char err[512];

	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("open %s: %s", MODEL, err);
	return e;
}

/* The MTP head's logits of ids: n - 1 rows (row p drafts token p + 2). */
static void score_mtp(struct nc_engine *e, const int32_t *ids, uint32_t n, float *out)
{
	struct fw_res r;
	uint32_t slot, got = 0;
	char err[256];

	assert_int_equal(nc_engine_submit(e, ids, n, 1, FW_SUB_LOGITS | FW_SUB_MTP, NULL, 0, 0,
					  &slot, err, sizeof(err)), 0);
	for (;;) {
		assert_int_equal(next_result(e, &r), 0);
		if (r.flags & FW_RF_LOGITS) {
			assert_int_equal(r.pos, got);
			assert_true(got < n - 1);
			assert_int_equal(nc_engine_take_logits(e, r.logits_row,
							       out + (uint64_t)got * e->cfg.vocab), 0);
			got++;
		}
		if (r.kind != FW_RES_ACK && (r.flags & FW_RF_LAST))
			break;
	}
	assert_int_equal(got, n - 1);
}

/* Generated positions whose draft (the argmax of row p) is the token two on:
 * rows prompt - 2 .. T - 3 draft the generated tokens t[prompt .. T - 1]. */
static uint32_t accepted(const float *lg, const int32_t *t, uint32_t T, uint32_t prompt,
			 uint32_t V)
{
	uint32_t k = 0;

	for (uint32_t p = prompt - 2; p + 2 < T; p++)
		k += ref_argmax(lg + (uint64_t)p * V, V) == (uint32_t)t[p + 2];
	return k;
}

static double train_accept(const char *key)
{
	FILE *f = fopen(MTP_TRAIN, "rb");
	static char buf[1 << 16];
	size_t n;
	double v = -1;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	cJSON *root = cJSON_Parse(buf);
	cJSON *it = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "check"),
						     key);
	if (cJSON_IsNumber(it))
		v = it->valuedouble;
	cJSON_Delete(root);
	return v;
}

static uint32_t ref_len(const struct st_set *st, const char *name)
{
	const struct st_tensor *t = st_find(st, name);
	int64_t v;

	assert_non_null(t);
	memcpy(&v, t->data, 8);
	return (uint32_t)v;
}

/* The head's logits on the three reference sequences, and the acceptance they
 * give on the greedy continuations, as the reference measured it. */
static void mtp_logits(void **state)
{
	struct nc_engine *e = open_fortune(1, 0, 0);
	struct st_set st = { 0 };
	char err[256], name[32];
	uint32_t V = e->cfg.vocab;

	(void)state;
	assert_int_equal(st_open_file(&st, MTP_REF, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		uint32_t T = 0, P;
		uint64_t nl = 0;

		snprintf(name, sizeof(name), "tokens_%d", i);
		int32_t *t = ref_tokens(&st, name, &T);
		snprintf(name, sizeof(name), "mtp_logits_%d", i);
		float *want = ref_f32(&st, name, &nl);
		snprintf(name, sizeof(name), "prompt_len_%d", i);
		P = ref_len(&st, name);
		assert_non_null(t);
		assert_non_null(want);
		assert_int_equal(nl, (uint64_t)(T - 1) * V);
		float *got = malloc(nl * sizeof(float));
		score_mtp(e, t, T, got);

		double all = rel_l2(got, want, nl), worst = 0;
		for (uint32_t p = 0; p + 1 < T; p++) {
			double r = rel_l2(got + (uint64_t)p * V, want + (uint64_t)p * V, V);
			worst = r > worst ? r : worst;
		}
		snprintf(name, sizeof(name), "accept_%d", i);
		double ra = train_accept(name);
		uint32_t gen = T - P, ka = accepted(got, t, T, P, V), kr = accepted(want, t, T, P, V);
		printf("# prompt %d: %u rows, rel-L2 %.3g, worst row %.3g; acceptance %u/%u"
		       " (reference logits %u/%u, mtp-train.json %.4f)\n", i, T - 1, all, worst,
		       ka, gen, kr, gen, ra);
		assert_true(all <= TOL && worst <= TOL);
		assert_true(ra >= 0);
		/* the reference's own count, then ours within one token of it */
		assert_true(fabs(kr - ra * gen) < 0.5);
		assert_true(fabs((double)ka - ra * gen) <= 1.0);
		free(got);
		free(want);
		free(t);
	}
	/* the long prompt: no reference logits, its acceptance only */
	{
		uint32_t T = 0, P = ref_len(&st, "prompt_len_long");
		int32_t *t = ref_tokens(&st, "tokens_long", &T);
		float *got = malloc((uint64_t)(T - 1) * V * sizeof(float));
		double ra = train_accept("accept_long");
		uint32_t ka;

		assert_non_null(t);
		score_mtp(e, t, T, got);
		ka = accepted(got, t, T, P, V);
		printf("# long prompt: %u rows; acceptance %u/%u (mtp-train.json %.4f)\n", T - 1, ka,
		       T - P, ra);
		assert_true(ra >= 0 && fabs((double)ka - ra * (T - P)) <= 1.0);
		free(got);
		free(t);
	}
	st_close(&st);
	nc_engine_close(e);
}

struct req {
	const int32_t *ids;
	uint32_t n, max_new;
	struct nc_sampling smp;
};

#define MAX_OUT 256

struct out {
	int32_t tok[MAX_OUT];
	float lp[MAX_OUT];
	uint32_t n;
};

/* Run the requests together (all submitted before the first result). */
static void run_batch(struct nc_engine *e, const struct req *q, uint32_t nq, struct out *o)
{
	uint32_t slot[8], left = nq;
	char err[256];

	assert_true(nq <= 8);
	for (uint32_t i = 0; i < nq; i++) {
		assert_true(q[i].max_new <= MAX_OUT);
		o[i].n = 0;
		assert_int_equal(nc_engine_submit_ex(e, q[i].ids, q[i].n, q[i].max_new, 0, &q[i].smp,
						     NULL, 0, i, &slot[i], err, sizeof(err)), 0);
	}
	while (left) {
		struct fw_res r;

		assert_int_equal(next_result(e, &r), 0);
		if (r.kind != FW_RES_TOKEN)
			continue;
		assert_true(r.tag < nq);
		struct out *x = &o[r.tag];
		if (r.token >= 0) {
			assert_true(x->n < MAX_OUT);
			x->tok[x->n] = r.token;
			x->lp[x->n++] = r.logprob;
		}
		if (r.flags & FW_RF_LAST)
			left--;
	}
}

static void same(const struct out *a, const struct out *b, const char *what)
{
	if (a->n != b->n)
		fail_msg("%s: %u tokens vs %u", what, a->n, b->n);
	for (uint32_t i = 0; i < a->n; i++)
		if (a->tok[i] != b->tok[i] || memcmp(&a->lp[i], &b->lp[i], 4))
			fail_msg("%s: token %u: %d (%.9g) vs %d (%.9g)", what, i, a->tok[i],
				 (double)a->lp[i], b->tok[i], (double)b->lp[i]);
}

enum { NREQ = 11 };

/* The workload both engines run: the four reference prompts greedy, one at
 * a time; the three together; prompt 2 sampled under four seeds, together. */
static void workload(struct nc_engine *e, const struct st_set *st, struct out *o)
{
	static int32_t *t[4];
	static uint32_t P[4], T[4];
	static const char *sfx[4] = { "0", "1", "2", "long" };
	struct req q[4];
	char name[32];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "tokens_%s", sfx[i]);
		free(t[i]);
		t[i] = ref_tokens(st, name, &T[i]);
		snprintf(name, sizeof(name), "prompt_len_%s", sfx[i]);
		P[i] = ref_len(st, name);
		q[i] = (struct req){ .ids = t[i], .n = P[i], .max_new = T[i] - P[i] };
		run_batch(e, &q[i], 1, &o[i]);
		/* greedy: the reference continuation itself */
		for (uint32_t k = 0; k < o[i].n; k++)
			if (o[i].tok[k] != t[i][P[i] + k])
				fail_msg("prompt %s greedy token %u: %d, reference %d", sfx[i], k,
					 o[i].tok[k], t[i][P[i] + k]);
	}
	run_batch(e, q, 3, o + 4);
	for (int s = 0; s < 4; s++)
		q[s] = (struct req){ .ids = t[2], .n = P[2], .max_new = 24,
				     .smp = { .temperature = 0.9f, .top_p = 0.95f, .top_k = 40,
					      .seed = 1000u + (uint64_t)s } };
	run_batch(e, q, 4, o + 7);
}

/* Speculative decoding gives exactly what plain decoding gives. */
static void spec_equals_plain(void **state)
{
	struct out plain[NREQ], spec[NREQ];
	struct st_set st = { 0 };
	struct nc_card_snap a, b;
	char err[256];

	(void)state;
	assert_int_equal(st_open_file(&st, MTP_REF, err, sizeof(err)), 0);
	struct nc_engine *e = open_fortune(0, 0, 0);
	workload(e, &st, plain);
	nc_engine_close(e);

	e = open_fortune(0, 1, 0);
	nc_engine_snapshot(e, &a);
	workload(e, &st, spec);
	nc_engine_snapshot(e, &b);
	uint64_t dr = b.drafted - a.drafted, ac = b.accepted - a.accepted;
	printf("# speculative: %llu drafts, %llu accepted, %llu tokens in %llu steps\n",
	       (unsigned long long)dr, (unsigned long long)ac,
	       (unsigned long long)(b.tokens - a.tokens), (unsigned long long)(b.steps - a.steps));
	nc_engine_close(e);
	/* both outcomes happened, many times */
	assert_true(ac >= 10 && dr - ac >= 10);
	for (int i = 0; i < NREQ; i++) {
		char what[32];

		snprintf(what, sizeof(what), "request %d", i);
		same(&plain[i], &spec[i], what);
	}
	/* batched equals alone */
	for (int i = 0; i < 3; i++)
		same(&plain[i], &plain[4 + i], "batched vs alone");
	st_close(&st);
}

/* Prefix cache entries with an MTP head depend on the token after them; a
 * second run of the long prompt restores one and still decodes exactly. */
static void spec_prefix_cache(void **state)
{
	struct st_set st = { 0 };
	struct nc_sched_stats ps = { 0 };
	struct out o[2];
	char err[256];
	uint32_t T = 0;

	(void)state;
	assert_int_equal(st_open_file(&st, MTP_REF, err, sizeof(err)), 0);
	int32_t *t = ref_tokens(&st, "tokens_long", &T);
	uint32_t P = ref_len(&st, "prompt_len_long");
	struct req q = { .ids = t, .n = P, .max_new = T - P };
	struct nc_engine *e = open_fortune(0, 1, 64);

	run_batch(e, &q, 1, &o[0]);
	run_batch(e, &q, 1, &o[1]);
	nc_engine_pool_stats(e, &ps);
	printf("# prefix cache: %llu hits, %llu positions restored\n",
	       (unsigned long long)ps.prefix_hits, (unsigned long long)ps.prefix_tokens);
	assert_true(ps.prefix_hits >= 1 && ps.prefix_tokens >= 640);
	same(&o[0], &o[1], "long prompt, from the prefix cache");
	for (uint32_t k = 0; k < o[0].n; k++)
		assert_int_equal(o[0].tok[k], t[P + k]);
	nc_engine_close(e);
	free(t);
	st_close(&st);
}

/* Three sequences of reference prompt 2 decoding 200 tokens each (4 pages
 * apiece) in a pool of 6 pages: the older preempt the younger, which replay
 * later; drafts come and go across it all, and each sequence says what it
 * says in a roomy pool without drafts. */
static void spec_tight_pool(void **state)
{
	struct nc_engine_opts o = { .model_dir = MODEL, .card = "emu", .kv = NC_KV_F32,
				    .ctx_limit = 256, .prefix_every = NC_PREFIX_OFF };
	struct st_set st = { 0 };
	struct nc_sched_stats ps = { 0 };
	struct nc_card_snap a, b;
	struct nc_engine *e = NULL;
	struct out plain[3], spec[3];
	struct req q[3];
	char err[512];
	uint32_t T = 0;

	(void)state;
	assert_int_equal(st_open_file(&st, MTP_REF, err, sizeof(err)), 0);
	int32_t *t = ref_tokens(&st, "tokens_2", &T);
	uint32_t P = ref_len(&st, "prompt_len_2");
	for (int i = 0; i < 3; i++)
		q[i] = (struct req){ .ids = t, .n = P, .max_new = 200 };
	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("open: %s", err);
	run_batch(e, q, 3, plain);
	nc_engine_close(e);

	o.spec = 1;
	o.kv_pages = 6;
	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("open: %s", err);
	nc_engine_snapshot(e, &a);
	run_batch(e, q, 3, spec);
	nc_engine_snapshot(e, &b);
	nc_engine_pool_stats(e, &ps);
	printf("# tight pool of %u pages: %llu preempted, %llu positions replayed, %llu drafts,"
	       " %llu accepted\n", ps.pages, (unsigned long long)ps.preempted,
	       (unsigned long long)ps.replayed, (unsigned long long)(b.drafted - a.drafted),
	       (unsigned long long)(b.accepted - a.accepted));
	assert_true(ps.preempted >= 1 && b.accepted > a.accepted);
	for (int i = 0; i < 3; i++)
		same(&plain[i], &spec[i], "tight pool with drafts vs roomy pool without");
	nc_engine_close(e);
	free(t);
	st_close(&st);
}

/* A checkpoint without mtp.* refuses, saying why. */
static void no_head_refused(void **state)
{
	struct nc_engine_opts o = { .model_dir = "assets/tiny-a", .card = "emu", .spec = 1 };
	struct nc_engine *e = NULL;
	char err[512];

	(void)state;
	assert_int_not_equal(nc_engine_open(&e, &o, err, sizeof(err)), 0);
	assert_null(e);
	printf("# %s\n", err);
	assert_non_null(strstr(err, "no multi-token-prediction head"));
	assert_non_null(strstr(err, "--speculative mtp"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mtp_logits),
		cmocka_unit_test(spec_equals_plain),
		cmocka_unit_test(spec_prefix_cache),
		cmocka_unit_test(spec_tight_pool),
		cmocka_unit_test(no_head_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
