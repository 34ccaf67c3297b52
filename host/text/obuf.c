/* obuf.c — the growable byte buffer of obuf.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "text/obuf.h"

int nc_obuf_put(struct nc_obuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

void nc_obuf_clear(struct nc_obuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = 0;
}

void nc_obuf_free(struct nc_obuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
