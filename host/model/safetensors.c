/* safetensors.c — parse, validate and mmap safetensors files and shards.
 *
 * Everything in a header is checked before any tensor reaches the set, so
 * a set only ever holds tensors whose bytes lie inside their file.
 */
#include "host/model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are little-endian and are copied out as-is. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* JSON numbers are doubles: beyond 2^53 an offset could not be exact. */
#define ST_MAX_INT 9007199254740992.0
#define ST_MAX_INDEX (64u << 20)

static const struct {
	const char *name;
	size_t size;
} dtypes[ST_NDTYPES] = {
	[ST_F32] = { "F32", 4 },	[ST_BF16] = { "BF16", 2 },
	[ST_F16] = { "F16", 2 },	[ST_F64] = { "F64", 8 },
	[ST_I64] = { "I64", 8 },	[ST_I32] = { "I32", 4 },
	[ST_U8] = { "U8", 1 },		[ST_I8] = { "I8", 1 },
	[ST_BOOL] = { "BOOL", 1 },	[ST_I16] = { "I16", 2 },
	[ST_U16] = { "U16", 2 },	[ST_U32] = { "U32", 4 },
	[ST_U64] = { "U64", 8 },	[ST_F8_E4M3] = { "F8_E4M3", 1 },
	[ST_F8_E5M2] = { "F8_E5M2", 1 },
};

/* A tensor while its file is being validated: offsets kept for overlap. */
struct ent {
	struct st_tensor t;
	uint64_t begin, end;
};

int st_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -code;
}

#define fail st_fail

size_t st_dtype_size(enum st_dtype dt)
{
	if ((unsigned)dt >= ST_NDTYPES)
		return 0;
	return dtypes[dt].size;
}

const char *st_dtype_name(enum st_dtype dt)
{
	if ((unsigned)dt >= ST_NDTYPES)
		return "?";
	return dtypes[dt].name;
}

const char *st_strerror(int err)
{
	static const char *const msg[] = {
		[0] = "success",
		[ST_ERR_IO] = "I/O error",
		[ST_ERR_NOMEM] = "out of memory",
		[ST_ERR_HEADER] = "malformed safetensors header",
		[ST_ERR_TENSOR] = "invalid tensor entry",
		[ST_ERR_DUP] = "duplicate tensor name",
		[ST_ERR_INDEX] = "inconsistent shard index",
		[ST_ERR_DTYPE] = "tensor is not a float type",
		[ST_ERR_RANGE] = "element range outside tensor",
		[ST_ERR_SCALE] = "FP8 tensor without a usable block scale",
	};

	if (err < 0)
		err = -err;
	if ((size_t)err >= sizeof(msg) / sizeof(msg[0]))
		return "unknown error";
	return msg[err];
}

static int dtype_lookup(const char *name, enum st_dtype *dt)
{
	int i;

	for (i = 0; i < ST_NDTYPES; i++) {
		if (!strcmp(name, dtypes[i].name)) {
			*dt = (enum st_dtype)i;
			return 0;
		}
	}
	return -1;
}

/* A JSON number that is a non-negative integer we can hold exactly. */
static int json_u64(const cJSON *j, uint64_t *v)
{
	double d;

	if (!cJSON_IsNumber(j))
		return -1;
	d = j->valuedouble;
	if (!(d >= 0 && d <= ST_MAX_INT))
		return -1;
	*v = (uint64_t)d;
	return (double)*v == d ? 0 : -1;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A file's __metadata__ strings while its header is being validated; seq
 * keeps the header's order among equal keys. */
struct mlist {
	struct st_meta_ent *v;
	size_t n, cap;
};

struct ment {
	struct st_meta_ent m;
	size_t seq;
};

static void mlist_free(struct mlist *ml)
{
	size_t i;

	for (i = 0; i < ml->n; i++) {
		free(ml->v[i].key);
		free(ml->v[i].val);
	}
	free(ml->v);
	memset(ml, 0, sizeof(*ml));
}

static int check_metadata(const cJSON *md, struct mlist *ml, int file,
			  const char *fname, char *err, size_t errlen)
{
	struct st_meta_ent *v;
	const cJSON *c;
	size_t n = 0;

	if (!cJSON_IsObject(md))
		return fail(err, errlen, ST_ERR_HEADER,
			    "%s: __metadata__ is not an object", fname);
	cJSON_ArrayForEach(c, md) {
		if (!cJSON_IsString(c))
			return fail(err, errlen, ST_ERR_HEADER,
				    "%s: __metadata__ '%s' is not a string",
				    fname, c->string);
		n++;
	}
	if (ml->n + n > ml->cap) {
		v = realloc(ml->v, (ml->n + n) * sizeof(*v) + 1);
		if (!v)
			return fail(err, errlen, ST_ERR_NOMEM,
				    "%s: out of memory", fname);
		ml->v = v;
		ml->cap = ml->n + n;
	}
	cJSON_ArrayForEach(c, md) {
		v = &ml->v[ml->n];
		v->file = file;
		v->key = strdup(c->string);
		v->val = strdup(c->valuestring);
		if (v->key && v->val) {
			ml->n++;
			continue;
		}
		free(v->key);
		free(v->val);
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    fname);
	}
	return 0;
}

static int parse_shape(struct ent *e, const cJSON *shape, const char *fname,
		       char *err, size_t errlen)
{
	const char *nm = e->t.name;
	const cJSON *c;
	uint64_t numel = 1, d = 0;
	int n = 0;

	if (!cJSON_IsArray(shape))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': shape missing or not an array",
			    fname, nm);
	cJSON_ArrayForEach(c, shape) {
		if (n == ST_MAX_DIMS)
			return fail(err, errlen, ST_ERR_TENSOR,
				    "%s: tensor '%s': more than %d dimensions",
				    fname, nm, ST_MAX_DIMS);
		if (json_u64(c, &d))
			return fail(err, errlen, ST_ERR_TENSOR,
				    "%s: tensor '%s': shape[%d] is not a non-negative integer",
				    fname, nm, n);
		if (__builtin_mul_overflow(numel, d, &numel))
			return fail(err, errlen, ST_ERR_TENSOR,
				    "%s: tensor '%s': shape product overflows",
				    fname, nm);
		e->t.shape[n++] = d;
	}
	e->t.ndim = n;
	if (__builtin_mul_overflow(numel, st_dtype_size(e->t.dtype),
				   &e->t.nbytes))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': byte size overflows", fname, nm);
	return 0;
}

static int parse_offsets(struct ent *e, const cJSON *offs, uint64_t dlen,
			 const char *fname, char *err, size_t errlen)
{
	const char *nm = e->t.name;

	if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
	    json_u64(cJSON_GetArrayItem(offs, 0), &e->begin) ||
	    json_u64(cJSON_GetArrayItem(offs, 1), &e->end))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': data_offsets must be [begin, end] of non-negative integers",
			    fname, nm);
	if (e->begin > e->end)
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': data_offsets [%llu,%llu] begin after end",
			    fname, nm, (unsigned long long)e->begin,
			    (unsigned long long)e->end);
	if (e->end > dlen)
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': data_offsets [%llu,%llu] outside the %llu-byte data section",
			    fname, nm, (unsigned long long)e->begin,
			    (unsigned long long)e->end,
			    (unsigned long long)dlen);
	if (e->end - e->begin != e->t.nbytes)
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': shape needs %llu bytes of %s but data_offsets [%llu,%llu] hold %llu",
			    fname, nm, (unsigned long long)e->t.nbytes,
			    st_dtype_name(e->t.dtype),
			    (unsigned long long)e->begin,
			    (unsigned long long)e->end,
			    (unsigned long long)(e->end - e->begin));
	return 0;
}

static int parse_entry(struct ent *e, const cJSON *j, const uint8_t *data,
		       uint64_t dlen, const char *fname, char *err,
		       size_t errlen)
{
	const cJSON *dt;
	int rc;

	if (!cJSON_IsObject(j))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': entry is not an object", fname,
			    e->t.name);
	dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
	if (!cJSON_IsString(dt))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': dtype missing or not a string",
			    fname, e->t.name);
	if (dtype_lookup(dt->valuestring, &e->t.dtype))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "%s: tensor '%s': unknown dtype '%s'", fname,
			    e->t.name, dt->valuestring);
	rc = parse_shape(e, cJSON_GetObjectItemCaseSensitive(j, "shape"),
			 fname, err, errlen);
	if (rc)
		return rc;
	rc = parse_offsets(e, cJSON_GetObjectItemCaseSensitive(j,
			   "data_offsets"), dlen, fname, err, errlen);
	if (rc)
		return rc;
	e->t.data = data + e->begin;
	return 0;
}

static int cmp_ent_name(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->t.name,
		      ((const struct ent *)b)->t.name);
}

static int cmp_ent_off(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int check_names(struct ent *v, size_t n, const struct st_set *s,
		       const char *fname, char *err, size_t errlen)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_ent_name);
	for (i = 0; i < n; i++) {
		if (!v[i].t.name[0])
			return fail(err, errlen, ST_ERR_TENSOR,
				    "%s: tensor with an empty name", fname);
		if (i && !strcmp(v[i - 1].t.name, v[i].t.name))
			return fail(err, errlen, ST_ERR_DUP,
				    "%s: tensor '%s': duplicate name", fname,
				    v[i].t.name);
		if (st_find(s, v[i].t.name))
			return fail(err, errlen, ST_ERR_DUP,
				    "%s: tensor '%s': already loaded from file %d",
				    fname, v[i].t.name,
				    st_find(s, v[i].t.name)->file);
	}
	return 0;
}

/* Sorted by begin, each non-empty range must start at or after the furthest
 * end seen so far; empty tensors own no bytes and cannot overlap. */
static int check_overlap(struct ent *v, size_t n, const char *fname,
			 char *err, size_t errlen)
{
	const struct ent *far = NULL;
	size_t i;

	qsort(v, n, sizeof(*v), cmp_ent_off);
	for (i = 0; i < n; i++) {
		if (v[i].begin == v[i].end)
			continue;
		if (far && v[i].begin < far->end)
			return fail(err, errlen, ST_ERR_TENSOR,
				    "%s: tensor '%s': data_offsets [%llu,%llu] overlap '%s' [%llu,%llu]",
				    fname, v[i].t.name,
				    (unsigned long long)v[i].begin,
				    (unsigned long long)v[i].end, far->t.name,
				    (unsigned long long)far->begin,
				    (unsigned long long)far->end);
		if (!far || v[i].end > far->end)
			far = &v[i];
	}
	return 0;
}

/* Merge the new (name-sorted) tensors into the set's sorted array. */
static int merge(struct st_set *s, struct ent *v, size_t n)
{
	struct st_tensor *out;
	size_t i = 0, j = 0, k = 0;

	out = malloc((s->count + n) * sizeof(*out) + 1);
	if (!out)
		return -ST_ERR_NOMEM;
	while (i < s->count || j < n) {
		if (j == n || (i < s->count &&
			       strcmp(s->tensors[i].name, v[j].t.name) < 0))
			out[k++] = s->tensors[i++];
		else
			out[k++] = v[j++].t;
	}
	free(s->tensors);
	s->tensors = out;
	s->count = k;
	return 0;
}

static int collect(struct ent *v, size_t *n, struct mlist *ml,
		   const cJSON *root, const uint8_t *data, uint64_t dlen,
		   int file, const char *fname, char *err, size_t errlen)
{
	const cJSON *c;
	int rc;

	cJSON_ArrayForEach(c, root) {
		if (!strcmp(c->string, "__metadata__")) {
			rc = check_metadata(c, ml, file, fname, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		memset(&v[*n], 0, sizeof(v[*n]));
		v[*n].t.file = file;
		v[*n].t.name = strdup(c->string);
		if (!v[*n].t.name)
			return fail(err, errlen, ST_ERR_NOMEM,
				    "%s: out of memory", fname);
		(*n)++;
		rc = parse_entry(&v[*n - 1], c, data, dlen, fname, err,
				 errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int cmp_meta(const struct st_meta_ent *a, const struct st_meta_ent *b)
{
	int c = strcmp(a->key, b->key);

	if (c)
		return c;
	return (a->file > b->file) - (a->file < b->file);
}

static int cmp_ment(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;
	int c = cmp_meta(&x->m, &y->m);

	if (c)
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The set's metadata merged with the file's (sorted here), into a new array
 * that *out receives; the set is not changed.  Equal entries keep the set's
 * first, so a key's first file still wins when a file index is reused. */
static int merge_meta(const struct st_set *s, struct mlist *ml,
		      struct st_meta_ent **out)
{
	struct ment *m;
	size_t i = 0, j = 0, k = 0;

	*out = malloc((s->nmeta + ml->n) * sizeof(**out) + 1);
	m = malloc(ml->n * sizeof(*m) + 1);
	if (!*out || !m) {
		free(*out);
		free(m);
		*out = NULL;
		return -ST_ERR_NOMEM;
	}
	for (i = 0; i < ml->n; i++) {
		m[i].m = ml->v[i];
		m[i].seq = i;
	}
	qsort(m, ml->n, sizeof(*m), cmp_ment);
	i = 0;
	while (i < s->nmeta || j < ml->n) {
		if (j == ml->n ||
		    (i < s->nmeta && cmp_meta(&s->meta[i], &m[j].m) <= 0))
			(*out)[k++] = s->meta[i++];
		else
			(*out)[k++] = m[j++].m;
	}
	free(m);
	return 0;
}

static int parse_json(struct st_set *s, const cJSON *root,
		      const uint8_t *data, uint64_t dlen, int file,
		      const char *fname, char *err, size_t errlen)
{
	struct st_meta_ent *meta = NULL;
	struct mlist ml = { 0 };
	struct ent *v;
	size_t n = 0, i;
	int rc;

	v = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof(*v));
	if (!v)
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    fname);
	rc = collect(v, &n, &ml, root, data, dlen, file, fname, err, errlen);
	if (!rc)
		rc = check_names(v, n, s, fname, err, errlen);
	if (!rc)
		rc = check_overlap(v, n, fname, err, errlen);
	if (!rc) {
		qsort(v, n, sizeof(*v), cmp_ent_name);
		rc = merge_meta(s, &ml, &meta);
		if (!rc)
			rc = merge(s, v, n);
		if (rc) {
			free(meta);
			fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			     fname);
		}
	}
	if (rc) {
		for (i = 0; i < n; i++)
			free(v[i].t.name);
		mlist_free(&ml);
	} else {
		free(s->meta);
		s->meta = meta;
		s->nmeta += ml.n;
		free(ml.v);	/* the strings now belong to the set */
	}
	free(v);
	return rc;
}

static int cmp_meta_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct st_meta_ent *)elem)->key);
}

const char *st_meta(const struct st_set *s, const char *key)
{
	const struct st_meta_ent *m;

	if (!s || !s->nmeta || !key)
		return NULL;
	m = bsearch(key, s->meta, s->nmeta, sizeof(s->meta[0]), cmp_meta_key);
	if (!m)
		return NULL;
	while (m > s->meta && !strcmp(m[-1].key, key))
		m--;
	return m->val;
}

/* The spec lets writers pad the header with spaces after the JSON. */
static int only_space(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return 0;
	return 1;
}

int st_parse(struct st_set *s, const uint8_t *buf, size_t len, int file,
	     const char *fname, char *err, size_t errlen)
{
	const char *hdr, *end = NULL;
	uint64_t hlen;
	cJSON *root;
	int rc;

	if (!fname)
		fname = "<buffer>";
	if (len < 8)
		return fail(err, errlen, ST_ERR_HEADER,
			    "%s: %zu bytes is too short for a header length",
			    fname, len);
	hlen = le64(buf);
	if (hlen > ST_MAX_HEADER)
		return fail(err, errlen, ST_ERR_HEADER,
			    "%s: header length %llu exceeds the %u-byte limit",
			    fname, (unsigned long long)hlen, ST_MAX_HEADER);
	if (hlen > len - 8)
		return fail(err, errlen, ST_ERR_HEADER,
			    "%s: header length %llu runs past the end (file is truncated at %zu bytes)",
			    fname, (unsigned long long)hlen, len);
	hdr = (const char *)buf + 8;
	root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
	if (!root)
		return fail(err, errlen, ST_ERR_HEADER,
			    "%s: header is not valid JSON (at byte %td)",
			    fname, end ? end - hdr : (ptrdiff_t)0);
	if (!cJSON_IsObject(root))
		rc = fail(err, errlen, ST_ERR_HEADER,
			  "%s: header is not a JSON object", fname);
	else if (!only_space(end, hdr + hlen))
		rc = fail(err, errlen, ST_ERR_HEADER,
			  "%s: junk after the header JSON (at byte %td)",
			  fname, end - hdr);
	else
		rc = parse_json(s, root, buf + 8 + hlen, len - 8 - hlen, file,
				fname, err, errlen);
	cJSON_Delete(root);
	return rc;
}

static int cmp_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct st_tensor *)elem)->name);
}

const struct st_tensor *st_find(const struct st_set *s, const char *name)
{
	if (!s || !s->count || !name)
		return NULL;
	return bsearch(name, s->tensors, s->count, sizeof(s->tensors[0]),
		       cmp_key);
}

size_t st_count(const struct st_set *s)
{
	return s ? s->count : 0;
}

const struct st_tensor *st_at(const struct st_set *s, size_t i)
{
	if (!s || i >= s->count)
		return NULL;
	return &s->tensors[i];
}

uint64_t st_numel(const struct st_tensor *t)
{
	size_t sz = st_dtype_size(t->dtype);

	return sz ? t->nbytes / sz : 0;
}

void st_close(struct st_set *s)
{
	size_t i;
	int f;

	if (!s)
		return;
	for (i = 0; i < s->count; i++)
		free(s->tensors[i].name);
	free(s->tensors);
	for (i = 0; i < s->nmeta; i++) {
		free(s->meta[i].key);
		free(s->meta[i].val);
	}
	free(s->meta);
	for (f = 0; f < s->nfiles; f++) {
		if (s->files[f].map)
			munmap(s->files[f].map, s->files[f].len);
		free(s->files[f].path);
	}
	free(s->files);
	memset(s, 0, sizeof(*s));
}

static int map_file(const char *path, void **map, size_t *len, char *err,
		    size_t errlen)
{
	struct stat st;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, ST_ERR_IO, "%s: cannot open: %s",
			    path, strerror(errno));
	if (fstat(fd, &st)) {
		e = errno;
		close(fd);
		return fail(err, errlen, ST_ERR_IO, "%s: stat: %s", path,
			    strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, ST_ERR_IO, "%s: not a regular file",
			    path);
	}
	if (st.st_size < 8) {
		close(fd);
		return fail(err, errlen, ST_ERR_HEADER,
			    "%s: %lld bytes is too short for a header length",
			    path, (long long)st.st_size);
	}
	*len = (size_t)st.st_size;
	*map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	e = errno;
	close(fd);
	if (*map == MAP_FAILED) {
		*map = NULL;
		return fail(err, errlen, ST_ERR_IO, "%s: mmap: %s", path,
			    strerror(e));
	}
	return 0;
}

/* Map and parse path; on success *idx is its file index in the set. */
static int open_one(struct st_set *s, const char *path, int *idx, char *err,
		    size_t errlen)
{
	struct st_file *files, f = { 0 };
	int rc;

	files = realloc(s->files, (s->nfiles + 1) * sizeof(*files));
	if (!files)
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    path);
	s->files = files;
	f.path = strdup(path);
	if (!f.path)
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    path);
	rc = map_file(path, &f.map, &f.len, err, errlen);
	if (!rc)
		rc = st_parse(s, f.map, f.len, s->nfiles, path, err, errlen);
	if (rc) {
		if (f.map)
			munmap(f.map, f.len);
		free(f.path);
		return rc;
	}
	if (idx)
		*idx = s->nfiles;
	s->files[s->nfiles++] = f;
	return 0;
}

int st_open_file(struct st_set *s, const char *path, char *err,
		 size_t errlen)
{
	return open_one(s, path, NULL, err, errlen);
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int read_all(const char *path, char **buf, size_t *len, char *err,
		    size_t errlen)
{
	struct stat st;
	ssize_t r;
	size_t got = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, ST_ERR_IO, "%s: cannot open: %s",
			    path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > ST_MAX_INDEX) {
		close(fd);
		return fail(err, errlen, ST_ERR_IO,
			    "%s: not a regular file of at most %u bytes", path,
			    ST_MAX_INDEX);
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		close(fd);
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    path);
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, *buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = fail(err, errlen, ST_ERR_IO, "%s: read: %s", path,
				  r ? strerror(errno) : "unexpected end");
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (rc) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
	(*buf)[got] = 0;
	*len = got;
	return 0;
}

/* Shard names must be plain file names inside the model directory. */
static int bad_shard_name(const char *n)
{
	return !n[0] || strchr(n, '/') || !strcmp(n, ".") || !strcmp(n, "..");
}

struct shard {
	const char *name;	/* points into the index JSON */
	int file;		/* set file index once opened */
};

static int shard_of(struct shard *sh, int *nsh, const char *name)
{
	int i;

	for (i = 0; i < *nsh; i++)
		if (!strcmp(sh[i].name, name))
			return i;
	sh[*nsh].name = name;
	sh[*nsh].file = -1;
	return (*nsh)++;
}

static int open_shard(struct st_set *s, const char *dir, const char *ipath,
		      struct shard *sh, const char *first, char *err,
		      size_t errlen)
{
	char *path = join(dir, sh->name);
	struct stat st;
	int rc;

	if (!path)
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    ipath);
	if (stat(path, &st))
		rc = fail(err, errlen, ST_ERR_INDEX,
			  "%s: shard '%s' (holding '%s') is missing: %s",
			  ipath, sh->name, first, strerror(errno));
	else
		rc = open_one(s, path, &sh->file, err, errlen);
	free(path);
	return rc;
}

/* Open every shard the weight map names, then check each mapping. */
static int open_shards(struct st_set *s, const char *dir, const char *ipath,
		       const cJSON *wm, char *err, size_t errlen)
{
	int n = cJSON_GetArraySize(wm), nsh = 0, i, rc = 0;
	struct shard *sh = calloc((size_t)n + 1, sizeof(*sh));
	const struct st_tensor *t;
	const cJSON *c;

	if (!sh)
		return fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory",
			    ipath);
	cJSON_ArrayForEach(c, wm) {
		if (!cJSON_IsString(c) || bad_shard_name(c->valuestring)) {
			rc = fail(err, errlen, ST_ERR_INDEX,
				  "%s: weight_map '%s': shard must be a plain file name",
				  ipath, c->string);
			goto out;
		}
		i = shard_of(sh, &nsh, c->valuestring);
		if (sh[i].file < 0) {
			rc = open_shard(s, dir, ipath, &sh[i], c->string, err,
					errlen);
			if (rc)
				goto out;
		}
	}
	cJSON_ArrayForEach(c, wm) {
		i = shard_of(sh, &nsh, c->valuestring);
		t = st_find(s, c->string);
		if (!t || t->file != sh[i].file) {
			rc = fail(err, errlen, ST_ERR_INDEX,
				  "%s: tensor '%s' is not in its shard '%s'%s%s",
				  ipath, c->string, sh[i].name,
				  t ? " but in " : "",
				  t ? s->files[t->file].path : "");
			goto out;
		}
	}
out:
	free(sh);
	return rc;
}

static int open_index(struct st_set *s, const char *dir, const char *ipath,
		      char *err, size_t errlen)
{
	const cJSON *wm;
	cJSON *root;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = read_all(ipath, &buf, &len, err, errlen);
	if (rc)
		return rc;
	root = cJSON_ParseWithLength(buf, len);
	free(buf);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return fail(err, errlen, ST_ERR_INDEX,
			    "%s: not a JSON object", ipath);
	}
	wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (!cJSON_IsObject(wm) || !wm->child)
		rc = fail(err, errlen, ST_ERR_INDEX,
			  "%s: weight_map missing, empty or not an object",
			  ipath);
	else
		rc = open_shards(s, dir, ipath, wm, err, errlen);
	cJSON_Delete(root);
	return rc;
}

int st_open_dir(struct st_set *s, const char *dir, char *err, size_t errlen)
{
	char *ipath = join(dir, "model.safetensors.index.json");
	char *single = join(dir, "model.safetensors");
	int rc;

	if (!ipath || !single)
		rc = fail(err, errlen, ST_ERR_NOMEM, "%s: out of memory", dir);
	else if (!access(ipath, F_OK))
		rc = open_index(s, dir, ipath, err, errlen);
	else if (!access(single, F_OK))
		rc = open_one(s, single, NULL, err, errlen);
	else
		rc = fail(err, errlen, ST_ERR_IO,
			  "%s: neither model.safetensors.index.json nor model.safetensors found",
			  dir);
	free(ipath);
	free(single);
	return rc;
}

float st_bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

uint16_t st_f32_to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	if ((u & 0x7fffffffu) > 0x7f800000u)	/* NaN: keep it a quiet NaN */
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

float st_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;

	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 is exact in float */
		f = (float)man * 0x1p-24f;
		return sign ? -f : f;
	}
	if (exp == 31)
		u = sign | 0x7f800000u | man << 13;
	else
		u = sign | (exp + 112) << 23 | man << 13;
	memcpy(&f, &u, sizeof(f));
	return f;
}

int st_read_f32(const struct st_tensor *t, uint64_t off, uint64_t n,
		float *dst)
{
	const uint8_t *p = t->data;
	size_t sz = st_dtype_size(t->dtype);
	uint64_t numel = st_numel(t), i;
	uint16_t h;
	double d;

	if (t->dtype != ST_F32 && t->dtype != ST_BF16 &&
	    t->dtype != ST_F16 && t->dtype != ST_F64)
		return -ST_ERR_DTYPE;
	if (off > numel || n > numel - off)
		return -ST_ERR_RANGE;
	p += off * sz;
	for (i = 0; i < n; i++, p += sz) {
		switch (t->dtype) {
		case ST_F32:
			memcpy(&dst[i], p, 4);
			break;
		case ST_F64:
			memcpy(&d, p, 8);
			dst[i] = (float)d;
			break;
		case ST_BF16:
			memcpy(&h, p, 2);
			dst[i] = st_bf16_to_f32(h);
			break;
		default:
			memcpy(&h, p, 2);
			dst[i] = st_f16_to_f32(h);
			break;
		}
	}
	return 0;
}

float st_f8e4m3_to_f32(uint8_t b)
{
	uint32_t e = (b >> 3) & 0xf, m = b & 7, u;
	float f;

	if ((b & 0x7f) == 0x7f)
		return NAN;
	if (e == 0)	/* zero or subnormal: m * 2^-9 */
		f = (float)m * 0x1p-9f;
	else {
		u = (e + 120) << 23 | m << 20;
		memcpy(&f, &u, sizeof(f));
	}
	return b & 0x80 ? -f : f;
}

float st_f8e5m2_to_f32(uint8_t b)
{
	return st_f16_to_f32((uint16_t)(b << 8));
}

/* The scale of an FP8 tensor, checked against its shape. */
static int fp8_scale(const struct st_set *s, const struct st_tensor *t,
		     uint32_t block, const struct st_tensor **sc)
{
	size_t n = strlen(t->name) + sizeof(ST_FP8_SCALE_SUFFIX);
	char *name = malloc(n);

	if (!name)
		return -ST_ERR_NOMEM;
	snprintf(name, n, "%s" ST_FP8_SCALE_SUFFIX, t->name);
	*sc = st_find(s, name);
	free(name);
	if (t->ndim != 2 || !*sc || (*sc)->ndim != 2 ||
	    ((*sc)->dtype != ST_F32 && (*sc)->dtype != ST_BF16 &&
	     (*sc)->dtype != ST_F16) ||
	    (*sc)->shape[0] != (t->shape[0] + block - 1) / block ||
	    (*sc)->shape[1] != (t->shape[1] + block - 1) / block)
		return -ST_ERR_SCALE;
	return 0;
}

int st_read_f32_fp8(const struct st_set *s, const struct st_tensor *t,
		    uint64_t off, uint64_t n, float *dst, uint32_t block)
{
	const struct st_tensor *sc;
	const uint8_t *p = t->data;
	uint64_t numel = st_numel(t), cols, r, c, k, j, i = 0;
	float scale = 0.0f;
	int rc;

	if (t->dtype != ST_F8_E4M3 && t->dtype != ST_F8_E5M2)
		return st_read_f32(t, off, n, dst);
	if (!block)
		block = ST_FP8_DEFAULT_BLOCK;
	rc = fp8_scale(s, t, block, &sc);
	if (rc)
		return rc;
	if (off > numel || n > numel - off)
		return -ST_ERR_RANGE;
	cols = t->shape[1];
	p += off;
	while (i < n) {		/* a run of elements that share one scale */
		r = (off + i) / cols;
		c = (off + i) % cols;
		k = block - c % block;
		if (k > cols - c)
			k = cols - c;
		if (k > n - i)
			k = n - i;
		st_read_f32(sc, r / block * sc->shape[1] + c / block, 1, &scale);
		for (j = 0; j < k; j++, i++)
			dst[i] = (t->dtype == ST_F8_E4M3 ? st_f8e4m3_to_f32(p[i])
							 : st_f8e5m2_to_f32(p[i])) * scale;
	}
	return 0;
}
