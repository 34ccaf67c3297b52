/* test_model.c — whole-model checks through hls_kernels -> firmware -> emulated
 * card against the transformers float64 references in assets/. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>
#include "model_ref.h"
#include "fw.h"

#define TOL 1e-4

static struct nc_engine *open_model(const char *dir)
{
	struct nc_engine_opts o = { .model_dir = dir, .card = "emu", .kv = NC_KV_F32 };
	struct nc_engine *e = NULL;
	char err[512];

	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("open %s: %s", dir, err);
	return e;
}

/* Score the reference tokens and compare every position's logits. */
static void check_logits(struct nc_engine *e, const char *ref, const char *tok_name,
			 const char *lg_name, double tol)
{
	struct st_set st = { 0 };
	char err[256];
	uint32_t n = 0;
	uint64_t nl = 0;

	assert_int_equal(st_open_file(&st, ref, err, sizeof(err)), 0);
	int32_t *ids = ref_tokens(&st, tok_name, &n);
	float *want = ref_f32(&st, lg_name, &nl);
	assert_non_null(ids);
	assert_non_null(want);
	assert_int_equal(nl, (uint64_t)n * e->cfg.vocab);
	float *got = malloc(nl * sizeof(float));
	assert_int_equal(score_one(e, ids, n, got), 0);

	double all = rel_l2(got, want, nl), worst = 0;
	for (uint32_t t = 0; t < n; t++) {
		double r = rel_l2(got + (uint64_t)t * e->cfg.vocab, want + (uint64_t)t * e->cfg.vocab,
				  e->cfg.vocab);
		worst = r > worst ? r : worst;
	}
	printf("# %s %s: %u positions, rel-L2 %.3g, worst position %.3g\n", ref, lg_name, n, all,
	       worst);
	assert_true(all <= tol);
	assert_true(worst <= tol);
	free(got);
	free(want);
	free(ids);
	st_close(&st);
}

/* Greedy from the prompt reproduces the reference continuation exactly. */
static void check_greedy(struct nc_engine *e, const int32_t *toks, uint32_t prompt, uint32_t gen)
{
	int32_t *out = calloc(gen, sizeof(*out));

	assert_int_equal(generate_one(e, toks, prompt, gen, out), 0);
	for (uint32_t i = 0; i < gen; i++)
		if (out[i] != toks[prompt + i])
			fail_msg("greedy token %u: got %d want %d", i, out[i], toks[prompt + i]);
	free(out);
}

static void tiny_a(void **state)
{
	struct nc_engine *e = open_model("assets/tiny-a");
	struct st_set st = { 0 };
	char err[256];
	uint32_t n;

	check_logits(e, "assets/tiny-a/reference.safetensors", "tokens", "logits", TOL);
	assert_int_equal(st_open_file(&st, "assets/tiny-a/reference.safetensors", err, sizeof(err)), 0);
	int32_t *toks = ref_tokens(&st, "tokens", &n);
	assert_int_equal(n, 64);
	check_greedy(e, toks, 40, 24);
	free(toks);
	st_close(&st);
	nc_engine_close(e);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

/* A copy of tiny-a whose config.json is `cfg`; returns the temp dir. */
static char *model_with_config(const char *cfg)
{
	char *dir = strdup("/tmp/nc-model-XXXXXX"), path[512], src[512];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(cfg, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_non_null(realpath("assets/tiny-a/model.safetensors", src));
	assert_int_equal(symlink(src, path), 0);
	return dir;
}

static void drop_dir(char *dir)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* The 4.57-era config keys (full_attention_interval, rope_theta,
 * partial_rotary_factor, no layer_types) give the same model. */
static const char *tiny_a_457 =
	"{\"architectures\":[\"Qwen3NextForCausalLM\"],\"model_type\":\"qwen3_next\","
	"\"decoder_sparse_step\":1,\"full_attention_interval\":4,\"head_dim\":32,"
	"\"hidden_size\":64,\"intermediate_size\":5632,\"linear_conv_kernel_dim\":4,"
	"\"linear_key_head_dim\":16,\"linear_num_key_heads\":2,\"linear_num_value_heads\":4,"
	"\"linear_value_head_dim\":24,\"max_position_embeddings\":4096,\"mlp_only_layers\":[],"
	"\"moe_intermediate_size\":32,\"norm_topk_prob\":true,\"num_attention_heads\":4,"
	"\"num_experts\":16,\"num_experts_per_tok\":4,\"num_hidden_layers\":4,"
	"\"num_key_value_heads\":2,\"partial_rotary_factor\":0.25,\"rms_norm_eps\":1e-06,"
	"\"rope_theta\":10000.0,\"rope_scaling\":null,\"shared_expert_intermediate_size\":48,"
	"\"tie_word_embeddings\":false,\"torch_dtype\":\"float32\",\"vocab_size\":512}";

static void tiny_a_old_dialect(void **state)
{
	char *dir = model_with_config(tiny_a_457);
	struct nc_engine *e = open_model(dir);
	struct st_set st = { 0 };
	char err[256];
	uint32_t n;

	check_logits(e, "assets/tiny-a/reference.safetensors", "tokens", "logits", TOL);
	assert_int_equal(st_open_file(&st, "assets/tiny-a/reference.safetensors", err, sizeof(err)), 0);
	int32_t *toks = ref_tokens(&st, "tokens", &n);
	check_greedy(e, toks, 40, 24);
	free(toks);
	st_close(&st);
	nc_engine_close(e);
	drop_dir(dir);
}

/* A config that disagrees with the weights is refused naming the tensor. */
static void mismatched_config(void **state)
{
	static const struct { const char *from, *to, *want; } cases[] = {
		{ "\"moe_intermediate_size\":32", "\"moe_intermediate_size\":16",
		  "'model.layers.0.mlp.experts.0.gate_proj.weight': shape [32,64], config wants [16,64]" },
		{ "\"num_experts\":16", "\"num_experts\":17",
		  "'model.layers.0.mlp.gate.weight': shape [16,64], config wants [17,64]" },
		{ "\"num_hidden_layers\":4", "\"num_hidden_layers\":5",
		  "tensor 'model.layers.4.input_layernorm.weight': missing" },
		{ "\"linear_num_value_heads\":4", "\"linear_num_value_heads\":2",
		  "'model.layers.0.linear_attn.in_proj_qkvz.weight': shape" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char cfg[4096], err[512], *at;
		struct nc_engine_opts o = { .card = "emu", .kv = NC_KV_F32 };
		struct nc_engine *e = NULL;

		snprintf(cfg, sizeof(cfg), "%s", tiny_a_457);
		at = strstr(cfg, cases[i].from);
		assert_non_null(at);
		memmove(at + strlen(cases[i].to), at + strlen(cases[i].from),
			strlen(at + strlen(cases[i].from)) + 1);
		memcpy(at, cases[i].to, strlen(cases[i].to));
		char *dir = model_with_config(cfg);
		o.model_dir = dir;
		assert_int_not_equal(nc_engine_open(&e, &o, err, sizeof(err)), 0);
		assert_null(e);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].want);
		drop_dir(dir);
	}
}

/* A checkpoint that also carries the multi-token-prediction head (mtp.*),
 * sharded with an index, loads and gives the same logits. */
static void mtp_tensors_ignored(void **state)
{
	static const char hdr[] = "{\"mtp.fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
				  "\"data_offsets\":[0,16]},\"mtp.norm.weight\":{\"dtype\":"
				  "\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
	struct st_set st = { 0 };
	char err[256], path[512], src[512];
	char *dir = model_with_config(tiny_a_457);
	float data[6] = { 1, 2, 3, 4, 5, 6 };
	uint64_t hl = sizeof(hdr) - 1;
	FILE *f;

	/* second shard: the mtp tensors */
	snprintf(path, sizeof(path), "%s/model-mtp.safetensors", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(&hl, 8, 1, f);
	fwrite(hdr, 1, hl, f);
	fwrite(data, sizeof(data), 1, f);
	fclose(f);
	/* index over both shards: the base one under a shard name */
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/model-base.safetensors", dir);
	assert_non_null(realpath("assets/tiny-a/model.safetensors", src));
	assert_int_equal(symlink(src, path), 0);
	assert_int_equal(st_open_file(&st, src, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"metadata\":{},\"weight_map\":{\"mtp.fc.weight\":\"model-mtp.safetensors\","
		   "\"mtp.norm.weight\":\"model-mtp.safetensors\"");
	for (size_t i = 0; i < st_count(&st); i++)
		fprintf(f, ",\"%s\":\"model-base.safetensors\"", st_at(&st, i)->name);
	fprintf(f, "}}");
	fclose(f);
	st_close(&st);

	/* the index does reach the mtp shard */
	assert_int_equal(st_open_dir(&st, dir, err, sizeof(err)), 0);
	assert_non_null(st_find(&st, "mtp.fc.weight"));
	st_close(&st);
	struct nc_engine *e = open_model(dir);
	/* the weights are on the card: the engine keeps no mapping of them */
	assert_int_equal(st_count(&e->st), 0);
	check_logits(e, "assets/tiny-a/reference.safetensors", "tokens", "logits", TOL);
	nc_engine_close(e);
	drop_dir(dir);
}

static void fortune(void **state)
{
	static const char *ref = "assets/fortune-13m/reference/reference.safetensors";
	static const uint32_t prompt[3] = { 5, 7, 13 };	/* reference.json prompt_ids */
	struct nc_engine *e = open_model("assets/fortune-13m");
	struct st_set st = { 0 };
	char err[256], tn[24], ln[24];
	uint32_t n;

	assert_int_equal(e->cfg.dt_expert, KRNL_FMT_BF16);
	assert_int_equal(e->cfg.dt_head, KRNL_FMT_BF16);
	assert_int_equal(st_open_file(&st, ref, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(tn, sizeof(tn), "tokens_%d", i);
		snprintf(ln, sizeof(ln), "logits_%d", i);
		check_logits(e, ref, tn, ln, TOL);
		int32_t *toks = ref_tokens(&st, tn, &n);
		assert_int_equal(n, prompt[i] + 40);
		check_greedy(e, toks, prompt[i], 40);
		free(toks);
	}
	st_close(&st);
	nc_engine_close(e);
}

/* Eight different sequences decoded together give the same logits, bit for
 * bit, as each decoded alone: rows never mix in any kernel. */
static void batch_equals_alone(void **state)
{
	enum { NSEQ = 8 };
	struct nc_engine *e = open_model("assets/tiny-a");
	uint32_t V = e->cfg.vocab, len[NSEQ], slot[NSEQ], got[NSEQ] = { 0 };
	int32_t *ids[NSEQ];
	float *alone[NSEQ], *batch[NSEQ];
	struct fw_res r;
	char err[256];

	srand(1234);
	for (int s = 0; s < NSEQ; s++) {
		len[s] = 12 + (uint32_t)(rand() % 30);
		ids[s] = malloc(len[s] * sizeof(int32_t));
		for (uint32_t i = 0; i < len[s]; i++)
			ids[s][i] = rand() % (int)V;
		alone[s] = malloc((size_t)len[s] * V * sizeof(float));
		batch[s] = malloc((size_t)len[s] * V * sizeof(float));
		assert_int_equal(score_one(e, ids[s], len[s], alone[s]), 0);
	}
	for (int s = 0; s < NSEQ; s++)
		assert_int_equal(nc_engine_submit(e, ids[s], len[s], 1, FW_SUB_LOGITS, NULL, 0,
						  (uint64_t)s, &slot[s], err, sizeof(err)), 0);
	uint64_t steps0 = atomic_load(&e->ctrl->steps), rows0 = atomic_load(&e->ctrl->step_rows);
	for (uint32_t done = 0, total = 0; done < NSEQ;) {
		assert_int_equal(next_result(e, &r), 0);
		if (!(r.flags & FW_RF_LOGITS))
			continue;
		int s = (int)r.tag;
		assert_int_equal(r.pos, got[s]);
		assert_int_equal(nc_engine_take_logits(e, r.logits_row, batch[s] + (uint64_t)got[s] * V), 0);
		got[s]++;
		total++;
		if (got[s] == len[s])
			done++;
	}
	/* the batch really ran together: fewer steps than positions */
	uint64_t steps = atomic_load(&e->ctrl->steps) - steps0;
	uint64_t rows = atomic_load(&e->ctrl->step_rows) - rows0;
	printf("# batch: %llu rows in %llu steps\n", (unsigned long long)rows, (unsigned long long)steps);
	assert_true(steps * 2 < rows);
	for (int s = 0; s < NSEQ; s++) {
		if (memcmp(alone[s], batch[s], (size_t)len[s] * V * sizeof(float)))
			fail_msg("sequence %d: batched logits differ from alone (rel-L2 %.3g)", s,
				 rel_l2(batch[s], alone[s], (uint64_t)len[s] * V));
		free(ids[s]);
		free(alone[s]);
		free(batch[s]);
	}
	nc_engine_close(e);
}

/* In a batched step each selected expert is fetched once: expert weight
 * traffic equals distinct experts x expert size, and with 8 rows x top-4 over
 * 16 experts rows must share fetches. */
static void experts_fetched_once(void **state)
{
	enum { NSEQ = 8, GEN = 6 };
	struct nc_engine *e = open_model("assets/tiny-a");
	const struct fw_model_cfg *c = &e->cfg;
	uint64_t eb = krnl_expert_bytes(c->dt_expert, c->hidden, c->moe_inter);
	uint32_t slot;
	struct shim_stats st;
	struct fw_res r;
	char err[256];
	int32_t ids[4];

	shim_reset_stats(e->card);
	for (int s = 0; s < NSEQ; s++) {
		for (int i = 0; i < 4; i++)
			ids[i] = (s * 37 + i * 11) % (int)c->vocab;
		assert_int_equal(nc_engine_submit(e, ids, 4, GEN, 0, NULL, 0, 0, &slot, err,
						  sizeof(err)), 0);
	}
	for (int done = 0; done < NSEQ;) {
		assert_int_equal(next_result(e, &r), 0);
		done += (r.flags & FW_RF_LAST) != 0;
	}
	shim_get_stats(e->card, &st);
	uint64_t rows = atomic_load(&e->ctrl->step_rows);
	printf("# experts: %llu fetches served %llu (row, expert) pairs, %llu bytes\n",
	       (unsigned long long)st.experts_fetched, (unsigned long long)st.expert_rows,
	       (unsigned long long)st.expert_weight_bytes);
	assert_int_equal(st.expert_weight_bytes, st.experts_fetched * eb);
	assert_int_equal(st.expert_rows, rows * c->top_k * c->n_layers);
	assert_true(st.experts_fetched < st.expert_rows);
	/* at most every expert once per call (a layer of a step, or of one of
	 * its tiles of KRNL_MAX_BATCH rows) */
	assert_true(st.experts_fetched <= st.krnl_calls[KRNL_EXPERT_FFN] * c->n_experts);
	assert_true(st.krnl_calls[KRNL_EXPERT_FFN] <=
		    atomic_load(&e->ctrl->steps) * c->n_layers *
		    ((FW_MAX_ROWS + KRNL_MAX_BATCH - 1) / KRNL_MAX_BATCH));
	nc_engine_close(e);
}

/* The card checks prompt ids itself: a SUBMIT written straight to the ring
 * with an id outside the vocabulary is refused, and the card keeps serving. */
static void card_refuses_bad_ids(void **state)
{
	struct nc_engine *e = open_model("assets/tiny-a");
	struct fw_ctrl *c = e->ctrl;
	int32_t bad[3] = { 1, 9999, 2 }, out[3];
	struct fw_res r;

	assert_int_equal(shim_write(e->card, c->tok_addr + 5ull * c->prompt_cap * 4, bad,
				    sizeof(bad)), 0);
	uint32_t h = atomic_load(&c->cmd_head);
	c->cmd[h % FW_CMD_RING] = (struct fw_cmd){ .op = FW_OP_SUBMIT, .seq = 5, .n_prompt = 3,
						   .max_new = 1 };
	atomic_store(&c->cmd_head, h + 1);
	for (;;) {
		assert_int_equal(nc_engine_wait(e, &r, 10000), 1);
		if (r.kind == FW_RES_ACK && r.op == FW_OP_SUBMIT)
			break;
	}
	assert_int_equal(r.status, -FW_EINVAL);
	assert_int_equal(atomic_load(&c->state), FW_ST_RUNNING);
	bad[1] = 7;
	assert_int_equal(generate_one(e, bad, 3, 3, out), 0);
	nc_engine_close(e);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Long prompts cross many positions of KV cache and delta-rule state.  Where
 * two router scores nearly tie, a correct implementation may pick the other
 * expert and carry a decaying error for a while, so judge per position: the
 * median error and the share of positions above the tolerance. */
static void check_long(const char *model, const char *ref, uint32_t prompt_len)
{
	struct nc_engine *e = open_model(model);
	struct st_set st = { 0 };
	char err[256];
	uint32_t n = 0, V = e->cfg.vocab;
	uint64_t nl = 0, nd = 0;

	assert_int_equal(st_open_file(&st, ref, err, sizeof(err)), 0);
	int32_t *ids = ref_tokens(&st, "tokens", &n);
	float *want = ref_f32(&st, "logits", &nl);
	float *dec = ref_f32(&st, "decode_logits", &nd);
	assert_non_null(ids);
	assert_non_null(want);
	assert_non_null(dec);
	float *got = malloc((uint64_t)n * V * sizeof(float));
	double *err_t = malloc(n * sizeof(double));
	assert_int_equal(score_one(e, ids, n, got), 0);

	uint32_t above = 0, dec_above = 0, nd_rows = (uint32_t)(nd / V);
	for (uint32_t t = 0; t < n; t++) {
		err_t[t] = rel_l2(got + (uint64_t)t * V, want + (uint64_t)t * V, V);
		above += err_t[t] > TOL;
	}
	/* decode_logits[i]: prefill then one token at a time, position prompt_len-1+i */
	for (uint32_t i = 0; i < nd_rows; i++)
		dec_above += rel_l2(got + (uint64_t)(prompt_len - 1 + i) * V, dec + (uint64_t)i * V, V) > TOL;
	qsort(err_t, n, sizeof(double), cmp_double);
	printf("# %s: %u positions, median rel-L2 %.3g, p99 %.3g, above %.0e: %u; decode rows above: %u/%u\n",
	       ref, n, err_t[n / 2], err_t[n * 99 / 100], TOL, above, dec_above, nd_rows);
	assert_true(err_t[n / 2] <= TOL);
	assert_true(above * 20 <= n);		/* at most 5% of positions */
	assert_true(dec_above * 5 <= nd_rows);
	free(err_t);
	free(got);
	free(dec);
	free(want);
	free(ids);
	st_close(&st);
	nc_engine_close(e);
}

static void tiny_a_long(void **state)
{
	check_long("assets/tiny-a", "assets/tiny-a/tiny-a-long.safetensors", 300);
}

static void fortune_long(void **state)
{
	check_long("assets/fortune-13m", "assets/fortune-13m/reference/fortune-long.safetensors", 700);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tiny_a),
		cmocka_unit_test(tiny_a_old_dialect),
		cmocka_unit_test(mismatched_config),
		cmocka_unit_test(mtp_tensors_ignored),
		cmocka_unit_test(fortune),
		cmocka_unit_test(batch_equals_alone),
		cmocka_unit_test(experts_fetched_once),
		cmocka_unit_test(card_refuses_bad_ids),
		cmocka_unit_test(tiny_a_long),
		cmocka_unit_test(fortune_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
