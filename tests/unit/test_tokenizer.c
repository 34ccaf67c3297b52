/* test_tokenizer.c — the Qwen tokenizer against ids made by HF tokenizers.
 *
 * tests/data/tokenizer/tokref.json: [{text, ids, decoded}] from
 * tokenizer.encode(text) / decode(ids) on the bundled fortune-13m tokenizer.
 * The model references add prompt ids and greedy ids with their text
 * (decoded with skip_special_tokens).  Run from the repo root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "text/jinja.h"
#include "text/render.h"
#include "text/tokenizer.h"

#define MODEL_DIR "assets/fortune-13m"
#define TOKREF "tests/data/tokenizer/tokref.json"
#define REFJSON MODEL_DIR "/reference/reference.json"
#define LONGJSON MODEL_DIR "/reference/fortune-long.json"
#define LONGTXT MODEL_DIR "/reference/long-prompt.txt"

static struct nc_tokenizer *tok;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p[n] = 0;
	if (len)
		*len = (size_t)n;
	return p;
}

static cJSON *load_json(const char *path)
{
	size_t len;
	char *txt = slurp(path, &len);
	cJSON *j = cJSON_ParseWithLength(txt, len);

	free(txt);
	assert_non_null(j);
	return j;
}

static int setup(void **state)
{
	char err[256] = "";

	if (nc_tok_load(&tok, MODEL_DIR, err, sizeof(err))) {
		fprintf(stderr, "load: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	nc_tok_free(tok);
	return 0;
}

static int utf8_ok(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t l = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);

		if (l <= 0)
			return 0;
		i += (size_t)l;
	}
	return 1;
}

/* Encode s and compare with a JSON array of ids; prints the first mismatch. */
static void expect_ids(const char *s, size_t len, const cJSON *want)
{
	int32_t ids[8192];
	long n = nc_tok_encode(tok, s, len, ids, 8192);
	long k = cJSON_GetArraySize(want);

	assert_true(n >= 0 && n <= 8192);
	for (long i = 0; i < n && i < k; i++) {
		int w = cJSON_GetArrayItem(want, (int)i)->valueint;

		if (ids[i] != w) {
			fprintf(stderr, "text %.40s: id[%ld] = %d, want %d\n",
				s, i, ids[i], w);
			fail();
		}
	}
	assert_int_equal(n, k);
}

static long ids_of(const cJSON *arr, int32_t *ids, size_t cap)
{
	long n = cJSON_GetArraySize(arr);

	assert_true((size_t)n <= cap);
	for (long i = 0; i < n; i++)
		ids[i] = cJSON_GetArrayItem(arr, (int)i)->valueint;
	return n;
}

static void expect_decode(const cJSON *arr, unsigned flags, const char *want)
{
	int32_t ids[8192];
	long n = ids_of(arr, ids, 8192);
	char out[65536];
	long l = nc_tok_decode_ex(tok, ids, (size_t)n, flags, out, sizeof(out));

	assert_true(l >= 0 && (size_t)l < sizeof(out));
	out[l] = 0;
	assert_string_equal(out, want);
}

static void test_tokref(void **state)
{
	cJSON *ref = load_json(TOKREF), *it;
	int count = 0;

	cJSON_ArrayForEach(it, ref) {
		const char *text = cJSON_GetObjectItem(it, "text")->valuestring;
		const cJSON *ids = cJSON_GetObjectItem(it, "ids");

		expect_ids(text, strlen(text), ids);
		expect_decode(ids, 0,
			      cJSON_GetObjectItem(it, "decoded")->valuestring);
		count++;
	}
	assert_true(count >= 20);
	cJSON_Delete(ref);
}

static void test_model_reference(void **state)
{
	cJSON *ref = load_json(REFJSON), *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "samples")) {
		const char *p = cJSON_GetObjectItem(it, "prompt")->valuestring;

		expect_ids(p, strlen(p), cJSON_GetObjectItem(it, "prompt_ids"));
		expect_decode(cJSON_GetObjectItem(it, "greedy_ids"),
			      NC_TOK_SKIP_SPECIAL,
			      cJSON_GetObjectItem(it, "greedy_text")->valuestring);
	}
	cJSON_Delete(ref);
}

/* fortune-long.json's first prompt_len tokens are long-prompt.txt's. */
static void test_long_prompt(void **state)
{
	cJSON *ref = load_json(LONGJSON);
	const cJSON *toks = cJSON_GetObjectItem(ref, "tokens");
	int plen = cJSON_GetObjectItem(ref, "prompt_len")->valueint;
	size_t len;
	char *txt = slurp(LONGTXT, &len);
	int32_t ids[4096];
	long n = nc_tok_encode(tok, txt, len, ids, 4096);

	assert_true(n >= plen && n <= 4096);
	for (int i = 0; i < plen; i++)
		assert_int_equal(ids[i], cJSON_GetArrayItem(toks, i)->valueint);
	free(txt);
	cJSON_Delete(ref);
}

static void test_lookup(void **state)
{
	char err[128];
	struct nc_tokenizer *t2;

	assert_int_equal(nc_tok_vocab_size(tok), 4096);
	assert_int_equal(nc_tok_id(tok, "<|endoftext|>"), 4093);
	assert_int_equal(nc_tok_id(tok, "<|im_start|>"), 4094);
	assert_int_equal(nc_tok_id(tok, "<|im_end|>"), 4095);
	assert_int_equal(nc_tok_id(tok, "!"), 0);
	assert_int_equal(nc_tok_id(tok, "no such token here"), -1);
	assert_int_equal(nc_tok_eos_id(tok), 4093);
	assert_int_equal(nc_tok_pad_id(tok), 4093);
	assert_int_equal(nc_tok_bos_id(tok), -1);
	assert_int_equal(nc_tok_is_special(tok, 4095), 1);
	assert_int_equal(nc_tok_is_special(tok, 0), 0);
	assert_true(nc_tok_is_special(tok, 4096) < 0);
	assert_non_null(nc_tok_chat_template(tok));
	assert_true(nc_tok_load(&t2, "/nonexistent", err, sizeof(err)) < 0);
	assert_null(t2);
	assert_true(strlen(err) > 0);
	assert_true(nc_tok_load_json(&t2, "{}", 2, err, sizeof(err)) < 0);
	assert_true(nc_tok_load_json(&t2, "{", 1, err, sizeof(err)) < 0);
}

static void test_small_buffers(void **state)
{
	const char *s = "The quick brown fox jumps over the lazy dog.";
	int32_t ids[64], few[3];
	long n = nc_tok_encode(tok, s, strlen(s), ids, 64);
	char out[8];
	long l;

	assert_int_equal(n, 15);
	assert_int_equal(nc_tok_encode(tok, s, strlen(s), NULL, 0), n);
	assert_int_equal(nc_tok_encode(tok, s, strlen(s), few, 3), n);
	assert_memory_equal(few, ids, sizeof(few));
	l = nc_tok_decode(tok, ids, (size_t)n, NULL, 0);
	assert_int_equal(l, (long)strlen(s));
	assert_int_equal(nc_tok_decode(tok, ids, (size_t)n, out, sizeof(out)), l);
	assert_memory_equal(out, s, sizeof(out));
	assert_int_equal(nc_tok_encode(tok, "", 0, ids, 64), 0);
}

static void test_bad_ids(void **state)
{
	int32_t bad[] = { 5, -1 }, big[] = { 4096 };
	char out[16];

	assert_true(nc_tok_decode(tok, bad, 2, out, sizeof(out)) < 0);
	assert_true(nc_tok_decode(tok, big, 1, out, sizeof(out)) < 0);
}

/* Invalid UTF-8 is encoded as Python's decode(errors="replace") would
 * repair it: each maximal invalid subpart becomes one U+FFFD. */
static void expect_same(const char *raw, size_t rl, const char *fixed)
{
	int32_t a[64], b[64];
	long na = nc_tok_encode(tok, raw, rl, a, 64);
	long nb = nc_tok_encode(tok, fixed, strlen(fixed), b, 64);

	assert_true(na > 0 && na <= 64);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, (size_t)na * sizeof(*a));
}

#define FFFD "\xEF\xBF\xBD"

static void test_invalid_utf8(void **state)
{
	uint32_t x = 12345;

	expect_same("\xff", 1, FFFD);
	expect_same("a\xe4\xb8" "b", 4, "a" FFFD "b");
	expect_same("\xed\xa0\x80", 3, FFFD FFFD FFFD);	/* surrogate */
	expect_same("\xc0\xaf", 2, FFFD FFFD);		/* overlong */
	expect_same("\xf0\x9f\x98", 3, FFFD);		/* cut short */
	expect_same("x\xf4\x90\x80\x80", 5, "x" FFFD FFFD FFFD FFFD);
	expect_same("\x80<|im_end|>\xe4", 12, FFFD "<|im_end|>" FFFD);
	/* Random bytes: no crash, and the round trip is valid UTF-8. */
	for (int r = 0; r < 200; r++) {
		char in[256], out[1024];
		int32_t ids[1024];
		long n, l;

		for (size_t i = 0; i < sizeof(in); i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			in[i] = (char)(r & 1 ? x : (x & 0x8F) | 0x60);
		}
		n = nc_tok_encode(tok, in, sizeof(in), ids, 1024);
		assert_true(n >= 0 && n <= 1024);
		l = nc_tok_decode(tok, ids, (size_t)n, out, sizeof(out));
		assert_true(l >= 0 && (size_t)l <= sizeof(out));
		assert_true(utf8_ok(out, (size_t)l));
	}
}

static void test_nul_split(void **state)
{
	int32_t a[16], b[16];
	long na = nc_tok_encode(tok, "nul\0byte", 8, a, 16);
	long nb = nc_tok_encode(tok, "nul", 3, b, 16);

	/* The NUL must not end the text: more ids than "nul" alone. */
	assert_true(na > nb);
}

/* Streaming: output is always whole UTF-8, and the pieces add up to the
 * full decode. */
static void test_stream(void **state)
{
	uint32_t x = 99;
	uint32_t v = nc_tok_vocab_size(tok);

	for (int r = 0; r < 300; r++) {
		int32_t ids[40];
		char full[2048], cat[2048], piece[256];
		size_t nc = 0;
		struct nc_detok d;
		long nf, l;

		for (int i = 0; i < 40; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			/* bias toward the byte tokens that split characters */
			ids[i] = (int32_t)(r & 1 ? x % 256 : x % v);
		}
		nf = nc_tok_decode(tok, ids, 40, full, sizeof(full));
		assert_true(nf >= 0 && (size_t)nf < sizeof(full));
		nc_detok_init(&d);
		for (int i = 0; i < 40; i++) {
			l = nc_detok_push(&d, tok, ids[i], piece, sizeof(piece));
			assert_true(l >= 0 && (size_t)l <= sizeof(piece));
			assert_true(utf8_ok(piece, (size_t)l));
			memcpy(cat + nc, piece, (size_t)l);
			nc += (size_t)l;
		}
		l = nc_detok_flush(&d, piece, sizeof(piece));
		assert_true(l >= 0 && l <= 3);
		memcpy(cat + nc, piece, (size_t)l);
		nc += (size_t)l;
		assert_int_equal(nc, (size_t)nf);
		assert_memory_equal(cat, full, nc);
	}
}

/* A character split across tokens comes out once it is complete; a buffer
 * too small consumes nothing. */
static void test_stream_split_char(void **state)
{
	const char *s = "\xe4\xb8\xad";	/* U+4E2D as three byte tokens */
	int32_t ids[8];
	long n = nc_tok_encode(tok, s, 3, ids, 8);
	struct nc_detok d;
	char out[16];
	long l = 0;

	assert_true(n >= 2);
	nc_detok_init(&d);
	for (long i = 0; i + 1 < n; i++)
		assert_int_equal(nc_detok_push(&d, tok, ids[i], out, sizeof(out)), 0);
	assert_true(d.npend > 0);
	assert_int_equal(nc_detok_push(&d, tok, ids[n - 1], out, 1), 3);
	l = nc_detok_push(&d, tok, ids[n - 1], out, sizeof(out));
	assert_int_equal(l, 3);
	assert_memory_equal(out, s, 3);
	assert_int_equal(nc_detok_flush(&d, out, sizeof(out)), 0);
	/* dangling lead byte: flush gives U+FFFD */
	nc_detok_init(&d);
	assert_int_equal(nc_detok_push(&d, tok, ids[0], out, sizeof(out)), 0);
	assert_int_equal(nc_detok_flush(&d, out, sizeof(out)), 3);
	assert_memory_equal(out, FFFD, 3);
	/* skip_special drops <|im_end|> */
	nc_detok_init(&d);
	d.skip_special = 1;
	assert_int_equal(nc_detok_push(&d, tok, 4095, out, sizeof(out)), 0);
	assert_true(nc_detok_push(&d, tok, -3, out, sizeof(out)) < 0);
}

/* A hand-made tokenizer.json: merges as strings or pairs, GPT-2 style
 * ByteLevel regex, prefix space, ignore_merges, and refusals. */
static struct nc_tokenizer *mini(const char *merges, const char *norm,
				 const char *pretok, int ignore_merges)
{
	char json[2048], err[256];
	struct nc_tokenizer *t = NULL;
	int rc;

	snprintf(json, sizeof(json),
		 "{\"added_tokens\":[{\"id\":7,\"content\":\"<x>\",\"special\":true}],"
		 "\"normalizer\":%s,\"pre_tokenizer\":%s,"
		 "\"decoder\":{\"type\":\"ByteLevel\"},"
		 "\"model\":{\"type\":\"BPE\",\"ignore_merges\":%s,\"vocab\":"
		 "{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"\xc4\xa0\":5,"
		 "\"\xc4\xa0" "a\":6,\"\xc4\xa0" "ab\":8},\"merges\":%s}}",
		 norm, pretok, ignore_merges ? "true" : "false", merges);
	rc = nc_tok_load_json(&t, json, strlen(json), err, sizeof(err));
	if (rc)
		fprintf(stderr, "mini: %s\n", err);
	return t;
}

static void expect_mini(struct nc_tokenizer *t, const char *s,
			const int32_t *want, long n)
{
	int32_t ids[32];

	assert_non_null(t);
	assert_int_equal(nc_tok_encode(t, s, strlen(s), ids, 32), n);
	assert_memory_equal(ids, want, (size_t)n * sizeof(*ids));
	nc_tok_free(t);
}

#define BL_REGEX "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"
#define BL_PREFIX "{\"type\":\"ByteLevel\",\"add_prefix_space\":true}"
#define STR_MERGES "[\"a b\",\"ab c\",\"\xc4\xa0 a\"]"
#define ARR_MERGES "[[\"a\",\"b\"],[\"ab\",\"c\"],[\"\xc4\xa0\",\"a\"]]"

static void test_mini_json(void **state)
{
	const int32_t plain[] = { 4, 5, 3, 7, 2, 0 };
	const int32_t prefix[] = { 5, 4, 5, 3, 7, 5, 2, 0 };
	const int32_t whole[] = { 4, 8, 7, 2, 0 };
	const char *seq = "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]}";
	struct nc_tokenizer *t;
	char out[16];
	int32_t ids[] = { 5, 4 };

	expect_mini(mini(STR_MERGES, "null", BL_REGEX, 0), "abc ab<x>ca", plain, 6);
	expect_mini(mini(ARR_MERGES, seq, BL_REGEX, 0), "abc ab<x>ca", plain, 6);
	expect_mini(mini(STR_MERGES, "null", BL_PREFIX, 0), "abc ab<x>ca", prefix, 8);
	expect_mini(mini(STR_MERGES, "null", BL_REGEX, 1), "abc ab<x>ca", whole, 5);
	/* a Split step followed by ByteLevel with its own regex: the second
	 * regex runs inside each piece of the first (once looped forever when
	 * the inner match overwrote the outer one's offsets) */
	expect_mini(mini(STR_MERGES, "null",
			 "{\"type\":\"Sequence\",\"pretokenizers\":["
			 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[abc]+|\\\\s\"},"
			 "\"behavior\":\"Isolated\"}," BL_REGEX "]}", 0),
		    "abc ab<x>ca", plain, 6);
	t = mini(STR_MERGES, "null", BL_REGEX, 0);
	assert_int_equal(nc_tok_decode(t, ids, 2, out, sizeof(out)), 4);
	assert_memory_equal(out, " abc", 4);
	nc_tok_free(t);
	/* what we do not support is refused, not half-done */
	assert_null(mini("[\"a q\"]", "null", BL_REGEX, 0));
	assert_null(mini("[\"a b c\"]", "null", BL_REGEX, 0));
	assert_null(mini(STR_MERGES, "{\"type\":\"Lowercase\"}", BL_REGEX, 0));
	assert_null(mini(STR_MERGES, "null", "{\"type\":\"Metaspace\"}", 0));
	assert_null(mini(STR_MERGES, "null",
			 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
			 "\"behavior\":\"Isolated\"}", 0));
	assert_null(mini(STR_MERGES, "null",
			 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
			 "\"behavior\":\"Removed\"}", 0));
}

/* A chat request through the tokenizer's own template (fortune-13m's). */
static char *render(const char *req_json, int agp, size_t *n)
{
	char err[256];
	struct nc_jinja *t = nc_render_compile(tok, NULL, err, sizeof(err));
	cJSON *req = cJSON_Parse(req_json);
	char *out;

	assert_non_null(t);
	assert_non_null(req);
	out = nc_render_chat(t, tok, req, agp, n, err, sizeof(err));
	assert_non_null(out);
	cJSON_Delete(req);
	nc_jinja_free(t);
	return out;
}

static void test_chat(void **state)
{
	const char *two = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
			  "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}";
	const char *one = "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}";
	int32_t ids[128];
	cJSON *ref = load_json(TOKREF), *it;
	size_t n;
	char *out;
	int seen = 0;

	(void)state;
	out = render(two, 1, &n);
	assert_string_equal(out, "<|im_start|>system\nBe brief.<|im_end|>\n"
				 "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
				 "<|im_start|>assistant\n");
	assert_int_equal(n, strlen(out));
	free(out);
	/* the bundled template adds no system message of its own */
	out = render(one, 0, &n);
	assert_string_equal(out, "<|im_start|>user\nWhat is 2+2?<|im_end|>\n");
	free(out);
	/* the tokref chat string, tokenized, as HF does */
	out = render(one, 1, &n);
	cJSON_ArrayForEach(it, ref) {
		if (strcmp(cJSON_GetObjectItem(it, "text")->valuestring, out))
			continue;
		seen = 1;
		expect_ids(out, n, cJSON_GetObjectItem(it, "ids"));
		assert_int_equal(nc_tok_encode(tok, out, n, ids, 128),
				 cJSON_GetArraySize(cJSON_GetObjectItem(it, "ids")));
	}
	assert_true(seen);
	free(out);
	cJSON_Delete(ref);
}

/* An older Qwen template's default system message comes from the template
 * itself now (it is rendered, not pattern-matched). */
static void test_chat_default_system(void **state)
{
	/* in the manner of Qwen2.5's template (a Jinja "\n" escape) */
	const char *tpl =
		"{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' "
		"+ messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}"
		"{{- '<|im_start|>system\\nYou are Qwen, a helpful assistant."
		"<|im_end|>\\n' }}{%- endif %}{%- for m in messages %}{%- if m.role != 'system' %}"
		"{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endif %}"
		"{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
	char err[256], *out;
	struct nc_jinja *t = nc_jinja_compile(tpl, strlen(tpl), err, sizeof(err));
	cJSON *user = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	cJSON *sys = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
				 "{\"role\":\"user\",\"content\":\"hi\"}]}");
	size_t n;

	(void)state;
	assert_non_null(t);
	out = nc_render_chat(t, tok, user, 1, &n, err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "<|im_start|>system\nYou are Qwen, a helpful "
				 "assistant.<|im_end|>\n<|im_start|>user\nhi"
				 "<|im_end|>\n<|im_start|>assistant\n");
	free(out);
	out = nc_render_chat(t, tok, sys, 0, &n, err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "<|im_start|>system\nS<|im_end|>\n"
				 "<|im_start|>user\nhi<|im_end|>\n");
	free(out);
	cJSON_Delete(user);
	cJSON_Delete(sys);
	nc_jinja_free(t);
}

/* ~1 MB of fortunes joined by <|endoftext|>: checks the word cache (only
 * used for long texts) against the plain path, and prints the speed. */
static void test_speed(void **state)
{
	size_t len, tl = 0;
	char *lp = slurp(LONGTXT, &len);
	int32_t one[4096];
	long n1 = nc_tok_encode(tok, lp, len, one, 4096);
	size_t reps = (1 << 20) / (len + 13) + 1;
	char *text = malloc(reps * (len + 13));
	int32_t *ids = malloc(reps * ((size_t)n1 + 1) * sizeof(*ids));
	struct timespec t0, t1;
	double s;
	long n;

	assert_true(n1 > 0 && len < 4096);
	assert_non_null(text);
	assert_non_null(ids);
	for (size_t r = 0; r < reps; r++) {
		memcpy(text + tl, lp, len);
		memcpy(text + tl + len, "<|endoftext|>", 13);
		tl += len + 13;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = nc_tok_encode(tok, text, tl, ids, reps * ((size_t)n1 + 1));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	printf("encode: %zu bytes -> %ld ids in %.3f s = %.2f MB/s\n", tl, n, s,
	       (double)tl / 1e6 / s);
	assert_int_equal(n, (long)(reps * ((size_t)n1 + 1)));
	/* the same work in 4 KB calls, too short for the word cache */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t r = 0; r < reps; r++)
		nc_tok_encode(tok, lp, len, one, 4096);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	printf("encode: %zu x %zu bytes, uncached, = %.2f MB/s\n", reps, len,
	       (double)(reps * len) / 1e6 / s);
	for (size_t r = 0; r < reps; r++) {
		assert_memory_equal(ids + r * ((size_t)n1 + 1), one,
				    (size_t)n1 * sizeof(*ids));
		assert_int_equal(ids[r * ((size_t)n1 + 1) + (size_t)n1], 4093);
	}
	free(ids);
	free(text);
	free(lp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokref),
		cmocka_unit_test(test_model_reference),
		cmocka_unit_test(test_long_prompt),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_bad_ids),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nul_split),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_stream_split_char),
		cmocka_unit_test(test_mini_json),
		cmocka_unit_test(test_chat),
		cmocka_unit_test(test_chat_default_system),
		cmocka_unit_test(test_speed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
