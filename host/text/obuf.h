/* obuf.h — a growable byte buffer, NUL-terminated whenever p is set. */
#ifndef HOST_TEXT_OBUF_H
#define HOST_TEXT_OBUF_H

#include <stddef.h>

struct nc_obuf {
	char *p;
	size_t len, cap;
};

int nc_obuf_put(struct nc_obuf *b, const char *s, size_t n);	/* 0 or -ENOMEM */
void nc_obuf_clear(struct nc_obuf *b);	/* empty, keeping the memory */
void nc_obuf_free(struct nc_obuf *b);

#endif
