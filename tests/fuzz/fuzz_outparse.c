/* fuzz_outparse.c — the output parser on arbitrary model output: the first
 * byte picks the markers read and a chunk size; the rest is fed whole and in
 * chunks, and both must give the same content, reasoning and calls. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/outparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *s, size_t n, int flags, size_t chunk, struct nc_outsink *o,
		  struct nc_obuf *content, struct nc_obuf *reason)
{
	struct nc_outparse p;

	nc_outparse_init(&p, flags & 1, flags & 2, flags & 4);
	for (size_t at = 0; at < n; at += chunk) {
		size_t k = n - at < chunk ? n - at : chunk;

		if (nc_outparse_feed(&p, (const char *)s + at, k, o))
			abort();
		nc_obuf_put(content, o->content.p ? o->content.p : "", o->content.len);
		nc_obuf_put(reason, o->reasoning.p ? o->reasoning.p : "", o->reasoning.len);
		o->content.len = o->reasoning.len = 0;
	}
	if (nc_outparse_finish(&p, o))
		abort();
	nc_obuf_put(content, o->content.p ? o->content.p : "", o->content.len);
	nc_obuf_put(reason, o->reasoning.p ? o->reasoning.p : "", o->reasoning.len);
	nc_outparse_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nc_outsink a = { 0 }, b = { 0 };
	struct nc_obuf ca = { 0 }, ra = { 0 }, cb = { 0 }, rb = { 0 };

	if (size < 1 || size > 1 << 16)
		return 0;
	parse(data + 1, size - 1, data[0], size, &a, &ca, &ra);
	parse(data + 1, size - 1, data[0], 1 + (data[0] >> 3), &b, &cb, &rb);
	if (ca.len != cb.len || (ca.len && memcmp(ca.p, cb.p, ca.len)) || ra.len != rb.len ||
	    (ra.len && memcmp(ra.p, rb.p, ra.len)) || a.n != b.n)
		abort();
	for (uint32_t i = 0; i < a.n; i++)
		if (strcmp(a.calls[i].name, b.calls[i].name) ||
		    strcmp(a.calls[i].arguments, b.calls[i].arguments))
			abort();
	nc_outsink_free(&a);
	nc_outsink_free(&b);
	nc_obuf_free(&ca);
	nc_obuf_free(&ra);
	nc_obuf_free(&cb);
	nc_obuf_free(&rb);
	return 0;
}
