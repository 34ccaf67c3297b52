/* cmd_synth.c — `nextcard synth --config CONFIG.json --out DIR`: a random-weight
 * checkpoint in Hugging Face layout for any Qwen3-Next config, so benchmarks and
 * tests run models of real shapes without downloading weights (docs/synth.md).
 *
 * Writes DIR/config.json (the input with --layers applied), DIR/model.safetensors
 * (one file, tensors named and shaped as Qwen publishes them) and
 * DIR/generation_config.json.  Every tensor draws from its own generator seeded
 * by (--seed, tensor name): the same seed gives a byte-identical file, and the
 * first N layers of a model are the same whatever --layers is.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/st_write.h"

#define USAGE "usage: nextcard synth --config CONFIG.json --out DIR [--layers N] [--seed S]" \
	      " [--dtype bf16|f16|f32]"
#define PROGRESS_MIN_BYTES (64ull << 20)	/* smaller files print no progress */
#define MAX_THREADS 16
#define MIN_SHARE (64u << 10)	/* elements: below this a thread is not worth starting */

/* How a tensor's values are drawn. */
enum init_kind {
	INIT_NORMAL,	/* N(0, std): projections, embeddings, router, conv */
	INIT_ONE,	/* 1 + N(0, std): plain (non-offset) norm weight */
	INIT_ALOG,	/* log(U(1, 16)): decay rate A = exp(A_log) */
	INIT_DTBIAS,	/* inverse softplus of dt, dt log-uniform in [1e-3, 1e-1] */
};

struct init {
	enum init_kind kind;
	float std;
};

struct synth {
	struct st_writer w;
	struct init *init;	/* one per tensor of w, same index */
	size_t icap;
	enum st_dtype dt;
	uint64_t seed;
	float std;		/* initializer_range */
	double params;
	int threads;		/* each chunk is split over this many */
	uint64_t done, total, shown;
	int progress;
};

/* One thread's share of a chunk: elements [e0, e0 + n) of one tensor. */
struct job {
	const struct init *in;
	enum st_dtype dt;
	uint64_t key, e0, n;
	uint8_t *out;		/* where element e0 goes */
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nextcard synth: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* SplitMix64 as a counter: the i-th output of the stream whose state starts at key.
 * Any element is drawn without drawing the ones before it, so a chunk splits over
 * threads and the file does not depend on how many there are. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t key, uint64_t i)
{
	return mix(key + (i + 1) * 0x9e3779b97f4a7c15ull);
}

/* A stream per tensor: FNV-1a of the name mixed with the seed. */
static uint64_t tensor_key(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	return mix(h ^ mix(seed + 0x9e3779b97f4a7c15ull));
}

static double uniform(uint64_t key, uint64_t i)	/* [0, 1) */
{
	return (double)(int64_t)(rnd(key, i) >> 11) * 0x1p-53;
}

/* Box-Muller in float: elements 2p and 2p + 1 are the pair drawn from outputs 2p, 2p + 1.
 * u1 lies in (0, 1] down to 2^-53, so log stays finite and the tails reach 8.5 sigma. */
static void normal_pair(uint64_t key, uint64_t p, float *z0, float *z1)
{
	float u1 = (float)(int64_t)((rnd(key, 2 * p) >> 11) + 1) * 0x1p-53f;
	float u2 = (float)(int64_t)(rnd(key, 2 * p + 1) >> 40) * 0x1p-24f;
	float rad = sqrtf(-2.0f * logf(u1)), sn, cs;

	sincosf(2.0f * (float)M_PI * u2, &sn, &cs);
	*z0 = rad * cs;
	*z1 = rad * sn;
}

static void store(enum st_dtype dt, uint8_t *out, uint64_t i, float f)
{
	uint16_t h;

	if (dt == ST_F32) {
		memcpy(out + 4 * i, &f, 4);
		return;
	}
	h = dt == ST_BF16 ? st_f32_to_bf16(f) : st_f32_to_f16(f);
	memcpy(out + 2 * i, &h, 2);
}

/* e0 is even: chunks and shares start on a Box-Muller pair. */
static void *gen(void *arg)
{
	const struct job *j = arg;
	float add = j->in->kind == INIT_ONE ? 1.0f : 0.0f, std = j->in->std, z[2];
	double dt;

	for (uint64_t i = 0; i < j->n; i++) {
		uint64_t e = j->e0 + i;

		switch (j->in->kind) {
		case INIT_ALOG:
			z[0] = (float)log(1.0 + 15.0 * uniform(j->key, e));
			break;
		case INIT_DTBIAS:
			dt = exp(log(1e-3) + uniform(j->key, e) * (log(1e-1) - log(1e-3)));
			z[0] = (float)log(expm1(dt));
			break;
		default:
			if (!(e & 1))
				normal_pair(j->key, e / 2, &z[0], &z[1]);
			z[0] = add + std * z[e & 1];
			break;
		}
		store(j->dt, j->out, i, z[0]);
	}
	return NULL;
}

static void progress(struct synth *s, int last)
{
	if (!s->progress || (!last && s->done - s->shown < (16ull << 20)))
		return;
	s->shown = s->done;
	fprintf(stderr, "\rsynth: %llu/%llu MiB%s", (unsigned long long)(s->done >> 20),
		(unsigned long long)(s->total >> 20), last ? "\n" : "");
}

static int fill(void *ctx, const struct st_wtensor *t, uint64_t off, void *buf, uint64_t n)
{
	struct synth *s = ctx;
	struct job jobs[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	int started[MAX_THREADS] = { 0 };
	uint64_t es = st_dtype_size(t->dtype), ne = n / es, e0 = off / es, share;
	int nt = s->threads;

	if (e0 & 1)
		return -1;	/* the writer's chunks are 4 MiB: cannot happen */
	while (nt > 1 && ne / (uint64_t)nt < MIN_SHARE)
		nt--;
	share = (ne / (uint64_t)nt + 1) & ~1ull;
	for (int i = 0; i < nt; i++) {
		uint64_t b = (uint64_t)i * share < ne ? (uint64_t)i * share : ne;

		jobs[i] = (struct job){
			.in = &s->init[t - s->w.t], .dt = t->dtype,
			.key = tensor_key(s->seed, t->name), .e0 = e0 + b,
			.n = (i == nt - 1 || b + share > ne) ? ne - b : share,
			.out = (uint8_t *)buf + b * es,
		};
		if (i)
			started[i] = !pthread_create(&tid[i], NULL, gen, &jobs[i]);
	}
	gen(&jobs[0]);
	for (int i = 1; i < nt; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			gen(&jobs[i]);	/* no thread: do its share here */
	}
	s->done += n;
	progress(s, 0);
	return 0;
}

/* Declare one tensor; the name is printf-formatted. */
static int add(struct synth *s, enum init_kind kind, float std, int ndim, const uint64_t *shape,
	       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int add(struct synth *s, enum init_kind kind, float std, int ndim, const uint64_t *shape,
	       const char *fmt, ...)
{
	char name[160], err[256];
	va_list ap;
	double numel = 1;
	int rc;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (s->w.count == s->icap) {
		size_t cap = s->icap ? 2 * s->icap : 256;
		struct init *v = realloc(s->init, cap * sizeof(*v));

		if (!v)
			return fail("out of memory");
		s->init = v;
		s->icap = cap;
	}
	rc = st_writer_add(&s->w, name, s->dt, ndim, shape, err, sizeof(err));
	if (rc < 0)
		return fail("%s", err);
	s->init[rc] = (struct init){ kind, std };
	for (int i = 0; i < ndim; i++)
		numel *= (double)shape[i];
	s->params += numel;
	return 0;
}

#define SHAPE(...) (int)(sizeof((uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t)), \
		   (const uint64_t[]){ __VA_ARGS__ }

/* Gated DeltaNet: in_proj_qkvz is laid out per key-head group [q k v z]. */
static int add_linear(struct synth *s, const struct fw_model_cfg *c, const char *p)
{
	uint64_t h = c->hidden, nk = c->lin_nk, nv = c->lin_nv, dk = c->lin_dk, dv = c->lin_dv;
	uint64_t r = nv / nk, ch = 2 * nk * dk + nv * dv, k = c->conv_k;
	float std = s->std;
	int rc = 0;

	rc |= add(s, INIT_NORMAL, std, SHAPE(nk * (2 * dk + 2 * r * dv), h),
		  "%slinear_attn.in_proj_qkvz.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(2 * nv, h), "%slinear_attn.in_proj_ba.weight", p);
	rc |= add(s, INIT_NORMAL, (float)(1.0 / sqrt((double)k)), SHAPE(ch, 1, k),
		  "%slinear_attn.conv1d.weight", p);
	rc |= add(s, INIT_ALOG, 0, SHAPE(nv), "%slinear_attn.A_log", p);
	rc |= add(s, INIT_DTBIAS, 0, SHAPE(nv), "%slinear_attn.dt_bias", p);
	rc |= add(s, INIT_ONE, 0.02f, SHAPE(dv), "%slinear_attn.norm.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(h, nv * dv), "%slinear_attn.out_proj.weight", p);
	return rc;
}

/* Gated attention: q_proj holds [query | gate] per head. */
static int add_attention(struct synth *s, const struct fw_model_cfg *c, const char *p)
{
	uint64_t h = c->hidden, nh = c->n_heads, kv = c->n_kv_heads * (uint64_t)c->head_dim;
	uint64_t hd = c->head_dim;
	float std = s->std;
	int rc = 0;

	rc |= add(s, INIT_NORMAL, std, SHAPE(2 * nh * hd, h), "%sself_attn.q_proj.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(kv, h), "%sself_attn.k_proj.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(kv, h), "%sself_attn.v_proj.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(h, nh * hd), "%sself_attn.o_proj.weight", p);
	rc |= add(s, INIT_NORMAL, 0.02f, SHAPE(hd), "%sself_attn.q_norm.weight", p);
	rc |= add(s, INIT_NORMAL, 0.02f, SHAPE(hd), "%sself_attn.k_norm.weight", p);
	return rc;
}

static int add_moe(struct synth *s, const struct fw_model_cfg *c, const char *p)
{
	uint64_t h = c->hidden, in = c->moe_inter, si = c->shared_inter;
	float std = s->std;
	int rc = 0;

	rc |= add(s, INIT_NORMAL, std, SHAPE(c->n_experts, h), "%smlp.gate.weight", p);
	for (uint32_t e = 0; !rc && e < c->n_experts; e++) {
		char x[96];

		snprintf(x, sizeof(x), "%smlp.experts.%u.", p, e);
		rc |= add(s, INIT_NORMAL, std, SHAPE(in, h), "%sgate_proj.weight", x);
		rc |= add(s, INIT_NORMAL, std, SHAPE(in, h), "%sup_proj.weight", x);
		rc |= add(s, INIT_NORMAL, std, SHAPE(h, in), "%sdown_proj.weight", x);
	}
	if (!si)	/* no shared expert: the card places none either */
		return rc;
	rc |= add(s, INIT_NORMAL, std, SHAPE(si, h), "%smlp.shared_expert.gate_proj.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(si, h), "%smlp.shared_expert.up_proj.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(h, si), "%smlp.shared_expert.down_proj.weight", p);
	rc |= add(s, INIT_NORMAL, std, SHAPE(1, h), "%smlp.shared_expert_gate.weight", p);
	return rc;
}

/* Zero-centred RMSNorms (the model multiplies by 1 + w) get N(0, 0.02). */
static int add_tensors(struct synth *s, const struct fw_model_cfg *c)
{
	uint64_t h = c->hidden, v = c->vocab;
	char p[48];
	int rc = 0;

	rc |= add(s, INIT_NORMAL, s->std, SHAPE(v, h), "model.embed_tokens.weight");
	for (uint32_t l = 0; !rc && l < c->n_layers; l++) {
		snprintf(p, sizeof(p), "model.layers.%u.", l);
		rc |= add(s, INIT_NORMAL, 0.02f, SHAPE(h), "%sinput_layernorm.weight", p);
		rc |= c->layer_attn[l] ? add_attention(s, c, p) : add_linear(s, c, p);
		rc |= add(s, INIT_NORMAL, 0.02f, SHAPE(h), "%spost_attention_layernorm.weight", p);
		rc |= add_moe(s, c, p);
	}
	rc |= add(s, INIT_NORMAL, 0.02f, SHAPE(h), "model.norm.weight");
	rc |= add(s, INIT_NORMAL, s->std, SHAPE(v, h), "lm_head.weight");
	return rc;
}

static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return fail("%s: cannot open: %s", path, strerror(errno));
	*buf = malloc(NC_CONFIG_MAX_BYTES + 1);
	if (!*buf) {
		fclose(f);
		return fail("out of memory");
	}
	n = fread(*buf, 1, NC_CONFIG_MAX_BYTES + 1, f);
	if (ferror(f) || n > NC_CONFIG_MAX_BYTES) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		return fail("%s: %s", path, n > NC_CONFIG_MAX_BYTES ? "larger than 1 MiB" :
			    "read error");
	}
	fclose(f);
	(*buf)[n] = 0;
	*len = n;
	return 0;
}

static int write_text(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;
	int bad;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return fail("%s: cannot create: %s", path, strerror(errno));
	bad = fputs(text, f) < 0 || fputc('\n', f) < 0;
	if (fclose(f) || bad)
		return fail("%s: write failed: %s", path, strerror(errno));
	return 0;
}

/* Parse and validate; "config: " is dropped from the message, the path named instead. */
static int parse_cfg(const char *path, const char *text, struct fw_model_cfg *c)
{
	char err[256];
	const char *m = err;

	if (!nc_config_parse(text, strlen(text), c, err, sizeof(err)))
		return 0;
	if (!strncmp(m, "config: ", 8))
		m += 8;
	return fail("%s: %s", path, m);
}

/* Keep the first n layers: num_hidden_layers and layer_types (when present) follow;
 * a full_attention_interval keeps its pattern by itself. */
static int cut_layers(cJSON *root, uint32_t n)
{
	cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
	cJSON *num = cJSON_CreateNumber(n);

	if (!num || !cJSON_ReplaceItemInObjectCaseSensitive(root, "num_hidden_layers", num)) {
		cJSON_Delete(num);
		return fail("out of memory");
	}
	while (cJSON_IsArray(lt) && cJSON_GetArraySize(lt) > (int)n)
		cJSON_DeleteItemFromArray(lt, cJSON_GetArraySize(lt) - 1);
	return 0;
}

static int init_range(const cJSON *root, const char *path, float *std)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "initializer_range");

	*std = 0.02f;
	if (!j || cJSON_IsNull(j))
		return 0;
	if (!cJSON_IsNumber(j) || !(j->valuedouble > 0 && j->valuedouble <= 1))
		return fail("%s: initializer_range must be a number in (0, 1]", path);
	*std = (float)j->valuedouble;
	return 0;
}

/* generation_config.json: the token ids the config names, as transformers writes it. */
static int write_gen_config(const char *dir, const cJSON *root)
{
	static const char *const keys[] = { "bos_token_id", "eos_token_id", "pad_token_id",
					    "transformers_version" };
	cJSON *g = cJSON_CreateObject();
	char *text = NULL;
	int rc = 1;

	if (!g || !cJSON_AddTrueToObject(g, "_from_model_config"))
		goto out;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
		cJSON *d;

		if (!j || cJSON_IsNull(j))
			continue;
		d = cJSON_Duplicate(j, 1);
		if (!d || !cJSON_AddItemToObject(g, keys[i], d)) {
			cJSON_Delete(d);
			goto out;
		}
	}
	text = cJSON_Print(g);
	if (text)
		rc = write_text(dir, "generation_config.json", text);
out:
	if (rc && !text)
		fail("out of memory");
	free(text);
	cJSON_Delete(g);
	return rc;
}

/* 1 when path holds a safetensors file that synth did not write (or one it cannot
 * read): overwriting it could destroy real weights.  0 when absent or ours. */
static int foreign_model(const char *path)
{
	FILE *f = fopen(path, "rb");
	const cJSON *md, *gen;
	uint8_t le[8];
	uint64_t n = 0;
	cJSON *root = NULL;
	char *h = NULL;
	int ours = 0;

	if (!f)
		return errno != ENOENT;
	if (fread(le, 1, 8, f) == 8) {
		for (int i = 7; i >= 0; i--)
			n = n << 8 | le[i];
		h = n <= ST_MAX_HEADER ? malloc(n + 1) : NULL;
	}
	if (h && fread(h, 1, n, f) == n)
		root = cJSON_ParseWithLength(h, n);
	md = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
	gen = cJSON_GetObjectItemCaseSensitive(md, "generator");
	ours = cJSON_IsString(gen) && !strcmp(gen->valuestring, "nextcard synth");
	cJSON_Delete(root);
	free(h);
	fclose(f);
	return !ours;
}

static int make_dir(const char *dir)
{
	struct stat st;
	char idx[4096];

	if (mkdir(dir, 0755) && errno != EEXIST)
		return fail("%s: cannot create directory: %s", dir, strerror(errno));
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return fail("%s: not a directory", dir);
	if (access(dir, W_OK))
		return fail("%s: not writable: %s", dir, strerror(errno));
	/* a shard index would win over model.safetensors when the directory is loaded */
	snprintf(idx, sizeof(idx), "%s/model.safetensors.index.json", dir);
	if (!access(idx, F_OK))
		return fail("%s: holds a sharded checkpoint (model.safetensors.index.json);"
			    " use an empty directory", dir);
	snprintf(idx, sizeof(idx), "%s/model.safetensors", dir);
	if (foreign_model(idx))
		return fail("%s: not written by nextcard synth; will not overwrite it", idx);
	return 0;
}

static int parse_dtype(const char *s, enum st_dtype *dt)
{
	if (!strcmp(s, "bf16"))
		*dt = ST_BF16;
	else if (!strcmp(s, "f16"))
		*dt = ST_F16;
	else if (!strcmp(s, "f32"))
		*dt = ST_F32;
	else
		return -1;
	return 0;
}

struct opts {
	const char *config, *out, *layers, *seed, *dtype;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "config", required_argument, 0, 'c' }, { "out", required_argument, 0, 'o' },
		{ "layers", required_argument, 0, 'l' }, { "seed", required_argument, 0, 's' },
		{ "dtype", required_argument, 0, 'd' },	 { 0, 0, 0, 0 },
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'o': o->out = optarg; break;
		case 'l': o->layers = optarg; break;
		case 's': o->seed = optarg; break;
		case 'd': o->dtype = optarg; break;
		default:
			fail("unknown or incomplete option (%s)", USAGE);
			return 2;
		}
	}
	if (!o->config || !o->out || optind < argc) {
		fail("--config and --out are required (%s)", USAGE);
		return 2;
	}
	return 0;
}

/* The config to write: the input with --layers applied, re-validated as written. */
static int load_config(const struct opts *o, struct synth *s, struct fw_model_cfg *c,
		       char **text, cJSON **root)
{
	char path[4096], *buf = NULL;
	struct stat st;
	uint32_t n = 0;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s", o->config);
	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		snprintf(path, sizeof(path), "%s/config.json", o->config);
	if (read_file(path, &buf, &len))
		return 1;
	rc = parse_cfg(path, buf, c);
	if (!rc && o->layers && nc_parse_u32(o->layers, 1, c->n_layers, &n)) {
		fail("--layers '%s': must be 1..%u (the config has %u layers)", o->layers,
		     c->n_layers, c->n_layers);
		rc = 2;
	}
	if (!rc) {
		*root = cJSON_ParseWithLength(buf, len);
		if (!*root)
			rc = fail("out of memory");
	}
	if (!rc && n)
		rc = cut_layers(*root, n);
	if (!rc)
		rc = init_range(*root, path, &s->std);
	if (!rc) {
		*text = cJSON_Print(*root);
		rc = *text ? parse_cfg(path, *text, c) : fail("out of memory");
	}
	free(buf);
	return rc;
}

static int write_model(struct synth *s, const char *dir, const char *seed)
{
	char path[4096], err[512];
	int rc;

	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	if (st_writer_meta(&s->w, "format", "pt", err, sizeof(err)) ||
	    st_writer_meta(&s->w, "generator", "nextcard synth", err, sizeof(err)) ||
	    st_writer_meta(&s->w, "seed", seed, err, sizeof(err)))
		return fail("%s", err);
	s->total = s->w.data_bytes;
	s->progress = isatty(STDERR_FILENO) && s->total >= PROGRESS_MIN_BYTES;
	rc = st_writer_write(&s->w, path, fill, s, err, sizeof(err));
	if (rc)
		return fail("%s", err);
	progress(s, 1);
	return 0;
}

int cmd_synth(int argc, char **argv)
{
	struct opts o = { 0 };
	struct synth s = { .dt = ST_BF16, .seed = 1 };
	struct fw_model_cfg c;
	struct timespec t0, t1;
	cJSON *root = NULL;
	char *text = NULL, seed[24];
	long ncpu;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	if (o.dtype && parse_dtype(o.dtype, &s.dt)) {
		fail("--dtype '%s': must be bf16, f16 or f32", o.dtype);
		return 2;
	}
	if (o.seed && nc_parse_u64(o.seed, 0, UINT64_MAX, &s.seed)) {
		fail("--seed '%s': must be a non-negative integer", o.seed);
		return 2;
	}
	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)s.seed);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s.threads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (int)ncpu;
	rc = load_config(&o, &s, &c, &text, &root);
	if (!rc)
		rc = make_dir(o.out);
	if (!rc)
		rc = add_tensors(&s, &c);
	if (!rc)
		rc = write_text(o.out, "config.json", text);
	if (!rc)
		rc = write_gen_config(o.out, root);
	if (!rc)
		rc = write_model(&s, o.out, seed);
	if (!rc) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("synth: %.0f parameters (%.3f G), %u layers, %llu bytes %s"
		       " -> %s/model.safetensors (seed %s, %.1f s)\n", s.params, s.params / 1e9, c.n_layers,
		       (unsigned long long)st_writer_file_bytes(&s.w), st_dtype_name(s.dt), o.out,
		       seed, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	free(text);
	cJSON_Delete(root);
	st_writer_free(&s.w);
	free(s.init);
	return rc;
}
