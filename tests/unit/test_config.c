/* test_config.c — config.json parsing in both dialects, and rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/config.h"
#include "krnl_types.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void parse_file(const char *path, struct fw_model_cfg *cfg)
{
	char err[256] = "", *js;
	size_t len;
	int rc;

	js = slurp(path, &len);
	rc = nc_config_parse(js, len, cfg, err, sizeof(err));
	free(js);
	if (rc)
		fail_msg("%s: rc %d: %s", path, rc, err);
}

static void expect_layers(const struct fw_model_cfg *c, int interval)
{
	uint32_t i;

	for (i = 0; i < FW_MAX_LAYERS; i++)
		assert_int_equal(c->layer_attn[i],
				 i < c->n_layers && (i + 1) % interval == 0);
}

static void check_tiny_a(const struct fw_model_cfg *c)
{
	assert_int_equal(c->hidden, 64);
	assert_int_equal(c->vocab, 512);
	assert_int_equal(c->n_layers, 4);
	expect_layers(c, 4);
	assert_true(c->rms_eps == 1e-6f);
	assert_int_equal(c->lin_nk, 2);
	assert_int_equal(c->lin_nv, 4);
	assert_int_equal(c->lin_dk, 16);
	assert_int_equal(c->lin_dv, 24);
	assert_int_equal(c->conv_k, 4);
	assert_int_equal(c->n_heads, 4);
	assert_int_equal(c->n_kv_heads, 2);
	assert_int_equal(c->head_dim, 32);
	assert_int_equal(c->rope_dim, 8);
	assert_true(c->rope_theta == 10000.0f);
	assert_int_equal(c->n_experts, 16);
	assert_int_equal(c->top_k, 4);
	assert_int_equal(c->moe_inter, 32);
	assert_int_equal(c->shared_inter, 48);
	assert_int_equal(c->norm_topk, 1);
	assert_int_equal(c->max_ctx, 4096);
	assert_int_equal(c->eos_id, -1);
	assert_int_equal(c->dt_attn, KRNL_FMT_F32);
}

static void test_tiny_a(void **state)
{
	struct fw_model_cfg c;
	char err[256];

	parse_file("assets/tiny-a/config.json", &c);
	check_tiny_a(&c);
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(nc_config_load("assets/tiny-a", &c, err, sizeof(err)), 0);
	check_tiny_a(&c);
}

static void test_fortune(void **state)
{
	struct fw_model_cfg c;
	char err[256];

	assert_int_equal(nc_config_load("assets/fortune-13m", &c, err,
					sizeof(err)), 0);
	assert_int_equal(c.hidden, 192);
	assert_int_equal(c.vocab, 4096);
	assert_int_equal(c.n_layers, 8);
	expect_layers(&c, 4);
	assert_true(c.rms_eps == 1e-6f);
	assert_int_equal(c.lin_nk, 2);
	assert_int_equal(c.lin_nv, 4);
	assert_int_equal(c.lin_dk, 48);
	assert_int_equal(c.lin_dv, 48);
	assert_int_equal(c.conv_k, 4);
	assert_int_equal(c.n_heads, 4);
	assert_int_equal(c.n_kv_heads, 2);
	assert_int_equal(c.head_dim, 64);
	assert_int_equal(c.rope_dim, 16);
	assert_true(c.rope_theta == 10000.0f);
	assert_int_equal(c.n_experts, 32);
	assert_int_equal(c.top_k, 4);
	assert_int_equal(c.moe_inter, 64);
	assert_int_equal(c.shared_inter, 192);
	assert_int_equal(c.norm_topk, 1);
	assert_int_equal(c.max_ctx, 2048);
	assert_int_equal(c.eos_id, 4093);
	assert_int_equal(c.dt_attn, KRNL_FMT_BF16);
}

static void test_80b(void **state)
{
	struct fw_model_cfg c;

	parse_file("tests/data/loader/qwen3-next-80b-a3b.config.json", &c);
	assert_int_equal(c.hidden, 2048);
	assert_int_equal(c.vocab, 151936);
	assert_int_equal(c.n_layers, 48);
	expect_layers(&c, 4);
	assert_true(c.rms_eps == 1e-6f);
	assert_int_equal(c.lin_nk, 16);
	assert_int_equal(c.lin_nv, 32);
	assert_int_equal(c.lin_dk, 128);
	assert_int_equal(c.lin_dv, 128);
	assert_int_equal(c.conv_k, 4);
	assert_int_equal(c.n_heads, 16);
	assert_int_equal(c.n_kv_heads, 2);
	assert_int_equal(c.head_dim, 256);
	assert_int_equal(c.rope_dim, 64);
	assert_true(c.rope_theta == 1e7f);
	assert_int_equal(c.n_experts, 512);
	assert_int_equal(c.top_k, 10);
	assert_int_equal(c.moe_inter, 512);
	assert_int_equal(c.shared_inter, 512);
	assert_int_equal(c.norm_topk, 1);
	assert_int_equal(c.max_ctx, 262144);
	assert_int_equal(c.eos_id, 151645);
	assert_int_equal(c.dt_attn, KRNL_FMT_BF16);
}

static cJSON *load_json(const char *path)
{
	size_t len;
	char *js = slurp(path, &len);
	cJSON *j = cJSON_ParseWithLength(js, len);

	free(js);
	assert_non_null(j);
	return j;
}

static int parse_obj(const cJSON *j, struct fw_model_cfg *c, char *err,
		     size_t errlen)
{
	char *js = cJSON_PrintUnformatted(j);
	int rc;

	assert_non_null(js);
	rc = nc_config_parse(js, strlen(js), c, err, errlen);
	free(js);
	return rc;
}

/* Rewrite a transformers-5 config the way 4.57 would have written it. */
static void to_457(cJSON *j, int interval)
{
	cJSON *rp = cJSON_DetachItemFromObject(j, "rope_parameters");
	cJSON *dt = cJSON_DetachItemFromObject(j, "dtype");

	cJSON_DeleteItemFromObject(j, "layer_types");
	cJSON_DeleteItemFromObject(j, "partial_rotary_factor");
	cJSON_AddNumberToObject(j, "full_attention_interval", interval);
	cJSON_AddItemToObject(j, "rope_theta",
			      cJSON_DetachItemFromObject(rp, "rope_theta"));
	cJSON_AddItemToObject(j, "partial_rotary_factor",
			      cJSON_DetachItemFromObject(rp,
							 "partial_rotary_factor"));
	cJSON_AddItemToObject(j, "torch_dtype", dt);
	cJSON_Delete(rp);
}

static void test_dialects_agree(void **state)
{
	static const char *const paths[] = {
		"assets/tiny-a/config.json", "assets/fortune-13m/config.json",
	};
	struct fw_model_cfg a, b;
	char err[256] = "";
	size_t i;
	cJSON *j;

	for (i = 0; i < 2; i++) {
		memset(&a, 0x11, sizeof(a));
		memset(&b, 0x22, sizeof(b));
		parse_file(paths[i], &a);
		j = load_json(paths[i]);
		to_457(j, 4);
		assert_null(cJSON_GetObjectItem(j, "layer_types"));
		assert_null(cJSON_GetObjectItem(j, "rope_parameters"));
		if (parse_obj(j, &b, err, sizeof(err)))
			fail_msg("%s rewritten: %s", paths[i], err);
		assert_memory_equal(&a, &b, sizeof(a));
		/* and a different interval really changes the layers */
		cJSON_ReplaceItemInObject(j, "full_attention_interval",
					  cJSON_CreateNumber(2));
		assert_int_equal(parse_obj(j, &b, err, sizeof(err)), 0);
		assert_int_equal(b.layer_attn[1], 1);
		assert_true(memcmp(&a, &b, sizeof(a)) != 0);
		cJSON_Delete(j);
	}
}

/* A change to tiny-a: key (a.b for one level down) set to JSON or deleted. */
struct mut {
	const char *key;
	const char *val;	/* NULL: delete the key */
	int code;		/* 0: accepted */
	const char *needle;
};

static const struct mut muts[] = {
	{ "hidden_size", NULL, NC_CFG_ERR_MISSING, "config: hidden_size: missing" },
	{ "hidden_size", "\"64\"", NC_CFG_ERR_TYPE, "hidden_size: must be an integer" },
	{ "hidden_size", "64.5", NC_CFG_ERR_TYPE, "hidden_size: must be an integer" },
	{ "hidden_size", "true", NC_CFG_ERR_TYPE, "hidden_size" },
	{ "hidden_size", "0", NC_CFG_ERR_RANGE, "hidden_size: 0 is outside [1, 65536]" },
	{ "hidden_size", "-64", NC_CFG_ERR_RANGE, "hidden_size" },
	{ "hidden_size", "65537", NC_CFG_ERR_RANGE, "hidden_size" },
	{ "hidden_size", "1e300", NC_CFG_ERR_RANGE, "hidden_size" },
	{ "vocab_size", "1048577", NC_CFG_ERR_RANGE, "vocab_size" },
	{ "num_hidden_layers", "129", NC_CFG_ERR_RANGE, "num_hidden_layers" },
	{ "num_hidden_layers", "5", NC_CFG_ERR_RANGE,
	  "layer_types: 4 entries but num_hidden_layers is 5" },
	{ "num_experts", "4097", NC_CFG_ERR_RANGE, "num_experts" },
	{ "num_experts_per_tok", "17", NC_CFG_ERR_RANGE,
	  "num_experts_per_tok: 17 exceeds num_experts 16" },
	{ "num_experts_per_tok", "0", NC_CFG_ERR_RANGE, "num_experts_per_tok" },
	{ "num_key_value_heads", "3", NC_CFG_ERR_RANGE,
	  "num_attention_heads: 4 is not a multiple of num_key_value_heads 3" },
	{ "linear_num_value_heads", "5", NC_CFG_ERR_RANGE,
	  "linear_num_value_heads: 5 is not a multiple of linear_num_key_heads 2" },
	{ "linear_conv_kernel_dim", "0", NC_CFG_ERR_RANGE, "linear_conv_kernel_dim" },
	{ "linear_conv_kernel_dim", "17", NC_CFG_ERR_RANGE, "linear_conv_kernel_dim" },
	{ "linear_key_head_dim", NULL, NC_CFG_ERR_MISSING, "linear_key_head_dim" },
	{ "max_position_embeddings", "0", NC_CFG_ERR_RANGE, "max_position_embeddings" },
	{ "moe_intermediate_size", "null", NC_CFG_ERR_TYPE, "moe_intermediate_size" },
	{ "shared_expert_intermediate_size", "0", 0, NULL },
	{ "layer_types", "[\"linear_attention\"]", NC_CFG_ERR_RANGE,
	  "layer_types: 1 entries" },
	{ "layer_types", "[\"linear_attention\",\"sliding_attention\",\"full_attention\",\"full_attention\"]",
	  NC_CFG_ERR_UNSUPPORTED, "layer_types[1]: 'sliding_attention' unsupported" },
	{ "layer_types", "[1,2,3,4]", NC_CFG_ERR_TYPE, "layer_types[0]: must be a string" },
	{ "layer_types", "\"full_attention\"", NC_CFG_ERR_TYPE, "layer_types: must be an array" },
	{ "layer_types", NULL, NC_CFG_ERR_MISSING,
	  "layer_types and full_attention_interval: both missing" },
	{ "mlp_only_layers", "[1]", NC_CFG_ERR_UNSUPPORTED, "mlp_only_layers" },
	{ "mlp_only_layers", "7", NC_CFG_ERR_TYPE, "mlp_only_layers" },
	{ "mlp_only_layers", NULL, 0, NULL },
	{ "decoder_sparse_step", "2", NC_CFG_ERR_UNSUPPORTED,
	  "decoder_sparse_step: 2 unsupported" },
	{ "decoder_sparse_step", NULL, 0, NULL },
	{ "model_type", "\"qwen3_moe\"", NC_CFG_ERR_UNSUPPORTED,
	  "model_type: 'qwen3_moe' unsupported" },
	{ "model_type", NULL, NC_CFG_ERR_MISSING, "model_type: missing" },
	{ "model_type", "3", NC_CFG_ERR_TYPE, "model_type" },
	{ "rope_parameters.partial_rotary_factor", "0.3", NC_CFG_ERR_RANGE,
	  "rope dim 9" },
	{ "rope_parameters.partial_rotary_factor", "1.5", NC_CFG_ERR_RANGE,
	  "partial_rotary_factor" },
	{ "rope_parameters.partial_rotary_factor", "0", NC_CFG_ERR_RANGE,
	  "partial_rotary_factor" },
	{ "rope_parameters.partial_rotary_factor", "1", 0, NULL },
	{ "rope_parameters.rope_theta", "-5", NC_CFG_ERR_RANGE, "rope_theta" },
	{ "rope_parameters.rope_theta", "\"big\"", NC_CFG_ERR_TYPE, "rope_theta" },
	{ "rope_parameters.rope_type", "\"yarn\"", NC_CFG_ERR_UNSUPPORTED,
	  "rope_type: 'yarn' unsupported" },
	{ "rope_parameters", "[]", NC_CFG_ERR_TYPE, "rope_parameters" },
	{ "rope_scaling", "{\"type\":\"yarn\",\"factor\":4}", NC_CFG_ERR_UNSUPPORTED,
	  "rope_scaling" },
	{ "rms_norm_eps", "0", NC_CFG_ERR_RANGE, "rms_norm_eps" },
	{ "rms_norm_eps", "1e-60", NC_CFG_ERR_RANGE, "rms_norm_eps: 1e-60 underflows float" },
	{ "rms_norm_eps", "\"1e-6\"", NC_CFG_ERR_TYPE, "rms_norm_eps" },
	{ "rms_norm_eps", NULL, NC_CFG_ERR_MISSING, "rms_norm_eps" },
	{ "eos_token_id", "600", NC_CFG_ERR_RANGE, "eos_token_id" },
	{ "eos_token_id", "\"</s>\"", NC_CFG_ERR_TYPE, "eos_token_id" },
	{ "eos_token_id", "[5, 7000]", NC_CFG_ERR_RANGE, "eos_token_id[]" },
	{ "norm_topk_prob", "1", NC_CFG_ERR_TYPE, "norm_topk_prob" },
	{ "dtype", "5", NC_CFG_ERR_TYPE, "dtype" },
	{ "attention_bias", "true", NC_CFG_ERR_UNSUPPORTED, "attention_bias" },
	{ "tie_word_embeddings", "true", NC_CFG_ERR_UNSUPPORTED, "tie_word_embeddings" },
	{ "hidden_act", "\"gelu\"", NC_CFG_ERR_UNSUPPORTED, "hidden_act" },
	{ "some_future_key", "{\"x\":[1,2]}", 0, NULL },
};

static void apply(cJSON *j, const char *key, const char *val)
{
	char top[64];
	const char *dot = strchr(key, '.');
	cJSON *parent = j, *v;

	if (dot) {
		snprintf(top, sizeof(top), "%.*s", (int)(dot - key), key);
		parent = cJSON_GetObjectItem(j, top);
		assert_non_null(parent);
		key = dot + 1;
	}
	cJSON_DeleteItemFromObject(parent, key);
	if (!val)
		return;
	v = cJSON_Parse(val);
	assert_non_null(v);
	cJSON_AddItemToObject(parent, key, v);
}

static void test_mutations(void **state)
{
	struct fw_model_cfg c, zero;
	char err[256];
	size_t i;
	cJSON *j;
	int rc;

	memset(&zero, 0, sizeof(zero));
	for (i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		j = load_json("assets/tiny-a/config.json");
		apply(j, muts[i].key, muts[i].val);
		strcpy(err, "(untouched)");
		rc = parse_obj(j, &c, err, sizeof(err));
		cJSON_Delete(j);
		if (rc != -muts[i].code ||
		    (muts[i].needle && !strstr(err, muts[i].needle)))
			fail_msg("case %zu (%s=%s): rc %d (want %d) err '%s' (want '%s')",
				 i, muts[i].key, muts[i].val ? muts[i].val : "deleted",
				 rc, -muts[i].code, err,
				 muts[i].needle ? muts[i].needle : "");
		if (rc)	/* a rejected config leaves nothing half-filled */
			assert_memory_equal(&c, &zero, sizeof(c));
	}
}

static int eos_of(const char *val, int32_t *eos)
{
	struct fw_model_cfg c;
	char err[256];
	cJSON *j = load_json("assets/tiny-a/config.json");
	int rc;

	apply(j, "eos_token_id", val);
	rc = parse_obj(j, &c, err, sizeof(err));
	cJSON_Delete(j);
	*eos = c.eos_id;
	return rc;
}

static void test_eos_and_dtype(void **state)
{
	struct fw_model_cfg c;
	char err[256];
	int32_t e;
	cJSON *j;

	assert_int_equal(eos_of("null", &e), 0);
	assert_int_equal(e, -1);
	assert_int_equal(eos_of(NULL, &e), 0);
	assert_int_equal(e, -1);
	assert_int_equal(eos_of("[]", &e), 0);
	assert_int_equal(e, -1);
	assert_int_equal(eos_of("[311, 2, 9]", &e), 0);
	assert_int_equal(e, 311);
	assert_int_equal(eos_of("511", &e), 0);
	assert_int_equal(e, 511);

	j = load_json("assets/tiny-a/config.json");
	apply(j, "quantization_config", "{\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}");
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	apply(j, "quantization_config", "{\"quant_method\": \"awq\"}");
	assert_true(parse_obj(j, &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "awq"));
	apply(j, "quantization_config", "{\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}");
	assert_true(parse_obj(j, &c, err, sizeof(err)) < 0);
	apply(j, "quantization_config", NULL);
	apply(j, "dtype", "\"float16\"");
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	assert_int_equal(c.dt_attn, KRNL_FMT_F16);
	assert_int_equal(c.dt_expert, KRNL_FMT_F16);
	/* dtype wins over torch_dtype; absent means f32 */
	apply(j, "torch_dtype", "\"float32\"");
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	assert_int_equal(c.dt_head, KRNL_FMT_F16);
	apply(j, "dtype", NULL);
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	assert_int_equal(c.dt_attn, KRNL_FMT_F32);
	apply(j, "torch_dtype", NULL);
	apply(j, "norm_topk_prob", "false");
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	assert_int_equal(c.dt_attn, KRNL_FMT_F32);
	assert_int_equal(c.norm_topk, 0);
	/* rope_parameters wins over the top-level 4.57 keys */
	apply(j, "rope_theta", "5");
	apply(j, "rope_parameters.rope_theta", "123456");
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	assert_true(c.rope_theta == 123456.0f);
	apply(j, "rope_parameters.rope_theta", NULL);
	assert_int_equal(parse_obj(j, &c, err, sizeof(err)), 0);
	assert_true(c.rope_theta == 5.0f);
	cJSON_Delete(j);
}

static void test_hostile(void **state)
{
	static const char *const bad[] = {
		"", "[]", "null", "\"qwen3_next\"", "{", "{\"model_type\":",
		"{\"model_type\":\"qwen3_next\"}", "\x00\x01\x02",
	};
	struct fw_model_cfg c;
	char err[256], *big, *js;
	size_t i, len, n;
	unsigned seed = 12345;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		rc = nc_config_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err));
		assert_true(rc < 0);
		assert_true(strncmp(err, "config: ", 8) == 0);
	}
	/* deep nesting */
	big = malloc(200001);
	assert_non_null(big);
	memset(big, '[', 100000);
	memset(big + 100000, ']', 100000);
	assert_int_equal(nc_config_parse(big, 200000, &c, err, sizeof(err)),
			 -NC_CFG_ERR_JSON);
	free(big);
	big = calloc(1, NC_CONFIG_MAX_BYTES + 2);
	assert_non_null(big);
	assert_int_equal(nc_config_parse(big, NC_CONFIG_MAX_BYTES + 1, &c, err,
					 sizeof(err)), -NC_CFG_ERR_IO);
	free(big);
	/* tiny error buffers are still terminated */
	assert_int_equal(nc_config_parse("[]", 2, &c, err, 4), -NC_CFG_ERR_JSON);
	assert_int_equal(strlen(err), 3);
	assert_int_equal(nc_config_parse("[]", 2, &c, NULL, 0), -NC_CFG_ERR_JSON);
	/* seeded byte flips never crash and always say why on failure */
	js = slurp("assets/fortune-13m/config.json", &len);
	for (i = 0; i < 3000; i++) {
		char *m = malloc(len);

		assert_non_null(m);
		memcpy(m, js, len);
		for (n = 0; n < 3; n++)
			m[rand_r(&seed) % len] = (char)rand_r(&seed);
		err[0] = 0;
		rc = nc_config_parse(m, len, &c, err, sizeof(err));
		assert_true(rc == 0 || (rc < 0 && err[0]));
		free(m);
	}
	free(js);
	assert_int_equal(nc_config_load("/nonexistent/model", &c, err,
					sizeof(err)), -NC_CFG_ERR_IO);
	assert_non_null(strstr(err, "/nonexistent/model/config.json: cannot open"));
	assert_string_equal(nc_config_strerror(-NC_CFG_ERR_UNSUPPORTED),
			    "unsupported model feature");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_a),
		cmocka_unit_test(test_fortune),
		cmocka_unit_test(test_80b),
		cmocka_unit_test(test_dialects_agree),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_eos_and_dtype),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
