/* test_sched.c — the request scheduler over the emulated card: batching,
 * the bounded queue, cancellation, and seeded sampling that does not depend
 * on what else is in the batch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include "model/sched.h"
#include "model_ref.h"

#define MAXTOK 64

struct rec {
	int32_t tok[MAXTOK];
	uint32_t n;
	int done, errors, released;
	uint32_t finish;
};

static void on_ev(void *user, const struct nc_sched_event *ev)
{
	struct rec *r = user;

	if (ev->kind == NC_EV_TOKEN && r->n < MAXTOK)
		r->tok[r->n++] = ev->token;
	if (ev->kind == NC_EV_ERROR)
		r->errors++;
	if (ev->last) {
		r->done = 1;
		r->finish = ev->finish;
	}
}

static void on_release(void *user)
{
	((struct rec *)user)->released++;
}

static struct nc_engine *open_tiny(void)
{
	/* 16 live sequences: the queue in front of them fills */
	struct nc_engine_opts o = { .model_dir = "assets/tiny-a", .seqs = 16 };
	struct nc_engine *e = NULL;
	char err[512];

	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("%s", err);
	return e;
}

static void run_until_done(struct nc_sched *s, struct rec *r, int n)
{
	for (long spins = 0; spins < 50000000; spins++) {
		int all = 1;
		assert_true(nc_sched_poll(s) >= 0);
		for (int i = 0; i < n; i++)
			all &= r[i].done;
		if (all)
			return;
	}
	fail_msg("requests did not finish");
}

static void prompt(int32_t *ids, int len, int k)
{
	for (int i = 0; i < len; i++)
		ids[i] = (k * 131 + i * 17 + 3) % 512;
}

/* More requests than live sequences: the extra ones queue and all finish with the same
 * tokens as alone; past the queue, busy. */
static void queue_and_busy(void **state)
{
	enum { N = 24, QCAP = 8, LEN = 6, GEN = 5 };
	struct nc_engine *e = open_tiny();
	struct nc_sched *s = nc_sched_new(e, QCAP);
	static struct rec r[N + 1], alone;
	int32_t ids[N + 1][LEN];
	uint64_t id, idk[N];
	char err[256];

	assert_non_null(s);
	assert_int_equal(e->n_seqs + QCAP, N);
	for (int k = 0; k <= N; k++) {
		struct nc_sched_req q = { .ids = ids[k], .n_ids = LEN, .max_new = GEN,
					  .on_event = on_ev, .release = on_release, .user = &r[k] };
		prompt(ids[k], LEN, k);
		int rc = nc_sched_submit(s, &q, &id, err, sizeof(err));
		if (k < N) {
			assert_int_equal(rc, 0);
			idk[k] = id;
		} else {
			assert_int_equal(rc, -EBUSY);	/* the 25th: refused, not dropped */
		}
	}
	struct nc_sched_stats st;
	nc_sched_get_stats(s, &st);
	assert_int_equal(st.queued, QCAP);
	/* running: 0; queued: 1 + the requests ahead of it */
	assert_int_equal(nc_sched_queue_pos(s, idk[0]), 0);
	for (int k = 0; k < QCAP; k++)
		assert_int_equal(nc_sched_queue_pos(s, idk[N - QCAP + k]), (uint32_t)k + 1);
	assert_int_equal(st.refused_busy, 1);
	run_until_done(s, r, N);
	for (int k = 0; k < N; k++) {
		assert_int_equal(r[k].n, GEN);
		assert_int_equal(r[k].released, 1);
		assert_int_equal(r[k].finish, FW_FIN_LENGTH);
		int32_t want[GEN];
		assert_int_equal(generate_one(e, ids[k], LEN, GEN, want), 0);
		assert_memory_equal(r[k].tok, want, sizeof(want));
	}
	(void)alone;
	nc_sched_free(s);
	nc_engine_close(e);
}

static void cancel(void **state)
{
	enum { N = 18, LEN = 4 };
	struct nc_engine *e = open_tiny();
	struct nc_sched *s = nc_sched_new(e, 4);
	static struct rec r[N];
	int32_t ids[N][LEN];
	uint64_t id[N];
	char err[256];

	for (int k = 0; k < N; k++) {
		struct nc_sched_req q = { .ids = ids[k], .n_ids = LEN, .max_new = 1000,
					  .on_event = on_ev, .user = &r[k] };
		prompt(ids[k], LEN, k);
		assert_int_equal(nc_sched_submit(s, &q, &id[k], err, sizeof(err)), 0);
	}
	assert_int_equal(nc_sched_cancel(s, id[N - 1]), 0);	/* queued */
	assert_true(r[N - 1].done);
	assert_int_equal(r[N - 1].finish, FW_FIN_CANCEL);
	for (int k = 0; k < N - 1; k++)
		assert_int_equal(nc_sched_cancel(s, id[k]), 0);	/* running or queued */
	run_until_done(s, r, N);
	for (int k = 0; k < N; k++)
		assert_int_equal(r[k].finish, FW_FIN_CANCEL);
	assert_int_equal(nc_sched_cancel(s, id[0]), -ENOENT);
	nc_sched_free(s);
	nc_engine_close(e);
}

/* Same seed, same tokens, alone or in a full batch; another seed differs. */
static void seeded_sampling(void **state)
{
	enum { N = 8, LEN = 5, GEN = 24 };
	struct nc_engine *e = open_tiny();
	struct nc_sched *s = nc_sched_new(e, 8);
	static struct rec alone, other, r[N];
	int32_t ids[LEN];
	uint64_t id;
	char err[256];
	struct nc_sampling smp = { .temperature = 1.2f, .top_p = 0.95f, .top_k = 50, .seed = 77 };

	prompt(ids, LEN, 3);
	struct nc_sched_req q = { .ids = ids, .n_ids = LEN, .max_new = GEN, .smp = smp,
				  .on_event = on_ev, .user = &alone };
	assert_int_equal(nc_sched_submit(s, &q, &id, err, sizeof(err)), 0);
	run_until_done(s, &alone, 1);
	q.smp.seed = 78;
	q.user = &other;
	assert_int_equal(nc_sched_submit(s, &q, &id, err, sizeof(err)), 0);
	run_until_done(s, &other, 1);
	assert_memory_not_equal(alone.tok, other.tok, sizeof(alone.tok[0]) * GEN);
	for (int k = 0; k < N; k++) {
		int32_t noise[LEN];
		prompt(noise, LEN, 100 + k);
		struct nc_sched_req b = q;
		b.user = &r[k];
		b.smp.seed = 77;
		if (k % 2) {	/* odd rows: other prompts and seeds alongside */
			b.ids = noise;
			b.smp.seed = (uint64_t)k;
		}
		assert_int_equal(nc_sched_submit(s, &b, &id, err, sizeof(err)), 0);
	}
	run_until_done(s, r, N);
	for (int k = 0; k < N; k += 2)
		assert_memory_equal(r[k].tok, alone.tok, sizeof(alone.tok[0]) * GEN);
	nc_sched_free(s);
	nc_engine_close(e);
}

static void bad_requests(void **state)
{
	struct nc_engine *e = open_tiny();
	struct nc_sched *s = nc_sched_new(e, 2);
	struct rec r = { 0 };
	int32_t ids[2] = { 5, 600 };	/* 600 is outside the 512-token vocabulary */
	uint64_t id;
	char err[256];
	struct nc_sched_req q = { .ids = ids, .n_ids = 2, .max_new = 3, .on_event = on_ev, .user = &r };

	assert_int_equal(nc_sched_submit(s, &q, &id, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "outside the vocabulary"));
	q.n_ids = 0;
	assert_int_equal(nc_sched_submit(s, &q, &id, err, sizeof(err)), -EINVAL);
	q.n_ids = 1;
	q.max_new = 0;
	assert_int_equal(nc_sched_submit(s, &q, &id, err, sizeof(err)), -EINVAL);
	nc_sched_free(s);
	nc_engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(queue_and_busy),
		cmocka_unit_test(cancel),
		cmocka_unit_test(seeded_sampling),
		cmocka_unit_test(bad_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
