/* cmd_quantize.c — `nextcard quantize --model DIR --out DIR --quant SPEC`: a
 * pre-quantized checkpoint that loads without quantizing again.
 *
 * OUT/model.safetensors holds every tensor of the input under its own name.
 * A weight of a class the plan quantizes to int8/int4 becomes U8
 * [rows, row_bytes]: exactly the card rows of nc_quant_encode_row(), with
 * __metadata__ "nextcard.format.<name>" = "<format>:<cols>" ("int4:64:2048").
 * A class planned as a float format is stored as that float dtype; every other
 * tensor is copied as it is, except FP8 weights, which the card cannot hold:
 * those not quantized are widened to BF16, and their *_scale_inv tensors are
 * dropped.  OUT/config.json gets "quantization_config": {"quant_method":
 * "nextcard", "experts": "int4:64", ...}; tokenizer and generation files are
 * copied.  Classes (host/model/quant.h): see class_pats below.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
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
#include "model/quant.h"
#include "model/safetensors.h"
#include "model/st_write.h"

#define USAGE "usage: nextcard quantize --model DIR --out DIR --quant SPEC [--threads N]" \
	      " (SPEC: int8[:G] | int4[:G] | int4-all[:G] | experts=F,attn=F,shared=F,head=F" \
	      " [,rtn])"
#define MAX_THREADS 64
#define MAX_CONFIG (16u << 20)

/* Which weights are in which class; mtp.* never is (checked first). */
static const struct {
	const char *pat;	/* fnmatch pattern, '*' crossing dots */
	enum nc_tclass c;
} class_pats[] = {
	{ "*.mlp.experts.*.gate_proj.weight", NC_TC_EXPERT },
	{ "*.mlp.experts.*.up_proj.weight", NC_TC_EXPERT },
	{ "*.mlp.experts.*.down_proj.weight", NC_TC_EXPERT },
	{ "*.mlp.shared_expert.gate_proj.weight", NC_TC_SHARED },
	{ "*.mlp.shared_expert.up_proj.weight", NC_TC_SHARED },
	{ "*.mlp.shared_expert.down_proj.weight", NC_TC_SHARED },
	{ "*.linear_attn.in_proj_qkvz.weight", NC_TC_ATTN },
	{ "*.linear_attn.in_proj_ba.weight", NC_TC_ATTN },
	{ "*.linear_attn.out_proj.weight", NC_TC_ATTN },
	{ "*.self_attn.q_proj.weight", NC_TC_ATTN },
	{ "*.self_attn.k_proj.weight", NC_TC_ATTN },
	{ "*.self_attn.v_proj.weight", NC_TC_ATTN },
	{ "*.self_attn.o_proj.weight", NC_TC_ATTN },
	{ "lm_head.weight", NC_TC_HEAD },
	{ "model.embed_tokens.weight", NC_TC_HEAD },
};

/* Files copied as they are when the model has them. */
static const char *const side_files[] = {
	"tokenizer.json", "tokenizer_config.json", "generation_config.json",
	"special_tokens_map.json", "vocab.json", "merges.txt", "chat_template.jinja",
};

enum action {
	ACT_COPY,	/* the input bytes */
	ACT_FLOAT,	/* read as float, store as the output float dtype */
	ACT_QUANT,	/* card rows of job->dt */
};

/* One output tensor, same index as in the writer. */
struct job {
	const struct st_tensor *src;
	enum action act;
	uint32_t dt;		/* ACT_QUANT: the card format */
	uint64_t rows;
	uint32_t cols;
	uint64_t row_bytes;
	int cls;		/* enum nc_tclass, or -1 */
};

struct quantize {
	struct st_set in;
	struct st_writer w;
	struct job *jobs;	/* w.count of them */
	struct nc_quant_plan plan;
	uint32_t block;		/* FP8 weight_block_size */
	int threads;

	uint8_t *rows;		/* a chunk's whole rows, encoded */
	float *fbuf;		/* a chunk's floats (ACT_FLOAT) */
	uint64_t rows_cap;

	/* progress */
	uint64_t done, total;
	struct timespec t0, shown;
	int progress;
	int failed;		/* a reader thread's error */
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nextcard quantize: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static double since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) * 1e-9;
}

static int tclass_of(const char *name)
{
	if (!strncmp(name, "mtp.", 4))
		return -1;
	for (size_t i = 0; i < sizeof(class_pats) / sizeof(class_pats[0]); i++)
		if (!fnmatch(class_pats[i].pat, name, 0))
			return (int)class_pats[i].c;
	return -1;
}

static int is_fp8(const struct st_tensor *t)
{
	return t->dtype == ST_F8_E4M3 || t->dtype == ST_F8_E5M2;
}

static int is_float(const struct st_tensor *t)
{
	return t->dtype == ST_F32 || t->dtype == ST_BF16 || t->dtype == ST_F16 ||
	       t->dtype == ST_F64 || is_fp8(t);
}

/* NAME_scale_inv of an FP8 weight NAME: consumed, not written. */
static int is_fp8_scale(const struct st_set *s, const struct st_tensor *t)
{
	size_t n = strlen(t->name), k = strlen(ST_FP8_SCALE_SUFFIX);
	const struct st_tensor *w;
	char *base;

	if (n <= k || strcmp(t->name + n - k, ST_FP8_SCALE_SUFFIX))
		return 0;
	base = strndup(t->name, n - k);
	w = base ? st_find(s, base) : NULL;
	free(base);
	return w && is_fp8(w);
}

/* ---- the plan of the output file ----------------------------------------- */

static enum st_dtype float_dtype(uint32_t fmt)
{
	return fmt == KRNL_FMT_F32 ? ST_F32 : fmt == KRNL_FMT_F16 ? ST_F16 : ST_BF16;
}

/* Decide what becomes of input tensor t and declare its output. */
static int plan_tensor(struct quantize *q, const struct st_tensor *t)
{
	struct job j = { .src = t, .act = ACT_COPY, .cls = tclass_of(t->name) };
	enum st_dtype odt = t->dtype;
	uint64_t shape[2];
	char err[256], meta[64], *key;
	int rc;

	if (j.cls >= 0 && !q->plan.set[j.cls])
		j.cls = -1;
	if (j.cls >= 0) {
		if (t->ndim != 2 || !is_float(t))
			return fail("tensor '%s': a %s weight must be a 2-D float matrix, not %d-D %s",
				    t->name, nc_tclass_name(j.cls), t->ndim,
				    st_dtype_name(t->dtype));
		if (t->shape[1] > UINT32_MAX)
			return fail("tensor '%s': %llu columns is too many", t->name,
				    (unsigned long long)t->shape[1]);
		j.dt = q->plan.dt[j.cls];
		j.rows = t->shape[0];
		j.cols = (uint32_t)t->shape[1];
		if (krnl_fmt_quant(KRNL_DT_FMT(j.dt))) {
			j.act = ACT_QUANT;
			j.row_bytes = nc_quant_row_bytes(j.dt, j.cols);
			odt = ST_U8;
		} else {
			odt = float_dtype(KRNL_DT_FMT(j.dt));
			j.act = odt == t->dtype ? ACT_COPY : ACT_FLOAT;
		}
	} else if (is_fp8(t)) {
		odt = ST_BF16;
		j.act = ACT_FLOAT;
	}
	if (is_fp8(t)) {
		rc = st_read_f32_fp8(&q->in, t, 0, 0, NULL, q->block);
		if (rc)
			return fail("tensor '%s': %s (%s%s, block %u)", t->name, st_strerror(rc),
				    t->name, ST_FP8_SCALE_SUFFIX, q->block);
	}
	if (j.act == ACT_QUANT) {
		shape[0] = j.rows;
		shape[1] = j.row_bytes;
		rc = st_writer_add(&q->w, t->name, odt, 2, shape, err, sizeof(err));
	} else {
		rc = st_writer_add(&q->w, t->name, odt, t->ndim, t->shape, err, sizeof(err));
	}
	if (rc < 0)
		return fail("%s", err);
	q->jobs[rc] = j;
	if (j.act == ACT_QUANT) {
		if (asprintf(&key, NC_QUANT_META_PREFIX "%s", t->name) < 0)
			return fail("out of memory");
		nc_quant_meta_format(j.dt, j.cols, meta, sizeof(meta));
		rc = st_writer_meta(&q->w, key, meta, err, sizeof(err));
		free(key);
		if (rc < 0)
			return fail("%s", err);
	}
	return 0;
}

static int plan_all(struct quantize *q)
{
	char err[256];

	q->jobs = calloc(st_count(&q->in) + 1, sizeof(*q->jobs));
	if (!q->jobs)
		return fail("out of memory");
	if (st_writer_meta(&q->w, "format", "pt", err, sizeof(err)) < 0)
		return fail("%s", err);
	for (size_t i = 0; i < st_count(&q->in); i++) {
		const struct st_tensor *t = st_at(&q->in, i);

		if (is_fp8_scale(&q->in, t))
			continue;
		if (plan_tensor(q, t))
			return 1;
	}
	return 0;
}

/* ---- filling the output, a chunk at a time -------------------------------- */

struct part {
	struct quantize *q;
	const struct job *j;
	uint64_t r0, r1;	/* rows of the job */
	uint8_t *dst;		/* row r0's bytes */
	int rc;
};

static void *encode_rows(void *arg)
{
	struct part *p = arg;
	const struct job *j = p->j;
	float *x = malloc(((size_t)j->cols + 1) * sizeof(*x));
	uint64_t r;

	if (!x) {
		p->rc = -ST_ERR_NOMEM;
		return NULL;
	}
	for (r = p->r0; r < p->r1 && !p->rc; r++) {
		p->rc = st_read_f32_fp8(&p->q->in, j->src, r * j->cols, j->cols, x, p->q->block);
		if (!p->rc)
			nc_quant_encode_row_ex(j->dt, x, j->cols,
					       p->dst + (r - p->r0) * j->row_bytes, p->q->plan.round);
	}
	free(x);
	return NULL;
}

/* Rows [r0, r1) of job j encoded into q->rows, split over the threads. */
static int encode_span(struct quantize *q, const struct job *j, uint64_t r0, uint64_t r1)
{
	struct part part[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	uint64_t n = r1 - r0, per;
	int nt = q->threads, i, started = 0, rc = 0;

	if ((uint64_t)nt > n)
		nt = (int)n;
	if (nt < 1)
		nt = 1;
	per = (n + (uint64_t)nt - 1) / (uint64_t)nt;
	for (i = 0; i < nt; i++) {
		uint64_t a = r0 + (uint64_t)i * per, b = a + per < r1 ? a + per : r1;

		part[i] = (struct part){ .q = q, .j = j, .r0 = a < r1 ? a : r1, .r1 = b };
		part[i].dst = q->rows + (part[i].r0 - r0) * j->row_bytes;
	}
	for (i = 1; i < nt; i++)
		if (!pthread_create(&tid[i], NULL, encode_rows, &part[i]))
			started = i;
		else
			break;
	encode_rows(&part[0]);
	for (i = started + 1; i < nt; i++)	/* threads that did not start */
		encode_rows(&part[i]);
	for (i = 1; i <= started; i++)
		pthread_join(tid[i], NULL);
	for (i = 0; i < nt; i++)
		if (part[i].rc && !rc)
			rc = part[i].rc;
	return rc;
}

static int grow(struct quantize *q, uint64_t bytes)
{
	uint8_t *p;

	if (bytes <= q->rows_cap)
		return 0;
	p = realloc(q->rows, bytes);
	if (!p)
		return -1;
	q->rows = p;
	q->rows_cap = bytes;
	return 0;
}

static int fill_quant(struct quantize *q, const struct job *j, uint64_t off, uint8_t *buf,
		      uint64_t n)
{
	uint64_t r0 = off / j->row_bytes, r1 = (off + n + j->row_bytes - 1) / j->row_bytes;
	int rc;

	if (grow(q, (r1 - r0) * j->row_bytes))
		return -ST_ERR_NOMEM;
	rc = encode_span(q, j, r0, r1);
	if (rc)
		return rc;
	memcpy(buf, q->rows + (off - r0 * j->row_bytes), n);
	return 0;
}

static int fill_float(struct quantize *q, const struct job *j, enum st_dtype odt, uint64_t off,
		      uint8_t *buf, uint64_t n)
{
	uint64_t es = st_dtype_size(odt), e0 = off / es, ne = n / es, i;
	uint16_t h;
	int rc;

	if (!q->fbuf) {
		q->fbuf = malloc(ST_WRITE_CHUNK / 2 * sizeof(float));
		if (!q->fbuf)
			return -ST_ERR_NOMEM;
	}
	rc = st_read_f32_fp8(&q->in, j->src, e0, ne, odt == ST_F32 ? (float *)buf : q->fbuf,
			     q->block);
	if (rc || odt == ST_F32)
		return rc;
	for (i = 0; i < ne; i++) {
		h = odt == ST_BF16 ? st_f32_to_bf16(q->fbuf[i]) : st_f32_to_f16(q->fbuf[i]);
		memcpy(buf + 2 * i, &h, 2);
	}
	return 0;
}

static void progress(struct quantize *q, uint64_t n)
{
	int tty = isatty(2);

	q->done += n;
	if (since(&q->t0) < 1.0 || since(&q->shown) < (tty ? 0.25 : 5.0))
		return;
	clock_gettime(CLOCK_MONOTONIC, &q->shown);
	fprintf(stderr, "%snextcard quantize: %3.0f%% (%.1f of %.1f MiB written)%s",
		tty ? "\r" : "", 100.0 * (double)q->done / (double)(q->total ? q->total : 1),
		(double)q->done / 1048576.0, (double)q->total / 1048576.0, tty ? "" : "\n");
	q->progress = tty;
}

static int fill(void *ctx, const struct st_wtensor *t, uint64_t off, void *buf, uint64_t n)
{
	struct quantize *q = ctx;
	const struct job *j = &q->jobs[t - q->w.t];
	int rc = 0;

	switch (j->act) {
	case ACT_COPY:
		memcpy(buf, (const uint8_t *)j->src->data + off, n);
		break;
	case ACT_FLOAT:
		rc = fill_float(q, j, t->dtype, off, buf, n);
		break;
	case ACT_QUANT:
		rc = fill_quant(q, j, off, buf, n);
		break;
	}
	if (rc)
		q->failed = rc;
	else
		progress(q, n);
	return rc;
}

/* ---- config.json and the side files --------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && (uint64_t)n <= MAX_CONFIG &&
	    !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = 0;
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* Write buf[0..len) and then the string tail to path. */
static int spit(const char *path, const void *buf, size_t len, const char *tail)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return fail("%s: cannot create: %s", path, strerror(errno));
	ok = fwrite(buf, 1, len, f) == len && fputs(tail, f) >= 0;
	if (fclose(f) || !ok)
		return fail("%s: write failed", path);
	return 0;
}

/* The input's config.json, checked: not quantized by us already, and the
 * block size of an FP8 checkpoint. */
static int read_config(const char *dir, cJSON **cfg, uint32_t *block)
{
	char *path = path_join(dir, "config.json"), *buf;
	const cJSON *qc, *m, *bs;
	size_t len = 0;

	*block = ST_FP8_DEFAULT_BLOCK;
	if (!path)
		return fail("out of memory");
	buf = slurp(path, &len);
	if (!buf) {
		fail("%s: cannot read (a Hugging Face model directory has one)", path);
		free(path);
		return 1;
	}
	*cfg = cJSON_ParseWithLength(buf, len);
	free(buf);
	if (!cJSON_IsObject(*cfg)) {
		fail("%s: not a JSON object", path);
		free(path);
		return 1;
	}
	free(path);
	qc = cJSON_GetObjectItemCaseSensitive(*cfg, "quantization_config");
	if (!qc)
		return 0;
	m = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
	if (cJSON_IsString(m) && !strcmp(m->valuestring, "nextcard"))
		return fail("%s is already pre-quantized by nextcard (quantize the original)", dir);
	if (!cJSON_IsString(m) || strcmp(m->valuestring, "fp8"))
		return fail("%s: quantization_config.quant_method '%s' is not supported (fp8 is)",
			    dir, cJSON_IsString(m) ? m->valuestring : "?");
	bs = cJSON_GetObjectItemCaseSensitive(qc, "weight_block_size");
	if (!bs)
		return 0;
	if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 ||
	    !cJSON_IsNumber(cJSON_GetArrayItem(bs, 0)) ||
	    cJSON_GetArrayItem(bs, 0)->valuedouble != cJSON_GetArrayItem(bs, 1)->valuedouble ||
	    !(cJSON_GetArrayItem(bs, 0)->valuedouble >= 1 &&
	      cJSON_GetArrayItem(bs, 0)->valuedouble <= 65536))
		return fail("%s: quantization_config.weight_block_size must be [B, B], 1 <= B <= 65536",
			    dir);
	*block = (uint32_t)cJSON_GetArrayItem(bs, 0)->valuedouble;
	return 0;
}

static int write_config(struct quantize *q, cJSON *cfg, const char *out)
{
	cJSON *qc = cJSON_CreateObject();
	char spec[32], *txt, *path;
	int rc;

	if (!qc)
		return fail("out of memory");
	cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization_config");
	cJSON_AddItemToObject(cfg, "quantization_config", qc);
	cJSON_AddStringToObject(qc, "quant_method", "nextcard");
	for (int c = 0; c < NC_TC_COUNT; c++)
		if (q->plan.set[c])
			cJSON_AddStringToObject(qc, nc_tclass_name(c),
						nc_fmt_spec(q->plan.dt[c], spec, sizeof(spec)));
	cJSON_AddStringToObject(qc, "rounding", q->plan.round == NC_ROUND_RTN ? "rtn" : "clip");
	txt = cJSON_Print(cfg);
	path = path_join(out, "config.json");
	if (!txt || !path) {
		free(txt);
		free(path);
		return fail("out of memory");
	}
	rc = spit(path, txt, strlen(txt), "\n");
	free(txt);
	free(path);
	return rc;
}

static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	FILE *in = fopen(from, "rb"), *o;
	size_t n;
	int bad = 0;

	if (!in)
		return errno == ENOENT ? 0 : fail("%s: cannot open: %s", from, strerror(errno));
	o = fopen(to, "wb");
	if (!o) {
		fclose(in);
		return fail("%s: cannot create: %s", to, strerror(errno));
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, o) != n)
			bad = 1;
	bad |= ferror(in);
	fclose(in);
	if (fclose(o) || bad)
		return fail("%s: copy failed", to);
	return 0;
}

static int copy_side_files(const char *dir, const char *out)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(side_files) / sizeof(side_files[0]) && !rc; i++) {
		char *a = path_join(dir, side_files[i]), *b = path_join(out, side_files[i]);

		rc = a && b ? copy_file(a, b) : fail("out of memory");
		free(a);
		free(b);
	}
	return rc;
}

/* The model is a directory; OUT, if it exists, is a directory other than the
 * model's and holds no shard index that would shadow the model.safetensors
 * written there. */
static int check_dirs(const char *dir, const char *out)
{
	struct stat a, b;
	char *idx;
	int rc = 0;

	if (stat(dir, &a))
		return fail("--model %s: %s", dir, strerror(errno));
	if (!S_ISDIR(a.st_mode))
		return fail("--model %s: not a directory", dir);
	if (stat(out, &b))
		return errno == ENOENT ? 0 : fail("--out %s: %s", out, strerror(errno));
	if (!S_ISDIR(b.st_mode))
		return fail("--out %s: not a directory", out);
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return fail("--out %s is the model directory: choose another", out);
	idx = path_join(out, "model.safetensors.index.json");
	if (!idx)
		return fail("out of memory");
	if (!access(idx, F_OK))
		rc = fail("--out %s holds a sharded model (model.safetensors.index.json): choose an empty directory",
			  out);
	free(idx);
	return rc;
}

/* ---- the command ---------------------------------------------------------- */

static void summary(const struct quantize *q, double secs)
{
	uint64_t n[NC_TC_COUNT] = { 0 }, before = 0, copied = 0;
	char spec[32];

	for (size_t i = 0; i < st_count(&q->in); i++)
		before += st_at(&q->in, i)->nbytes;
	for (size_t i = 0; i < q->w.count; i++) {
		int c = tclass_of(q->jobs[i].src->name);

		if (c >= 0)
			n[c]++;
		else
			copied++;
	}
	printf("quantized");
	for (int c = 0; c < NC_TC_COUNT; c++)
		printf("%s %s %llu (%s)", c ? "," : "", nc_tclass_name(c),
		       (unsigned long long)n[c], q->plan.set[c] ?
		       nc_fmt_spec(q->plan.dt[c], spec, sizeof(spec)) : "as they were");
	printf("; %llu other tensors kept; %.2f MiB -> %.2f MiB (%s rounding, %.1f s)\n",
	       (unsigned long long)copied, (double)before / 1048576.0,
	       (double)q->w.data_bytes / 1048576.0,
	       q->plan.round == NC_ROUND_RTN ? "rtn" : "clip", secs);
}

static int run(struct quantize *q, const char *dir, const char *out)
{
	cJSON *cfg = NULL;
	char err[512], *path = NULL;
	int rc;

	rc = check_dirs(dir, out);
	if (!rc)
		rc = read_config(dir, &cfg, &q->block);
	if (!rc && st_open_dir(&q->in, dir, err, sizeof(err)))
		rc = fail("%s", err);
	if (!rc)
		rc = plan_all(q);
	if (!rc && mkdir(out, 0755) && errno != EEXIST)
		rc = fail("--out %s: cannot create: %s", out, strerror(errno));
	if (!rc && !(path = path_join(out, "model.safetensors")))
		rc = fail("out of memory");
	if (!rc) {
		q->total = q->w.data_bytes;
		clock_gettime(CLOCK_MONOTONIC, &q->t0);
		q->shown = q->t0;
		if (st_writer_write(&q->w, path, fill, q, err, sizeof(err))) {
			if (q->progress)
				fputc('\n', stderr);
			q->progress = 0;
			rc = q->failed ? fail("%s (%s)", err, st_strerror(q->failed))
				       : fail("%s", err);
		}
		if (q->progress)
			fputc('\n', stderr);
	}
	if (!rc)
		rc = write_config(q, cfg, out);
	if (!rc)
		rc = copy_side_files(dir, out);
	if (!rc)
		summary(q, since(&q->t0));
	free(path);
	cJSON_Delete(cfg);
	return rc;
}

int cmd_quantize(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "out", required_argument, 0, 'o' },
		{ "quant", required_argument, 0, 'q' },
		{ "threads", required_argument, 0, 't' },
		{ 0, 0, 0, 0 },
	};
	struct quantize q = { .threads = 0 };
	const char *dir = NULL, *out = NULL, *spec = NULL;
	uint32_t nt = 0;
	char err[256];
	long ncpu;
	int o, rc;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'm')
			dir = optarg;
		else if (o == 'o')
			out = optarg;
		else if (o == 'q')
			spec = optarg;
		else if (o == 't') {
			if (nc_parse_u32(optarg, 1, MAX_THREADS, &nt)) {
				fprintf(stderr, "nextcard quantize: --threads must be 1..%d\n",
					MAX_THREADS);
				return 2;
			}
		} else {
			fprintf(stderr, "nextcard quantize: unknown or incomplete option (%s)\n",
				USAGE);
			return 2;
		}
	}
	if (!dir || !out || !spec || optind != argc) {
		fprintf(stderr, "nextcard quantize: --model, --out and --quant are required (%s)\n",
			USAGE);
		return 2;
	}
	if (nc_quant_plan_parse(spec, &q.plan, err, sizeof(err))) {
		fprintf(stderr, "nextcard quantize: --quant: %s\n", err);
		return 2;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	q.threads = nt ? (int)nt : ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (int)ncpu;
	rc = run(&q, dir, out);
	st_writer_free(&q.w);
	st_close(&q.in);
	free(q.jobs);
	free(q.rows);
	free(q.fbuf);
	return rc;
}
