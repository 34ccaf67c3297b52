/* config.c — read and validate a Qwen3-Next config.json into fw_model_cfg. */
#include "host/model/config.h"
#include "krnl_types.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
	const cJSON *root;
	const char *pfx;	/* file name or "config" for messages */
	char *err;
	size_t errlen;
};

static int fail(const struct ctx *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(const struct ctx *c, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->err && c->errlen) {
		n = snprintf(c->err, c->errlen, "%s: ", c->pfx);
		if (n >= 0 && (size_t)n < c->errlen) {
			va_start(ap, fmt);
			vsnprintf(c->err + n, c->errlen - n, fmt, ap);
			va_end(ap);
		}
	}
	return -code;
}

const char *nc_config_strerror(int err)
{
	static const char *const msg[] = {
		[0] = "success",
		[NC_CFG_ERR_IO] = "cannot read config",
		[NC_CFG_ERR_NOMEM] = "out of memory",
		[NC_CFG_ERR_JSON] = "config is not a JSON object",
		[NC_CFG_ERR_MISSING] = "required key missing",
		[NC_CFG_ERR_TYPE] = "key has the wrong type",
		[NC_CFG_ERR_RANGE] = "value out of range",
		[NC_CFG_ERR_UNSUPPORTED] = "unsupported model feature",
	};

	if (err < 0)
		err = -err;
	if ((size_t)err >= sizeof(msg) / sizeof(msg[0]))
		return "unknown error";
	return msg[err];
}

/* An integer-valued JSON number in [lo, hi]; key names it in messages. */
static int json_uint(const struct ctx *c, const cJSON *j, const char *key,
		     double lo, double hi, uint32_t *out)
{
	double d;

	if (!j)
		return fail(c, NC_CFG_ERR_MISSING, "%s: missing", key);
	if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble))
		return fail(c, NC_CFG_ERR_TYPE, "%s: must be an integer", key);
	d = j->valuedouble;
	if (!(d >= lo && d <= hi))
		return fail(c, NC_CFG_ERR_RANGE, "%s: %.17g is outside [%.0f, %.0f]",
			    key, d, lo, hi);
	*out = (uint32_t)d;
	return 0;
}

static const cJSON *item(const struct ctx *c, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(c->root, key);
}

struct ufield {
	const char *key;
	size_t off;
	double lo, hi;
};

#define U(k, f, l, h) { k, offsetof(struct fw_model_cfg, f), l, h }
static const struct ufield ufields[] = {
	U("hidden_size", hidden, 1, 65536),
	U("vocab_size", vocab, 1, 1 << 20),
	U("num_hidden_layers", n_layers, 1, FW_MAX_LAYERS),
	U("linear_num_key_heads", lin_nk, 1, 1024),
	U("linear_num_value_heads", lin_nv, 1, 1024),
	U("linear_key_head_dim", lin_dk, 1, 1024),
	U("linear_value_head_dim", lin_dv, 1, 1024),
	U("linear_conv_kernel_dim", conv_k, 1, 16),
	U("num_attention_heads", n_heads, 1, 1024),
	U("num_key_value_heads", n_kv_heads, 1, 1024),
	U("head_dim", head_dim, 2, 1024),
	U("num_experts", n_experts, 1, 4096),
	U("num_experts_per_tok", top_k, 1, 4096),
	U("moe_intermediate_size", moe_inter, 1, 262144),
	U("shared_expert_intermediate_size", shared_inter, 0, 262144),
	U("max_position_embeddings", max_ctx, 1, 1 << 24),
};
#undef U

static int parse_sizes(const struct ctx *c, struct fw_model_cfg *cfg)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof(ufields) / sizeof(ufields[0]); i++) {
		rc = json_uint(c, item(c, ufields[i].key), ufields[i].key,
			       ufields[i].lo, ufields[i].hi,
			       (uint32_t *)((char *)cfg + ufields[i].off));
		if (rc)
			return rc;
	}
	return 0;
}

static int check_sizes(const struct ctx *c, const struct fw_model_cfg *cfg)
{
	if (cfg->top_k > cfg->n_experts)
		return fail(c, NC_CFG_ERR_RANGE,
			    "num_experts_per_tok: %u exceeds num_experts %u",
			    cfg->top_k, cfg->n_experts);
	if (cfg->n_heads % cfg->n_kv_heads)
		return fail(c, NC_CFG_ERR_RANGE,
			    "num_attention_heads: %u is not a multiple of num_key_value_heads %u",
			    cfg->n_heads, cfg->n_kv_heads);
	if (cfg->lin_nv % cfg->lin_nk)
		return fail(c, NC_CFG_ERR_RANGE,
			    "linear_num_value_heads: %u is not a multiple of linear_num_key_heads %u",
			    cfg->lin_nv, cfg->lin_nk);
	return 0;
}

/* A number in (0, hi]; required. */
static int json_pos(const struct ctx *c, const cJSON *j, const char *key,
		    double hi, double *out)
{
	if (!j)
		return fail(c, NC_CFG_ERR_MISSING, "%s: missing", key);
	if (!cJSON_IsNumber(j))
		return fail(c, NC_CFG_ERR_TYPE, "%s: must be a number", key);
	if (!(j->valuedouble > 0 && j->valuedouble <= hi))
		return fail(c, NC_CFG_ERR_RANGE, "%s: %.17g is outside (0, %g]",
			    key, j->valuedouble, hi);
	*out = j->valuedouble;
	return 0;
}

static int parse_model_type(const struct ctx *c)
{
	const cJSON *j = item(c, "model_type");

	if (!j)
		return fail(c, NC_CFG_ERR_MISSING, "model_type: missing");
	if (!cJSON_IsString(j))
		return fail(c, NC_CFG_ERR_TYPE, "model_type: must be a string");
	if (strcmp(j->valuestring, "qwen3_next"))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "model_type: '%s' unsupported (only qwen3_next)",
			    j->valuestring);
	return 0;
}

static int parse_layer_types(const struct ctx *c, const cJSON *lt,
			     struct fw_model_cfg *cfg)
{
	const cJSON *e;
	uint32_t i = 0;

	if (!cJSON_IsArray(lt))
		return fail(c, NC_CFG_ERR_TYPE, "layer_types: must be an array");
	if (cJSON_GetArraySize(lt) != (int)cfg->n_layers)
		return fail(c, NC_CFG_ERR_RANGE,
			    "layer_types: %d entries but num_hidden_layers is %u",
			    cJSON_GetArraySize(lt), cfg->n_layers);
	cJSON_ArrayForEach(e, lt) {
		if (!cJSON_IsString(e))
			return fail(c, NC_CFG_ERR_TYPE,
				    "layer_types[%u]: must be a string", i);
		if (!strcmp(e->valuestring, "full_attention"))
			cfg->layer_attn[i] = 1;
		else if (strcmp(e->valuestring, "linear_attention"))
			return fail(c, NC_CFG_ERR_UNSUPPORTED,
				    "layer_types[%u]: '%s' unsupported", i,
				    e->valuestring);
		i++;
	}
	return 0;
}

/* transformers 5 lists layer types; 4.57 gives an attention interval. */
static int parse_layers(const struct ctx *c, struct fw_model_cfg *cfg)
{
	const cJSON *lt = item(c, "layer_types");
	uint32_t iv = 0, i;
	int rc;

	if (lt && !cJSON_IsNull(lt))
		return parse_layer_types(c, lt, cfg);
	rc = json_uint(c, item(c, "full_attention_interval"),
		       "full_attention_interval", 1, FW_MAX_LAYERS, &iv);
	if (rc == -NC_CFG_ERR_MISSING)
		return fail(c, NC_CFG_ERR_MISSING,
			    "layer_types and full_attention_interval: both missing");
	if (rc)
		return rc;
	for (i = 0; i < cfg->n_layers; i++)
		cfg->layer_attn[i] = (i + 1) % iv == 0;
	return 0;
}

/* rope_parameters (v5) wins over the top-level keys (4.57), as in v5. */
static const cJSON *rope_key(const struct ctx *c, const cJSON *rp,
			     const char *key)
{
	const cJSON *j = rp ? cJSON_GetObjectItemCaseSensitive(rp, key) : NULL;

	return j ? j : item(c, key);
}

static int check_rope_kind(const struct ctx *c, const cJSON *rp)
{
	const cJSON *rs = item(c, "rope_scaling");
	const cJSON *ty = rp ? cJSON_GetObjectItemCaseSensitive(rp, "rope_type")
			     : NULL;

	if (rs && !cJSON_IsNull(rs))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "rope_scaling: unsupported (only default RoPE)");
	if (ty && !cJSON_IsString(ty))
		return fail(c, NC_CFG_ERR_TYPE,
			    "rope_parameters.rope_type: must be a string");
	if (ty && strcmp(ty->valuestring, "default"))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "rope_parameters.rope_type: '%s' unsupported (only default)",
			    ty->valuestring);
	return 0;
}

static int parse_rope(const struct ctx *c, struct fw_model_cfg *cfg)
{
	const cJSON *rp = item(c, "rope_parameters");
	double theta = 0, prf = 0;
	uint32_t rd;
	int rc;

	if (rp && cJSON_IsNull(rp))
		rp = NULL;
	if (rp && !cJSON_IsObject(rp))
		return fail(c, NC_CFG_ERR_TYPE,
			    "rope_parameters: must be an object");
	rc = check_rope_kind(c, rp);
	if (!rc)
		rc = json_pos(c, rope_key(c, rp, "rope_theta"), "rope_theta",
			      1e12, &theta);
	if (!rc)
		rc = json_pos(c, rope_key(c, rp, "partial_rotary_factor"),
			      "partial_rotary_factor", 1, &prf);
	if (rc)
		return rc;
	/* transformers truncates head_dim * factor to an int */
	rd = (uint32_t)(cfg->head_dim * prf);
	if (rd < 2 || rd % 2 || rd > cfg->head_dim)
		return fail(c, NC_CFG_ERR_RANGE,
			    "partial_rotary_factor: %g x head_dim %u gives rope dim %u (must be even, 2..head_dim)",
			    prf, cfg->head_dim, rd);
	cfg->rope_dim = rd;
	cfg->rope_theta = (float)theta;
	return 0;
}

static int parse_eps(const struct ctx *c, struct fw_model_cfg *cfg)
{
	double eps = 0;
	int rc;

	rc = json_pos(c, item(c, "rms_norm_eps"), "rms_norm_eps", 0.1, &eps);
	if (rc)
		return rc;
	/* the card computes in float: a tiny eps would become 0 there */
	if (eps < FLT_MIN)
		return fail(c, NC_CFG_ERR_RANGE,
			    "rms_norm_eps: %g underflows float", eps);
	cfg->rms_eps = (float)eps;
	return 0;
}

/* null, an id, or a list of ids (the first one is used). */
static int parse_eos(const struct ctx *c, struct fw_model_cfg *cfg)
{
	const cJSON *j = item(c, "eos_token_id");
	uint32_t id = 0;
	int rc;

	cfg->eos_id = -1;
	if (!j || cJSON_IsNull(j))
		return 0;
	if (cJSON_IsArray(j)) {
		const cJSON *e;

		cJSON_ArrayForEach(e, j) {
			rc = json_uint(c, e, "eos_token_id[]", 0,
				       cfg->vocab - 1, &id);
			if (rc)
				return rc;
			if (cfg->eos_id < 0)
				cfg->eos_id = (int32_t)id;
		}
		return 0;
	}
	rc = json_uint(c, j, "eos_token_id", 0, cfg->vocab - 1, &id);
	if (!rc)
		cfg->eos_id = (int32_t)id;
	return rc;
}

static int parse_bool(const struct ctx *c, const char *key, int dflt,
		      uint32_t *out)
{
	const cJSON *j = item(c, key);

	if (!j) {
		*out = (uint32_t)dflt;
		return 0;
	}
	if (!cJSON_IsBool(j))
		return fail(c, NC_CFG_ERR_TYPE, "%s: must be true or false",
			    key);
	*out = cJSON_IsTrue(j);
	return 0;
}

static int parse_dtype(const struct ctx *c, struct fw_model_cfg *cfg)
{
	const cJSON *j = item(c, "dtype");
	const char *key = "dtype";

	if (!j || cJSON_IsNull(j)) {
		j = item(c, "torch_dtype");
		key = "torch_dtype";
	}
	uint32_t dt = KRNL_FMT_F32;

	if (j && !cJSON_IsNull(j)) {
		if (!cJSON_IsString(j))
			return fail(c, NC_CFG_ERR_TYPE, "%s: must be a string", key);
		if (!strcmp(j->valuestring, "bfloat16"))
			dt = KRNL_FMT_BF16;
		else if (!strcmp(j->valuestring, "float16"))
			dt = KRNL_FMT_F16;
	}
	cfg->dt_attn = cfg->dt_expert = cfg->dt_shared = cfg->dt_head = cfg->dt_router = dt;
	return 0;
}

/* Keys that would change the math if set: refuse rather than guess. */
static int check_unsupported(const struct ctx *c)
{
	const cJSON *j = item(c, "mlp_only_layers");
	uint32_t step = 0;
	int rc;

	if (j && !cJSON_IsArray(j))
		return fail(c, NC_CFG_ERR_TYPE,
			    "mlp_only_layers: must be an array");
	if (j && cJSON_GetArraySize(j))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "mlp_only_layers: dense layers unsupported (must be empty)");
	j = item(c, "decoder_sparse_step");
	if (j) {
		rc = json_uint(c, j, "decoder_sparse_step", 0, 1e9, &step);
		if (rc)
			return rc;
		if (step != 1)
			return fail(c, NC_CFG_ERR_UNSUPPORTED,
				    "decoder_sparse_step: %u unsupported (must be 1)",
				    step);
	}
	j = item(c, "quantization_config");
	if (j && !cJSON_IsNull(j)) {
		const cJSON *m = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "quant_method") : NULL;
		const cJSON *bs = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "weight_block_size") : NULL;

		if (!cJSON_IsString(m))
			return fail(c, NC_CFG_ERR_TYPE,
				    "quantization_config: an object with a quant_method string");
		if (strcmp(m->valuestring, "fp8") && strcmp(m->valuestring, "nextcard"))
			return fail(c, NC_CFG_ERR_UNSUPPORTED,
				    "quantization_config.quant_method '%.40s' unsupported (fp8 blocks and"
				    " nextcard's own pre-quantized checkpoints load; else quantize the"
				    " original with --quant)", m->valuestring);
		/* the loader reads FP8 scales per 128 x 128 block */
		if (bs && (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 ||
			   !cJSON_IsNumber(cJSON_GetArrayItem(bs, 0)) ||
			   cJSON_GetArrayItem(bs, 0)->valuedouble != 128 ||
			   !cJSON_IsNumber(cJSON_GetArrayItem(bs, 1)) ||
			   cJSON_GetArrayItem(bs, 1)->valuedouble != 128))
			return fail(c, NC_CFG_ERR_UNSUPPORTED,
				    "quantization_config.weight_block_size: only [128, 128] blocks load");
	}
	if (cJSON_IsTrue(item(c, "attention_bias")))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "attention_bias: true unsupported");
	if (cJSON_IsTrue(item(c, "tie_word_embeddings")))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "tie_word_embeddings: true unsupported (lm_head must be its own tensor)");
	if (cJSON_IsTrue(item(c, "use_sliding_window")))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "use_sliding_window: true unsupported");
	j = item(c, "hidden_act");
	if (j && (!cJSON_IsString(j) || strcmp(j->valuestring, "silu")))
		return fail(c, NC_CFG_ERR_UNSUPPORTED,
			    "hidden_act: unsupported (only \"silu\")");
	return 0;
}

static int parse_root(const struct ctx *c, struct fw_model_cfg *cfg)
{
	int rc;

	rc = parse_model_type(c);
	if (!rc)
		rc = check_unsupported(c);
	if (!rc)
		rc = parse_sizes(c, cfg);
	if (!rc)
		rc = check_sizes(c, cfg);
	if (!rc)
		rc = parse_layers(c, cfg);
	if (!rc)
		rc = parse_rope(c, cfg);
	if (!rc)
		rc = parse_eps(c, cfg);
	if (!rc)
		rc = parse_eos(c, cfg);
	if (!rc)
		rc = parse_bool(c, "norm_topk_prob", 1, &cfg->norm_topk);
	if (!rc)
		rc = parse_dtype(c, cfg);
	return rc;
}

static int parse_named(const char *json, size_t len, struct fw_model_cfg *cfg,
		       const char *pfx, char *err, size_t errlen)
{
	struct ctx c = { .pfx = pfx, .err = err, .errlen = errlen };
	cJSON *root;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (len > NC_CONFIG_MAX_BYTES)
		return fail(&c, NC_CFG_ERR_IO, "%zu bytes exceeds the %u-byte limit",
			    len, NC_CONFIG_MAX_BYTES);
	root = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return fail(&c, NC_CFG_ERR_JSON, "%s",
			    root ? "not a JSON object" : "not valid JSON");
	}
	c.root = root;
	rc = parse_root(&c, cfg);
	cJSON_Delete(root);
	if (rc)
		memset(cfg, 0, sizeof(*cfg));
	return rc;
}

int nc_config_parse(const char *json, size_t len, struct fw_model_cfg *cfg,
		    char *err, size_t errlen)
{
	return parse_named(json, len, cfg, "config", err, errlen);
}

static int read_small(const char *path, char **buf, size_t *len,
		      const struct ctx *c)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return fail(c, NC_CFG_ERR_IO, "cannot open: %s",
			    strerror(errno));
	*buf = malloc(NC_CONFIG_MAX_BYTES + 1);
	if (!*buf) {
		fclose(f);
		return fail(c, NC_CFG_ERR_NOMEM, "out of memory");
	}
	n = fread(*buf, 1, NC_CONFIG_MAX_BYTES + 1, f);
	if (ferror(f) || n > NC_CONFIG_MAX_BYTES) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		return fail(c, NC_CFG_ERR_IO, "%s",
			    n > NC_CONFIG_MAX_BYTES ? "file larger than 1 MiB"
						    : "read error");
	}
	fclose(f);
	*len = n;
	return 0;
}

int nc_config_load(const char *dir, struct fw_model_cfg *cfg, char *err,
		   size_t errlen)
{
	struct ctx c = { .err = err, .errlen = errlen };
	size_t plen = strlen(dir) + sizeof("/config.json");
	char *path = malloc(plen), *buf = NULL;
	size_t len = 0;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	c.pfx = dir;
	if (!path)
		return fail(&c, NC_CFG_ERR_NOMEM, "out of memory");
	snprintf(path, plen, "%s/config.json", dir);
	c.pfx = path;
	rc = read_small(path, &buf, &len, &c);
	if (!rc)
		rc = parse_named(buf, len, cfg, path, err, errlen);
	free(buf);
	free(path);
	return rc;
}

int nc_config_load_path(const char *path, struct fw_model_cfg *c, char *err, size_t errlen)
{
	size_t len = strlen(path);
	FILE *f;
	char *buf;
	long n;
	int rc;

	if (len < 5 || strcmp(path + len - 5, ".json"))
		return nc_config_load(path, c, err, errlen);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > NC_CONFIG_MAX_BYTES ||
	    fseek(f, 0, SEEK_SET)) {
		snprintf(err, errlen, "%s: cannot read", path);
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		snprintf(err, errlen, "%s: cannot read", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[n] = 0;
	rc = nc_config_parse(buf, (size_t)n, c, err, errlen);
	free(buf);
	return rc;
}
