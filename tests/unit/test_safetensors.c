/* test_safetensors.c — safetensors parser, loader and float conversions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/model/safetensors.h"
#include "host/model/st_write.h"

#include <cjson/cJSON.h>

static char tmpdir[64];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float rnd_float(void)
{
	return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 8.0 - 4.0);
}

/* Independent half -> float through ldexp, for checking st_f16_to_f32. */
static float ref_f16(uint16_t h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v;

	if (e == 31)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -24);
	else
		v = ldexp(1024 + m, e - 25);
	return (float)((h & 0x8000) ? -v : v);
}

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* Write the 8-byte length, the header, then the data. */
static void put_file(const char *name, const char *hdr, const void *data,
		     size_t dlen)
{
	uint64_t n = strlen(hdr);
	uint8_t le[8];
	char path[256];
	FILE *f;
	int i;

	for (i = 0; i < 8; i++)
		le[i] = (uint8_t)(n >> (8 * i));
	path_in(path, sizeof(path), name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(le, 1, 8, f), 8);
	assert_int_equal(fwrite(hdr, 1, n, f), n);
	if (dlen)
		assert_int_equal(fwrite(data, 1, dlen, f), dlen);
	assert_int_equal(fclose(f), 0);
}

/* A synthetic tensor: name, dtype, shape and its random bytes. */
struct syn {
	const char *name;
	enum st_dtype dt;
	int ndim;
	uint64_t shape[3];
	uint8_t *bytes;
	size_t nbytes;
};

static size_t syn_numel(const struct syn *t)
{
	size_t n = 1;
	int i;

	for (i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

static void syn_fill(struct syn *t)
{
	size_t i, n = syn_numel(t);
	float f;
	uint16_t h;

	t->nbytes = n * st_dtype_size(t->dt);
	t->bytes = malloc(t->nbytes + 1);
	assert_non_null(t->bytes);
	for (i = 0; i < n; i++) {
		f = rnd_float();
		if (t->dt == ST_F32) {
			memcpy(t->bytes + 4 * i, &f, 4);
			continue;
		}
		if (t->dt == ST_BF16)
			h = st_f32_to_bf16(f);
		else	/* any finite half, subnormals included */
			h = (uint16_t)(rnd() & 0xfbff);
		memcpy(t->bytes + 2 * i, &h, 2);
	}
}

static float syn_expect(const struct syn *t, size_t i)
{
	uint16_t h;
	float f;

	if (t->dt == ST_F32) {
		memcpy(&f, t->bytes + 4 * i, 4);
		return f;
	}
	memcpy(&h, t->bytes + 2 * i, 2);
	if (t->dt == ST_BF16)
		return st_bf16_to_f32(h);
	return ref_f16(h);
}

/* Header for tensors laid out back to back; pad makes the data unaligned. */
static void write_syn(const char *fname, struct syn *v, int n, int pad)
{
	char hdr[4096], *p = hdr;
	uint8_t *data;
	size_t off = 0, total = 0;
	int i, j;

	for (i = 0; i < n; i++)
		total += v[i].nbytes;
	data = malloc(total + 1);
	assert_non_null(data);
	p += sprintf(p, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (i = 0; i < n; i++) {
		p += sprintf(p, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", v[i].name,
			     st_dtype_name(v[i].dt));
		for (j = 0; j < v[i].ndim; j++)
			p += sprintf(p, "%s%llu", j ? "," : "",
				     (unsigned long long)v[i].shape[j]);
		p += sprintf(p, "],\"data_offsets\":[%zu,%zu]}", off,
			     off + v[i].nbytes);
		memcpy(data + off, v[i].bytes, v[i].nbytes);
		off += v[i].nbytes;
	}
	p += sprintf(p, "}%*s", pad, "");
	put_file(fname, hdr, data, total);
	free(data);
}

static void check_syn(const struct st_set *s, const struct syn *t, int file)
{
	const struct st_tensor *x = st_find(s, t->name);
	size_t i, n = syn_numel(t);
	float *got;
	int d;

	assert_non_null(x);
	assert_string_equal(x->name, t->name);
	assert_int_equal(x->dtype, t->dt);
	assert_int_equal(x->ndim, t->ndim);
	for (d = 0; d < t->ndim; d++)
		assert_int_equal(x->shape[d], t->shape[d]);
	assert_int_equal(x->nbytes, t->nbytes);
	assert_int_equal(x->file, file);
	assert_memory_equal(x->data, t->bytes, t->nbytes);
	got = malloc(n * sizeof(*got));
	assert_non_null(got);
	assert_int_equal(st_read_f32(x, 0, n, got), 0);
	for (i = 0; i < n; i++)
		assert_true(got[i] == syn_expect(t, i));
	/* a window from the middle */
	assert_int_equal(st_read_f32(x, n / 3, n - n / 3, got), 0);
	for (i = 0; i < n - n / 3; i++)
		assert_true(got[i] == syn_expect(t, n / 3 + i));
	assert_int_equal(st_read_f32(x, n, 0, got), 0);
	assert_int_equal(st_read_f32(x, n, 1, got), -ST_ERR_RANGE);
	assert_int_equal(st_read_f32(x, 1, n, got), -ST_ERR_RANGE);
	assert_int_equal(st_read_f32(x, UINT64_MAX, 2, got), -ST_ERR_RANGE);
	free(got);
}

static struct syn syns[] = {
	{ .name = "model.embed_tokens.weight", .dt = ST_F32, .ndim = 2, .shape = { 13, 7 } },
	{ .name = "model.layers.0.mlp.gate.weight", .dt = ST_BF16, .ndim = 2, .shape = { 9, 11 } },
	{ .name = "model.layers.0.linear_attn.conv1d.weight", .dt = ST_F16, .ndim = 3, .shape = { 5, 1, 4 } },
	{ .name = "model.norm.weight", .dt = ST_F32, .ndim = 1, .shape = { 7 } },
	{ .name = "lm_head.weight", .dt = ST_BF16, .ndim = 2, .shape = { 3, 7 } },
	{ .name = "scalar", .dt = ST_F32, .ndim = 0, .shape = { 0 } },
};
#define NSYN ((int)(sizeof(syns) / sizeof(syns[0])))

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	int i;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_safetensors.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	for (i = 0; i < NSYN; i++)
		syn_fill(&syns[i]);
	return 0;
}

static int teardown(void **state)
{
	int i;

	for (i = 0; i < NSYN; i++)
		free(syns[i].bytes);
	return nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Each test works in a fresh subdirectory. */
static void subdir(char *out, size_t n, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(out, n, "%s", name);
}

static void test_single_roundtrip(void **state)
{
	struct st_set s = { 0 };
	char err[256], dir[64], path[256];
	int i;

	subdir(dir, sizeof(dir), "single");
	write_syn("single/model.safetensors", syns, NSYN, 3);
	path_in(path, sizeof(path), dir);
	assert_int_equal(st_open_dir(&s, path, err, sizeof(err)), 0);
	assert_int_equal(st_count(&s), NSYN);
	for (i = 0; i < NSYN; i++)
		check_syn(&s, &syns[i], 0);
	for (i = 1; i < NSYN; i++)
		assert_true(strcmp(st_at(&s, i - 1)->name, st_at(&s, i)->name) < 0);
	assert_null(st_at(&s, NSYN));
	assert_null(st_find(&s, "model.missing"));
	assert_int_equal(st_find(&s, "scalar")->ndim, 0);
	assert_int_equal(st_numel(st_find(&s, "scalar")), 1);
	st_close(&s);
	assert_int_equal(st_count(&s), 0);
	st_close(&s);	/* twice is fine */
}

static void put_index(const char *name, const char *const *map, int n)
{
	char hdr[4096], *p = hdr, path[512];
	FILE *f;
	int i;

	p += sprintf(p, "{\"metadata\":{\"total_size\":1},\"weight_map\":{");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s\"%s\":\"%s\"", i ? "," : "", map[2 * i],
			     map[2 * i + 1]);
	sprintf(p, "}}\n");
	path_in(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(hdr, f);
	assert_int_equal(fclose(f), 0);
}

static void open_sharded(const char *dir, const char *const *map, int n,
			 int expect, const char *needle)
{
	struct st_set s = { 0 };
	char err[512] = "", path[256], ipath[256];
	int rc;

	snprintf(ipath, sizeof(ipath), "%s/model.safetensors.index.json", dir);
	put_index(ipath, map, n);
	path_in(path, sizeof(path), dir);
	rc = st_open_dir(&s, path, err, sizeof(err));
	if (rc != expect || (needle && !strstr(err, needle)))
		fail_msg("rc %d (want %d) err '%s' (want '%s')", rc, expect,
			 err, needle ? needle : "");
	if (!rc) {
		check_syn(&s, &syns[0], 0);
		check_syn(&s, &syns[2], 0);
		check_syn(&s, &syns[1], 1);
		check_syn(&s, &syns[4], 1);
		assert_int_equal(st_count(&s), 5);
		assert_string_equal(s.files[st_find(&s, "lm_head.weight")->file].path + strlen(path),
				    "/b.safetensors");
	}
	st_close(&s);
}

static void test_sharded(void **state)
{
	char dir[64];
	struct syn a[] = { syns[0], syns[2] }, b[] = { syns[1], syns[4], syns[3] };
	static const char *const good[] = {
		"model.embed_tokens.weight", "a.safetensors",
		"model.layers.0.linear_attn.conv1d.weight", "a.safetensors",
		"model.layers.0.mlp.gate.weight", "b.safetensors",
		"lm_head.weight", "b.safetensors",
	};
	static const char *const noshard[] = {
		"model.embed_tokens.weight", "a.safetensors",
		"lm_head.weight", "c.safetensors",
	};
	static const char *const notin[] = {
		"model.embed_tokens.weight", "a.safetensors",
		"model.layers.9.mlp.gate.weight", "b.safetensors",
	};
	static const char *const wrong[] = {
		"model.layers.0.linear_attn.conv1d.weight", "a.safetensors",
		"model.embed_tokens.weight", "b.safetensors",
	};
	static const char *const escape[] = {
		"model.embed_tokens.weight", "../single/model.safetensors",
	};

	subdir(dir, sizeof(dir), "sharded");
	write_syn("sharded/a.safetensors", a, 2, 0);
	write_syn("sharded/b.safetensors", b, 3, 1);
	/* b also holds model.norm.weight, which the index does not name */
	open_sharded(dir, good, 4, 0, NULL);
	open_sharded(dir, noshard, 2, -ST_ERR_INDEX,
		     "shard 'c.safetensors' (holding 'lm_head.weight') is missing");
	open_sharded(dir, notin, 2, -ST_ERR_INDEX,
		     "tensor 'model.layers.9.mlp.gate.weight' is not in its shard 'b.safetensors'");
	open_sharded(dir, wrong, 2, -ST_ERR_INDEX,
		     "'model.embed_tokens.weight' is not in its shard 'b.safetensors' but in");
	open_sharded(dir, escape, 1, -ST_ERR_INDEX, "plain file name");
	open_sharded(dir, NULL, 0, -ST_ERR_INDEX, "weight_map");

	/* the same tensor in two shards is ambiguous */
	write_syn("sharded/b.safetensors", a, 1, 0);
	open_sharded(dir, good, 4, -ST_ERR_DUP,
		     "'model.embed_tokens.weight': already loaded");
}

static void test_open_errors(void **state)
{
	struct st_set s = { 0 };
	char err[512], dir[64], path[256];

	subdir(dir, sizeof(dir), "empty");
	path_in(path, sizeof(path), dir);
	assert_int_equal(st_open_dir(&s, path, err, sizeof(err)), -ST_ERR_IO);
	assert_non_null(strstr(err, "neither"));
	path_in(path, sizeof(path), "empty/nofile.safetensors");
	assert_int_equal(st_open_file(&s, path, err, sizeof(err)), -ST_ERR_IO);
	assert_non_null(strstr(err, "nofile.safetensors: cannot open"));
	put_file("empty/short.safetensors", "", NULL, 0);
	path_in(path, sizeof(path), "empty/short.safetensors");
	assert_int_equal(truncate(path, 5), 0);
	assert_int_equal(st_open_file(&s, path, err, sizeof(err)),
			 -ST_ERR_HEADER);
	assert_non_null(strstr(err, "too short"));
	path_in(path, sizeof(path), "empty");
	assert_int_equal(st_open_file(&s, path, err, sizeof(err)), -ST_ERR_IO);
	assert_non_null(strstr(err, "empty: not a regular file"));
	assert_int_equal(st_count(&s), 0);
	assert_int_equal(s.nfiles, 0);
	st_close(&s);
}

/* Build an in-memory image: length, header, then dlen random bytes. */
static uint8_t *image(const char *hdr, uint64_t hlen_field, size_t dlen,
		      size_t *len)
{
	size_t n = strlen(hdr), i;
	uint8_t *b = malloc(8 + n + dlen + 1);

	assert_non_null(b);
	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(hlen_field >> (8 * i));
	memcpy(b + 8, hdr, n);
	for (i = 0; i < dlen; i++)
		b[8 + n + i] = (uint8_t)rnd();
	*len = 8 + n + dlen;
	return b;
}

struct bad {
	const char *hdr;
	size_t dlen;
	int code;
	const char *needle;
};

static const struct bad bads[] = {
	{ "[1,2]", 0, ST_ERR_HEADER, "f.st: header is not a JSON object" },
	{ "\"x\"", 0, ST_ERR_HEADER, "not a JSON object" },
	{ "{\"a\":", 0, ST_ERR_HEADER, "not valid JSON" },
	{ "", 0, ST_ERR_HEADER, "not valid JSON" },
	{ "{} x", 0, ST_ERR_HEADER, "junk after" },
	{ "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 8,
	  ST_ERR_TENSOR, "tensor 'w': unknown dtype 'Q4'" },
	{ "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
	  ST_ERR_TENSOR, "tensor 'w': dtype missing" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
	  ST_ERR_TENSOR, "tensor 'w': shape needs 12 bytes of F32 but data_offsets [0,8] hold 8" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12,
	  ST_ERR_TENSOR, "tensor 'w': data_offsets [8,16] outside the 12-byte data section" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,8]}}", 12,
	  ST_ERR_TENSOR, "tensor 'w': data_offsets [9,8] begin after end" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 12,
	  ST_ERR_TENSOR, "tensor 'w': data_offsets must be" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 12,
	  ST_ERR_TENSOR, "data_offsets must be" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
	  ST_ERR_TENSOR, "tensor 'w': shape[0] is not a non-negative integer" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8,
	  ST_ERR_TENSOR, "shape[0] is not" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
	  ST_ERR_TENSOR, "tensor 'w': shape missing or not an array" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
	  8, ST_ERR_TENSOR, "tensor 'w': more than 8 dimensions" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
	  8, ST_ERR_TENSOR, "tensor 'w': shape product overflows" },
	{ "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,8]}}",
	  8, ST_ERR_TENSOR, "tensor 'w': byte size overflows" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
	  ST_ERR_TENSOR, "shape[0]" },
	{ "{\"w\":[1]}", 8, ST_ERR_TENSOR, "tensor 'w': entry is not an object" },
	{ "{\"model.layers.0.mlp.gate.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[10,26]},"
	  "\"x\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]}}", 32,
	  ST_ERR_TENSOR,
	  "tensor 'model.layers.0.mlp.gate.weight': data_offsets [10,26] overlap 'x' [0,16]" },
	{ "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	  "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
	  ST_ERR_DUP, "tensor 'w': duplicate name" },
	{ "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
	  ST_ERR_TENSOR, "empty name" },
	{ "{\"__metadata__\":{\"format\":1}}", 0, ST_ERR_HEADER,
	  "__metadata__ 'format' is not a string" },
	{ "{\"__metadata__\":[]}", 0, ST_ERR_HEADER, "__metadata__ is not an object" },
};

static void test_malformed(void **state)
{
	struct st_set s = { 0 };
	char err[512];
	size_t i, len;
	uint8_t *b;
	int rc;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		b = image(bads[i].hdr, strlen(bads[i].hdr), bads[i].dlen, &len);
		err[0] = 0;
		rc = st_parse(&s, b, len, 0, "f.st", err, sizeof(err));
		if (rc != -bads[i].code || !strstr(err, bads[i].needle))
			fail_msg("case %zu: rc %d (want %d) err '%s' (want '%s')",
				 i, rc, -bads[i].code, err, bads[i].needle);
		assert_int_equal(st_count(&s), 0);
		free(b);
	}
	st_close(&s);
}

static void test_header_length(void **state)
{
	static const char hdr[] = "{\"w\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}";
	struct st_set s = { 0 };
	char err[256];
	size_t len;
	uint8_t *b;

	b = image(hdr, strlen(hdr), 3, &len);
	assert_int_equal(st_parse(&s, b, 7, 0, "f.st", err, sizeof(err)),
			 -ST_ERR_HEADER);
	assert_non_null(strstr(err, "too short"));
	/* truncated inside the header */
	assert_int_equal(st_parse(&s, b, 20, 0, "f.st", err, sizeof(err)),
			 -ST_ERR_HEADER);
	assert_non_null(strstr(err, "runs past the end"));
	/* truncated inside the data */
	assert_int_equal(st_parse(&s, b, len - 1, 0, "f.st", err, sizeof(err)),
			 -ST_ERR_TENSOR);
	assert_non_null(strstr(err, "'w': data_offsets [0,3] outside"));
	free(b);
	b = image(hdr, (uint64_t)ST_MAX_HEADER + 1, 3, &len);
	assert_int_equal(st_parse(&s, b, len, 0, "f.st", err, sizeof(err)),
			 -ST_ERR_HEADER);
	assert_non_null(strstr(err, "exceeds"));
	free(b);
	b = image(hdr, UINT64_MAX, 3, &len);
	assert_int_equal(st_parse(&s, b, len, 0, "f.st", err, sizeof(err)),
			 -ST_ERR_HEADER);
	free(b);
	/* the good image parses, with a NULL err buffer too */
	b = image(hdr, strlen(hdr), 3, &len);
	assert_int_equal(st_parse(&s, b, len, 4, NULL, NULL, 0), 0);
	assert_int_equal(st_find(&s, "w")->file, 4);
	assert_ptr_equal(st_find(&s, "w")->data, b + 8 + strlen(hdr));
	/* parsing it again collides with itself */
	assert_int_equal(st_parse(&s, b, len, 5, "g.st", err, sizeof(err)),
			 -ST_ERR_DUP);
	assert_int_equal(st_count(&s), 1);
	assert_int_equal(st_read_f32(st_find(&s, "w"), 0, 1, (float[1]){ 0 }),
			 -ST_ERR_DTYPE);
	st_close(&s);
	free(b);
}

/* Holes and zero-length tensors sharing an offset are legal. */
static void test_lenient(void **state)
{
	static const char hdr[] =
		"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]},"
		"\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[6,6]},"
		"\"b\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[12,13]}}   ";
	struct st_set s = { 0 };
	char err[256];
	double d = -1.25e-3;
	size_t len;
	uint8_t *b;
	float f;

	b = image(hdr, strlen(hdr), 20, &len);
	memcpy(b + 8 + strlen(hdr) + 4, &d, 8);
	assert_int_equal(st_parse(&s, b, len, 0, "f.st", err, sizeof(err)), 0);
	assert_int_equal(st_count(&s), 3);
	assert_int_equal(st_find(&s, "e")->nbytes, 0);
	assert_int_equal(st_find(&s, "b")->ndim, 0);
	assert_int_equal(st_read_f32(st_find(&s, "a"), 0, 1, &f), 0);
	assert_true(f == (float)d);
	st_close(&s);
	free(b);
}

static void test_bf16(void **state)
{
	static const struct { uint32_t in; uint16_t out; } v[] = {
		{ 0x3f800000, 0x3f80 },	/* 1.0 */
		{ 0x3f808000, 0x3f80 },	/* tie, even below */
		{ 0x3f818000, 0x3f82 },	/* tie, odd below: up */
		{ 0x3f808001, 0x3f81 },	/* just above the tie */
		{ 0x3f807fff, 0x3f80 },	/* just below */
		{ 0xbf818000, 0xbf82 },	/* negative tie */
		{ 0x7f7fffff, 0x7f80 },	/* FLT_MAX rounds to inf */
		{ 0x7f800000, 0x7f80 },	/* inf */
		{ 0xff800000, 0xff80 },	/* -inf */
		{ 0x80000000, 0x8000 },	/* -0 */
		{ 0x00000001, 0x0000 },	/* tiny denormal to zero */
		{ 0x00018000, 0x0002 },	/* denormal tie, odd below */
	};
	uint32_t u, lo;
	uint16_t h;
	double dl, dh, x;
	size_t i;
	float f;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memcpy(&f, &v[i].in, 4);
		if (st_f32_to_bf16(f) != v[i].out)
			fail_msg("0x%08x -> 0x%04x, want 0x%04x", v[i].in,
				 st_f32_to_bf16(f), v[i].out);
	}
	assert_true(isnan(st_bf16_to_f32(st_f32_to_bf16(NAN))));
	u = 0x7f800001;		/* NaN whose payload is only in the low bits */
	memcpy(&f, &u, 4);
	assert_true(isnan(st_bf16_to_f32(st_f32_to_bf16(f))));
	assert_true(st_bf16_to_f32(0x4049) == 3.140625f);
	assert_true(isinf(st_bf16_to_f32(0xff80)) && st_bf16_to_f32(0xff80) < 0);
	/* random floats against a nearest-by-distance reference */
	for (i = 0; i < 200000; i++) {
		u = (uint32_t)rnd();
		if ((u & 0x7f800000) == 0x7f800000)
			continue;
		memcpy(&f, &u, 4);
		lo = u & 0xffff0000u;
		dl = fabs((double)f - st_bf16_to_f32((uint16_t)(lo >> 16)));
		x = st_bf16_to_f32((uint16_t)((lo >> 16) + 1));
		if (isinf(x))	/* inf stands where 2^128 would be */
			x = copysign(0x1p128, f);
		dh = fabs((double)f - x);
		h = st_f32_to_bf16(f);
		if (dl < dh || (dl == dh && !(lo >> 16 & 1)))
			assert_int_equal(h, lo >> 16);
		else
			assert_int_equal(h, (lo >> 16) + 1);
		assert_int_equal(st_f32_to_bf16(st_bf16_to_f32(h)), h);
	}
}

static void test_f16(void **state)
{
	uint32_t h;
	float a, b;

	assert_true(st_f16_to_f32(0x3c00) == 1.0f);
	assert_true(st_f16_to_f32(0xc000) == -2.0f);
	assert_true(st_f16_to_f32(0x7bff) == 65504.0f);
	assert_true(st_f16_to_f32(0x0001) == 0x1p-24f);
	assert_true(st_f16_to_f32(0x8001) == -0x1p-24f);
	assert_true(st_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
	assert_true(st_f16_to_f32(0x0400) == 0x1p-14f);
	assert_true(st_f16_to_f32(0x3555) == 0x1.554p-2f);
	assert_true(isinf(st_f16_to_f32(0x7c00)) && st_f16_to_f32(0x7c00) > 0);
	assert_true(isinf(st_f16_to_f32(0xfc00)) && st_f16_to_f32(0xfc00) < 0);
	assert_true(isnan(st_f16_to_f32(0x7e00)));
	assert_true(isnan(st_f16_to_f32(0x7c01)));
	assert_true(st_f16_to_f32(0x8000) == 0 && signbit(st_f16_to_f32(0x8000)));
	for (h = 0; h < 0x10000; h++) {
		a = st_f16_to_f32((uint16_t)h);
		b = ref_f16((uint16_t)h);
		if (isnan(b))
			assert_true(isnan(a));
		else
			assert_memory_equal(&a, &b, 4);
	}
}

static double sum_tensor(const struct st_tensor *t)
{
	uint64_t n = st_numel(t), i;
	float *v = malloc(n * sizeof(*v));
	double s = 0;

	assert_non_null(v);
	assert_int_equal(st_read_f32(t, 0, n, v), 0);
	for (i = 0; i < n; i++)
		s += v[i];
	free(v);
	return s;
}

static void expect_shape(const struct st_set *s, const char *name,
			 enum st_dtype dt, int ndim, uint64_t d0, uint64_t d1,
			 uint64_t d2)
{
	const struct st_tensor *t = st_find(s, name);
	const uint64_t d[3] = { d0, d1, d2 };
	int i;

	if (!t)
		fail_msg("tensor '%s' not found", name);
	assert_int_equal(t->dtype, dt);
	assert_int_equal(t->ndim, ndim);
	for (i = 0; i < ndim; i++)
		assert_int_equal(t->shape[i], d[i]);
}

static void test_tiny_a(void **state)
{
	struct st_set s = { 0 };
	char err[256];
	float f[2];

	assert_int_equal(st_open_dir(&s, "assets/tiny-a", err, sizeof(err)), 0);
	assert_int_equal(st_count(&s), 250);
	assert_int_equal(s.nfiles, 1);
	expect_shape(&s, "lm_head.weight", ST_F32, 2, 512, 64, 0);
	expect_shape(&s, "model.norm.weight", ST_F32, 1, 64, 0, 0);
	expect_shape(&s, "model.layers.0.linear_attn.conv1d.weight", ST_F32,
		     3, 160, 1, 4);
	expect_shape(&s, "model.layers.3.self_attn.q_proj.weight", ST_F32, 2,
		     256, 64, 0);
	assert_float_equal(sum_tensor(st_find(&s, "lm_head.weight")),
			   -85.73656341, 1e-3);
	assert_int_equal(st_read_f32(st_find(&s, "lm_head.weight"), 0, 2, f), 0);
	assert_float_equal(f[0], 0.22221234440803528, 1e-7);
	assert_float_equal(f[1], -0.5972842574119568, 1e-7);
	/* a second file into the same set */
	assert_int_equal(st_open_file(&s, "assets/tiny-a/reference.safetensors",
				      err, sizeof(err)), 0);
	assert_int_equal(st_count(&s), 253);
	expect_shape(&s, "tokens", ST_I64, 1, 64, 0, 0);
	expect_shape(&s, "hidden_states", ST_F32, 3, 5, 64, 64);
	expect_shape(&s, "logits", ST_F32, 2, 64, 512, 0);
	assert_int_equal(st_find(&s, "logits")->file, 1);
	st_close(&s);
}

static void test_fortune(void **state)
{
	struct st_set s = { 0 };
	char err[256];

	if (st_open_dir(&s, "assets/fortune-13m", err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(st_count(&s), 881 + 113);	/* the model and its MTP head */
	assert_int_equal(s.nfiles, 5);
	expect_shape(&s, "lm_head.weight", ST_BF16, 2, 4096, 192, 0);
	expect_shape(&s, "model.embed_tokens.weight", ST_BF16, 2, 4096, 192, 0);
	expect_shape(&s, "model.layers.7.mlp.experts.0.down_proj.weight",
		     ST_BF16, 2, 192, 64, 0);
	assert_int_equal(st_find(&s, "model.layers.7.mlp.experts.31.down_proj.weight")->file, 3);
	assert_float_equal(sum_tensor(st_find(&s, "lm_head.weight")),
			   254.5999914, 1e-3);
	st_close(&s);
}

/* ---- __metadata__ and FP8 block-scaled weights -------------------------- */

static void test_metadata(void **state)
{
	static const char ha[] =
		"{\"__metadata__\":{\"format\":\"pt\",\"k\":\"first\",\"k\":\"second\",\"only_a\":\"x\"},"
		"\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
	static const char hb[] =
		"{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"__metadata__\":{\"format\":\"np\",\"k\":\"b\",\"only_b\":\"y\",\"\":\"empty key\"}}";
	static const char hbad[] =
		"{\"__metadata__\":{\"new\":\"z\"},\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1]}}";
	static const char hbadmd[] =
		"{\"__metadata__\":{\"ok\":\"1\",\"n\":5}}";
	static const char honly[] = "{\"__metadata__\":{\"z\":\"1\"}}";
	struct st_set s = { 0 };
	uint8_t *a, *b, *c, *d, *e;
	char err[256], dir[64], path[256];
	size_t la, lb, lc, ld, le;

	assert_null(st_meta(&s, "format"));
	assert_null(st_meta(NULL, "format"));
	a = image(ha, strlen(ha), 1, &la);
	b = image(hb, strlen(hb), 1, &lb);
	c = image(hbad, strlen(hbad), 1, &lc);
	d = image(hbadmd, strlen(hbadmd), 0, &ld);
	e = image(honly, strlen(honly), 0, &le);
	assert_int_equal(st_parse(&s, a, la, 0, "a.st", err, sizeof(err)), 0);
	assert_int_equal(s.nmeta, 4);
	assert_string_equal(st_meta(&s, "k"), "first");	/* first in the header */
	assert_string_equal(st_meta(&s, "format"), "pt");
	assert_null(st_meta(&s, "only_b"));
	assert_null(st_meta(&s, NULL));
	assert_int_equal(st_parse(&s, b, lb, 1, "b.st", err, sizeof(err)), 0);
	assert_int_equal(s.nmeta, 8);
	assert_string_equal(st_meta(&s, "format"), "pt");	/* the first file's */
	assert_string_equal(st_meta(&s, "k"), "first");
	assert_string_equal(st_meta(&s, "only_a"), "x");
	assert_string_equal(st_meta(&s, "only_b"), "y");
	assert_string_equal(st_meta(&s, ""), "empty key");
	for (size_t i = 1; i < s.nmeta; i++)
		assert_true(strcmp(s.meta[i - 1].key, s.meta[i].key) <= 0);
	/* a file that fails leaves the metadata as it was */
	assert_int_equal(st_parse(&s, c, lc, 2, "c.st", err, sizeof(err)), -ST_ERR_TENSOR);
	assert_int_equal(st_parse(&s, d, ld, 2, "d.st", err, sizeof(err)), -ST_ERR_HEADER);
	assert_non_null(strstr(err, "__metadata__ 'n' is not a string"));
	assert_int_equal(s.nmeta, 8);
	assert_null(st_meta(&s, "new"));
	assert_null(st_meta(&s, "ok"));
	/* metadata alone is a file too */
	assert_int_equal(st_parse(&s, e, le, 3, "e.st", err, sizeof(err)), 0);
	assert_string_equal(st_meta(&s, "z"), "1");
	assert_int_equal(st_count(&s), 2);
	st_close(&s);
	assert_null(st_meta(&s, "z"));
	assert_int_equal(s.nmeta, 0);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
	/* through st_open_dir: the writer of write_syn() sets format = pt */
	subdir(dir, sizeof(dir), "meta");
	write_syn("meta/model.safetensors", syns, 2, 0);
	path_in(path, sizeof(path), dir);
	assert_int_equal(st_open_dir(&s, path, err, sizeof(err)), 0);
	assert_string_equal(st_meta(&s, "format"), "pt");
	st_close(&s);
}

/* Independent E4M3 -> float through ldexp. */
static float ref_e4m3(uint8_t b)
{
	int e = (b >> 3) & 15, m = b & 7;
	double v;

	if (e == 15 && m == 7)
		return NAN;
	v = e ? ldexp(8 + m, e - 10) : ldexp(m, -9);
	return (float)((b & 0x80) ? -v : v);
}

/* Tensors laid out back to back in one image, header built here. */
struct fp8_ent {
	const char *name, *dtype;
	int ndim;
	uint64_t shape[2];
	const void *bytes;
	size_t n;
};

static uint8_t *fp8_image(const struct fp8_ent *v, int n, size_t *len)
{
	char hdr[4096], *p = hdr;
	size_t off = 0, dlen = 0, hl;
	uint8_t *b;
	int i, j;

	for (i = 0; i < n; i++)
		dlen += v[i].n;
	p += sprintf(p, "{");
	for (i = 0; i < n; i++) {
		p += sprintf(p, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", v[i].name,
			     v[i].dtype);
		for (j = 0; j < v[i].ndim; j++)
			p += sprintf(p, "%s%llu", j ? "," : "", (unsigned long long)v[i].shape[j]);
		p += sprintf(p, "],\"data_offsets\":[%zu,%zu]}", off, off + v[i].n);
		off += v[i].n;
	}
	p += sprintf(p, "}");
	hl = strlen(hdr);
	b = image(hdr, hl, dlen, len);
	for (i = 0, off = 0; i < n; i++) {
		memcpy(b + 8 + hl + off, v[i].bytes, v[i].n);
		off += v[i].n;
	}
	return b;
}

static void test_fp8(void **state)
{
	static const uint8_t w[15] = {
		0x38, 0x40, 0xb8, 0x01, 0x7e,	/* 1, 2, -1, 2^-9, 448 */
		0x00, 0x80, 0x08, 0x07, 0xfe,	/* 0, -0, 2^-6, 7 * 2^-9, -448 */
		0x39, 0x30, 0x48, 0x7f, 0x3c,	/* 1.125, 0.5, 4, NaN, 1.5 */
	};
	static const float wscale[6] = { 1.0f, 2.0f, 4.0f, 0.5f, 8.0f, 16.0f };	/* [2][3] */
	static const float want[15] = {
		1.0f, 2.0f, -2.0f, 0x1p-9f * 2.0f, 448.0f * 4.0f,
		0.0f, -0.0f, 0x1p-6f * 2.0f, 7 * 0x1p-9f * 2.0f, -448.0f * 4.0f,
		1.125f * 0.5f, 0.5f * 0.5f, 4.0f * 8.0f, NAN, 1.5f * 16.0f,
	};
	static uint8_t v[390];
	static const uint16_t vscale[2] = { 0x3e80, 0x4040 };	/* bf16 0.25, 3.0 */
	static const uint8_t bad[4] = { 0x38, 0x38, 0x38, 0x38 };
	static const float badscale[2] = { 1.0f, 1.0f };
	static const int32_t iscale[1] = { 1 };
	static const uint16_t h[2] = { 0x3c00, 0xc000 };	/* f16 1, -2 */
	static const uint8_t e5[4] = { 0x3c, 0x7b, 0x01, 0xc0 };	/* 1, 57344, 2^-16, -2 */
	const struct fp8_ent ents[] = {
		{ "w.weight", "F8_E4M3", 2, { 3, 5 }, w, sizeof(w) },
		{ "w.weight_scale_inv", "F32", 2, { 2, 3 }, wscale, sizeof(wscale) },
		{ "v.weight", "F8_E4M3", 2, { 130, 3 }, v, sizeof(v) },
		{ "v.weight_scale_inv", "BF16", 2, { 2, 1 }, vscale, sizeof(vscale) },
		{ "bad.weight", "F8_E4M3", 2, { 2, 2 }, bad, sizeof(bad) },
		{ "bad.weight_scale_inv", "F32", 2, { 1, 2 }, badscale, sizeof(badscale) },
		{ "lone.weight", "F8_E4M3", 2, { 1, 4 }, bad, sizeof(bad) },
		{ "vec", "F8_E4M3", 1, { 4 }, bad, sizeof(bad) },
		{ "vec_scale_inv", "F32", 1, { 1 }, badscale, 4 },
		{ "int.weight", "F8_E4M3", 2, { 1, 1 }, bad, 1 },
		{ "int.weight_scale_inv", "I32", 2, { 1, 1 }, iscale, sizeof(iscale) },
		{ "e5.weight", "F8_E5M2", 2, { 1, 4 }, e5, sizeof(e5) },
		{ "e5.weight_scale_inv", "F32", 2, { 1, 1 }, badscale, 4 },
		{ "h", "F16", 1, { 2 }, h, sizeof(h) },
	};
	struct st_set s = { 0 };
	const struct st_tensor *t;
	float got[390];
	char err[256];
	size_t len, i;
	uint8_t *b;

	/* the decoder, every byte */
	for (i = 0; i < 256; i++) {
		float x = st_f8e4m3_to_f32((uint8_t)i), r = ref_e4m3((uint8_t)i);

		if (isnan(r))
			assert_true(isnan(x));
		else if (memcmp(&x, &r, 4))
			fail_msg("E4M3 0x%02zx: %.9g, want %.9g", i, (double)x, (double)r);
	}
	assert_true(st_f8e4m3_to_f32(0x38) == 1.0f);
	assert_true(st_f8e4m3_to_f32(0x40) == 2.0f);
	assert_true(st_f8e4m3_to_f32(0xb8) == -1.0f);
	assert_true(st_f8e4m3_to_f32(0x01) == 0x1p-9f);
	assert_true(st_f8e4m3_to_f32(0x7e) == 448.0f);
	assert_true(isnan(st_f8e4m3_to_f32(0x7f)) && isnan(st_f8e4m3_to_f32(0xff)));
	assert_true(st_f8e5m2_to_f32(0x3c) == 1.0f);
	assert_true(st_f8e5m2_to_f32(0x7b) == 57344.0f);
	assert_true(isinf(st_f8e5m2_to_f32(0x7c)));
	assert_true(st_f8e5m2_to_f32(0x01) == 0x1p-16f);

	memset(v, 0x38, sizeof(v));
	b = fp8_image(ents, (int)(sizeof(ents) / sizeof(ents[0])), &len);
	if (st_parse(&s, b, len, 0, "fp8.st", err, sizeof(err)))
		fail_msg("%s", err);
	t = st_find(&s, "w.weight");
	assert_int_equal(t->dtype, ST_F8_E4M3);
	assert_int_equal(st_dtype_size(t->dtype), 1);
	assert_int_equal(st_numel(t), 15);
	/* plain st_read_f32 still refuses FP8 */
	assert_int_equal(st_read_f32(t, 0, 1, got), -ST_ERR_DTYPE);
	/* block 2: scale [2][3] */
	assert_int_equal(st_read_f32_fp8(&s, t, 0, 15, got, 2), 0);
	for (i = 0; i < 15; i++) {
		if (isnan(want[i]) ? !isnan(got[i]) : memcmp(&got[i], &want[i], 4))
			fail_msg("w[%zu] = %.9g, want %.9g", i, (double)got[i], (double)want[i]);
	}
	/* a window across rows and scale blocks */
	assert_int_equal(st_read_f32_fp8(&s, t, 4, 7, got, 2), 0);
	for (i = 0; i < 7; i++)
		assert_true(memcmp(&got[i], &want[4 + i], 4) == 0);
	assert_int_equal(st_read_f32_fp8(&s, t, 15, 0, got, 2), 0);
	assert_int_equal(st_read_f32_fp8(&s, t, 15, 1, got, 2), -ST_ERR_RANGE);
	assert_int_equal(st_read_f32_fp8(&s, t, 1, 15, got, 2), -ST_ERR_RANGE);
	assert_int_equal(st_read_f32_fp8(&s, t, UINT64_MAX, 2, got, 2), -ST_ERR_RANGE);
	/* the scale does not fit the block: [2][3] is not [1][1] */
	assert_int_equal(st_read_f32_fp8(&s, t, 0, 1, got, 128), -ST_ERR_SCALE);
	assert_int_equal(st_read_f32_fp8(&s, t, 0, 1, got, 0), -ST_ERR_SCALE);
	/* default block 128, BF16 scale: rows 0..127 x 0.25, 128..129 x 3 */
	t = st_find(&s, "v.weight");
	assert_int_equal(st_read_f32_fp8(&s, t, 0, 390, got, 0), 0);
	for (i = 0; i < 390; i++)
		assert_true(got[i] == (i < 128 * 3 ? 0.25f : 3.0f));
	assert_int_equal(st_read_f32_fp8(&s, t, 380, 10, got, 128), 0);
	assert_true(got[3] == 0.25f && got[4] == 3.0f);
	/* errors: wrong scale shape, no scale, not 2-D, scale not a float */
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "bad.weight"), 0, 4, got, 2),
			 -ST_ERR_SCALE);
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "bad.weight"), 0, 4, got, 1),
			 -ST_ERR_SCALE);
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "lone.weight"), 0, 4, got, 0),
			 -ST_ERR_SCALE);
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "vec"), 0, 4, got, 0),
			 -ST_ERR_SCALE);
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "int.weight"), 0, 1, got, 0),
			 -ST_ERR_SCALE);
	assert_true(strlen(st_strerror(-ST_ERR_SCALE)) > 5);
	/* E5M2 */
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "e5.weight"), 0, 4, got, 0), 0);
	assert_true(got[0] == 1.0f && got[1] == 57344.0f && got[2] == 0x1p-16f &&
		    got[3] == -2.0f);
	/* other dtypes read as st_read_f32 reads them */
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "h"), 0, 2, got, 0), 0);
	assert_true(got[0] == 1.0f && got[1] == -2.0f);
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "h"), 1, 2, got, 0), -ST_ERR_RANGE);
	assert_int_equal(st_read_f32_fp8(&s, st_find(&s, "int.weight_scale_inv"), 0, 1, got, 0),
			 -ST_ERR_DTYPE);
	st_close(&s);
	free(b);
}

/* ---- st_write: what the writer writes, the parser reads ----------------- */

/* The byte a write test expects at offset i of tensor `name`. */
static uint8_t wr_byte(const char *name, uint64_t i)
{
	return (uint8_t)(strlen(name) * 31 + i * 7 + (i >> 9));
}

struct wr_ctx {
	size_t calls;
	uint64_t next;		/* the offset the next call must ask for */
	const char *cur;	/* the tensor being filled */
	int fail_on;		/* fail the call with this index (0: never) */
};

static int wr_fill(void *ctx, const struct st_wtensor *t, uint64_t off, void *buf, uint64_t n)
{
	struct wr_ctx *c = ctx;
	uint8_t *p = buf;
	uint64_t i;

	if (!off)
		c->cur = t->name;
	assert_ptr_equal(c->cur, t->name);
	assert_int_equal(off, off ? c->next : 0);
	assert_true(n > 0 && n <= ST_WRITE_CHUNK && off + n <= t->nbytes);
	c->next = off + n;
	if (++c->calls == (size_t)c->fail_on)
		return -1;
	for (i = 0; i < n; i++)
		p[i] = wr_byte(t->name, off + i);
	return 0;
}

static const struct {
	const char *name;
	enum st_dtype dt;
	int ndim;
	uint64_t shape[4];
} wrs[] = {
	{ "model.layers.0.mlp.gate.weight", ST_BF16, 2, { 9, 11 } },
	{ "b.conv", ST_F32, 3, { 5, 1, 4 } },
	{ "a.four", ST_I64, 4, { 2, 3, 1, 2 } },
	{ "scalar", ST_F16, 0, { 0 } },
	{ "empty", ST_F32, 2, { 0, 7 } },
	{ "odd.u8", ST_U8, 1, { 13 } },
	{ "big", ST_U8, 1, { ST_WRITE_CHUNK + 1000 } },	/* two chunks */
};
#define NWR ((int)(sizeof(wrs) / sizeof(wrs[0])))

static void wr_build(struct st_writer *w)
{
	char err[256];
	int i;

	for (i = 0; i < NWR; i++)
		assert_int_equal(st_writer_add(w, wrs[i].name, wrs[i].dt, wrs[i].ndim,
					       wrs[i].shape, err, sizeof(err)), i);
	assert_int_equal(st_writer_meta(w, "format", "np", err, sizeof(err)), 0);
	assert_int_equal(st_writer_meta(w, "note", "a \"quoted\" value", err, sizeof(err)), 0);
	assert_int_equal(st_writer_meta(w, "format", "pt", err, sizeof(err)), 0);
}

/* Header as written: length a multiple of 8, space padding, keys in insertion order. */
static void wr_check_header(const char *path)
{
	uint8_t le[8];
	uint64_t n = 0;
	char *h;
	cJSON *root, *md, *c;
	FILE *f = fopen(path, "rb");
	int i = 0;

	assert_non_null(f);
	assert_int_equal(fread(le, 1, 8, f), 8);
	for (int k = 7; k >= 0; k--)
		n = n << 8 | le[k];
	assert_int_equal(n % 8, 0);
	h = malloc(n + 1);
	assert_non_null(h);
	assert_int_equal(fread(h, 1, n, f), n);
	h[n] = 0;
	fclose(f);
	assert_int_equal(h[0], '{');
	root = cJSON_Parse(h);
	assert_non_null(root);
	md = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
	assert_ptr_equal(root->child, md);
	assert_int_equal(cJSON_GetArraySize(md), 2);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "format")->valuestring, "pt");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "note")->valuestring,
			    "a \"quoted\" value");
	for (c = md->next; c; c = c->next)
		assert_string_equal(c->string, wrs[i++].name);
	assert_int_equal(i, NWR);
	cJSON_Delete(root);
	free(h);
}

static void test_write_roundtrip(void **state)
{
	struct st_writer w = { 0 };
	struct st_set s = { 0 };
	struct wr_ctx c = { 0 };
	char err[256], path[256], tmp[300];
	uint64_t expect = 0;
	struct stat sb;
	int i, d;

	wr_build(&w);
	path_in(path, sizeof(path), "written.safetensors");
	assert_int_equal(st_writer_write(&w, path, wr_fill, &c, err, sizeof(err)), 0);
	assert_int_equal(c.calls, NWR);	/* "empty" never asked, "big" twice */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, st_writer_file_bytes(&w));
	wr_check_header(path);
	if (st_open_file(&s, path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(st_count(&s), NWR);
	for (i = 0; i < NWR; i++) {
		const struct st_tensor *t = st_find(&s, wrs[i].name);
		const uint8_t *p;
		uint64_t nb = st_dtype_size(wrs[i].dt);

		assert_non_null(t);
		assert_int_equal(t->dtype, wrs[i].dt);
		assert_int_equal(t->ndim, wrs[i].ndim);
		for (d = 0; d < wrs[i].ndim; d++) {
			assert_int_equal(t->shape[d], wrs[i].shape[d]);
			nb *= wrs[i].shape[d];
		}
		assert_int_equal(t->nbytes, nb);
		assert_int_equal(w.t[i].begin, expect);	/* laid out in insertion order */
		expect += nb;
		p = t->data;
		for (uint64_t k = 0; k < nb; k++)
			if (p[k] != wr_byte(wrs[i].name, k))
				fail_msg("%s: byte %llu differs", wrs[i].name,
					 (unsigned long long)k);
	}
	st_close(&s);
	/* zero fill when no callback is given */
	assert_int_equal(st_writer_write(&w, path, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(st_open_file(&s, path, err, sizeof(err)), 0);
	assert_int_equal(((const uint8_t *)st_find(&s, "odd.u8")->data)[12], 0);
	st_close(&s);
	st_writer_free(&w);
	st_writer_free(&w);	/* twice is fine */
}

static void test_write_errors(void **state)
{
	static const uint64_t shape[5] = { 1, 2, 3, 4, 5 };
	struct st_writer w = { 0 };
	struct wr_ctx c = { .fail_on = NWR };	/* the second chunk of "big" */
	char err[256], path[256], tmp[300];

	assert_int_equal(st_writer_add(&w, "", ST_F32, 1, shape, err, sizeof(err)),
			 -ST_ERR_TENSOR);
	assert_int_equal(st_writer_add(&w, "__metadata__", ST_F32, 1, shape, err, sizeof(err)),
			 -ST_ERR_TENSOR);
	assert_int_equal(st_writer_add(&w, "x", ST_F32, 5, shape, err, sizeof(err)),
			 -ST_ERR_TENSOR);
	assert_int_equal(st_writer_add(&w, "x", ST_NDTYPES, 1, shape, err, sizeof(err)),
			 -ST_ERR_TENSOR);
	assert_int_equal(st_writer_add(&w, "x", ST_F32, 2,
				       (const uint64_t[]){ 1ull << 40, 1ull << 40 }, err,
				       sizeof(err)), -ST_ERR_TENSOR);
	assert_non_null(strstr(err, "overflows"));
	assert_int_equal(st_writer_meta(&w, "", "v", err, sizeof(err)), -ST_ERR_HEADER);
	assert_int_equal(w.count, 0);
	/* a failing data source leaves neither the file nor its .tmp */
	wr_build(&w);
	path_in(path, sizeof(path), "failed.safetensors");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(st_writer_write(&w, path, wr_fill, &c, err, sizeof(err)),
			 -ST_ERR_IO);
	assert_non_null(strstr(err, "'big'"));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(st_writer_write(&w, "/nonexistent/dir/x.safetensors", NULL, NULL, err,
					 sizeof(err)), -ST_ERR_IO);
	/* a name added twice is caught before anything is written */
	assert_int_equal(st_writer_add(&w, "b.conv", ST_F32, 1, shape, err, sizeof(err)), NWR);
	assert_int_equal(st_writer_write(&w, path, NULL, NULL, err, sizeof(err)), -ST_ERR_DUP);
	assert_non_null(strstr(err, "'b.conv'"));
	assert_int_equal(access(path, F_OK), -1);
	st_writer_free(&w);
	assert_int_equal(w.count, 0);
}

static void test_f32_to_f16(void **state)
{
	uint32_t h;
	float f;

	assert_int_equal(st_f32_to_f16(1.0f), 0x3c00);
	assert_int_equal(st_f32_to_f16(-2.0f), 0xc000);
	assert_int_equal(st_f32_to_f16(65504.0f), 0x7bff);
	assert_int_equal(st_f32_to_f16(65519.0f), 0x7bff);
	assert_int_equal(st_f32_to_f16(65520.0f), 0x7c00);	/* rounds to inf */
	assert_int_equal(st_f32_to_f16(1e10f), 0x7c00);
	assert_int_equal(st_f32_to_f16(-INFINITY), 0xfc00);
	assert_int_equal(st_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);	/* tie: even */
	assert_int_equal(st_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);	/* tie: even */
	assert_int_equal(st_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
	assert_int_equal(st_f32_to_f16(0x1p-25f), 0x0000);	/* tie with 0 */
	assert_int_equal(st_f32_to_f16(0x1.01p-25f), 0x0001);
	assert_int_equal(st_f32_to_f16(3 * 0x1p-25f), 0x0002);	/* tie: even */
	assert_int_equal(st_f32_to_f16(0x1.ffcp-15f), 0x0400);	/* carries into a normal */
	assert_int_equal(st_f32_to_f16(1e-30f), 0x0000);
	assert_int_equal(st_f32_to_f16(-0.0f), 0x8000);
	h = st_f32_to_f16(NAN);
	assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
	/* every finite half survives half -> float -> half */
	for (h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue;
		f = st_f16_to_f32((uint16_t)h);
		assert_int_equal(st_f32_to_f16(f), h);
	}
	/* and halfway between neighbours, ties go to the even one */
	for (h = 0; h < 0x7bff; h++) {
		double mid = ((double)st_f16_to_f32((uint16_t)h) +
			      st_f16_to_f32((uint16_t)(h + 1))) / 2;

		assert_int_equal(st_f32_to_f16((float)mid), (h & 1) ? h + 1 : h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_roundtrip),
		cmocka_unit_test(test_sharded),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_header_length),
		cmocka_unit_test(test_lenient),
		cmocka_unit_test(test_bf16),
		cmocka_unit_test(test_f16),
		cmocka_unit_test(test_tiny_a),
		cmocka_unit_test(test_fortune),
		cmocka_unit_test(test_write_roundtrip),
		cmocka_unit_test(test_write_errors),
		cmocka_unit_test(test_f32_to_f16),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_fp8),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
