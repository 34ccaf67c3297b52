/* test_quant_model.c — what each weight format costs in accuracy, on the
 * trained fortune-13m against its float64 transformers reference.
 *
 * For every --quant plan the model is quantized at load and scores the three
 * reference prompts (with their greedy continuations) and the 732-token long
 * prompt.  Per plan it reports, and bounds:
 *   - relative L2 error of the logits against the reference,
 *   - top-1 agreement: share of positions whose argmax equals the reference's,
 *   - the change of the mean next-token NLL (nats) over the scored tokens.
 * The bounds sit a little above what was measured (docs/architecture.md has
 * the table), so a regression in the encoder or the kernels shows.  The
 * unquantized bf16 run must stay exact (the reference tolerance).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include "model_ref.h"

struct acc {
	double e2, w2;		/* squared error and reference norm of the logits */
	double nll, nll_ref;	/* summed next-token NLL, ours and the reference's */
	uint64_t pos, top1;	/* positions scored, positions agreeing */
};

static double nll_of(const float *lg, uint32_t V, int32_t next)
{
	double mx = lg[0], s = 0;

	for (uint32_t i = 1; i < V; i++)
		mx = lg[i] > mx ? lg[i] : mx;
	for (uint32_t i = 0; i < V; i++)
		s += exp(lg[i] - mx);
	return -(lg[next] - mx - log(s));
}

static uint32_t argmax(const float *lg, uint32_t V)
{
	uint32_t b = 0;

	for (uint32_t i = 1; i < V; i++)
		if (lg[i] > lg[b])
			b = i;
	return b;
}

static void score_ref(struct nc_engine *e, const char *ref, const char *tn, const char *ln,
		      struct acc *a)
{
	struct st_set st = { 0 };
	char err[256];
	uint32_t n = 0, V = e->cfg.vocab;
	uint64_t nl = 0;

	assert_int_equal(st_open_file(&st, ref, err, sizeof(err)), 0);
	int32_t *ids = ref_tokens(&st, tn, &n);
	float *want = ref_f32(&st, ln, &nl);
	assert_non_null(ids);
	assert_non_null(want);
	float *got = malloc((uint64_t)n * V * sizeof(float));
	assert_int_equal(score_one(e, ids, n, got), 0);
	for (uint32_t t = 0; t < n; t++) {
		const float *g = got + (uint64_t)t * V, *w = want + (uint64_t)t * V;
		for (uint32_t i = 0; i < V; i++) {
			a->e2 += ((double)g[i] - w[i]) * ((double)g[i] - w[i]);
			a->w2 += (double)w[i] * w[i];
		}
		a->top1 += argmax(g, V) == argmax(w, V);
		a->pos++;
		if (t + 1 < n) {
			a->nll += nll_of(g, V, ids[t + 1]);
			a->nll_ref += nll_of(w, V, ids[t + 1]);
		}
	}
	free(got);
	free(want);
	free(ids);
	st_close(&st);
}

/* One plan over all four prompts; bounds: rel-L2, top-1 share, NLL change. */
static void check_plan(const char *quant, double max_l2, double min_top1, double max_dnll)
{
	static const char *ref = "assets/fortune-13m/reference/reference.safetensors";
	static const char *lng = "assets/fortune-13m/reference/fortune-long.safetensors";
	struct nc_engine_opts o = { .model_dir = "assets/fortune-13m", .card = "emu",
				    .quant = quant };
	struct nc_engine *e = NULL;
	struct acc a = { 0 };
	char err[512], tn[24], ln[24];

	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("open with --quant %s: %s", quant ? quant : "-", err);
	for (int i = 0; i < 3; i++) {
		snprintf(tn, sizeof(tn), "tokens_%d", i);
		snprintf(ln, sizeof(ln), "logits_%d", i);
		score_ref(e, ref, tn, ln, &a);
	}
	score_ref(e, lng, "tokens", "logits", &a);
	double l2 = sqrt(a.e2 / a.w2), top1 = (double)a.top1 / a.pos;
	double dnll = (a.nll - a.nll_ref) / (double)(a.pos - 4);
	printf("# quant %-10s (%s): rel-L2 %.4f  top-1 %.1f%%  NLL %+.4f nats (ref %.4f) over %llu positions\n",
	       quant ? quant : "none", e->formats, l2, 100 * top1, dnll,
	       a.nll_ref / (double)(a.pos - 4), (unsigned long long)a.pos);
	assert_true(l2 <= max_l2);
	assert_true(top1 >= min_top1);
	assert_true(dnll <= max_dnll);
	nc_engine_close(e);
}

static void plan_none(void **state) { check_plan(NULL, 1e-4, 0.999, 1e-4); }
/* measured: int8 0.078 / 96.6% / +0.005; int4 0.177 / 92.0% / +0.046;
 * int4 rtn 0.192 / 91.6% / +0.059; int4-all 0.399 / 78.0% / +0.441 */
static void plan_int8(void **state) { check_plan("int8:64", 0.10, 0.94, 0.02); }
static void plan_int4(void **state) { check_plan("int4:64", 0.22, 0.88, 0.08); }
static void plan_int4_rtn(void **state) { check_plan("int4:64,rtn", 0.24, 0.87, 0.10); }
static void plan_int4_all(void **state) { check_plan("int4-all:64", 0.50, 0.70, 0.60); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plan_none),
		cmocka_unit_test(plan_int8),
		cmocka_unit_test(plan_int4),
		cmocka_unit_test(plan_int4_rtn),
		cmocka_unit_test(plan_int4_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
