/* test_pool.c — the firmware's state pool, through the command ring of an
 * emulated card running fortune-13m: many live sequences at once, the prefix
 * cache, rollback to a snapshot, preemption when KV pages run out.  Every
 * check is against the same request run alone (or cold): tokens and their
 * log-probabilities bit for bit, logits rows bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "model_ref.h"
#include "rng.h"
#include "krnl_common.h"
#include "krnl_state.h"

#define MODEL "assets/fortune-13m"
#define MAXGEN 1100

/* What one request produced. */
struct out {
	uint32_t n;			/* tokens */
	int32_t tok[MAXGEN];
	float lp[MAXGEN];
	uint32_t finish;
	int done;
	uint32_t restored;		/* ACK value of its SUBMIT */
	uint32_t max_batch;
	uint32_t nlg;			/* logits rows taken */
	uint32_t lg_pos[MAXGEN + 800];
	float *lg;			/* [nlg][vocab] when asked for */
};

static struct nc_engine *open_opts(struct nc_engine_opts o)
{
	struct nc_engine *e = NULL;
	char err[512];

	o.model_dir = MODEL;
	o.card = "emu";
	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("open %s: %s", MODEL, err);
	return e;
}

static void submit(struct nc_engine *e, const int32_t *ids, uint32_t n, uint32_t max_new,
		   uint32_t flags, const struct nc_sampling *smp, uint64_t tag, uint32_t *seq)
{
	char err[256];

	if (nc_engine_submit_ex(e, ids, n, max_new, flags, smp, NULL, 0, tag, seq, err,
				sizeof(err)))
		fail_msg("submit: %s", err);
}

/* Take one result into outs[tag]; ACKs of SUBMIT record what was restored.
 * Returns the result's kind. */
static uint32_t take(struct nc_engine *e, struct out *outs, struct fw_res *r)
{
	int w = nc_engine_wait(e, r, 120000);
	struct out *o;

	if (w <= 0)
		fail_msg("card %s: %s", w ? "failed" : "timed out", e->ctrl->error);
	o = &outs[r->tag];
	if (r->kind == FW_RES_ACK) {
		if (r->status)
			fail_msg("op %u refused: %d", r->op, r->status);
		if (r->op == FW_OP_SUBMIT)
			o->restored = r->value;
		return r->kind;
	}
	if (r->batch > o->max_batch)
		o->max_batch = r->batch;
	if (r->flags & FW_RF_LOGITS) {
		uint32_t v = e->cfg.vocab;

		o->lg = realloc(o->lg, (size_t)(o->nlg + 1) * v * sizeof(float));
		assert_non_null(o->lg);
		assert_int_equal(nc_engine_take_logits(e, r->logits_row,
						       o->lg + (size_t)o->nlg * v), 0);
		o->lg_pos[o->nlg++] = r->pos;
	}
	if (r->kind == FW_RES_TOKEN && r->token >= 0) {
		assert_true(o->n < MAXGEN);
		o->tok[o->n] = r->token;
		o->lp[o->n++] = r->logprob;
	}
	if (r->flags & FW_RF_LAST) {
		o->finish = r->finish;
		o->done = 1;
	}
	return r->kind;
}

static void drain(struct nc_engine *e, struct out *outs, int n)
{
	struct fw_res r;

	for (int left = n; left > 0;) {
		take(e, outs, &r);
		left -= r.kind != FW_RES_ACK && (r.flags & FW_RF_LAST);
	}
}

static void same_tokens(const char *what, const struct out *a, const struct out *b)
{
	if (a->n != b->n)
		fail_msg("%s: %u tokens vs %u", what, a->n, b->n);
	for (uint32_t i = 0; i < a->n; i++)
		if (a->tok[i] != b->tok[i] || memcmp(&a->lp[i], &b->lp[i], sizeof(float)))
			fail_msg("%s: token %u: %d (%.9g) vs %d (%.9g)", what, i, a->tok[i],
				 a->lp[i], b->tok[i], b->lp[i]);
}

static void random_ids(struct rng *g, int32_t *ids, uint32_t n, uint32_t vocab)
{
	for (uint32_t i = 0; i < n; i++)
		ids[i] = rng_below(g, (int)vocab);
}

/* 64 requests of mixed lengths, greedy and sampled, at once: each equals the
 * same request alone, and steps carried more rows than one kernel tile. */
static void concurrent_64_equal_alone(void **state)
{
	enum { N = 64 };
	struct nc_engine *e = open_opts((struct nc_engine_opts){ .prefix_every = NC_PREFIX_OFF });
	static struct out alone[N], both[N];
	static int32_t ids[N][48];
	uint32_t len[N], gen[N], seq;
	struct nc_sampling smp[N];
	struct rng g = { 1234 };

	(void)state;
	assert_true(e->n_seqs >= N);
	for (int i = 0; i < N; i++) {
		len[i] = 3 + (uint32_t)rng_below(&g, 40);
		gen[i] = 2 + (uint32_t)rng_below(&g, 7);
		random_ids(&g, ids[i], len[i], e->cfg.vocab);
		smp[i] = (struct nc_sampling){ .temperature = i % 2 ? 0.9f : 0.0f, .top_p = 0.95f,
					       .seed = 77 + (uint64_t)i };
	}
	for (int i = 0; i < N; i++) {
		submit(e, ids[i], len[i], gen[i], 0, &smp[i], (uint64_t)i, &seq);
		drain(e, alone, 1);
	}
	for (int i = 0; i < N; i++)
		submit(e, ids[i], len[i], gen[i], 0, &smp[i], (uint64_t)i, &seq);
	drain(e, both, N);
	uint32_t widest = 0;
	for (int i = 0; i < N; i++) {
		char what[64];

		snprintf(what, sizeof(what), "request %d (%u + %u)", i, len[i], gen[i]);
		same_tokens(what, &both[i], &alone[i]);
		assert_int_equal(both[i].n, gen[i]);
		widest = both[i].max_batch > widest ? both[i].max_batch : widest;
	}
	printf("# widest step: %u rows (kernel tile %u)\n", widest, KRNL_MAX_BATCH);
	assert_true(widest > KRNL_MAX_BATCH);
	assert_int_equal(atomic_load(&e->ctrl->live_seqs), 0);
	assert_int_equal(atomic_load(&e->ctrl->pages_free), e->ctrl->n_pages);
	nc_engine_close(e);
}

/* A 700-token prompt, then one sharing its first 600: the second restores the
 * snapshot at 512 and runs only positions 512.., with logits identical to a
 * cold run of the same prompt. */
static void prefix_cache_hit(void **state)
{
	struct nc_engine *e = open_opts((struct nc_engine_opts){ 0 });
	static struct out o[3];
	static int32_t a[700], b[700];
	struct rng g = { 99 };
	uint32_t seq, v = e->cfg.vocab;

	(void)state;
	random_ids(&g, a, 700, v);
	memcpy(b, a, 600 * sizeof(*a));
	random_ids(&g, b + 600, 100, v);
	submit(e, a, 700, 8, 0, NULL, 0, &seq);
	drain(e, o, 1);
	assert_int_equal(o[0].restored, 0);
	/* snapshots at 256, 512 and 640 (the prompt's last page boundary) */
	assert_int_equal(atomic_load(&e->ctrl->prefix_stored), 3);
	uint64_t steps0 = atomic_load(&e->ctrl->step_rows);
	submit(e, b, 700, 8, FW_SUB_LOGITS | FW_SUB_CACHE, NULL, 1, &seq);
	drain(e, o, 1);
	uint64_t warm_rows = atomic_load(&e->ctrl->step_rows) - steps0;
	submit(e, b, 700, 8, FW_SUB_LOGITS | FW_SUB_NOCACHE, NULL, 2, &seq);
	drain(e, o, 1);
	uint64_t cold_rows = atomic_load(&e->ctrl->step_rows) - steps0 - warm_rows;
	printf("# prefix: restored %u positions; warm run %llu rows, cold %llu\n", o[1].restored,
	       (unsigned long long)warm_rows, (unsigned long long)cold_rows);
	assert_int_equal(o[1].restored, 512);
	assert_int_equal(o[2].restored, 0);
	assert_int_equal(warm_rows, 700 - 512 + 8 - 1);
	assert_int_equal(cold_rows, 700 + 8 - 1);
	same_tokens("warm vs cold", &o[1], &o[2]);
	assert_int_equal(o[1].nlg, warm_rows);	/* every row it ran, and only those */
	assert_int_equal(o[2].nlg, cold_rows);
	for (uint32_t i = 0; i < o[1].nlg; i++) {
		uint32_t j = i + 512;

		assert_int_equal(o[1].lg_pos[i], o[2].lg_pos[j]);
		if (memcmp(o[1].lg + (size_t)i * v, o[2].lg + (size_t)j * v, v * sizeof(float)))
			fail_msg("logits at position %u differ (rel-L2 %.3g)", o[1].lg_pos[i],
				 rel_l2(o[1].lg + (size_t)i * v, o[2].lg + (size_t)j * v, v));
	}
	assert_int_equal(atomic_load(&e->ctrl->prefix_hits), 1);
	assert_int_equal(atomic_load(&e->ctrl->prefix_tokens), 512);
	for (int i = 0; i < 3; i++)
		free(o[i].lg);
	nc_engine_close(e);
}

/* Under a byte budget the least recently used snapshots go first. */
static void prefix_cache_evicts(void **state)
{
	struct nc_engine *e0 = open_opts((struct nc_engine_opts){ 0 });
	/* room for the snapshot at 512 and not for both of a 520-token prompt */
	uint64_t budget = e0->ctrl->block_bytes + 9 * e0->ctrl->page_bytes;
	static struct out o[2];
	static int32_t a[520];
	struct rng g = { 5 };
	uint32_t seq;

	(void)state;
	nc_engine_close(e0);
	struct nc_engine *e = open_opts((struct nc_engine_opts){ .prefix_budget = budget });
	random_ids(&g, a, 520, e->cfg.vocab);
	submit(e, a, 520, 4, 0, NULL, 0, &seq);
	drain(e, o, 1);
	printf("# budget %llu: stored %llu, evicted %llu, holding %llu bytes in %u\n",
	       (unsigned long long)budget, (unsigned long long)atomic_load(&e->ctrl->prefix_stored),
	       (unsigned long long)atomic_load(&e->ctrl->prefix_evicted),
	       (unsigned long long)atomic_load(&e->ctrl->snap_bytes), atomic_load(&e->ctrl->snaps));
	assert_int_equal(atomic_load(&e->ctrl->prefix_stored), 2);
	assert_int_equal(atomic_load(&e->ctrl->prefix_evicted), 1);
	assert_true(atomic_load(&e->ctrl->snap_bytes) <= budget);
	/* the newest (512) stayed: the same prompt restores it */
	submit(e, a, 520, 4, 0, NULL, 1, &seq);
	drain(e, o, 1);
	assert_int_equal(o[1].restored, 512);
	same_tokens("restored vs first", &o[1], &o[0]);
	nc_engine_close(e);
}

/* Snapshot a sequence mid-generation, let it run on, roll it back: it says
 * the same tokens again, sampled, bit for bit. */
static void rollback_regenerates(void **state)
{
	struct nc_engine *e = open_opts((struct nc_engine_opts){ .prefix_every = NC_PREFIX_OFF });
	static struct out o[1];
	static struct out first;
	int32_t ids[20];
	struct rng g = { 31 };
	struct nc_sampling smp = { .temperature = 0.8f, .seed = 4242 };
	uint32_t seq, snap = 0, at = 0, gen0 = 0;
	struct fw_res r;

	(void)state;
	random_ids(&g, ids, 20, e->cfg.vocab);
	submit(e, ids, 20, 1000, 0, &smp, 0, &seq);
	while (o[0].n < 10)
		take(e, o, &r);
	assert_int_equal(nc_engine_pool_op(e, FW_OP_SNAPSHOT, seq, 0, 0), 0);
	for (;;) {
		if (take(e, o, &r) == FW_RES_ACK && r.op == FW_OP_SNAPSHOT) {
			snap = r.value;
			at = r.pos;
			break;
		}
	}
	gen0 = at - 20 + 1;	/* tokens it had said when the snapshot was taken */
	while (o[0].n < gen0 + 30)
		take(e, o, &r);
	/* hold the card between steps, roll back, let it go */
	atomic_store(&e->ctrl->hold, 1);
	while (atomic_load(&e->ctrl->in_step))
		;
	assert_int_equal(nc_engine_pool_op(e, FW_OP_ROLLBACK, seq, snap, 0), 0);
	for (;;) {
		if (take(e, o, &r) == FW_RES_ACK && r.op == FW_OP_ROLLBACK)
			break;
	}
	first = o[0];	/* everything said before the rollback */
	o[0].n = gen0;
	atomic_store(&e->ctrl->hold, 0);
	while (o[0].n < gen0 + 30)
		take(e, o, &r);
	printf("# rollback to position %u (token %u): %u tokens said again\n", at, gen0, 30);
	for (uint32_t i = gen0; i < gen0 + 30; i++)
		if (o[0].tok[i] != first.tok[i] || memcmp(&o[0].lp[i], &first.lp[i], 4))
			fail_msg("token %u after rollback: %d vs %d", i, o[0].tok[i], first.tok[i]);
	assert_int_equal(nc_engine_pool_op(e, FW_OP_DROP, seq, snap, 0), 0);
	assert_int_equal(nc_engine_cancel(e, seq), 0);
	while (!o[0].done)
		take(e, o, &r);
	assert_int_equal(atomic_load(&e->ctrl->snaps), 0);
	nc_engine_close(e);
}

/* Fewer KV pages than four sequences need (8 pages of 64 positions, each
 * sequence 4): the youngest are preempted and replayed, and every output
 * equals the request alone. */
static void preemption_equals_alone(void **state)
{
	enum { N = 4, LEN = 100, GEN = 140 };
	struct nc_engine *e = open_opts((struct nc_engine_opts){ .prefix_every = NC_PREFIX_OFF,
								 .ctx_limit = 512, .kv_pages = 8 });
	static struct out alone[N], both[N];
	static int32_t ids[N][LEN];
	struct rng g = { 8 };
	uint32_t seq;

	(void)state;
	assert_int_equal(e->ctrl->n_pages, 8);
	for (int i = 0; i < N; i++) {
		random_ids(&g, ids[i], LEN, e->cfg.vocab);
		submit(e, ids[i], LEN, GEN, 0, NULL, (uint64_t)i, &seq);
		drain(e, alone, 1);
	}
	assert_int_equal(atomic_load(&e->ctrl->preempted), 0);
	for (int i = 0; i < N; i++)
		submit(e, ids[i], LEN, GEN, 0, NULL, (uint64_t)i, &seq);
	drain(e, both, N);
	printf("# preempted %llu times, %llu positions replayed\n",
	       (unsigned long long)atomic_load(&e->ctrl->preempted),
	       (unsigned long long)atomic_load(&e->ctrl->replayed));
	assert_true(atomic_load(&e->ctrl->preempted) > 0);
	for (int i = 0; i < N; i++) {
		char what[32];

		snprintf(what, sizeof(what), "request %d", i);
		same_tokens(what, &both[i], &alone[i]);
	}
	assert_int_equal(atomic_load(&e->ctrl->pages_free), 8);
	nc_engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(concurrent_64_equal_alone),
		cmocka_unit_test(prefix_cache_hit),
		cmocka_unit_test(prefix_cache_evicts),
		cmocka_unit_test(rollback_regenerates),
		cmocka_unit_test(preemption_equals_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
