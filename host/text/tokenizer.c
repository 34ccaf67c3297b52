/* tokenizer.c — byte-level BPE as Hugging Face `tokenizers` runs it for Qwen.
 *
 * Encode pipeline (each step mirrors one part of tokenizer.json):
 *   repair invalid UTF-8 (U+FFFD per maximal invalid subpart, like Python)
 *   -> cut out added tokens (leftmost, longest first)
 *   -> normalizer (NFC via utf8proc) on each remaining segment
 *   -> pre_tokenizer steps (PCRE2 Split "Isolated", ByteLevel)
 *   -> BPE per pre-token: symbols in a linked list, candidate pairs in a
 *      binary heap keyed (rank, position), stale entries skipped on pop.
 * BPE works on ids, not strings: each byte maps to the id of its byte-level
 * symbol, and a merge is (left id, right id) -> (rank, merged id).
 */
#include "text/obuf.h"
#include "text/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define MAX_STEPS 8		/* pre-tokenizer steps we accept */
#define MAX_ID (1 << 24)	/* sanity bound on token ids */
#define CACHE_MIN_TEXT 4096	/* texts shorter than this skip the word cache */
#define CACHE_MAX_WORD 64	/* longer pre-tokens are not cached */

/* GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex. */
static const char gpt2_pattern[] =
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
	"|\\s+(?!\\S)|\\s+";

enum tok_kind { K_NONE, K_VOCAB, K_ADDED, K_SPECIAL };

struct tok_ent {
	uint32_t str_off, str_len;	/* vocabulary string in strs */
	uint32_t dec_off, dec_len;	/* decoded bytes in decs */
	uint8_t kind;
};

struct merge_slot {
	uint64_t key;			/* left << 32 | right; EMPTY_KEY if free */
	int32_t rank;
	int32_t id;
};
#define EMPTY_KEY UINT64_MAX

struct added_tok {
	uint32_t len;
	int32_t id;
	const char *s;			/* points into strs */
};

enum step_type { STEP_SPLIT, STEP_BYTELEVEL };

struct pre_step {
	enum step_type type;
	pcre2_code *re;			/* NULL: no split in this step */
	int prefix_space;		/* ByteLevel add_prefix_space */
};

struct nc_tokenizer {
	struct tok_ent *ents;		/* indexed by id */
	uint32_t nids;			/* one past the largest id */
	struct nc_obuf strs, decs;
	int32_t *vslots;		/* string -> id hash, -1 free */
	uint32_t vmask;
	struct merge_slot *mslots;
	uint32_t mmask;
	int32_t byte_id[256];		/* id of each byte's symbol, -1 if none */
	struct added_tok *added;	/* sorted longest first */
	size_t nadded;
	uint8_t added_first[256];	/* 1 if some added token starts so */
	int norm_opts;			/* utf8proc options; 0: no normalizer */
	struct pre_step steps[MAX_STEPS];
	size_t nsteps;
	int ignore_merges;
	int32_t eos, pad, bos;
	char *chat_template;
	char *special[4];	/* bos, eos, pad, unk token strings of tokenizer_config.json */
};

static const char *const special_keys[4] = { "bos_token", "eos_token", "pad_token", "unk_token" };

/* ---- small helpers ---- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint32_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

static uint32_t hash_u64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (uint32_t)k;
}

static uint32_t pow2_at_least(size_t n)
{
	uint32_t c = 16;

	while (c < n * 2)
		c *= 2;
	return c;
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes keep their code point;
 * the 68 others (0x00-0x20, 0x7F-0xA0, 0xAD) move to 256.. in byte order. */
static uint32_t byte_to_cp(unsigned b)
{
	if (b <= 0x20)
		return 256 + b;
	if (b >= 0x7F && b <= 0xA0)
		return 256 + 33 + (b - 0x7F);
	if (b == 0xAD)
		return 256 + 67;
	return b;
}

/* Inverse of byte_to_cp, -1 if cp is no byte's symbol. */
static int cp_to_byte(uint32_t cp)
{
	if (cp < 256)
		return byte_to_cp(cp) == cp ? (int)cp : -1;
	if (cp < 256 + 33)
		return (int)(cp - 256);
	if (cp < 256 + 67)
		return (int)(cp - 256 - 33 + 0x7F);
	return cp == 256 + 67 ? 0xAD : -1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	o[0] = (char)(0xE0 | cp >> 12);
	o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[2] = (char)(0x80 | (cp & 0x3F));
	return 3;
}

/* ---- lossy UTF-8 repair (maximal subpart rule, as Python and Rust) ---- */

struct sink {
	char *out;
	size_t cap, n;
};

static void sink_put(struct sink *k, const void *p, size_t n)
{
	if (k->n < k->cap) {
		size_t room = k->cap - k->n;

		memcpy(k->out + k->n, p, n < room ? n : room);
	}
	k->n += n;
}

static const char repl_char[3] = { (char)0xEF, (char)0xBF, (char)0xBD };

static unsigned seq_len(uint8_t c)
{
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

/* Is c acceptable as byte number i (1-based) after lead byte `lead`? */
static int cont_ok(uint8_t lead, size_t i, uint8_t c)
{
	if (i == 1) {
		if (lead == 0xE0)
			return c >= 0xA0 && c <= 0xBF;
		if (lead == 0xED)
			return c >= 0x80 && c <= 0x9F;
		if (lead == 0xF0)
			return c >= 0x90 && c <= 0xBF;
		if (lead == 0xF4)
			return c >= 0x80 && c <= 0x8F;
	}
	return c >= 0x80 && c <= 0xBF;
}

/* Feed bytes through the repair state (pend/npend), writing valid UTF-8. */
static void utf8_feed(uint8_t *pend, size_t *npend, const uint8_t *p,
		      size_t n, struct sink *k)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (*npend) {
			if (cont_ok(pend[0], *npend, c)) {
				pend[(*npend)++] = c;
				if (*npend == seq_len(pend[0])) {
					sink_put(k, pend, *npend);
					*npend = 0;
				}
				continue;
			}
			sink_put(k, repl_char, 3);
			*npend = 0;
		}
		if (c < 0x80)
			sink_put(k, &c, 1);
		else if (seq_len(c))
			pend[(*npend)++] = c;
		else
			sink_put(k, repl_char, 3);
	}
}

static void utf8_finish(size_t *npend, struct sink *k)
{
	if (*npend)
		sink_put(k, repl_char, 3);
	*npend = 0;
}

static int utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned l;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		l = seq_len(p[i]);
		if (!l || n - i < l)
			return 0;
		for (unsigned j = 1; j < l; j++)
			if (!cont_ok(p[i], j, p[i + j]))
				return 0;
		i += l;
	}
	return 1;
}

/* ---- vocabulary hash: string -> id ---- */

static const char *ent_str(const struct nc_tokenizer *t, int32_t id)
{
	return t->strs.p + t->ents[id].str_off;
}

static int32_t *vslot_find(const struct nc_tokenizer *t, const char *s,
			   size_t n)
{
	uint32_t i = hash_bytes(s, n) & t->vmask;

	for (;; i = (i + 1) & t->vmask) {
		int32_t id = t->vslots[i];

		if (id < 0)
			return &t->vslots[i];
		if (t->ents[id].str_len == n && !memcmp(ent_str(t, id), s, n))
			return &t->vslots[i];
	}
}

static int32_t vocab_lookup(const struct nc_tokenizer *t, const char *s,
			    size_t n)
{
	return *vslot_find(t, s, n);
}

/* ---- merges hash: (left, right) -> (rank, id) ---- */

static const struct merge_slot *merge_find(const struct nc_tokenizer *t,
					   int32_t a, int32_t b)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	uint32_t i = hash_u64(key) & t->mmask;

	for (;; i = (i + 1) & t->mmask) {
		const struct merge_slot *m = &t->mslots[i];

		if (m->key == key)
			return m;
		if (m->key == EMPTY_KEY)
			return NULL;
	}
}

static void merge_put(struct nc_tokenizer *t, int32_t a, int32_t b,
		      int32_t rank, int32_t id)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	uint32_t i = hash_u64(key) & t->mmask;

	while (t->mslots[i].key != EMPTY_KEY && t->mslots[i].key != key)
		i = (i + 1) & t->mmask;
	/* A repeated pair keeps the later rank, as HF's HashMap collect does. */
	t->mslots[i] = (struct merge_slot){ key, rank, id };
}

/* ---- loading ---- */

/* Decoded bytes of a token string: byte-level symbols back to bytes, or the
 * raw string when some character is not a byte symbol (HF ByteLevel). */
static int add_decoded(struct nc_tokenizer *t, struct tok_ent *e,
		       const char *s, size_t n)
{
	size_t start = t->decs.len;
	utf8proc_ssize_t i = 0;

	e->dec_off = (uint32_t)start;
	while ((size_t)i < n) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t l;
		int b;

		l = utf8proc_iterate((const uint8_t *)s + i,
				     (utf8proc_ssize_t)n - i, &cp);
		b = l > 0 ? cp_to_byte((uint32_t)cp) : -1;
		if (b < 0) {
			t->decs.len = start;
			if (nc_obuf_put(&t->decs, s, n))
				return -ENOMEM;
			e->dec_len = (uint32_t)n;
			return 0;
		}
		uint8_t c = (uint8_t)b;

		if (nc_obuf_put(&t->decs, (const char *)&c, 1))
			return -ENOMEM;
		i += l;
	}
	e->dec_len = (uint32_t)(t->decs.len - start);
	return 0;
}

static int set_token(struct nc_tokenizer *t, int32_t id, const char *s,
		     enum tok_kind kind)
{
	struct tok_ent *e = &t->ents[id];
	size_t n = strlen(s);
	int32_t *slot;

	e->str_off = (uint32_t)t->strs.len;
	e->str_len = (uint32_t)n;
	e->kind = (uint8_t)kind;
	if (nc_obuf_put(&t->strs, s, n + 1) || add_decoded(t, e, s, n))
		return -ENOMEM;
	slot = vslot_find(t, s, n);
	*slot = id;
	return 0;
}

static int max_id(const cJSON *vocab, const cJSON *added, uint32_t *out)
{
	const cJSON *it;
	double mx = -1;

	cJSON_ArrayForEach(it, vocab) {
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
		    it->valuedouble >= MAX_ID)
			return -EINVAL;
		if (it->valuedouble > mx)
			mx = it->valuedouble;
	}
	cJSON_ArrayForEach(it, added) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");

		if (!cJSON_IsNumber(id) || id->valuedouble < 0 ||
		    id->valuedouble >= MAX_ID)
			return -EINVAL;
		if (id->valuedouble > mx)
			mx = id->valuedouble;
	}
	*out = (uint32_t)(mx + 1);
	return 0;
}

static int load_vocab(struct nc_tokenizer *t, const cJSON *vocab,
		      const cJSON *added, char *err, size_t errlen)
{
	const cJSON *it;
	size_t n = (size_t)cJSON_GetArraySize(vocab) +
		   (size_t)cJSON_GetArraySize(added);

	if (max_id(vocab, added, &t->nids)) {
		seterr(err, errlen, "tokenizer.json: bad token id");
		return -EINVAL;
	}
	t->ents = calloc(t->nids ? t->nids : 1, sizeof(*t->ents));
	t->vmask = pow2_at_least(n) - 1;
	t->vslots = malloc((t->vmask + 1) * sizeof(*t->vslots));
	if (!t->ents || !t->vslots)
		return -ENOMEM;
	memset(t->vslots, 0xff, (t->vmask + 1) * sizeof(*t->vslots));
	cJSON_ArrayForEach(it, vocab) {
		if (set_token(t, (int32_t)it->valuedouble, it->string, K_VOCAB))
			return -ENOMEM;
	}
	return 0;
}

static int cmp_added(const void *a, const void *b)
{
	const struct added_tok *x = a, *y = b;

	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return x->id - y->id;
}

static int load_added(struct nc_tokenizer *t, const cJSON *added, char *err,
		      size_t errlen)
{
	const cJSON *it;
	size_t n = (size_t)cJSON_GetArraySize(added);

	t->added = calloc(n ? n : 1, sizeof(*t->added));
	if (!t->added)
		return -ENOMEM;
	cJSON_ArrayForEach(it, added) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "special");
		int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(it, "id")
				     ->valuedouble;

		if (!cJSON_IsString(c) || !c->valuestring[0]) {
			seterr(err, errlen, "tokenizer.json: bad added token");
			return -EINVAL;
		}
		if (set_token(t, id, c->valuestring,
			      cJSON_IsTrue(sp) ? K_SPECIAL : K_ADDED))
			return -ENOMEM;
		t->added[t->nadded++] = (struct added_tok){
			(uint32_t)strlen(c->valuestring), id, NULL };
	}
	for (size_t i = 0; i < t->nadded; i++) {
		struct added_tok *a = &t->added[i];

		a->s = ent_str(t, a->id);
		t->added_first[(uint8_t)a->s[0]] = 1;
	}
	qsort(t->added, t->nadded, sizeof(*t->added), cmp_added);
	return 0;
}

/* One merge: "a b" or ["a", "b"]. */
static int merge_parts(const cJSON *m, char *tmp, size_t tmplen,
		       const char **a, const char **b)
{
	if (cJSON_IsString(m)) {
		const char *s = m->valuestring;
		const char *sp = strchr(s, ' ');
		size_t l = strlen(s);

		if (!sp || strchr(sp + 1, ' ') || l + 1 > tmplen)
			return -EINVAL;
		memcpy(tmp, s, l + 1);
		tmp[sp - s] = 0;
		*a = tmp;
		*b = tmp + (sp - s) + 1;
		return 0;
	}
	if (cJSON_GetArraySize(m) != 2 ||
	    !cJSON_IsString(cJSON_GetArrayItem(m, 0)) ||
	    !cJSON_IsString(cJSON_GetArrayItem(m, 1)))
		return -EINVAL;
	*a = cJSON_GetArrayItem(m, 0)->valuestring;
	*b = cJSON_GetArrayItem(m, 1)->valuestring;
	return 0;
}

static int load_merges(struct nc_tokenizer *t, const cJSON *merges, char *err,
		       size_t errlen)
{
	const cJSON *m;
	int32_t rank = 0;
	char tmp[512], cat[512];

	t->mmask = pow2_at_least((size_t)cJSON_GetArraySize(merges)) - 1;
	t->mslots = malloc((t->mmask + 1) * sizeof(*t->mslots));
	if (!t->mslots)
		return -ENOMEM;
	for (uint32_t i = 0; i <= t->mmask; i++)
		t->mslots[i].key = EMPTY_KEY;
	cJSON_ArrayForEach(m, merges) {
		const char *a, *b;
		int32_t ia, ib, ic;
		size_t la, lb;

		if (merge_parts(m, tmp, sizeof(tmp), &a, &b))
			goto bad;
		la = strlen(a);
		lb = strlen(b);
		if (la + lb >= sizeof(cat))
			goto bad;
		memcpy(cat, a, la);
		memcpy(cat + la, b, lb);
		ia = vocab_lookup(t, a, la);
		ib = vocab_lookup(t, b, lb);
		ic = vocab_lookup(t, cat, la + lb);
		if (ia < 0 || ib < 0 || ic < 0)
			goto bad;
		merge_put(t, ia, ib, rank++, ic);
	}
	return 0;
bad:
	seterr(err, errlen, "tokenizer.json: bad merge #%d", (int)rank);
	return -EINVAL;
}

static int norm_one(const cJSON *n, int *opts)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(n, "type");
	const char *s = cJSON_IsString(ty) ? ty->valuestring : "";

	if (!strcmp(s, "NFC"))
		*opts |= UTF8PROC_COMPOSE;
	else if (!strcmp(s, "NFD"))
		*opts |= UTF8PROC_DECOMPOSE;
	else if (!strcmp(s, "NFKC"))
		*opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
	else if (!strcmp(s, "NFKD"))
		*opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
	else
		return -EINVAL;
	return 0;
}

static int load_normalizer(struct nc_tokenizer *t, const cJSON *n, char *err,
			   size_t errlen)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(n, "type");
	const cJSON *it;
	int opts = 0;

	if (!n || cJSON_IsNull(n))
		return 0;
	if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) {
		cJSON_ArrayForEach(it,
			cJSON_GetObjectItemCaseSensitive(n, "normalizers"))
			if (norm_one(it, &opts))
				goto bad;
	} else if (norm_one(n, &opts)) {
		goto bad;
	}
	/* NFKC after NFD (or the reverse) collapses to one mapping: fine for
	 * the single-normalizer files Qwen ships. */
	t->norm_opts = opts | UTF8PROC_STABLE;
	return 0;
bad:
	seterr(err, errlen, "tokenizer.json: unsupported normalizer");
	return -EINVAL;
}

static int compile_re(pcre2_code **re, const char *pat, uint32_t extra,
		      char *err, size_t errlen)
{
	int ec;
	PCRE2_SIZE eo;

	*re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
			    PCRE2_UTF | PCRE2_UCP | extra, &ec, &eo, NULL);
	if (!*re) {
		PCRE2_UCHAR msg[128];

		pcre2_get_error_message(ec, msg, sizeof(msg));
		seterr(err, errlen, "pre-tokenizer regex at %zu: %s",
		       (size_t)eo, (char *)msg);
		return -EINVAL;
	}
	pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE); /* optional speed-up */
	return 0;
}

static int load_split(struct pre_step *st, const cJSON *p, char *err,
		      size_t errlen)
{
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
	const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
	const cJSON *inv = cJSON_GetObjectItemCaseSensitive(p, "invert");
	const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
	const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");

	if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") ||
	    cJSON_IsTrue(inv)) {
		seterr(err, errlen, "pre-tokenizer: only Isolated splits");
		return -EINVAL;
	}
	st->type = STEP_SPLIT;
	if (cJSON_IsString(rx))
		return compile_re(&st->re, rx->valuestring, 0, err, errlen);
	if (cJSON_IsString(lit))
		return compile_re(&st->re, lit->valuestring, PCRE2_LITERAL,
				  err, errlen);
	seterr(err, errlen, "pre-tokenizer: Split without pattern");
	return -EINVAL;
}

static int load_step(struct nc_tokenizer *t, const cJSON *p, char *err,
		     size_t errlen)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
	struct pre_step *st;

	if (t->nsteps == MAX_STEPS) {
		seterr(err, errlen, "pre-tokenizer: too many steps");
		return -EINVAL;
	}
	st = &t->steps[t->nsteps++];
	if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Split"))
		return load_split(st, p, err, errlen);
	if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "ByteLevel")) {
		const cJSON *ur = cJSON_GetObjectItemCaseSensitive(p, "use_regex");

		st->type = STEP_BYTELEVEL;
		st->prefix_space = cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space"));
		/* use_regex defaults to true in HF */
		if (!ur || cJSON_IsTrue(ur))
			return compile_re(&st->re, gpt2_pattern, 0, err, errlen);
		return 0;
	}
	seterr(err, errlen, "pre-tokenizer: unsupported type %s",
	       cJSON_IsString(ty) ? ty->valuestring : "?");
	return -EINVAL;
}

static int load_pretok(struct nc_tokenizer *t, const cJSON *p, char *err,
		       size_t errlen)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
	const cJSON *it;
	int rc;

	if (!p || cJSON_IsNull(p))
		return 0;
	if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "Sequence"))
		return load_step(t, p, err, errlen);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) {
		rc = load_step(t, it, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int load_decoder(const cJSON *d, char *err, size_t errlen)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(d, "type");

	if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "ByteLevel"))
		return 0;
	seterr(err, errlen, "tokenizer.json: decoder must be ByteLevel");
	return -EINVAL;
}

static int load_model(struct nc_tokenizer *t, const cJSON *root, char *err,
		      size_t errlen)
{
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(model, "type");
	const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
	const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
	const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
	const cJSON *dropout;
	char sym[4];
	int rc;

	if ((ty && (!cJSON_IsString(ty) || strcmp(ty->valuestring, "BPE"))) ||
	    !cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
		seterr(err, errlen, "tokenizer.json: model is not BPE");
		return -EINVAL;
	}
	if (added && !cJSON_IsArray(added)) {
		seterr(err, errlen, "tokenizer.json: bad added_tokens");
		return -EINVAL;
	}
	dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
	if ((cJSON_IsNumber(dropout) && dropout->valuedouble > 0) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"))) {
		seterr(err, errlen, "tokenizer.json: BPE dropout/byte_fallback unsupported");
		return -EINVAL;
	}
	t->ignore_merges = cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
	rc = load_vocab(t, vocab, added, err, errlen);
	if (!rc)
		rc = load_merges(t, merges, err, errlen);
	if (!rc)
		rc = load_added(t, added, err, errlen);
	if (rc)
		return rc;
	for (unsigned b = 0; b < 256; b++)
		t->byte_id[b] = vocab_lookup(t, sym, put_utf8(sym, byte_to_cp(b)));
	return 0;
}

static int load_root(struct nc_tokenizer *t, const cJSON *root, char *err,
		     size_t errlen)
{
	int rc = load_model(t, root, err, errlen);

	if (!rc)
		rc = load_normalizer(t,
			cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
			err, errlen);
	if (!rc)
		rc = load_pretok(t,
			cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
			err, errlen);
	if (!rc)
		rc = load_decoder(
			cJSON_GetObjectItemCaseSensitive(root, "decoder"),
			err, errlen);
	return rc;
}

int nc_tok_load_json(struct nc_tokenizer **out, const char *json, size_t len,
		     char *err, size_t errlen)
{
	struct nc_tokenizer *t;
	cJSON *root;
	int rc;

	*out = NULL;
	root = cJSON_ParseWithLength(json, len);
	if (!root) {
		seterr(err, errlen, "tokenizer.json: not valid JSON");
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		cJSON_Delete(root);
		return -ENOMEM;
	}
	t->eos = t->pad = t->bos = -1;
	rc = load_root(t, root, err, errlen);
	cJSON_Delete(root);
	if (rc) {
		if (rc == -ENOMEM)
			seterr(err, errlen, "tokenizer: out of memory");
		nc_tok_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct nc_obuf b = { 0 };
	char chunk[65536];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (nc_obuf_put(&b, chunk, n))
			break;
	if (ferror(f) || !feof(f) || nc_obuf_put(&b, "", 1)) {
		fclose(f);
		free(b.p);
		return NULL;
	}
	fclose(f);
	*len = b.len - 1;
	return b.p;
}

/* A special-token setting is "<s>" or {"content": "<s>", ...}. */
static int32_t config_token(const struct nc_tokenizer *t, const cJSON *cfg,
			    const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);

	if (cJSON_IsObject(v))
		v = cJSON_GetObjectItemCaseSensitive(v, "content");
	return cJSON_IsString(v) ? nc_tok_id(t, v->valuestring) : -1;
}

/* chat_template is a string or a list of {name, template}: take "default". */
static const char *config_template(const cJSON *cfg)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
	const cJSON *it;

	if (cJSON_IsString(v))
		return v->valuestring;
	cJSON_ArrayForEach(it, v) {
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
		const cJSON *tp = cJSON_GetObjectItemCaseSensitive(it, "template");

		if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default") &&
		    cJSON_IsString(tp))
			return tp->valuestring;
	}
	return NULL;
}

static int load_config(struct nc_tokenizer *t, const char *path, char *err,
		       size_t errlen)
{
	size_t len;
	char *txt = read_file(path, &len);
	cJSON *cfg;
	const char *tpl;

	if (!txt)
		return 0; /* optional file */
	cfg = cJSON_ParseWithLength(txt, len);
	free(txt);
	if (!cfg) {
		seterr(err, errlen, "%s: not valid JSON", path);
		return -EINVAL;
	}
	t->eos = config_token(t, cfg, "eos_token");
	t->pad = config_token(t, cfg, "pad_token");
	t->bos = config_token(t, cfg, "bos_token");
	for (int k = 0; k < 4; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, special_keys[k]);

		if (cJSON_IsObject(v))
			v = cJSON_GetObjectItemCaseSensitive(v, "content");
		if (cJSON_IsString(v) && !(t->special[k] = strdup(v->valuestring))) {
			cJSON_Delete(cfg);
			return -ENOMEM;
		}
	}
	tpl = config_template(cfg);
	if (tpl)
		t->chat_template = strdup(tpl);
	cJSON_Delete(cfg);
	return tpl && !t->chat_template ? -ENOMEM : 0;
}

int nc_tok_load(struct nc_tokenizer **out, const char *model_dir, char *err,
		size_t errlen)
{
	char path[4096];
	size_t len;
	char *txt;
	int rc;

	*out = NULL;
	if (!model_dir) {
		seterr(err, errlen, "tokenizer: no model directory");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/tokenizer.json", model_dir);
	txt = read_file(path, &len);
	if (!txt) {
		seterr(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
		return -EIO;
	}
	rc = nc_tok_load_json(out, txt, len, err, errlen);
	free(txt);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/tokenizer_config.json", model_dir);
	rc = load_config(*out, path, err, errlen);
	/* newer checkpoints keep the template beside it, and it wins */
	snprintf(path, sizeof(path), "%s/chat_template.jinja", model_dir);
	txt = rc ? NULL : read_file(path, &len);
	if (txt) {
		if (memchr(txt, 0, len)) {
			seterr(err, errlen, "%s: contains a NUL byte", path);
			rc = -EINVAL;
		}
		free((*out)->chat_template);
		(*out)->chat_template = txt;
	}
	if (rc) {
		nc_tok_free(*out);
		*out = NULL;
	}
	return rc;
}

const char *nc_tok_special(const struct nc_tokenizer *t, const char *key)
{
	for (int k = 0; k < 4; k++)
		if (!strcmp(key, special_keys[k]))
			return t->special[k];
	return NULL;
}

void nc_tok_free(struct nc_tokenizer *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nsteps; i++)
		pcre2_code_free(t->steps[i].re);
	free(t->ents);
	free(t->strs.p);
	free(t->decs.p);
	free(t->vslots);
	free(t->mslots);
	free(t->added);
	free(t->chat_template);
	for (int k = 0; k < 4; k++)
		free(t->special[k]);
	free(t);
}

/* ---- queries ---- */

int32_t nc_tok_id(const struct nc_tokenizer *t, const char *token)
{
	if (!t || !token)
		return -1;
	return vocab_lookup(t, token, strlen(token));
}

uint32_t nc_tok_vocab_size(const struct nc_tokenizer *t)
{
	return t ? t->nids : 0;
}

int nc_tok_is_special(const struct nc_tokenizer *t, int32_t id)
{
	if (!t || id < 0 || (uint32_t)id >= t->nids ||
	    t->ents[id].kind == K_NONE)
		return -EINVAL;
	return t->ents[id].kind == K_SPECIAL;
}

int32_t nc_tok_eos_id(const struct nc_tokenizer *t) { return t->eos; }
int32_t nc_tok_pad_id(const struct nc_tokenizer *t) { return t->pad; }
int32_t nc_tok_bos_id(const struct nc_tokenizer *t) { return t->bos; }

const char *nc_tok_chat_template(const struct nc_tokenizer *t)
{
	return t->chat_template;
}

/* ---- encoding ---- */

struct sym {
	int32_t id;
	int32_t prev, next;	/* -1 at the ends; id -1 marks a dead symbol */
};

struct cand {
	int32_t rank, left, right;
};

/* Cached result of one pre-token: its bytes at words[woff], its ids at
 * cids[off]. */
struct cache_slot {
	uint32_t hash, off, woff;
	uint16_t len, n;	/* len 0: free */
};

struct enc {
	const struct nc_tokenizer *t;
	int32_t *ids;
	size_t cap, n;
	pcre2_match_data *md;
	struct sym *syms;
	struct cand *heap;
	int32_t *wids;			/* ids of the current pre-token */
	size_t symcap, heapcap, widcap, nheap;
	struct cache_slot *cache;	/* NULL: no cache */
	uint32_t cmask, cused;
	struct nc_obuf cids, words;
};

static void emit(struct enc *e, int32_t id)
{
	if (e->n < e->cap)
		e->ids[e->n] = id;
	e->n++;
}

static int cand_less(const struct cand *a, const struct cand *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static void heap_push(struct enc *e, struct cand c)
{
	size_t i = e->nheap++;

	while (i) {
		size_t p = (i - 1) / 2;

		if (!cand_less(&c, &e->heap[p]))
			break;
		e->heap[i] = e->heap[p];
		i = p;
	}
	e->heap[i] = c;
}

static struct cand heap_pop(struct enc *e)
{
	struct cand top = e->heap[0], last = e->heap[--e->nheap];
	size_t i = 0, n = e->nheap;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && cand_less(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!cand_less(&e->heap[c], &last))
			break;
		e->heap[i] = e->heap[c];
		i = c;
	}
	if (n)
		e->heap[i] = last;
	return top;
}

static void push_pair(struct enc *e, int32_t left)
{
	int32_t right = left < 0 ? -1 : e->syms[left].next;
	const struct merge_slot *m;

	if (left < 0 || right < 0)
		return;
	m = merge_find(e->t, e->syms[left].id, e->syms[right].id);
	if (m)
		heap_push(e, (struct cand){ m->rank, left, right });
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	np = realloc(*p, c * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}

/* Build the symbol list of one pre-token; bytes without a symbol are dropped
 * (HF BPE with no unk token does the same).  Returns the symbol count. */
static int32_t init_syms(struct enc *e, const uint8_t *w, size_t n)
{
	int32_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int32_t id = e->t->byte_id[w[i]];

		if (id < 0)
			continue;
		e->syms[k] = (struct sym){ id, k - 1, k + 1 };
		k++;
	}
	if (k)
		e->syms[k - 1].next = -1;
	return k;
}

/* Merge lowest-rank pairs first, leftmost among equals, until none apply. */
static void bpe_merge(struct enc *e, int32_t nsym)
{
	e->nheap = 0;
	for (int32_t i = 0; i + 1 < nsym; i++)
		push_pair(e, i);
	while (e->nheap) {
		struct cand c = heap_pop(e);
		struct sym *l = &e->syms[c.left], *r = &e->syms[c.right];
		const struct merge_slot *m;

		if (l->id < 0 || r->id < 0 || l->next != c.right)
			continue;
		m = merge_find(e->t, l->id, r->id);
		if (!m || m->rank != c.rank)
			continue; /* stale: a neighbour changed since the push */
		l->id = m->id;
		l->next = r->next;
		if (r->next >= 0)
			e->syms[r->next].prev = c.left;
		r->id = -1;
		push_pair(e, l->prev);
		push_pair(e, c.left);
	}
}

/* ignore_merges: a pre-token that is itself in the vocabulary is one id. */
static int32_t whole_word_id(const struct enc *e, const uint8_t *w, size_t n)
{
	char tmp[256];
	size_t k = 0;

	if (n > sizeof(tmp) / 2)
		return -1;
	for (size_t i = 0; i < n; i++)
		k += put_utf8(tmp + k, byte_to_cp(w[i]));
	return vocab_lookup(e->t, tmp, k);
}

/* BPE of one pre-token into e->wids; returns the id count or -ENOMEM. */
static long bpe_word(struct enc *e, const uint8_t *w, size_t n)
{
	int32_t nsym, id;
	long k = 0;

	if (grow((void **)&e->wids, &e->widcap, n, sizeof(*e->wids)))
		return -ENOMEM;
	if (e->t->ignore_merges && (id = whole_word_id(e, w, n)) >= 0) {
		e->wids[0] = id;
		return 1;
	}
	if (grow((void **)&e->syms, &e->symcap, n, sizeof(*e->syms)) ||
	    grow((void **)&e->heap, &e->heapcap, 3 * n, sizeof(*e->heap)))
		return -ENOMEM;
	nsym = init_syms(e, w, n);
	bpe_merge(e, nsym);
	for (int32_t i = nsym ? 0 : -1; i >= 0; i = e->syms[i].next)
		e->wids[k++] = e->syms[i].id;
	return k;
}

/* Word cache for long texts: repeated pre-tokens are merged once. */
static struct cache_slot *cache_find(struct enc *e, const uint8_t *w,
				     size_t n, uint32_t h)
{
	uint32_t i = h & e->cmask;

	for (;; i = (i + 1) & e->cmask) {
		struct cache_slot *s = &e->cache[i];

		if (!s->len || (s->hash == h && s->len == n &&
				!memcmp(e->words.p + s->woff, w, n)))
			return s;
	}
}

static void cache_put(struct enc *e, struct cache_slot *s, const uint8_t *w,
		      size_t n, uint32_t h, long k)
{
	uint32_t off = (uint32_t)(e->cids.len / sizeof(int32_t));
	uint32_t woff = (uint32_t)e->words.len;

	if (e->cused * 2 >= e->cmask)
		return; /* full: keep probing short */
	if (nc_obuf_put(&e->cids, (const char *)e->wids, (size_t)k * sizeof(int32_t)) ||
	    nc_obuf_put(&e->words, (const char *)w, n))
		return; /* a cache miss is harmless */
	*s = (struct cache_slot){ h, off, woff, (uint16_t)n, (uint16_t)k };
	e->cused++;
}

static int word(struct enc *e, const uint8_t *w, size_t n)
{
	struct cache_slot *s = NULL;
	const int32_t *out;
	uint32_t h = 0;
	long k;

	if (n == 1) {
		if (e->t->byte_id[w[0]] >= 0)
			emit(e, e->t->byte_id[w[0]]);
		return 0;
	}
	if (!n)
		return 0;
	if (e->cache && n <= CACHE_MAX_WORD) {
		h = hash_bytes(w, n);
		s = cache_find(e, w, n, h);
		if (s->len) {
			out = (const int32_t *)e->cids.p + s->off;
			for (uint16_t i = 0; i < s->n; i++)
				emit(e, out[i]);
			return 0;
		}
	}
	k = bpe_word(e, w, n);
	if (k < 0)
		return (int)k;
	for (long i = 0; i < k; i++)
		emit(e, e->wids[i]);
	if (s)
		cache_put(e, s, w, n, h, k);
	return 0;
}

static int run_steps(struct enc *e, size_t step, const uint8_t *s, size_t n);

/* Split by the step's regex: matches and the gaps between them are pieces. */
static int split_re(struct enc *e, size_t step, const uint8_t *s, size_t n)
{
	const pcre2_code *re = e->t->steps[step].re;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
	size_t off = 0, start = 0;
	int rc;

	while (off < n) {
		rc = pcre2_match(re, s, n, off, PCRE2_NO_UTF_CHECK, e->md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0)
			return -EINVAL;
		/* copy the match out: the later steps reuse the match data */
		size_t m0 = ov[0], m1 = ov[1];

		if (m1 == m0) { /* empty match: step over one character */
			off = m1 + 1;
			while (off < n && (s[off] & 0xC0) == 0x80)
				off++;
			continue;
		}
		if (m0 > start && (rc = run_steps(e, step + 1, s + start, m0 - start)))
			return rc;
		if ((rc = run_steps(e, step + 1, s + m0, m1 - m0)))
			return rc;
		start = off = m1;
	}
	return start < n ? run_steps(e, step + 1, s + start, n - start) : 0;
}

static int prefix_space(struct enc *e, size_t step, const uint8_t *s, size_t n)
{
	uint8_t *p = malloc(n + 1);
	int rc;

	if (!p)
		return -ENOMEM;
	p[0] = ' ';
	memcpy(p + 1, s, n);
	rc = e->t->steps[step].re ? split_re(e, step, p, n + 1)
				  : run_steps(e, step + 1, p, n + 1);
	free(p);
	return rc;
}

static int run_steps(struct enc *e, size_t step, const uint8_t *s, size_t n)
{
	const struct pre_step *st = &e->t->steps[step];

	if (step == e->t->nsteps)
		return word(e, s, n);
	if (st->type == STEP_BYTELEVEL && st->prefix_space && n && s[0] != ' ')
		return prefix_space(e, step, s, n);
	if (st->re)
		return split_re(e, step, s, n);
	return run_steps(e, step + 1, s, n);
}

/* NFC leaves code points below U+0300 alone, and none of them combines
 * with what precedes it: text without a lead byte >= 0xCC needs no pass.
 * Decomposing forms split Latin-1 letters, so only ASCII is safe there. */
static int needs_norm(const struct nc_tokenizer *t, const uint8_t *s, size_t n)
{
	uint8_t lim = 0xCC;

	if (!t->norm_opts)
		return 0;
	if (t->norm_opts & (UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE))
		lim = 0x80;
	for (size_t i = 0; i < n; i++)
		if (s[i] >= lim)
			return 1;
	return 0;
}

static int segment(struct enc *e, const uint8_t *s, size_t n)
{
	utf8proc_uint8_t *norm = NULL;
	utf8proc_ssize_t nl;
	int rc;

	if (!n)
		return 0;
	if (!needs_norm(e->t, s, n))
		return run_steps(e, 0, s, n);
	nl = utf8proc_map(s, (utf8proc_ssize_t)n, &norm, e->t->norm_opts);
	if (nl == UTF8PROC_ERROR_NOMEM)
		return -ENOMEM;
	if (nl < 0) /* utf8proc refused valid UTF-8: keep the text as is */
		return run_steps(e, 0, s, n);
	rc = run_steps(e, 0, norm, (size_t)nl);
	free(norm);
	return rc;
}

/* Longest added token starting at s, or NULL. */
static const struct added_tok *added_at(const struct nc_tokenizer *t,
					const uint8_t *s, size_t n)
{
	if (!t->added_first[s[0]])
		return NULL;
	for (size_t i = 0; i < t->nadded; i++) {
		const struct added_tok *a = &t->added[i];

		if (a->len <= n && !memcmp(a->s, s, a->len))
			return a;
	}
	return NULL;
}

static int encode_text(struct enc *e, const uint8_t *s, size_t n)
{
	size_t i = 0, start = 0;
	int rc;

	while (i < n) {
		const struct added_tok *a = added_at(e->t, s + i, n - i);

		if (!a) {
			i++;
			continue;
		}
		if ((rc = segment(e, s + start, i - start)))
			return rc;
		emit(e, a->id);
		i += a->len;
		start = i;
	}
	return segment(e, s + start, n - start);
}

static int setup_cache(struct enc *e, size_t len)
{
	size_t slots = 1024;

	while (slots < len / 4 && slots < (1u << 20))
		slots *= 2;
	e->cache = calloc(slots, sizeof(*e->cache));
	if (!e->cache)
		return -ENOMEM;
	e->cmask = (uint32_t)slots - 1;
	return 0;
}

static char *repair_utf8(const char *text, size_t len, size_t *outlen)
{
	uint8_t pend[8];
	size_t npend = 0;
	struct sink k = { malloc(3 * len + 1), 3 * len + 1, 0 };

	if (!k.out)
		return NULL;
	utf8_feed(pend, &npend, (const uint8_t *)text, len, &k);
	utf8_finish(&npend, &k);
	*outlen = k.n;
	return k.out;
}

long nc_tok_encode(const struct nc_tokenizer *t, const char *text, size_t len,
		   int32_t *ids, size_t cap)
{
	struct enc e = { .t = t, .ids = ids, .cap = ids ? cap : 0 };
	char *fixed = NULL;
	int rc = 0;

	if (!t || (!text && len))
		return -EINVAL;
	if (!len)
		return 0;
	if (!utf8_valid((const uint8_t *)text, len)) {
		fixed = repair_utf8(text, len, &len);
		if (!fixed)
			return -ENOMEM;
		text = fixed;
	}
	if (t->nsteps) {
		const pcre2_code *re = NULL;

		for (size_t i = 0; i < t->nsteps && !re; i++)
			re = t->steps[i].re;
		e.md = re ? pcre2_match_data_create_from_pattern(re, NULL)
			  : NULL;
		if (re && !e.md)
			rc = -ENOMEM;
	}
	if (!rc && len >= CACHE_MIN_TEXT)
		rc = setup_cache(&e, len);
	if (!rc)
		rc = encode_text(&e, (const uint8_t *)text, len);
	pcre2_match_data_free(e.md);
	free(e.syms);
	free(e.heap);
	free(e.wids);
	free(e.cache);
	free(e.cids.p);
	free(e.words.p);
	free(fixed);
	return rc ? rc : (long)e.n;
}

/* ---- decoding ---- */

/* Appends the bytes of one id to the repair state; -EINVAL on a bad id. */
static int feed_id(const struct nc_tokenizer *t, int32_t id, unsigned flags,
		   uint8_t *pend, size_t *npend, struct sink *k)
{
	const struct tok_ent *te;

	if (id < 0 || (uint32_t)id >= t->nids || t->ents[id].kind == K_NONE)
		return -EINVAL;
	te = &t->ents[id];
	if ((flags & NC_TOK_SKIP_SPECIAL) && te->kind == K_SPECIAL)
		return 0;
	utf8_feed(pend, npend, (const uint8_t *)t->decs.p + te->dec_off,
		  te->dec_len, k);
	return 0;
}

long nc_tok_decode_ex(const struct nc_tokenizer *t, const int32_t *ids,
		      size_t n, unsigned flags, char *out, size_t cap)
{
	struct sink k = { out, out ? cap : 0, 0 };
	uint8_t pend[8];
	size_t npend = 0;

	if (!t || (!ids && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (feed_id(t, ids[i], flags, pend, &npend, &k))
			return -EINVAL;
	utf8_finish(&npend, &k);
	return (long)k.n;
}

long nc_tok_decode(const struct nc_tokenizer *t, const int32_t *ids, size_t n,
		   char *out, size_t cap)
{
	return nc_tok_decode_ex(t, ids, n, 0, out, cap);
}

void nc_detok_init(struct nc_detok *d)
{
	memset(d, 0, sizeof(*d));
}

long nc_detok_push(struct nc_detok *d, const struct nc_tokenizer *t,
		   int32_t id, char *out, size_t cap)
{
	struct sink k = { out, out ? cap : 0, 0 };
	uint8_t pend[8];
	size_t npend = d->npend;
	unsigned flags = d->skip_special ? NC_TOK_SKIP_SPECIAL : 0;

	if (!t || npend > 3)
		return -EINVAL;
	/* Work on a copy so that a too-small buffer consumes nothing. */
	memcpy(pend, d->pend, sizeof(pend));
	if (feed_id(t, id, flags, pend, &npend, &k))
		return -EINVAL;
	if (k.n <= k.cap) {
		memcpy(d->pend, pend, sizeof(pend));
		d->npend = npend;
	}
	return (long)k.n;
}

long nc_detok_flush(struct nc_detok *d, char *out, size_t cap)
{
	struct sink k = { out, out ? cap : 0, 0 };
	size_t npend = d->npend;

	utf8_finish(&npend, &k);
	if (k.n <= k.cap)
		d->npend = 0;
	return (long)k.n;
}
