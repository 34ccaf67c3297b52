/* st_write.c — build a safetensors header with cJSON and stream the data.
 *
 * Offsets are laid out as tensors are added, so the header is known before
 * any data exists; the data is then pulled from the caller chunk by chunk.
 */
#include "host/model/st_write.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "st_write.c assumes a little-endian host"
#endif

/* JSON numbers are doubles: readers need every offset exact. */
#define ST_MAX_INT (1ull << 53)

#define fail st_fail

static int check_add(const char *name, enum st_dtype dt, int ndim,
		     const uint64_t *shape, uint64_t *nbytes, char *err,
		     size_t errlen)
{
	uint64_t n = st_dtype_size(dt);
	int i;

	if (!name || !name[0] || !strcmp(name, "__metadata__"))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "tensor name '%s' is empty or reserved",
			    name ? name : "");
	if (!n)
		return fail(err, errlen, ST_ERR_TENSOR,
			    "tensor '%s': unknown dtype %d", name, (int)dt);
	if (ndim < 0 || ndim > ST_WRITE_MAX_DIMS || (ndim && !shape))
		return fail(err, errlen, ST_ERR_TENSOR,
			    "tensor '%s': %d dimensions (0..%d allowed)", name,
			    ndim, ST_WRITE_MAX_DIMS);
	for (i = 0; i < ndim; i++)
		if (__builtin_mul_overflow(n, shape[i], &n) ||
		    n >= ST_MAX_INT)
			return fail(err, errlen, ST_ERR_TENSOR,
				    "tensor '%s': byte size overflows", name);
	*nbytes = n;
	return 0;
}

int st_writer_add(struct st_writer *w, const char *name, enum st_dtype dt,
		  int ndim, const uint64_t *shape, char *err, size_t errlen)
{
	struct st_wtensor *t;
	uint64_t nbytes = 0;
	int rc;

	rc = check_add(name, dt, ndim, shape, &nbytes, err, errlen);
	if (rc)
		return rc;
	if (w->data_bytes + nbytes >= ST_MAX_INT || w->count >= INT32_MAX)
		return fail(err, errlen, ST_ERR_TENSOR,
			    "tensor '%s': the data section would exceed 2^53 bytes",
			    name);
	if (w->count == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;

		t = realloc(w->t, cap * sizeof(*t));
		if (!t)
			return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
		w->t = t;
		w->cap = cap;
	}
	t = &w->t[w->count];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	if (!t->name)
		return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
	t->dtype = dt;
	t->ndim = ndim;
	if (ndim)
		memcpy(t->shape, shape, (size_t)ndim * sizeof(*shape));
	t->nbytes = nbytes;
	t->begin = w->data_bytes;
	w->data_bytes += nbytes;
	return (int)w->count++;
}

int st_writer_meta(struct st_writer *w, const char *key, const char *val,
		   char *err, size_t errlen)
{
	struct st_wmeta *m;
	char *v;
	size_t i;

	if (!key || !key[0])
		return fail(err, errlen, ST_ERR_HEADER,
			    "__metadata__ key is empty");
	v = strdup(val ? val : "");
	if (!v)
		return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
	for (i = 0; i < w->nmeta; i++) {
		if (!strcmp(w->meta[i].key, key)) {
			free(w->meta[i].val);
			w->meta[i].val = v;
			return 0;
		}
	}
	if (w->nmeta == w->mcap) {
		size_t cap = w->mcap ? 2 * w->mcap : 8;

		m = realloc(w->meta, cap * sizeof(*m));
		if (!m)
			goto nomem;
		w->meta = m;
		w->mcap = cap;
	}
	m = &w->meta[w->nmeta];
	m->key = strdup(key);
	if (!m->key)
		goto nomem;
	m->val = v;
	w->nmeta++;
	return 0;
nomem:
	free(v);
	return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
}

void st_writer_free(struct st_writer *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->count; i++)
		free(w->t[i].name);
	free(w->t);
	for (i = 0; i < w->nmeta; i++) {
		free(w->meta[i].key);
		free(w->meta[i].val);
	}
	free(w->meta);
	memset(w, 0, sizeof(*w));
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(const struct st_wtensor *const *)a)->name,
		      (*(const struct st_wtensor *const *)b)->name);
}

static int check_dups(const struct st_writer *w, char *err, size_t errlen)
{
	const struct st_wtensor **v;
	size_t i;
	int rc = 0;

	if (w->count < 2)
		return 0;
	v = malloc(w->count * sizeof(*v));
	if (!v)
		return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
	for (i = 0; i < w->count; i++)
		v[i] = &w->t[i];
	qsort(v, w->count, sizeof(*v), cmp_name);
	for (i = 1; i < w->count && !rc; i++)
		if (!strcmp(v[i - 1]->name, v[i]->name))
			rc = fail(err, errlen, ST_ERR_DUP,
				  "tensor '%s': added twice", v[i]->name);
	free(v);
	return rc;
}

static cJSON *u64_array(const uint64_t *v, int n)
{
	cJSON *a = cJSON_CreateArray();
	int i;

	for (i = 0; a && i < n; i++) {
		cJSON *x = cJSON_CreateNumber((double)v[i]);

		if (!x || !cJSON_AddItemToArray(a, x)) {
			cJSON_Delete(x);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static cJSON *tensor_json(const struct st_wtensor *t)
{
	const uint64_t offs[2] = { t->begin, t->begin + t->nbytes };
	cJSON *o = cJSON_CreateObject(), *shape, *off;

	if (!o || !cJSON_AddStringToObject(o, "dtype", st_dtype_name(t->dtype)))
		goto bad;
	shape = u64_array(t->shape, t->ndim);
	if (!shape || !cJSON_AddItemToObject(o, "shape", shape)) {
		cJSON_Delete(shape);
		goto bad;
	}
	off = u64_array(offs, 2);
	if (!off || !cJSON_AddItemToObject(o, "data_offsets", off)) {
		cJSON_Delete(off);
		goto bad;
	}
	return o;
bad:
	cJSON_Delete(o);
	return NULL;
}

static cJSON *header_json(const struct st_writer *w)
{
	cJSON *root = cJSON_CreateObject(), *md, *t;
	size_t i;

	if (!root)
		return NULL;
	if (w->nmeta) {
		md = cJSON_AddObjectToObject(root, "__metadata__");
		if (!md)
			goto bad;
		for (i = 0; i < w->nmeta; i++)
			if (!cJSON_AddStringToObject(md, w->meta[i].key,
						     w->meta[i].val))
				goto bad;
	}
	for (i = 0; i < w->count; i++) {
		t = tensor_json(&w->t[i]);
		if (!t || !cJSON_AddItemToObject(root, w->t[i].name, t)) {
			cJSON_Delete(t);
			goto bad;
		}
	}
	return root;
bad:
	cJSON_Delete(root);
	return NULL;
}

/* The header as it goes in the file: 8-byte length, JSON, space padding
 * to a multiple of 8.  *buf is malloc'd, *len its size. */
static int build_header(const struct st_writer *w, char **buf, size_t *len,
			char *err, size_t errlen)
{
	cJSON *root = header_json(w);
	char *js = root ? cJSON_PrintUnformatted(root) : NULL;
	size_t n, padded;
	int i;

	cJSON_Delete(root);
	if (!js)
		return fail(err, errlen, ST_ERR_NOMEM,
			    "out of memory building the header");
	n = strlen(js);
	padded = (n + 7) & ~(size_t)7;
	if (padded > ST_MAX_HEADER) {
		free(js);
		return fail(err, errlen, ST_ERR_HEADER,
			    "header of %zu bytes exceeds the %u-byte limit",
			    padded, ST_MAX_HEADER);
	}
	*buf = malloc(8 + padded);
	if (!*buf) {
		free(js);
		return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < 8; i++)
		(*buf)[i] = (char)((uint64_t)padded >> (8 * i));
	memcpy(*buf + 8, js, n);
	memset(*buf + 8 + n, ' ', padded - n);
	free(js);
	*len = 8 + padded;
	return 0;
}

uint64_t st_writer_file_bytes(const struct st_writer *w)
{
	char *hdr = NULL;
	size_t len = 0;

	if (build_header(w, &hdr, &len, NULL, 0))
		return 0;
	free(hdr);
	return len + w->data_bytes;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t r;

	while (n) {
		r = write(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_tensor(int fd, const struct st_wtensor *t, st_fill_fn fill,
			void *ctx, void *buf, const char *path, char *err,
			size_t errlen)
{
	uint64_t off, n;

	for (off = 0; off < t->nbytes; off += n) {
		n = t->nbytes - off < ST_WRITE_CHUNK ? t->nbytes - off
						      : ST_WRITE_CHUNK;
		if (!fill)
			memset(buf, 0, n);
		else if (fill(ctx, t, off, buf, n) < 0)
			return fail(err, errlen, ST_ERR_IO,
				    "%s: tensor '%s': no data for bytes %llu..%llu",
				    path, t->name, (unsigned long long)off,
				    (unsigned long long)(off + n));
		if (write_all(fd, buf, n))
			return fail(err, errlen, ST_ERR_IO, "%s: write: %s",
				    path, strerror(errno));
	}
	return 0;
}

static int write_body(int fd, const struct st_writer *w, const char *hdr,
		      size_t hlen, st_fill_fn fill, void *ctx,
		      const char *path, char *err, size_t errlen)
{
	void *buf = malloc(ST_WRITE_CHUNK);
	size_t i;
	int rc = 0;

	if (!buf)
		return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
	if (write_all(fd, hdr, hlen))
		rc = fail(err, errlen, ST_ERR_IO, "%s: write: %s", path,
			  strerror(errno));
	for (i = 0; !rc && i < w->count; i++)
		rc = write_tensor(fd, &w->t[i], fill, ctx, buf, path, err,
				  errlen);
	free(buf);
	return rc;
}

int st_writer_write(const struct st_writer *w, const char *path,
		    st_fill_fn fill, void *ctx, char *err, size_t errlen)
{
	size_t plen = strlen(path) + sizeof(".tmp"), hlen = 0;
	char *tmp = malloc(plen), *hdr = NULL;
	int fd = -1, rc;

	if (!tmp)
		return fail(err, errlen, ST_ERR_NOMEM, "out of memory");
	snprintf(tmp, plen, "%s.tmp", path);
	rc = check_dups(w, err, errlen);
	if (!rc)
		rc = build_header(w, &hdr, &hlen, err, errlen);
	if (rc)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = fail(err, errlen, ST_ERR_IO, "%s: cannot create: %s", tmp,
			  strerror(errno));
		goto out;
	}
	rc = write_body(fd, w, hdr, hlen, fill, ctx, tmp, err, errlen);
	if (close(fd) && !rc)
		rc = fail(err, errlen, ST_ERR_IO, "%s: close: %s", tmp,
			  strerror(errno));
	if (!rc && rename(tmp, path))
		rc = fail(err, errlen, ST_ERR_IO, "%s: rename to %s: %s", tmp,
			  path, strerror(errno));
	if (rc)
		unlink(tmp);
out:
	free(hdr);
	free(tmp);
	return rc;
}

uint16_t st_f32_to_f16(float f)
{
	uint32_t u, sign, exp, man;
	int e;

	memcpy(&u, &f, sizeof(u));
	sign = (u >> 16) & 0x8000u;
	exp = (u >> 23) & 0xff;
	man = u & 0x7fffffu;
	if (exp == 0xff)	/* inf, or NaN kept quiet */
		return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | man >> 13 : 0));
	e = (int)exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) {
		/* subnormal half: value = m * 2^-24, m = (1.man) >> shift */
		uint32_t shift = (uint32_t)(14 - e), full, rem, half, h;

		if (shift > 24)
			return (uint16_t)sign;
		full = man | 0x800000u;
		h = full >> shift;
		rem = full & ((1u << shift) - 1);
		half = 1u << (shift - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);	/* a carry makes it normal */
	}
	/* normal half: add just under half an ulp, plus one when the kept lsb is odd
	 * (ties to even); a carry moves into the exponent and at the top gives inf */
	u &= 0x7fffffffu;
	u += 0xfffu + ((u >> 13) & 1);
	return (uint16_t)(sign | ((u >> 13) - (112u << 10)));
}
