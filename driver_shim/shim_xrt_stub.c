/* shim_xrt_stub.c — placeholder until the XRT backend lands: a clear refusal. */
#include <stdio.h>
#include "shim_card.h"

static int xrt_open(struct shim_card *c, const char *arg, char *err, size_t errlen)
{
	snprintf(err, errlen, "card xrt:%s: this build has no XRT backend", arg);
	return -1;
}

static void xrt_close(struct shim_card *c) { }

const struct shim_backend shim_xrt_backend = {
	.name = "xrt",
	.open = xrt_open,
	.close = xrt_close,
};
